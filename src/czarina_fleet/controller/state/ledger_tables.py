"""The store's cost ledger: entries in the `ledger` table, the accrual watermark in `meta`.

A mixin of `Store` (callers keep calling `store.ledger()` etc.): `Store` supplies the
connection and `transaction()`, so an append and its watermark move share one
transaction, and a crash can neither lose nor repeat money.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from collections.abc import Iterable
from typing import Any

from czarina_fleet.controller.state.table_base import StoreTables
from czarina_fleet.model.fleet import LedgerEntry

_LEDGER_FIELDS = [f.name for f in dataclasses.fields(LedgerEntry)]


class CostLedgerMixin(StoreTables):
    """The cost-ledger methods of `Store`."""

    def add_ledger_entries(self, entries: Iterable[LedgerEntry],
                           accrued_until: float | None = None) -> int:
        """Append entries and, in the same transaction, move the accrual watermark to
        `accrued_until` (so a crash can neither lose nor repeat money)."""
        rows = [_ledger_row(e) for e in entries]
        cols = ", ".join(f'"{n}"' for n in _LEDGER_FIELDS)
        marks = ", ".join("?" for _ in _LEDGER_FIELDS)
        with self.transaction():
            self._db.executemany(f"INSERT INTO ledger ({cols}) VALUES ({marks})", rows)
            if accrued_until is not None:
                self._db.execute("INSERT OR REPLACE INTO meta VALUES ('accrued_until', ?)",
                                 (json.dumps(accrued_until),))
        return len(rows)

    def ledger_watermark(self) -> float | None:
        """Until when cost has been accrued (None before the first accrual)."""
        row = self._db.execute("SELECT value FROM meta WHERE name='accrued_until'").fetchone()
        return float(json.loads(row[0])) if row else None

    def ledger(self, since: float | None = None, until: float | None = None) -> list[LedgerEntry]:
        """Entries with since <= ts < until, in time order."""
        rows = self._db.execute(
            "SELECT * FROM ledger WHERE ts >= ? AND ts < ? ORDER BY ts, seq",
            (since if since is not None else float("-inf"),
             until if until is not None else float("inf")))
        return [_ledger_entry(r) for r in rows]


def _ledger_row(e: LedgerEntry) -> tuple[Any, ...]:
    return tuple(int(v) if n == "spot" else v for n, v in
                 ((n, getattr(e, n)) for n in _LEDGER_FIELDS))


def _ledger_entry(r: sqlite3.Row) -> LedgerEntry:
    d = {n: r[n] for n in _LEDGER_FIELDS}
    d["spot"] = bool(d["spot"])
    return LedgerEntry(**d)
