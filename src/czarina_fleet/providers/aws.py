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

This module holds the clients, the calls and the contract's verbs; the parts live beside
it: aws_launch.py (the RunInstances request), aws_instances.py (an EC2 instance read as
an Instance), aws_prices.py, aws_leftovers.py (the sweep), aws_notices.py (interruption
notices), aws_errors.py, aws_queue.py and aws_doctor.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError, NoCredentialsError, NoRegionError

from czarina_fleet.clock import Clock, SystemClock
from czarina_fleet.providers.aws_errors import InstanceGone, map_client_error
from czarina_fleet.providers.aws_instances import STATE_FILTER, split_location, to_instance
from czarina_fleet.providers.aws_launch import run_instances_params
from czarina_fleet.providers.aws_leftovers import delete_leftover, find_leftovers
from czarina_fleet.providers.aws_notices import interruption_notices, queue_poller
from czarina_fleet.providers.aws_prices import on_demand_quote, spot_quote
from czarina_fleet.providers.base import (
    OWNER_TAG_HOST,
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
)
from czarina_fleet.providers.offerings import (
    LaunchAttempt,
    LaunchTimeout,
    Offering,
    OfferingBook,
    launch_with_failover,
    wait_until,
    with_retries,
)
from czarina_fleet.providers.price_sources import PriceBook, PriceCache, cache_for


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
        self._queue = queue_poller(self)

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
            found.extend(await self._describe(region, [self._owner_filters(), STATE_FILTER]))
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
        if spot:
            return await spot_quote(self, shape, region)
        return await on_demand_quote(self, shape, region)

    async def interruption_notices(self) -> list[InterruptionNotice]:
        return await interruption_notices(self)

    async def notices_handled(self) -> None:
        if self._queue is not None:
            await self._queue.handled()

    async def doctor(self) -> list[Finding]:
        from czarina_fleet.providers.aws_doctor import aws_checks

        return await aws_checks(self)

    async def leftovers(self) -> list[Leftover]:
        """Volumes and network interfaces tagged with this fleet and pool that no
        instance uses any more (providers/aws_leftovers.py)."""
        return await find_leftovers(self)

    async def delete_leftover(self, leftover: Leftover) -> None:
        await delete_leftover(self, leftover)

    def launch_attempts(self) -> Sequence[LaunchAttempt]:
        return self.launch_log

    async def close(self) -> None:
        for client in self._clients.values():
            client.close()
        self._clients.clear()

    # -- helpers -----------------------------------------------------------------------

    async def _launch_one(self, request: LaunchRequest, offering: Offering) -> Instance:
        region, zone = split_location(offering.region)
        params = run_instances_params(self.pool, request, offering, zone)
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
                    inst = to_instance(raw, region, self.pool)
                    if inst.pool == self.pool.name and self._exactly_ours(inst):
                        self._region_of[inst.instance_id] = region
                        out.append(inst)
            if not reply.get("NextToken"):
                return out
            params["NextToken"] = reply["NextToken"]

    async def _find_host(self, host_id: str) -> Instance | None:
        for region in self._regions:
            filters = [self._owner_filters(), STATE_FILTER,
                       {"Name": f"tag:{OWNER_TAG_HOST}", "Values": [host_id]}]
            for inst in await self._describe(region, filters):
                if inst.host_id == host_id and inst.state is not InstanceState.TERMINATED:
                    return inst
        return None



def _snake(operation: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in operation).lstrip("_")
