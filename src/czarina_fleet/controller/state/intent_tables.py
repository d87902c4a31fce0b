"""The store's intents: a side effect recorded before it is made (a launch, a
termination, a push), so that a controller restarted after a crash knows what may have
happened and finishes or rolls it back. Keyed by a stable key; `begin_intent` is
idempotent on it.

A mixin of `Store`, as the cost ledger is (`ledger_tables.py`).
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from czarina_fleet.controller.state.errors import UnknownEntity
from czarina_fleet.controller.state.rows import intent_from_row
from czarina_fleet.controller.state.table_base import StoreTables
from czarina_fleet.model.fleet import Intent, IntentStatus


class IntentTablesMixin(StoreTables):
    """The intent methods of `Store`."""

    def begin_intent(self, key: str, kind: str, payload: dict[str, Any]) -> Intent:
        """Record an intent before acting. Idempotent on `key`: if it exists (open or
        finished), it is returned unchanged except that an open one counts an attempt."""
        now = self.clock.now()
        with self.transaction():
            existing = self.intent(key)
            if existing is not None:
                if existing.status == IntentStatus.OPEN:
                    self._db.execute(
                        "UPDATE intents SET attempts=attempts+1, updated_at=? WHERE key=?",
                        (now, key))
                    return dataclasses.replace(existing, attempts=existing.attempts + 1,
                                               updated_at=now)
                return existing
            self._db.execute(
                "INSERT INTO intents (key, kind, payload, status, result, attempts, created_at,"
                " updated_at) VALUES (?, ?, ?, ?, NULL, 1, ?, ?)",
                (key, kind, json.dumps(payload, sort_keys=True), IntentStatus.OPEN, now, now))
            return Intent(key, kind, dict(payload), IntentStatus.OPEN, now, now, None, 1)

    def finish_intent(self, key: str, status: str, result: dict[str, Any] | None = None) -> None:
        """Close an intent (done, failed, rolled_back) with its result; records an event."""
        if status == IntentStatus.OPEN:
            raise ValueError("finish_intent needs a final status, not 'open'")
        with self.transaction():
            old = self.intent(key)
            if old is None:
                raise UnknownEntity(f"no intent {key!r} in the store")
            self._db.execute(
                "UPDATE intents SET status=?, result=?, updated_at=? WHERE key=?",
                (status, json.dumps(result, sort_keys=True) if result is not None else None,
                 self.clock.now(), key))
            detail = (result or {}).get("error") or (result or {}).get("summary") or old.kind
            self._event("intent", key, old.status, status, str(detail))

    def update_intent(self, key: str, result: dict[str, Any]) -> None:
        """Record progress on an open intent (e.g. the instance id a launch returned)."""
        with self.transaction():
            self._db.execute("UPDATE intents SET result=?, updated_at=? WHERE key=?",
                             (json.dumps(result, sort_keys=True), self.clock.now(), key))

    def intent(self, key: str) -> Intent | None:
        row = self._db.execute("SELECT * FROM intents WHERE key=?", (key,)).fetchone()
        return intent_from_row(row) if row else None

    def open_intents(self) -> list[Intent]:
        return [intent_from_row(r) for r in self._db.execute(
            "SELECT * FROM intents WHERE status='open' ORDER BY created_at, key")]
