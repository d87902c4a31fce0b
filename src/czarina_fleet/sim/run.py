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

    run_trace(loaded, seed=None) -> dict      (the report; see report.py)
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
from czarina_fleet.controller.state.store import KEEP, Store
from czarina_fleet.cost.ledger import spend_rate
from czarina_fleet.cost.report import total_usd
from czarina_fleet.model.config import PoolSpec, WorkerSpec
from czarina_fleet.model.location import parse_location
from czarina_fleet.providers.base import InstanceState
from czarina_fleet.providers.fake import FakeCloud
from czarina_fleet.sim.cloud import ERRORS, SimProvider, SimRuntime, random_interruptions
from czarina_fleet.sim.demand import Demand
from czarina_fleet.sim.report import Recorder, interruption_summary
from czarina_fleet.sim.trace import (
    FLEET_CHANGES,
    Activity,
    AddWorker,
    ItemArrives,
    LaunchErrors,
    LoadedTrace,
    RemoveWorker,
    ScaleEvent,
    ScheduledInterruption,
)

# How far ahead each cloud says it will take a spot host (docs/spot-recovery.md).
NOTICE_LEAD_S = {"none": 0.0, "aws": 120.0, "gcp": 30.0, "azure": 30.0}
START = 1_700_000_000.0  # a fixed epoch: reports must not depend on when they ran
Due = ScaleEvent | AddWorker | RemoveWorker | Activity | LaunchErrors | ScheduledInterruption


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
            self.demand = Demand(loaded.items, state_dir / "project" / ".czarina" / "hopper",
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
        due = self._schedule()
        tick, end = self.loaded.tick_s, trace.duration
        self.recorder.fleet_changed(0.0, "start")
        next_tick, last_chaos = 0.0, 0.0
        try:
            with _quiet("czarina_fleet"):
                while self.t() < end:
                    while due and due[0][0] <= self.t():
                        self._apply(due.pop(0)[2])
                    for host in random_interruptions(self.cloud, self.chaos,
                                                     trace.cloud.interruption_rate_per_hour,
                                                     self.t() - last_chaos):
                        self._interrupt(host, "random")
                    self._take_due()
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
            return self._report()
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

    # --- the trace's timeline -------------------------------------------------------------

    def _schedule(self) -> list[tuple[float, int, Due]]:
        cloud = self.loaded.trace.cloud
        items: list[tuple[float, int, Due]] = []
        for e in cloud.launch_errors:
            items.append((e.at, len(items), e))
        for s in cloud.interruptions:
            items.append((s.at, len(items), s))
        for _, ev in self.loaded.events_in_order():
            if not isinstance(ev, ItemArrives):  # the demand model plays those
                items.append((ev.at, len(items), ev))
        return sorted(items, key=lambda x: (x[0], x[1]))

    def _apply(self, item: Due) -> None:
        if isinstance(item, LaunchErrors):
            self.cloud.fail_next(ERRORS[item.error](f"simulated {item.error} error"),
                                 item.times)
        elif isinstance(item, ScheduledInterruption):
            host = item.host
            if item.worker is not None:
                where = self.runtime.live_sessions().get(item.worker, [])
                host = where[0] if where else None
            if host is None or not self._interrupt(host, "scheduled"):
                # Said, not silent: a typo in a host name would otherwise test nothing.
                what = f"host {item.host}" if item.host else f"the host of {item.worker}"
                self.recorder.notes.append(f"{item.at:g}s: no interruption: {what} is not "
                                           "a running spot host")
        elif isinstance(item, Activity):
            if item.kind == "idle":
                self.runtime.idle_since.setdefault(item.worker, self.clock.now())
            else:
                self.runtime.idle_since.pop(item.worker, None)
        else:
            self._change_fleet(item)
        if isinstance(item, FLEET_CHANGES):
            self.recorder.fleet_changed(item.at, item.describe())

    def _interrupt(self, host: str, cause: str) -> bool:
        if not any(i.host_id == host and i.state != InstanceState.TERMINATED and i.spot
                   for i in self.cloud.by_key.values()):
            return False  # not a running spot host (on demand, never launched, or gone)
        on_host = sorted(w for w, hs in self.runtime.live_sessions().items() if host in hs)
        lead = NOTICE_LEAD_S[self.loaded.trace.cloud.notice]
        if lead > 0 and not any(h == host for _, h in self.kills):
            # The cloud's notice first; the host is taken at the deadline (_take_due).
            self.cloud.warn(host, self.clock.now() + lead)
            self.kills.append((self.t() + lead, host))
            self.recorder.interrupted(self.t(), host, f"{cause}, notice {lead:.0f}s ahead",
                                      on_host)
            return True
        self.cloud.interrupt(host)
        self.recorder.interrupted(self.t(), host, cause, on_host)
        self.recorder.taken(host, self.t(), on_host)
        return True

    def _take_due(self) -> None:
        """Take the hosts whose notice's deadline has come (unless the controller
        already drained and terminated them); a worker still on one loses its commits
        since its last push."""
        due = [(at, h) for at, h in self.kills if at <= self.t()]
        self.kills = [(at, h) for at, h in self.kills if at > self.t()]
        for _, host in due:
            still = sorted(w for w, hs in self.runtime.live_sessions().items() if host in hs)
            self.cloud.interrupt(host)
            self.recorder.taken(host, self.t(), still)

    def _change_fleet(self, ev: ScaleEvent | AddWorker | RemoveWorker) -> None:
        if isinstance(ev, ScaleEvent):
            old = self.store.get_overrides()
            locations: dict[str, str | None] = (
                {w: None for w in old.locations} if ev.reset else {})
            if ev.worker is not None:
                locations[ev.worker] = ev.to
            self.store.set_overrides(
                min_workers=ev.min if ev.min is not None else (None if ev.reset else KEEP),
                max_workers=ev.max if ev.max is not None else (None if ev.reset else KEEP),
                auto_scale=ev.auto if ev.auto is not None else (None if ev.reset else KEEP),
                locations=locations, reason="trace")
            return
        if isinstance(ev, AddWorker):
            spec = WorkerSpec(id=ev.id, branch=ev.branch or f"czar/{ev.id}", agent=ev.agent,
                              location=parse_location(ev.location),
                              where=f"{self.loaded.path}: add_worker at {ev.at:g}s")
            workers = [*self.cfg.workers, spec]
        else:
            workers = [w for w in self.cfg.workers if w.id != ev.id]
            if ev.id in self.store.get_overrides().locations:
                self.store.set_overrides(locations={ev.id: None}, reason="trace")
        self.cfg = self.cfg.model_copy(update={"workers": workers})
        self.rec.cfg = self.cfg  # the reconciler reads its desired state from cfg each tick

    # --- the report -------------------------------------------------------------------------

    def _report(self) -> dict[str, Any]:
        r, trace = self.recorder, self.loaded.trace
        instances = list(self.cloud.by_key.values())
        worker_hours = r.worker_seconds / 3600.0
        spent = total_usd(self.store.ledger())
        return {
            "trace": trace.name,
            "seed": self.seed,
            "duration_s": trace.duration,
            "tick_s": self.loaded.tick_s,
            "ticks": r.ticks,
            "hosts": {
                "launched": len(instances),
                "terminated": len(set(self.cloud.terminated)),
                "interrupted": sum(1 for i in instances if i.interrupted),
                "peak": r.peak_hosts,
                "alive_at_end": sum(1 for i in instances
                                    if i.state != InstanceState.TERMINATED),
            },
            "workers": {
                "peak_running": r.peak_workers,
                "running_at_end": r.live_count,
                "worker_hours": round(worker_hours, 6),
            },
            "cost": {
                "total_usd": round(spent, 6),
                "per_worker_hour_usd": (round(spent / worker_hours, 6)
                                        if worker_hours > 0 else None),
                "peak_rate_per_hour": round(r.peak_rate, 6),
                "budget_per_hour": self.rec.desired().budget_per_hour,
            },
            "convergence": [c.as_dict() for c in r.convergence],
            "interruptions": [i.as_dict() for i in r.interruptions],
            "interruption_summary": interruption_summary(r.interruptions),
            "invariants": r.invariants(),
            "moves": r.moves_summary(trace.duration),
            **({"demand": self.demand.summary(trace.duration)} if self.demand else {}),
            "failed_actions": dict(sorted(r.failed_actions.items())),
            "first_errors": r.first_errors,
            "notes": r.notes,
        }


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
