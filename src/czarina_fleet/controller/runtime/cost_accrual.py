"""Cost accrual against the store: the ledger's watermark moves to now, every host's
recorded price accrued over the time since, attributed to the workers on it by slot
share. Exactly once: entries and watermark are written in one transaction.

Attribution uses who runs where *at accrual time* for the whole interval, so the
controller also accrues right before it acts on who runs where (a start, a stop, a
move, a host launched or terminated): every interval is billed to the workers that
really ran in it, at the granularity of the reconcile step, without a ledger row per
step when nothing changes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from czarina_fleet.clock import Clock
from czarina_fleet.controller.state.store import Store
from czarina_fleet.cost.ledger import ENDED_STATES, accrue_tick
from czarina_fleet.model import actions as A
from czarina_fleet.model.fleet import HostRecord

# Actions that change which workers share which billed host.
ASSIGNMENT_CHANGES = (A.StartWorker, A.StopWorker, A.MigrateWorker, A.LaunchHost,
                      A.TerminateHost, A.AdoptWorker, A.CleanupOrphan)


def accrue_now(store: Store, clock: Clock, actions: Sequence[A.Action] = ()) -> int:
    """Accrue up to now; returns the number of ledger entries written. A host that
    `actions` record as ended earlier (interrupted when the cloud took it) is billed
    only up to then."""
    hosts = _with_planned_ends(store.hosts(), actions)
    result = accrue_tick(hosts, store.workers(), store.ledger_watermark(), clock.now())
    store.add_ledger_entries(result.entries, accrued_until=result.accrued_until)
    return len(result.entries)


def accrue_before(store: Store, clock: Clock, actions: Sequence[A.Action]) -> int:
    """Accrue now if `actions` will change who runs where; else leave it to the
    periodic accrual job."""
    if any(isinstance(a, ASSIGNMENT_CHANGES) or _ends_host(a) for a in actions):
        return accrue_now(store, clock, actions)
    return 0


def _ends_host(a: A.Action) -> bool:
    return isinstance(a, A.MarkHost) and a.state in ENDED_STATES


def _with_planned_ends(hosts: list[HostRecord], actions: Sequence[A.Action]
                       ) -> list[HostRecord]:
    ends = {a.host_id: (a.state, dict(a.fields).get("state_since"))
            for a in actions if _ends_host(a)}
    out = []
    for h in hosts:
        end = ends.get(h.host_id)
        if end is not None and isinstance(end[1], float | int):
            h = dataclasses.replace(h, state=end[0], state_since=float(end[1]))
        out.append(h)
    return out
