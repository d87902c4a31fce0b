"""The controller's state store: SQLite in WAL mode.

Holds desired-state overrides (`czarina scale`), host and worker records, intents (side
effects recorded before they are made), the event log and the cost ledger. The hosts,
workers, events and transactions are here; the other tables' methods are mixins, one
concern each: override_tables.py, intent_tables.py, ledger_tables.py (the cost ledger),
move_tables.py (load samples and move history); record <-> row conversions in rows.py.

Every public method that writes runs in one transaction (`BEGIN IMMEDIATE` ... `COMMIT`),
and `transaction()` groups several into one, so a process killed at any point leaves the
store as it was before or after a change, never half way. State changes go through
`transition_host` / `transition_worker`, which check the tables in `model.states` and
record an event with the reason.

Errors: `UnknownEntity` for a host/worker that is not there, `IllegalTransition` for a
state change the tables forbid, `StoreError` for a store newer than this code.
"""

from __future__ import annotations

import dataclasses
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from czarina_fleet.clock import Clock
from czarina_fleet.controller.state.errors import StoreError, UnknownEntity
from czarina_fleet.controller.state.intent_tables import IntentTablesMixin
from czarina_fleet.controller.state.ledger_tables import CostLedgerMixin
from czarina_fleet.controller.state.lock import ControllerLock, LockHeld, LockHolder, lock_path_for
from czarina_fleet.controller.state.migrations import LATEST_VERSION, MIGRATIONS
from czarina_fleet.controller.state.move_tables import MoveTablesMixin
from czarina_fleet.controller.state.open_errors import state_problem
from czarina_fleet.controller.state.override_tables import OverrideTablesMixin
from czarina_fleet.controller.state.rows import (
    HOST_FIELDS,
    WORKER_FIELDS,
    event_from_row,
    host_from_row,
    host_row,
    worker_from_row,
    worker_row,
)
from czarina_fleet.model.fleet import Event, HostRecord, Overrides, WorkerRecord
from czarina_fleet.model.states import (
    HostState,
    IllegalTransition,
    WorkerState,
    check_host_transition,
    check_worker_transition,
)

__all__ = [
    "ControllerLock", "IllegalTransition", "LockHeld", "LockHolder", "Overrides",
    "Store", "StoreError", "UnknownEntity", "lock_path_for",
]


_R = TypeVar("_R", HostRecord, WorkerRecord)  # a record with a state machine


