"""Costs are billed to the workers that really ran: the controller accrues right
before it changes who runs where. The reconciler on the fake cloud (priced hosts), a
real SQLite ledger, on a fake clock."""

from __future__ import annotations

import asyncio
from pathlib import Path

from czarina_fleet.clock import FakeClock
from czarina_fleet.controller.runtime.compose import build_reconciler
from czarina_fleet.controller.runtime.reconciler import Reconciler
from czarina_fleet.controller.state.store import Store
from czarina_fleet.cost.report import total_usd
from czarina_fleet.model.config import (
    FleetConfig,
    FleetSettings,
    PoolSpec,
    ProjectInfo,
    ScalingLimits,
    WorkerSpec,
)
from czarina_fleet.model.location import parse_location
from czarina_fleet.model.states import WorkerState
from czarina_fleet.providers.fake import FakeCloud, FakeProvider, InMemoryRuntime


def cfg(ids: list[str]) -> FleetConfig:
    pool = PoolSpec(name="p", provider="fake", instance_types=["t"], regions=["r"],
                    max_hosts=1, slots_per_host=2)
    return FleetConfig(
        source=Path("c.json"), format="json", project=ProjectInfo(), project_root=Path("."),
        workers=[WorkerSpec(id=w, branch=f"b-{w}", location=parse_location("pool:p"))
                 for w in ids],
        fleet=FleetSettings(name="t", pools=[pool], scaling=ScalingLimits(idle_timeout_s=3600)))


def test_a_stopped_worker_is_billed_until_it_stops_and_not_after(tmp_path: Path) -> None:
    clock = FakeClock()
    cloud = FakeCloud(clock, launch_latency_s=20, price_per_hour=3.6)  # $0.001 per second
    runtime = InMemoryRuntime(cloud)
    store = Store(tmp_path / "fleet.db", clock, synchronous="OFF")

    def reconciler(ids: list[str]) -> Reconciler:
        return build_reconciler(cfg(ids), store, {"p": FakeProvider(cloud, "p", "t")},
                                runtime, clock, backoff_s=0.1)

    rec = reconciler(["a", "b"])
    for _ in range(6):
        asyncio.run(rec.reconcile_once())
        clock.advance(15)
    assert {w.worker_id for w in store.workers() if w.state == WorkerState.RUNNING} == {"a", "b"}
    clock.advance(600)  # both run 10 minutes, with no accrual job in between
    rec = reconciler(["a"])  # b is removed: stopping it closes the interval first
    asyncio.run(rec.reconcile_once())
    clock.advance(600)
    asyncio.run(rec.reconcile_once())  # nothing changes who runs where: no accrual
    stopped_at = clock.now() - 600

    b_cost = sum(e.usd for e in store.ledger() if e.worker_id == "b")
    a_cost = sum(e.usd for e in store.ledger() if e.worker_id == "a")
    assert b_cost > 0.3 * 0.99  # half the host ($0.001/s) for 600+ s while it ran
    assert all(e.ts + e.seconds <= stopped_at + 1e-6 for e in store.ledger()
               if e.worker_id == "b")
    assert a_cost > 0 and abs(a_cost - b_cost) < 1e-9  # the same slot share meanwhile
    watermark = store.ledger_watermark()
    assert watermark is not None and abs(watermark - stopped_at) < 1e-6
    (host,) = store.hosts()
    billed = (watermark - (host.launched_at or 0)) * 3.6 / 3600
    assert abs(total_usd(store.ledger()) - billed) < 1e-9  # exactly once, nothing lost
