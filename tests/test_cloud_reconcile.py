"""The reconciler driving each real cloud driver against its offline stand-in (moto for
AWS, the fake GCE and ARM servers for GCP and Azure), on a fake clock.

Hosts' tmux sessions are simulated in memory (`InMemoryRuntime`): the instances these
fakes make have no machine behind them. What is real is every provider call: scale a pool
0 -> 3 hosts -> 0, and a controller killed between launch and record adopts the instance
on restart instead of launching a second one."""

from __future__ import annotations

import asyncio
import functools
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from google.auth.credentials import AnonymousCredentials

from czarina_fleet.clock import FakeClock
from czarina_fleet.controller.runtime.compose import build_reconciler
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
from czarina_fleet.model.fleet import IntentStatus
from czarina_fleet.model.location import parse_location
from czarina_fleet.model.states import HostState, WorkerState
from czarina_fleet.providers.aws import AwsProvider
from czarina_fleet.providers.azure import AzureProvider
from czarina_fleet.providers.base import Provider
from czarina_fleet.providers.fake import InMemoryRuntime
from czarina_fleet.providers.gcp import GcpProvider
from tests.fakes.azure_server import FakeArm
from tests.fakes.gcp_server import FakeGce
from tests.fixtures.cloud_recorder import ApiRecorder
from tests.test_azure_provider import FakeBearer, NoCredential

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBq5Zs3kqv0x3tX8w0jv8mTqg9cQ3lqzYx8m1m7qk2dP test"


@dataclass
class Backend:
    """One cloud's stand-in: how to build a fresh driver, which hosts it runs, and how
    many instances it was asked to create."""

    pool: PoolSpec
    make_driver: Callable[[FakeClock], Provider]
    running_hosts: Callable[[], list[str]]
    all_instances: Callable[[], int]
    launches: Callable[[], int]



@functools.cache
def _image(url: str) -> str:
    ec2 = boto3.client("ec2", endpoint_url=url, region_name="us-east-1",
                       aws_access_key_id="testing", aws_secret_access_key="testing")
    return str(ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"])


def aws_backend(url: str, fleet: str) -> Backend:
    session = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing",
                            region_name="us-east-1")
    ec2 = session.client("ec2", endpoint_url=url)
    image = _image(url)
    pool = PoolSpec(name="p", provider="aws", instance_types=["m5.large"],
                    regions=["us-east-1a"], image=image, slots_per_host=2, max_hosts=5)
    recorder = ApiRecorder()
    calls: list[str] = []

    def hook(client: Any) -> None:
        recorder.aws_hook(client)
        client.meta.events.register("before-call.ec2.RunInstances",
                                    lambda **_: calls.append("run"))

    def mine(states: list[str]) -> list[dict[str, Any]]:
        got = ec2.describe_instances(Filters=[
            {"Name": "tag:czarina-fleet", "Values": [fleet]},
            {"Name": "instance-state-name", "Values": states}])
        return [i for r in got["Reservations"] for i in r["Instances"]]

    def host(i: dict[str, Any]) -> str:
        return next(t["Value"] for t in i["Tags"] if t["Key"] == "czarina-host")

    return Backend(
        pool,
        lambda clock: AwsProvider.from_pool(pool, fleet, clock=clock, session=session,
                                            endpoint_url=url, client_hook=hook,
                                            max_attempts=1, poll_interval_s=1),
        lambda: [host(i) for i in mine(["running"])],
        lambda: len(mine(["pending", "running", "stopping", "stopped"])),
        lambda: len(calls))


def gcp_backend(gce: FakeGce, fleet: str, pool: PoolSpec | None = None) -> Backend:
    pool = pool or PoolSpec(
        name="p", provider="gcp", instance_types=["e2-standard-2"], regions=["us-central1-a"],
        image="projects/debian-cloud/global/images/x", slots_per_host=2, max_hosts=5,
        options={"project": "demo"})

    def host(vm: dict[str, Any]) -> str:
        return next(i["value"] for i in vm["metadata"]["items"] if i["key"] == "czarina-host")

    return Backend(
        pool,
        lambda clock: GcpProvider.from_pool(pool, fleet, clock=clock, api_endpoint=gce.url,
                                            credentials=AnonymousCredentials(),
                                            poll_interval_s=1),
        lambda: [host(vm) for vm in gce.instances.values() if vm["status"] == "RUNNING"],
        lambda: len(gce.instances),
        lambda: gce.calls.count("compute.instances.insert"))


