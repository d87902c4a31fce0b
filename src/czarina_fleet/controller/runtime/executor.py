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
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol, TypeVar, assert_never

from czarina_fleet.clock import Clock
from czarina_fleet.controller.core.desired import Desired
from czarina_fleet.controller.runtime.recovery import recover_open_intents
from czarina_fleet.controller.state.store import Store
from czarina_fleet.model import actions as A
from czarina_fleet.model.config import WorkerSpec
from czarina_fleet.model.fleet import HostProbe, HostRecord, IntentStatus, WorkerRecord
from czarina_fleet.model.states import HostState, WorkerState
from czarina_fleet.policies.interruption import checkpoint_budget
from czarina_fleet.providers.base import (
    Instance,
    InstanceState,
    LaunchRequest,
    Provider,
    ProviderError,
)
from czarina_fleet.remote.identity import FleetIdentity
from czarina_fleet.remote.runner import CommandTimeout, HostUnreachable

log = logging.getLogger(__name__)
H, W = HostState, WorkerState
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

    async def _retry(self, fn: Callable[[], Awaitable[T]]) -> T:
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
                await self._LaunchHost(a, desired)
            case A.BootstrapHost():
                await self._BootstrapHost(a, desired)
            case A.TerminateHost():
                await self._TerminateHost(a, desired)
            case A.StartWorker():
                await self._StartWorker(a, desired)
            case A.StopWorker():
                await self._StopWorker(a, desired)
            case A.MigrateWorker():
                await self._MigrateWorker(a, desired)
            case A.CleanupOrphan():
                await self._CleanupOrphan(a, desired)
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

    # --- side effects, each behind an intent ------------------------------------------

    async def _LaunchHost(self, a: A.LaunchHost, d: Desired) -> None:
        pool = d.pools[a.pool]
        now = self.clock.now()
        with self.store.transaction():
            self.store.begin_intent(a.key, "launch", {"host_id": a.host_id, "pool": a.pool})
            if self.store.host(a.host_id) is None:
                self.store.upsert_host(HostRecord(
                    a.host_id, a.provider, H.REQUESTED, now, a.slots, pool=a.pool,
                    work_dir=pool.work_dir, shape=a.shape, region=a.region, spot=a.spot,
                    price_per_hour=a.price_per_hour, launched_at=now, intent_key=a.key,
                    price_source=a.price_source or None),
                    reason=a.reason)
        request = LaunchRequest(
            host_id=a.host_id, fleet=d.fleet_name, pool=a.pool, shape=a.shape, region=a.region,
            spot=a.spot, idempotency_key=a.key, ssh_user=pool.ssh_user,
            ssh_public_key=self._login_key(), image=pool.image,
            max_price_per_hour=pool.max_price_per_hour, options=dict(pool.options),
            fleet_id=self.fleet_id, **self._host_key(a.host_id, a.key))
        provider = self.providers[a.pool]
        seen = len(provider.launch_attempts())
        try:
            inst = await self._retry(lambda: provider.launch(request))
        except Exception as e:
            self._record_attempts(provider, a.host_id, seen)
            self.store.transition_host(a.host_id, H.LAUNCH_FAILED, f"launch failed: {e}",
                                       last_error=str(e))
            self.store.finish_intent(a.key, IntentStatus.FAILED, {"error": str(e)})
            raise
        self._record_attempts(provider, a.host_id, seen)
        offering = await self._actual_offering(provider, a, inst.shape, inst.region, inst.spot)
        with self.store.transaction():
            self._record_instance(a.host_id, inst.instance_id, inst.state, inst.connect,
                                  "launched", **offering)
            self.store.finish_intent(a.key, IntentStatus.DONE, {"instance_id": inst.instance_id})

    def _login_key(self) -> str | None:
        if self.ssh_public_key is None and self.identity is not None:
            self.ssh_public_key = self.identity.public_key
        return self.ssh_public_key

    def _host_key(self, host_id: str, intent: str) -> dict[str, str]:
        """The host key this host will present, made before launch (and the same on a
        relaunch with the same intent, never another launch's), so its first
        connection is verified."""
        if self.identity is None:
            return {}
        private, public = self.identity.host_keypair(host_id, intent)
        return {"host_private_key": private, "host_public_key": public}

    def _record_attempts(self, provider: Provider, host_id: str, seen: int) -> None:
        """Write the driver's failover steps (offering tried, outcome, why) as events,
        so the event log says why a launch moved to another region or type."""
        for attempt in list(provider.launch_attempts())[seen:]:
            if attempt.host_id != host_id:
                continue
            label = attempt.offering.label()
            why = f": {attempt.reason}" if attempt.reason else ""
            self.store.record_event("host", host_id, f"launch {attempt.outcome} {label}{why}")

    async def _actual_offering(self, provider: Provider, a: A.LaunchHost, shape: str,
                               region: str, spot: bool) -> dict[str, Any]:
        """Where the driver really launched (after failover) and that offering's price.
        The recorded price never drops below the planned one: budgets stay safe."""
        if (shape, region, spot) == (a.shape, a.region, a.spot):
            return {}
        try:
            quote = await provider.prices(shape, region, spot)
        except Exception as e:  # no quote: keep the planned (budgeted) price
            log.warning("no price for %s %s: %s", shape, region, e)
            return {"shape": shape, "region": region, "spot": spot}
        price, source = max((quote.usd_per_hour, quote.source),
                            (a.price_per_hour, a.price_source))
        return {"shape": shape, "region": region, "spot": spot, "price_per_hour": price,
                "price_source": source or None}

    def _record_instance(self, host_id: str, instance_id: str, state: InstanceState,
                         connect: Any, reason: str, **fields: Any) -> None:
        if state == InstanceState.RUNNING and connect is not None:
            self.store.transition_host(host_id, H.BOOTING, reason, instance_id=instance_id,
                                       address=connect.address, port=connect.port,
                                       user=connect.user, **fields)
        else:
            self.store.transition_host(host_id, H.PROVISIONING, reason, instance_id=instance_id,
                                       **fields)

    async def _BootstrapHost(self, a: A.BootstrapHost, d: Desired) -> None:
        self.store.begin_intent(a.key, "bootstrap", {"host_id": a.host_id})
        host = self.store.transition_host(a.host_id, H.BOOTSTRAPPING, a.reason,
                                          attempts=a.attempt)
        await self.bootstrap(a.key, host, "bootstrapped")

    async def bootstrap(self, key: str, host: HostRecord, done_reason: str) -> None:
        """Bootstrap `host` under the open intent `key` and record the outcome: ready, or
        bootstrap_failed with the error (re-raised). Also finishes a bootstrap that a
        restart interrupted (controller/runtime/recovery.py)."""
        try:
            await self._retry(lambda: self.access.bootstrap(host))
        except Exception as e:
            self.store.transition_host(host.host_id, H.BOOTSTRAP_FAILED,
                                       f"bootstrap failed: {e}", last_error=str(e))
            self.store.finish_intent(key, IntentStatus.FAILED, {"error": str(e)})
            raise
        self.store.transition_host(host.host_id, H.READY, done_reason, last_error=None)
        self.store.finish_intent(key, IntentStatus.DONE, {"summary": "ready"})
        await self._forget_host_key(host)

    async def _forget_host_key(self, host: Any) -> None:
        """The host answered with the key we made, so that key is in known_hosts: take
        it out of the instance's user data where the cloud allows (GCP). Best effort."""
        provider = self.providers.get(host.pool or "")
        if self.identity is None or provider is None or not host.instance_id:
            return
        try:
            if await provider.forget_host_key(host.instance_id):
                self.store.record_event("host", host.host_id,
                                        "host key removed from the instance's user data")
        except Exception as e:  # the key stays readable there; say so, carry on
            log.warning("%s: could not remove the host key from user data: %s",
                        host.host_id, e)

    async def _TerminateHost(self, a: A.TerminateHost, d: Desired) -> None:
        self.store.begin_intent(a.key, "terminate", {"host_id": a.host_id})
        host = self.store.host(a.host_id)
        if host is not None and host.state != H.TERMINATING:
            self.store.transition_host(a.host_id, H.TERMINATING, a.reason)
        provider = self.providers.get(a.pool or "")
        if a.instance_id and provider is not None:
            await self._retry(lambda: provider.terminate(a.instance_id or ""))
        if self.identity is not None:
            self.identity.forget_host(a.host_id)  # its host key dies with it
        self.store.finish_intent(a.key, IntentStatus.DONE, {"summary": a.reason})

    async def _StartWorker(self, a: A.StartWorker, d: Desired) -> None:
        dw = d.worker(a.worker_id)
        if dw is None:
            raise KeyError(f"worker {a.worker_id} is not desired")
        with self.store.transaction():
            self.store.begin_intent(a.key, "start", {"worker_id": a.worker_id,
                                                     "host_id": a.host_id})
            if self.store.worker(a.worker_id) is None:
                self.store.upsert_worker(WorkerRecord(a.worker_id, W.PENDING, self.clock.now(),
                                                      location=a.location), reason="desired")
            self.store.transition_worker(a.worker_id, W.STARTING, a.reason, host_id=a.host_id,
                                         attempts=a.attempt, location=a.location)
        host = self._host(a.host_id)
        try:
            await self._retry(lambda: self.access.start_worker(host, dw.spec))
        except Exception as e:
            self.store.transition_worker(a.worker_id, W.FAILED, f"start failed: {e}",
                                         last_error=str(e))
            self.store.finish_intent(a.key, IntentStatus.FAILED, {"error": str(e)})
            raise
        self.store.transition_worker(a.worker_id, W.RUNNING, "session started",
                                     started_at=self.clock.now(), last_error=None)
        self.store.finish_intent(a.key, IntentStatus.DONE, {"summary": "running"})

    async def _StopWorker(self, a: A.StopWorker, d: Desired) -> None:
        self.store.begin_intent(a.key, "stop", {"worker_id": a.worker_id})
        host = self.store.host(a.host_id)
        if host is not None:
            await self._retry(lambda: self.access.stop_worker(host, a.worker_id))
        self.store.transition_worker(a.worker_id, W.SCALED_DOWN if a.scale_down else W.STOPPED,
                                     a.reason, last_error=a.reason)
        if a.forget:
            self.store.delete_worker(a.worker_id, a.reason)
        self.store.finish_intent(a.key, IntentStatus.DONE, {"summary": "stopped"})

    async def _MigrateWorker(self, a: A.MigrateWorker, d: Desired) -> None:
        """Stop first, then checkpoint: the agent cannot commit after the checkpoint and
        leave that commit behind. A failed checkpoint leaves the worker checkpointing
        (the planner tries again while a spot notice's deadline allows)."""
        self.store.begin_intent(a.key, "migrate", {"worker_id": a.worker_id})
        host = self._host(a.from_host)
        self.store.transition_worker(a.worker_id, W.CHECKPOINTING, a.reason)

        async def save() -> None:
            await self._retry(lambda: self.access.stop_worker(host, a.worker_id))
            await self._retry(lambda: self.access.checkpoint_worker(host, a.worker_id))

        budget = checkpoint_budget(a.deadline, self.clock.now(), self.timeout_s)
        try:
            await asyncio.wait_for(save(), budget)
        except Exception as e:
            self.store.finish_intent(a.key, IntentStatus.FAILED, {"error": str(e) or
                                                                  type(e).__name__})
            raise
        if a.to_host is not None:  # its slot there is held: it starts there next step
            self.store.transition_worker(a.worker_id, W.PLACING,
                                         f"checkpointed; to start on {a.to_host}",
                                         host_id=a.to_host, location=a.to_location)
        else:
            self.store.transition_worker(a.worker_id, W.PENDING,
                                         "checkpointed; to be placed at " + a.to_location,
                                         host_id=None, location=a.to_location)
        self.store.finish_intent(a.key, IntentStatus.DONE, {"summary": "checkpointed"})

    async def _CleanupOrphan(self, a: A.CleanupOrphan, d: Desired) -> None:
        self.store.begin_intent(a.key, "cleanup", {"what": a.what})
        if a.what == "instance" and a.instance_id and a.pool in self.providers:
            await self._retry(lambda: self.providers[a.pool or ""].terminate(a.instance_id or ""))
        elif a.what == "session" and a.host_id and a.worker_id:
            host = self.store.host(a.host_id)
            if host is not None:
                await self._retry(lambda: self.access.stop_worker(host, a.worker_id or ""))
        self.store.finish_intent(a.key, IntentStatus.DONE, {"summary": a.reason})

    def _host(self, host_id: str) -> HostRecord:
        host = self.store.host(host_id)
        if host is None:
            raise KeyError(f"host {host_id} is not in the store")
        return host

    # --- restart ------------------------------------------------------------------------

    async def recover(self) -> list[str]:
        """Close the intents a previous controller left open (run once at start; the
        rules are in `controller.recovery`). Returns what it did."""
        return await recover_open_intents(self)
