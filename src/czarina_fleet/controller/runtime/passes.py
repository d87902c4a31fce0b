"""When one reconcile step plans again: the follow-up rule.

A step observes, plans and acts. Some of what it does changes what the planner would
decide right away: a host seen running can be bootstrapped, a bootstrapped host can take
the workers waiting for it, a worker checkpointed off a host can start where its slot is
held. Waiting a whole interval (15 s) for each of those links made the launch path of a
new host the launch latency plus two intervals. Like controller-runtime's immediate
requeue, the step instead observes and plans again (the same observe and pure plan as a
new step, against the world and the store as this pass left them), at most
`MAX_PASSES` times in all, and only while a worker waits for a place: with nobody
waiting, there is nothing to gain from the extra listing and probes.

Each pass is a complete observe -> plan -> act, so every guarantee of a step holds for
it: intents before side effects, pool max, fleet max and budget checked against what
the earlier passes launched, one pass at a time.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from czarina_fleet.controller.runtime.executor import ActionResult
from czarina_fleet.model.actions import BootstrapHost, LaunchHost, MarkHost, MigrateWorker
from czarina_fleet.model.fleet import HostRecord, WorkerRecord
from czarina_fleet.model.states import HostState, WorkerState

# Seen running -> bootstrapped -> workers started: three links, one pass each.
MAX_PASSES = 3
WAITING = frozenset({WorkerState.PENDING, WorkerState.PLACING})


def follow_ups(results: Sequence[ActionResult], hosts: Iterable[HostRecord],
               workers: Iterable[WorkerRecord]) -> list[str]:
    """Why another pass would plan more now (empty: no reason). `hosts` and `workers`:
    the store's records after this pass's actions."""
    waiting = sorted(w.worker_id for w in workers if w.state in WAITING)
    if not waiting:
        return []
    state = {h.host_id: h.state for h in hosts}
    why: list[str] = []
    for r in results:
        if not r.ok or r.skipped:
            continue
        a = r.action
        if isinstance(a, MarkHost) and a.state == HostState.BOOTING:
            why.append(f"host {a.host_id} is running: bootstrap it")
        elif isinstance(a, LaunchHost) and state.get(a.host_id) == HostState.BOOTING:
            why.append(f"host {a.host_id} was running at launch: bootstrap it")
        elif isinstance(a, BootstrapHost) and state.get(a.host_id) == HostState.READY:
            why.append(f"host {a.host_id} is ready")
        elif isinstance(a, MigrateWorker):
            why.append(f"worker {a.worker_id} is checkpointed")
    if not why:
        return []
    shown = ", ".join(waiting[:5]) + (f" and {len(waiting) - 5} more" if len(waiting) > 5
                                      else "")
    return [*why, f"waiting for a place: {shown}"]
