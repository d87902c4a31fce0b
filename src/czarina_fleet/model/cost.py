"""Cost records: what the ledger holds. Plain frozen data, no I/O.

A `LedgerEntry` is money spent on one host over one interval, attributed to one worker
(or to `worker_id=None`: the host's idle capacity). The rate is the one recorded when
the host was launched (`HostRecord.price_per_hour`), never re-read from a catalog, so a
report made today and one made next year from the same entries agree.
"""

from __future__ import annotations

from dataclasses import dataclass

IDLE_WORKER = None  # worker_id of the entries that carry a host's unused slots


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """`usd` spent on `host_id` over [start, end) (epoch seconds), attributed to
    `worker_id` (None = idle capacity) by `share` (the fraction of the host's cost over
    that interval that this entry carries: slot share x time on the host)."""

    host_id: str
    worker_id: str | None
    start: float
    end: float
    usd: float
    rate_per_hour: float          # the host's whole rate, as recorded at launch
    share: float                  # usd / (rate_per_hour x hours), in [0, 1]
    provider: str
    pool: str | None = None
    shape: str | None = None
    region: str | None = None
    spot: bool = False
    instance_id: str | None = None
    currency: str = "USD"

    @property
    def hours(self) -> float:
        return (self.end - self.start) / 3600.0

    @property
    def is_idle_capacity(self) -> bool:
        return self.worker_id is None


@dataclass(frozen=True, slots=True)
class AccrualResult:
    """One tick's accrual: the new entries and the watermark to store WITH them (in the
    same transaction), so a crash between the two can neither lose nor repeat money."""

    entries: list[LedgerEntry]
    accrued_until: float
