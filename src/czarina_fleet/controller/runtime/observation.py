"""Observation: what the world reports, gathered for one plan.

Lists every pool's instances, interruption notices and prices, and probes the hosts,
all concurrently; a pool that cannot be listed is left out of the observation (the
planner then assumes nothing about it) and the others carry on. Pools whose driver
cannot be built are reported every step, never fatal.

Split from the reconciler (`reconciler.py`: the step, its passes and acknowledgements)
along Ray autoscaler v2's seam: sync what the world reports, then step. Everything
here reads the world and the store; the only writes are bookkeeping (load samples,
foreign-resource events), never a planned change.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping

from czarina_fleet.clock import Clock
from czarina_fleet.controller.core.desired import Desired
from czarina_fleet.controller.core.observed import ConnectionLimit, Observed
from czarina_fleet.controller.core.plan_spot import REBALANCE_REASON
from czarina_fleet.controller.runtime.executor import HostAccess
from czarina_fleet.controller.state.move_tables import SAMPLES_KEPT
from czarina_fleet.controller.state.store import Store
from czarina_fleet.model.config import FleetConfig, PoolSpec
from czarina_fleet.model.fleet import HostProbe, HostRecord, LoadSample, WorkerRecord
from czarina_fleet.model.states import HostState
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
    return access.connection_limit(hosts)


class Observer:
    """Gathers an `Observed` for the planner. `config()` is the fleet's current
    configuration (its rebalance settings decide which load samples are kept).
    `providers` maps pool name -> driver and is shared with the executor: drivers built
    here by `provider_factory(pool)` (pools that appear later, e.g. implicit pools of
    cloud locations set with `czarina scale`) are the ones the executor launches with."""

    def __init__(self, config: Callable[[], FleetConfig], store: Store,
                 providers: dict[str, Provider], access: HostAccess, clock: Clock, *,
                 provider_factory: Callable[[PoolSpec], Provider] | None = None,
                 probe_timeout_s: float = 20.0) -> None:
        # A getter, not the config itself: the owner may swap its config between steps
        # (the simulator adds and removes workers), and this reads the current one.
        self.config, self.store, self.clock = config, store, clock
        self.providers, self.access = providers, access
        self.provider_factory = provider_factory
        self.provider_errors: dict[str, str] = {}  # pool -> why its driver is unavailable
        self.probe_timeout_s = probe_timeout_s
        self._reported: set[str] = set()  # look-alikes already written to the event log

    def ensure_providers(self, desired: Desired) -> None:
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
        cfg = self.config().fleet.rebalance
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


        async def one(h: HostRecord) -> HostProbe:
            try:
                # Opening a connection may wait for one of the pool's connect slots: that
                # queue is the controller's own (a start with 1,000 hosts), not the host
                # being slow, so the probe's timeout starts once connected.
                await asyncio.wait_for(self.access.connect(h), CONNECT_WAIT_S)
                return await asyncio.wait_for(self.access.probe(h, on_host.get(h.host_id, [])),
                                              self.probe_timeout_s)
            except Exception as e:
                why = str(e) or type(e).__name__
                return HostProbe(h.host_id, False, self.clock.now(), error=why)
        got = await asyncio.gather(*(one(h) for h in hosts))
        return {p.host_id: p for p in got}
