"""czarina-fleet: the distributed-workers layer of Czarina (a cloud autoscaling controller)."""

__version__ = "0.1.0"
