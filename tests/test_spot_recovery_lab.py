"""Spot interruption recovery end to end on real hosts (the lab fleet of
tests/fixtures/lab_fleet.py). Only the cloud's interruption notice is injected (the lab
provider has no spot market of its own), and time for deadlines runs on a FakeClock.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from czarina_fleet.model.states import HostState
from czarina_fleet.providers.base import InterruptionNotice
from czarina_fleet.remote import netns
from tests.fixtures.lab_fleet import TASK, lab, start_and_work

pytestmark = [pytest.mark.netns, pytest.mark.timeout(240)]


@pytest.fixture
def fleet_name() -> Iterator[str]:
    name = f"spot-{uuid.uuid4().hex[:8]}"
    yield name
    for host in netns.list_hosts(fleet=name):
        netns.destroy_host(host)


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
