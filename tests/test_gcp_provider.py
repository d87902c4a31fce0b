"""The GCP driver: the real google-cloud-compute REST client against tests/fakes/gcp_server."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncssh
import pytest
from google.auth.credentials import AnonymousCredentials

from czarina_fleet.clock import FakeClock
from czarina_fleet.model.config import PoolSpec
from czarina_fleet.providers.base import (
    CapacityError,
    InstanceState,
    InvalidPoolConfig,
    LaunchRequest,
    PermissionDenied,
    QuotaError,
)
from czarina_fleet.providers.gcp import GcpProvider
from czarina_fleet.providers.gcp_support import PERMISSIONS, vm_name
from tests.fakes.gcp_server import FakeGce
from tests.fakes.price_servers import FakeGcpCatalog
from tests.fixtures.cloud_recorder import documented_operations, terraform_policy

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBq5Zs3kqv0x3tX8w0jv8mTqg9cQ3lqzYx8m1m7qk2dP test"
_HOST_KEY = asyncssh.generate_private_key("ssh-ed25519")
PRIVATE = _HOST_KEY.export_private_key("openssh").decode()
PUBLIC = _HOST_KEY.export_public_key("openssh").decode().strip()
ZONES = ["us-central1-a", "europe-west4-b"]


@pytest.fixture
def gce() -> Iterator[FakeGce]:
    server = FakeGce(polls_until_done=2).start()
    yield server
    server.stop()
    assert server.violations == []  # every request and answer as the discovery doc allows


def make_pool(**kw: Any) -> PoolSpec:
    base: dict[str, Any] = {
        "name": "cpu", "provider": "gcp", "instance_types": ["e2-standard-2", "n2-standard-2"],
        "regions": ZONES, "image": "projects/debian-cloud/global/images/family/debian-12",
        "options": {"project": "demo-project", "network_tags": ["czarina-ssh"]},
    }
    return PoolSpec(**{**base, **kw})


def driver(gce: FakeGce, pool: PoolSpec | None = None, clock: FakeClock | None = None,
           fleet: str = "Team.Alpha") -> GcpProvider:
    return GcpProvider.from_pool(
        pool or make_pool(), fleet, clock=clock or FakeClock(), api_endpoint=gce.url,
        credentials=AnonymousCredentials(), poll_interval_s=1)


def request(host: str, **kw: Any) -> LaunchRequest:
    base: dict[str, Any] = {
        "host_id": host, "fleet": "Team.Alpha", "pool": "cpu", "shape": "e2-standard-2",
        "region": ZONES[0], "spot": True, "idempotency_key": f"key-{host}",
        "ssh_public_key": KEY,
    }
    return LaunchRequest(**{**base, **kw})


def test_launch_list_terminate_and_idempotent_relaunch(gce: FakeGce) -> None:
    gcp = driver(gce)

    async def scenario() -> None:
        inst = await gcp.launch(request("h1"))
        assert inst.state is InstanceState.RUNNING and inst.spot and inst.region == ZONES[0]
        assert inst.host_id == "h1" and inst.tags["czarina-fleet"] == "team_alpha"
        assert inst.connect is not None and inst.connect.address.startswith("192.0.2.")
        again = await gcp.launch(request("h1"))
        assert again.instance_id == inst.instance_id
        assert [i.instance_id for i in await gcp.list_instances()] == [inst.instance_id]
        await gcp.terminate(inst.instance_id)
        await gcp.terminate(inst.instance_id)  # 404: already gone is success
        assert await gcp.list_instances() == []
        await gcp.close()

    asyncio.run(scenario())
    assert gce.calls.count("compute.instances.insert") == 1
    assert gce.calls.count("compute.zoneOperations.get") >= 3  # RUNNING, RUNNING, DONE


def test_body_is_a_spot_vm_with_labels_and_ssh_key(gce: FakeGce) -> None:
    inst = asyncio.run(driver(gce).launch(request("h1", ssh_user="worker")))
    vm = gce.instances[(ZONES[0], inst.instance_id.split("/")[1])]
    assert vm["scheduling"]["provisioningModel"] == "SPOT"
    assert vm["scheduling"]["instanceTerminationAction"] == "DELETE"
    assert vm["labels"] == {"czarina-fleet": "team_alpha", "czarina-pool": "cpu",
                            "czarina-host": "h1"}
    meta = {i["key"]: i["value"] for i in vm["metadata"]["items"]}
    assert meta["ssh-keys"] == f"worker:{KEY}" and meta["czarina-fleet"] == "Team.Alpha"
    assert vm["tags"]["items"] == ["czarina-ssh"]
    assert meta["block-project-ssh-keys"] == "TRUE"  # project-wide keys never log in


def test_same_key_after_a_lost_reply_reuses_the_request_id(gce: FakeGce) -> None:
    """A controller killed after insert but before recording retries with the same key:
    the fake dedupes on requestId, and the name conflict path adopts the VM."""
    gcp = driver(gce)
    first = asyncio.run(gcp.launch(request("h1")))
    fresh = driver(gce)  # a restarted controller: no memory of the first launch
    assert asyncio.run(fresh.launch(request("h1"))).instance_id == first.instance_id
    assert len(gce.instances) == 1


def test_zone_exhausted_moves_to_the_next_zone(gce: FakeGce) -> None:
    for _ in range(2):  # both shapes in the first zone
        gce.inject("compute.instances.insert", ZONES[0], op_error="ZONE_RESOURCE_POOL_EXHAUSTED")
    gcp = driver(gce)
    inst = asyncio.run(gcp.launch(request("h1")))
    assert inst.region == ZONES[1]
    assert [a.outcome for a in gcp.launch_log] == ["capacity", "capacity", "launched"]
    assert "ZONE_RESOURCE_POOL_EXHAUSTED" in gcp.launch_log[0].reason


def test_a_zone_that_never_finishes_times_out_and_is_left(gce: FakeGce) -> None:
    gce.slow_zones.add(ZONES[0])
    pool = make_pool(instance_types=["e2-standard-2"],
                     options={"project": "demo-project", "launch_timeout_s": 5})
    clock = FakeClock()
    gcp = driver(gce, pool, clock)
    inst = asyncio.run(gcp.launch(request("h1")))
    assert inst.region == ZONES[1]
    assert [a.outcome for a in gcp.launch_log] == ["timeout", "launched"]
    stalled = vm_name("cpu", "h1", "Team.Alpha")
    assert (ZONES[0], stalled) not in gce.instances  # the stalled VM was deleted


def test_quota_permission_and_unknown_zone_errors(gce: FakeGce) -> None:
    gcp = driver(gce, make_pool(regions=[ZONES[0]], instance_types=["e2-standard-2"]))
    gce.inject("compute.instances.insert", op_error="QUOTA_EXCEEDED")
    with pytest.raises(QuotaError):
        asyncio.run(gcp.launch(request("h1")))
    gce.inject("compute.instances.insert", http_status=403)
    gcp = driver(gce, make_pool(regions=[ZONES[0]]))
    with pytest.raises(PermissionDenied, match="compute.instances.create") as info:
        asyncio.run(gcp.launch(request("h2")))
    assert info.value.permission == "compute.instances.create"
    gce.inject("compute.instances.insert", http_status=404, reason="notFound")
    with pytest.raises(InvalidPoolConfig, match="check the zone, machine type, image"):
        asyncio.run(gcp.launch(request("h3")))
    with pytest.raises(InvalidPoolConfig, match='"us-central1" is not a GCP zone'):
        driver(gce, make_pool(regions=["us-central1"]))


def test_throttled_calls_are_retried(gce: FakeGce) -> None:
    gce.inject("compute.instances.insert", http_status=429, reason="rateLimitExceeded")
    clock = FakeClock()
    start = clock.now()
    inst = asyncio.run(driver(gce, clock=clock).launch(request("h1")))
    assert inst.region == ZONES[0] and clock.now() > start


def test_all_capacity_gone_is_a_capacity_error(gce: FakeGce) -> None:
    for _ in range(4):
        gce.inject("compute.instances.insert", op_error="ZONE_RESOURCE_POOL_EXHAUSTED")
    with pytest.raises(CapacityError, match="no offering could be launched"):
        asyncio.run(driver(gce).launch(request("h1")))


def test_preemption_becomes_a_notice(gce: FakeGce) -> None:
    gcp = driver(gce)
    inst = asyncio.run(gcp.launch(request("h1")))
    assert asyncio.run(gcp.interruption_notices()) == []
    zone, name = inst.instance_id.split("/")
    gce.preempt(zone, name)
    notices = asyncio.run(gcp.interruption_notices())
    assert [(n.instance_id, n.host_id) for n in notices] == [(inst.instance_id, "h1")]
    assert asyncio.run(gcp.list_instances()) == []


def test_recorded_operations_match_docs_permissions(gce: FakeGce) -> None:
    gcp = driver(gce)

    async def everything() -> None:
        inst = await gcp.launch(request("h1"))
        await gcp.list_instances()
        await gcp.prices("e2-standard-2", ZONES[0], True)
        await gcp.interruption_notices()
        assert not await gcp.forget_host_key(inst.instance_id)  # no user-data: no call
        keyed = await gcp.launch(request("h2", host_private_key=PRIVATE, host_public_key=PUBLIC))
        assert await gcp.forget_host_key(keyed.instance_id)
        await gcp.terminate(inst.instance_id)
        assert all(f.ok for f in await gcp.doctor())  # image by family
        named = make_pool(image="projects/debian-cloud/global/images/"
                                "debian-12-bookworm-v20260101")
        assert all(f.ok for f in await driver(gce, named).doctor())

    asyncio.run(everything())
    assert set(gce.log) == documented_operations("GCP")
    granted = terraform_policy("gcp")
    assert all(f'"{PERMISSIONS[op]}"' in granted for op in gce.log)


def test_user_data_metadata_installs_the_controllers_host_key(gce: FakeGce) -> None:
    import asyncssh
    import yaml

    key = asyncssh.generate_private_key("ssh-ed25519")
    private = key.export_private_key("openssh").decode()
    public = key.export_public_key("openssh").decode().strip()
    inst = asyncio.run(driver(gce).launch(request("h1", host_private_key=private,
                                                  host_public_key=public)))
    vm = gce.instances[(ZONES[0], inst.instance_id.split("/")[1])]
    meta = {i["key"]: i["value"] for i in vm["metadata"]["items"]}
    data = yaml.safe_load(meta["user-data"])
    assert data["ssh_keys"] == {"ed25519_private": private, "ed25519_public": public}
    # once the host is verified, the key leaves the metadata; nothing else does
    assert asyncio.run(driver(gce).forget_host_key(inst.instance_id))
    after = {i["key"]: i["value"] for i in vm["metadata"]["items"]}
    assert "user-data" not in after and after == {k: v for k, v in meta.items()
                                                  if k != "user-data"}


def test_fleets_whose_names_flatten_to_one_label_never_adopt_each_other(
        gce: FakeGce) -> None:
    mine, theirs = driver(gce, fleet="My Fleet"), driver(gce, fleet="my_fleet")

    async def scenario() -> None:
        ours = await mine.launch(request("h1", fleet="My Fleet"))
        assert await theirs.list_instances() == []  # same labels, other metadata
        [look] = theirs.foreign()
        assert look.resource_id == ours.instance_id and "'My Fleet'" in look.why
        other = await theirs.launch(request("h1", fleet="my_fleet"))  # same pool, host id
        assert other.instance_id != ours.instance_id
        assert [i.instance_id for i in await mine.list_instances()] == [ours.instance_id]
        assert [i.instance_id for i in await theirs.list_instances()] == [other.instance_id]
        await theirs.terminate(other.instance_id)
        assert [i.instance_id for i in await mine.list_instances()] == [ours.instance_id]

    asyncio.run(scenario())
    [vm] = gce.instances.values()
    assert vm["labels"]["czarina-fleet"] == "my_fleet"  # lossy label, exact metadata:
    meta = {i["key"]: i["value"] for i in vm["metadata"]["items"]}
    assert meta["czarina-fleet"] == "My Fleet"


def test_spot_vm_is_deleted_with_its_disk_when_preempted(gce: FakeGce) -> None:
    gcp = driver(gce)
    inst = asyncio.run(gcp.launch(request("h1")))
    zone, name = inst.instance_id.split("/")
    vm = gce.instances[(zone, name)]
    assert vm["scheduling"]["instanceTerminationAction"] == "DELETE"
    [disk] = vm["disks"]
    assert disk["autoDelete"] is True  # the boot disk goes with the VM
    assert disk["initializeParams"]["labels"]["czarina-fleet"] == "team_alpha"
    gce.preempt(zone, name)
    assert [n.host_id for n in asyncio.run(gcp.interruption_notices())] == ["h1"]
    assert asyncio.run(gcp.list_instances()) == []


def test_with_fleet_ids_a_renamed_fleet_keeps_its_vms_and_a_namesake_is_foreign(
        gce: FakeGce) -> None:
    def with_id(fleet: str, fleet_id: str) -> GcpProvider:
        return GcpProvider.from_pool(
            make_pool(), fleet, clock=FakeClock(), api_endpoint=gce.url,
            credentials=AnonymousCredentials(), poll_interval_s=1, fleet_id=fleet_id)

    a, b = "cf0123456789abcdef", "cffedcba9876543210"

    async def scenario() -> None:
        ours = await with_id("My Fleet", a).launch(request("h1", fleet="My Fleet", fleet_id=a))
        namesake = with_id("my_fleet", b)  # another project: its name flattens alike
        assert await namesake.list_instances() == []
        assert [f.resource_id for f in namesake.foreign()] == [ours.instance_id]
        renamed = with_id("Renamed", a)  # fleet.name changed; the id did not
        assert [i.instance_id for i in await renamed.list_instances()] == [ours.instance_id]
        theirs = await namesake.launch(request("h1", fleet="my_fleet", fleet_id=b))
        assert theirs.instance_id != ours.instance_id
        assert [i.instance_id for i in await renamed.list_instances()] == [ours.instance_id]

    asyncio.run(scenario())
    labels = sorted(vm["labels"]["czarina-fleet-id"] for vm in gce.instances.values())
    assert labels == [a, b]


def test_prices_from_the_cloud_billing_catalog_else_the_built_in_table(
        gce: FakeGce, tmp_path: Path) -> None:
    from tests.test_price_sources import gcp_skus

    catalog = FakeGcpCatalog(gcp_skus(), key="k-1")
    try:
        gcp = GcpProvider.from_pool(
            make_pool(), "Team.Alpha", clock=FakeClock(1_800_000_000.0), api_endpoint=gce.url,
            credentials=AnonymousCredentials(), poll_interval_s=1,
            billing_catalog_url=f"{catalog.url}/v1/services/6F81-5844-456A/skus",
            billing_api_key="k-1", price_cache=tmp_path / "prices.json")
        quote = asyncio.run(gcp.prices("n2-standard-2", "us-central1-a", True))
        assert quote.usd_per_hour == pytest.approx(2 * 0.00765 + 8 * 0.001025)
        assert quote.source == "Cloud Billing Catalog API, fetched 2027-01-15T08:00:00Z"
        # e2-standard-2's family has no SKUs here: the table answers.
        assert asyncio.run(gcp.prices("e2-standard-2", "us-central1-a", False)).source == (
            "built-in table")
        assert catalog.refused == []
    finally:
        catalog.stop()
    # A test's Compute endpoint and no catalog URL: never the real catalog.
    assert asyncio.run(driver(gce).prices("n2-standard-2", "us-central1-a", False)).source == (
        "built-in table")
