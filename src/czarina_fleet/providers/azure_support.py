"""Azure helpers: resource names, request bodies, the price table and error mapping (kept
out of azure.py so the driver reads top-down)."""

from __future__ import annotations

from typing import Any

from azure.core.exceptions import ClientAuthenticationError, HttpResponseError
from azure.mgmt.compute import models as cm
from azure.mgmt.network import models as nm

from czarina_fleet.providers.base import (
    OWNER_TAG_HOST,
    OWNER_TAG_POOL,
    CapacityError,
    CredentialsError,
    InvalidPoolConfig,
    Leftover,
    OwnerMark,
    PermissionDenied,
    ProviderError,
    QuotaError,
    TransientError,
)
from czarina_fleet.providers.offerings import stable_token

# USD/hour in eastus (pay-as-you-go, spot), 2024 list prices. A small built-in table:
# the Retail Prices API is a separate public endpoint we keep out of the control loop.
CATALOG: dict[str, tuple[float, float]] = {
    "Standard_B2s": (0.0416, 0.0083), "Standard_D2s_v5": (0.096, 0.0192),
    "Standard_D4s_v5": (0.192, 0.0384), "Standard_D2as_v5": (0.086, 0.0172),
    "Standard_F2s_v2": (0.0846, 0.0169), "Standard_E2s_v5": (0.126, 0.0252),
}
CAPACITY_CODES = frozenset({
    "SkuNotAvailable", "AllocationFailed", "ZonalAllocationFailed",
    "OverconstrainedAllocationRequest", "OverconstrainedZonalAllocationRequest",
    "SpotMaxPriceTooLow", "SkuNotAvailableForSpot",
})
QUOTA_CODES = frozenset({"QuotaExceeded", "OperationNotAllowed", "PublicIPCountLimitReached"})
CONFIG_CODES = frozenset({
    "InvalidParameter", "ImageNotFound", "PlatformImageNotFound", "InvalidTemplate",
    "LocationNotAvailableForResourceType", "NoRegisteredProviderFound", "InvalidLocation",
    "ResourceGroupNotFound", "InvalidResourceReference", "NotFound", "InvalidSubnetId",
})


class AzureNotFound(InvalidPoolConfig):
    """404: a missing resource group or subnet on create; 'already gone' on delete."""


def resource_names(pool: str, key: str, offering_label: str, fleet: str = "") -> dict[str, str]:
    """Deterministic names from the idempotency key (and offering, since a name is unique
    in the resource group whatever the location): the same request makes the same names.
    The exact fleet is hashed in too: two fleets with the same pool and host ids in one
    resource group never make (or adopt) each other's resources."""
    parts = (fleet, key, offering_label) if fleet else (key, offering_label)
    vm = f"cz-{pool[:20]}-{stable_token(*parts, length=12)}"
    return {"vm": vm, "nic": f"{vm}-nic", "ip": f"{vm}-ip", "disk": f"{vm}-osdisk"}


def image_reference(image: str) -> cm.ImageReference:
    """`publisher:offer:sku:version` (a marketplace URN) or a full image resource id."""
    if image.startswith("/subscriptions/"):
        return cm.ImageReference(id=image)
    parts = image.split(":")
    if len(parts) != 4:
        raise InvalidPoolConfig(
            f'image "{image}" is neither publisher:offer:sku:version nor an image id; e.g. '
            f'"Canonical:0001-com-ubuntu-server-jammy:22_04-lts-gen2:latest"')
    return cm.ImageReference(publisher=parts[0], offer=parts[1], sku=parts[2], version=parts[3])


def vm_body(
    *, location: str, shape: str, tags: dict[str, str], names: dict[str, str], nic_id: str,
    image: str, user: str, key: str, spot: bool, max_price: float | None,
    custom_data: str | None = None,
) -> cm.VirtualMachine:
    ssh = cm.SshConfiguration(public_keys=[
        cm.SshPublicKey(path=f"/home/{user}/.ssh/authorized_keys", key_data=key)])
    props = cm.VirtualMachineProperties(
        hardware_profile=cm.HardwareProfile(vm_size=shape),
        storage_profile=cm.StorageProfile(
            image_reference=image_reference(image),
            os_disk=cm.OSDisk(name=names["disk"], create_option="FromImage",
                              delete_option="Delete")),
        os_profile=cm.OSProfile(
            computer_name=names["vm"], admin_username=user, custom_data=custom_data,
            linux_configuration=cm.LinuxConfiguration(
                disable_password_authentication=True, ssh=ssh)),
        network_profile=cm.NetworkProfile(network_interfaces=[cm.NetworkInterfaceReference(
            id=nic_id, properties=cm.NetworkInterfaceReferenceProperties(
                primary=True, delete_option="Delete"))]),
    )
    if spot:
        props.priority = "Spot"
        props.eviction_policy = "Delete"
        # -1: pay up to the on-demand price, evicted only for capacity, not price.
        props.billing_profile = cm.BillingProfile(max_price=max_price or -1)
    return cm.VirtualMachine(location=location, tags=tags, properties=props)


