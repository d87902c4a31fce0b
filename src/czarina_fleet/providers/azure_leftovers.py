"""The sweep of what an Azure pool left behind: public IPs and NICs tagged with this fleet
and pool whose VM is gone (Azure deletes an evicted Spot VM's NIC and OS disk, by their
deleteOption, but never its public IP), and the OS disk of such a VM when it is still
there (ARM gives a disk no tags at creation: it is known by its VM's name)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from czarina_fleet.providers.azure_support import AzureNotFound, marked_leftovers, vm_of
from czarina_fleet.providers.base import Leftover

if TYPE_CHECKING:
    from czarina_fleet.providers.azure import AzureProvider


async def find_leftovers(p: AzureProvider) -> list[Leftover]:
    await p.list_instances()  # refreshes the names of every VM in the group
    vms = set(p._vm_names)
    ips = await p._call("Microsoft.Network/publicIPAddresses/read", lambda: list(
        p._network.public_ip_addresses.list(p._rg)))
    nics = await p._call("Microsoft.Network/networkInterfaces/read", lambda: list(
        p._network.network_interfaces.list(p._rg)))
    found = (marked_leftovers("public-ip", ips, vms, p.mark, p.pool.name)
             + marked_leftovers("nic", nics, vms, p.mark, p.pool.name))
    hosts = {vm_of(r.kind, r.resource_id): r.host_id for r in found}
    for vm, host in sorted(hosts.items()):
        if await _exists(p, "Microsoft.Compute/disks/read", p._compute.disks.get,
                         f"{vm}-osdisk"):
            found.append(Leftover("disk", f"{vm}-osdisk", host))
    return found


async def delete_leftover(p: AzureProvider, leftover: Leftover) -> None:
    """Delete one leftover; one already gone is success."""
    rg, name = p._rg, leftover.resource_id
    steps: dict[str, tuple[str, Callable[[], Any]]] = {
        "public-ip": ("Microsoft.Network/publicIPAddresses/delete", lambda: (
            p._network.public_ip_addresses.begin_delete(rg, name).result())),
        "nic": ("Microsoft.Network/networkInterfaces/delete", lambda: (
            p._network.network_interfaces.begin_delete(rg, name).result())),
        "disk": ("Microsoft.Compute/disks/delete", lambda: (
            p._compute.disks.begin_delete(rg, name).result())),
    }
    action, step = steps[leftover.kind]
    try:
        await p._call(action, step)
    except AzureNotFound:
        return


async def _exists(p: AzureProvider, action: str, get: Callable[[str, str], Any],
                  name: str) -> bool:
    try:
        await p._call(action, lambda: get(p._rg, name))
    except AzureNotFound:
        return False
    return True
