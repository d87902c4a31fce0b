"""The store's scale overrides (`czarina scale`): min/max workers, auto-scale and
per-worker locations that stand in for the configuration's until cleared.

A mixin of `Store`, as the cost ledger is (`ledger_tables.py`).
"""

from __future__ import annotations

import json
from typing import Final

from czarina_fleet.controller.state.table_base import StoreTables
from czarina_fleet.model.fleet import Overrides


class _Keep:
    def __repr__(self) -> str:
        return "KEEP"


KEEP: Final = _Keep()  # "leave this override as it is" in set_overrides


class OverrideTablesMixin(StoreTables):
    """The override methods of `Store`."""

    def get_overrides(self) -> Overrides:
        values = {r["name"]: json.loads(r["value"])
                  for r in self._db.execute("SELECT name, value FROM overrides")}
        locations = {r["worker_id"]: r["location"] for r in self._db.execute(
            "SELECT worker_id, location FROM location_overrides ORDER BY worker_id")}
        return Overrides(
            min_workers=values.get("min_workers"),
            max_workers=values.get("max_workers"),
            auto_scale=values.get("auto_scale"),
            locations=locations,
        )

    def set_overrides(
        self,
        *,
        min_workers: int | None | _Keep = KEEP,
        max_workers: int | None | _Keep = KEEP,
        auto_scale: bool | None | _Keep = KEEP,
        locations: dict[str, str | None] | None = None,
        reason: str = "czarina scale",
    ) -> Overrides:
        """Change overrides: KEEP leaves one as is, None clears it (back to the config).
        `locations` maps worker id -> location text, or None to drop that override.
        Returns the overrides now in force; records one `fleet` event."""
        changes: list[str] = []
        with self.transaction():
            for name, value in (("min_workers", min_workers), ("max_workers", max_workers),
                                ("auto_scale", auto_scale)):
                if isinstance(value, _Keep):
                    continue
                changes.append(f"{name}={value}")
                if value is None:
                    self._db.execute("DELETE FROM overrides WHERE name=?", (name,))
                else:
                    self._db.execute("INSERT OR REPLACE INTO overrides VALUES (?, ?)",
                                     (name, json.dumps(value)))
            for worker_id, loc in (locations or {}).items():
                changes.append(f"{worker_id} -> {loc}")
                if loc is None:
                    self._db.execute("DELETE FROM location_overrides WHERE worker_id=?",
                                     (worker_id,))
                else:
                    self._db.execute("INSERT OR REPLACE INTO location_overrides VALUES (?, ?)",
                                     (worker_id, loc))
            if changes:
                self._event("fleet", "overrides", None, None,
                            f"{reason}: {', '.join(changes)}")
            return self.get_overrides()
