"""The AWS driver against moto's EC2 over real HTTP (ThreadedMotoServer on 127.0.0.1)."""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from botocore.awsrequest import AWSResponse
from moto.core import DEFAULT_ACCOUNT_ID
from moto.ec2.models import ec2_backends
from moto.ec2.models.instances import StateReason

from czarina_fleet.clock import FakeClock
from czarina_fleet.controller.runtime.compose import build_reconciler
from czarina_fleet.controller.state.store import Store
from czarina_fleet.model.config import FleetConfig, FleetSettings, PoolSpec, ProjectInfo, WorkerSpec
from czarina_fleet.model.location import parse_location
from czarina_fleet.providers.aws import AwsProvider
from czarina_fleet.providers.base import (
    CapacityError,
    InstanceState,
    InvalidPoolConfig,
    LaunchRequest,
    Leftover,
    PermissionDenied,
    QuotaError,
)
from czarina_fleet.providers.fake import InMemoryRuntime
from czarina_fleet.providers.offerings import cloud_config
from czarina_fleet.providers.price_sources import FALLBACK_SOURCE
from tests.fakes.price_servers import FakeAwsPricing, aws_product
from tests.fixtures.cloud_recorder import ApiRecorder, documented_operations, terraform_policy

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBq5Zs3kqv0x3tX8w0jv8mTqg9cQ3lqzYx8m1m7qk2dP test"



@pytest.fixture(scope="module")
def session() -> boto3.Session:
    return boto3.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1")


