"""A fake cloud for tests and the simulator: launch latency, failure injection, spot
interruptions, all on an injected clock. `FakeCloud` holds the instances (shared by
every `FakeProvider` built on it, so a "restarted" controller sees the same cloud);
`InMemoryRuntime` is a `HostAccess` whose hosts keep worker sessions in memory.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from czarina_fleet.clock import Clock, FakeClock
from czarina_fleet.model.config import WorkerSpec
from czarina_fleet.model.fleet import HostProbe, HostRecord, SessionProbe, WorkerRecord
from czarina_fleet.providers.base import (
    ConnectInfo,
    Instance,
    InstanceState,
    InterruptionNotice,
    LaunchRequest,
    PriceQuote,
    Provider,
    ProviderError,
)
from czarina_fleet.remote.runner import HostUnreachable


@dataclass
class FakeCloud:
    clock: Clock
    launch_latency_s: float = 30.0
    price_per_hour: float = 0.03
    by_key: dict[str, Instance] = field(default_factory=dict)   # idempotency key -> instance
    launch_calls: list[str] = field(default_factory=list)       # every key launch was called with
    failures: list[ProviderError] = field(default_factory=list)  # raised by the next launches
    notices: list[InterruptionNotice] = field(default_factory=list)
    terminated: list[str] = field(default_factory=list)

    def fail_next(self, error: ProviderError, times: int = 1) -> None:
        self.failures.extend([error] * times)

    def interrupt(self, host_id: str) -> None:
        """The cloud takes the host's instance back (a spot interruption)."""
        for key, inst in self.by_key.items():
            if inst.host_id == host_id and inst.state != InstanceState.TERMINATED:
                self.by_key[key] = replace(inst, state=InstanceState.TERMINATED,
                                           interrupted=True)
                self.notices.append(InterruptionNotice(inst.instance_id, host_id,
                                                       "spot interruption"))

    def warn(self, host_id: str, deadline: float) -> None:
        """The cloud announces it will take the host's instance at `deadline`."""
        for inst in self.by_key.values():
            if inst.host_id == host_id and inst.state != InstanceState.TERMINATED:
                self.notices.append(InterruptionNotice(inst.instance_id, host_id,
                                                       "spot interruption notice", deadline))

    def running(self) -> list[Instance]:
        return [i for i in self._refreshed() if i.state != InstanceState.TERMINATED]

    def _refreshed(self) -> list[Instance]:
        now = self.clock.now()
        for key, inst in self.by_key.items():
            if (inst.state == InstanceState.PENDING and inst.launched_at is not None
                    and now >= inst.launched_at + self.launch_latency_s):
                n = len(self.by_key)
                self.by_key[key] = replace(inst, state=InstanceState.RUNNING,
                                           connect=ConnectInfo(f"10.250.{n // 250}.{n % 250}"))
        return list(self.by_key.values())


class FakeProvider(Provider):
    name = "fake"

    def __init__(self, cloud: FakeCloud, pool: str, fleet: str = "test") -> None:
        self.cloud = cloud
        self.pool = pool
        self.fleet = fleet

    @classmethod
    def from_pool(cls, pool: Any, fleet: str, **context: Any) -> FakeProvider:
        cloud = context.get("cloud") or FakeCloud(context.get("clock") or FakeClock())
        return cls(cloud, pool.name, fleet)

    async def list_instances(self) -> list[Instance]:
        return [i for i in self.cloud._refreshed()
                if i.pool == self.pool and i.tags.get("czarina-fleet") == self.fleet]

    async def launch(self, request: LaunchRequest) -> Instance:
        self.cloud.launch_calls.append(request.idempotency_key)
        existing = self.cloud.by_key.get(request.idempotency_key)
        if existing is not None:
            return existing
        if self.cloud.failures:
            raise self.cloud.failures.pop(0)
        inst = Instance(
            instance_id=f"i-{len(self.cloud.by_key) + 1:06d}", host_id=request.host_id,
            pool=request.pool, state=InstanceState.PENDING, shape=request.shape,
            region=request.region, spot=request.spot, launched_at=self.cloud.clock.now(),
            tags=request.owner_tags(),
        )
        self.cloud.by_key[request.idempotency_key] = inst
        return inst

    async def terminate(self, instance_id: str) -> None:
        for key, inst in self.cloud.by_key.items():
            if inst.instance_id == instance_id and inst.state != InstanceState.TERMINATED:
                self.cloud.by_key[key] = replace(inst, state=InstanceState.TERMINATED)
                self.cloud.terminated.append(instance_id)

    async def prices(self, shape: str, region: str, spot: bool) -> PriceQuote:
        return PriceQuote(shape, region, spot, self.cloud.price_per_hour, "fake")

    async def interruption_notices(self) -> list[InterruptionNotice]:
        return [n for n in self.cloud.notices
                if any(i.host_id == n.host_id and i.pool == self.pool
                       for i in self.cloud.by_key.values())]


@dataclass
class InMemoryRuntime:
    """HostAccess for fake hosts: sessions live in a dict. A host answers while its
    instance runs (or always, for hosts with no pool)."""

    cloud: FakeCloud
    sessions: dict[str, dict[str, float]] = field(default_factory=dict)  # host -> worker -> t
    bootstrap_failures: dict[str, int] = field(default_factory=dict)     # host -> fails left
    started: list[tuple[str, str]] = field(default_factory=list)
    loads: dict[str, float] = field(default_factory=dict)  # host -> load_1m (else 0.1)

    async def connect(self, host: HostRecord) -> None:
        return None  # in memory: nothing to open

    def connection_limit(self, hosts: Sequence[HostRecord] = ()) -> None:
        return None  # no file per host

    async def ack_notice(self, host: HostRecord, event_ids: list[str]) -> None:
        return None  # no scheduled events in memory

    def _check(self, host: HostRecord) -> None:
        if host.pool is None:
            return
        if not any(i.host_id == host.host_id for i in self.cloud.running()):
            raise HostUnreachable(f"{host.host_id} is not running")

    async def bootstrap(self, host: HostRecord) -> None:
        self._check(host)
        if self.bootstrap_failures.get(host.host_id, 0) > 0:
            self.bootstrap_failures[host.host_id] -= 1
            raise RuntimeError("git: command not found")
        self.sessions.setdefault(host.host_id, {})

    async def start_worker(self, host: HostRecord, spec: WorkerSpec) -> None:
        self._check(host)
        self.sessions.setdefault(host.host_id, {})[spec.id] = self.cloud.clock.now()
        self.started.append((spec.id, host.host_id))

    async def stop_worker(self, host: HostRecord, worker_id: str) -> None:
        self.sessions.get(host.host_id, {}).pop(worker_id, None)

    async def checkpoint_worker(self, host: HostRecord, worker_id: str) -> None:
        self._check(host)

    def learn_instances(self, inventories: Mapping[str, list[Instance]]) -> None:
        return None  # fake hosts need no keys or addresses

    async def probe(self, host: HostRecord,
                    records: Sequence[WorkerRecord] | None = None) -> HostProbe:
        now = self.cloud.clock.now()
        try:
            self._check(host)
        except HostUnreachable as e:
            return HostProbe(host.host_id, False, now, error=str(e))
        found: Mapping[str, float] = self.sessions.get(host.host_id, {})
        return HostProbe(host.host_id, True, now, load_1m=self.loads.get(host.host_id, 0.1),
                         cpus=2, sessions={
            w: SessionProbe(w, True, pane_activity=now) for w in found})

    def all_sessions(self) -> list[tuple[str, str]]:
        return [(w, h) for h, ws in self.sessions.items() for w in ws]
