"""One reconcile step: observe -> plan -> act.

Observing (listing pools, probing hosts, building drivers for new pools) is
`observation.py`'s `Observer`; this module is the step around it: plan, act through
the executor, passes, and acknowledging the notices acted upon.

The world is the truth, the store a cache plus intents: a step whose plan adopts hosts
the store does not know (a first run, a lost, emptied or rolled back `fleet.db`, the
project on a new machine) records them first and then observes and plans again, so
the sessions already running on them are adopted in that same step, never started a
second time. Hosts adopted that way are probed before they are bootstrapped again.

A step whose actions make a next action possible at once (a host seen running, a host
bootstrapped, a worker checkpointed) while workers wait for a place observes, plans
and acts again, up to three passes (passes.py): a new host's workers start in the step
that sees its instance running, not two steps later.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from czarina_fleet.clock import Clock
from czarina_fleet.controller.core.desired import Desired, desired_from
from czarina_fleet.controller.core.observed import Observed
from czarina_fleet.controller.core.planner import plan
from czarina_fleet.controller.runtime.executor import ActionResult, Executor, HostAccess
from czarina_fleet.controller.runtime.observation import Observer
from czarina_fleet.controller.runtime.passes import MAX_PASSES, follow_ups
from czarina_fleet.controller.state.store import Store
from czarina_fleet.hopper import assigned_workers, hopper_dir, read_hopper
from czarina_fleet.model.actions import Action, AdoptHost
from czarina_fleet.model.config import FleetConfig, PoolSpec
from czarina_fleet.model.states import WORKER_ACTIVE, HostState
from czarina_fleet.providers.base import Provider

log = logging.getLogger(__name__)


@dataclass
class ReconcileResult:
    actions: list[Action]
    results: list[ActionResult]
    started_at: float
    finished_at: float
    recovered: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # observation problems (pools, probes)
    passes: int = 1  # observe -> plan -> act rounds in this step (passes.py)

    @property
    def failed(self) -> list[ActionResult]:
        return [r for r in self.results if not r.ok]


class Reconciler:
    """`Reconciler(cfg, store, providers, host_access, clock)`; `providers` maps pool
    name -> driver. `provider_factory(pool)` builds drivers for pools that appear later
    (implicit pools of cloud locations set with `czarina scale`); `observer` gathers
    what the world reports (observation.py)."""

    def __init__(self, cfg: FleetConfig, store: Store, providers: Mapping[str, Provider],
                 host_access: HostAccess, clock: Clock, *,
                 provider_factory: Callable[[PoolSpec], Provider] | None = None,
                 probe_timeout_s: float = 20.0, **executor_options: object) -> None:
        self.cfg, self.store, self.clock = cfg, store, clock
        self.providers: dict[str, Provider] = dict(providers)
        self.access = host_access
        # Called with the planned actions just before they are carried out (cost
        # accrual uses it to close the interval before who runs where changes).
        self.before_act: Callable[[list[Action]], object] | None = None
        self.observer = Observer(lambda: self.cfg, store, self.providers, host_access, clock,
                                 provider_factory=provider_factory,
                                 probe_timeout_s=probe_timeout_s)
        self.executor = Executor(store, self.providers, host_access, clock,
                                 **executor_options)  # type: ignore[arg-type]
        self._recovered = False
        self._acked: set[str] = set()  # Azure events approved already
        self._hopper_problems: set[str] = set()  # unreadable items already logged

    def desired(self) -> Desired:
        overrides = self.store.get_overrides()
        auto = (overrides.auto_scale if overrides.auto_scale is not None
                else self.cfg.fleet.scaling.auto_scale)
        return desired_from(self.cfg, overrides,
                            *self._hopper_demand(auto))

    def _hopper_demand(self, auto: bool) -> tuple[int, frozenset[str], bool]:
        """From the project's hopper (`.czarina/hopper/*.md`): how many items wait (the
        demand AUTO_SCALE draws on), which workers an open item is assigned to (busy,
        however quiet), and whether the project uses the hopper at all (its directory
        exists). Unreadable items are logged, never fatal."""
        scan = read_hopper(hopper_dir(self.cfg.project_root))
        problems = scan.problems if auto else []
        for problem in problems:  # each once while it lasts, not every step and pass
            if problem not in self._hopper_problems:
                log.warning("hopper: %s", problem)
        self._hopper_problems = set(problems)
        return (len(scan.waiting) if auto else 0), assigned_workers(scan), scan.in_use

    async def plan_once(self) -> tuple[Desired, Observed, list[Action], list[str]]:
        """Observe and plan without acting (`czarina scale --dry-run`)."""
        desired = self.desired()
        self.observer.ensure_providers(desired)
        observed, errors = await self.observer.observe(desired)
        errors = [*desired.problems, *errors]  # workers that cannot be placed, and why
        return desired, observed, plan(desired, observed, self.clock.now()), errors

    async def reconcile_once(self) -> ReconcileResult:
        started = self.clock.now()
        recovered: list[str] = []
        if not self._recovered:
            # Recovery needs the drivers (built lazily) to find what a launch made.
            self.observer.ensure_providers(self.desired())
            recovered = await self.executor.recover()
            self._recovered = True
        actions, results, observed, errors = await self._pass()
        # After each pass, not once at the end: a later pass may terminate a drained host
        # whose Azure event this pass's observation says to approve.
        await self._acknowledge(observed)
        passes, last = 1, results
        # Plan again at once when this pass made a next action possible (passes.py).
        while passes < MAX_PASSES and (why := follow_ups(last, self.store.hosts(),
                                                           self.store.workers())):
            passes += 1
            log.info("pass %d of this step: %s", passes, "; ".join(why),
                     extra={"pass": passes})
            more, last, observed, errors = await self._pass()
            await self._acknowledge(observed)
            actions, results = [*actions, *more], [*results, *last]
        return ReconcileResult(actions, results, started, self.clock.now(), recovered, errors,
                               passes)

    async def _pass(self) -> tuple[list[Action], list[ActionResult], Observed, list[str]]:
        """Observe, plan and act once."""
        desired, observed, actions, errors = await self.plan_once()
        results: list[ActionResult] = []
        adopted = [a for a in actions if isinstance(a, AdoptHost)]
        if adopted:  # record what the world has, then look again (module docstring)
            if self.before_act is not None:
                self.before_act(adopted)
            results = await self.executor.execute(adopted, desired)
            desired, observed, actions, errors = await self.plan_once()
            actions = [*adopted, *actions]
        self._report_strangers(observed)
        for a in actions:
            log.info("plan: %s", a.describe(), extra={"action": type(a).__name__,
                                                      "reason": a.reason})
        todo = actions[len(results):]
        if self.before_act is not None and todo:
            self.before_act(todo)
        results += await self.executor.execute(todo, desired)
        return actions, results, observed, errors

    async def _acknowledge(self, observed: Observed) -> None:
        """Tell the sources of the notices that they were acted upon: each driver (AWS
        deletes the queue messages it returned) and, for an Azure scheduled event read on
        the host, its metadata service, once no worker is left on the host (approving
        lets Azure go ahead early). A failure is logged; nothing depends on it."""
        for pool, provider in self.providers.items():
            try:
                await provider.notices_handled()
            except Exception as e:
                log.warning("pool %s: acknowledging notices: %s", pool, e)
        if not any(n.ack is not None for n in observed.notices):
            return  # nothing to approve: no need to read every worker
        busy = {w.host_id for w in self.store.workers() if w.state in WORKER_ACTIVE}
        for n in observed.notices:
            host = self.store.host(n.host_id)
            if (n.ack is None or host is None or n.ack in self._acked
                    or host.state != HostState.DRAINING or n.host_id in busy):
                continue
            try:
                await self.access.ack_notice(host, [n.ack])
                self._acked.add(n.ack)
                self.store.record_event("host", n.host_id, f"approved scheduled event "
                                        f"{n.ack} ({n.reason}): its workers are saved")
            except Exception as e:
                log.warning("host %s: approving event %s: %s", n.host_id, n.ack, e)

    def _report_strangers(self, observed: Observed) -> None:
        """Write look-alike sessions that do not carry this fleet's mark to the event log,
        once per change: they are reported, never touched. (Pool resources: foreign().)"""
        for p in observed.probes.values():
            if not p.foreign:
                continue
            reason = ("not this fleet's (no or another identity mark), left untouched: "
                      + ", ".join(p.foreign))
            if not any(e.reason == reason for e in self.store.events(20, "host", p.host_id)):
                self.store.record_event("host", p.host_id, reason)
