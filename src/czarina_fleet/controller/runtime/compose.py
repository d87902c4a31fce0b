"""The application the CLI drives: one object holding the store, the SSH pool, the
provider drivers and the reconciler for a configuration, built and closed in one place.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from czarina_fleet.clock import Clock
from czarina_fleet.config.identity import fleet_identity
from czarina_fleet.config.paths import config_base_dir
from czarina_fleet.controller.runtime.connect_facts import ConnectFacts
from czarina_fleet.controller.runtime.cost_accrual import accrue_before, accrue_now
from czarina_fleet.controller.runtime.host_access import LiveHostAccess
from czarina_fleet.controller.runtime.reconciler import Reconciler
from czarina_fleet.controller.state.store import Store
from czarina_fleet.model.config import FleetConfig, PoolSpec
from czarina_fleet.model.fleet import HostProbe
from czarina_fleet.model.states import HOST_ALIVE
from czarina_fleet.providers.base import Provider
from czarina_fleet.providers.registry import build_provider
from czarina_fleet.remote.identity import fleet_identity as ssh_identity
from czarina_fleet.remote.ssh_pool import SshPool
from czarina_fleet.remote.tmux import DEFAULT_TMUX, TmuxTarget

log = logging.getLogger(__name__)


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
        return await self.reconciler.probe_all(hosts)

    def accrue_costs(self) -> int:
        """Accrue the ledger up to now (see controller/cost_accrual.py)."""
        return accrue_now(self.store, self.clock)


@asynccontextmanager
async def open_fleet(cfg: FleetConfig, state_path: Path, clock: Clock, *,
                     tmux: TmuxTarget = DEFAULT_TMUX,
                     known_hosts: str | None = None,
                     controller: bool = False) -> AsyncIterator[Fleet]:
    """`controller=True` for the verbs that act (controller run, converge): only they
    write the fleet's trust files (connect_facts.py); every other verb only reads."""
    if logging.getLogger("asyncssh").level == logging.NOTSET:
        # asyncssh logs every connection and command line at INFO; ours say what matters
        logging.getLogger("asyncssh").setLevel(logging.WARNING)
    # Kept beside the config, not the state: a lost fleet.db must not lose it.
    fleet_id = fleet_identity(config_base_dir(cfg.source))
    store = Store(state_path, clock)
    pool = SshPool(clock=clock)
    # Drivers are built by the reconciler, pool by pool, so one pool's missing
    # credentials never stop the others; they are closed here, whatever happens.
    reconciler: Reconciler | None = None

    def factory(spec: PoolSpec) -> Provider:
        return build_provider(spec, cfg.fleet_name, clock=clock, fleet_id=fleet_id)

    try:
        # Host keys the providers report go to a fleet-owned known_hosts beside the state.
        identity = ssh_identity(state_path)
        access = LiveHostAccess(cfg, store, pool, tmux=tmux, known_hosts=known_hosts,
                                facts=ConnectFacts(state_path.parent, writer=controller),
                                identity=identity)
        reconciler = Reconciler(cfg, store, {}, access, clock,
                                provider_factory=factory, identity=identity,
                                fleet_id=fleet_id)
        reconciler.before_act = lambda actions: accrue_before(store, clock, actions)
        yield Fleet(cfg, store, pool, access, reconciler, clock, fleet_id)
    finally:
        for provider in reconciler.providers.values() if reconciler is not None else ():
            try:
                await provider.close()
            except Exception as e:  # closing must not hide the real outcome
                log.warning("closing a provider: %s", e)
        await pool.close()
        store.close()