def nic_body(
    *, location: str, tags: dict[str, str], subnet_id: str, ip_id: str | None,
    nsg_id: str | None,
) -> nm.NetworkInterface:
    config = nm.NetworkInterfaceIPConfiguration(
        name="primary", properties=nm.NetworkInterfaceIPConfigurationPropertiesFormat(
            subnet=nm.Subnet(id=subnet_id), primary=True,
            public_ip_address=nm.PublicIPAddress(id=ip_id) if ip_id else None))
    props = nm.NetworkInterfacePropertiesFormat(ip_configurations=[config])
    if nsg_id:
        props.network_security_group = nm.NetworkSecurityGroup(id=nsg_id)
    return nm.NetworkInterface(location=location, tags=tags, properties=props)


def ip_body(*, location: str, tags: dict[str, str]) -> nm.PublicIPAddress:
    return nm.PublicIPAddress(
        location=location, tags=tags, sku=nm.PublicIPAddressSku(name="Standard"),
        properties=nm.PublicIPAddressPropertiesFormat(public_ip_allocation_method="Static"))


def map_azure_error(exc: Exception, action: str, pool: str) -> ProviderError:
    """The contract's error for an azure-core exception raised by ARM `action`."""
    where = f'pool "{pool}"'
    if isinstance(exc, ClientAuthenticationError):
        return CredentialsError(
            "Azure rejected or could not find credentials: `az login`, or set "
            "AZURE_CLIENT_ID/AZURE_TENANT_ID/AZURE_CLIENT_SECRET, or use a managed identity")
    if not isinstance(exc, HttpResponseError):
        return ProviderError(f"{action}: {type(exc).__name__}: {exc}")
    code = str(getattr(exc.error, "code", "") or "")
    message = str(getattr(exc.error, "message", "") or exc.message)
    status = exc.status_code or 0
    if code in CAPACITY_CODES:
        return CapacityError(f"{code}: {message}")
    if code in QUOTA_CODES and (code != "OperationNotAllowed" or "quota" in message.lower()):
        return QuotaError(f"{where}: {code}: {message}; request a quota increase "
                          f"(Spot vCPUs are a separate quota) or lower max_hosts")
    if status == 429 or status >= 500:
        return TransientError(f"{action}: {status} {code}: {message}")
    if status == 403 or code in ("AuthorizationFailed", "LinkedAuthorizationFailed"):
        return PermissionDenied(
            f"{where}: the identity may not perform {action}: grant it (see "
            f"docs/permissions.md and terraform-examples/azure)", action)
    if status == 404:
        return AzureNotFound(f"{where}: {code}: {message}; check options.resource_group, "
                             f"the subnet and the image")
    if code in CONFIG_CODES or status == 400:
        return InvalidPoolConfig(f"{where}: {code}: {message}; check the pool's "
                                 f"instance_types, regions, image and options")
    return ProviderError(f"{action}: {status} {code}: {message}")


def provisioning_failure(vm: Any) -> str | None:
    """`AllocationFailed` from an instance view status `ProvisioningState/failed/<code>`."""
    view = vm.instance_view
    for status in (view.statuses or []) if view else []:
        if (status.code or "").startswith("ProvisioningState/failed/"):
            return str(status.code).rsplit("/", 1)[-1] + f": {status.message or ''}"
    return "ProvisioningFailed: the VM failed to provision"


SUFFIXES = {"nic": "-nic", "public-ip": "-ip", "disk": "-osdisk"}


def vm_of(kind: str, name: str) -> str:
    """The VM a NIC, public IP or OS disk was made for (by the naming convention)."""
    suffix = SUFFIXES[kind]
    return name[: -len(suffix)] if name.endswith(suffix) else name


def marked_leftovers(kind: str, resources: list[Any], vm_names: set[str], mark: OwnerMark,
                     pool: str) -> list[Leftover]:
    """NICs or public IPs tagged exactly with this fleet's mark and pool whose VM is gone."""
    out = []
    for res in resources:
        tags = res.tags or {}
        if not mark.matches(tags) or tags.get(OWNER_TAG_POOL) != pool:
            continue
        if vm_of(kind, res.name) in vm_names:
            continue
        out.append(Leftover(kind, res.name, tags.get(OWNER_TAG_HOST, "")))
    return out
