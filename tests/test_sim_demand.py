"""The simulator's demand model: hopper items arrive, wait, are taken by free workers and
done after their duration, through the real controller reading real hopper files. Waits
here are simulated-time figures, exact and deterministic (no wall-clock timing)."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from czarina_fleet.errors import UserError
from czarina_fleet.sim.demand import percentile
from czarina_fleet.sim.oracle import oracle
from czarina_fleet.sim.run import Simulation
from czarina_fleet.sim.trace import load_trace


def write(tmp: Path, events: list[dict[str, Any]], *, workers: int = 1, slots: int = 2,
          min_workers: int = 1, duration: str = "1h", **fleet: Any) -> Path:
    data = {
        "name": "items", "duration": duration, "seed": 3, "tick": 15,
        "config": {
            "fleet": {"name": "t", "pools": [{
                "name": "a", "provider": "fake", "instance_types": ["t"], "regions": ["r"],
                "max_hosts": 4, "slots_per_host": slots}],
                "scaling": {"min_workers": min_workers, "max_workers": workers,
                            "auto_scale": True, "idle_timeout_s": 300}, **fleet},
            "workers": [{"id": f"w{i:02d}", "branch": f"b{i}", "location": "auto"}
                        for i in range(workers)],
        },
        "cloud": {"launch_latency": "60s", "prices": {"a": 0.1}},
        "events": events,
    }
    path = tmp / "trace.json"
    path.write_text(json.dumps(data))
    return path


def simulate(path: Path, tmp: Path) -> tuple[Simulation, dict[str, Any]]:
    sim = Simulation(load_trace(path), tmp / "state")
    return sim, asyncio.run(sim.run())


def item(at: str, id: str, duration: str, **kw: Any) -> dict[str, Any]:
    return {"kind": "item", "at": at, "id": id, "duration": duration, **kw}


def test_nearest_rank_percentile() -> None:
    values = [float(v) for v in range(1, 21)]
    assert percentile(values, 95) == 19.0 and percentile(values, 50) == 10.0
    assert percentile(values, 100) == 20.0 and percentile([7.0], 95) == 7.0
    assert percentile([], 50) is None


def test_waits_on_a_hand_checked_trace(tmp_path: Path) -> None:
    # One worker, up from 1m30s. i1 at 5m is taken at once and done at 15m. i2 (medium)
    # and i3 (high, arrived later) wait: the more urgent i3 goes first at 15m (waited
    # 8m), i2 at 20m (waited 14m). Waits 0, 480, 840 s: p50 480, p95 840.
    path = write(tmp_path, [item("5m", "i1", "10m"), item("6m", "i2", "5m"),
                            item("7m", "i3", "5m", priority="high")])
    sim, report = simulate(path, tmp_path)
    assert sim.demand is not None
    got = {i.spec.id: (i.started_at, i.done_at, i.worker) for i in sim.demand.items.values()}
    assert got == {"i1": (300.0, 900.0, "w00"), "i3": (900.0, 1200.0, "w00"),
                   "i2": (1200.0, 1500.0, "w00")}
    d = report["demand"]
    assert (d["items"], d["done"], d["not_started"]) == (3, 3, 0)
    assert (d["wait_p50_s"], d["wait_p95_s"], d["wait_max_s"]) == (480.0, 840.0, 840.0)
    assert d["work_hours"] == pytest.approx(20 / 60)
    # The hopper the controller read: done items are gone from it.
    hopper = tmp_path / "state" / "project" / ".czarina" / "hopper"
    assert hopper.is_dir() and not list(hopper.glob("*.md"))
    assert oracle(load_trace(path))["cost_usd"] == pytest.approx(20 / 60 * 0.1 / 2, abs=1e-6)


def test_an_item_left_waiting_counts_until_the_end(tmp_path: Path) -> None:
    path = write(tmp_path, [item("10m", "long", "2h"), item("20m", "late", "5m")],
                 duration="1h")
    _, report = simulate(path, tmp_path)
    d = report["demand"]
    assert (d["done"], d["not_started"]) == (0, 1)
    assert d["wait_max_s"] == 2400.0  # "late" never ran: censored at the end, not dropped


def _waits(sim: Simulation) -> dict[str, float]:
    """Each started item's wait, from its arrival to a worker taking it."""
    assert sim.demand is not None
    return {i.spec.id: i.started_at - i.spec.at for i in sim.demand.items.values()
            if i.started_at is not None}


