"""What each table mixin of `Store` (ledger_tables, move_tables, override_tables,
intent_tables) may use of the store: its connection, its clock, `transaction()` and the
event log. Declared once here; `Store` supplies them."""

from __future__ import annotations

import sqlite3
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING

from czarina_fleet.clock import Clock


class StoreTables:
    _db: sqlite3.Connection
    clock: Clock

    if TYPE_CHECKING:
        def transaction(self) -> AbstractContextManager[None]: ...

        def _event(self, entity: str, entity_id: str, old: str | None, new: str | None,
                   reason: str) -> None: ...
