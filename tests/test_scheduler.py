"""The scheduled controller: SIGTERM finishes the step, releases the lock, returns 0."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

from czarina_fleet.controller.runtime.scheduler import Controller
from czarina_fleet.controller.state.lock import ControllerLock, read_holder
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
