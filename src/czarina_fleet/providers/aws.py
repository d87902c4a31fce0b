"""AWS EC2 driver: spot (or on-demand) instances through RunInstances.

Pool settings: `regions` are regions (`us-east-1`) or availability zones (`us-east-1a`)
in preference order; `image` is an AMI id; `options` may hold `subnet_id` (or
`subnet_ids: {region-or-zone: id}`), `security_group_ids`, `key_name`,
`use_private_ip`, `launch_timeout_s` (per-region wait for `running`), `cooldown_s`,
`interruption_queue` (and `interruption_queue_region`, `interruption_queue_wait_s`: the
EventBridge -> SQS queue of spot warnings, rebalance recommendations, state changes and
scheduled changes, providers/aws_queue.py).

Idempotency: before launching, the driver looks for an instance already tagged with the
request's host id (a launch that happened before a crash is adopted, in any region), and
every RunInstances carries a `ClientToken` derived from the exact fleet, the idempotency
key and the offering (two fleets in one account never share a token).

Ownership: the instance, its volumes and its network interface are tagged on create
(`czarina-fleet-id` holds the fleet identity, `czarina-fleet` its name; EC2 tag values
hold any string, so the filter on the id is exact, and every listed instance is checked
again). Root volumes and the
primary network interface are deleted with the instance (EC2's default for both); a
tagged volume or interface left `available` is a leftover the controller's sweep
deletes. Instances shut down from inside terminate (InstanceInitiatedShutdownBehavior),
so a host whose watchdog powers it off stops billing.
Credentials come from boto3's default chain; they are never logged.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError, NoCredentialsError, NoRegionError

from czarina_fleet.clock import Clock, SystemClock
from czarina_fleet.providers.aws_errors import InstanceGone, map_client_error
from czarina_fleet.providers.aws_queue import QueuePoller
from czarina_fleet.providers.base import (
    OWNER_TAG_HOST,
    OWNER_TAG_POOL,
    ConnectInfo,
    CredentialsError,
    Finding,
    Instance,
    InstanceState,
    InterruptionNotice,
    InvalidPoolConfig,
    LaunchRequest,
    Leftover,
    OwnerMark,
    PriceQuote,
    Provider,
    ProviderError,
)
from czarina_fleet.providers.offerings import (
    LaunchAttempt,
    LaunchTimeout,
    Offering,
    OfferingBook,
    checked_ssh_identity,
    cloud_config,
    launch_with_failover,
    stable_token,
    unknown_shape,
    wait_until,
    with_retries,
)
from czarina_fleet.providers.price_sources import (
    AWS_PRICING_REGION,
    FALLBACK_SOURCE,
    PriceBook,
    PriceCache,
    aws_on_demand,
    cache_for,
)

log = logging.getLogger(__name__)
SPOT_INTERRUPTION = "Server.SpotInstanceTermination"
_LIVE_STATES = ["pending", "running", "shutting-down", "stopping", "stopped"]
_STATES = {
    "pending": InstanceState.PENDING, "running": InstanceState.RUNNING,
    "shutting-down": InstanceState.STOPPING, "stopping": InstanceState.STOPPING,
    "stopped": InstanceState.STOPPING, "terminated": InstanceState.TERMINATED,
}
# On-demand Linux prices (USD/hour, us-east-1, 2024 list prices): the offline fallback
# when the Price List API cannot be reached and nothing is cached.
ON_DEMAND_CATALOG = {
    "t3.micro": 0.0104, "t3.small": 0.0208, "t3.medium": 0.0416, "t3.large": 0.0832,
    "t3.xlarge": 0.1664, "m5.large": 0.096, "m5.xlarge": 0.192, "m5.2xlarge": 0.384,
    "m6i.large": 0.096, "m6i.xlarge": 0.192, "c5.large": 0.085, "c5.xlarge": 0.17,
    "c6i.large": 0.085, "c6i.xlarge": 0.17, "r5.large": 0.126, "r5.xlarge": 0.252,
}


def split_location(location: str) -> tuple[str, str | None]:
    """`us-east-1a` -> (`us-east-1`, `us-east-1a`); `us-east-1` -> (`us-east-1`, None)."""
    if location and location[-1].isalpha() and location[-2].isdigit():
        return location[:-1], location
    return location, None


class AwsProvider(Provider):
    name = "aws"

    def __init__(
        self, pool: Any, fleet: str, *, clock: Clock, session: boto3.Session,
        endpoint_url: str | None = None, client_hook: Any = None,
        max_attempts: int = 3, poll_interval_s: float = 5.0, fleet_id: str = "",
        price_book: PriceBook | None = None, pricing_url: str | None = None,
    ) -> None:
        self.pool = pool
        self._prices = price_book or PriceBook(PriceCache(None), clock)
        # The Price List API; with the EC2 endpoint overridden (tests), only if given too.
        self._pricing_url = pricing_url
        self._pricing_on = pricing_url is not None or endpoint_url is None
        self.fleet = fleet
        self.mark = OwnerMark(fleet, fleet_id)
        self.clock = clock
        self.launch_log: list[LaunchAttempt] = []
        self._session = session
        self._endpoint_url = endpoint_url
        self._client_hook = client_hook
        self._config = Config(retries={"max_attempts": max_attempts, "mode": "standard"})
        self._poll_s = poll_interval_s
        self._timeout_s = float(pool.options.get("launch_timeout_s", 300))
        self._book = OfferingBook(clock, float(pool.options.get("cooldown_s", 300)))
        self._clients: dict[str, Any] = {}
        self._region_of: dict[str, str] = {}
        self._regions = list(dict.fromkeys(split_location(r)[0] for r in pool.regions))
        self._check_regions()
        self._queue = self._queue_poller()

    def _queue_poller(self) -> QueuePoller | None:
        """The EventBridge -> SQS interruption queue, if the pool names one
        (providers/aws_queue.py)."""
        opts = self.pool.options
        queue = opts.get("interruption_queue")
        if not queue:
            return None
        region = str(opts.get("interruption_queue_region") or self._regions[0])
        try:
            wait = float(opts.get("interruption_queue_wait_s", 1))
        except (TypeError, ValueError):
            wait = -1.0
        if not 0 <= wait <= 20:
            raise InvalidPoolConfig(f'pool "{self.pool.name}": options.'
                                    "interruption_queue_wait_s must be 0 to 20 seconds")

        async def call(operation: str, **params: Any) -> dict[str, Any]:
            return await self._call(region, operation, service="sqs", **params)
        return QueuePoller(call, str(queue), wait, self.clock)

    @classmethod
    def from_pool(cls, pool: Any, fleet: str, **context: Any) -> AwsProvider:
        """context: `clock`, `session` (a boto3.Session), `endpoint_url` (tests),
        `client_hook` (called with each new botocore client: event handlers, recorders),
        `max_attempts` (botocore's own retries), `poll_interval_s`, `price_cache` (a
        path) and `pricing_endpoint_url` (tests: the Price List API's)."""
        clock = context.get("clock") or SystemClock()
        return cls(
            pool, fleet, clock=clock,
            session=context.get("session") or boto3.Session(),
            endpoint_url=context.get("endpoint_url"), client_hook=context.get("client_hook"),
            max_attempts=int(context.get("max_attempts", 3)),
            poll_interval_s=float(context.get("poll_interval_s", 5.0)),
            fleet_id=str(context.get("fleet_id") or ""),
            price_book=PriceBook(cache_for(context), clock),
            pricing_url=context.get("pricing_endpoint_url"),
        )

    def _check_regions(self) -> None:
        known: set[str] = set()
        for partition in self._session.get_available_partitions():
            known.update(self._session.get_available_regions("ec2", partition_name=partition))
        for region in self._regions:
            if known and region not in known:
                raise InvalidPoolConfig(
                    f'pool "{self.pool.name}": unknown AWS region "{region}"; use a region '
                    f'such as "us-east-1" or a zone such as "us-east-1a"'
                )

    # -- calls -------------------------------------------------------------------------

    def _client(self, region: str, service: str = "ec2") -> Any:
        key = region if service == "ec2" else f"{service}:{region}"
        if key not in self._clients:
            try:
                client = self._session.client(
                    service, region_name=region, endpoint_url=self._endpoint_url,
                    config=self._config,
                )
            except NoRegionError as exc:  # pragma: no cover - region is always given
                raise InvalidPoolConfig(str(exc)) from exc
            if self._client_hook is not None:
                self._client_hook(client)
            self._clients[key] = client
        return self._clients[key]

    async def _call(self, region: str, operation: str, *, service: str = "ec2",
                    **params: Any) -> dict[str, Any]:
        """One EC2 (or SQS) call off the event loop; errors mapped to the contract's
        classes and throttling retried with backoff on the injected clock."""
        method = getattr(self._client(region, service), _snake(operation))

        def run() -> dict[str, Any]:
            try:
                return dict(method(**params))
            except ClientError as exc:
                raise map_client_error(exc, operation, region, self.pool) from exc
            except NoCredentialsError as exc:
                raise CredentialsError(
                    "no AWS credentials found: configure the default chain (AWS_PROFILE, "
                    "~/.aws/credentials, an instance role or SSO)"
                ) from exc

        return await with_retries(lambda: asyncio.to_thread(run), self.clock)

    # -- contract ----------------------------------------------------------------------

    async def list_instances(self) -> list[Instance]:
        found: list[Instance] = []
        for region in self._regions:
            found.extend(await self._describe(region, [self._owner_filters(), _STATE_FILTER]))
        return [i for i in found if i.state is not InstanceState.TERMINATED]

    async def launch(self, request: LaunchRequest) -> Instance:
        existing = await self._find_host(request.host_id)
        if existing is not None:
            return existing
        return await launch_with_failover(
            request, self._book, self.pool, lambda o: self._launch_one(request, o),
            self.launch_log, self.clock,
        )

    async def terminate(self, instance_id: str) -> None:
        regions = [self._region_of[instance_id]] if instance_id in self._region_of else []
        for region in regions + [r for r in self._regions if r not in regions]:
            try:
                await self._call(region, "TerminateInstances", InstanceIds=[instance_id])
                return
            except InstanceGone:
                continue
        # Not found in any region: already gone, which is success.

    async def prices(self, shape: str, region: str, spot: bool) -> PriceQuote:
        if not spot:
            return await self._on_demand(shape, region)
        name, zone = split_location(region)
        params: dict[str, Any] = {
            "InstanceTypes": [shape], "ProductDescriptions": ["Linux/UNIX"],
            "StartTime": datetime.fromtimestamp(self.clock.now(), UTC),
        }
        if zone:
            params["AvailabilityZone"] = zone
        history = (await self._call(name, "DescribeSpotPriceHistory", **params))
        latest: dict[str, tuple[datetime, float]] = {}
        for item in history.get("SpotPriceHistory", []):
            az, at, price = item["AvailabilityZone"], item["Timestamp"], float(item["SpotPrice"])
            if az not in latest or at > latest[az][0]:
                latest[az] = (at, price)
        if not latest:
            raise InvalidPoolConfig(
                f'no spot price for "{shape}" in {region}: is it offered there?')
        cheapest = min(p for _, p in latest.values())
        return PriceQuote(shape, region, True, cheapest, "DescribeSpotPriceHistory")

    async def _on_demand(self, shape: str, location: str) -> PriceQuote:
        """The Price List API's price (cached), else the built-in table."""
        region = split_location(location)[0]

        def fetch() -> float:
            client = self._session.client("pricing", region_name=AWS_PRICING_REGION,
                                          endpoint_url=self._pricing_url, config=self._config)
            if self._client_hook is not None:
                self._client_hook(client)
            return aws_on_demand(client, shape, region)

        got = await self._prices.lookup(f"aws/{shape}/{region}/on-demand",
                                        "AWS Price List API", fetch if self._pricing_on else None)
        if got is not None:
            return PriceQuote(shape, location, False, got.usd_per_hour, got.label())
        if shape not in ON_DEMAND_CATALOG:
            raise unknown_shape(shape, ON_DEMAND_CATALOG)
        return PriceQuote(shape, location, False, ON_DEMAND_CATALOG[shape], FALLBACK_SOURCE)

    async def interruption_notices(self) -> list[InterruptionNotice]:
        notices: list[InterruptionNotice] = []
        hosts: dict[str, str] = {}  # every owned instance id (terminated too) -> host id
        for region in self._regions:
            owned = await self._describe(region, [self._owner_filters()])
            hosts.update({i.instance_id: i.host_id for i in owned})
            notices.extend(InterruptionNotice(i.instance_id, i.host_id, SPOT_INTERRUPTION, None)
                           for i in owned if i.interrupted)
            live = {i.instance_id: i for i in owned if i.state is not InstanceState.TERMINATED}
            notices.extend(await self._scheduled_events(region, live))
        if self._queue is not None:
            try:
                notices.extend(await self._queue.poll(hosts))
            except ProviderError as e:  # the queue's trouble must not blind the pool
                log.warning("pool %s: interruption queue %s: %s", self.pool.name,
                            self._queue.queue, e)
                notices.extend(self._queue.remembered.values())
        return notices

    async def notices_handled(self) -> None:
        if self._queue is not None:
            await self._queue.handled()

    async def doctor(self) -> list[Finding]:
        from czarina_fleet.providers.aws_doctor import aws_checks

        return await aws_checks(self)

    async def leftovers(self) -> list[Leftover]:
        """Volumes and network interfaces tagged with this fleet and pool that no
        instance uses any more (status `available`)."""
        found: list[Leftover] = []
        filters = [self._owner_filters(), {"Name": f"tag:{OWNER_TAG_POOL}",
                                           "Values": [self.pool.name]},
                   {"Name": "status", "Values": ["available"]}]
        for region in self._regions:
            volumes = await self._call(region, "DescribeVolumes", Filters=filters)
            for v in volumes.get("Volumes", []):
                found.extend(self._leftover("volume", v["VolumeId"], v, region))
            enis = await self._call(region, "DescribeNetworkInterfaces", Filters=filters)
            for n in enis.get("NetworkInterfaces", []):
                found.extend(self._leftover("network-interface", n["NetworkInterfaceId"], n,
                                            region))
        return found

    def _leftover(self, kind: str, rid: str, raw: dict[str, Any], region: str) -> list[Leftover]:
        tags = {t["Key"]: t["Value"] for t in raw.get("Tags", raw.get("TagSet", []))}
        if not self.mark.matches(tags) or tags.get(OWNER_TAG_POOL) != self.pool.name:
            return []
        if raw.get("State", raw.get("Status")) != "available":  # volumes: State; ENIs: Status
            return []
        self._region_of[rid] = region
        created = raw.get("CreateTime")
        return [Leftover(kind, rid, tags.get(OWNER_TAG_HOST, ""),
                         created.timestamp() if created else None)]

    async def delete_leftover(self, leftover: Leftover) -> None:
        operation, key = (("DeleteVolume", "VolumeId") if leftover.kind == "volume"
                          else ("DeleteNetworkInterface", "NetworkInterfaceId"))
        region = self._region_of.get(leftover.resource_id, self._regions[0])
        try:
            await self._call(region, operation, **{key: leftover.resource_id})
        except InvalidPoolConfig as exc:
            if ".NotFound" not in str(exc):
                raise

    def launch_attempts(self) -> Sequence[LaunchAttempt]:
        return self.launch_log

    async def close(self) -> None:
        for client in self._clients.values():
            client.close()
        self._clients.clear()

    # -- helpers -----------------------------------------------------------------------

    async def _launch_one(self, request: LaunchRequest, offering: Offering) -> Instance:
        region, zone = split_location(offering.region)
        params = self._run_params(request, offering, zone)
        reply = await self._call(region, "RunInstances", **params)
        instance_id = reply["Instances"][0]["InstanceId"]
        self._region_of[instance_id] = region

        async def running() -> Instance | None:
            found = await self._describe(region, [], ids=[instance_id])
            up = [i for i in found if i.state is InstanceState.RUNNING]
            return up[0] if up else None

        try:
            return await wait_until(
                running, self.clock, self._timeout_s, self._poll_s, f"{instance_id} in {region}")
        except LaunchTimeout:
            await self.terminate(instance_id)  # one region must not stall the pool
            raise

    def _run_params(
        self, request: LaunchRequest, offering: Offering, zone: str | None
    ) -> dict[str, Any]:
        image = request.image or self.pool.image
        if not image:
            raise InvalidPoolConfig(f'pool "{self.pool.name}": set "image" to an AMI id')
        tags = [{"Key": k, "Value": v} for k, v in request.owner_tags().items()]
        tags.append({"Key": "Name", "Value": f"czarina-{request.pool}-{request.host_id}"})
        params: dict[str, Any] = {
            "ImageId": image, "InstanceType": offering.shape, "MinCount": 1, "MaxCount": 1,
            "ClientToken": stable_token(request.fleet_id or request.fleet,
                                        request.idempotency_key, offering.label(), length=64),
            "TagSpecifications": [
                {"ResourceType": "instance", "Tags": tags},
                {"ResourceType": "volume", "Tags": tags},
                {"ResourceType": "network-interface", "Tags": tags},
            ],
            # IMDSv2 only, hop limit 1: no IMDSv1 GET (SSRF) and no container behind a
            # bridge reaches the metadata service (user data holds the host key).
            "MetadataOptions": {"HttpTokens": "required", "HttpPutResponseHopLimit": 1,
                                "HttpEndpoint": "enabled"},
            # A power-off from inside (the orphan watchdog) ends the billing.
            "InstanceInitiatedShutdownBehavior": "terminate",
        }
        user, key = checked_ssh_identity(request.ssh_user, request.ssh_public_key)
        if key or request.host_private_key:
            params["UserData"] = cloud_config(user if key else None, key,
                                              request.host_private_key, request.host_public_key)
        opts = {**self.pool.options, **request.options}
        if opts.get("key_name"):
            params["KeyName"] = opts["key_name"]
        subnet = opts.get("subnet_ids", {}).get(offering.region) or opts.get("subnet_id")
        if subnet:
            params["SubnetId"] = subnet
        if opts.get("security_group_ids"):
            params["SecurityGroupIds"] = list(opts["security_group_ids"])
        if zone:
            params["Placement"] = {"AvailabilityZone": zone}
        if offering.spot:
            spot: dict[str, Any] = {
                "SpotInstanceType": "one-time", "InstanceInterruptionBehavior": "terminate"}
            cap = request.max_price_per_hour or self.pool.max_price_per_hour
            if cap:
                spot["MaxPrice"] = f"{cap:.4f}"
            params["InstanceMarketOptions"] = {"MarketType": "spot", "SpotOptions": spot}
        return params

    def _exactly_ours(self, inst: Instance) -> bool:
        """The tag filter is exact on EC2; checked again here (moto lacks some filters,
        and a list by instance id has none)."""
        return self.mark.matches(inst.tags)

    def _owner_filters(self) -> dict[str, Any]:
        return {"Name": f"tag:{self.mark.key}", "Values": [self.mark.value]}

    async def _describe(
        self, region: str, filters: list[dict[str, Any]], ids: list[str] | None = None
    ) -> list[Instance]:
        params: dict[str, Any] = {"Filters": filters} if filters else {}
        if ids:
            params["InstanceIds"] = ids
        out: list[Instance] = []
        while True:
            reply = await self._call(region, "DescribeInstances", **params)
            for reservation in reply.get("Reservations", []):
                for raw in reservation.get("Instances", []):
                    inst = self._to_instance(raw, region)
                    if inst.pool == self.pool.name and self._exactly_ours(inst):
                        self._region_of[inst.instance_id] = region
                        out.append(inst)
            if not reply.get("NextToken"):
                return out
            params["NextToken"] = reply["NextToken"]

    async def _find_host(self, host_id: str) -> Instance | None:
        for region in self._regions:
            filters = [self._owner_filters(), _STATE_FILTER,
                       {"Name": f"tag:{OWNER_TAG_HOST}", "Values": [host_id]}]
            for inst in await self._describe(region, filters):
                if inst.host_id == host_id and inst.state is not InstanceState.TERMINATED:
                    return inst
        return None

    async def _scheduled_events(
        self, region: str, mine: dict[str, Instance]
    ) -> list[InterruptionNotice]:
        """Scheduled stop/terminate/retirement events (EC2's advance notice)."""
        if not mine:
            return []
        reply = await self._call(
            region, "DescribeInstanceStatus", InstanceIds=list(mine), IncludeAllInstances=True)
        notices = []
        for status in reply.get("InstanceStatuses", []):
            inst = mine.get(status["InstanceId"])
            for event in status.get("Events", []):
                if inst is not None and "Completed" not in event.get("Description", ""):
                    when = event.get("NotBefore")
                    notices.append(InterruptionNotice(
                        inst.instance_id, inst.host_id, event.get("Code", "scheduled-event"),
                        when.timestamp() if when else None))
        return notices

    def _to_instance(self, raw: dict[str, Any], region: str) -> Instance:
        tags = {t["Key"]: t["Value"] for t in raw.get("Tags", [])}
        private = bool(self.pool.options.get("use_private_ip"))
        address = raw.get("PrivateIpAddress") if private else (
            raw.get("PublicIpAddress") or raw.get("PrivateIpAddress"))
        launched = raw.get("LaunchTime")
        return Instance(
            instance_id=raw["InstanceId"], host_id=tags.get(OWNER_TAG_HOST, ""),
            pool=tags.get(OWNER_TAG_POOL, ""),
            state=_STATES.get(raw["State"]["Name"], InstanceState.PENDING),
            shape=raw.get("InstanceType", ""),
            region=raw.get("Placement", {}).get("AvailabilityZone") or region,
            spot=raw.get("InstanceLifecycle") == "spot",
            launched_at=launched.timestamp() if launched else None,
            connect=ConnectInfo(
                address, 22, self.pool.ssh_user, self.pool.options.get("identity_file"))
            if address else None,
            tags=tags,
            interrupted=raw.get("StateReason", {}).get("Code") == SPOT_INTERRUPTION,
        )


_STATE_FILTER = {"Name": "instance-state-name", "Values": _LIVE_STATES}


def _snake(operation: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in operation).lstrip("_")
