"""Spot interruptions: which hosts the cloud has taken or will take. Pure."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from czarina_fleet.providers.base import Instance, InterruptionNotice


@dataclass(frozen=True, slots=True)
class Interruption:
    host_id: str
    reason: str
    deadline: float | None  # None: already gone


def interruptions(inventories: Mapping[str, Sequence[Instance]],
                  notices: Iterable[InterruptionNotice], now: float) -> dict[str, Interruption]:
    """Hosts interrupted (instance flagged) or with a notice; a notice whose deadline has
    passed counts as gone."""
    found: dict[str, Interruption] = {}
    for n in notices:
        deadline = n.deadline if n.deadline is not None and n.deadline > now else None
        found[n.host_id] = Interruption(n.host_id, n.reason, deadline)
    for insts in inventories.values():
        for i in insts:
            if i.interrupted:
                found[i.host_id] = Interruption(i.host_id, "spot capacity reclaimed", None)
    return found
