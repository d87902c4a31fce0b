"""AUTO_SCALE draws on the hopper: waiting items bring scaled-down workers back (idle
workers take items first), never beyond max_workers, and keep idle workers from being
scaled down while an item waits. Pure policy, then the reconciler with real hopper
files on disk and the simulator's runtime (whose panes go idle on command)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from czarina_fleet.clock import FakeClock
from czarina_fleet.controller.runtime.compose import build_reconciler
from czarina_fleet.controller.state.store import Store
from czarina_fleet.model.config import (
    FleetConfig,
    FleetSettings,
    HealthThresholds,
    PoolSpec,
    ProjectInfo,
    ScalingLimits,
    WorkerSpec,
)
from czarina_fleet.model.location import parse_location
from czarina_fleet.model.states import WorkerState
from czarina_fleet.policies.scaling import select_active
from czarina_fleet.policies.worker_health import worker_status
from czarina_fleet.providers.fake import FakeCloud, FakeProvider
from czarina_fleet.sim.cloud import SimRuntime

ORDER = ["a", "b", "c", "d"]


def test_waiting_items_bring_back_scaled_down_workers_after_idle_ones() -> None:
    # a runs idle, b-d scaled down; 3 items: a takes one, two more workers come back
    d = select_active(ORDER, idle={"a"}, scaled_down={"b", "c", "d"}, min_workers=1,
                      max_workers=4, auto_scale=True, waiting=3)
    assert d.run == ["a", "b", "c"] and d.scale_down == []
    # never beyond max_workers
    d = select_active(ORDER, idle=set(), scaled_down={"c", "d"}, min_workers=0,
                      max_workers=3, auto_scale=True, waiting=10)
    assert d.run == ["a", "b", "c"]


def test_idle_workers_stay_while_items_wait_and_go_when_none_do() -> None:
    d = select_active(ORDER, idle={"c", "d"}, scaled_down=set(), min_workers=1,
                      max_workers=4, auto_scale=True, waiting=1)
    assert d.scale_down == ["d"]  # one idle worker takes the item, the other goes
    d = select_active(ORDER, idle={"c", "d"}, scaled_down=set(), min_workers=1,
                      max_workers=4, auto_scale=True, waiting=0)
    assert d.scale_down == ["d", "c"]
    d = select_active(ORDER, idle={"c", "d"}, scaled_down=set(), min_workers=1,
                      max_workers=4, auto_scale=False, waiting=0)
    assert d.run == ORDER and d.scale_down == []


ITEM = "# Enhancement #{n}: item {n}\n\n**Priority:** High\n**Status:** Open\n\nDo it.\n"


def test_reconciler_scales_with_the_hopper_on_disk(tmp_path: Path) -> None:
    clock = FakeClock()
    cloud = FakeCloud(clock, launch_latency_s=20)
    runtime = SimRuntime(cloud)
    store = Store(tmp_path / "fleet.db", clock, synchronous="OFF")
    pool = PoolSpec(name="p", provider="fake", instance_types=["t"], regions=["r"],
                    max_hosts=10, slots_per_host=2)
    cfg = FleetConfig(
        source=tmp_path / "c.json", format="json", project=ProjectInfo(), project_root=tmp_path,
        workers=[WorkerSpec(id=w, branch=f"feat/{w}", location=parse_location("pool:p"))
                 for w in ORDER],
        fleet=FleetSettings(name="t", pools=[pool], scaling=ScalingLimits(
            min_workers=1, max_workers=4, auto_scale=True, idle_timeout_s=300),
            health=HealthThresholds(idle_after_s=300)))
    rec = build_reconciler(cfg, store, {"p": FakeProvider(cloud, "p", "t")}, runtime, clock,
                     backoff_s=0.1)

    def tick(n: int) -> None:
        for _ in range(n):
            asyncio.run(rec.reconcile_once())
            clock.advance(15)

    def running() -> list[str]:
        return sorted(w.worker_id for w in store.workers() if w.state == WorkerState.RUNNING)

    tick(8)
    assert running() == ORDER
    for w in ORDER:  # every pane goes quiet: all but min_workers are scaled down
        runtime.idle_since[w] = clock.now()
    tick(30)
    assert running() == ["a"]
    # scaled down is a state of its own (not an error text), and status says so
    states = {w.worker_id: w.state for w in store.workers()}
    assert states == {"a": WorkerState.RUNNING, "b": WorkerState.SCALED_DOWN,
                      "c": WorkerState.SCALED_DOWN, "d": WorkerState.SCALED_DOWN}
    assert worker_status(store.worker("b"), None, None, None, now=clock.now()) == "scaled down"

    hopper = tmp_path / ".czarina" / "hopper"
    hopper.mkdir(parents=True)
    for n in (1, 2, 3):
        (hopper / f"item-{n}.md").write_text(ITEM.format(n=n))
    (hopper / "archived").mkdir()
    (hopper / "archived" / "old.md").write_text(ITEM.format(n=9))  # done: not demand
    tick(8)
    assert running() == ["a", "b", "c"]  # a (idle) takes one item, b and c the others
    tick(8)
    assert running() == ["a", "b", "c"]  # stable: the same items do not count twice

    for n in (1, 2, 3):  # the czar hands the items out and they are done: archived
        (hopper / f"item-{n}.md").rename(hopper / "archived" / f"item-{n}.md")
    for w in ORDER:
        runtime.idle_since[w] = clock.now()
    tick(30)
    assert running() == ["a"]  # idle again, no demand: back to min_workers


def test_an_unreadable_item_is_logged_once_while_it_lasts(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    cloud = FakeCloud(clock, launch_latency_s=0)
    store = Store(tmp_path / "fleet.db", clock, synchronous="OFF")
    cfg = FleetConfig(
        source=tmp_path / "c.json", format="json", project=ProjectInfo(), project_root=tmp_path,
        workers=[WorkerSpec(id="a", branch="feat/a", location=parse_location("pool:p"))],
        fleet=FleetSettings(name="t", pools=[PoolSpec(
            name="p", provider="fake", instance_types=["t"], regions=["r"], max_hosts=1)],
            scaling=ScalingLimits(auto_scale=True)))
    rec = build_reconciler(cfg, store, {"p": FakeProvider(cloud, "p", "t")}, SimRuntime(cloud),
                           clock, backoff_s=0.1)
    hopper = tmp_path / ".czarina" / "hopper"
    hopper.mkdir(parents=True)
    (hopper / "broken.md").write_bytes(b"\xff\xfe not text")

    def warnings() -> int:
        return sum("hopper: " in r.getMessage() and "broken.md" in r.getMessage()
                   for r in caplog.records)

    caplog.set_level("WARNING", logger="czarina_fleet")
    for _ in range(3):
        asyncio.run(rec.reconcile_once())
        clock.advance(15)
    assert warnings() == 1  # not once per step (and pass)
    (hopper / "broken.md").write_text(ITEM.format(n=1))  # fixed ...
    asyncio.run(rec.reconcile_once())
    (hopper / "broken.md").write_bytes(b"\xff\xfe again")  # ... and broken again: said again
    asyncio.run(rec.reconcile_once())
    assert warnings() == 2
