"""The simulated cloud: the fake cloud of `providers.fake`, plus what a trace asks of it
(a price per pool, capacity outages) and hosts whose workers' panes go quiet on cue.

Every pool of the trace's config runs here, whatever its `provider` says: the point is
to replay the real planner and executor against a cloud whose behaviour we choose.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field

from czarina_fleet.model.config import WorkerSpec
from czarina_fleet.model.fleet import HostProbe, HostRecord, SessionProbe, WorkerRecord
from czarina_fleet.providers.base import (
    CapacityError,
    Instance,
    InstanceState,
    LaunchRequest,
    PriceQuote,
    ProviderError,
    QuotaError,
    TransientError,
)
from czarina_fleet.providers.fake import FakeCloud, FakeProvider, InMemoryRuntime
from czarina_fleet.sim.trace import CapacityOutage

ERRORS: dict[str, type[ProviderError]] = {
    "capacity": CapacityError, "transient": TransientError, "quota": QuotaError}


class SimProvider(FakeProvider):
    """A pool on the simulated cloud, with its own price and capacity outages.
    `origin` is the clock time the trace's times count from."""

    def __init__(self, cloud: FakeCloud, pool: str, fleet: str, *, price: float,
                 outages: Sequence[CapacityOutage], origin: float) -> None:
        super().__init__(cloud, pool, fleet)
        self.price = price
        self.outages = [o for o in outages if o.pool in (None, pool)]
        self.origin = origin

    async def launch(self, request: LaunchRequest) -> Instance:
        # A launch already made answers as before (idempotency), outage or not.
        if request.idempotency_key not in self.cloud.by_key:
            t = self.cloud.clock.now() - self.origin
            for o in self.outages:
                if o.start <= t < o.end:
                    self.cloud.launch_calls.append(request.idempotency_key)
                    raise CapacityError(f"simulated capacity outage in pool {self.pool}")
        return await super().launch(request)

    async def prices(self, shape: str, region: str, spot: bool) -> PriceQuote:
        return PriceQuote(shape, region, spot, self.price, "simulated")


IDLE_LOAD = 0.05  # what a worker waiting at its prompt adds to its host's load


@dataclass
class SimRuntime(InMemoryRuntime):
    """In-memory hosts whose workers' pane activity the trace controls: an idle worker's
    pane last moved when it went idle; a busy one (the default) moves all the time.

    With hopper items in the trace (`items_drive_panes`, set by sim/demand.py) the items
    decide instead: a worker is busy while it has one (`working`: worker -> the item's
    cores) and quiet otherwise, from its start or its last item's end. The probe then
    reports each host's load from its workers (the item's cores, IDLE_LOAD without one)
    against `cpus` (pool -> cores per host), so an overloaded host looks overloaded to
    the planner."""

    idle_since: dict[str, float] = field(default_factory=dict)
    items_drive_panes: bool = False
    working: dict[str, float] = field(default_factory=dict)
    cpus: dict[str, int] = field(default_factory=dict)

    async def start_worker(self, host: HostRecord, spec: WorkerSpec) -> None:
        await super().start_worker(host, spec)
        if self.items_drive_panes and spec.id not in self.working:
            self.idle_since[spec.id] = self.cloud.clock.now()  # quiet until it has an item
        else:
            self.idle_since.pop(spec.id, None)  # a fresh session starts busy

    async def probe(self, host: HostRecord,
                    records: Sequence[WorkerRecord] | None = None) -> HostProbe:
        found = await super().probe(host)
        if not found.reachable:
            return found
        sessions = {w: SessionProbe(w, True, pane_activity=self.idle_since.get(w, s.pane_activity))
                    for w, s in found.sessions.items()}
        load, cpus = found.load_1m, found.cpus
        if self.items_drive_panes:
            load = sum(self.working.get(w, IDLE_LOAD) for w in sessions)
            cpus = self.cpus.get(host.pool or "", cpus)
        return HostProbe(found.host_id, True, found.probed_at, load_1m=load, cpus=cpus,
                         sessions=sessions)

    def up_hosts(self) -> set[str]:
        """Hosts whose sessions are alive: running instances, and hosts with no instance
        (local and static) that have sessions."""
        up = {i.host_id for i in self.cloud.running() if i.state == InstanceState.RUNNING}
        pooled = {i.host_id for i in self.cloud.by_key.values()}
        return up | {h for h in self.sessions if h not in pooled}

    def live_sessions(self) -> dict[str, list[str]]:
        """worker -> hosts where its session is alive (more than one is a bug)."""
        up = self.up_hosts()
        out: dict[str, list[str]] = {}
        for host_id in sorted(self.sessions):
            if host_id in up:
                for w in sorted(self.sessions[host_id]):
                    out.setdefault(w, []).append(host_id)
        return out


def random_interruptions(cloud: FakeCloud, rng: random.Random, rate_per_hour: float,
                         seconds: float) -> list[str]:
    """Spot hosts the cloud takes back over `seconds`, each with probability
    1 - exp(-rate x hours): a Poisson process per host. Deterministic for a seeded rng
    (hosts are visited in instance-id order)."""
    if rate_per_hour <= 0 or seconds <= 0:
        return []
    p = 1.0 - math.exp(-rate_per_hour * seconds / 3600.0)
    taken = []
    for inst in sorted(cloud.running(), key=lambda i: i.instance_id):
        if inst.spot and inst.state == InstanceState.RUNNING and rng.random() < p:
            taken.append(inst.host_id)
    return taken
