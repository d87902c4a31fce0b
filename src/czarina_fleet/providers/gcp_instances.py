"""How a Compute Engine VM reads as the contract's `Instance`, and the list filter that
narrows a zone's VMs to this fleet's by their (lossy) ownership labels. Pure: no calls."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from google.cloud import compute_v1

from czarina_fleet.providers.base import (
    OWNER_TAG_FLEET,
    OWNER_TAG_FLEET_ID,
    OWNER_TAG_HOST,
    OWNER_TAG_POOL,
    ConnectInfo,
    Instance,
    InstanceState,
    OwnerMark,
)
from czarina_fleet.providers.gcp_support import label_value

ZONE = re.compile(r"^[a-z]+-[a-z]+\d+-[a-z]$")
_STATES = {
    "PROVISIONING": InstanceState.PENDING, "STAGING": InstanceState.PENDING,
    "RUNNING": InstanceState.RUNNING, "STOPPING": InstanceState.STOPPING,
    "SUSPENDING": InstanceState.STOPPING, "SUSPENDED": InstanceState.STOPPING,
    "TERMINATED": InstanceState.STOPPING, "REPAIRING": InstanceState.PENDING,
}


def owner_filter(fleet: str, mark: OwnerMark, pool: str, host_id: str | None = None) -> str:
    """A list filter on the ownership labels: this fleet's mark, or (to see look-alikes)
    its flattened name, in this pool. The API reference asks for each expression within
    parentheses; OR binds tighter than AND."""
    name = f'(labels.{OWNER_TAG_FLEET} = "{label_value(fleet)}")'
    fleet_terms = name if not mark.fleet_id else (
        f'(labels.{OWNER_TAG_FLEET_ID} = "{label_value(mark.fleet_id)}") OR {name}')
    terms = [fleet_terms, f'(labels.{OWNER_TAG_POOL} = "{label_value(pool)}")']
    if host_id is not None:
        terms.append(f'(labels.{OWNER_TAG_HOST} = "{label_value(host_id)}")')
    return " AND ".join(terms)


def metadata_of(vm: compute_v1.Instance) -> dict[str, str]:
    """The VM's metadata items, where ownership is recorded exactly."""
    return {i.key: i.value for i in vm.metadata.items} if vm.metadata else {}


def to_instance(vm: compute_v1.Instance, zone: str, pool: Any) -> Instance:
    """One VM of `zone` (instance id `zone/name`), addressed as `pool` asks (its
    `use_private_ip` option, its ssh user and identity file)."""
    meta = metadata_of(vm)
    host = meta.get(OWNER_TAG_HOST, vm.labels.get(OWNER_TAG_HOST, ""))
    address = None
    for nic in vm.network_interfaces:
        nat = [a.nat_i_p for a in nic.access_configs if a.nat_i_p]
        address = address or (nat[0] if nat and not pool.options.get(
            "use_private_ip") else nic.network_i_p) or None
    created = vm.creation_timestamp
    return Instance(
        instance_id=f"{zone}/{vm.name}", host_id=host,
        pool=meta.get(OWNER_TAG_POOL, pool.name),
        state=_STATES.get(vm.status, InstanceState.PENDING),
        shape=vm.machine_type.rsplit("/", 1)[-1], region=zone,
        spot=vm.scheduling.provisioning_model == "SPOT",
        launched_at=datetime.fromisoformat(created).timestamp() if created else None,
        connect=ConnectInfo(address, 22, pool.ssh_user,
                            pool.options.get("identity_file")) if address else None,
        tags={**dict(vm.labels), "gcp-id": str(vm.id)},
    )
