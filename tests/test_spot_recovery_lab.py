"""Spot interruption recovery end to end on real hosts: lab hosts (network namespaces
with their own sshd and user), a real git origin, real tmux sessions running the
stand-in agent, the real reconciler, executor, push job and SSH pool. Only the cloud's
interruption notice is injected (the lab provider has no spot market of its own), and
time for deadlines runs on a FakeClock.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from czarina_fleet.clock import FakeClock
from czarina_fleet.controller.runtime.compose import build_reconciler
from czarina_fleet.controller.runtime.connect_facts import ConnectFacts
from czarina_fleet.controller.runtime.host_access import LiveHostAccess
from czarina_fleet.controller.runtime.push_job import BranchPusher
from czarina_fleet.controller.runtime.reconciler import Reconciler
from czarina_fleet.controller.state.store import Store
from czarina_fleet.model.config import (
    FleetConfig,
    FleetSettings,
    PoolSpec,
    ProjectInfo,
    WorkerSpec,
)
from czarina_fleet.model.fleet import HostRecord
from czarina_fleet.model.location import parse_location
from czarina_fleet.model.states import HostState, WorkerState
from czarina_fleet.providers.base import InterruptionNotice
from czarina_fleet.providers.lab import LabProvider
from czarina_fleet.remote import netns
from czarina_fleet.remote.ssh_pool import SshPool
from czarina_fleet.remote.tmux import TmuxTarget

pytestmark = [pytest.mark.netns, pytest.mark.timeout(240)]

AGENT = Path(__file__).resolve().parent.parent / "examples/quickstart/bin/stand-in-agent.sh"
BRANCH = "feat/spot-w1"
TASK = "write the spot recovery feature"


class SpotLabProvider(LabProvider):
    """The lab driver plus a spot market's one extra signal: notices the test posts."""

    def __init__(self, fleet: str) -> None:
        super().__init__(fleet, "spot")
        self.notices: list[InterruptionNotice] = []

    async def interruption_notices(self) -> list[InterruptionNotice]:
        return list(self.notices)


@pytest.fixture
def fleet_name() -> Iterator[str]:
    name = f"spot-{uuid.uuid4().hex[:8]}"
    yield name
    for host in netns.list_hosts(fleet=name):
        netns.destroy_host(host)


@dataclass
class Lab:
    clock: FakeClock
    store: Store
    access: LiveHostAccess
    provider: SpotLabProvider
    reconciler: Reconciler
    pusher: BranchPusher

    async def tick(self, until: str, limit: int = 12) -> None:
        """Reconcile (15 s of fake time per step) until w1 runs on a host other than
        `until`... or, with until="", until it runs anywhere."""
        for _ in range(limit):
            result = await self.reconciler.reconcile_once()
            assert not result.errors, result.errors
            self.clock.advance(15)
            w = self.store.worker("w1")
            if w is not None and w.state == WorkerState.RUNNING and w.host_id != until:
                return
        raise AssertionError(f"w1 did not come up: {self.store.worker('w1')}; events: "
                             f"{[e.reason for e in self.store.events()][-15:]}")

    def host(self) -> HostRecord:
        w = self.store.worker("w1")
        assert w is not None and w.host_id is not None
        host = self.store.host(w.host_id)
        assert host is not None
        return host

    async def sh(self, host: HostRecord, script: str, *args: str) -> str:
        """Run `script` in w1's checkout on `host`, as the host's own user."""
        checkout = self.access._checkout_dir(host, "w1")
        enter = 'd=$1; shift; case $d in "~/"*) d=$HOME/${d#"~/"} ;; esac; cd "$d" && '
        done = await self.access.runner(host).run(["sh", "-c", enter + script,
                                                   "t", checkout, *args], timeout=60)
        assert done.ok, done.stderr
        return done.stdout.strip()

    async def commit(self, host: HostRecord, name: str) -> str:
        return await self.sh(host, 'echo "$1" > "$1.txt" && git add "$1.txt" && '
                             'git -c user.name=dev -c user.email=dev@x.invalid commit -qm "$1" '
                             '&& git rev-parse HEAD', name)

    async def history(self, host: HostRecord) -> set[str]:
        return set((await self.sh(host, "git rev-list HEAD")).split())

    async def wait_for(self, host: HostRecord, script: str, want: str) -> str:
        """Poll (real time, a few seconds at most) until `script`'s output holds `want`."""
        out = ""
        for _ in range(100):
            out = await self.sh(host, script + " 2>/dev/null || true")
            if want in out:
                return out
            await asyncio.sleep(0.1)
        raise AssertionError(f"{want!r} never appeared; last output: {out!r}")


