"""The executor's host handlers: launch, bootstrap and terminate, each behind an intent.

Split from `executor.py` because these are the handlers that talk to the cloud
providers and carry the fleet identity (login key, per-host keys); the worker
handlers (`executor_workers.py`) only reach hosts through `HostAccess`.
Each function takes the `Executor` whose store, providers, access and retries it uses.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from czarina_fleet.controller.core.desired import Desired
from czarina_fleet.model import actions as A
from czarina_fleet.model.fleet import HostRecord, IntentStatus
from czarina_fleet.model.states import HostState
from czarina_fleet.providers.base import InstanceState, LaunchRequest, Provider

if TYPE_CHECKING:  # the executor imports this module to dispatch to it
    from czarina_fleet.controller.runtime.executor import Executor

log = logging.getLogger(__name__)
H = HostState


async def launch_host(ex: Executor, a: A.LaunchHost, d: Desired) -> None:
    pool = d.pools[a.pool]
    now = ex.clock.now()
    with ex.store.transaction():
        ex.store.begin_intent(a.key, "launch", {"host_id": a.host_id, "pool": a.pool})
        if ex.store.host(a.host_id) is None:
            ex.store.upsert_host(HostRecord(
                a.host_id, a.provider, H.REQUESTED, now, a.slots, pool=a.pool,
                work_dir=pool.work_dir, shape=a.shape, region=a.region, spot=a.spot,
                price_per_hour=a.price_per_hour, launched_at=now, intent_key=a.key,
                price_source=a.price_source or None),
                reason=a.reason)
    request = LaunchRequest(
        host_id=a.host_id, fleet=d.fleet_name, pool=a.pool, shape=a.shape, region=a.region,
        spot=a.spot, idempotency_key=a.key, ssh_user=pool.ssh_user,
        ssh_public_key=_login_key(ex), image=pool.image,
        max_price_per_hour=pool.max_price_per_hour, options=dict(pool.options),
        fleet_id=ex.fleet_id, **_host_key(ex, a.host_id, a.key))
    provider = ex.providers[a.pool]
    seen = len(provider.launch_attempts())
    try:
        inst = await ex.retry(lambda: provider.launch(request))
    except Exception as e:
        _record_attempts(ex, provider, a.host_id, seen)
        ex.store.transition_host(a.host_id, H.LAUNCH_FAILED, f"launch failed: {e}",
                                 last_error=str(e))
        ex.store.finish_intent(a.key, IntentStatus.FAILED, {"error": str(e)})
        raise
    _record_attempts(ex, provider, a.host_id, seen)
    offering = await _actual_offering(provider, a, inst.shape, inst.region, inst.spot)
    with ex.store.transaction():
        record_instance(ex, a.host_id, inst.instance_id, inst.state, inst.connect,
                        "launched", **offering)
        ex.store.finish_intent(a.key, IntentStatus.DONE, {"instance_id": inst.instance_id})


def _login_key(ex: Executor) -> str | None:
    if ex.ssh_public_key is None and ex.identity is not None:
        ex.ssh_public_key = ex.identity.public_key
    return ex.ssh_public_key


def _host_key(ex: Executor, host_id: str, intent: str) -> dict[str, str]:
    """The host key this host will present, made before launch (and the same on a
    relaunch with the same intent, never another launch's), so its first
    connection is verified."""
    if ex.identity is None:
        return {}
    private, public = ex.identity.host_keypair(host_id, intent)
    return {"host_private_key": private, "host_public_key": public}


def _record_attempts(ex: Executor, provider: Provider, host_id: str, seen: int) -> None:
    """Write the driver's failover steps (offering tried, outcome, why) as events,
    so the event log says why a launch moved to another region or type."""
    for attempt in list(provider.launch_attempts())[seen:]:
        if attempt.host_id != host_id:
            continue
        label = attempt.offering.label()
        why = f": {attempt.reason}" if attempt.reason else ""
        ex.store.record_event("host", host_id, f"launch {attempt.outcome} {label}{why}")


async def _actual_offering(provider: Provider, a: A.LaunchHost, shape: str,
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


def record_instance(ex: Executor, host_id: str, instance_id: str, state: InstanceState,
                    connect: Any, reason: str, **fields: Any) -> None:
    """Record a launched (or, after a restart, adopted) instance: booting once it runs
    and has an address, provisioning until then."""
    if state == InstanceState.RUNNING and connect is not None:
        ex.store.transition_host(host_id, H.BOOTING, reason, instance_id=instance_id,
                                 address=connect.address, port=connect.port,
                                 user=connect.user, **fields)
    else:
        ex.store.transition_host(host_id, H.PROVISIONING, reason, instance_id=instance_id,
                                 **fields)


async def bootstrap_host(ex: Executor, a: A.BootstrapHost, d: Desired) -> None:
    ex.store.begin_intent(a.key, "bootstrap", {"host_id": a.host_id})
    host = ex.store.transition_host(a.host_id, H.BOOTSTRAPPING, a.reason,
                                    attempts=a.attempt)
    await bootstrap(ex, a.key, host, "bootstrapped")


async def bootstrap(ex: Executor, key: str, host: HostRecord, done_reason: str) -> None:
    """Bootstrap `host` under the open intent `key` and record the outcome: ready, or
    bootstrap_failed with the error (re-raised). Also finishes a bootstrap that a
    restart interrupted (controller/runtime/recovery.py)."""
    try:
        await ex.retry(lambda: ex.access.bootstrap(host))
    except Exception as e:
        ex.store.transition_host(host.host_id, H.BOOTSTRAP_FAILED,
                                 f"bootstrap failed: {e}", last_error=str(e))
        ex.store.finish_intent(key, IntentStatus.FAILED, {"error": str(e)})
        raise
    ex.store.transition_host(host.host_id, H.READY, done_reason, last_error=None)
    ex.store.finish_intent(key, IntentStatus.DONE, {"summary": "ready"})
    await _forget_host_key(ex, host)


async def _forget_host_key(ex: Executor, host: Any) -> None:
    """The host answered with the key we made, so that key is in known_hosts: take
    it out of the instance's user data where the cloud allows (GCP). Best effort."""
    provider = ex.providers.get(host.pool or "")
    if ex.identity is None or provider is None or not host.instance_id:
        return
    try:
        if await provider.forget_host_key(host.instance_id):
            ex.store.record_event("host", host.host_id,
                                  "host key removed from the instance's user data")
    except Exception as e:  # the key stays readable there; say so, carry on
        log.warning("%s: could not remove the host key from user data: %s",
                    host.host_id, e)


async def terminate_host(ex: Executor, a: A.TerminateHost, d: Desired) -> None:
    ex.store.begin_intent(a.key, "terminate", {"host_id": a.host_id})
    host = ex.store.host(a.host_id)
    if host is not None and host.state != H.TERMINATING:
        ex.store.transition_host(a.host_id, H.TERMINATING, a.reason)
    provider = ex.providers.get(a.pool or "")
    if a.instance_id and provider is not None:
        await ex.retry(lambda: provider.terminate(a.instance_id or ""))
    if ex.identity is not None:
        ex.identity.forget_host(a.host_id)  # its host key dies with it
    ex.store.finish_intent(a.key, IntentStatus.DONE, {"summary": a.reason})
