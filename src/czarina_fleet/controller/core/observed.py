"""Observed state: what the store records and what the world reports, gathered by the
reconciler before each plan. Plain data; the planner reads nothing else."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from czarina_fleet.model.fleet import (
    Event,
    HostProbe,
    HostRecord,
    Intent,
    LoadSample,
    WorkerRecord,
)
from czarina_fleet.providers.base import Instance, InterruptionNotice, PriceQuote


@dataclass(frozen=True)
class ConnectionLimit:
    """How many hosts the controller can keep connected at once (one SSH connection,
    one open file, each: remote/fd_limit.py), and `why` in words a user can act on
    (the limit in force and how to raise it). The planner launches no host past it."""
    hosts: int
    why: str


@dataclass(frozen=True)
class Observed:
    hosts: Mapping[str, HostRecord]
    workers: Mapping[str, WorkerRecord]
    intents: Sequence[Intent] = ()
    # pool -> its instances. A pool MISSING here could not be listed this tick: the
    # planner then concludes nothing from the absence of its instances.
    inventories: Mapping[str, Sequence[Instance]] = field(default_factory=dict)
    notices: Sequence[InterruptionNotice] = ()
    probes: Mapping[str, HostProbe] = field(default_factory=dict)
    quotes: Mapping[str, PriceQuote] = field(default_factory=dict)  # pool -> next launch
    # When hosts began draining on a rebalance recommendation (the last hour's): the cap.
    rebalance_started: Sequence[float] = ()
    # Each host's last few probe load samples, oldest first (rebalancing's hysteresis).
    samples: Mapping[str, Sequence[LoadSample]] = field(default_factory=dict)
    # The last hour's worker moves (events into `checkpointing`) and refused-move notes,
    # oldest first: the disruption budget counts them.
    move_events: Sequence[Event] = ()
    # None: no limit (the simulator's in-memory hosts).
    connection_limit: ConnectionLimit | None = None

    @classmethod
    def of(cls, hosts: Sequence[HostRecord], workers: Sequence[WorkerRecord],
           **rest: object) -> Observed:
        return cls({h.host_id: h for h in hosts}, {w.worker_id: w for w in workers},
                   **rest)  # type: ignore[arg-type]
