"""Consolidation through the real reconciler, executor and store, against the fake
cloud and the in-memory runtime: one move, the worker starts on the host its slot was
held on, the emptied host idles out and is terminated. The event log says why."""

from __future__ import annotations

import asyncio
from pathlib import Path

from czarina_fleet.model.config import (
    FleetConfig,
    FleetSettings,
    PoolSpec,
    ProjectInfo,
    RebalanceSettings,
    ScalingLimits,
    WorkerSpec,
)
from czarina_fleet.model.location import parse_location
from czarina_fleet.model.states import HostState, WorkerState
from tests.test_reconciler import Harness


def make_cfg(ids: list[str], **moves: object) -> FleetConfig:
    pool = PoolSpec(name="p", provider="fake", instance_types=["t3.large"], regions=["r"],
                    max_hosts=4, slots_per_host=2)
    return FleetConfig(
        source=Path("c.json"), format="json", project=ProjectInfo(), project_root=Path("."),
        workers=[WorkerSpec(id=i, branch=f"b-{i}", location=parse_location("auto"))
                 for i in ids],
        fleet=FleetSettings(name="test", pools=[pool],
                            scaling=ScalingLimits(idle_timeout_s=120),
                            rebalance=RebalanceSettings(**moves)))  # type: ignore[arg-type]


def test_half_empty_hosts_are_consolidated_and_the_emptied_one_terminated(tmp_path: Path) -> None:
    h = Harness(tmp_path, make_cfg(["w0", "w1", "w2", "w3"], consolidate=False))
    h.cloud.price_per_hour = 1.0
    h.tick(8)
    assert h.running() == ["w0", "w1", "w2", "w3"] and len(h.cloud.running()) == 2
    on = {w.worker_id: w.host_id for w in h.store.workers()}
    first, second = sorted(set(on.values()))
    keep = [min(w for w in on if on[w] == first), min(w for w in on if on[w] == second)]
    # two workers removed, one from each host: two hosts half used
    h.rec = h.build(make_cfg(keep, settle_s=0))
    h.tick(30)
    assert h.running() == sorted(keep)
    assert h.live_sessions() == sorted(keep)  # each exactly once
    hosts = {x.host_id: x.state for x in h.store.hosts()}
    assert sorted(hosts.values()) == [HostState.READY, HostState.TERMINATED]
    [left] = [x for x, s in hosts.items() if s == HostState.READY]
    assert {w.host_id for w in h.store.workers()} == {left}
    moved = [e for e in h.store.events(500, "worker") if e.to_state == WorkerState.CHECKPOINTING]
    assert len(moved) == 1 and moved[0].reason.startswith("consolidate: empty host")
    assert h.store.move_events(0)[0].reason == moved[0].reason
    assert h.store.samples() == {}  # no host was ever over: no sample kept


def test_consolidation_off_keeps_the_hosts(tmp_path: Path) -> None:
    h = Harness(tmp_path, make_cfg(["w0", "w1", "w2", "w3"], consolidate=False))
    h.cloud.price_per_hour = 1.0
    h.tick(8)
    on = {w.worker_id: w.host_id for w in h.store.workers()}
    keep = sorted({min(w for w in on if on[w] == host) for host in set(on.values())})
    h.rec = h.build(make_cfg(keep, consolidate=False))
    h.tick(30)
    assert [x.state for x in h.store.hosts()] == [HostState.READY, HostState.READY]


def test_an_overloaded_host_gives_one_worker_away_and_samples_are_kept_only_while_hot(
        tmp_path: Path) -> None:
    h = Harness(tmp_path, make_cfg(["w0", "w1", "w2"], consolidate=False))
    h.tick(8)
    on = {w.worker_id: w.host_id for w in h.store.workers()}
    [busy] = [x for x in set(on.values()) if list(on.values()).count(x) == 2]
    h.tick(4)  # the other host has room for one
    assert h.store.samples() == {}
    h.runtime.loads[busy] = 4.0  # 2.0 per CPU
    h.tick(2)
    assert [len(v) for v in h.store.samples().values()] == [2]  # hot, not yet for 3 probes
    assert not [e for e in h.store.move_events(0) if e.reason.startswith("rebalance")]
    h.tick(1)
    [move] = [e for e in h.store.move_events(0) if e.reason.startswith("rebalance")]
    assert move.reason.startswith(f"rebalance: host {busy} overloaded (load 2.00 per CPU")
    h.tick(3)
    assert h.running() == ["w0", "w1", "w2"] and h.live_sessions() == h.running()
    assert h.store.worker(move.entity_id).host_id != busy  # type: ignore[union-attr]
    h.runtime.loads[busy] = 0.2
    h.tick(2)
    assert h.store.samples() == {}  # cleared under load_low: forgotten


def test_a_moved_worker_starts_on_its_held_slot_in_the_step_that_moved_it(
        tmp_path: Path) -> None:
    """The checkpoint leaves the worker waiting (placing) on a ready host whose slot was
    held: a follow-up pass of the same step starts it there (it waited one step more
    before the passes)."""
    h = Harness(tmp_path, make_cfg(["w0", "w1", "w2"], consolidate=False))
    h.tick(12)
    on = {w.worker_id: w.host_id for w in h.store.workers()}
    [busy] = [x for x in set(on.values()) if list(on.values()).count(x) == 2]
    h.runtime.loads[busy] = 4.0  # 2.0 per CPU
    h.tick(2)  # hot for two probes: not yet
    assert h.store.move_events(0) == []
    at = h.clock.now()
    result = asyncio.run(h.rec.reconcile_once())
    [move] = h.store.move_events(0)
    assert move.ts == at and result.passes == 2 and not result.failed
    moved = h.store.worker(move.entity_id)
    assert moved is not None and moved.state == WorkerState.RUNNING
    assert moved.host_id != busy and moved.started_at == at
    assert h.live_sessions() == ["w0", "w1", "w2"]  # each exactly once
