"""Interrupting a lab host, as a user would (remote/lab_spot.py, `czarina lab
interrupt`), against the whole controller on real hosts: the notice comes from the
host's own metadata service (each cloud's, as documented) through the probe, the host is
killed at the deadline; without notice it is killed at once. Real time throughout
(the notice's deadline and the controller's clock must agree)."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest

from czarina_fleet.cli.dashboard import dashboard_rows
from czarina_fleet.clock import SystemClock
from czarina_fleet.controller.runtime.compose import fleet_jobs
from czarina_fleet.controller.runtime.connect_facts import ConnectFacts
from czarina_fleet.controller.runtime.cost_accrual import accrue_before, accrue_now
from czarina_fleet.controller.runtime.host_access import LiveHostAccess
from czarina_fleet.controller.runtime.push_job import BranchPusher
from czarina_fleet.controller.runtime.reconciler import Reconciler
from czarina_fleet.controller.runtime.scheduler import Controller
from czarina_fleet.controller.state.store import Store
from czarina_fleet.model.config import (
    FleetConfig,
    FleetSettings,
    PoolSpec,
    ProjectInfo,
    WorkerSpec,
)
from czarina_fleet.model.location import parse_location
from czarina_fleet.model.states import HostState
from czarina_fleet.providers.lab import LabProvider
from czarina_fleet.remote import lab_spot, netns
from czarina_fleet.remote.ssh_pool import SshPool
from czarina_fleet.remote.tmux_target import TmuxTarget
from tests.fixtures.lab_fleet import AGENT, BRANCH, TASK, Lab, start_and_work

pytestmark = [pytest.mark.netns, pytest.mark.timeout(240)]
PRICE = 3.6  # USD per hour: $0.001 per second


class RealClock(SystemClock):
    def advance(self, seconds: float) -> None:
        return None  # steps follow real time; the lab hosts do too


def real_lab(tmp_path: Path, origin: Path, fleet: str, cloud: str) -> Lab:
    task = tmp_path / "w1.md"
    task.write_text(TASK)
    pool = PoolSpec(name="spot", provider="lab", instance_types=["netns"], regions=["local"],
                    max_hosts=1, slots_per_host=1,
                    options={"metadata": cloud, "price_per_hour": PRICE})
    cfg = FleetConfig(
        source=tmp_path / "config.json", format="json", project=ProjectInfo(),
        project_root=tmp_path,
        workers=[WorkerSpec(id="w1", branch=BRANCH, agent="stand-in", task_file=str(task),
                            location=parse_location("pool:spot"))],
        fleet=FleetSettings(name=fleet, pools=[pool], repository_url=str(origin),
                            base_branch="main",
                            agents={"stand-in": f"STAND_IN_INTERVAL=3600 bash {AGENT}"}))
    clock = RealClock()
    store = Store(tmp_path / "fleet.db", clock)
    access = LiveHostAccess(cfg, store, SshPool(),
                            tmux=TmuxTarget(socket_name=f"czt-{uuid.uuid4().hex[:8]}"),
                            facts=ConnectFacts(tmp_path))
    provider = LabProvider.from_pool(pool, fleet, clock=clock)
    reconciler = Reconciler(cfg, store, {"spot": provider}, access, clock, backoff_s=0.1)
    reconciler.before_act = lambda actions: accrue_before(store, clock, actions)
    return Lab(clock, store, access, provider, reconciler,  # type: ignore[arg-type]
               BranchPusher(store, access, clock))


def lab_host(fleet: str, host_id: str) -> netns.LabHost:
    (host,) = [h for h in netns.list_hosts(fleet=fleet) if h.host_id == host_id]
    return host


@pytest.fixture
def fleet_name() -> object:
    name = f"intr-{uuid.uuid4().hex[:8]}"
    yield name
    for host in netns.list_hosts(fleet=name):
        netns.destroy_host(host)


@pytest.mark.parametrize("cloud", ["aws", "gcp", "azure"])
def test_notice_from_the_hosts_metadata_saves_everything(
        tmp_path: Path, writable_origin: Path, fleet_name: str, cloud: str) -> None:
    lb = real_lab(tmp_path, writable_origin, fleet_name, cloud)

    async def scenario() -> None:
        a, made = await start_and_work(lb)  # nothing pushed yet: all of it is at risk
        await lb.sh(a, 'echo "half done" > uncommitted.txt')
        on_a = await lb.history(a)
        # 25 s ahead: within GCE's 30 s, so its metadata says TRUE at once
        lab_spot.post_notice(lab_host(fleet_name, a.host_id), 25)
        await lb.tick(until=a.host_id, limit=20)
        b = lb.host()
        assert set(made) <= on_a <= await lb.history(b)
        assert await lb.sh(b, "cat uncommitted.txt") == "half done"
        await lb.wait_for(b, "cat TASKS_RECEIVED.txt", TASK + "\n" + TASK)
        events = lb.store.events(limit=500)
        drained = [e for e in events if e.entity_id == a.host_id and e.to_state == "draining"]
        launched = [e for e in events if e.entity_id == b.host_id and e.to_state == "requested"]
        assert drained and launched
        # the replacement was launched in the step that saw the notice, while w1 was
        # checkpointing; it was not waiting for w1 to need a place ("placing")
        placing = min(e.seq for e in events if e.entity_id == "w1"
                      and e.to_state == "placing" and e.seq > drained[0].seq)
        assert drained[0].seq < launched[0].seq < placing
        if cloud == "azure":
            assert any(e.entity_id == a.host_id and "approved" in e.reason for e in events)
        await lb.access.pool.close()

    asyncio.run(scenario())


def test_interrupted_without_notice_billing_ends_when_it_was_taken(
        tmp_path: Path, writable_origin: Path, fleet_name: str) -> None:
    lb = real_lab(tmp_path, writable_origin, fleet_name, "aws")

    async def scenario() -> None:
        a, _ = await start_and_work(lb)
        taken = lab_spot.interrupt(lab_host(fleet_name, a.host_id), None)
        await asyncio.sleep(2)  # the controller learns of it a step later
        await lb.tick(until=a.host_id, limit=20)
        accrue_now(lb.store, lb.clock)
        gone = lb.store.host(a.host_id)
        assert gone is not None
        assert gone.state in (HostState.INTERRUPTED, HostState.TERMINATED)
        assert gone.state_since == taken  # (terminated later: still ended when taken)
        entries = [e for e in lb.store.ledger() if e.host_id == a.host_id]
        assert entries and max(e.ts + e.seconds for e in entries) <= taken + 1e-6
        billed = sum(e.usd for e in entries)
        assert gone.launched_at is not None
        assert abs(billed - (taken - gone.launched_at) * PRICE / 3600) < 1e-9
        await lb.access.pool.close()

    asyncio.run(scenario())


def origin_head(origin: Path) -> str:
    import subprocess
    return subprocess.run(["git", "-C", str(origin), "rev-parse", f"refs/heads/{BRANCH}"],
                          capture_output=True, text=True, check=False).stdout.strip()


def test_a_last_push_when_the_controller_stops_and_in_once_only_where_due(
        tmp_path: Path, writable_origin: Path, fleet_name: str) -> None:
    lb = real_lab(tmp_path, writable_origin, fleet_name, "aws")

    def controller() -> Controller:
        c = Controller(lb.reconciler, interval_s=3600)
        for job in fleet_jobs(lb.reconciler.cfg, lb.store, lb.access, lb.clock, 3600):
            c.add_job(job.run, job.period_s, job.name)
            if job.on_stop_timeout_s is not None:
                c.add_final(job.run, job.on_stop_timeout_s)
        return c

    async def scenario() -> None:
        a, made = await start_and_work(lb)
        assert origin_head(writable_origin) != made[-1]  # nothing pushed yet
        # a controller stopped (SIGTERM, --for ending: both call stop()) pushes first
        running = controller()
        asyncio.get_running_loop().call_later(0.5, running.stop)
        assert await running.run(lb.store.lock()) == 0
        assert origin_head(writable_origin) == made[-1]
        # --once pushes what is due...
        made.append(await lb.commit(a, "after the stop"))
        assert await controller().run(lb.store.lock(), once=True) == 0
        assert origin_head(writable_origin) == made[-1]
        # ...and only that: a fresh pusher (a new process) sees origin has it
        probe = await lb.access.probe(a)
        assert probe.sessions["w1"].unpushed_commits == 0
        report = await BranchPusher(lb.store, lb.access, lb.clock).run_once()
        assert report.unchanged == ["w1"] and not report.pushed
        made.append(await lb.commit(a, "one more"))
        await lb.sh(a, "echo draft > draft.txt")
        probe = await lb.access.probe(a)
        (row,) = dashboard_rows(lb.reconciler.desired(), lb.store.workers(), lb.store.hosts(),
                                {a.host_id: probe}, lb.clock.now())
        exposure = row.as_json()["exposure"]  # what `status --json` reports
        assert isinstance(exposure, dict)
        assert exposure["unpushed_commits"] == 1 and exposure["uncommitted_files"] == 1
        assert exposure["newest_unpushed_commit_age_s"] is not None
        await lb.access.pool.close()

    asyncio.run(scenario())
