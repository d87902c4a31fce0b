"""The simulation loop: the real `Reconciler` (planner + executor + store) against the
simulated cloud, on a `FakeClock`.

Every tick (the trace's `tick`, by default the config's reconcile_interval_s): apply the
trace events that are due, let the cloud take back spot hosts at the trace's rate, run
one `reconcile_once()`, run the controller's cost-accrual job when it is due, and record
what happened; then play the hopper items up to the next tick (sim/demand.py). The
reconciler and the accrual job come from the composition root (compose.py), so cost is
attributed exactly as the controller does. Nothing sleeps: retry back-offs advance the
fake clock, so a simulated day takes seconds. A seed fixes every random choice
(interruptions, retry jitter): the same trace and seed give the same report.

    run_trace(loaded, seed=None) -> dict      (the report; see summary.py)

This module is the setup (cloud, runtime, store, the composed reconciler) and the
loop; what the trace's events do to the simulated world is timeline.py, and the
report read back at the end is summary.py.
"""

from __future__ import annotations

import asyncio
import logging
import random
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from czarina_fleet.clock import FakeClock
from czarina_fleet.controller.runtime.compose import accrual_job, build_reconciler
from czarina_fleet.controller.runtime.cost_accrual import accrue_now
from czarina_fleet.controller.state.store import Store
from czarina_fleet.cost.ledger import spend_rate
from czarina_fleet.hopper import hopper_dir
from czarina_fleet.model.config import PoolSpec
from czarina_fleet.providers.fake import FakeCloud
from czarina_fleet.sim.cloud import SimProvider, SimRuntime, random_interruptions
from czarina_fleet.sim.demand import Demand
from czarina_fleet.sim.report import Recorder
from czarina_fleet.sim.summary import final_report
from czarina_fleet.sim.timeline import apply, interrupt, schedule, take_due
from czarina_fleet.sim.trace import LoadedTrace

START = 1_700_000_000.0  # a fixed epoch: reports must not depend on when they ran


def run_trace(loaded: LoadedTrace, seed: int | None = None,
              state_dir: Path | None = None) -> dict[str, Any]:
    """Run the whole trace and return the report. `state_dir` keeps the store (fleet.db)
    for inspection; by default it lives in a temporary directory."""
    if state_dir is not None:
        return asyncio.run(Simulation(loaded, state_dir, seed).run())
    with tempfile.TemporaryDirectory(prefix="czarina-sim-") as tmp:
        return asyncio.run(Simulation(loaded, Path(tmp), seed).run())


class Simulation:
    def __init__(self, loaded: LoadedTrace, state_dir: Path, seed: int | None = None) -> None:
        trace = loaded.trace
        self.loaded = loaded
        self.seed = trace.seed if seed is None else seed
        self.clock = FakeClock(START)
        self.origin = START
        self.cloud = FakeCloud(self.clock, launch_latency_s=trace.cloud.launch_latency,
                               price_per_hour=trace.cloud.default_price_per_hour)
        self.runtime = SimRuntime(self.cloud)
        self.store = Store(state_dir / "fleet.db", self.clock, synchronous="OFF")
        self.cfg = loaded.cfg
        self.demand: Demand | None = None
        if loaded.items:  # the simulated project's own hopper, which the controller reads
            self.cfg = self.cfg.model_copy(update={"project_root": state_dir / "project"})
            self.demand = Demand(loaded.items, hopper_dir(state_dir / "project"),
                                 self.runtime, self.origin)
            self.runtime.cpus = {p.name: trace.cloud.host_cpus.get(p.name, p.slots_per_host)
                                 for p in self.cfg.fleet.pools}
        # Two generators, so adding a retry somewhere does not move every interruption.
        self.chaos = random.Random(f"interruptions:{self.seed}")
        self.rec = build_reconciler(self.cfg, self.store,
                                    {p.name: self._provider(p) for p in self.cfg.fleet.pools},
                                    self.runtime, self.clock, provider_factory=self._provider,
                                    rng=random.Random(f"executor:{self.seed}"))
        # The controller's accrual job, run on the simulated clock when it is due (the
        # scheduler's first run is one period after the start).
        self.accrual = accrual_job(self.store, self.clock, loaded.tick_s)
        self.next_accrual = self.accrual.period_s
        self.recorder = Recorder(self.origin)
        self.kills: list[tuple[float, str]] = []  # (trace time, host): taken at the deadline

    def _provider(self, pool: PoolSpec) -> SimProvider:
        cloud = self.loaded.trace.cloud
        price = cloud.prices.get(pool.name, cloud.default_price_per_hour)
        return SimProvider(self.cloud, pool.name, self.cfg.fleet_name, price=price,
                           outages=cloud.capacity_outages, origin=self.origin)

    def t(self) -> float:
        return self.clock.now() - self.origin

    async def run(self) -> dict[str, Any]:
        trace = self.loaded.trace
        due = schedule(self.loaded)
        tick, end = self.loaded.tick_s, trace.duration
        self.recorder.fleet_changed(0.0, "start")
        next_tick, last_chaos = 0.0, 0.0
        try:
            with _quiet("czarina_fleet"):
                while self.t() < end:
                    while due and due[0][0] <= self.t():
                        apply(self, due.pop(0)[2])
                    for host in random_interruptions(self.cloud, self.chaos,
                                                     trace.cloud.interruption_rate_per_hour,
                                                     self.t() - last_chaos):
                        interrupt(self, host, "random")
                    take_due(self)
                    last_chaos = self.t()
                    await self._tick()
                    next_tick = min(next_tick + tick, end)  # the last tick may be short
                    if self.demand is not None:
                        self.demand.advance(self.t(), max(next_tick, self.t()),
                                            set(self.runtime.live_sessions()),
                                            {w.id for w in self.cfg.workers})
                    if self.t() < next_tick:
                        self.clock.advance(next_tick - self.t())
                    next_tick = self.t()  # a tick that overran (retry back-offs) shifts the next
                if self.t() < end:
                    self.clock.advance(end - self.t())
                accrue_now(self.store, self.clock)  # as `controller run` does when it stops
                self.recorder.advance(self.t())
            return final_report(self)
        finally:
            self.store.close()

    async def _tick(self) -> None:
        result = await self.rec.reconcile_once()
        self.recorder.actions_failed(self.t(), [(type(r.action).__name__, r.error or "")
                                                for r in result.failed])
        if self.t() >= self.next_accrual:
            await self.accrual.run()
            while self.next_accrual <= self.t():  # missed runs coalesced, as APScheduler does
                self.next_accrual += self.accrual.period_s
        hosts, workers = self.store.hosts(), self.store.workers()
        self.recorder.observe(self.t(), self.rec.desired(), workers,
                              {h.host_id: h for h in hosts}, self.cloud.running(),
                              self.runtime.live_sessions(), spend_rate(hosts))


@contextmanager
def _quiet(name: str) -> Iterator[None]:
    """The executor logs every failed action as a warning; in a simulation they are
    expected (injected) and counted in the report instead."""
    logger = logging.getLogger(name)
    old = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(old)
