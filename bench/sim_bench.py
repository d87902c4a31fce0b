"""How fast the simulator replays a day, and what it adds to the controller it drives
(a benchmark, not a test).

Baseline, measured in the same run: the bare loop the reconciler tests use, i.e.
`reconcile_once()` then `clock.advance(tick)`, on the same fleet (same config, cloud
and store), for the same number of ticks. The simulator adds event application,
cost accrual, the world-side measurements and the invariant checks to each tick; the
ratio says what that costs. Also prints simulated seconds per wall second.
Run with `.venv/bin/python bench/sim_bench.py [TRACE]` (default: the 24-hour example).
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

from czarina_fleet.sim.run import Simulation, run_trace
from czarina_fleet.sim.trace import LoadedTrace, load_trace

ROOT = Path(__file__).resolve().parent.parent


def bare_loop(loaded: LoadedTrace, ticks: int) -> float:
    """Seconds for `ticks` reconciles with nothing around them."""
    with tempfile.TemporaryDirectory() as tmp:
        sim = Simulation(loaded, Path(tmp))

        async def go() -> None:
            for _ in range(ticks):
                await sim.rec.reconcile_once()
                sim.clock.advance(loaded.tick_s)

        started = time.perf_counter()
        asyncio.run(go())
        elapsed = time.perf_counter() - started
        sim.store.close()
        return elapsed


def simulated(loaded: LoadedTrace) -> tuple[float, int]:
    started = time.perf_counter()
    report = run_trace(loaded)
    return time.perf_counter() - started, int(report["ticks"])


def main() -> None:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "examples/traces/autoscale-day.json"
    loaded = load_trace(path)
    runs = [simulated(loaded) for _ in range(3)]
    sim_s = statistics.median(r[0] for r in runs)
    ticks = runs[0][1]
    base_s = statistics.median(bare_loop(loaded, ticks) for _ in range(3))
    duration = loaded.trace.duration
    print(f"{path.name}: {duration / 3600:g} h simulated, {ticks} ticks")
    print(f"  simulator      {sim_s:6.2f} s  ({sim_s / ticks * 1e3:.2f} ms/tick, "
          f"{duration / sim_s:,.0f} simulated s per wall s)")
    print(f"  bare reconcile {base_s:6.2f} s  ({base_s / ticks * 1e3:.2f} ms/tick; no events, "
          "no accrual, no measurements)")
    print(f"  ratio          {sim_s / base_s:6.2f}x")


if __name__ == "__main__":
    main()
