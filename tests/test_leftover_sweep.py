"""The leftover sweep over a real driver: the Azure driver against the fake ARM, where
an eviction leaves the public IP. Deleted after the grace period only, each in the event
log (AWS's and GCP's leftovers: tests/test_aws_provider.py, test_gcp_provider.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from czarina_fleet.clock import FakeClock
from czarina_fleet.controller.runtime.sweep import LeftoverSweep
from czarina_fleet.controller.state.store import Store
from czarina_fleet.model.fleet import HostRecord
from czarina_fleet.model.states import HostState
from tests.fakes.azure_server import FakeArm
from tests.test_azure_provider import driver, request


@pytest.fixture
def arm() -> Iterator[FakeArm]:
    server = FakeArm(polls_until_done=1).start()
    yield server
    server.stop()


def test_an_evicted_vms_ip_is_deleted_after_the_grace_and_logged(
        tmp_path: Path, arm: FakeArm) -> None:
    clock = FakeClock()
    store = Store(tmp_path / "fleet.db", clock)
    az = driver(arm, clock=clock)
    seen = tmp_path / "leftovers.json"
    sweep = LeftoverSweep(store, {"az": az}, clock, grace_s=600, seen_path=seen)
    inst = asyncio.run(az.launch(request("h1")))
    asyncio.run(az.launch(request("h2")))
    assert asyncio.run(sweep.run_once()) == []
    arm.evict(inst.instance_id)
    assert asyncio.run(sweep.run_once()) == []  # first seen: the grace starts
    clock.advance(599)
    # A restarted controller (`--once` from cron) keeps the first-seen time.
    sweep = LeftoverSweep(store, {"az": az}, clock, grace_s=600, seen_path=seen)
    assert asyncio.run(sweep.run_once()) == []
    clock.advance(1)
    deleted = asyncio.run(sweep.run_once())
    assert [(d.kind, d.host_id) for d in deleted] == [("public-ip", "h1")]
    assert sorted(r["_kind"] for r in arm.resources.values()) == ["disk", "ip", "nic", "vm"]
    [event] = store.events(entity="leftover")
    assert event.entity_id == f"az/{inst.instance_id}-ip" and "host h1" in event.reason
    assert asyncio.run(sweep.run_once()) == []  # nothing left over any more
    assert seen.read_text() == "{}"


def test_a_launching_hosts_resources_are_never_swept(tmp_path: Path, arm: FakeArm) -> None:
    clock = FakeClock()
    store = Store(tmp_path / "fleet.db", clock)
    az = driver(arm, clock=clock)
    inst = asyncio.run(az.launch(request("h1")))
    arm.evict(inst.instance_id)  # looks like a leftover, but the store says launching
    store.upsert_host(HostRecord(host_id="h1", provider="azure", state=HostState.REQUESTED,
                                 state_since=clock.now(), slots=1, pool="az"))
    sweep = LeftoverSweep(store, {"az": az}, clock, grace_s=0, seen_path=None)
    assert asyncio.run(sweep.run_once()) == []
    assert len(arm.of_kind("ip")) == 1
