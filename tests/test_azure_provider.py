"""The Azure driver: the real azure-mgmt-compute/network clients against
tests/fakes/azure_server (a fake ARM with Azure-AsyncOperation and Location LROs)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.core.pipeline.policies import SansIOHTTPPolicy

from czarina_fleet.clock import FakeClock
from czarina_fleet.model.config import PoolSpec
from czarina_fleet.providers.azure import AzureProvider
from czarina_fleet.providers.base import (
    CapacityError,
    InstanceState,
    InvalidPoolConfig,
    LaunchRequest,
    PermissionDenied,
    QuotaError,
)
from czarina_fleet.providers.price_sources import FALLBACK_SOURCE
from tests.fakes.azure_server import FakeArm
from tests.fakes.price_servers import FakeAzureRetail, azure_item
from tests.fixtures.cloud_recorder import documented_operations, terraform_policy

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBq5Zs3kqv0x3tX8w0jv8mTqg9cQ3lqzYx8m1m7qk2dP test"
LOCATIONS = ["eastus", "westeurope"]
SUBNETS = {loc: f"/subscriptions/sub/resourceGroups/net/providers/Microsoft.Network/"
                f"virtualNetworks/v-{loc}/subnets/workers" for loc in LOCATIONS}


class FakeBearer(SansIOHTTPPolicy):  # type: ignore[type-arg]
    """azure-core refuses bearer tokens over plain http; the fake needs none (test only)."""

    def on_request(self, request: Any) -> None:
        request.http_request.headers["Authorization"] = "Bearer test-only"


class NoCredential:
    def get_token(self, *scopes: str, **kw: Any) -> Any:  # never called: policy replaced
        raise AssertionError("the test auth policy should be used")


@pytest.fixture
def arm() -> Iterator[FakeArm]:
    server = FakeArm(polls_until_done=2).start()
    yield server
    server.stop()
    assert server.violations == []  # every request and answer as the Azure specs allow
    assert server.newer_fields == set()  # the driver sets no field the 2024 specs lack


def make_pool(**kw: Any) -> PoolSpec:
    base: dict[str, Any] = {
        "name": "az", "provider": "azure",
        "instance_types": ["Standard_D2s_v5", "Standard_D2as_v5"], "regions": LOCATIONS,
        "image": "Canonical:0001-com-ubuntu-server-jammy:22_04-lts-gen2:latest",
        "max_price_per_hour": 0.05,
        "options": {"subscription_id": "sub", "resource_group": "fleet-rg",
                    "subnet_ids": SUBNETS},
    }
    return PoolSpec(**{**base, **kw})


def driver(arm: FakeArm, pool: PoolSpec | None = None,
           clock: FakeClock | None = None) -> AzureProvider:
    return AzureProvider.from_pool(
        pool or make_pool(), "fleet1", clock=clock or FakeClock(), credential=NoCredential(),
        base_url=arm.url, poll_interval_s=1,
        client_kwargs={"authentication_policy": FakeBearer(), "polling_interval": 0})


def request(host: str, **kw: Any) -> LaunchRequest:
    base: dict[str, Any] = {
        "host_id": host, "fleet": "fleet1", "pool": "az", "shape": "Standard_D2s_v5",
        "region": "eastus", "spot": True, "idempotency_key": f"key-{host}",
        "ssh_public_key": KEY,
    }
    return LaunchRequest(**{**base, **kw})


def test_launch_list_terminate_and_idempotent_relaunch(arm: FakeArm) -> None:
    az = driver(arm)

    async def scenario() -> None:
        inst = await az.launch(request("h1"))
        assert inst.state is InstanceState.RUNNING and inst.spot and inst.region == "eastus"
        assert inst.host_id == "h1" and inst.connect is not None
        assert inst.connect.address.startswith("198.51.100.")
        again = await driver(arm).launch(request("h1"))  # a restarted controller
        assert again.instance_id == inst.instance_id
        assert [i.instance_id for i in await az.list_instances()] == [inst.instance_id]
        await az.terminate(inst.instance_id)
        await az.terminate(inst.instance_id)  # already gone: success
        assert await az.list_instances() == []
        await az.close()

    asyncio.run(scenario())
    assert arm.resources == {}  # VM, NIC and public IP all deleted
    assert arm.calls.count("Microsoft.Compute/virtualMachines/write") == 1
    assert arm.calls.count("Microsoft.Network/locations/operations/read") >= 6  # 2 LROs


def test_vm_body_is_spot_with_nic_ip_tags_and_key(arm: FakeArm) -> None:
    inst = asyncio.run(driver(arm).launch(request("h1", ssh_user="worker")))
    [vm] = arm.of_kind("vm")
    props = vm["properties"]
    assert (props["priority"], props["evictionPolicy"]) == ("Spot", "Delete")
    assert props["billingProfile"]["maxPrice"] == 0.05
    assert vm["tags"] == {"czarina-fleet": "fleet1", "czarina-pool": "az", "czarina-host": "h1"}
    ssh = props["osProfile"]["linuxConfiguration"]["ssh"]["publicKeys"][0]
    assert ssh == {"path": "/home/worker/.ssh/authorized_keys", "keyData": KEY}
    [nic] = arm.of_kind("nic")
    assert props["networkProfile"]["networkInterfaces"][0]["id"] == nic["id"]
    cfg = nic["properties"]["ipConfigurations"][0]["properties"]
    assert cfg["subnet"]["id"] == SUBNETS["eastus"]
    assert cfg["publicIPAddress"]["id"] == arm.of_kind("ip")[0]["id"]
    assert inst.instance_id == vm["name"]


def test_allocation_failure_moves_to_next_location_and_cleans_up(arm: FakeArm) -> None:
    arm.inject("Microsoft.Compute/virtualMachines/write", "eastus",
               provision_error="AllocationFailed")
    arm.inject("Microsoft.Compute/virtualMachines/write", "eastus", status=409,
               code="SkuNotAvailable")
    az = driver(arm)
    inst = asyncio.run(az.launch(request("h1")))
    assert inst.region == "westeurope"
    assert [a.outcome for a in az.launch_log] == ["capacity", "capacity", "launched"]
    assert "AllocationFailed" in az.launch_log[0].reason
    assert "SkuNotAvailable" in az.launch_log[1].reason
    assert {r["location"] for r in arm.resources.values()} == {"westeurope"}


def test_a_location_that_never_provisions_times_out(arm: FakeArm) -> None:
    arm.slow_locations.add("eastus")
    pool = make_pool(instance_types=["Standard_D2s_v5"], options={
        "subscription_id": "sub", "resource_group": "fleet-rg", "subnet_ids": SUBNETS,
        "launch_timeout_s": 5})
    az = driver(arm, pool)
    inst = asyncio.run(az.launch(request("h1")))
    assert inst.region == "westeurope"
    assert [a.outcome for a in az.launch_log] == ["timeout", "launched"]
    assert len(arm.of_kind("vm")) == 1


def test_quota_permission_and_config_errors(arm: FakeArm) -> None:
    one = make_pool(regions=["eastus"], instance_types=["Standard_D2s_v5"])
    arm.inject("Microsoft.Compute/virtualMachines/write", status=409, code="OperationNotAllowed",
               message="Operation could not be completed as it results in exceeding approved "
                       "Low Priority Cores quota.")
    with pytest.raises(QuotaError, match="quota"):
        asyncio.run(driver(arm, one).launch(request("h1")))
    arm.inject("Microsoft.Network/networkInterfaces/write", status=403)
    with pytest.raises(PermissionDenied, match="Microsoft.Network/networkInterfaces/write"):
        asyncio.run(driver(arm, one).launch(request("h2")))
    arm.inject("Microsoft.Compute/virtualMachines/write", status=400,
               code="InvalidParameter")
    with pytest.raises(InvalidPoolConfig, match="check the pool's instance_types"):
        asyncio.run(driver(arm, one).launch(request("h3")))
    assert arm.of_kind("vm") == [] and arm.of_kind("nic") == []  # nothing left behind
    with pytest.raises(InvalidPoolConfig, match="options.resource_group"):
        driver(arm, make_pool(options={"subscription_id": "sub"}))


def test_throttling_is_retried_and_capacity_everywhere_raises(arm: FakeArm) -> None:
    arm.inject("Microsoft.Compute/virtualMachines/write", status=429, code="TooManyRequests")
    clock = FakeClock()
    start = clock.now()
    assert asyncio.run(driver(arm, clock=clock).launch(request("h1"))).region == "eastus"
    assert clock.now() > start
    for _ in range(4):
        arm.inject("Microsoft.Compute/virtualMachines/write", status=409,
                   code="SkuNotAvailable")
    with pytest.raises(CapacityError, match="no offering could be launched"):
        asyncio.run(driver(arm).launch(request("h2")))


def test_eviction_becomes_a_notice(arm: FakeArm) -> None:
    az = driver(arm)
    inst = asyncio.run(az.launch(request("h1")))
    assert asyncio.run(az.interruption_notices()) == []
    arm.evict(inst.instance_id)
    notices = asyncio.run(az.interruption_notices())
    assert [(n.instance_id, n.host_id) for n in notices] == [(inst.instance_id, "h1")]
    assert asyncio.run(az.interruption_notices()) == []  # reported once


def test_recorded_operations_match_docs_permissions(arm: FakeArm) -> None:
    az = driver(arm)

    async def everything() -> None:
        inst = await az.launch(request("h1"))
        await az.list_instances()
        await az.prices("Standard_D2s_v5", "eastus", True)
        await az.interruption_notices()
        await az.terminate(inst.instance_id)
        evicted = await az.launch(request("h2"))
        evicted_disk = arm.of_kind("vm")[0]["properties"]["storageProfile"]["osDisk"]
        evicted_disk["deleteOption"] = "Detach"
        arm.evict(evicted.instance_id)
        for leftover in await az.leftovers():
            await az.delete_leftover(leftover)
        assert all(f.ok is not False for f in await az.doctor())

    asyncio.run(everything())
    assert set(arm.log) == documented_operations("Azure")
    granted = terraform_policy("azure")
    assert all(f'"{op}"' in granted for op in set(arm.log))


def test_custom_data_installs_the_controllers_host_key(arm: FakeArm) -> None:
    import base64

    import asyncssh
    import yaml

    key = asyncssh.generate_private_key("ssh-ed25519")
    private = key.export_private_key("openssh").decode()
    public = key.export_public_key("openssh").decode().strip()
    asyncio.run(driver(arm).launch(request("h1", host_private_key=private,
                                           host_public_key=public)))
    [vm] = arm.of_kind("vm")
    data = yaml.safe_load(base64.b64decode(vm["properties"]["osProfile"]["customData"]))
    assert data["ssh_keys"] == {"ed25519_private": private, "ed25519_public": public}


def test_an_evicted_vm_leaves_its_public_ip_and_the_sweep_finds_only_ours(arm: FakeArm) -> None:
    az = driver(arm)

    async def scenario() -> list[tuple[str, str, str]]:
        inst = await az.launch(request("h1"))
        await az.launch(request("h2"))
        assert await az.leftovers() == []  # both hosts live: nothing is left over
        arm.evict(inst.instance_id)  # eviction policy Delete: VM, NIC, OS disk go
        assert [n.host_id for n in await az.interruption_notices()] == ["h1"]
        found = await az.leftovers()
        for leftover in found:
            await az.delete_leftover(leftover)
            await az.delete_leftover(leftover)  # already gone: success
        return sorted((r.kind, r.resource_id, r.host_id) for r in found)

    swept = asyncio.run(scenario())
    assert [(k, h) for k, _, h in swept] == [("public-ip", "h1")]  # Azure kept only the IP
    kinds = sorted(r["_kind"] for r in arm.resources.values())
    assert kinds == ["disk", "ip", "nic", "vm"]  # h2's own, untouched


def test_vm_disk_and_nic_go_with_the_vm_and_a_leftover_disk_is_swept(arm: FakeArm) -> None:
    az = driver(arm)

    async def scenario() -> list[str]:
        inst = await az.launch(request("h1"))
        [vm] = arm.of_kind("vm")
        disk = vm["properties"]["storageProfile"]["osDisk"]
        assert disk["deleteOption"] == "Delete" and disk["name"] == f"{inst.instance_id}-osdisk"
        # A VM made with deleteOption Detach (by hand, or an older driver) keeps its disk.
        disk["deleteOption"] = "Detach"
        arm.evict(inst.instance_id)
        found = await az.leftovers()
        for leftover in found:
            await az.delete_leftover(leftover)
        return sorted(r.kind for r in found)

    assert asyncio.run(scenario()) == ["disk", "public-ip"]
    assert arm.resources == {}


def test_a_vm_named_like_ours_but_not_tagged_ours_is_reported_not_touched(
        arm: FakeArm) -> None:
    mine = driver(arm)
    other = AzureProvider.from_pool(
        make_pool(), "Fleet1", clock=FakeClock(), credential=NoCredential(), base_url=arm.url,
        poll_interval_s=1,
        client_kwargs={"authentication_policy": FakeBearer(), "polling_interval": 0})

    async def scenario() -> None:
        theirs = await other.launch(request("h1", fleet="Fleet1"))
        ours = await mine.launch(request("h1"))  # same pool and host id, another fleet
        assert theirs.instance_id != ours.instance_id
        assert [i.instance_id for i in await mine.list_instances()] == [ours.instance_id]
        assert [f.resource_id for f in mine.foreign()] == [theirs.instance_id]
        arm.evict(theirs.instance_id)
        assert [r.host_id for r in await other.leftovers()] == ["h1"]
        assert await mine.leftovers() == []  # the other fleet's IP is never ours to sweep

    asyncio.run(scenario())


def test_prices_from_the_retail_prices_api_else_the_built_in_table(
        arm: FakeArm, tmp_path: Path) -> None:
    retail = FakeAzureRetail([
        azure_item("Standard_D2s_v5", "eastus", 0.096, "D2s v5", "Virtual Machines Dsv5 Series"),
        azure_item("Standard_D2s_v5", "eastus", 0.0192, "D2s v5 Spot",
                   "Virtual Machines Dsv5 Series"),
        azure_item("Standard_D2s_v5", "eastus", 0.188, "D2s v5",
                   "Virtual Machines Dsv5 Series Windows"),
    ])
    clock = FakeClock(1_800_000_000.0)
    try:
        az = AzureProvider.from_pool(
            make_pool(), "fleet1", clock=clock, credential=NoCredential(), base_url=arm.url,
            client_kwargs={"authentication_policy": FakeBearer(), "polling_interval": 0},
            retail_prices_url=f"{retail.url}/api/retail/prices",
            price_cache=tmp_path / "prices.json")
        spot = asyncio.run(az.prices("Standard_D2s_v5", "eastus", True))
        od = asyncio.run(az.prices("Standard_D2s_v5", "eastus", False))
        assert (spot.usd_per_hour, od.usd_per_hour) == (0.0192, 0.096)
        assert od.source == "Azure Retail Prices API, fetched 2027-01-15T08:00:00Z"
        assert retail.refused == []
        asked = len(retail.requests)
        asyncio.run(az.prices("Standard_D2s_v5", "eastus", True))  # cached: not asked again
        assert len(retail.requests) == asked
    finally:
        retail.stop()
    # With the ARM endpoint a test's and no retail URL, the table answers (offline).
    quote = asyncio.run(driver(arm).prices("Standard_D2s_v5", "eastus", False))
    assert quote.source == FALLBACK_SOURCE and quote.usd_per_hour > 0
