"""Restart recovery: close the intents a killed controller left open.

Run once at start, through `Executor.recover()`, with that executor's store, providers,
host access, retries and timeout:
- a launch whose instance exists (found by its ownership tag) is adopted; one with no
  instance is rolled back (the host never existed: terminated, no launch backoff).
  Recovery never launches again.
- idempotent bootstraps and terminates are finished;
- a start is rolled back (its session stopped, the worker placed again);
- the rest are rolled back, to be re-planned.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from czarina_fleet.controller.runtime.executor_hosts import bootstrap, record_instance
from czarina_fleet.model.fleet import HostRecord, IntentStatus
from czarina_fleet.model.states import HostState, WorkerState

if TYPE_CHECKING:  # the executor imports this module to delegate to it
    from czarina_fleet.controller.runtime.executor import Executor

log = logging.getLogger(__name__)
H, W = HostState, WorkerState


async def recover_open_intents(ex: Executor) -> list[str]:
    """Close the intents a previous controller left open. Returns what it did."""
    done: list[str] = []
    for intent in ex.store.open_intents():
        host_id = str(intent.payload.get("host_id", ""))
        if intent.kind == "launch":
            done.append(await _recover_launch(ex, intent.key, host_id,
                                              str(intent.payload.get("pool", ""))))
            continue
        host = ex.store.host(host_id) if host_id else None
        if intent.kind == "terminate" and host is not None:
            done.append(await _recover_terminate(ex, intent.key, host))
            continue
        if intent.kind == "bootstrap" and host is not None and host.state == H.BOOTSTRAPPING:
            done.append(await _recover_bootstrap(ex, intent.key, host))
            continue
        if intent.kind == "start" and host is not None:
            await _recover_start(ex, str(intent.payload.get("worker_id", "")), host)
        ex.store.finish_intent(intent.key, IntentStatus.ROLLED_BACK,
                               {"summary": "interrupted by a restart; re-planned"})
        done.append(f"rolled back {intent.key}")
    return done


async def _recover_bootstrap(ex: Executor, key: str, host: HostRecord) -> str:
    """Finish it (bootstrapping is idempotent): the restart says nothing about the
    host, so it must not cost a bootstrap attempt and a backoff."""
    try:
        await asyncio.wait_for(bootstrap(ex, key, host, "bootstrapped after a restart"),
                               ex.timeout_s)
    except TimeoutError as e:  # cancelled inside bootstrap(), before it recorded anything
        ex.store.transition_host(host.host_id, H.BOOTSTRAP_FAILED,
                                 f"bootstrap failed: {e}", last_error=str(e))
        ex.store.finish_intent(key, IntentStatus.FAILED, {"error": str(e)})
        return f"failed {key}: {e}"
    except Exception as e:  # bootstrap() recorded the failure
        return f"failed {key}: {e}"
    return f"finished {key}"


async def _recover_terminate(ex: Executor, key: str, host: HostRecord) -> str:
    """Finish it: terminating is idempotent, and a host left half torn down would
    otherwise wait out the TERMINATING timeout."""
    provider = ex.providers.get(host.pool or "")
    if host.instance_id and provider is not None:
        try:
            await asyncio.wait_for(ex.retry(
                lambda: provider.terminate(host.instance_id or "")), ex.timeout_s)
        except Exception as e:  # the planner's TERMINATING timeout tries again
            log.warning("terminate %s after a restart: %s", host.host_id, e)
            ex.store.finish_intent(key, IntentStatus.FAILED, {"error": str(e)})
            return f"could not finish {key}: {e}"
    ex.store.finish_intent(key, IntentStatus.DONE, {"summary": "finished after a restart"})
    return f"finished {key}"


async def _recover_start(ex: Executor, worker_id: str, host: HostRecord) -> None:
    """Roll a start back: its session may or may not exist (and got no task if the
    kill came first), so stop it and place the worker again rather than wait out
    the STARTING timeout. A session that got its task (marked ready: the start did
    finish, only its record did not, or the store was rolled back) is kept as the
    running worker. A session that survives an unreachable host is found by the next
    probe and adopted or cleaned up."""
    w = ex.store.worker(worker_id)
    if w is None or w.state != W.STARTING or w.host_id != host.host_id:
        return
    try:
        # its own record: a probe left to read the store reads every worker, once
        # per start being recovered
        probe = await asyncio.wait_for(ex.access.probe(host, [w]), 30)
        seen = probe.sessions.get(worker_id) if probe.reachable else None
    except Exception as e:
        log.warning("probe %s after a restart: %s", host.host_id, e)
        seen = None
    if seen is not None and seen.alive and seen.ready:
        ex.store.transition_worker(worker_id, W.RUNNING, "its session is up with its task "
                                   "(the start finished before the restart)",
                                   started_at=ex.clock.now(), last_error=None)
        return
    try:
        await asyncio.wait_for(ex.access.stop_worker(host, worker_id), 30)
    except Exception as e:
        log.warning("stop %s on %s after a restart: %s", worker_id, host.host_id, e)
    ex.store.transition_worker(worker_id, W.PENDING,
                               "start interrupted by a restart: place again",
                               host_id=None)


async def _recover_launch(ex: Executor, key: str, host_id: str, pool: str) -> str:
    provider = ex.providers.get(pool)
    if provider is None:
        return f"left {key} open: no provider for pool {pool}"
    found = [i for i in await provider.list_instances() if i.host_id == host_id]
    host = ex.store.host(host_id)
    with ex.store.transaction():
        if found and host is not None:
            inst = found[0]
            if host.state == H.REQUESTED:
                record_instance(ex, host_id, inst.instance_id, inst.state, inst.connect,
                                "adopted after a restart")
            ex.store.finish_intent(key, IntentStatus.DONE,
                                   {"instance_id": inst.instance_id, "summary": "adopted"})
            return f"adopted {inst.instance_id} for {key}"
        if host is not None and host.state == H.REQUESTED:
            # Nothing was made: the host never existed. Not a launch failure (that
            # would make the pool back off): the restart says nothing about the pool.
            ex.store.transition_host(host_id, H.TERMINATING,
                                     "launch interrupted by a restart; no instance")
            ex.store.transition_host(host_id, H.TERMINATED, "nothing was launched")
        ex.store.finish_intent(key, IntentStatus.ROLLED_BACK,
                               {"summary": "no instance found after a restart"})
        return f"rolled back {key}"