def azure_backend(arm: FakeArm, fleet: str) -> Backend:
    subnet = ("/subscriptions/sub/resourceGroups/n/providers/Microsoft.Network/"
              "virtualNetworks/v/subnets/s")
    pool = PoolSpec(name="p", provider="azure", instance_types=["Standard_D2s_v5"],
                    regions=["eastus"], slots_per_host=2, max_hosts=5,
                    image="Canonical:0001-com-ubuntu-server-jammy:22_04-lts-gen2:latest",
                    options={"subscription_id": "sub", "resource_group": "rg",
                             "subnet_id": subnet})
    return Backend(
        pool,
        lambda clock: AzureProvider.from_pool(
            pool, fleet, clock=clock, credential=NoCredential(), base_url=arm.url,
            poll_interval_s=1,
            client_kwargs={"authentication_policy": FakeBearer(), "polling_interval": 0}),
        lambda: [vm["tags"]["czarina-host"] for vm in arm.of_kind("vm")
                 if vm["properties"]["provisioningState"] == "Succeeded"],
        lambda: len(arm.of_kind("vm")),
        lambda: arm.calls.count("Microsoft.Compute/virtualMachines/write"))


@pytest.fixture(params=["aws", "gcp", "azure"])
def backend(request: pytest.FixtureRequest, moto_url: str) -> Iterator[tuple[str, Backend]]:
    fleet = f"f{uuid.uuid4().hex[:8]}"
    if request.param == "aws":
        yield fleet, aws_backend(moto_url, fleet)
    elif request.param == "gcp":
        gce = FakeGce(polls_until_done=1).start()
        yield fleet, gcp_backend(gce, fleet)
        gce.stop()
        assert gce.violations == []  # what the discovery document allows
    else:
        arm = FakeArm(polls_until_done=1).start()
        yield fleet, azure_backend(arm, fleet)
        arm.stop()
        assert arm.violations == []  # what the Azure specs allow


class Harness:
    def __init__(self, tmp: Path, fleet: str, backend: Backend) -> None:
        self.fleet, self.backend = fleet, backend
        self.clock = FakeClock()
        cloud = SimpleNamespace(clock=self.clock, running=lambda: [
            SimpleNamespace(host_id=h) for h in backend.running_hosts()])
        self.runtime = InMemoryRuntime(cloud)  # type: ignore[arg-type]
        self.store = Store(tmp / "fleet.db", self.clock, synchronous="OFF")
        self.rec = self.build(0)

    def build(self, workers: int) -> Reconciler:
        """A fresh controller (and a fresh driver: no memory of earlier launches)."""
        cfg = FleetConfig(
            source=Path("c.json"), format="json", project=ProjectInfo(), project_root=Path("."),
            workers=[WorkerSpec(id=f"w{i}", branch=f"b{i}", location=parse_location("pool:p"))
                     for i in range(workers)],
            fleet=FleetSettings(name=self.fleet, pools=[self.backend.pool],
                                scaling=ScalingLimits(idle_timeout_s=300)))
        return build_reconciler(cfg, self.store, {"p": self.backend.make_driver(self.clock)},
                          self.runtime, self.clock, backoff_s=0.1, ssh_public_key=KEY)

    def tick(self, n: int = 1, step: float = 15) -> None:
        for _ in range(n):
            result = asyncio.run(self.rec.reconcile_once())
            assert result.errors == [], result.errors
            self.clock.advance(step)

    def running(self) -> list[str]:
        return sorted(w.worker_id for w in self.store.workers() if w.state == WorkerState.RUNNING)


def test_scale_pool_zero_to_three_to_zero(tmp_path: Path, backend: tuple[str, Backend]) -> None:
    fleet, cloud = backend
    h = Harness(tmp_path, fleet, cloud)
    h.tick(2)
    assert cloud.all_instances() == 0 and cloud.launches() == 0
    h.rec = h.build(6)
    h.tick(8)
    assert h.running() == [f"w{i}" for i in range(6)]
    assert cloud.all_instances() == 3 and cloud.launches() == 3  # 6 workers, 2 slots each
    assert sorted(cloud.running_hosts()) == sorted(
        x.host_id for x in h.store.hosts() if x.state == HostState.READY)
    h.rec = h.build(0)
    h.tick(40)
    assert h.store.workers() == []
    assert cloud.all_instances() == 0  # idle hosts terminated in the cloud
    assert all(x.state == HostState.TERMINATED for x in h.store.hosts())


def test_restart_between_launch_and_record_adopts(tmp_path: Path,
                                                   backend: tuple[str, Backend]) -> None:
    fleet, cloud = backend
    h = Harness(tmp_path, fleet, cloud)
    h.rec = h.build(1)
    h.tick(1)
    assert cloud.launches() == 1
    (host,) = h.store.hosts()
    key = host.intent_key
    assert key is not None
    # what a controller killed after the cloud call but before recording leaves behind:
    h.store._db.execute("UPDATE intents SET status='open', result=NULL WHERE key=?", (key,))
    h.store._db.execute("UPDATE hosts SET state='requested', instance_id=NULL")
    h.rec = h.build(1)  # a fresh controller with a fresh driver
    h.tick(6)
    intent = h.store.intent(key)
    assert intent is not None and intent.status == IntentStatus.DONE
    assert intent.result is not None and "adopted" in intent.result["summary"]
    assert cloud.launches() == 1 and cloud.all_instances() == 1
    assert h.running() == ["w0"]