@pytest.fixture(scope="module")
def image(moto_url: str, session: boto3.Session) -> str:
    ec2 = session.client("ec2", endpoint_url=moto_url)
    return str(ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"])


def make_pool(image: str, **kw: Any) -> PoolSpec:
    base: dict[str, Any] = {
        "name": "gpu", "provider": "aws", "instance_types": ["m5.large", "c5.large"],
        "regions": ["us-east-1a", "us-west-2a"], "image": image,
    }
    return PoolSpec(**{**base, **kw})


def request(host: str, fleet: str, **kw: Any) -> LaunchRequest:
    base: dict[str, Any] = {
        "host_id": host, "fleet": fleet, "pool": "gpu", "shape": "m5.large",
        "region": "us-east-1a", "spot": True, "idempotency_key": f"key-{host}",
        "ssh_public_key": KEY,
    }
    return LaunchRequest(**{**base, **kw})


class Injector:
    """before-call handlers answering chosen operations with an EC2 error."""

    def __init__(self) -> None:
        self.rules: list[tuple[str, Callable[[dict[str, Any]], bool], str, int]] = []
        self.hits: list[str] = []
        self.recorder = ApiRecorder()

    def fail(self, op: str, code: str, times: int = 1_000,
             when: Callable[[dict[str, Any]], bool] = lambda body: True, status: int = 400
             ) -> None:
        for _ in range(times):
            self.rules.append((op, when, code, status))

    def hook(self, client: Any) -> None:
        self.recorder.aws_hook(client)
        client.meta.events.register("before-call.ec2.*", self._before)

    def _before(self, model: Any, params: dict[str, Any], **_: Any) -> Any:
        body = params.get("body") or {}
        for rule in self.rules:
            op, when, code, status = rule
            if op == model.name and when(body):
                self.rules.remove(rule)
                self.hits.append(f"{code}:{body.get('Placement.AvailabilityZone')}")
                http = AWSResponse("http://x", status, {}, None)
                return http, {"Error": {"Code": code, "Message": "injected"},
                              "ResponseMetadata": {"HTTPStatusCode": status}}
        return None


def driver(moto_url: str, session: boto3.Session, pool: PoolSpec, fleet: str,
           injector: Injector | None = None, clock: FakeClock | None = None) -> AwsProvider:
    return AwsProvider.from_pool(
        pool, fleet, clock=clock or FakeClock(), session=session, endpoint_url=moto_url,
        client_hook=(injector or Injector()).hook, max_attempts=1, poll_interval_s=1)


def fleet_name() -> str:
    return f"t-{uuid.uuid4().hex[:8]}"


def test_launch_list_terminate_and_idempotent_relaunch(moto_url, session, image) -> None:
    fleet = fleet_name()
    inj = Injector()
    aws = driver(moto_url, session, make_pool(image), fleet, inj)

    async def scenario() -> None:
        first = await aws.launch(request("h1", fleet))
        again = await aws.launch(request("h1", fleet))
        assert again.instance_id == first.instance_id
        assert first.state is InstanceState.RUNNING and first.spot
        assert first.tags["czarina-fleet"] == fleet and first.tags["czarina-host"] == "h1"
        assert first.region == "us-east-1a" and first.connect is not None
        listed = await aws.list_instances()
        assert [i.instance_id for i in listed] == [first.instance_id]
        await aws.terminate(first.instance_id)
        await aws.terminate(first.instance_id)  # already gone: still success
        await aws.terminate("i-0123456789abcdef0")  # never existed: success
        assert await aws.list_instances() == []
        await aws.close()

    asyncio.run(scenario())
    ec2 = session.client("ec2", endpoint_url=moto_url, region_name="us-east-1")
    made = ec2.describe_instances(Filters=[{"Name": "tag:czarina-fleet", "Values": [fleet]}])
    assert sum(len(r["Instances"]) for r in made["Reservations"]) == 1


def test_user_data_carries_the_ssh_key(moto_url, session, image) -> None:
    fleet = fleet_name()
    aws = driver(moto_url, session, make_pool(image, ssh_user="worker"), fleet)
    inst = asyncio.run(aws.launch(request("h1", fleet, ssh_user="worker")))
    ec2 = session.client("ec2", endpoint_url=moto_url, region_name="us-east-1")
    attr = ec2.describe_instance_attribute(InstanceId=inst.instance_id, Attribute="userData")
    text = base64.b64decode(attr["UserData"]["Value"]).decode()
    assert text == cloud_config("worker", KEY) and KEY in text


def test_instances_require_imdsv2_and_grant_sudo_for_power_off_only(moto_url, session,
                                                                    image) -> None:
    """The host key travels in user data: only IMDSv2 (no SSRF-able GET), hop limit 1
    (no container behind a bridge), and the login user gets sudo for one command: the
    orphan watchdog's power-off, which is what the driver's self_shutdown runs."""
    fleet = fleet_name()
    aws = driver(moto_url, session, make_pool(image, ssh_user="worker"), fleet)
    inst = asyncio.run(aws.launch(request("h1", fleet, ssh_user="worker")))
    ec2 = session.client("ec2", endpoint_url=moto_url, region_name="us-east-1")
    (raw,) = ec2.describe_instances(InstanceIds=[inst.instance_id])["Reservations"][0][
        "Instances"]
    assert raw["MetadataOptions"]["HttpTokens"] == "required"
    assert raw["MetadataOptions"]["HttpPutResponseHopLimit"] == 1
    attr = ec2.describe_instance_attribute(InstanceId=inst.instance_id, Attribute="userData")
    data = yaml.safe_load(base64.b64decode(attr["UserData"]["Value"]))
    assert data["users"][1]["name"] == "worker"
    assert data["users"][1]["sudo"] == "ALL=(root) NOPASSWD: /usr/sbin/shutdown -h now"
    assert aws.self_shutdown == "sudo -n /usr/sbin/shutdown -h now"  # exactly that rule


def test_capacity_error_moves_to_next_offering_and_is_remembered(moto_url, session, image):
    fleet = fleet_name()
    inj = Injector()
    clock = FakeClock()
    inj.fail("RunInstances", "InsufficientInstanceCapacity", status=500,
             when=lambda b: b.get("Placement.AvailabilityZone") == "us-east-1a")
    aws = driver(moto_url, session, make_pool(image), fleet, inj, clock)
    inst = asyncio.run(aws.launch(request("h1", fleet)))
    # both shapes in us-east-1a refused, so the next region's first shape is used
    assert inst.region == "us-west-2a" and inst.shape == "m5.large"
    outcomes = [(a.offering.label(), a.outcome) for a in aws.launch_log]
    assert outcomes == [
        ("m5.large@us-east-1a/spot", "capacity"), ("c5.large@us-east-1a/spot", "capacity"),
        ("m5.large@us-west-2a/spot", "launched")]
    # a second host skips the cooling-down offerings without calling EC2 for them
    hits = len(inj.hits)
    asyncio.run(aws.launch(request("h2", fleet)))
    assert len(inj.hits) == hits
    assert [a.outcome for a in aws.launch_log[3:]] == ["skipped", "skipped", "launched"]
    clock.advance(301)  # cool-down over: us-east-1a is tried again
    inj.rules.clear()
    assert asyncio.run(aws.launch(request("h3", fleet))).region == "us-east-1a"


def test_on_demand_fallback_only_where_allowed(moto_url, session, image) -> None:
    spot_only = lambda b: b.get("InstanceMarketOptions.MarketType") == "spot"  # noqa: E731
    for allowed in (False, True):
        fleet = fleet_name()
        inj = Injector()
        inj.fail("RunInstances", "SpotMaxPriceTooLow", when=spot_only)
        aws = driver(moto_url, session, make_pool(image, on_demand_fallback=allowed), fleet, inj)
        if allowed:
            inst = asyncio.run(aws.launch(request("h1", fleet)))
            assert not inst.spot and inst.region == "us-east-1a"
        else:
            with pytest.raises(CapacityError, match="SpotMaxPriceTooLow"):
                asyncio.run(aws.launch(request("h1", fleet)))


def test_quota_everywhere_is_a_quota_error(moto_url, session, image) -> None:
    fleet = fleet_name()
    inj = Injector()
    inj.fail("RunInstances", "MaxSpotInstanceCountExceeded")
    aws = driver(moto_url, session, make_pool(image), fleet, inj)
    with pytest.raises(QuotaError, match="quota increase"):
        asyncio.run(aws.launch(request("h1", fleet)))


def test_throttling_is_retried_with_backoff_on_the_clock(moto_url, session, image) -> None:
    fleet = fleet_name()
    inj = Injector()
    clock = FakeClock()
    inj.fail("RunInstances", "RequestLimitExceeded", times=2, status=503)
    aws = driver(moto_url, session, make_pool(image), fleet, inj, clock)
    start = clock.now()
    inst = asyncio.run(aws.launch(request("h1", fleet)))
    assert inst.region == "us-east-1a"  # same offering: throttling is not a capacity signal
    assert inj.hits == ["RequestLimitExceeded:us-east-1a"] * 2
    assert clock.now() - start >= 1 + 2  # backed off 1 s then 2 s (injected clock)


def test_permission_and_config_errors_name_the_fix(moto_url, session, image) -> None:
    fleet = fleet_name()
    inj = Injector()
    inj.fail("RunInstances", "UnauthorizedOperation", times=1, status=403)
    aws = driver(moto_url, session, make_pool(image), fleet, inj)
    with pytest.raises(PermissionDenied, match="ec2:RunInstances") as info:
        asyncio.run(aws.launch(request("h1", fleet)))
    assert info.value.permission == "ec2:RunInstances"
    inj.fail("RunInstances", "InvalidAMIID.NotFound", times=1)
    with pytest.raises(InvalidPoolConfig, match='set "image"'):
        asyncio.run(aws.launch(request("h2", fleet)))
    with pytest.raises(InvalidPoolConfig, match='unknown AWS region "mars-north-1"'):
        driver(moto_url, session, make_pool(image, regions=["mars-north-1"]), fleet)


def test_spot_interruption_becomes_a_notice(moto_url, session, image) -> None:
    fleet = fleet_name()
    aws = driver(moto_url, session, make_pool(image), fleet)
    inst = asyncio.run(aws.launch(request("h1", fleet)))
    assert asyncio.run(aws.interruption_notices()) == []
    backend = ec2_backends[DEFAULT_ACCOUNT_ID]["us-east-1"]
    backend.terminate_instances([inst.instance_id])
    reclaimed = backend.get_instance(inst.instance_id)
    reclaimed.state_reason = StateReason(
        "Server.SpotInstanceTermination: Spot instance termination",
        "Server.SpotInstanceTermination")
    notices = asyncio.run(aws.interruption_notices())
    assert [(n.instance_id, n.host_id, n.reason) for n in notices] == [
        (inst.instance_id, "h1", "Server.SpotInstanceTermination")]
    assert asyncio.run(aws.list_instances()) == []


def test_spot_price_from_history_and_on_demand_from_catalog(moto_url, session, image) -> None:
    fleet = fleet_name()
    clock = FakeClock()

    def realistic(parsed: dict[str, Any], **_: Any) -> None:
        when = datetime.fromtimestamp(clock.now(), UTC)
        parsed["SpotPriceHistory"] = [
            {"AvailabilityZone": "us-east-1a", "InstanceType": "m5.large",
             "SpotPrice": "0.0400", "Timestamp": when},
            {"AvailabilityZone": "us-east-1b", "InstanceType": "m5.large",
             "SpotPrice": "0.0350", "Timestamp": when},
        ]

    def hook(client: Any) -> None:
        client.meta.events.register("after-call.ec2.DescribeSpotPriceHistory", realistic)

    aws = AwsProvider.from_pool(make_pool(image), fleet, clock=clock, session=session,
                                endpoint_url=moto_url, client_hook=hook)
    quote = asyncio.run(aws.prices("m5.large", "us-east-1", True))
    assert (quote.usd_per_hour, quote.source) == (0.035, "DescribeSpotPriceHistory")
    # The EC2 endpoint is a test's and no Price List endpoint is given: never the real
    # one; the built-in table answers.
    quote = asyncio.run(aws.prices("m5.large", "us-east-1", False))
    assert (quote.usd_per_hour, quote.source) == (0.096, FALLBACK_SOURCE)


def test_on_demand_price_from_the_price_list_api_cached_on_disk(
        moto_url, session, image, tmp_path) -> None:
    fleet, clock = fleet_name(), FakeClock(1_800_000_000.0)
    fake = FakeAwsPricing([aws_product("m5.large", "eu-west-1", "0.1070000000"),
                           aws_product("m5.large", "us-east-1", "0.0960000000")])
    cache = tmp_path / "prices.json"
    try:
        aws = AwsProvider.from_pool(make_pool(image), fleet, clock=clock, session=session,
                                    endpoint_url=moto_url, pricing_endpoint_url=fake.url,
                                    price_cache=cache)
        quote = asyncio.run(aws.prices("m5.large", "us-east-1b", False))
        assert quote.usd_per_hour == 0.096
        assert quote.source == "AWS Price List API, fetched 2027-01-15T08:00:00Z"
        assert fake.refused == [] and len(fake.requests) == 1
    finally:
        fake.stop()
    # The source is gone now: a new driver answers from the disk cache, with its age.
    clock.advance(7 * 86400)  # stale, yet better than the built-in table
    again = AwsProvider.from_pool(make_pool(image), fleet, clock=clock, session=session,
                                  endpoint_url=moto_url, pricing_endpoint_url=fake.url,
                                  price_cache=cache)
    quote = asyncio.run(again.prices("m5.large", "us-east-1", False))
    assert (quote.usd_per_hour, quote.source) == (
        0.096, "AWS Price List API, fetched 2027-01-15T08:00:00Z")
    assert asyncio.run(again.prices("m5.xlarge", "us-east-1", False)).source == FALLBACK_SOURCE


def test_recorded_operations_match_docs_permissions(moto_url, session, image) -> None:
    fleet = fleet_name()
    inj = Injector()
    queue = f"q-{fleet}"  # the interruption queue: one message ours, one a stranger's
    sqs = session.client("sqs", endpoint_url=moto_url, region_name="us-east-1")
    url = sqs.create_queue(QueueName=queue)["QueueUrl"]
    pricing = FakeAwsPricing([aws_product("m5.large", "us-east-1", "0.0960000000")])
    aws = AwsProvider.from_pool(
        make_pool(image, options={"interruption_queue": queue, "interruption_queue_wait_s": 0}),
        fleet, clock=FakeClock(), session=session, endpoint_url=moto_url,
        client_hook=inj.hook, max_attempts=1, poll_interval_s=1,
        pricing_endpoint_url=pricing.url)

    def warning(instance_id: str) -> str:
        return json.dumps({"version": "0", "id": "1", "source": "aws.ec2",
                           "detail-type": "EC2 Spot Instance Interruption Warning",
                           "time": "2026-11-27T10:00:00Z", "region": "us-east-1",
                           "detail": {"instance-id": instance_id,
                                      "instance-action": "terminate"}})

    async def everything() -> None:
        inst = await aws.launch(request("h1", fleet))
        await aws.list_instances()
        await aws.prices("m5.large", "us-east-1", True)
        assert (await aws.prices("m5.large", "us-east-1", False)).usd_per_hour == 0.096
        for instance_id in (inst.instance_id, "i-0stranger000000"):
            sqs.send_message(QueueUrl=url, MessageBody=warning(instance_id))
        await aws.interruption_notices()
        await aws.notices_handled()
        await aws.terminate(inst.instance_id)
        assert all(f.ok for f in await aws.doctor())
        await aws.leftovers()
        for kind, rid in (("volume", "vol-0123456789abcdef0"),
                          ("network-interface", "eni-0123456789abcdef0")):
            await aws.delete_leftover(Leftover(kind, rid, "h1"))  # gone already: success

    try:
        asyncio.run(everything())
    finally:
        pricing.stop()
    assert set(inj.recorder.operations) == documented_operations("AWS")
    granted = terraform_policy("aws")
    assert all(f'"{op}"' in granted for op in set(inj.recorder.operations))


# --- the reconciler over this driver: failover explained in the event log -------------
# A launch that fails over (capacity in the first zone) is explained in the event log,
# and the host record says where the instance really is.

class _Running:
    """InMemoryRuntime's view of which hosts have a machine: every host the store has."""

    def __init__(self, clock: FakeClock, store: Store) -> None:
        self.clock, self.store = clock, store

    def running(self) -> list[object]:
        return list(self.store.hosts())


def test_failover_is_logged_and_recorded(tmp_path: Path, moto_url: str,
                                         session: boto3.Session, image: str) -> None:
    fleet = fleet_name()
    clock = FakeClock()
    inj = Injector()
    inj.fail("RunInstances", "InsufficientInstanceCapacity", status=500,
             when=lambda b: b.get("Placement.AvailabilityZone") == "us-east-1a")
    pool = make_pool(image)
    store = Store(tmp_path / "fleet.db", clock)
    cfg = FleetConfig(
        source=Path("c.json"), format="json", project=ProjectInfo(), project_root=Path("."),
        workers=[WorkerSpec(id="w0", branch="b0", location=parse_location("pool:gpu"))],
        fleet=FleetSettings(name=fleet, pools=[pool]))
    aws = driver(moto_url, session, pool, fleet, inj, clock)
    runtime = InMemoryRuntime(_Running(clock, store))  # type: ignore[arg-type]
    rec = build_reconciler(cfg, store, {"gpu": aws}, runtime, clock, backoff_s=0.1,
                     ssh_public_key="ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBq5Zs3kqv0x3tX8w0jv8"
                                    "mTqg9cQ3lqzYx8m1m7qk2dP t")
    asyncio.run(rec.reconcile_once())

    (host,) = store.hosts()
    assert (host.region, host.shape) == ("us-west-2a", "m5.large")
    reasons = [e.reason for e in store.events(limit=500, entity="host")]
    assert "launch capacity m5.large@us-east-1a/spot: " in " ".join(reasons)
    assert any(r.startswith("launch launched m5.large@us-west-2a/spot") for r in reasons)
    assert host.price_per_hour > 0


def _host_key() -> tuple[str, str]:
    import asyncssh

    key = asyncssh.generate_private_key("ssh-ed25519")
    return (key.export_private_key("openssh").decode(),
            key.export_public_key("openssh").decode().strip())


def test_user_data_installs_the_controllers_host_key(moto_url, session, image) -> None:
    fleet = fleet_name()
    private, public = _host_key()
    aws = driver(moto_url, session, make_pool(image, ssh_user="worker"), fleet)
    inst = asyncio.run(aws.launch(request("h1", fleet, ssh_user="worker",
                                          host_private_key=private, host_public_key=public)))
    ec2 = session.client("ec2", endpoint_url=moto_url, region_name="us-east-1")
    attr = ec2.describe_instance_attribute(InstanceId=inst.instance_id, Attribute="userData")
    import yaml  # cloud-init reads YAML: parse it as cloud-init would

    data = yaml.safe_load(base64.b64decode(attr["UserData"]["Value"]).decode())
    assert data["ssh_keys"] == {"ed25519_private": private, "ed25519_public": public}
    assert data["ssh_deletekeys"] is True
    assert data["users"][1]["ssh_authorized_keys"] == [KEY]


def test_a_malformed_host_key_never_reaches_user_data(moto_url, session, image) -> None:
    fleet = fleet_name()
    aws = driver(moto_url, session, make_pool(image), fleet)
    evil = ("-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n"
            "runcmd: [x]")
    with pytest.raises(InvalidPoolConfig):
        asyncio.run(aws.launch(request("h1", fleet, host_private_key=evil,
                                       host_public_key="ssh-ed25519 AAAA")))


def test_an_evicted_instance_leaves_only_what_the_sweep_deletes(moto_url, session,
                                                                 image) -> None:
    fleet = fleet_name()
    aws = driver(moto_url, session, make_pool(image), fleet)
    other = driver(moto_url, session, make_pool(image), fleet.upper())  # another fleet
    ec2 = session.client("ec2", endpoint_url=moto_url)

    async def launch() -> list[str]:
        ids = [(await aws.launch(request(h, fleet))).instance_id for h in ("h1", "h2")]
        ids.append((await other.launch(request("h1", fleet.upper()))).instance_id)
        return ids

    h1, h2, theirs = asyncio.run(launch())
    assert len({h1, h2, theirs}) == 3  # same pool and host id: never the other's instance
    attr = ec2.describe_instance_attribute(InstanceId=h1,
                                           Attribute="instanceInitiatedShutdownBehavior")
    assert attr["InstanceInitiatedShutdownBehavior"]["Value"] == "terminate"
    assert asyncio.run(aws.leftovers()) == []  # every tagged volume is in use
    backend = ec2_backends[DEFAULT_ACCOUNT_ID]["us-east-1"]
    for instance_id in (h1, theirs):  # an AMI whose root volume outlives the instance
        backend.get_instance(instance_id).block_device_mapping["/dev/sda1"] \
            .delete_on_termination = False
    backend.terminate_instances([h1, theirs])  # the cloud takes them (spot eviction)
    found = asyncio.run(aws.leftovers())
    assert [(r.kind, r.host_id) for r in found] == [("volume", "h1")]
    for leftover in found:
        asyncio.run(aws.delete_leftover(leftover))
        asyncio.run(aws.delete_leftover(leftover))  # already gone: success
    left = ec2.describe_volumes(Filters=[{"Name": "status", "Values": ["available"]}])
    owners = [{t["Key"]: t["Value"] for t in v.get("Tags", [])}.get("czarina-fleet")
              for v in left["Volumes"]]
    assert fleet not in owners and fleet.upper() in owners  # theirs is not ours to sweep
    assert [i.instance_id for i in asyncio.run(aws.list_instances())] == [h2]


def test_with_fleet_ids_the_id_tag_decides_not_the_name(moto_url, session, image) -> None:
    name = fleet_name()  # two projects sharing one display name
    ids = [f"cf{uuid.uuid4().hex[:16]}" for _ in range(2)]
    drivers = [AwsProvider.from_pool(make_pool(image), name, clock=FakeClock(),
                                     session=session, endpoint_url=moto_url, max_attempts=1,
                                     poll_interval_s=1, fleet_id=i) for i in ids]

    async def scenario() -> list[str]:
        return [(await d.launch(request("h1", name, fleet_id=i))).instance_id
                for d, i in zip(drivers, ids, strict=True)]

    first, second = asyncio.run(scenario())
    assert first != second  # same name, pool and host id: still two instances
    for d, mine in zip(drivers, (first, second), strict=True):
        assert [i.instance_id for i in asyncio.run(d.list_instances())] == [mine]
    asyncio.run(drivers[1].terminate(second))
    assert [i.instance_id for i in asyncio.run(drivers[0].list_instances())] == [first]
