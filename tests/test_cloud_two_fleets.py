"""Two fleets in one cloud account (one moto server, one fake GCE project, one fake ARM
resource group), with the same pool name, the same worker and host ids, and display
names that flatten to the same GCP label ("My Fleet ..." and "my_fleet ..."). Each runs
the real reconciler over the real driver: neither adopts, stops or deletes the other's
instances, a lost state file is rebuilt from the fleet's own instances only, and
scaling one fleet to zero leaves the other's running."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from czarina_fleet.controller.state.store import Store
from czarina_fleet.model.states import HostState
from tests.fakes.azure_server import FakeArm
from tests.fakes.gcp_server import FakeGce
from tests.test_cloud_reconcile import (
    Backend,
    Harness,
    aws_backend,
    azure_backend,
    gcp_backend,
)

# fleet A, fleet B, instances in the cloud, instances ever created in the cloud
Pair = tuple[Backend, Backend, Callable[[], int], Callable[[], int]]


@pytest.fixture(params=["aws", "gcp", "azure"])
def two(request: pytest.FixtureRequest, moto_url: str) -> Iterator[tuple[str, str, Pair]]:
    u = uuid.uuid4().hex[:6]
    a, b = f"My Fleet {u}", f"my_fleet {u}"  # one GCP label: my_fleet_<u>
    if request.param == "aws":
        fa, fb = aws_backend(moto_url, a), aws_backend(moto_url, b)
        yield a, b, (fa, fb, lambda: fa.all_instances() + fb.all_instances(),
                     lambda: fa.launches() + fb.launches())
    elif request.param == "gcp":
        gce = FakeGce(polls_until_done=1).start()
        yield a, b, (gcp_backend(gce, a), gcp_backend(gce, b), lambda: len(gce.instances),
                     lambda: gce.calls.count("compute.instances.insert"))
        gce.stop()
        assert gce.violations == []
    else:
        arm = FakeArm(polls_until_done=1).start()
        yield a, b, (azure_backend(arm, a), azure_backend(arm, b),
                     lambda: len(arm.of_kind("vm")),
                     lambda: arm.calls.count("Microsoft.Compute/virtualMachines/write"))
        arm.stop()
        assert arm.violations == []


def test_two_fleets_never_touch_each_others_instances(
        tmp_path: Path, two: tuple[str, str, Pair]) -> None:
    a_name, b_name, (a_cloud, b_cloud, in_cloud, created) = two
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a, b = Harness(tmp_path / "a", a_name, a_cloud), Harness(tmp_path / "b", b_name, b_cloud)
    a.rec, b.rec = a.build(2), b.build(2)
    for _ in range(8):
        a.tick()
        b.tick()
    assert a.running() == b.running() == ["w0", "w1"]  # same worker ids in both fleets
    assert in_cloud() == 2  # one host each (2 slots), never a shared or a third one
    [ha], [hb] = a.store.hosts(), b.store.hosts()
    assert ha.host_id == hb.host_id and ha.instance_id != hb.instance_id

    # A loses its state file: the next steps rebuild A from A's own instance only.
    a.store.close()
    (tmp_path / "a" / "fleet.db").unlink()
    a.store = Store(tmp_path / "a" / "fleet.db", a.clock, synchronous="OFF")
    a.rec = a.build(2)
    a.tick(6)
    assert [h.instance_id for h in a.store.hosts()] == [ha.instance_id]
    assert in_cloud() == 2 and created() == 2  # adopted, not launched again
    assert a.running() == ["w0", "w1"]

    # A scales to zero: its host goes, B's stays.
    a.rec = a.build(0)
    for _ in range(40):
        a.tick()
        b.tick()
    assert in_cloud() == 1
    assert [h.state for h in b.store.hosts()] == [HostState.READY]
    assert b.running() == ["w0", "w1"] and created() == 2


def test_a_look_alike_is_written_to_the_event_log_once(tmp_path: Path) -> None:
    """GCP: fleet B sees fleet A's VM (same flattened labels) on every list; the event
    log gets it once, even across controller restarts."""
    gce = FakeGce(polls_until_done=1).start()
    try:
        u = uuid.uuid4().hex[:6]
        a = Harness(tmp_path / "a", f"My Fleet {u}", gcp_backend(gce, f"My Fleet {u}"))
        b = Harness(tmp_path / "b", f"my_fleet {u}", gcp_backend(gce, f"my_fleet {u}"))
        a.rec = a.build(1)
        a.tick(4)
        for _ in range(3):
            b.rec = b.build(0)  # a fresh controller each time, as `--once` from cron
            b.tick(2)
        [event] = b.store.events(entity="foreign")
        [vm] = gce.instances
        assert event.entity_id == f"p/instance/{vm[0]}/{vm[1]}"
        assert "not ours, left alone" in event.reason and f"My Fleet {u}" in event.reason
        assert len(gce.instances) == 1 and a.running() == ["w0"]
    finally:
        gce.stop()
    assert gce.violations == []
