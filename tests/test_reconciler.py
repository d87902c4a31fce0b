"""The reconciler against the fake cloud and the in-memory runtime, on a fake clock."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from czarina_fleet.clock import FakeClock
from czarina_fleet.controller.runtime.compose import build_reconciler
from czarina_fleet.controller.runtime.reconciler import Reconciler
from czarina_fleet.controller.state.store import Store
from czarina_fleet.model.config import (
    FleetConfig,
    FleetSettings,
    PoolSpec,
    ProjectInfo,
    ScalingLimits,
    WorkerSpec,
)
from czarina_fleet.model.fleet import HostProbe, HostRecord, IntentStatus, WorkerRecord
from czarina_fleet.model.location import parse_location
from czarina_fleet.model.states import HOST_ALIVE, HostState, WorkerState
from czarina_fleet.providers.base import CapacityError, TransientError
from czarina_fleet.providers.fake import FakeCloud, FakeProvider, InMemoryRuntime


def make_cfg(n: int, budget: float | None = None, max_hosts: int = 10) -> FleetConfig:
    pool = PoolSpec(name="p", provider="fake", instance_types=["t3.large"], regions=["r"],
                    max_hosts=max_hosts, slots_per_host=2)
    return FleetConfig(
        source=Path("c.json"), format="json", project=ProjectInfo(), project_root=Path("."),
        workers=[WorkerSpec(id=f"w{i}", branch=f"b{i}", location=parse_location("pool:p"))
                 for i in range(n)],
        fleet=FleetSettings(name="test", pools=[pool],
                            scaling=ScalingLimits(budget_per_hour=budget, idle_timeout_s=300)))


class Harness:
    def __init__(self, tmp: Path, cfg: FleetConfig) -> None:
        self.clock = FakeClock()
        self.cloud = FakeCloud(self.clock, launch_latency_s=20)
        self.runtime = InMemoryRuntime(self.cloud)
        self.store = Store(tmp / "fleet.db", self.clock, synchronous="OFF")
        self.rec = self.build(cfg)

    def build(self, cfg: FleetConfig) -> Reconciler:
        return build_reconciler(cfg, self.store, {"p": FakeProvider(self.cloud, "p", "test")},
                          self.runtime, self.clock, backoff_s=0.1)

    def tick(self, n: int = 1, step: float = 15) -> None:
        for _ in range(n):
            asyncio.run(self.rec.reconcile_once())
            self.clock.advance(step)

    def running(self) -> list[str]:
        return sorted(w.worker_id for w in self.store.workers() if w.state == WorkerState.RUNNING)

    def live_sessions(self) -> list[str]:
        up = {i.host_id for i in self.cloud.running()}
        return sorted(w for w, h in self.runtime.all_sessions() if h in up)


def test_scale_zero_to_n_to_zero(tmp_path: Path) -> None:
    h = Harness(tmp_path, make_cfg(0))
    h.tick(2)
    assert h.cloud.running() == []
    h.rec = h.build(make_cfg(5))
    h.tick(6)
    assert h.running() == [f"w{i}" for i in range(5)]
    assert h.live_sessions() == h.running()  # each exactly once
    assert len(h.cloud.running()) == 3  # 5 workers, 2 slots per host
    assert len(h.cloud.launch_calls) == len(set(h.cloud.launch_calls)) == 3
    # Each host keeps where its price came from (the quote's source), for the report.
    assert {x.price_source for x in h.store.hosts()} == {"fake"}
    h.rec = h.build(make_cfg(0))
    h.tick(40)
    assert h.store.workers() == [] and h.live_sessions() == []
    assert h.cloud.running() == []  # idle hosts terminated
    assert all(x.state == HostState.TERMINATED for x in h.store.hosts())


def test_budget_never_exceeded_with_failed_and_retried_launches(tmp_path: Path) -> None:
    h = Harness(tmp_path, make_cfg(8, budget=0.07))
    h.cloud.fail_next(TransientError("throttled"), 2)
    h.cloud.fail_next(CapacityError("no capacity"), 2)
    for _ in range(30):
        h.tick()
        billed = sum(x.price_per_hour for x in h.store.hosts() if x.state in HOST_ALIVE)
        cloud_cost = 0.03 * len(h.cloud.running())
        assert billed <= 0.07 + 1e-9 and cloud_cost <= 0.07 + 1e-9
    assert len(h.cloud.running()) == 2 and len(h.running()) == 4


def test_interruption_replaces_workers(tmp_path: Path) -> None:
    h = Harness(tmp_path, make_cfg(2))
    h.tick(6)
    assert h.running() == ["w0", "w1"]
    (host_id,) = {w.host_id for w in h.store.workers()}
    h.cloud.interrupt(host_id)
    h.tick(8)
    assert h.running() == ["w0", "w1"]
    assert {w.host_id for w in h.store.workers()} != {host_id}
    assert h.store.host(host_id).state in (HostState.INTERRUPTED, HostState.TERMINATED)


def test_restart_adopts_launch_instead_of_launching_again(tmp_path: Path) -> None:
    h = Harness(tmp_path, make_cfg(1))
    # a controller that recorded its launch intent, launched, and was killed before
    # recording the instance:
    h.tick(1)
    (key,) = [k for k in h.cloud.by_key]
    h.store._db.execute("UPDATE intents SET status='open', result=NULL WHERE key=?", (key,))
    h.store._db.execute("UPDATE hosts SET state='requested', instance_id=NULL")
    h.rec = h.build(make_cfg(1))  # a fresh controller
    h.tick(6)
    assert h.store.intent(key).status == IntentStatus.DONE
    assert "adopted" in h.store.intent(key).result["summary"]
    assert len(h.cloud.by_key) == 1 and h.running() == ["w0"]


def test_bootstrap_failure_retried_then_ready(tmp_path: Path) -> None:
    h = Harness(tmp_path, make_cfg(1))
    h.runtime.bootstrap_failures["p-1"] = 1
    h.tick(12)
    assert h.running() == ["w0"]
    states = [e.to_state for e in h.store.events(entity="host", entity_id="p-1")]
    assert "bootstrap_failed" in states and states[-1] == "ready"


@dataclass
class QueuedRuntime(InMemoryRuntime):
    """Connections opened one at a time, each taking a while: the queue a controller
    that starts with many hosts has behind its pool's connect slots."""

    connected: list[str] = field(default_factory=list)

    async def connect(self, host: HostRecord) -> None:
        if host.host_id in self.connected:
            return  # open already: no queue
        async with _ONE_AT_A_TIME:
            if host.host_id not in self.connected:
                await asyncio.sleep(0.25)
                self.connected.append(host.host_id)

    async def probe(self, host: HostRecord,
                    records: Sequence[WorkerRecord] | None = None) -> HostProbe:
        await self.connect(host)  # as the pool does: a probe opens what is not open
        return await super().probe(host, records)


