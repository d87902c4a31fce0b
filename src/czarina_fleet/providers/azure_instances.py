"""How an Azure VM reads as the contract's `Instance` (its addresses come from its NIC and
public IP, read by the driver). Pure: no calls."""

from __future__ import annotations

from typing import Any

from czarina_fleet.providers.base import (
    OWNER_TAG_HOST,
    OWNER_TAG_POOL,
    ConnectInfo,
    Instance,
    InstanceState,
)

_STATES = {"Creating": InstanceState.PENDING, "Updating": InstanceState.RUNNING,
           "Succeeded": InstanceState.RUNNING, "Deleting": InstanceState.STOPPING,
           "Failed": InstanceState.PENDING}


def to_instance(vm: Any, addresses: tuple[str | None, str | None], pool: Any) -> Instance:
    """`vm` with its (public, private) addresses, addressed as `pool` asks (its
    `use_private_ip` option, its ssh user and identity file)."""
    tags = dict(vm.tags or {})
    public, private = addresses
    address = private if pool.options.get("use_private_ip") else (public or private)
    created = vm.time_created
    return Instance(
        instance_id=vm.name, host_id=tags.get(OWNER_TAG_HOST, ""),
        pool=tags.get(OWNER_TAG_POOL, ""),
        state=_STATES.get(vm.provisioning_state or "", InstanceState.PENDING),
        shape=vm.hardware_profile.vm_size if vm.hardware_profile else "",
        region=vm.location, spot=vm.priority == "Spot",
        launched_at=created.timestamp() if created else None,
        connect=ConnectInfo(address, 22, pool.ssh_user,
                            pool.options.get("identity_file")) if address else None,
        tags=tags,
    )
