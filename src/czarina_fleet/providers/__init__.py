"""Drivers for the places workers can run. The contract is in `base.py`."""
