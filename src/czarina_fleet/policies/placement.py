"""Placement: the least-loaded eligible host with a free slot. Pure and fast.

Hosts belong to groups: `host:<id>` (itself), `pool:<name>` (its pool) and `auto` (every
host `auto` workers may use). Each group keeps two heaps, one of ready hosts and one of
hosts still coming up, ordered by slot use (then probe load, then id). Heaps are lazy: an
entry whose use has changed since it was pushed is skipped on pop, so taking a slot is
O(log n) and planning 10,000 workers over 2,000 hosts never loops over all hosts.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from dataclasses import dataclass

AUTO = "auto"


@dataclass(slots=True)
class Slot:
    host_id: str
    slots: int
    used: int
    ready: bool
    groups: tuple[str, ...]
    load: float = 0.0


def groups_for(host_id: str, pool: str | None, auto: bool) -> tuple[str, ...]:
    g = [f"host:{host_id}"]
    if pool:
        g.append(f"pool:{pool}")
    if auto:
        g.append(AUTO)
    return tuple(g)


class Placer:
    def __init__(self, hosts: Iterable[Slot] = ()) -> None:
        self._hosts: dict[str, Slot] = {}
        self._heaps: dict[tuple[bool, str], list[tuple[float, float, str, int]]] = {}
        for h in hosts:
            self.add(h)

    def add(self, host: Slot) -> None:
        self._hosts[host.host_id] = host
        self._push(host)

    def used(self, host_id: str) -> int:
        h = self._hosts.get(host_id)
        return h.used if h else 0

    def take(self, group: str, ready: bool) -> str | None:
        """Take a free slot on the least-loaded host of `group` that is (or is not yet)
        ready; returns its id, or None when there is none."""
        heap = self._heaps.get((ready, group))
        while heap:
            _, _, host_id, used_then = heap[0]
            h = self._hosts[host_id]
            if h.used != used_then or h.used >= h.slots or h.ready != ready:
                heapq.heappop(heap)  # stale entry
                continue
            h.used += 1
            self._push(h)
            return host_id
        return None

    def release(self, host_id: str) -> None:
        h = self._hosts.get(host_id)
        if h and h.used > 0:
            h.used -= 1
            self._push(h)

    def _push(self, h: Slot) -> None:
        if h.used >= h.slots:
            return
        entry = (h.used / h.slots, h.load, h.host_id, h.used)
        for g in h.groups:
            heapq.heappush(self._heaps.setdefault((h.ready, g), []), entry)
