"""Spot interruptions: which hosts the cloud has taken or will take, and what to do about
each. Pure: plain data in, decisions out.

A host under interruption is in one of two situations:
- a *notice* with a deadline still ahead (AWS gives about two minutes, GCP about 30 s,
  Azure about 30 s): there is time to save work, so the host drains: every worker on it
  is stopped, its uncommitted work committed, its branch pushed (a checkpoint), and it is
  placed again elsewhere, where it resumes on its branch;
- *gone* (the instance was reclaimed, vanished, or the deadline has passed): nothing on
  the host can be reached any more; its workers are placed again directly, from what
  their branches last pushed (the push job keeps that recent).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from czarina_fleet.model.fleet import HostProbe, HostRecord
from czarina_fleet.model.states import HostState, WorkerState
from czarina_fleet.providers.base import Instance, InterruptionNotice

H, W = HostState, WorkerState
INTERRUPTION, REBALANCE = "interruption", "rebalance"

# Host states in which a checkpoint can still be made (the host answers).
_CAN_DRAIN = frozenset({H.READY, H.DRAINING})
# Worker states whose work is on the host and still needs saving under a notice.
NEEDS_CHECKPOINT = frozenset({W.RUNNING, W.CHECKPOINTING})


@dataclass(frozen=True, slots=True)
class Interruption:
    host_id: str
    reason: str
    deadline: float | None  # None: already gone
    taken_at: float | None = None  # gone: when, if known (billing ends there)


class HostDecision(StrEnum):
    DRAIN = "drain"          # mark the host draining, checkpoint and move its workers
    GONE = "gone"            # mark the host interrupted; its workers are placed again
    NOTHING = "nothing"      # already handled (the host is gone from our records)


def interruptions(inventories: Mapping[str, Sequence[Instance]],
                  notices: Iterable[InterruptionNotice], now: float) -> dict[str, Interruption]:
    """Hosts interrupted (instance flagged) or with a notice; a notice whose deadline has
    passed counts as gone (taken at its deadline). When several sources speak of one
    host (the driver, the host's own metadata), gone wins, then the earliest deadline."""
    found: dict[str, Interruption] = {}
    for n in notices:
        if n.kind != INTERRUPTION:
            continue
        deadline = n.deadline if n.deadline is not None and n.deadline > now else None
        taken = n.taken_at if n.taken_at is not None else (
            n.deadline if deadline is None else None)
        _keep_first(found, Interruption(n.host_id, n.reason, deadline, taken))
    for insts in inventories.values():
        for i in insts:
            if i.interrupted:
                _keep_first(found, Interruption(i.host_id, "spot capacity reclaimed", None))
    return found


def _keep_first(found: dict[str, Interruption], new: Interruption) -> None:
    old = found.get(new.host_id)
    if old is None or _rank(new) < _rank(old):
        found[new.host_id] = new


def _rank(i: Interruption) -> tuple[int, float]:
    if i.deadline is None:
        return (0, 0.0 if i.taken_at is not None else 1.0)  # gone, best with its time
    return (1, i.deadline)


def rebalance_hosts(notices: Iterable[InterruptionNotice]) -> set[str]:
    """Hosts the cloud recommends leaving (at elevated risk, no deadline yet)."""
    return {n.host_id for n in notices if n.kind == REBALANCE}


def probe_notices(hosts: Mapping[str, HostRecord], probes: Mapping[str, HostProbe]
                  ) -> list[InterruptionNotice]:
    """The notices hosts read from their own metadata service, as driver notices."""
    found = []
    for host_id, probe in sorted(probes.items()):
        h = hosts.get(host_id)
        if h is None or not probe.reachable:
            continue
        found.extend(InterruptionNotice(h.instance_id or "", host_id, n.reason, n.deadline,
                                        kind=n.kind, ack=n.ack) for n in probe.notices)
    return found


def rebalance_allowed(started: Sequence[float], now: float, per_hour: int) -> bool:
    """May one more host be drained early on a rebalance recommendation? At most
    `per_hour` such moves in any hour (`started`: when the earlier ones began)."""
    return sum(1 for t in started if now - t < 3600) < per_hour


def decide_host(state: HostState, intr: Interruption, gone_states: frozenset[HostState]
                ) -> HostDecision:
    """What an interruption means for a host in `state`. A host that can no longer be
    reached (unreachable, still booting) cannot checkpoint: it is treated as gone."""
    if state in gone_states:
        return HostDecision.NOTHING
    if intr.deadline is not None and state in _CAN_DRAIN:
        return HostDecision.DRAIN
    return HostDecision.GONE


def needs_checkpoint(state: WorkerState, open_migration: bool) -> bool:
    """Should a worker on a draining host get a (new) checkpoint-and-move action?
    A running or idle one: yes; one whose checkpoint failed earlier (still
    checkpointing, no migration in progress): yes again, while the deadline allows."""
    return state in NEEDS_CHECKPOINT and not open_migration


def checkpoint_budget(deadline: float | None, now: float, limit: float) -> float:
    """Seconds a checkpoint may take: up to the notice's deadline, never above `limit`
    (the executor's per-action timeout), never below zero."""
    if deadline is None:
        return limit
    return max(0.0, min(limit, deadline - now))
