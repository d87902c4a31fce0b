"""The store's records for moving workers: the probe load samples of hosts that may be
overloaded (`host_samples`; policies/load.py `remember` says which) and the move events
the disruption budget counts.

A mixin of `Store`, as the cost ledger is (`ledger_tables.py`).
"""

from __future__ import annotations

from collections.abc import Iterable

from czarina_fleet.controller.state.rows import event_from_row
from czarina_fleet.controller.state.table_base import StoreTables
from czarina_fleet.model.fleet import Event, LoadSample

# Samples kept per host: enough for the overload hysteresis to see a few minutes back.
SAMPLES_KEPT = 20
MOVED_TO = "checkpointing"      # a move begins with this worker transition
REFUSED_PREFIX = "move refused"  # policies/disruption.py REFUSED


class MoveTablesMixin(StoreTables):
    """The load-sample and move-history methods of `Store`."""

    def add_samples(self, samples: Iterable[LoadSample], keep: int = SAMPLES_KEPT) -> None:
        """Record probe samples, keeping each host's newest `keep`."""
        rows = [(s.host_id, s.ts, s.load_1m, s.cpus, s.mem_free_mb) for s in samples]
        if not rows:
            return
        with self.transaction():
            self._db.executemany("INSERT OR REPLACE INTO host_samples VALUES (?, ?, ?, ?, ?)",
                                 rows)
            for host_id in {r[0] for r in rows}:
                self._db.execute(
                    "DELETE FROM host_samples WHERE host_id=? AND ts NOT IN (SELECT ts FROM "
                    "host_samples WHERE host_id=? ORDER BY ts DESC LIMIT ?)",
                    (host_id, host_id, keep))

    def samples(self) -> dict[str, list[LoadSample]]:
        """Every host's kept samples, oldest first."""
        got: dict[str, list[LoadSample]] = {}
        for r in self._db.execute("SELECT * FROM host_samples ORDER BY host_id, ts"):
            got.setdefault(r["host_id"], []).append(LoadSample(
                r["host_id"], r["ts"], r["load_1m"], r["cpus"], r["mem_free_mb"]))
        return got

    def forget_samples(self, host_ids: Iterable[str]) -> None:
        """Drop these hosts' samples (a calm host, a gone one). No write if none."""
        gone = sorted(set(host_ids))
        if gone:
            with self.transaction():
                self._db.executemany("DELETE FROM host_samples WHERE host_id=?",
                                     [(h,) for h in gone])

    def move_events(self, since: float) -> list[Event]:
        """Worker moves (into checkpointing) and refused-move notes since `since`,
        oldest first."""
        rows = self._db.execute(
            "SELECT * FROM events WHERE entity='worker' AND ts>=? AND (to_state=? OR "
            "reason LIKE ?) ORDER BY seq", (since, MOVED_TO, REFUSED_PREFIX + "%"))
        return [event_from_row(r) for r in rows]
