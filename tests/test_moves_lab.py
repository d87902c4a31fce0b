"""Consolidation and rebalancing on real lab hosts (tests/fixtures/lab_fleet.py): a
worker really moves through the checkpoint (stop, commit what is uncommitted, push,
start on the other host from its branch, task typed again), no commit is lost, and
the host it leaves is terminated by the idle-host rule."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from czarina_fleet.cli.dashboard import dashboard_rows
from czarina_fleet.clock import FakeClock
from czarina_fleet.model.config import RebalanceSettings
from czarina_fleet.model.states import HostState, WorkerState
from czarina_fleet.remote import netns
from tests.fixtures.lab_fleet import TASK, Lab, lab, lab_config, set_lab_load
from tests.fixtures.netns_hosts import git
from tests.test_spot_recovery_lab import fleet_name

pytestmark = [pytest.mark.netns, pytest.mark.timeout(300)]
__all__ = ["fleet_name"]  # a fixture used here, defined there

PRICE = 1.0  # USD per hour: emptying a host pays (docs/config.md, fleet.rebalance)


async def step_until(lb: Lab, done: object, limit: int = 20) -> None:
    for _ in range(limit):
        result = await lb.reconciler.reconcile_once()
        assert not result.errors, result.errors
        lb.clock.advance(15)
        if done():  # type: ignore[operator]
            return
    raise AssertionError(f"not reached; events: {[e.reason for e in lb.store.events()][-20:]}")


def running(lb: Lab) -> dict[str, str]:
    return {w.worker_id: w.host_id or "" for w in lb.store.workers()
            if w.state == WorkerState.RUNNING}


def test_consolidation_moves_a_worker_with_every_commit_and_the_empty_host_terminates(
        tmp_path: Path, writable_origin: Path, fleet_name: str) -> None:
    # Every lab host reports this machine's load, busy with other tests: rebalancing is
    # off here, and a target's load may be anything (the rebalance test sets loads).
    moves = RebalanceSettings(enabled=False, settle_s=0, load_high=1000, load_low=1000)
    cfg = lab_config(tmp_path, writable_origin, fleet_name, workers=("w1", "w2", "w3"),
                     location="auto", max_hosts=2, slots=2, idle_timeout_s=30,
                     rebalance=moves)
    lb = lab(tmp_path, writable_origin, fleet_name, clock=FakeClock(time.time()),
             price_per_hour=PRICE, cfg=cfg)

    async def scenario() -> None:
        await step_until(lb, lambda: len(running(lb)) == 3)
        on = running(lb)
        assert len(set(on.values())) == 2  # two hosts of two slots: one full, one half
        # each remaining worker: its agent's commit, one of the developer's, and a file
        # not committed at all
        made: dict[str, set[str]] = {}
        for w in ("w1", "w3"):
            host = lb.host(w)
            await lb.wait_for(host, "git log --format=%s", "stand-in agent: step 1", worker=w)
            await lb.commit(host, f"work of {w}", worker=w)
            await lb.sh(host, f'echo "half done by {w}" > uncommitted.txt', worker=w)
            made[w] = await lb.history(host, worker=w)
        # w2 is removed from the configuration: both hosts are half used
        lb.reconfigure(lab_config(tmp_path, writable_origin, fleet_name, workers=("w1", "w3"),
                                  location="auto", max_hosts=2, slots=2, idle_timeout_s=30,
                                  rebalance=moves))
        await step_until(lb, lambda: any(e.reason.startswith("consolidate:")
                                         for e in lb.store.move_events(0)))
        [move] = [e for e in lb.store.move_events(0) if e.reason.startswith("consolidate:")]
        mover, stayer = move.entity_id, ({"w1", "w3"} - {move.entity_id}).pop()
        left = on[mover]
        assert move.reason.startswith(f"consolidate: empty host {left} ($1.0000/h)")
        await step_until(lb, lambda: running(lb).get(mover) == on[stayer])
        new = lb.host(mover)
        assert set(running(lb).values()) == {new.host_id}  # both on one host now
        # no commit lost, the uncommitted file committed by the checkpoint
        assert made[mover] <= await lb.history(new, worker=mover)
        assert await lb.sh(new, "cat uncommitted.txt", worker=mover) == f"half done by {mover}"
        subjects = await lb.sh(new, "git log --format=%s", worker=mover)
        assert f"czarina-fleet checkpoint: uncommitted work of worker {mover}" in subjects
        branch = "feat/spot-w1" if mover == "w1" else f"feat/{mover}"
        pushed = git("rev-list", branch, cwd=writable_origin).split()
        assert made[mover] <= set(pushed)
        # the task was typed in again on the new host
        await lb.wait_for(new, "cat TASKS_RECEIVED.txt", TASK + "\n" + TASK, worker=mover)
        # `czarina status` says why it moved
        now = lb.clock.now()
        rows = {r.worker: r for r in dashboard_rows(
            lb.reconciler.desired(), lb.store.workers(), lb.store.hosts(),
            {new.host_id: await lb.access.probe(new)}, now, moves=lb.store.move_events(now - 3600))}
        assert rows[mover].status == "working" and rows[stayer].last_move is None
        assert rows[mover].last_move == {"at": move.ts, "reason": move.reason}
        assert str(rows[mover].cells(now)[-1]).startswith("moved ")
        assert move.reason in str(rows[mover].cells(now)[-1])
        # the emptied host idles out and is terminated: gone from the lab too
        await step_until(lb, lambda: lb.store.host(left).state  # type: ignore[union-attr]
                         == HostState.TERMINATED)
        assert left not in {h.host_id for h in netns.list_hosts(fleet=fleet_name)}
        assert running(lb) == {"w1": new.host_id, "w3": new.host_id}
        await lb.access.pool.close()

    asyncio.run(scenario())


def test_an_overloaded_host_gives_one_worker_to_the_host_with_room(
        tmp_path: Path, writable_origin: Path, fleet_name: str) -> None:
    moves = RebalanceSettings(consolidate=False, settle_s=0)
    cfg = lab_config(tmp_path, writable_origin, fleet_name, workers=("w1", "w2", "w3"),
                     location="auto", max_hosts=2, slots=2, rebalance=moves)
    lb = lab(tmp_path, writable_origin, fleet_name, clock=FakeClock(time.time()), cfg=cfg)

    async def scenario() -> None:
        await step_until(lb, lambda: len(running(lb)) == 3)
        on = running(lb)
        [hot] = [h for h in set(on.values()) if list(on.values()).count(h) == 2]
        [cool] = set(on.values()) - {hot}
        set_lab_load(fleet_name, hot, 8.0)   # 4.0 per CPU (2 CPUs)
        set_lab_load(fleet_name, cool, 0.2)
        made: dict[str, set[str]] = {}
        for w in (w for w, h in on.items() if h == hot):
            await lb.wait_for(lb.host(w), "git log --format=%s", "stand-in agent: step 1",
                              worker=w)
            await lb.commit(lb.host(w), f"work of {w}", worker=w)
            await lb.sh(lb.host(w), f'echo "half done by {w}" > uncommitted.txt', worker=w)
            made[w] = await lb.history(lb.host(w), worker=w)
        await step_until(lb, lambda: any(e.reason.startswith("rebalance:")
                                         for e in lb.store.move_events(0)))
        [move] = [e for e in lb.store.move_events(0) if e.reason.startswith("rebalance:")]
        assert move.reason.startswith(f"rebalance: host {hot} overloaded (load 4.00 per CPU")
        # it was seen overloaded for three probes first: three samples kept
        assert len(lb.store.samples()[hot]) >= 3 and cool not in lb.store.samples()
        mover = move.entity_id
        await step_until(lb, lambda: running(lb).get(mover) == cool)
        new = lb.host(mover)
        assert made[mover] <= await lb.history(new, worker=mover)
        assert await lb.sh(new, "cat uncommitted.txt", worker=mover) == f"half done by {mover}"
        await lb.wait_for(new, "cat TASKS_RECEIVED.txt", TASK + "\n" + TASK, worker=mover)
        # still hot, but no host has room: nothing else moves, nothing is stopped
        for _ in range(6):
            await lb.reconciler.reconcile_once()
            lb.clock.advance(15)
        assert len([e for e in lb.store.move_events(0) if e.reason.startswith("rebalance")]) == 1
        assert sorted(running(lb)) == ["w1", "w2", "w3"]
        await lb.access.pool.close()

    asyncio.run(scenario())
