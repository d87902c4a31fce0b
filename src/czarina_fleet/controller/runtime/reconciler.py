"""One reconcile step: observe -> plan -> act.

Observe lists every pool's instances, interruption notices and prices, and probes the
hosts, all concurrently; a pool that cannot be listed is left out of the observation
(the planner then assumes nothing about it) and the others carry on.

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

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from czarina_fleet.clock import Clock
from czarina_fleet.controller.core.desired import Desired, desired_from
from czarina_fleet.controller.core.observed import ConnectionLimit, Observed
from czarina_fleet.controller.core.plan_spot import REBALANCE_REASON
from czarina_fleet.controller.core.planner import plan
from czarina_fleet.controller.runtime.executor import ActionResult, Executor, HostAccess
from czarina_fleet.controller.runtime.passes import MAX_PASSES, follow_ups
from czarina_fleet.controller.state.move_tables import SAMPLES_KEPT
from czarina_fleet.controller.state.store import Store
from czarina_fleet.hopper import assigned_workers, read_hopper
from czarina_fleet.model.actions import Action, AdoptHost
from czarina_fleet.model.config import FleetConfig, PoolSpec
from czarina_fleet.model.fleet import HostProbe, HostRecord, LoadSample, WorkerRecord
from czarina_fleet.model.states import WORKER_ACTIVE, HostState
from czarina_fleet.policies.interruption import probe_notices
from czarina_fleet.policies.load import remember
from czarina_fleet.providers.base import Instance, InterruptionNotice, PriceQuote, Provider

log = logging.getLogger(__name__)
# The longest a probe waits for its host's connection (queued behind other connects,
# then the pool's own connect timeout) before the host counts as unreachable this step.
CONNECT_WAIT_S = 120.0
PROBED = frozenset({HostState.READY, HostState.UNREACHABLE, HostState.DRAINING})


def probed(h: HostRecord) -> bool:
    """Probe this host? Ready ones, and hosts recorded but not launched by this store
    (adopted by their mark, or configured) that are not prepared yet: they may already
    run workers of ours."""
    adopted = (h.state == HostState.BOOTING and h.intent_key is None
               and h.address is not None and h.provider != "local")
    return h.state in PROBED or adopted


def _connection_limit(access: HostAccess, hosts: list[HostRecord]) -> ConnectionLimit | None:
    """The open file limit's room for host connections, if the access has one (it lets
    go of the hosts that are gone first)."""
    limit = getattr(access, "connection_limit", None)
    return limit(hosts) if limit is not None else None


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
    (implicit pools of cloud locations set with `czarina scale`)."""

    def __init__(self, cfg: FleetConfig, store: Store, providers: Mapping[str, Provider],
                 host_access: HostAccess, clock: Clock, *,
                 provider_factory: Callable[[PoolSpec], Provider] | None = None,
                 probe_timeout_s: float = 20.0, **executor_options: object) -> None:
        self.cfg, self.store, self.clock = cfg, store, clock
        self.providers: dict[str, Provider] = dict(providers)
        self.access = host_access
        self.provider_factory = provider_factory
        self.provider_errors: dict[str, str] = {}  # pool -> why its driver is unavailable
        # Called with the planned actions just before they are carried out (cost
        # accrual uses it to close the interval before who runs where changes).
        self.before_act: Callable[[list[Action]], object] | None = None
        self.probe_timeout_s = probe_timeout_s
        self.executor = Executor(store, self.providers, host_access, clock,
                                 **executor_options)  # type: ignore[arg-type]
        self._recovered = False
        self._acked: set[str] = set()  # Azure events approved already
        self._reported: set[str] = set()  # look-alikes already written to the event log

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
        scan = read_hopper(Path(self.cfg.project_root) / ".czarina" / "hopper")
        for problem in scan.problems if auto else ():
            log.warning("hopper: %s", problem)
        return (len(scan.waiting) if auto else 0), assigned_workers(scan), scan.in_use

    async def plan_once(self) -> tuple[Desired, Observed, list[Action], list[str]]:
        """Observe and plan without acting (`czarina scale --dry-run`)."""
        desired = self.desired()
        self._ensure_providers(desired)
        observed, errors = await self.observe(desired)
        errors = [*desired.problems, *errors]  # workers that cannot be placed, and why
        return desired, observed, plan(desired, observed, self.clock.now()), errors

    async def reconcile_once(self) -> ReconcileResult:
        started = self.clock.now()
        recovered: list[str] = []
        if not self._recovered:
            # Recovery needs the drivers (built lazily) to find what a launch made.
            self._ensure_providers(self.desired())
            recovered = await self.executor.recover()
            self._recovered = True
        actions, results, observed, errors = await self._pass()
        passes, last = 1, results
        # Plan again at once when this pass made a next action possible (passes.py).
        while passes < MAX_PASSES and (why := follow_ups(last, self.store.hosts(),
                                                           self.store.workers())):
            passes += 1
            log.info("pass %d of this step: %s", passes, "; ".join(why),
                     extra={"pass": passes})
            more, last, observed, errors = await self._pass()
            actions, results = [*actions, *more], [*results, *last]
        await self._acknowledge(observed)
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
        ack = getattr(self.access, "ack_notice", None)
        if ack is None or not any(n.ack is not None for n in observed.notices):
            return  # nothing to approve: no need to read every worker
        busy = {w.host_id for w in self.store.workers() if w.state in WORKER_ACTIVE}
        for n in observed.notices:
            host = self.store.host(n.host_id)
            if (n.ack is None or ack is None or host is None or n.ack in self._acked
                    or host.state != HostState.DRAINING or n.host_id in busy):
                continue
            try:
                await ack(host, [n.ack])
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

    def _ensure_providers(self, desired: Desired) -> None:
        """Build drivers for pools that have none. A driver that cannot be built (no
        credentials, an unknown provider) disables that pool only, with its reason
        reported every step: the other pools keep running. It is tried again next step."""
        self.provider_errors = {}
        for name, pool in desired.pools.items():
            if name in self.providers or self.provider_factory is None:
                continue
            try:
                self.providers[name] = self.provider_factory(pool)
            except Exception as e:  # one pool's driver must not stop the fleet
                self.provider_errors[name] = str(e) or type(e).__name__

    async def observe(self, desired: Desired) -> tuple[Observed, list[str]]:
        hosts = self.store.hosts()
        errors = [f"pool {p}: {why}" for p, why in sorted(self.provider_errors.items())]
        pools = [p for p in desired.pools if p in self.providers]
        listed = await asyncio.gather(*(self._list(p, desired.pools[p]) for p in pools),
                                      return_exceptions=True)
        inventories: dict[str, list[Instance]] = {}
        notices: list[InterruptionNotice] = []
        quotes: dict[str, PriceQuote] = {}
        for p, got in zip(pools, listed, strict=True):
            if isinstance(got, BaseException):
                errors.append(f"pool {p}: {got}")
                continue
            inventories[p], pool_notices, quote = got
            notices.extend(pool_notices)
            if quote is not None:
                quotes[p] = quote
        self.access.learn_instances(inventories)  # host keys, before the hosts are probed
        workers = self.store.workers()  # once for the probes and the plan
        probes = await self.probe_all([h for h in hosts if probed(h)], workers)
        # The host's own metadata service may know before the driver does.
        notices.extend(probe_notices({h.host_id: h for h in hosts}, probes))
        observed = Observed.of(hosts, workers, intents=self.store.open_intents(),
                               inventories=inventories, notices=notices, probes=probes,
                               quotes=quotes, rebalance_started=self._rebalance_started(),
                               samples=self._load_history(hosts, probes),
                               move_events=self.store.move_events(self.clock.now() - 3600),
                               connection_limit=_connection_limit(self.access, hosts))
        return observed, errors

    def _load_history(self, hosts: list[HostRecord], probes: Mapping[str, HostProbe]
                      ) -> dict[str, list[LoadSample]]:
        """Each host's recent load with this probe's (rebalancing asks whether a host
        *stays* overloaded). Stored only while it may matter (policies/load.py
        `remember`): a calm fleet writes nothing."""
        cfg = self.cfg.fleet.rebalance
        history = self.store.samples() if cfg.enabled else {}
        live = {h.host_id for h in hosts if h.state in PROBED}
        add, drop = [], [h for h in history if h not in live]
        for p in probes.values() if cfg.enabled else ():
            if not p.reachable or p.load_1m is None or not p.cpus:
                continue
            s = LoadSample(p.host_id, p.probed_at, p.load_1m, p.cpus, p.mem_free_mb)
            before = history.get(p.host_id, [])
            if remember(before, s, cfg):
                add.append(s)
                history[p.host_id] = [*before, s][-SAMPLES_KEPT:]
            elif before:
                drop.append(p.host_id)
                history[p.host_id] = [s]  # the planner still sees the host's load
        self.store.add_samples(add)
        self.store.forget_samples(drop)
        return history

    def _rebalance_started(self) -> list[float]:
        """When hosts began draining on a rebalance recommendation in the last hour."""
        hour_ago = self.clock.now() - 3600
        return [e.ts for e in self.store.events(limit=1000, entity="host")
                if e.to_state == HostState.DRAINING and e.ts >= hour_ago
                and e.reason.startswith(REBALANCE_REASON)]

    async def _list(self, pool: str, spec: PoolSpec) -> tuple[
            list[Instance], list[InterruptionNotice], PriceQuote | None]:
        provider = self.providers[pool]
        instances = await provider.list_instances()
        self._report_foreign(pool, provider)
        notices = await provider.interruption_notices()
        shape, region = spec.instance_types[0], spec.regions[0]
        try:
            quote = await provider.prices(shape, region, spec.spot)
        except Exception as e:  # no quote: the planner just cannot launch in this pool
            if spec.max_price_per_hour is None:
                log.warning("no price for pool %s: %s", pool, e)
                return instances, notices, None
            # The pool's own cap is what a host may cost at most: a safe upper bound
            # for the budget when the cloud gives no price.
            quote = PriceQuote(shape, region, spec.spot, spec.max_price_per_hour,
                               f"pool {pool} max_price_per_hour (upper bound; {e})")
        return instances, notices, quote

    def _report_foreign(self, pool: str, provider: Provider) -> None:
        """What looks like ours but lacks our exact mark is reported once (event log,
        warning), and never adopted, stopped or deleted."""
        for f in provider.foreign():
            key = f"{pool}/{f.kind}/{f.resource_id}"
            if key in self._reported:
                continue
            self._reported.add(key)
            log.warning("pool %s: not ours, left alone: %s %s: %s", pool, f.kind,
                        f.resource_id, f.why)
            if not self.store.events(limit=1, entity="foreign", entity_id=key):
                # once per store, not per controller run (`--once` from cron)
                self.store.record_event("foreign", key, f"not ours, left alone: {f.why}")

    async def probe_all(self, hosts: list[HostRecord],
                        workers: list[WorkerRecord] | None = None) -> dict[str, HostProbe]:
        """Probe `hosts` concurrently; `workers`: the store's, if the caller has them."""
        on_host: dict[str, list[WorkerRecord]] = {}
        if workers is None:
            workers = self.store.workers()
        for w in workers:  # once for all hosts: never O(hosts x workers)
            if w.host_id is not None:
                on_host.setdefault(w.host_id, []).append(w)

        connect = getattr(self.access, "connect", None)

        async def one(h: HostRecord) -> HostProbe:
            try:
                if connect is not None:
                    # Opening a connection may wait for one of the pool's connect slots:
                    # that queue is the controller's own (a start with 1,000 hosts), not
                    # the host being slow, so the probe's timeout starts once connected.
                    await asyncio.wait_for(connect(h), CONNECT_WAIT_S)
                return await asyncio.wait_for(self.access.probe(h, on_host.get(h.host_id, [])),
                                              self.probe_timeout_s)
            except Exception as e:
                why = str(e) or type(e).__name__
                return HostProbe(h.host_id, False, self.clock.now(), error=why)
        got = await asyncio.gather(*(one(h) for h in hosts))
        return {p.host_id: p for p in got}
