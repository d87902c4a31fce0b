"""The executor's worker handlers: start, stop, migrate (stop + checkpoint) and orphan
cleanup, each behind an intent.

Split from `executor.py` because these reach hosts only through `HostAccess` (tmux
sessions, git checkpoints), never a cloud provider's launch path; the host lifecycle
lives in `executor_hosts.py`. Each function takes the `Executor` whose store, access,
clock and retries it uses.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from czarina_fleet.controller.core.desired import Desired
from czarina_fleet.model import actions as A
from czarina_fleet.model.fleet import HostRecord, IntentStatus, WorkerRecord
from czarina_fleet.model.states import WorkerState
from czarina_fleet.policies.interruption import checkpoint_budget

if TYPE_CHECKING:  # the executor imports this module to dispatch to it
    from czarina_fleet.controller.runtime.executor import Executor

W = WorkerState


async def start_worker(ex: Executor, a: A.StartWorker, d: Desired) -> None:
    dw = d.worker(a.worker_id)
    if dw is None:
        raise KeyError(f"worker {a.worker_id} is not desired")
    with ex.store.transaction():
        ex.store.begin_intent(a.key, "start", {"worker_id": a.worker_id,
                                               "host_id": a.host_id})
        if ex.store.worker(a.worker_id) is None:
            ex.store.upsert_worker(WorkerRecord(a.worker_id, W.PENDING, ex.clock.now(),
                                                location=a.location), reason="desired")
        ex.store.transition_worker(a.worker_id, W.STARTING, a.reason, host_id=a.host_id,
                                   attempts=a.attempt, location=a.location)
    host = _host(ex, a.host_id)
    try:
        await ex.retry(lambda: ex.access.start_worker(host, dw.spec))
    except Exception as e:
        ex.store.transition_worker(a.worker_id, W.FAILED, f"start failed: {e}",
                                   last_error=str(e))
        ex.store.finish_intent(a.key, IntentStatus.FAILED, {"error": str(e)})
        raise
    ex.store.transition_worker(a.worker_id, W.RUNNING, "session started",
                               started_at=ex.clock.now(), last_error=None)
    ex.store.finish_intent(a.key, IntentStatus.DONE, {"summary": "running"})


async def stop_worker(ex: Executor, a: A.StopWorker, d: Desired) -> None:
    ex.store.begin_intent(a.key, "stop", {"worker_id": a.worker_id})
    host = ex.store.host(a.host_id)
    if host is not None:
        await ex.retry(lambda: ex.access.stop_worker(host, a.worker_id))
    ex.store.transition_worker(a.worker_id, W.SCALED_DOWN if a.scale_down else W.STOPPED,
                               a.reason, last_error=a.reason)
    if a.forget:
        ex.store.delete_worker(a.worker_id, a.reason)
    ex.store.finish_intent(a.key, IntentStatus.DONE, {"summary": "stopped"})


async def migrate_worker(ex: Executor, a: A.MigrateWorker, d: Desired) -> None:
    """Stop first, then checkpoint: the agent cannot commit after the checkpoint and
    leave that commit behind. A failed checkpoint leaves the worker checkpointing
    (the planner tries again while a spot notice's deadline allows)."""
    ex.store.begin_intent(a.key, "migrate", {"worker_id": a.worker_id})
    host = _host(ex, a.from_host)
    ex.store.transition_worker(a.worker_id, W.CHECKPOINTING, a.reason)

    async def save() -> None:
        await ex.retry(lambda: ex.access.stop_worker(host, a.worker_id))
        await ex.retry(lambda: ex.access.checkpoint_worker(host, a.worker_id))

    budget = checkpoint_budget(a.deadline, ex.clock.now(), ex.timeout_s)
    try:
        await asyncio.wait_for(save(), budget)
    except Exception as e:
        ex.store.finish_intent(a.key, IntentStatus.FAILED, {"error": str(e) or
                                                            type(e).__name__})
        raise
    if a.to_host is not None:  # its slot there is held: it starts there next step
        ex.store.transition_worker(a.worker_id, W.PLACING,
                                   f"checkpointed; to start on {a.to_host}",
                                   host_id=a.to_host, location=a.to_location)
    else:
        ex.store.transition_worker(a.worker_id, W.PENDING,
                                   "checkpointed; to be placed at " + a.to_location,
                                   host_id=None, location=a.to_location)
    ex.store.finish_intent(a.key, IntentStatus.DONE, {"summary": "checkpointed"})


async def cleanup_orphan(ex: Executor, a: A.CleanupOrphan, d: Desired) -> None:
    ex.store.begin_intent(a.key, "cleanup", {"what": a.what})
    if a.what == "instance" and a.instance_id and a.pool in ex.providers:
        await ex.retry(lambda: ex.providers[a.pool or ""].terminate(a.instance_id or ""))
    elif a.what == "session" and a.host_id and a.worker_id:
        host = ex.store.host(a.host_id)
        if host is not None:
            await ex.retry(lambda: ex.access.stop_worker(host, a.worker_id or ""))
    ex.store.finish_intent(a.key, IntentStatus.DONE, {"summary": a.reason})


def _host(ex: Executor, host_id: str) -> HostRecord:
    host = ex.store.host(host_id)
    if host is None:
        raise KeyError(f"host {host_id} is not in the store")
    return host
