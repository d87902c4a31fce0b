"""No launched host outlives its controller, on real lab hosts: the reconciler launches
and bootstraps a host (which starts the orphan watchdog), probes refresh its heartbeat,
then the controller goes silent. After `orphan_timeout_s` the host commits and pushes
its worker's work to the real origin and runs its shutdown step, which the lab provider
turns into the host's end (as AWS's instance-initiated shutdown `terminate` does)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import uuid
from pathlib import Path

import pytest

from czarina_fleet.clock import FakeClock
from czarina_fleet.controller.runtime.connect_facts import ConnectFacts
from czarina_fleet.controller.runtime.host_access import LiveHostAccess
from czarina_fleet.controller.runtime.reconciler import Reconciler
from czarina_fleet.controller.state.store import Store
from czarina_fleet.model.config import (
    FleetConfig,
    FleetSettings,
    PoolSpec,
    ProjectInfo,
    ScalingLimits,
    WorkerSpec,
)
from czarina_fleet.model.location import parse_location
from czarina_fleet.model.states import WorkerState
from czarina_fleet.providers.lab import POWEROFF_MARK, LabProvider
from czarina_fleet.remote import netns
from czarina_fleet.remote.ssh_pool import SshPool
from czarina_fleet.remote.tmux_target import TmuxTarget
from czarina_fleet.remote.watchdog import install_watchdog
from tests.fixtures.lab_fleet import AGENT
from tests.test_spot_recovery_lab import fleet_name  # noqa: F401

pytestmark = [pytest.mark.netns, pytest.mark.timeout(240)]
BRANCH = "feat/orphan-w1"
TIMEOUT_S = 6


def make(tmp_path: Path, origin: Path, fleet: str) -> tuple[Reconciler, LiveHostAccess]:
    task = tmp_path / "w1.md"
    task.write_text("keep working\n")
    pool = PoolSpec(name="lab", provider="lab", instance_types=["netns"], regions=["local"],
                    max_hosts=1, slots_per_host=1)
    cfg = FleetConfig(
        source=tmp_path / "config.json", format="json", project=ProjectInfo(),
        project_root=tmp_path,
        workers=[WorkerSpec(id="w1", branch=BRANCH, agent="stand-in", task_file=str(task),
                            location=parse_location("pool:lab"))],
        fleet=FleetSettings(name=fleet, pools=[pool], repository_url=str(origin),
                            base_branch="main", orphan_timeout_s=TIMEOUT_S,
                            scaling=ScalingLimits(reconcile_interval_s=1),
                            agents={"stand-in": f"STAND_IN_INTERVAL=3600 bash {AGENT}"}))
    clock = FakeClock()
    store = Store(tmp_path / "fleet.db", clock)
    access = LiveHostAccess(cfg, store, SshPool(),
                            tmux=TmuxTarget(socket_name=f"czt-{uuid.uuid4().hex[:8]}"),
                            facts=ConnectFacts(tmp_path))
    provider = LabProvider(fleet, "lab")
    return Reconciler(cfg, store, {"lab": provider}, access, clock, backoff_s=0.1), access


async def until_running(rec: Reconciler) -> None:
    for _ in range(12):
        result = await rec.reconcile_once()
        assert not result.errors, result.errors
        rec.clock.advance(15)  # type: ignore[attr-defined]
        w = rec.store.worker("w1")
        if w is not None and w.state == WorkerState.RUNNING:
            return
    raise AssertionError(f"w1 never ran: {[e.reason for e in rec.store.events()][-10:]}")


async def wait_for(check: object, what: str, seconds: float = 90) -> None:
    """Poll in real time (the watchdog runs on the host's clock), bounded."""
    for _ in range(int(seconds * 10)):
        if check():  # type: ignore[operator]
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{what} never happened")


def origin_log(origin: Path) -> str:
    done = subprocess.run(["git", "-C", str(origin), "log", "--format=%s", BRANCH, "--"],
                          capture_output=True, text=True)
    return done.stdout if done.returncode == 0 else ""


def test_a_silent_controllers_host_pushes_its_work_and_shuts_itself_down(
        tmp_path: Path, writable_origin: Path, fleet_name: str) -> None:  # noqa: F811
    rec, access = make(tmp_path, writable_origin, fleet_name)

    async def scenario() -> None:
        await until_running(rec)
        (record,) = rec.store.hosts()
        (lab_host,) = netns.list_hosts(fleet=fleet_name)
        state = Path(lab_host.work_dir, ".czarina-fleet")
        pid = (state / "watchdog.pid").read_text().strip()
        # bootstrapping again (a retried step) keeps the one watchdog
        again = await install_watchdog(access.runner(record), record.work_dir, TIMEOUT_S,
                                       LabProvider.self_shutdown)
        assert again == pid and Path(f"/proc/{pid}").exists()
        # a probe refreshes the heartbeat (same round trip as the status probe)
        beat = state / "heartbeat"
        aged = int(beat.stat().st_mtime) - 2  # older, still well inside the timeout
        os.utime(beat, (aged, aged))
        await access.probe(record)
        assert beat.stat().st_mtime > aged
        # uncommitted work the final checkpoint must save
        checkout = Path(access._checkout_dir(record, "w1").replace("~", lab_host.home, 1))
        (checkout / "unsaved.txt").write_text("work in progress\n")
        subprocess.run(["chmod", "a+rw", str(checkout / "unsaved.txt")], check=True)
        assert "czarina-fleet checkpoint" not in origin_log(writable_origin)

        # The controller goes silent: no more probes. The host saves and shuts down.
        mark = Path(lab_host.home, POWEROFF_MARK)
        await wait_for(mark.exists, "the watchdog's shutdown step")
        log = (state / "watchdog.log").read_text()
        assert f"pushed {BRANCH}" in log and (state / "orphaned").exists()
        subjects = origin_log(writable_origin)
        assert "czarina-fleet checkpoint: uncommitted work saved before the host shut" \
            in subjects
        shown = subprocess.run(["git", "-C", str(writable_origin), "show",
                                f"{BRANCH}:unsaved.txt"], capture_output=True, text=True)
        assert shown.stdout == "work in progress\n"
        # the lab provider sees a host that powered itself off and ends it
        provider = rec.providers["lab"]
        assert await provider.list_instances() == []
        assert netns.list_hosts(fleet=fleet_name) == []
        await access.pool.close()

    asyncio.run(scenario())