class Store(CostLedgerMixin, MoveTablesMixin, OverrideTablesMixin, IntentTablesMixin):
    """`Store(path, clock)`; `path` is the SQLite file (created with its folder)."""

    def __init__(self, path: Path, clock: Clock, *, synchronous: str = "FULL") -> None:
        # FULL by default: an intent must survive a power cut too, or a restarted
        # controller could not know a launch was sent. The simulator may pass NORMAL.
        if synchronous not in ("FULL", "NORMAL", "OFF"):
            raise ValueError(f"synchronous must be FULL, NORMAL or OFF, not {synchronous!r}")
        self.path = Path(path)
        self.clock = clock
        self._mutex = threading.RLock()
        self._depth = 0
        # Write transactions committed so far (every write runs in one): a steady-state
        # controller tick should add at most one (benches and tests read it).
        self.commits = 0
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(
                str(self.path), isolation_level=None, check_same_thread=False, timeout=30
            )
        except (OSError, sqlite3.Error) as e:
            raise StoreError(state_problem(self.path, e)) from None
        try:
            self._db.row_factory = sqlite3.Row
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(f"PRAGMA synchronous={synchronous}")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._migrate()
        except sqlite3.DatabaseError as e:
            self._db.close()
            raise StoreError(state_problem(self.path, e)) from None
        except BaseException:
            self._db.close()
            raise

    def close(self) -> None:
        self._db.close()

    def lock(self) -> ControllerLock:
        """The controller lock for this store (not yet acquired)."""
        return ControllerLock(lock_path_for(self.path), self.clock)

    # --- transactions and schema ------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Group writes into one transaction; nests (inner blocks join the outer one)."""
        with self._mutex:
            if self._depth:
                self._depth += 1
                try:
                    yield
                finally:
                    self._depth -= 1
                return
            self._db.execute("BEGIN IMMEDIATE")
            self._depth = 1
            try:
                yield
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            else:
                self._db.execute("COMMIT")
                self.commits += 1
            finally:
                self._depth = 0

    @property
    def schema_version(self) -> int:
        row = self._db.execute(
            "SELECT name FROM sqlite_master WHERE type='table' AND name='schema_version'"
        ).fetchone()
        if row is None:
            return 0
        got = self._db.execute("SELECT version FROM schema_version").fetchone()
        return int(got[0]) if got else 0

    def _migrate(self) -> None:
        with self.transaction():
            self._db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER)")
            current = self.schema_version
            if current > LATEST_VERSION:
                raise StoreError(
                    f"{self.path} has schema version {current}, newer than this czarina-fleet "
                    f"understands ({LATEST_VERSION}): upgrade czarina-fleet"
                )
        for version, script in MIGRATIONS:
            if version <= current:
                continue
            with self.transaction():
                # executescript would COMMIT on its own; run statement by statement instead
                for statement in _statements(script):
                    self._db.execute(statement)
                self._db.execute("DELETE FROM schema_version")
                self._db.execute("INSERT INTO schema_version VALUES (?)", (version,))

    # --- hosts --------------------------------------------------------------------------

    def upsert_host(self, host: HostRecord, reason: str = "recorded") -> None:
        """Write `host` as is (creation, adoption, or a field update). Unchecked: use
        `transition_host` for state changes. Records an event when the state changes."""
        with self.transaction():
            old = self.host(host.host_id)
            self._put("hosts", HOST_FIELDS, host_row(host))
            if old is None or old.state != host.state:
                self._event("host", host.host_id, old.state if old else None,
                            host.state, reason)

    def hosts(self) -> list[HostRecord]:
        return [host_from_row(r) for r in self._db.execute("SELECT * FROM hosts ORDER BY host_id")]

    def host(self, host_id: str) -> HostRecord | None:
        row = self._db.execute("SELECT * FROM hosts WHERE host_id=?", (host_id,)).fetchone()
        return host_from_row(row) if row else None

    def transition_host(
        self, host_id: str, new_state: HostState, reason: str, **fields: Any
    ) -> HostRecord:
        """Move a host to `new_state` (checked against HOST_TRANSITIONS) and update
        `fields`; records an event. Raises UnknownEntity, IllegalTransition."""
        with self.transaction():
            old = self.host(host_id)
            if old is None:
                raise UnknownEntity(f"no host {host_id!r} in the store")
            check_host_transition(old.state, HostState(new_state))
            new = self._moved(old, HostState(new_state), fields)
            self._put("hosts", HOST_FIELDS, host_row(new))
            self._event_if_moved("host", host_id, old.state, new.state, reason)
            return new

    # --- workers ------------------------------------------------------------------------

    def upsert_worker(self, worker: WorkerRecord, reason: str = "recorded") -> None:
        with self.transaction():
            old = self.worker(worker.worker_id)
            self._put("workers", WORKER_FIELDS, worker_row(worker))
            if old is None or old.state != worker.state:
                self._event("worker", worker.worker_id, old.state if old else None,
                            worker.state, reason)

    def workers(self) -> list[WorkerRecord]:
        return [worker_from_row(r) for r in
                self._db.execute("SELECT * FROM workers ORDER BY worker_id")]

    def state_counts(self, table: str) -> dict[str, int]:
        """How many hosts (`table` "hosts") or workers ("workers") are in each state,
        counted by SQLite: the metrics after every step, without reading every row."""
        if table not in ("hosts", "workers"):
            raise ValueError(f"no table {table!r} to count")
        return dict(self._db.execute(f"SELECT state, COUNT(*) FROM {table} GROUP BY state"))

    def worker(self, worker_id: str) -> WorkerRecord | None:
        row = self._db.execute("SELECT * FROM workers WHERE worker_id=?",
                               (worker_id,)).fetchone()
        return worker_from_row(row) if row else None

    def transition_worker(
        self, worker_id: str, new_state: WorkerState, reason: str, **fields: Any
    ) -> WorkerRecord:
        """As `transition_host`, for workers (WORKER_TRANSITIONS)."""
        with self.transaction():
            old = self.worker(worker_id)
            if old is None:
                raise UnknownEntity(f"no worker {worker_id!r} in the store")
            check_worker_transition(old.state, WorkerState(new_state))
            new = self._moved(old, WorkerState(new_state), fields)
            self._put("workers", WORKER_FIELDS, worker_row(new))
            self._event_if_moved("worker", worker_id, old.state, new.state, reason)
            return new

    def _moved(self, old: _R, state: Any, fields: dict[str, Any]) -> _R:
        """`old` in `state` with `fields` updated; `state_since` restarts only when the
        state really changes (a same-state update keeps its timeout clock), unless the
        caller knows better (a host interrupted earlier than we learned it)."""
        fields = dict(fields)
        since = fields.pop("state_since", None)
        if since is None:
            since = self.clock.now() if old.state != state else old.state_since
        return dataclasses.replace(old, state=state, state_since=since, **fields)

    def _event_if_moved(self, entity: str, entity_id: str, old: str, new: str,
                        reason: str) -> None:
        if old != new:
            self._event(entity, entity_id, old, new, reason)

    def delete_worker(self, worker_id: str, reason: str) -> None:
        """Forget a worker that is stopped and no longer desired."""
        with self.transaction():
            old = self.worker(worker_id)
            if old is not None:
                self._db.execute("DELETE FROM workers WHERE worker_id=?", (worker_id,))
                self._event("worker", worker_id, old.state, None, reason)

    # --- events -------------------------------------------------------------------------

    def events(self, limit: int = 100, entity: str | None = None,
               entity_id: str | None = None) -> list[Event]:
        """The newest `limit` events, oldest first; optionally one kind or one entity."""
        sql, args = "SELECT * FROM events", []
        conds = []
        if entity is not None:
            conds.append("entity=?")
            args.append(entity)
        if entity_id is not None:
            conds.append("entity_id=?")
            args.append(entity_id)
        if conds:
            sql += " WHERE " + " AND ".join(conds)
        rows = self._db.execute(sql + " ORDER BY seq DESC LIMIT ?", (*args, limit)).fetchall()
        return [event_from_row(r) for r in reversed(rows)]

    def record_event(self, entity: str, entity_id: str, reason: str,
                     from_state: str | None = None, to_state: str | None = None) -> None:
        with self.transaction():
            self._event(entity, entity_id, from_state, to_state, reason)

    # --- helpers ------------------------------------------------------------------------

    def _put(self, table: str, names: list[str], row: tuple[Any, ...]) -> None:
        cols = ", ".join(names)
        marks = ", ".join("?" for _ in names)
        self._db.execute(f"INSERT OR REPLACE INTO {table} ({cols}) VALUES ({marks})", row)

    def _event(self, entity: str, entity_id: str, old: str | None, new: str | None,
               reason: str) -> None:
        self._db.execute(
            "INSERT INTO events (ts, entity, entity_id, from_state, to_state, reason)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (self.clock.now(), entity, entity_id,
             str(old) if old is not None else None, str(new) if new is not None else None,
             reason))


def _statements(script: str) -> list[str]:
    return [s.strip() for s in script.split(";") if s.strip()]