_ONE_AT_A_TIME = asyncio.Semaphore(1)


def test_waiting_for_a_connection_is_not_a_probe_timeout(tmp_path: Path) -> None:
    """6 hosts connecting one after another take 1.5 s; each probe may take 0.5 s once
    connected. None is marked unreachable: the wait was the controller's, not the host's
    (a 1,000-host start had 478 hosts flap to unreachable and back that way)."""
    h = Harness(tmp_path, make_cfg(12))
    h.tick(12)
    assert len(h.running()) == 12 and len(h.cloud.running()) == 6
    queued = QueuedRuntime(h.cloud, sessions=h.runtime.sessions)
    rec = build_reconciler(make_cfg(12), h.store, {"p": FakeProvider(h.cloud, "p", "test")},
                           queued, h.clock, probe_timeout_s=0.5, backoff_s=0.1)
    result = asyncio.run(rec.reconcile_once())
    assert result.actions == [] and not result.errors
    assert sorted(queued.connected) == sorted(i.host_id for i in h.cloud.running())
    assert all(x.state == HostState.READY for x in h.store.hosts() if x.state in HOST_ALIVE)


def test_new_host_workers_start_in_the_step_that_sees_it_running(tmp_path: Path) -> None:
    """Launch latency 0: the step after the launch sees the instance running, and in
    that same step (follow-up passes) bootstraps the host and starts both workers.
    Before the passes it took two more steps: one to bootstrap, one to start."""
    h = Harness(tmp_path, make_cfg(2))
    h.cloud.launch_latency_s = 0
    first = asyncio.run(h.rec.reconcile_once())
    assert first.passes == 1 and h.running() == [] and len(h.cloud.launch_calls) == 1
    h.clock.advance(15)
    seen_at = h.clock.now()
    second = asyncio.run(h.rec.reconcile_once())
    assert second.passes == 3 and not second.failed
    assert h.running() == ["w0", "w1"] and h.live_sessions() == ["w0", "w1"]
    assert h.store.host("p-1").state == HostState.READY
    # booting, bootstrapped and started at the one step's time
    host_events = [e for e in h.store.events(entity="host", entity_id="p-1") if e.to_state]
    assert [e.to_state for e in host_events][-3:] == ["booting", "bootstrapping", "ready"]
    assert all(e.ts == seen_at for e in host_events[-3:])
    started = [e for e in h.store.events(entity="worker") if e.to_state == "running"]
    assert sorted(e.entity_id for e in started) == ["w0", "w1"]
    assert all(e.ts == seen_at for e in started)
    assert len(h.cloud.launch_calls) == 1  # the extra passes launched nothing more
    # Nobody waits now: the next step is one pass and does nothing.
    h.clock.advance(15)
    third = asyncio.run(h.rec.reconcile_once())
    assert third.passes == 1 and third.actions == []


def test_follow_up_passes_keep_the_budget(tmp_path: Path) -> None:
    """Budget for one host ($0.03/h each), four workers: the passes that bootstrap it and
    start two workers never launch a second host for the other two."""
    h = Harness(tmp_path, make_cfg(4, budget=0.05))
    h.cloud.launch_latency_s = 0
    for _ in range(5):
        result = asyncio.run(h.rec.reconcile_once())
        assert len(h.cloud.running()) <= 1
        assert result.passes <= 3
        h.clock.advance(15)
    assert h.running() == ["w0", "w1"] and len(h.cloud.launch_calls) == 1
    assert {w.worker_id for w in h.store.workers()
            if w.state == WorkerState.PENDING} == {"w2", "w3"}


def test_no_follow_up_pass_when_no_worker_waits(tmp_path: Path) -> None:
    """A pool minimum's host with no worker for it: the step that sees it running marks
    it booting and stops there (one pass: nothing to gain from listing and probing
    again); the next step bootstraps it, as before the passes."""
    cfg = make_cfg(0)
    pool = cfg.fleet.pools[0].model_copy(update={"min_hosts": 1})
    cfg = cfg.model_copy(update={"fleet": cfg.fleet.model_copy(update={"pools": [pool]})})
    h = Harness(tmp_path, cfg)
    h.cloud.launch_latency_s = 0
    h.tick(1)
    seen = asyncio.run(h.rec.reconcile_once())
    assert seen.passes == 1 and h.store.host("p-1").state == HostState.BOOTING
    h.clock.advance(15)
    asyncio.run(h.rec.reconcile_once())
    assert h.store.host("p-1").state == HostState.READY
