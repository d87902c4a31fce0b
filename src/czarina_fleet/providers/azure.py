"""Azure driver: Spot VMs with their own NIC and public IP, through azure-mgmt-compute and
azure-mgmt-network.

Pool settings: `regions` are locations (`eastus`) in preference order; `image` is a
marketplace URN (`Canonical:0001-com-ubuntu-server-jammy:22_04-lts-gen2:latest`) or an
image id; `options` holds `resource_group` and `subnet_id` (or `subnet_ids: {location:
id}`, since a VNet is regional), and may hold `subscription_id` (else
AZURE_SUBSCRIPTION_ID), `nsg_id`, `public_ip` (default true), `launch_timeout_s`.

Idempotency: resource names derive from the idempotency key, and before creating the
driver looks for a VM already tagged with the host id. The VM itself is created without
the SDK's poller and then read every `poll_interval_s` on the injected clock until it is
provisioned, so a location that stalls is given up after its timeout. Credentials:
DefaultAzureCredential; never logged.

This module holds the clients, the calls and the contract's verbs; beside it are
azure_launch.py (one launch: IP, NIC, VM, clean-up on failure), azure_instances.py (a VM
read as an Instance), azure_leftovers.py (the sweep), azure_support.py (names, request
bodies, prices, errors) and azure_doctor.py.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Sequence
from typing import Any

from azure.core.exceptions import AzureError
from azure.mgmt.compute import ComputeManagementClient
from azure.mgmt.network import NetworkManagementClient

from czarina_fleet.clock import Clock, SystemClock
from czarina_fleet.providers.azure_instances import to_instance
from czarina_fleet.providers.azure_launch import launch_one
from czarina_fleet.providers.azure_leftovers import delete_leftover, find_leftovers
from czarina_fleet.providers.azure_support import CATALOG, AzureNotFound, map_azure_error
from czarina_fleet.providers.base import (
    OWNER_TAG_HOST,
    OWNER_TAG_POOL,
    Finding,
    ForeignResource,
    Instance,
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
    OfferingBook,
    catalog_quote,
    launch_with_failover,
    with_retries,
)
from czarina_fleet.providers.price_sources import (
    AZURE_RETAIL_URL,
    FALLBACK_SOURCE,
    PriceBook,
    PriceCache,
    azure_retail,
    cache_for,
    http_get_json,
)

EVICTED = "evicted: the Spot VM is gone and this controller did not delete it"


class AzureProvider(Provider):
    name = "azure"

    def __init__(
        self, pool: Any, fleet: str, *, clock: Clock, compute: ComputeManagementClient,
        network: NetworkManagementClient, resource_group: str, poll_interval_s: float = 10.0,
        fleet_id: str = "", price_book: PriceBook | None = None,
        retail_prices_url: str | None = AZURE_RETAIL_URL,
    ) -> None:
        self.pool, self.fleet, self.clock = pool, fleet, clock
        self._prices = price_book or PriceBook(PriceCache(None), clock)
        self._retail_url = retail_prices_url  # None: the built-in table only
        self.mark = OwnerMark(fleet, fleet_id)
        self.launch_log: list[LaunchAttempt] = []
        self._compute, self._network, self._rg = compute, network, resource_group
        self._poll_s = poll_interval_s
        self._timeout_s = float(pool.options.get("launch_timeout_s", 600))
        self._book = OfferingBook(clock, float(pool.options.get("cooldown_s", 300)))
        self._seen: dict[str, str] = {}  # VM name -> host id, to notice evictions
        self._deleted: set[str] = set()
        self._addresses: dict[str, tuple[str | None, str | None]] = {}  # static once known
        self._foreign: dict[str, ForeignResource] = {}
        self._vm_names: set[str] = set()  # every VM in the resource group, at the last list

    @classmethod
    def from_pool(cls, pool: Any, fleet: str, **context: Any) -> AzureProvider:
        """context: `clock`, `credential` (else DefaultAzureCredential), `base_url` and
        `client_kwargs` (tests: an auth policy for plain http, polling_interval=0),
        `poll_interval_s`, `price_cache` (a path), `retail_prices_url` (tests; with
        `base_url` set and no `retail_prices_url`, prices come from the built-in table)."""
        opts = pool.options
        subscription = str(opts.get("subscription_id") or os.environ.get(
            "AZURE_SUBSCRIPTION_ID") or "")
        for field, value in (("subscription_id", subscription),
                             ("resource_group", opts.get("resource_group"))):
            if not value:
                raise InvalidPoolConfig(f'pool "{pool.name}": set options.{field}')
        credential = context.get("credential")
        if credential is None:
            from azure.identity import DefaultAzureCredential

            credential = DefaultAzureCredential()
        kwargs = dict(context.get("client_kwargs", {}))
        if context.get("base_url"):
            kwargs["base_url"] = context["base_url"]
        return cls(
            pool, fleet, clock=context.get("clock") or SystemClock(),
            compute=ComputeManagementClient(credential, subscription, **kwargs),
            network=NetworkManagementClient(credential, subscription, **kwargs),
            resource_group=opts["resource_group"],
            poll_interval_s=float(context.get("poll_interval_s", 10.0)),
            fleet_id=str(context.get("fleet_id") or ""),
            price_book=PriceBook(cache_for(context), context.get("clock") or SystemClock()),
            retail_prices_url=context.get("retail_prices_url") or (
                None if context.get("base_url") else AZURE_RETAIL_URL),
        )

    async def _call(self, action: str, fn: Callable[[], Any]) -> Any:
        def run() -> Any:
            try:
                return fn()
            except AzureError as exc:
                raise map_azure_error(exc, action, self.pool.name) from exc

        return await with_retries(lambda: asyncio.to_thread(run), self.clock)

    # -- contract ----------------------------------------------------------------------

    async def list_instances(self) -> list[Instance]:
        vms = await self._call(
            "Microsoft.Compute/virtualMachines/read",
            lambda: list(self._compute.virtual_machines.list(self._rg)))
        self._vm_names = {vm.name for vm in vms}
        mine = [vm for vm in vms if self.mark.matches(vm.tags or {})
                and (vm.tags or {}).get(OWNER_TAG_POOL) == self.pool.name]
        self._foreign = {vm.name: ForeignResource(
            "instance", vm.name, f"named like pool {self.pool.name!r}'s VMs but not tagged "
            f"{self.mark.key}={self.mark.value!r}") for vm in vms
            if vm.name.startswith(f"cz-{self.pool.name[:20]}-") and vm not in mine}
        out = []
        for vm in mine:
            self._seen[vm.name] = vm.tags.get(OWNER_TAG_HOST, "")
            out.append(self._to_instance(vm, await self._address(vm.name)))
        return out

    def foreign(self) -> list[ForeignResource]:
        return list(self._foreign.values())

    async def leftovers(self) -> list[Leftover]:
        """Tagged public IPs and NICs whose VM is gone, and such a VM's OS disk
        (providers/azure_leftovers.py)."""
        return await find_leftovers(self)

    async def delete_leftover(self, leftover: Leftover) -> None:
        await delete_leftover(self, leftover)

    async def launch(self, request: LaunchRequest) -> Instance:
        existing = [i for i in await self.list_instances() if i.host_id == request.host_id]
        if existing:
            return existing[0]
        return await launch_with_failover(
            request, self._book, self.pool, lambda o: launch_one(self, request, o),
            self.launch_log, self.clock)

    async def terminate(self, instance_id: str) -> None:
        """Delete the VM, then its NIC, public IP and OS disk; each already gone is fine."""
        self._deleted.add(instance_id)
        vm, nic, ip, disk = (instance_id, f"{instance_id}-nic", f"{instance_id}-ip",
                             f"{instance_id}-osdisk")
        steps: list[tuple[str, Callable[[], Any]]] = [
            ("Microsoft.Compute/virtualMachines/delete",
             lambda: self._compute.virtual_machines.begin_delete(self._rg, vm).result()),
            ("Microsoft.Network/networkInterfaces/delete",
             lambda: self._network.network_interfaces.begin_delete(self._rg, nic).result()),
            ("Microsoft.Network/publicIPAddresses/delete",
             lambda: self._network.public_ip_addresses.begin_delete(self._rg, ip).result()),
            ("Microsoft.Compute/disks/delete",
             lambda: self._compute.disks.begin_delete(self._rg, disk).result()),
        ]
        for action, step in steps:
            try:
                await self._call(action, step)
            except AzureNotFound:
                continue

    async def prices(self, shape: str, region: str, spot: bool) -> PriceQuote:
        """The Retail Prices API's Linux price (cached), else the built-in table."""
        url = self._retail_url
        fetch = (lambda: azure_retail(http_get_json(), shape, region, spot, url)) if url else None
        got = await self._prices.lookup(f"azure/{shape}/{region}/{'spot' if spot else 'od'}",
                                        "Azure Retail Prices API", fetch)
        if got is not None:
            return PriceQuote(shape, region, spot, got.usd_per_hour, got.label())
        quote = catalog_quote(CATALOG, shape, region, spot)
        return PriceQuote(shape, region, spot, quote.usd_per_hour, FALLBACK_SOURCE)

    async def interruption_notices(self) -> list[InterruptionNotice]:
        """Spot VMs with eviction policy Delete vanish when evicted: a VM this driver saw
        that is gone without a delete from us is reported once."""
        before = dict(self._seen)
        present = {i.instance_id for i in await self.list_instances()}
        notices = []
        for name, host in before.items():
            if name not in present and name not in self._deleted:
                notices.append(InterruptionNotice(name, host, EVICTED, None))
                del self._seen[name]
        return notices

    def launch_attempts(self) -> Sequence[LaunchAttempt]:
        return self.launch_log

    async def doctor(self) -> list[Finding]:
        from czarina_fleet.providers.azure_doctor import azure_checks

        return await azure_checks(self)

    async def close(self) -> None:
        self._compute.close()
        self._network.close()

    # -- helpers -----------------------------------------------------------------------

    async def _address(self, name: str) -> tuple[str | None, str | None]:
        """(public, private) address of the VM's NIC, by the naming convention. Both are
        static once assigned, so they are read once per VM, not on every list."""
        if name in self._addresses:
            return self._addresses[name]
        found = await self._read_address(name)
        if found[0] or (found[1] and not self.pool.options.get("public_ip", True)):
            self._addresses[name] = found
        return found

    async def _read_address(self, name: str) -> tuple[str | None, str | None]:
        try:
            nic = await self._call("Microsoft.Network/networkInterfaces/read", lambda: (
                self._network.network_interfaces.get(self._rg, f"{name}-nic")))
        except AzureNotFound:
            return None, None
        config = (nic.ip_configurations or [None])[0]
        private = config.private_ip_address if config else None
        if not config or not config.public_ip_address:
            return None, private
        try:
            ip = await self._call("Microsoft.Network/publicIPAddresses/read", lambda: (
                self._network.public_ip_addresses.get(self._rg, f"{name}-ip")))
        except AzureNotFound:
            return None, private
        return ip.ip_address, private

    def _to_instance(self, vm: Any, addresses: tuple[str | None, str | None]) -> Instance:
        return to_instance(vm, addresses, self.pool)

