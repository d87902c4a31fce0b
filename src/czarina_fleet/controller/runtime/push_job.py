"""The push job: commits must leave a host before the host can vanish.

Every `fleet.recovery.push_interval_s` the controller probes each remote host that runs
workers (one round trip per host: the probe reports every worker's HEAD) and pushes the
branch of each worker whose HEAD moved since its last push to the fleet's origin
(`git push origin <hash>:refs/heads/<branch>`, never forced). It runs as its own
scheduled job beside the reconcile step, at most `push_concurrency` pushes at a time,
each bounded by `push_timeout_s`, so a slow or dead host delays only its own pushes,
never the reconcile loop.

Worst case (a host taken with no notice at all): the commits a worker made since the
last successful push of its branch, at most one push interval plus one push's duration,
and its uncommitted files. With a notice, the checkpoint saves both
(see docs/spot-recovery.md).

A branch is pushed only when its HEAD moved since this job last pushed it and origin
does not have it: once pushed, a checkout tracks origin's branch, and the probe counts
the commits origin lacks, so a restarted controller (or `--once`) pushes only what is
due. When the controller stops (a signal, `--for` ending, `--once`) one last round runs.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from czarina_fleet.clock import Clock
from czarina_fleet.controller.state.store import Store
from czarina_fleet.model.fleet import HostProbe, HostRecord, WorkerRecord
from czarina_fleet.model.states import HostState, WorkerState

log = logging.getLogger(__name__)

# Hosts that still answer; a draining one most of all (its workers are about to move).
PUSHED_HOSTS = frozenset({HostState.READY, HostState.DRAINING})
PUSHED_WORKERS = frozenset({WorkerState.RUNNING})


class PushAccess(Protocol):
    """What the job needs of the host layer (LiveHostAccess provides both)."""

    async def probe(self, host: HostRecord,
                    records: Sequence[WorkerRecord] | None = None) -> HostProbe: ...
    async def push_worker(self, host: HostRecord, worker_id: str) -> str | None: ...


@dataclass
class PushReport:
    pushed: dict[str, str] = field(default_factory=dict)     # worker id -> commit pushed
    unchanged: list[str] = field(default_factory=list)       # HEAD already on origin
    failed: dict[str, str] = field(default_factory=dict)     # worker id -> why


class BranchPusher:
    def __init__(self, store: Store, access: PushAccess, clock: Clock, *,
                 concurrency: int = 4, timeout_s: float = 120.0) -> None:
        self.store, self.access, self.clock = store, access, clock
        self.timeout_s = timeout_s
        self._sem = asyncio.Semaphore(concurrency)
        self.last_pushed: dict[str, str] = {}  # worker id -> the commit origin has

    async def run_once(self) -> PushReport:
        """One round: probe the hosts, push what moved. Never raises for a host or
        push problem (they are logged and reported; the next round tries again)."""
        report = PushReport()
        hosts = {h.host_id: h for h in self.store.hosts()
                 if h.state in PUSHED_HOSTS and h.provider != "local"}
        by_host: dict[str, list[WorkerRecord]] = {}
        for w in self.store.workers():
            if w.state in PUSHED_WORKERS and w.host_id in hosts:
                by_host.setdefault(w.host_id, []).append(w)
        await asyncio.gather(*(self._host(hosts[hid], ws, report)
                               for hid, ws in sorted(by_host.items())))
        if report.pushed or report.failed:
            log.info("push job: pushed %d branches, %d failed", len(report.pushed),
                     len(report.failed))
        return report

    async def _host(self, host: HostRecord, workers: Sequence[WorkerRecord],
                    report: PushReport) -> None:
        try:
            # the workers read once for all hosts above: a probe left to read them itself
            # reads every worker once per host, O(hosts x workers) per round
            probe = await asyncio.wait_for(self.access.probe(host, workers), self.timeout_s)
        except Exception as e:  # the probe itself never raises for a host problem
            probe = HostProbe(host.host_id, False, self.clock.now(), error=str(e))
        if not probe.reachable:
            for w in workers:
                report.failed[w.worker_id] = f"host {host.host_id}: {probe.error}"
            return
        moved = []
        for w in workers:
            s = probe.sessions.get(w.worker_id)
            head = s.last_commit.hash if s is not None and s.last_commit else None
            if head is None:
                continue  # no checkout (yet): nothing to push
            if head == self.last_pushed.get(w.worker_id) or s.unpushed_commits == 0:
                report.unchanged.append(w.worker_id)  # origin has it (after a restart too)
            else:
                moved.append(w.worker_id)
        await asyncio.gather(*(self._push(host, wid, report) for wid in moved))

    async def _push(self, host: HostRecord, worker_id: str, report: PushReport) -> None:
        async with self._sem:
            try:
                head = await asyncio.wait_for(self.access.push_worker(host, worker_id),
                                              self.timeout_s)
            except Exception as e:
                why = str(e) or type(e).__name__
                log.warning("push job: %s on %s: %s", worker_id, host.host_id, why)
                report.failed[worker_id] = why
                return
        if head:
            self.last_pushed[worker_id] = head
            report.pushed[worker_id] = head
