"""The store's schema, as an ordered list of migrations.

Each migration runs in its own transaction together with the bump of `schema_version`,
so a kill during an upgrade leaves the store at the old version or the new one, never
between. Append new migrations; never edit one that has shipped.
"""

from __future__ import annotations

MIGRATIONS: list[tuple[int, str]] = [
    (
        1,
        """
        CREATE TABLE hosts (
            host_id TEXT PRIMARY KEY,
            provider TEXT NOT NULL,
            state TEXT NOT NULL,
            state_since REAL NOT NULL,
            slots INTEGER NOT NULL,
            pool TEXT,
            address TEXT,
            port INTEGER NOT NULL DEFAULT 22,
            user TEXT,
            work_dir TEXT NOT NULL,
            instance_id TEXT,
            shape TEXT,
            region TEXT,
            spot INTEGER NOT NULL DEFAULT 0,
            price_per_hour REAL NOT NULL DEFAULT 0,
            launched_at REAL,
            intent_key TEXT,
            attempts INTEGER NOT NULL DEFAULT 0,
            last_error TEXT
        );
        CREATE TABLE workers (
            worker_id TEXT PRIMARY KEY,
            state TEXT NOT NULL,
            state_since REAL NOT NULL,
            host_id TEXT,
            location TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            last_error TEXT,
            started_at REAL
        );
        CREATE TABLE intents (
            key TEXT PRIMARY KEY,
            kind TEXT NOT NULL,
            payload TEXT NOT NULL,
            status TEXT NOT NULL,
            result TEXT,
            attempts INTEGER NOT NULL DEFAULT 0,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL
        );
        CREATE INDEX intents_open ON intents(status) WHERE status = 'open';
        CREATE TABLE events (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            ts REAL NOT NULL,
            entity TEXT NOT NULL,
            entity_id TEXT NOT NULL,
            from_state TEXT,
            to_state TEXT,
            reason TEXT NOT NULL
        );
        CREATE INDEX events_entity ON events(entity, entity_id, seq);
        CREATE TABLE overrides (
            name TEXT PRIMARY KEY,
            value TEXT NOT NULL
        );
        CREATE TABLE location_overrides (
            worker_id TEXT PRIMARY KEY,
            location TEXT NOT NULL
        );
        CREATE TABLE ledger (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            ts REAL NOT NULL,
            host_id TEXT NOT NULL,
            worker_id TEXT,
            pool TEXT,
            provider TEXT NOT NULL,
            shape TEXT,
            region TEXT,
            spot INTEGER NOT NULL,
            usd REAL NOT NULL,
            rate_per_hour REAL NOT NULL,
            seconds REAL NOT NULL
        );
        CREATE INDEX ledger_ts ON ledger(ts);
        """,
    ),
    (
        2,
        """
        ALTER TABLE hosts ADD COLUMN idle_since REAL;
        CREATE TABLE meta (
            name TEXT PRIMARY KEY,
            value TEXT NOT NULL
        );
        """,
    ),
    (
        3,
        """
        ALTER TABLE hosts ADD COLUMN price_source TEXT;
        """,
    ),
    (
        4,
        """
        CREATE TABLE host_samples (
            host_id TEXT NOT NULL,
            ts REAL NOT NULL,
            load_1m REAL NOT NULL,
            cpus INTEGER NOT NULL,
            mem_free_mb INTEGER,
            PRIMARY KEY (host_id, ts)
        );
        CREATE INDEX events_moves ON events(entity, ts) WHERE entity = 'worker';
        """,
    ),
]

LATEST_VERSION = MIGRATIONS[-1][0]
