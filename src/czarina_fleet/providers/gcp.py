"""GCP Compute Engine driver: Spot VMs through google-cloud-compute (REST transport).

Pool settings: `regions` are zones (`us-central1-a`) in preference order; `image` is a
source image (`projects/debian-cloud/global/images/family/debian-12`); `options` holds
`project` (else the ADC project), and may hold `network`, `subnetwork`, `network_tags`
(for firewall rules), `disk_size_gb`, `public_ip` (default true), `launch_timeout_s`.

Idempotency: the instance name is derived from the host id, the insert carries a
`requestId` (a UUID derived from the idempotency key and offering), and before inserting
the driver looks for a VM already labelled with the host id in any of the pool's zones.
Ownership is in labels (sanitised to GCP's label alphabet, so lossy: "My Fleet" and
"my_fleet" both become `my_fleet`) and, exactly, in metadata. Lists narrow by the labels
on the server and then keep only VMs whose metadata carries this fleet and pool exactly;
the others are look-alikes, reported by `foreign()` and never adopted or deleted.
Operations are waited on with a ZoneOperationsClient built like the instances client.
Credentials: Application Default Credentials; never logged.

This module holds the clients, the calls and the contract's verbs; beside it are
gcp_launch.py (the insert body), gcp_instances.py (a VM read as an Instance, the label
filter), gcp_support.py (names, labels, prices, credentials, errors) and gcp_doctor.py.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from typing import Any

from google.api_core import exceptions as gexc
from google.api_core.client_options import ClientOptions
from google.auth import exceptions as auth_exc
from google.cloud import compute_v1

from czarina_fleet.clock import Clock, SystemClock
from czarina_fleet.providers.base import (
    OWNER_TAG_POOL,
    CredentialsError,
    Finding,
    ForeignResource,
    Instance,
    InterruptionNotice,
    InvalidPoolConfig,
    LaunchRequest,
    OwnerMark,
    PriceQuote,
    Provider,
)
from czarina_fleet.providers.gcp_instances import ZONE, metadata_of, owner_filter, to_instance
from czarina_fleet.providers.gcp_launch import instance_body
from czarina_fleet.providers.gcp_support import (
    ADC_HINT,
    PREEMPTED,
    GcpConflict,
    GcpNotFound,
    adc,
    map_api_error,
    map_operation_error,
    quote,
    vm_name,
)
from czarina_fleet.providers.offerings import (
    LaunchAttempt,
    LaunchTimeout,
    Offering,
    OfferingBook,
    launch_with_failover,
    stable_uuid,
    wait_until,
    with_retries,
)
from czarina_fleet.providers.price_sources import (
    GCP_CATALOG_URL,
    PriceBook,
    PriceCache,
    cache_for,
)


class GcpProvider(Provider):
    name = "gcp"

    def __init__(
        self, pool: Any, fleet: str, *, clock: Clock, project: str,
        instances: compute_v1.InstancesClient, operations: compute_v1.ZoneOperationsClient,
        poll_interval_s: float = 5.0, fleet_id: str = "",
    ) -> None:
        for zone in pool.regions:
            if not ZONE.match(zone):
                raise InvalidPoolConfig(
                    f'pool "{pool.name}": "{zone}" is not a GCP zone; list zones such as '
                    f'"us-central1-a" in "regions"')
        self.pool, self.fleet, self.clock, self.project = pool, fleet, clock, project
        self.mark = OwnerMark(fleet, fleet_id)
        self.launch_log: list[LaunchAttempt] = []
        self._instances, self._operations = instances, operations
        self._poll_s = poll_interval_s
        self._timeout_s = float(pool.options.get("launch_timeout_s", 300))
        self._book = OfferingBook(clock, float(pool.options.get("cooldown_s", 300)))
        self._hosts: dict[str, str] = {}  # VM name -> host id, for preemption notices
        self._foreign: dict[str, ForeignResource] = {}  # look-alikes seen by the last list
        self.client_kwargs: dict[str, Any] = {}
        self.price_book = PriceBook(PriceCache(None), clock)
        self.catalog: tuple[str, str] | None = None  # (Cloud Billing Catalog URL, API key)

    @classmethod
    def from_pool(cls, pool: Any, fleet: str, **context: Any) -> GcpProvider:
        """context: `clock`, `credentials` (else ADC), `api_endpoint` (tests),
        `poll_interval_s`, `price_cache` (a path), `billing_catalog_url` and
        `billing_api_key` (tests; else CZARINA_GCP_PRICING_API_KEY, and with
        `api_endpoint` set, no catalog unless its URL is given)."""
        credentials = context.get("credentials")
        project = pool.options.get("project")
        if credentials is None:
            credentials, adc_project = adc()
            project = project or adc_project
        if not project:
            raise InvalidPoolConfig(f'pool "{pool.name}": set options.project to a GCP project id')
        kwargs: dict[str, Any] = {"credentials": credentials, "transport": "rest"}
        if context.get("api_endpoint"):
            kwargs["client_options"] = ClientOptions(api_endpoint=context["api_endpoint"])
        provider = cls(
            pool, fleet, clock=context.get("clock") or SystemClock(), project=project,
            instances=compute_v1.InstancesClient(**kwargs),
            operations=compute_v1.ZoneOperationsClient(**kwargs),
            poll_interval_s=float(context.get("poll_interval_s", 5.0)),
            fleet_id=str(context.get("fleet_id") or ""),
        )
        provider.client_kwargs = kwargs  # `czarina doctor` builds its read-only clients alike
        provider.price_book = PriceBook(cache_for(context), provider.clock)
        url = context.get("billing_catalog_url") or (
            None if context.get("api_endpoint") else GCP_CATALOG_URL)
        key = context.get("billing_api_key") or os.environ.get("CZARINA_GCP_PRICING_API_KEY")
        provider.catalog = (url, key) if url and key else None
        return provider

    async def _call(self, method: str, fn: Any, **params: Any) -> Any:
        def run() -> Any:
            try:
                return fn(**params)
            except gexc.GoogleAPICallError as exc:
                raise map_api_error(exc, method, self.pool.name) from exc
            except (auth_exc.DefaultCredentialsError, auth_exc.RefreshError) as exc:
                raise CredentialsError(ADC_HINT) from exc

        return await with_retries(lambda: asyncio.to_thread(run), self.clock)

    # -- contract ----------------------------------------------------------------------

    async def list_instances(self) -> list[Instance]:
        self._foreign.clear()
        return await self._list(self._owner_filter())

    def foreign(self) -> list[ForeignResource]:
        return list(self._foreign.values())

    async def launch(self, request: LaunchRequest) -> Instance:
        existing = await self._list(self._owner_filter(host_id=request.host_id))
        mine = [i for i in existing if i.host_id == request.host_id]
        if mine:
            return mine[0]
        return await launch_with_failover(
            request, self._book, self.pool, lambda o: self._launch_one(request, o),
            self.launch_log, self.clock)

    async def terminate(self, instance_id: str) -> None:
        """`instance_id` is `zone/name`. A VM already gone (404) is success."""
        zone, _, name = instance_id.partition("/")
        try:
            op = await self._call(
                "compute.instances.delete", self._instances.delete,
                request=compute_v1.DeleteInstanceRequest(
                    project=self.project, zone=zone, instance=name,
                    request_id=stable_uuid("delete", instance_id)))
        except GcpNotFound:
            return
        await self._wait(zone, op.name, f"deletion of {name}")

    async def forget_host_key(self, instance_id: str) -> bool:
        """Drop `user-data` (the pre-made host key) from the VM's metadata, keeping
        every other item; the fingerprint makes a concurrent change fail, not vanish."""
        zone, _, name = instance_id.partition("/")
        vm = await self._call("compute.instances.get", self._instances.get,
                              project=self.project, zone=zone, instance=name)
        items = list(vm.metadata.items) if vm.metadata else []
        kept = [i for i in items if i.key != "user-data"]
        if len(kept) == len(items):
            return False
        op = await self._call(
            "compute.instances.setMetadata", self._instances.set_metadata,
            project=self.project, zone=zone, instance=name,
            metadata_resource=compute_v1.Metadata(items=kept,
                                                  fingerprint=vm.metadata.fingerprint))
        await self._wait(zone, op.name, f"metadata of {name}")
        return True

    async def prices(self, shape: str, region: str, spot: bool) -> PriceQuote:
        """The Cloud Billing Catalog's core and RAM prices (cached), else the table."""
        return await quote(self.price_book, self.catalog, shape, region, spot)

    async def interruption_notices(self) -> list[InterruptionNotice]:
        """Spot VMs with termination action DELETE vanish when preempted; the zone's
        `compute.instances.preempted` operations say which ones did."""
        notices = []
        for zone in self.pool.regions:
            ops = await self._call(
                "compute.zoneOperations.list", self._operations.list,
                request=compute_v1.ListZoneOperationsRequest(
                    project=self.project, zone=zone, filter=f'operationType = "{PREEMPTED}"'))
            for op in ops:
                name = op.target_link.rsplit("/", 1)[-1]
                if name in self._hosts:
                    notices.append(InterruptionNotice(
                        f"{zone}/{name}", self._hosts[name], PREEMPTED, None))
        return notices

    def launch_attempts(self) -> Sequence[LaunchAttempt]:
        return self.launch_log

    async def doctor(self) -> list[Finding]:
        from czarina_fleet.providers.gcp_doctor import gcp_checks

        return await gcp_checks(self)

    async def close(self) -> None:
        for client in (self._instances, self._operations):
            client.transport.close()  # type: ignore[no-untyped-call]

    # -- helpers -----------------------------------------------------------------------

    def _owner_filter(self, host_id: str | None = None) -> str:
        return owner_filter(self.fleet, self.mark, self.pool.name, host_id)

    async def _list(self, label_filter: str) -> list[Instance]:
        out: list[Instance] = []
        for zone in self.pool.regions:
            pager = await self._call(
                "compute.instances.list", self._instances.list,
                request=compute_v1.ListInstancesRequest(
                    project=self.project, zone=zone, filter=label_filter))
            for vm in await asyncio.to_thread(list, pager):
                if self._exactly_ours(vm, zone):
                    out.append(self._to_instance(vm, zone))
        return out

    def _exactly_ours(self, vm: compute_v1.Instance, zone: str) -> bool:
        """The labels matched (the name label is lossy); the metadata, which holds any
        string, must carry this fleet's mark and pool exactly."""
        meta = metadata_of(vm)
        if self.mark.matches(meta) and meta.get(OWNER_TAG_POOL) == self.pool.name:
            return True
        self._foreign[f"{zone}/{vm.name}"] = ForeignResource(
            "instance", f"{zone}/{vm.name}",
            f"labelled like fleet {self.fleet!r} pool {self.pool.name!r} but its metadata "
            f"says {self.mark.key} {meta.get(self.mark.key)!r} pool "
            f"{meta.get(OWNER_TAG_POOL)!r}")
        return False

    async def _launch_one(self, request: LaunchRequest, offering: Offering) -> Instance:
        zone = offering.region
        name = vm_name(request.pool, request.host_id, request.fleet_id or request.fleet)
        body = instance_body(self.pool, request, offering, name)
        try:
            op = await self._call(
                "compute.instances.insert", self._instances.insert,
                request=compute_v1.InsertInstanceRequest(
                    project=self.project, zone=zone, instance_resource=body,
                    request_id=stable_uuid(request.fleet_id or request.fleet,
                                           request.idempotency_key, offering.label())))
        except GcpConflict:
            pass  # the VM exists already (same host id): adopt it below
        else:
            try:
                await self._wait(zone, op.name, f"{name} in {zone}")
            except LaunchTimeout:
                await self.terminate(f"{zone}/{name}")  # one zone must not stall the pool
                raise
        vm = await self._call("compute.instances.get", self._instances.get,
                              project=self.project, zone=zone, instance=name)
        if not self._exactly_ours(vm, zone):  # never adopt what another fleet made
            raise InvalidPoolConfig(f'pool "{self.pool.name}": VM {name} in {zone} exists '
                                    f"and is not this fleet's; it is left alone")
        return self._to_instance(vm, zone)

    async def _wait(self, zone: str, operation: str, what: str) -> None:
        async def done() -> compute_v1.Operation | None:
            op = await self._call(
                "compute.zoneOperations.get", self._operations.get, project=self.project,
                zone=zone, operation=operation)
            return op if op.status == compute_v1.Operation.Status.DONE else None

        op = await wait_until(done, self.clock, self._timeout_s, self._poll_s, what)
        if op.error and op.error.errors:
            raise map_operation_error(op.error.errors[0], zone, self.pool.name)

    def _to_instance(self, vm: compute_v1.Instance, zone: str) -> Instance:
        inst = to_instance(vm, zone, self.pool)
        self._hosts[vm.name] = inst.host_id  # for preemption notices
        return inst

