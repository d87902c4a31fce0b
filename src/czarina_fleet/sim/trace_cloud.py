"""The `cloud` part of a trace: how the simulated cloud behaves."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from czarina_fleet.sim.units import Seconds, Strict


class CapacityOutage(Strict):
    """No capacity in `pool` (every pool when omitted) from `start` until `end`: every
    launch there fails with a capacity error."""

    pool: str | None = None
    start: Seconds
    end: Seconds

    @model_validator(mode="after")
    def _ordered(self) -> CapacityOutage:
        if self.end <= self.start:
            raise ValueError(f"end ({self.end:g}s) must be after start ({self.start:g}s)")
        return self


class LaunchErrors(Strict):
    """From `at` on, the next `times` launches (any pool) fail with `error`."""

    at: Seconds
    error: Literal["capacity", "transient", "quota"] = "capacity"
    times: int = Field(default=1, ge=1, le=10_000)


class ScheduledInterruption(Strict):
    """At `at`, the cloud takes back a spot host: the one named `host`, or the one
    `worker` runs on at that moment (nothing happens if it runs nowhere)."""

    at: Seconds
    host: str | None = None
    worker: str | None = None

    @model_validator(mode="after")
    def _one_target(self) -> ScheduledInterruption:
        if (self.host is None) == (self.worker is None):
            raise ValueError('give exactly one of "host" or "worker"')
        return self


class CloudBehaviour(Strict):
    launch_latency: Seconds = 60.0
    default_price_per_hour: float = Field(default=0.05, ge=0)
    prices: dict[str, Annotated[float, Field(ge=0)]] = Field(
        default_factory=dict, description="pool name -> USD per hour (spot for a spot pool)")
    on_demand_prices: dict[str, Annotated[float, Field(ge=0)]] = Field(
        default_factory=dict, description="pool name -> USD per hour on demand, for a spot "
        "pool (the always-on baseline runs every pool on demand)")
    on_demand_factor: float = Field(
        default=3.0, ge=1, description="on-demand price of a pool not in on_demand_prices, "
        "as a multiple of its price (spot is typically 60-70% off)")
    host_cpus: dict[str, Annotated[int, Field(ge=1)]] = Field(
        default_factory=dict, description="pool name -> cores per host (default: one per "
        "slot); busy workers' items load them")
    capacity_outages: list[CapacityOutage] = Field(default_factory=list)
    launch_errors: list[LaunchErrors] = Field(default_factory=list)
    interruptions: list[ScheduledInterruption] = Field(default_factory=list)
    interruption_rate_per_hour: float = Field(
        default=0.0, ge=0, description="chance per running spot host per hour (seeded)")
    notice: Literal["none", "aws", "gcp", "azure"] = Field(
        default="none", description="interruptions come with that cloud's notice ahead "
        "(aws 120 s, gcp and azure 30 s); none: the host is simply taken")
