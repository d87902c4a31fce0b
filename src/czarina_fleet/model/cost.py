"""Cost records: what one accrual tick produces. Plain frozen data, no I/O.

`LedgerEntry` itself lives in `model/fleet.py` with the other store records (the store
persists its fields as they are); it is re-exported here so cost code can import all
its data from one place. An entry is money spent on one host over [ts, ts + seconds),
attributed to one worker (or to `worker_id=None`: the host's idle capacity), at the
rate recorded when the host was launched, never re-read from a catalog.
"""

from __future__ import annotations

from dataclasses import dataclass

from czarina_fleet.model.fleet import LedgerEntry

__all__ = ["AccrualResult", "LedgerEntry"]


@dataclass(frozen=True, slots=True)
class AccrualResult:
    """One tick's accrual: the new entries and the watermark to store WITH them (in the
    same transaction: `Store.add_ledger_entries(entries, accrued_until=...)`), so a crash
    between the two can neither lose nor repeat money."""

    entries: list[LedgerEntry]
    accrued_until: float
