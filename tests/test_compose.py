"""One composition root: the simulator and the controller build their reconciler and
their cost-accrual job through controller/runtime/compose.py, so the same scenario run
both ways gives the same ledger."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from czarina_fleet.controller.runtime.compose import accrual_job
from czarina_fleet.controller.runtime.cost_accrual import accrue_now
from czarina_fleet.controller.runtime.scheduler import Controller
from czarina_fleet.controller.state.store import Store
from czarina_fleet.model.fleet import LedgerEntry
from czarina_fleet.sim.run import Simulation
from czarina_fleet.sim.trace import load_trace

TICK = 15.0
SCALE_AT, END = 600.0, 1500.0


def scenario(tmp: Path) -> Path:
    """Three workers on a spot pool of two-slot hosts; at 10 min the user scales to one."""
    data = {
        "name": "compose", "duration": "25m", "seed": 3,
        "config": {
            "fleet": {"name": "compose",
                      "pools": [{"name": "a", "provider": "fake", "instance_types": ["t"],
                                 "regions": ["r"], "spot": True, "max_hosts": 3,
                                 "slots_per_host": 2}],
                      "scaling": {"idle_timeout_s": 120, "reconcile_interval_s": TICK}},
            "workers": [{"id": f"w{i}", "branch": f"b{i}", "location": "pool:a"}
                        for i in range(3)],
        },
        "cloud": {"launch_latency": "45s", "prices": {"a": 0.36}},
        "events": [{"kind": "scale", "at": f"{SCALE_AT:g}s", "max": 1}],
    }
    path = tmp / "trace.json"
    path.write_text(json.dumps(data))
    return path


def rows(store: Store) -> list[tuple[object, ...]]:
    def key(e: LedgerEntry) -> tuple[object, ...]:
        return (round(e.ts, 6), e.host_id, e.worker_id or "", round(e.usd, 9))
    return sorted(key(e) for e in store.ledger())


async def drive_as_controller(sim: Simulation) -> None:
    """The controller's way: the scheduled `Controller` object's reconcile step every
    interval and the accrual job at its own period (first run one period after start),
    then the final accrual `controller run` makes when it stops."""
    controller = Controller(sim.rec, interval_s=TICK)
    job = accrual_job(sim.store, sim.clock, TICK)
    next_job, scaled = job.period_s, False
    while sim.t() < END:
        if not scaled and sim.t() >= SCALE_AT:
            sim.store.set_overrides(max_workers=1, reason="user")
            scaled = True
        await controller.reconcile()
        if sim.t() >= next_job:
            await job.run()
            while next_job <= sim.t():
                next_job += job.period_s
        sim.clock.advance(TICK)
    accrue_now(sim.store, sim.clock)


def test_simulator_and_controller_give_identical_ledgers(tmp_path: Path) -> None:
    loaded = load_trace(scenario(tmp_path))
    (tmp_path / "sim").mkdir()
    (tmp_path / "ctl").mkdir()
    simulated = Simulation(loaded, tmp_path / "sim")
    report = asyncio.run(simulated.run())
    simulated_store = Store(tmp_path / "sim" / "fleet.db", simulated.clock)

    world = Simulation(loaded, tmp_path / "ctl")  # the same cloud, clock and providers
    asyncio.run(drive_as_controller(world))

    sim_rows, ctl_rows = rows(simulated_store), rows(world.store)
    assert report["workers"]["peak_running"] == 3  # the scenario really ran and scaled
    assert {r[2] for r in sim_rows} >= {"w0", "w1", "w2"}
    assert sim_rows == ctl_rows
    world.store.close()
    simulated_store.close()


def test_the_simulator_accrues_before_who_runs_where_changes(tmp_path: Path) -> None:
    """The hook the controller relies on is wired in the simulator too: a worker stopped
    between two runs of the accrual job is billed up to its stop and not after."""
    loaded = load_trace(scenario(tmp_path))
    sim = Simulation(loaded, tmp_path)
    assert sim.rec.before_act is not None
    report = asyncio.run(sim.run())
    store = Store(tmp_path / "fleet.db", sim.clock)
    stopped = {e.worker_id: e.ts + e.seconds for e in store.ledger() if e.worker_id}
    origin = sim.origin
    # w1 and w2 stop at the scale-down step (at SCALE_AT, not at the next accrual)
    assert report["workers"]["running_at_end"] == 1
    assert sorted(round(t - origin) for w, t in stopped.items() if w != "w0") == [
        SCALE_AT, SCALE_AT]
    store.close()
