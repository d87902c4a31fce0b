"""The scheduled controller: SIGTERM finishes the step, releases the lock, returns 0."""

from __future__ import annotations

import asyncio
import os
import signal
from collections import Counter
from pathlib import Path

from czarina_fleet.controller.runtime.scheduler import Controller
from czarina_fleet.controller.state.lock import ControllerLock, read_holder
from czarina_fleet.model.states import HostState, WorkerState
from tests.test_reconciler import Harness, make_cfg


def test_sigterm_stops_after_step_and_releases_lock(tmp_path: Path) -> None:
    h = Harness(tmp_path, make_cfg(2))
    ctl = Controller(h.rec, interval_s=0.05)
    lock = ControllerLock(tmp_path / "fleet.db.lock")

    async def main() -> int:
        async def stop_soon() -> None:
            while ctl.last is None:
                await asyncio.sleep(0.01)
            assert read_holder(lock.path).pid == os.getpid()
            os.kill(os.getpid(), signal.SIGTERM)
        task = asyncio.create_task(stop_soon())
        code = await ctl.run(lock)
        await task
        return code

    assert asyncio.run(main()) == 0
    assert not lock.held and read_holder(lock.path) is None
    assert ctl.last is not None and ctl.last.actions  # it planned launches
    samples = {s.labels.get("kind"): s.value for m in ctl.metrics.registry.collect()
               if m.name == "czarina_actions" for s in m.samples if s.name.endswith("_total")}
    assert samples.get("LaunchHost", 0) >= 1


def test_stop_waits_for_a_job_in_progress_before_releasing_the_lock(tmp_path: Path) -> None:
    h = Harness(tmp_path, make_cfg(0))
    ctl = Controller(h.rec, interval_s=60)
    lock = ControllerLock(tmp_path / "fleet.db.lock")
    seen: list[str] = []

    async def slow_job() -> None:
        seen.append("started")
        ctl.stop()  # a SIGTERM arrives while the job runs
        await asyncio.sleep(0.2)
        seen.append("finished" if lock.held else "finished after the lock was released")

    ctl.add_job(slow_job, 0.01, "slow")
    assert asyncio.run(ctl.run(lock)) == 0
    assert seen == ["started", "finished"]
    assert not lock.held


def test_state_gauges_count_what_the_store_holds_without_reading_every_row(
        tmp_path: Path) -> None:
    """czarina_hosts and czarina_workers by state, after each step: the same numbers as
    tallying every row, counted by SQLite (issue 14: at 1,000 hosts, reading every row
    after each step cost some 0.1 s)."""
    h = Harness(tmp_path, make_cfg(5))
    ctl = Controller(h.rec, interval_s=60)
    statements: list[str] = []
    for _ in range(4):  # launches, hosts coming up, workers placed, then started
        result = asyncio.run(h.rec.reconcile_once())
        h.store._db.set_trace_callback(statements.append)
        try:
            ctl.metrics.record(result, h.store, 0.1)
        finally:
            h.store._db.set_trace_callback(None)
        h.clock.advance(15)
        gauges = {(m.name, s.labels["state"]): s.value for m in ctl.metrics.registry.collect()
                  if m.name in ("czarina_hosts", "czarina_workers") for s in m.samples}
        hosts = Counter(str(x.state) for x in h.store.hosts())
        workers = Counter(str(w.state) for w in h.store.workers())
        assert gauges == {**{("czarina_hosts", str(s)): hosts[str(s)] for s in HostState},
                          **{("czarina_workers", str(s)): workers[str(s)]
                             for s in WorkerState}}
    assert sum(workers.values()) == 5 and sum(hosts.values()) >= 3
    assert len({k for k, v in gauges.items() if v}) >= 2
    reads = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert reads and all("COUNT(*)" in s and "GROUP BY state" in s for s in reads), reads