def test_a_worker_that_took_an_item_is_not_free_for_the_next(tmp_path: Path) -> None:
    # The fleet starts empty (nothing to do): a at 5m starts w00 on a new host, after the
    # launch latency (60 s). b at 20m starts w01 there, which takes b at once. c at 22m
    # must start w02 now: w01 is freshly started but has b, so it cannot take c (c used
    # to wait until w01 was 10 minutes old).
    path = write(tmp_path, [item("5m", "a", "2h"), item("20m", "b", "2h"),
                            item("22m", "c", "2h")], workers=3, slots=4, min_workers=0)
    sim, _ = simulate(path, tmp_path)
    waits = _waits(sim)
    assert waits["a"] == 60.0 and waits["b"] <= 30 and waits["c"] <= 30
    assert {i.worker for i in sim.demand.items.values()} == {"w00", "w01", "w02"}


def test_busy_workers_load_their_host(tmp_path: Path) -> None:
    # Both workers on one 2-slot (2-core) host: a 3-core build and a half-core item.
    path = write(tmp_path, [item("5m", "build", "30m", cpu=3), item("5m", "x", "30m")],
                 workers=2, min_workers=2)
    sim = Simulation(load_trace(path), tmp_path / "state")
    loads: list[float] = []
    tick = sim._tick

    async def observe() -> None:
        await tick()
        for h in sim.store.hosts():
            if sim.t() == 600 and h.pool == "a":
                probe = await sim.runtime.probe(h)
                loads.append(probe.load_per_cpu)
    sim._tick = observe  # type: ignore[method-assign]
    asyncio.run(sim.run())
    assert loads == [pytest.approx(1.75)]  # 3 + 0.5 cores of items on 2 cores


def test_item_ids_are_unique(tmp_path: Path) -> None:
    path = write(tmp_path, [item("5m", "i1", "10m"), item("6m", "i1", "5m")])
    with pytest.raises(UserError, match='item "i1" arrives twice') as e:
        load_trace(path)
    assert "$.events[1].id" in str(e.value)


def test_busy_workers_overload_a_host_and_the_planner_moves_one(tmp_path: Path) -> None:
    # Three workers always on: w00 and w01 share a-1, w02 is alone on a-2 (4 cores each).
    # Two 3.5-core builds go to w00 and w01: a-1 runs at 1.75 per core, over load_high
    # (1.5) probe after probe, so one of them moves to a-2, which has room for it.
    path = write(tmp_path, [item("5m", "b1", "1h", cpu=3.5), item("5m", "b2", "1h", cpu=3.5)],
                 workers=3, min_workers=3, duration="2h")
    data = json.loads(path.read_text())
    data["cloud"]["host_cpus"] = {"a": 4}
    path.write_text(json.dumps(data))
    _, report = simulate(path, tmp_path)
    assert report["moves"]["by_cause"] == {"planned": 1}
    assert report["demand"]["done"] == 2 and report["invariants"]["single_session"]["held"]
    with sqlite3.connect(tmp_path / "state" / "fleet.db") as db:
        [(why,)] = db.execute("SELECT reason FROM events WHERE entity = 'worker' AND "
                              "to_state = 'checkpointing'").fetchall()
    assert why.startswith("rebalance: host a-1 overloaded") and "a-2 has room" in why


def test_an_item_on_a_full_fleet_waits_the_launch_latency_and_part_of_a_tick(
        tmp_path: Path) -> None:
    """One-slot hosts; a fresh hopper fleet starts no worker before an item waits, so
    every item needs a new host: it waits until the next step (the launch),
    then the launch latency (60 s); the step that sees the instance running bootstraps
    it and starts the worker (follow-up passes), and nothing more: 20m arrives on a step
    (60 s), 22m07s waits 8 s for one (68 s), 24m14s 1 s (61 s). Before the passes each
    wait was 30 s longer (a step to bootstrap, one to start)."""
    path = write(tmp_path, [item("20m", "i1", "30m"), item("22m7s", "i2", "30m"),
                            item("24m14s", "i3", "30m")], workers=3, slots=1, min_workers=0)
    sim, report = simulate(path, tmp_path)
    waits = _waits(sim)
    assert waits == {"i1": 60.0, "i2": 68.0, "i3": 61.0}
    assert report["demand"]["wait_max_s"] <= 60 + 15  # launch latency + one tick
