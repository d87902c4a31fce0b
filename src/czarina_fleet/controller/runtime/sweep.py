"""The leftover sweep: nothing made for a host outlives it.

Every `fleet.sweep_interval_s` the controller asks each pool's driver for its
`leftovers()`: resources made for a host (a public IP, a NIC, a disk, a volume) that
carry this fleet's exact mark and whose host is gone, whether we terminated it or the
cloud evicted it. A leftover is deleted once it has been seen as one for
`fleet.leftover_grace_s` (a launch in progress makes its IP and NIC before its VM: the
grace lets it finish), and each deletion is written to the event log (entity
`leftover`). A leftover whose host the store still counts as launching is never
deleted.

When each leftover was first seen is kept in `leftovers.json` beside the state file, so
`controller run --once` sweeps too. Losing that file only restarts the grace.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path

from czarina_fleet.clock import Clock
from czarina_fleet.controller.state.store import Store
from czarina_fleet.model.states import HostState
from czarina_fleet.providers.base import Leftover, Provider

log = logging.getLogger(__name__)
LAUNCHING = frozenset({HostState.REQUESTED, HostState.PROVISIONING, HostState.BOOTING})


class LeftoverSweep:
    def __init__(self, store: Store, providers: Mapping[str, Provider], clock: Clock, *,
                 grace_s: float, seen_path: Path | None) -> None:
        self.store, self.providers, self.clock = store, providers, clock
        self.grace_s = grace_s
        self.seen_path = seen_path
        self.seen: dict[str, float] = self._load()  # "pool/kind/id" -> first seen

    async def run_once(self) -> list[Leftover]:
        """One sweep over every pool; returns what it deleted. A pool whose listing
        or a deletion fails is logged and tried again next time."""
        now, deleted, current = self.clock.now(), [], set()
        launching = {h.host_id for h in self.store.hosts() if h.state in LAUNCHING}
        for pool, provider in list(self.providers.items()):
            try:
                found = await provider.leftovers()
            except Exception as e:  # one pool must not stop the sweep of the others
                log.warning("sweep: pool %s: cannot list leftovers: %s", pool, e)
                current.update(k for k in self.seen if k.startswith(f"{pool}/"))
                continue
            for leftover in found:
                key = f"{pool}/{leftover.kind}/{leftover.resource_id}"
                current.add(key)
                first = self.seen.setdefault(key, now)
                if now - first < self.grace_s or leftover.host_id in launching:
                    continue
                if await self._delete(pool, provider, leftover, now - first):
                    deleted.append(leftover)
                    current.discard(key)
        self.seen = {k: t for k, t in self.seen.items() if k in current}
        self._save()
        return deleted

    async def _delete(self, pool: str, provider: Provider, leftover: Leftover,
                      age: float) -> bool:
        what = f"{leftover.kind} {leftover.resource_id}"
        try:
            await provider.delete_leftover(leftover)
        except Exception as e:
            log.warning("sweep: pool %s: cannot delete %s: %s", pool, what, e)
            return False
        self.store.record_event(
            "leftover", f"{pool}/{leftover.resource_id}",
            f"deleted {what} made for host {leftover.host_id or '?'}: its host is gone "
            f"(a leftover for {age:.0f} s)", to_state="deleted")
        log.info("sweep: pool %s: deleted %s of host %s", pool, what, leftover.host_id)
        return True

    def _load(self) -> dict[str, float]:
        if self.seen_path is None or not self.seen_path.exists():
            return {}
        try:
            data = json.loads(self.seen_path.read_text())
            return {str(k): float(v) for k, v in data.items()}
        except (OSError, ValueError, AttributeError):
            return {}  # a damaged file only restarts the grace

    def _save(self) -> None:
        if self.seen_path is None:
            return
        tmp = self.seen_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.seen, sort_keys=True))
        tmp.replace(self.seen_path)
