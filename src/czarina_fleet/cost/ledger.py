"""Cost accrual: pure functions from host and worker records to ledger entries.

How money is counted, exactly once:

- A host is billed over its lifetime: from `launched_at` until it ends (the
  `state_since` of a terminal state: terminated, interrupted, launch_failed). A host
  that is terminating or whose bootstrap failed is still running, so still billed.
  Local and static hosts have no launch time: they are billed (at their recorded
  `price_per_hour`, 0 unless one was configured) for as long as the fleet tracks them.
- The rate is `HostRecord.price_per_hour`, the price recorded at launch. The catalog is
  never consulted here: a catalog that changes later changes no past or future accrual
  of a host already running.
- The controller keeps ONE watermark, `accrued_until`. Each tick calls
  `accrue_tick(hosts, workers, accrued_until, now)` and stores the entries together with
  the returned watermark in one transaction. Intervals are therefore contiguous
  ([w0, w1), [w1, w2), ...) and never overlap; since accrual over [a, c) equals accrual
  over [a, b) plus [b, c) (property-tested), how the ticks fall changes no total.
  The controller must pass every host whose lifetime may overlap [accrued_until, now),
  including hosts that ended since the last tick.
- A host's cost over an interval is split by slot share: each active worker on it
  carries 1/slots of the rate for the time it was there (from `started_at`); the rest is
  one entry with `worker_id=None`, the host's idle capacity. If more workers are on a
  host than it has slots, each carries 1/n. The parts sum to the host's total.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence

from czarina_fleet.model.cost import AccrualResult, LedgerEntry
from czarina_fleet.model.fleet import HostRecord, WorkerRecord
from czarina_fleet.model.states import HOST_MAY_BILL, WORKER_ACTIVE, HostState

# States in which the cloud still bills for the machine.
BILLED_STATES = HOST_MAY_BILL
# Terminal states: billing stopped at `state_since`.
ENDED_STATES = frozenset({HostState.TERMINATED, HostState.INTERRUPTED, HostState.LAUNCH_FAILED})
# Providers whose hosts exist without being launched by us.
UNLAUNCHED_PROVIDERS = frozenset({"local", "static"})

_SECONDS_PER_HOUR = 3600.0


def entry_end(entry: LedgerEntry) -> float:
    return entry.ts + entry.seconds


def entry_share(entry: LedgerEntry) -> float:
    """The fraction of its host's rate an entry carries over its own interval: 1/slots
    for a worker, the unused fraction for idle capacity."""
    if entry.rate_per_hour <= 0 or entry.seconds <= 0:
        return 0.0
    return entry.usd * _SECONDS_PER_HOUR / (entry.rate_per_hour * entry.seconds)


def entry_host_hours(entry: LedgerEntry) -> float:
    """Hours of host capacity the entry carries (slot share x time): usd / rate."""
    return entry.usd / entry.rate_per_hour if entry.rate_per_hour > 0 else 0.0


def accrue(
    hosts: Sequence[HostRecord],
    workers: Sequence[WorkerRecord],
    since: float,
    until: float,
) -> list[LedgerEntry]:
    """Entries for the money spent over [since, until) by every host in `hosts`,
    attributed to the active workers in `workers` by slot share. Pure; deterministic
    order (host id, then worker id, idle capacity last). Hosts with a zero rate produce
    no entries. Raises ValueError if until < since."""
    if until < since:
        raise ValueError(f"accrual interval ends ({until}) before it starts ({since})")
    by_host = _active_workers_by_host(workers)
    entries: list[LedgerEntry] = []
    for host in sorted(hosts, key=lambda h: h.host_id):
        entries.extend(_accrue_host(host, by_host.get(host.host_id, []), since, until))
    return entries


def accrue_tick(
    hosts: Sequence[HostRecord],
    workers: Sequence[WorkerRecord],
    accrued_until: float | None,
    now: float,
) -> AccrualResult:
    """One tick of the watermark protocol (see the module docstring). With no watermark
    yet (first run of a new store), accrual starts at the earliest known host launch, so
    hosts adopted from an earlier run are billed from their start. A clock that went
    backwards accrues nothing and never moves the watermark back."""
    since = accrued_until if accrued_until is not None else _earliest_start(hosts, now)
    if now <= since:
        return AccrualResult(entries=[], accrued_until=since)
    return AccrualResult(entries=accrue(hosts, workers, since, now), accrued_until=now)


def spend_rate(hosts: Iterable[HostRecord]) -> float:
    """USD per hour being spent now: the recorded rate of every host still billed."""
    return sum(h.price_per_hour for h in hosts if h.state in BILLED_STATES)


def host_lifetime(host: HostRecord) -> tuple[float, float] | None:
    """[start, end) during which `host` is billed (end may be +inf), or None when it has
    no known start and is not a local/static host (it was never launched)."""
    if host.launched_at is not None:
        start = host.launched_at
    elif host.provider in UNLAUNCHED_PROVIDERS:
        start = -math.inf
    else:
        return None
    end = host.state_since if host.state in ENDED_STATES else math.inf
    return start, max(start, end)


def _active_workers_by_host(workers: Sequence[WorkerRecord]) -> dict[str, list[WorkerRecord]]:
    by_host: dict[str, list[WorkerRecord]] = defaultdict(list)
    for w in workers:
        if w.host_id is not None and w.state in WORKER_ACTIVE:
            by_host[w.host_id].append(w)
    for ws in by_host.values():
        ws.sort(key=lambda w: w.worker_id)
    return by_host


def _accrue_host(
    host: HostRecord, workers: list[WorkerRecord], since: float, until: float
) -> list[LedgerEntry]:
    life = host_lifetime(host)
    if life is None or host.price_per_hour <= 0:
        return []
    a, b = max(since, life[0]), min(until, life[1])
    if b <= a:
        return []
    span = b - a
    divisor = max(host.slots, len(workers), 1)
    rate = host.price_per_hour
    entries: list[LedgerEntry] = []
    used_slot_seconds = 0.0
    for w in workers:
        # A worker that started inside the interval carries only its part of it.
        wa = a if w.started_at is None else max(a, w.started_at)
        if wa >= b:
            continue
        seconds = b - wa
        used_slot_seconds += seconds
        entries.append(_entry(host, w.worker_id, wa, b, rate, seconds / divisor))
    idle_slot_seconds = divisor * span - used_slot_seconds
    # Summing slot-seconds can leave a float crumb when every slot is used: no entry.
    if idle_slot_seconds > 1e-9 * span:
        entries.append(_entry(host, None, a, b, rate, idle_slot_seconds / divisor))
    return entries


def _entry(
    host: HostRecord,
    worker_id: str | None,
    start: float,
    end: float,
    rate: float,
    host_seconds: float,
) -> LedgerEntry:
    """An entry over [start, end) carrying `host_seconds` of the host's rate (slot share
    x time). `ts` is the start of the interval, `seconds` its length."""
    return LedgerEntry(
        ts=start,
        host_id=host.host_id,
        worker_id=worker_id,
        pool=host.pool,
        provider=host.provider,
        shape=host.shape,
        region=host.region,
        spot=host.spot,
        usd=rate * host_seconds / _SECONDS_PER_HOUR,
        rate_per_hour=rate,
        seconds=end - start,
    )


def _earliest_start(hosts: Sequence[HostRecord], now: float) -> float:
    starts = [
        life[0] for h in hosts
        if (life := host_lifetime(h)) is not None and math.isfinite(life[0])
    ]
    return min([*starts, now])