def lab(tmp_path: Path, origin: Path, fleet: str) -> Lab:
    task = tmp_path / "w1.md"
    task.write_text(TASK)  # one line: the agent commits once per line it receives
    pool = PoolSpec(name="spot", provider="lab", instance_types=["netns"], regions=["local"],
                    max_hosts=1, slots_per_host=1)
    cfg = FleetConfig(
        source=tmp_path / "config.json", format="json", project=ProjectInfo(),
        project_root=tmp_path,
        workers=[WorkerSpec(id="w1", branch=BRANCH, agent="stand-in", task_file=str(task),
                            location=parse_location("pool:spot"))],
        fleet=FleetSettings(name=fleet, pools=[pool], repository_url=str(origin),
                            base_branch="main",
                            agents={"stand-in": f"STAND_IN_INTERVAL=3600 bash {AGENT}"}))
    clock = FakeClock()
    store = Store(tmp_path / "fleet.db", clock)
    access = LiveHostAccess(cfg, store, SshPool(),
                            tmux=TmuxTarget(socket_name=f"czt-{uuid.uuid4().hex[:8]}"),
                            facts=ConnectFacts(tmp_path))
    provider = SpotLabProvider(fleet)
    reconciler = build_reconciler(cfg, store, {"spot": provider}, access, clock, backoff_s=0.1)
    return Lab(clock, store, access, provider, reconciler, BranchPusher(store, access, clock))


async def start_and_work(lb: Lab) -> tuple[HostRecord, list[str]]:
    """w1 runs on host A, its agent has taken its task and committed, and the developer
    made two commits of their own. Returns A and every commit hash made on it."""
    await lb.tick(until="")
    a = lb.host()
    await lb.wait_for(a, "git log --format=%s", "stand-in agent: step 1")
    made = [await lb.commit(a, "first"), await lb.commit(a, "second")]
    return a, made


def test_notice_checkpoints_then_resumes_elsewhere_with_every_commit(
        tmp_path: Path, writable_origin: Path, fleet_name: str) -> None:
    lb = lab(tmp_path, writable_origin, fleet_name)

    async def scenario() -> None:
        a, made = await start_and_work(lb)
        # the push job pushes what moved, and only that
        report = await lb.pusher.run_once()
        assert report.pushed == {"w1": made[-1]}
        assert (await lb.pusher.run_once()).unchanged == ["w1"]
        # after the last push: one more commit, and work not committed at all
        made.append(await lb.commit(a, "third"))
        await lb.sh(a, 'echo "half done" > uncommitted.txt')
        on_a = await lb.history(a)
        assert set(made) <= on_a

        instance = lb.store.host(a.host_id).instance_id  # type: ignore[union-attr]
        lb.provider.notices = [InterruptionNotice(instance or "", a.host_id,
                                                  "spot interruption notice",
                                                  deadline=lb.clock.now() + 120)]
        await lb.tick(until=a.host_id)
        b = lb.host()
        assert b.host_id != a.host_id
        assert lb.store.host(a.host_id).state in (  # type: ignore[union-attr]
            HostState.TERMINATING, HostState.TERMINATED)
        on_b = await lb.history(b)
        assert on_a <= on_b  # every commit of A, the one after the last push too
        assert await lb.sh(b, "cat uncommitted.txt") == "half done"
        subjects = await lb.sh(b, "git log --format=%s")
        assert "czarina-fleet checkpoint: uncommitted work of worker w1" in subjects
        # the task was injected again: the agent on B received it a second time
        got = await lb.wait_for(b, "cat TASKS_RECEIVED.txt", TASK + "\n" + TASK)
        assert got.count(TASK) == 2
        await lb.access.pool.close()

    asyncio.run(scenario())


def test_host_taken_without_notice_resumes_from_the_last_push(
        tmp_path: Path, writable_origin: Path, fleet_name: str) -> None:
    lb = lab(tmp_path, writable_origin, fleet_name)

    async def scenario() -> None:
        a, made = await start_and_work(lb)
        report = await lb.pusher.run_once()
        assert report.pushed == {"w1": made[-1]}
        pushed = await lb.history(a)
        late = await lb.commit(a, "after the last push")  # the documented window of loss

        # the cloud takes the host: no notice, the instance is simply gone
        (gone,) = [h for h in netns.list_hosts(fleet=fleet_name) if h.host_id == a.host_id]
        netns.destroy_host(gone)
        await lb.tick(until=a.host_id)
        b = lb.host()
        assert lb.store.host(a.host_id).state in (  # type: ignore[union-attr]
            HostState.INTERRUPTED, HostState.TERMINATED)
        on_b = await lb.history(b)
        assert set(made) <= on_b and pushed <= on_b
        assert late not in on_b
        await lb.wait_for(b, "cat TASKS_RECEIVED.txt", TASK + "\n" + TASK)
        await lb.access.pool.close()

    asyncio.run(scenario())
