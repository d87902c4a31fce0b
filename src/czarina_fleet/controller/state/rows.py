"""How the store's records map to rows of its SQLite tables, and back.

Kept apart from `store` so the SQL there reads as what it does; the only conversions
are the ones SQLite needs: enum states as text, booleans as 0/1, JSON for payloads.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from typing import Any

from czarina_fleet.model.fleet import Event, HostRecord, Intent, WorkerRecord
from czarina_fleet.model.states import HostState, WorkerState

# Column order of the hosts / workers tables' inserts: the records' field order.
_RENAMED = {"migrating": "pending", "idle": "running"}
HOST_FIELDS = [f.name for f in dataclasses.fields(HostRecord)]
WORKER_FIELDS = [f.name for f in dataclasses.fields(WorkerRecord)]


def host_row(h: HostRecord) -> tuple[Any, ...]:
    return tuple(str(v) if n == "state" else (int(v) if n == "spot" else v)
                 for n, v in ((n, getattr(h, n)) for n in HOST_FIELDS))


def worker_row(w: WorkerRecord) -> tuple[Any, ...]:
    return tuple(str(getattr(w, n)) if n == "state" else getattr(w, n) for n in WORKER_FIELDS)


def host_from_row(r: sqlite3.Row) -> HostRecord:
    d = {n: r[n] for n in HOST_FIELDS}
    d["state"] = HostState(d["state"])
    d["spot"] = bool(d["spot"])
    return HostRecord(**d)


def worker_from_row(r: sqlite3.Row) -> WorkerRecord:
    d = {n: r[n] for n in WORKER_FIELDS}
    # States older versions had: "migrating" (checkpointed, not yet pending) waits to be
    # placed; "idle" (in the table but never entered) was a running worker.
    d["state"] = WorkerState(_RENAMED.get(d["state"], d["state"]))
    return WorkerRecord(**d)


def intent_from_row(r: sqlite3.Row) -> Intent:
    return Intent(r["key"], r["kind"], json.loads(r["payload"]), r["status"], r["created_at"],
                  r["updated_at"], json.loads(r["result"]) if r["result"] else None,
                  r["attempts"])


def event_from_row(r: sqlite3.Row) -> Event:
    return Event(r["ts"], r["entity"], r["entity_id"], r["from_state"], r["to_state"],
                 r["reason"], r["seq"])
