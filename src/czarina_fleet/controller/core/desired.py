"""Desired state: the configuration merged with `czarina scale` overrides.

`desired_from(cfg, overrides)` is pure. It resolves every worker's location (an override
wins over the config), turns cloud locations (`aws-spot:TYPE:REGION`) into pools (an
existing pool with that provider, shape and region, or an implicit one) and `remote:`
literals into fixed hosts, so the planner only ever sees hosts and pools.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property

from czarina_fleet.errors import UserError
from czarina_fleet.model.config import FleetConfig, PoolSpec, RebalanceSettings, WorkerSpec
from czarina_fleet.model.fleet import LOCAL_HOST_ID, Overrides
from czarina_fleet.model.location import (
    AutoLocation,
    CloudLocation,
    LocalLocation,
    Location,
    RemoteLocation,
    parse_location,
)
from czarina_fleet.policies.idle import hopper_driven, host_idle_after, idle_after

LOCAL_SLOTS = 64  # the user's own machine: many sessions, bounded by max_workers anyway


@dataclass(frozen=True, slots=True)
class FixedHost:
    """A host that is not launched: the local machine or a static SSH host."""

    host_id: str
    provider: str  # local | static
    slots: int
    address: str | None = None
    port: int = 22
    user: str | None = None
    work_dir: str = "~/czarina-work"


@dataclass(frozen=True, slots=True)
class DesiredWorker:
    spec: WorkerSpec
    location: Location
    # Where it may run: a fixed host id, a pool name, or None for `auto`.
    host_id: str | None = None
    pool: str | None = None

    @property
    def worker_id(self) -> str:
        return self.spec.id


@dataclass(frozen=True)
class Desired:
    fleet_name: str
    workers: tuple[DesiredWorker, ...]
    pools: Mapping[str, PoolSpec]
    fixed_hosts: Mapping[str, FixedHost]
    min_workers: int = 0
    max_workers: int = 100
    auto_scale: bool = False
    idle_timeout_s: float = 900.0
    budget_per_hour: float | None = None
    problems: tuple[str, ...] = field(default=())  # workers that cannot be placed, and why
    hopper_waiting: int = 0  # hopper items no worker has taken (AUTO_SCALE's demand)
    hopper_assigned: frozenset[str] = frozenset()  # workers an open hopper item names
    worker_idle_after_s: float = 600.0  # fleet.health.idle_after_s (policies/idle.py)
    hopper_in_use: bool = False  # the project has a hopper directory
    hopper_idle_after_s: float = 120.0  # fleet.health.hopper_idle_after_s
    hopper_idle_timeout_s: float = 300.0  # fleet.scaling.hopper_idle_timeout_s
    rebalance_per_hour: int = 2  # hosts drained early on rebalance recommendations
    # Moving workers by load and to consolidate hosts, and the disruption budget.
    moves: RebalanceSettings = field(default_factory=RebalanceSettings)
    removed_reason: str = "removed from the configuration"  # why a worker not here stops

    @cached_property
    def _by_id(self) -> dict[str, DesiredWorker]:
        return {w.worker_id: w for w in self.workers}

    def worker(self, worker_id: str) -> DesiredWorker | None:
        return self._by_id.get(worker_id)

    @property
    def hopper_driven(self) -> bool:
        return hopper_driven(self.auto_scale, self.hopper_in_use)

    @property
    def host_idle_after_s(self) -> float:
        """When an empty pool host shuts down (policies/idle.py `host_idle_after`)."""
        return host_idle_after(self.idle_timeout_s, self.hopper_idle_timeout_s,
                               hopper_driven=self.hopper_driven)

    def starts_scaled_down(self, worker_id: str) -> bool:
        """True for a hopper-driven fleet's worker with no task of its own and no item:
        until it has run once, it counts as scaled down (it comes back when an item waits
        or for min_workers). Else a first run starts every configured worker, launching
        hosts for them, only to stop them idle minutes later."""
        dw = self.worker(worker_id)
        return (self.hopper_driven and dw is not None and dw.spec.task_file is None
                and worker_id not in self.hopper_assigned)

    def idle_after_s(self, worker_id: str) -> float:
        """When this worker counts as idle (policies/idle.py `idle_after`)."""
        dw = self.worker(worker_id)
        return idle_after(self.worker_idle_after_s, self.hopper_idle_after_s,
                          hopper_driven=self.hopper_driven,
                          own_task=dw is not None and dw.spec.task_file is not None)


def desired_from(cfg: FleetConfig, overrides: Overrides, hopper_waiting: int = 0,
                 hopper_assigned: frozenset[str] = frozenset(),
                 hopper_in_use: bool = False) -> Desired:
    """Merge config and overrides. Raises UserError for an override location that does
    not parse (the CLI validates before storing, so this means a hand-edited store)."""
    scaling = cfg.fleet.scaling
    pools: dict[str, PoolSpec] = {p.name: p for p in cfg.fleet.pools}
    fixed: dict[str, FixedHost] = {
        h.name: FixedHost(h.name, "static", h.slots, h.host, h.port or 22, h.user, h.work_dir)
        for h in cfg.fleet.hosts
    }
    workers: list[DesiredWorker] = []
    problems: list[str] = []
    uses_local = False
    for spec in cfg.workers:
        text = overrides.locations.get(spec.id)
        try:
            loc = parse_location(text) if text is not None else spec.location
        except UserError as e:
            raise UserError(f"location override for worker {spec.id}: {e}") from None
        if isinstance(loc, LocalLocation):
            uses_local = True
            workers.append(DesiredWorker(spec, loc, host_id=LOCAL_HOST_ID))
        elif isinstance(loc, AutoLocation):
            workers.append(DesiredWorker(spec, loc))
        elif isinstance(loc, RemoteLocation):
            host_id = _remote_host(loc, fixed)
            workers.append(DesiredWorker(spec, loc, host_id=host_id))
        elif isinstance(loc, CloudLocation):
            workers.append(DesiredWorker(spec, loc, pool=_cloud_pool(loc, pools)))
        elif loc.kind == "pool":
            if loc.pool not in pools:
                problems.append(f"worker {spec.id}: no pool named {loc.pool!r}")
            workers.append(DesiredWorker(spec, loc, pool=loc.pool))
        else:
            problems.append(f"worker {spec.id}: {loc}: Kubernetes pod workers are not built "
                            "yet; it stays pending (give it a local, remote:, pool: or cloud "
                            "location to run it)")
            workers.append(DesiredWorker(spec, loc, host_id="unsupported:" + str(loc)))
    if uses_local or (not fixed and not pools):
        fixed[LOCAL_HOST_ID] = FixedHost(LOCAL_HOST_ID, "local", LOCAL_SLOTS)
    mn = overrides.min_workers if overrides.min_workers is not None else scaling.min_workers
    mx = overrides.max_workers if overrides.max_workers is not None else scaling.max_workers
    auto = overrides.auto_scale if overrides.auto_scale is not None else scaling.auto_scale
    return Desired(
        fleet_name=cfg.fleet_name, workers=tuple(workers), pools=pools, fixed_hosts=fixed,
        min_workers=mn, max_workers=max(mx, mn), auto_scale=auto,
        idle_timeout_s=scaling.idle_timeout_s, budget_per_hour=scaling.budget_per_hour,
        problems=tuple(problems), hopper_waiting=hopper_waiting,
        hopper_assigned=hopper_assigned, worker_idle_after_s=cfg.fleet.health.idle_after_s,
        hopper_in_use=hopper_in_use, hopper_idle_after_s=cfg.fleet.health.hopper_idle_after_s,
        hopper_idle_timeout_s=scaling.hopper_idle_timeout_s,
        rebalance_per_hour=cfg.fleet.recovery.rebalance_moves_per_hour,
        moves=cfg.fleet.rebalance,
        removed_reason=cfg.stop_reason or "removed from the configuration",
    )


def _remote_host(loc: RemoteLocation, fixed: dict[str, FixedHost]) -> str:
    if loc.is_bare_name and loc.host in fixed:
        return loc.host
    host_id = str(loc).removeprefix("remote:")
    if host_id not in fixed:  # a literal (or an ~/.ssh/config alias): a static host of its own
        fixed[host_id] = FixedHost(host_id, "static", 2, loc.host, loc.port or 22, loc.user)
    return host_id


def _cloud_pool(loc: CloudLocation, pools: dict[str, PoolSpec]) -> str:
    for pool in pools.values():
        if (pool.provider == loc.cloud and pool.spot == loc.spot
                and loc.shape in pool.instance_types and loc.region in pool.regions):
            return pool.name
    name = implicit_pool_name(loc)
    if name not in pools:
        pools[name] = PoolSpec(name=name, provider=loc.cloud, instance_types=[loc.shape],
                               regions=[loc.region], spot=loc.spot)
    return name


def implicit_pool_name(loc: CloudLocation) -> str:
    """A valid, stable pool name for a cloud location (≤ 31 chars: a slug + a short hash)."""
    slug = re.sub(r"[^a-z0-9]+", "-", f"{loc.cloud}-{loc.shape}-{loc.region}".lower()).strip("-")
    digest = hashlib.sha256(str(loc).encode()).hexdigest()[:6]
    return f"{slug[:24].rstrip('-')}-{digest}"
