"""One Azure launch in one location: public IP, NIC, then the VM created without the
SDK's poller and read on the injected clock until it is provisioned; on any failure
everything made so far is deleted, so a failed location leaves nothing billable."""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Any

from azure.core.exceptions import HttpResponseError, ODataV4Format

from czarina_fleet.providers.azure_support import (
    ip_body,
    map_azure_error,
    nic_body,
    provisioning_failure,
    resource_names,
    vm_body,
)
from czarina_fleet.providers.base import (
    Instance,
    InvalidPoolConfig,
    LaunchRequest,
    ProviderError,
)
from czarina_fleet.providers.offerings import (
    Offering,
    checked_ssh_identity,
    cloud_config,
    wait_until,
)

if TYPE_CHECKING:
    from czarina_fleet.providers.azure import AzureProvider

VM_WRITE = "Microsoft.Compute/virtualMachines/write"


async def launch_one(p: AzureProvider, request: LaunchRequest, offering: Offering) -> Instance:
    """The VM running in `offering`'s location; the contract's errors otherwise
    (InvalidPoolConfig for a pool without image, key or subnet)."""
    user, key = checked_ssh_identity(request.ssh_user, request.ssh_public_key)
    image = request.image or p.pool.image
    if not key or not image:
        raise InvalidPoolConfig(f'pool "{p.pool.name}": Azure VMs need "image" and an '
                                f"SSH public key (password login is disabled)")
    opts = {**p.pool.options, **request.options}
    subnet = opts.get("subnet_ids", {}).get(offering.region) or opts.get("subnet_id")
    if not subnet:
        raise InvalidPoolConfig(
            f'pool "{p.pool.name}": set options.subnet_id (or subnet_ids.'
            f"{offering.region}) to a subnet in {offering.region}")
    names = resource_names(request.pool, request.idempotency_key, offering.label(),
                           request.fleet_id or request.fleet)
    tags = request.owner_tags()
    rg, network = p._rg, p._network
    try:
        ip_id = None
        if opts.get("public_ip", True):
            ip = await p._call("Microsoft.Network/publicIPAddresses/write", lambda: (
                network.public_ip_addresses.begin_create_or_update(
                    rg, names["ip"], ip_body(location=offering.region, tags=tags)
                ).result()))
            ip_id = ip.id
        nic = await p._call("Microsoft.Network/networkInterfaces/write", lambda: (
            network.network_interfaces.begin_create_or_update(
                rg, names["nic"], nic_body(
                    location=offering.region, tags=tags, subnet_id=subnet, ip_id=ip_id,
                    nsg_id=opts.get("nsg_id"))).result()))
        body = vm_body(
            location=offering.region, shape=offering.shape, tags=tags, names=names,
            nic_id=nic.id, image=image, user=user, key=key, spot=offering.spot,
            max_price=request.max_price_per_hour or p.pool.max_price_per_hour,
            custom_data=_host_key_data(request))
        await p._call(VM_WRITE, lambda: (
            p._compute.virtual_machines.begin_create_or_update(
                rg, names["vm"], body, polling=False).result()))
        p._seen[names["vm"]] = request.host_id
        vm = await wait_until(lambda: _provisioned(p, names["vm"]), p.clock,
                              p._timeout_s, p._poll_s, f"{names['vm']} in "
                              f"{offering.region}")
    except ProviderError:
        await _clean_up(p, names["vm"])  # leave nothing billable behind
        raise
    return p._to_instance(vm, await p._address(names["vm"]))


async def _clean_up(p: AzureProvider, name: str) -> None:
    p._seen.pop(name, None)
    try:
        await p.terminate(name)
    except ProviderError:
        pass  # the launch error is the one to report; list_instances finds leftovers


async def _provisioned(p: AzureProvider, name: str) -> Any | None:
    vm = await p._call("Microsoft.Compute/virtualMachines/read", lambda: (
        p._compute.virtual_machines.get(p._rg, name, expand="instanceView")))
    if vm.provisioning_state == "Succeeded":
        return vm
    if vm.provisioning_state == "Failed":
        reason = provisioning_failure(vm) or ""
        raise map_azure_error(_failure(reason), VM_WRITE, p.pool.name)
    return None


def _failure(reason: str) -> Exception:
    """An HttpResponseError carrying the provisioning failure code, so one mapping
    (capacity / quota / config) serves both synchronous and asynchronous failures."""
    code, _, message = reason.partition(": ")
    exc = HttpResponseError(message=message or code)
    exc.error = ODataV4Format({"code": code, "message": message})
    exc.status_code = 409
    return exc


def _host_key_data(request: LaunchRequest) -> str | None:
    """cloud-init custom data installing the controller's host key, when it made one."""
    if not request.host_private_key:
        return None
    return base64.b64encode(cloud_config(
        None, None, request.host_private_key, request.host_public_key).encode()).decode()
