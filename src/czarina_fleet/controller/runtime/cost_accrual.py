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

from collections.abc import Sequence

from czarina_fleet.clock import Clock
from czarina_fleet.controller.state.store import Store
from czarina_fleet.cost.ledger import accrue_tick
from czarina_fleet.model import actions as A

# Actions that change which workers share which billed host.
ASSIGNMENT_CHANGES = (A.StartWorker, A.StopWorker, A.MigrateWorker, A.LaunchHost,
                      A.TerminateHost, A.AdoptWorker, A.CleanupOrphan)


def accrue_now(store: Store, clock: Clock) -> int:
    """Accrue up to now; returns the number of ledger entries written."""
    result = accrue_tick(store.hosts(), store.workers(), store.ledger_watermark(),
                         clock.now())
    store.add_ledger_entries(result.entries, accrued_until=result.accrued_until)
    return len(result.entries)


def accrue_before(store: Store, clock: Clock, actions: Sequence[A.Action]) -> int:
    """Accrue now if `actions` will change who runs where; else leave it to the
    periodic accrual job."""
    if any(isinstance(a, ASSIGNMENT_CHANGES) for a in actions):
        return accrue_now(store, clock)
    return 0
