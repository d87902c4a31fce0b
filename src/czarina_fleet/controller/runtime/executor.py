"""The executor: carries out planned actions, idempotently.

- Every side effect is recorded as an intent (keyed by `action.key`) BEFORE it is made;
  a launch writes its intent and the host record (REQUESTED) in one transaction, and
  passes the key to the provider as the idempotency key.
- Phases run in order (records, stops, hosts, starts); the actions of one phase run
  concurrently, at most `concurrency` at a time, each bounded by `timeout_s`.
- Transient failures (ProviderError.retryable, HostUnreachable, timeouts) are retried
  with exponential backoff and jitter, slept on the injected clock.
- `recover()` (run once at start) closes intents a killed controller left open; it
  never launches again. How each kind is closed: `controller.recovery`.

This module is the engine (phases, concurrency, retries, dispatch) and the record-only
actions; the handlers with side effects live by what they touch:
`executor_hosts.py` (launch, bootstrap, terminate: providers and host keys) and
`executor_workers.py` (start, stop, migrate, orphan cleanup: sessions on hosts).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Protocol, TypeVar, assert_never

from czarina_fleet.clock import Clock
from czarina_fleet.controller.core.desired import Desired
from czarina_fleet.controller.core.observed import ConnectionLimit
from czarina_fleet.controller.runtime import executor_hosts, executor_workers
from czarina_fleet.controller.runtime.recovery import recover_open_intents
from czarina_fleet.controller.state.store import Store
from czarina_fleet.model import actions as A
from czarina_fleet.model.config import WorkerSpec
from czarina_fleet.model.fleet import HostProbe, HostRecord, IntentStatus, WorkerRecord
from czarina_fleet.model.states import WorkerState
from czarina_fleet.providers.base import Instance, Provider, ProviderError
from czarina_fleet.remote.identity import FleetIdentity
from czarina_fleet.remote.runner import CommandTimeout, HostUnreachable

log = logging.getLogger(__name__)
W = WorkerState
T = TypeVar("T")


class HostAccess(Protocol):
    """How the executor reaches hosts. The real one uses the remote layer (SSH pool,
    tmux and git operations); `providers.fake.InMemoryRuntime` keeps sessions in memory.
    Each method raises HostUnreachable when the host cannot be reached."""

    async def bootstrap(self, host: HostRecord) -> None: ...
    async def start_worker(self, host: HostRecord, spec: WorkerSpec) -> None:
        """Start the worker `spec` on `host` (its agent command comes from the config)."""
    async def stop_worker(self, host: HostRecord, worker_id: str) -> None: ...
    async def checkpoint_worker(self, host: HostRecord, worker_id: str) -> None: ...
    async def probe(self, host: HostRecord,
                    records: Sequence[WorkerRecord] | None = None) -> HostProbe:
        """One round trip: the host's facts and its workers' sessions (`records`: the
        workers the store places there, when the caller has read them already)."""
    def learn_instances(self, inventories: Mapping[str, list[Instance]]) -> None:
        """What the drivers listed (host keys, addresses), before the hosts are probed."""
    async def connect(self, host: HostRecord) -> None:
        """Open the host's connection if it is not open (a probe's timeout starts once
        connected); nothing to do where there is no connection."""
    def connection_limit(self, hosts: Sequence[HostRecord] = ()) -> ConnectionLimit | None:
        """How many hosts can be kept connected (the open file limit), after letting go of
        `hosts` that are gone; None: no limit."""
    async def ack_notice(self, host: HostRecord, event_ids: list[str]) -> None:
        """Approve the cloud's scheduled events on the host (Azure's, read there)."""


@dataclass(frozen=True, slots=True)
class ActionResult:
    action: A.Action
    ok: bool
    error: str | None = None
    skipped: bool = False

    @property
    def outcome(self) -> str:
        return "skipped" if self.skipped else ("ok" if self.ok else "failed")


def is_transient(e: BaseException) -> bool:
    return (isinstance(e, ProviderError) and e.retryable) or isinstance(
        e, HostUnreachable | CommandTimeout | TimeoutError)


class Executor:
    def __init__(self, store: Store, providers: Mapping[str, Provider], access: HostAccess,
                 clock: Clock, *, concurrency: int = 16, timeout_s: float = 300.0,
                 retries: int = 3, backoff_s: float = 1.0, rng: random.Random | None = None,
                 ssh_public_key: str | None = None,
                 identity: FleetIdentity | None = None, fleet_id: str = "") -> None:
        self.store, self.providers, self.access, self.clock = store, providers, access, clock
        self.concurrency, self.timeout_s = concurrency, timeout_s
        self.retries, self.backoff_s = retries, backoff_s
        self.rng = rng or random.Random()
        self.ssh_public_key = ssh_public_key
        # Made lazily at the first launch: a fleet without pools never needs keys.
        self.identity = identity
        self.fleet_id = fleet_id  # the ownership mark launches carry (config/identity.py)

    async def execute(self, actions: Sequence[A.Action], desired: Desired) -> list[ActionResult]:
        results: list[ActionResult] = []
        sem = asyncio.Semaphore(self.concurrency)

        async def one(action: A.Action) -> ActionResult:
            async with sem:
                return await self._run(action, desired)

        for phase in sorted({a.phase for a in actions}):
            batch = [a for a in actions if a.phase == phase]
            results.extend(await asyncio.gather(*(one(a) for a in batch)))
        return results

    async def _run(self, action: A.Action, desired: Desired) -> ActionResult:
        try:
            if isinstance(action, A.LaunchHost):
                intent = self.store.intent(action.key)
                if intent is not None and intent.status != IntentStatus.OPEN:
                    return ActionResult(action, True, skipped=True)  # never launch twice
            await asyncio.wait_for(self._apply(action, desired), self.timeout_s)
            return ActionResult(action, True)
        except Exception as e:  # one action's failure must not stop the others
            log.warning("action failed: %s: %s", action.describe(), e)
            return ActionResult(action, False, f"{type(e).__name__}: {e}")

    async def retry(self, fn: Callable[[], Awaitable[T]]) -> T:
        """Run `fn`, retrying transient failures (`is_transient`) with exponential
        backoff and jitter on the injected clock; the last failure is re-raised."""
        for attempt in range(1, self.retries + 1):
            try:
                return await fn()
            except Exception as e:
                if not is_transient(e) or attempt == self.retries:
                    raise
                delay = self.backoff_s * 2 ** (attempt - 1) * (0.5 + self.rng.random())
                await self.clock.sleep(delay)
        raise AssertionError("unreachable")

    async def _apply(self, a: A.Action, desired: Desired) -> None:
        # Explicit dispatch: an action type without a handler fails type checking here
        # (assert_never), not at run time.
        match a:
            case A.AdoptHost():
                await self._AdoptHost(a, desired)
            case A.MarkHost():
                await self._MarkHost(a, desired)
            case A.AdoptWorker():
                await self._AdoptWorker(a, desired)
            case A.MarkWorker():
                await self._MarkWorker(a, desired)
            case A.LaunchHost():
                await executor_hosts.launch_host(self, a, desired)
            case A.BootstrapHost():
                await executor_hosts.bootstrap_host(self, a, desired)
            case A.TerminateHost():
                await executor_hosts.terminate_host(self, a, desired)
            case A.StartWorker():
                await executor_workers.start_worker(self, a, desired)
            case A.StopWorker():
                await executor_workers.stop_worker(self, a, desired)
            case A.MigrateWorker():
                await executor_workers.migrate_worker(self, a, desired)
            case A.CleanupOrphan():
                await executor_workers.cleanup_orphan(self, a, desired)
            case A.NoteEvent():
                self.store.record_event(a.entity, a.entity_id, a.reason)
            case _:
                assert_never(a)

    # --- records (no side effect outside the store) -----------------------------------

    async def _AdoptHost(self, a: A.AdoptHost, d: Desired) -> None:
        self.store.upsert_host(a.host, reason=a.reason)

    async def _MarkHost(self, a: A.MarkHost, d: Desired) -> None:
        self.store.transition_host(a.host_id, a.state, a.reason, **dict(a.fields))

    async def _AdoptWorker(self, a: A.AdoptWorker, d: Desired) -> None:
        now = self.clock.now()
        self.store.upsert_worker(WorkerRecord(a.worker_id, W.RUNNING, now, a.host_id,
                                              a.location, started_at=now), reason=a.reason)

    async def _MarkWorker(self, a: A.MarkWorker, d: Desired) -> None:
        if self.store.worker(a.worker_id) is None:
            record = replace(WorkerRecord(a.worker_id, a.state, self.clock.now()),
                             **dict(a.fields))
            self.store.upsert_worker(record, reason=a.reason)
        else:
            self.store.transition_worker(a.worker_id, a.state, a.reason, **dict(a.fields))

    # --- restart ------------------------------------------------------------------------

    async def recover(self) -> list[str]:
        """Close the intents a previous controller left open (run once at start; the
        rules are in `controller.recovery`). Returns what it did."""
        return await recover_open_intents(self)
