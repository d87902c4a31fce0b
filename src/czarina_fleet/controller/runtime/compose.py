"""The composition root: the one place a fleet is put together.

`build_reconciler` wires a Reconciler with the hooks every run needs (cost accrued right
before who-runs-where changes); `fleet_jobs` are the periodic jobs beside the reconcile
step (cost accrual, branch pushes); `open_fleet` builds the live fleet the CLI drives (store,
SSH pool, drivers, host access) and closes it. The CLI, the simulator and the tests all
build through here, so a simulated run and a real one accrue cost by the same code.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from czarina_fleet.clock import Clock
from czarina_fleet.config.identity import fleet_identity
from czarina_fleet.config.paths import config_base_dir
from czarina_fleet.controller.runtime.connect_facts import ConnectFacts
from czarina_fleet.controller.runtime.cost_accrual import accrue_before, accrue_now
from czarina_fleet.controller.runtime.executor import HostAccess
from czarina_fleet.controller.runtime.host_access import LiveHostAccess
from czarina_fleet.controller.runtime.push_job import BranchPusher, PushAccess
from czarina_fleet.controller.runtime.reconciler import Reconciler
from czarina_fleet.controller.runtime.scheduler import Controller
from czarina_fleet.controller.runtime.sweep import LeftoverSweep
from czarina_fleet.controller.state.store import Store
from czarina_fleet.model.config import FleetConfig, PoolSpec
from czarina_fleet.model.fleet import HostProbe
from czarina_fleet.model.states import HOST_ALIVE
from czarina_fleet.providers.base import Provider
from czarina_fleet.providers.registry import build_provider
from czarina_fleet.remote import fd_limit
from czarina_fleet.remote.identity import fleet_identity as ssh_identity
from czarina_fleet.remote.ssh_pool import PoolSettings, SshPool
from czarina_fleet.remote.tmux_target import TmuxTarget, fleet_tmux

log = logging.getLogger(__name__)

CONTROLLER_GC_THRESHOLDS = (20_000, 50, 50)

# The accrual job's period: at least a minute (the ledger gets one row per host and
# worker per accrual; assignment changes accrue at once anyway, via before_act).
MIN_ACCRUAL_PERIOD_S = 60.0


def build_reconciler(cfg: FleetConfig, store: Store, providers: Mapping[str, Provider],
                     access: HostAccess, clock: Clock, **options: Any) -> Reconciler:
    """A Reconciler with the hooks every run needs: cost is accrued right before the
    planned actions change who runs where, so each interval is billed to the workers
    that really ran in it (controller/runtime/cost_accrual.py)."""
    reconciler = Reconciler(cfg, store, providers, access, clock, **options)
    reconciler.before_act = lambda actions: accrue_before(store, clock, actions)
    return reconciler


@dataclass(frozen=True)
class Job:
    """A periodic job beside the reconcile step."""
    name: str
    period_s: float
    run: Callable[[], Awaitable[object]]
    # Also run once when the controller stops, bounded by this (None: not then).
    on_stop_timeout_s: float | None = None


def accrual_job(store: Store, clock: Clock, interval_s: float) -> Job:
    async def accrue() -> None:
        accrue_now(store, clock)
    return Job("cost-accrual", max(interval_s, MIN_ACCRUAL_PERIOD_S), accrue)


def fleet_jobs(cfg: FleetConfig, store: Store, access: PushAccess, clock: Clock,
               interval_s: float) -> list[Job]:
    """Every periodic job a controller runs: cost accrual, and checkpoint pushes (commits
    leave a host before it can vanish)."""
    recovery = cfg.fleet.recovery
    pusher = BranchPusher(store, access, clock, concurrency=recovery.push_concurrency,
                          timeout_s=recovery.push_timeout_s)
    return [accrual_job(store, clock, interval_s),
            # a last round when the controller stops: commits made since the last round
            # leave the hosts (a signal, `--for` ending, `--once` where a push is due)
            Job("branch-push", recovery.push_interval_s, pusher.run_once,
                on_stop_timeout_s=recovery.push_timeout_s)]


@dataclass
class Fleet:
    cfg: FleetConfig
    store: Store
    pool: SshPool
    access: LiveHostAccess
    reconciler: Reconciler
    clock: Clock
    fleet_id: str = ""  # the ownership mark on all it makes (config/identity.py)

    async def probe_hosts(self) -> dict[str, HostProbe]:
        """Probe every live host the store knows, concurrently (one round trip each)."""
        hosts = [h for h in self.store.hosts() if h.state in HOST_ALIVE]
        return await self.reconciler.observer.probe_all(hosts)

    def accrue_costs(self) -> int:
        """Accrue the ledger up to now (see controller/runtime/cost_accrual.py)."""
        return accrue_now(self.store, self.clock)

    def controller(self, interval_s: float) -> Controller:
        """The scheduled controller for this fleet: the reconcile step and every job."""
        controller = Controller(self.reconciler, interval_s=interval_s)
        for job in fleet_jobs(self.cfg, self.store, self.access, self.clock, interval_s):
            controller.add_job(job.run, job.period_s, job.name)
            if job.on_stop_timeout_s is not None:
                controller.add_final(job.run, job.on_stop_timeout_s)
        controller.add_job(self.sweep().run_once, self.cfg.fleet.sweep_interval_s,
                           "leftover-sweep")
        return controller

    def sweep(self) -> LeftoverSweep:
        """The leftover sweep over this fleet's drivers (nothing made for a host outlives
        it; controller/runtime/sweep.py)."""
        return LeftoverSweep(self.store, self.reconciler.providers, self.clock,
                             grace_s=self.cfg.fleet.leftover_grace_s,
                             seen_path=self.store.path.parent / "leftovers.json")


def _open_files_for(cfg: FleetConfig) -> None:
    """A controller keeps one SSH connection per host: say at once if the fleet may
    reach more hosts than the open file limit (raised as far as it goes) allows (the
    planner launches none past it, the pool connects none: remote/fd_limit.py)."""
    most = len(cfg.fleet.hosts) + sum(p.max_hosts for p in cfg.fleet.pools)
    if most > fd_limit.connection_budget():
        log.warning("open files: %s", fd_limit.too_many_message(most))


@asynccontextmanager
async def open_fleet(cfg: FleetConfig, state_path: Path, clock: Clock, *,
                     tmux: TmuxTarget | None = None,
                     known_hosts: str | None = None,
                     controller: bool = False,
                     pool_settings: PoolSettings | None = None) -> AsyncIterator[Fleet]:
    """`controller=True` for the verbs that act (controller run, converge): only they
    write the fleet's trust files (connect_facts.py); every other verb only reads.
    `pool_settings`: the SSH pool's, if not its defaults (the scale bench's baseline)."""
    if logging.getLogger("asyncssh").level == logging.NOTSET:
        # asyncssh logs every connection and command line at INFO; ours say what matters
        logging.getLogger("asyncssh").setLevel(logging.WARNING)
    # Every verb that probes (status, hosts, scale --dry-run) holds a connection per
    # host too, and plans with the limit the controller has (ConnectionLimit).
    fd_limit.raise_soft_limit()
    if controller:
        _open_files_for(cfg)
        # Each tick allocates some 100,000 short-lived objects (rows, records, packets)
        # beside ~200,000 long-lived ones (1,000 hosts' connections): at the default
        # thresholds (700, 10, 10) that was ~150 collections a tick, 1-2 of them full,
        # 0.5-1.5 s of a 1,000-host tick's 2.4 s of CPU; at these, ~5 young ones, 0.1 s.
        gc.set_threshold(*CONTROLLER_GC_THRESHOLDS)
    # Kept beside the config, not the state: a lost fleet.db must not lose it.
    fleet_id = fleet_identity(config_base_dir(cfg.source))
    tmux = tmux or fleet_tmux(fleet_id)  # each fleet its own tmux server (tmux.py)
    store = Store(state_path, clock)
    pool = SshPool(clock=clock, settings=pool_settings)
    # Drivers are built by the reconciler, pool by pool, so one pool's missing
    # credentials never stop the others; they are closed here, whatever happens.
    reconciler: Reconciler | None = None

    def factory(spec: PoolSpec) -> Provider:
        return build_provider(spec, cfg.fleet_name, clock=clock, fleet_id=fleet_id,
                              price_cache=state_path.parent / "prices.json")

    try:
        # Host keys the providers report go to a fleet-owned known_hosts beside the state.
        identity = ssh_identity(state_path)
        access = LiveHostAccess(cfg, store, pool, tmux=tmux, known_hosts=known_hosts,
                                facts=ConnectFacts(state_path.parent, writer=controller),
                                identity=identity, fleet_id=fleet_id)
        reconciler = build_reconciler(cfg, store, {}, access, clock,
                                      provider_factory=factory, identity=identity,
                                      fleet_id=fleet_id)
        yield Fleet(cfg, store, pool, access, reconciler, clock, fleet_id)
    finally:
        for provider in reconciler.providers.values() if reconciler is not None else ():
            try:
                await provider.close()
            except Exception as e:  # closing must not hide the real outcome
                log.warning("closing a provider: %s", e)
        await pool.close()
        store.close()
