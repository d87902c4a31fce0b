"""Where a moving worker goes, and whether emptying a host pays. Pure.

Targets: a ready host with a free slot the worker may use, no pending notice, whose
load with the worker's share added stays under `load_low`. Cheaper offerings first
(price per slot: a free static host before a paid one); then, to consolidate, the
fullest host (packing), or, to rebalance, the least loaded.

Consolidation empties one pool host at a time, the one cheapest to empty (fewest
workers; then the most expensive, which saves most), when all its workers fit on the
hosts that stay, and only when the saving beats the cost of the moves:

    saving = host price per hour x (horizon_s - idle_timeout_s) / 3600
    cost   = workers moved x worker_minute_usd x move_downtime_s / 60

(the emptied host still bills until the idle-host rule terminates it, idle_timeout_s
later: the planner passes the timeout in force, `hopper_idle_timeout_s` in a
hopper-driven fleet, policies/idle.py `host_idle_after`). Consolidation never launches a
host, so no bootstrap is ever part of the cost.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from czarina_fleet.model.config import RebalanceSettings
from czarina_fleet.model.fleet import LoadSample
from czarina_fleet.policies.load import projected


@dataclass(slots=True)
class HostRoom:
    host_id: str
    pool: str | None
    price_per_hour: float
    slots: int
    used: int
    load: LoadSample | None  # its latest probe sample (None: not known, never a target)

    @property
    def price_per_slot(self) -> float:
        return self.price_per_hour / max(1, self.slots)


def saving_usd(price_per_hour: float, idle_timeout_s: float, cfg: RebalanceSettings) -> float:
    return price_per_hour * max(0.0, cfg.horizon_s - idle_timeout_s) / 3600.0


def move_cost_usd(workers: int, cfg: RebalanceSettings) -> float:
    return workers * cfg.worker_minute_usd * cfg.move_downtime_s / 60.0


def pays(price_per_hour: float, workers: int, idle_timeout_s: float,
         cfg: RebalanceSettings) -> bool:
    return saving_usd(price_per_hour, idle_timeout_s, cfg) > move_cost_usd(workers, cfg)


def could_take(r: HostRoom, cfg: RebalanceSettings) -> bool:
    """Could `r` take any worker at all? (A room that cannot never will in one plan:
    its slots only fill.) Lets the planner look at these hosts only."""
    return r.used < r.slots and r.load is not None and r.load.load_per_cpu < cfg.load_low


def pick_target(rooms: Iterable[HostRoom], may_use: Callable[[str], bool],
                worker_load: float, cfg: RebalanceSettings, *, pack: bool,
                extra: Mapping[str, int] | None = None) -> HostRoom | None:
    """The best host for one moving worker (see the module docstring), or None.
    `extra`: slots taken in a trial (host id -> workers), on top of `used`."""
    fits = []
    for r in rooms:
        planned = extra.get(r.host_id, 0) if extra else 0
        used = r.used + planned
        if used >= r.slots or r.load is None or not may_use(r.host_id):
            continue
        # The trial's workers placed there already bring their load too (else a host
        # whose workers fit the free slots but not the CPUs is emptied anyway).
        after = projected(r.load, worker_load * (1 + planned))
        if after >= cfg.load_low:
            continue
        fits.append((r.price_per_slot, -used if pack else after, r.host_id, r))
    return min(fits, key=lambda f: f[:3])[3] if fits else None


def emptying_order(hosts: Iterable[tuple[HostRoom, int]]) -> list[tuple[HostRoom, int]]:
    """(host, workers on it), cheapest to empty first."""
    return sorted(hosts, key=lambda p: (p[1], -p[0].price_per_hour, p[0].host_id))
