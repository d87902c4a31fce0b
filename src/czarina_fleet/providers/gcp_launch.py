"""The instances.insert body for one launch: the boot disk, ownership in labels and
(exactly) in metadata, the ssh key and host key, the network interface and the Spot
scheduling. Pure: the driver (gcp.py) inserts it and waits for the operation."""

from __future__ import annotations

from typing import Any

from google.cloud import compute_v1

from czarina_fleet.providers.base import InvalidPoolConfig, LaunchRequest
from czarina_fleet.providers.gcp_support import label_value
from czarina_fleet.providers.offerings import Offering, checked_ssh_identity, cloud_config


def instance_body(
    pool: Any, request: LaunchRequest, offering: Offering, name: str
) -> compute_v1.Instance:
    """The VM `name` in the offering's zone; InvalidPoolConfig when no image is set."""
    image = request.image or pool.image
    if not image:
        raise InvalidPoolConfig(
            f'pool "{pool.name}": set "image" (e.g. '
            f'"projects/debian-cloud/global/images/family/debian-12")')
    opts = {**pool.options, **request.options}
    labels = {k: label_value(v) for k, v in request.owner_tags().items()}
    return compute_v1.Instance(
        name=name, machine_type=f"zones/{offering.region}/machineTypes/{offering.shape}",
        labels=labels, metadata=compute_v1.Metadata(items=_metadata(request)),
        scheduling=_scheduling(offering.spot), network_interfaces=[_nic(opts)],
        tags=compute_v1.Tags(items=opts.get("network_tags", [])),
        disks=[compute_v1.AttachedDisk(
            boot=True, auto_delete=True,
            initialize_params=compute_v1.AttachedDiskInitializeParams(
                source_image=image, disk_size_gb=int(opts.get("disk_size_gb", 20)),
                labels=labels))],
    )


def _metadata(request: LaunchRequest) -> list[compute_v1.Items]:
    user, key = checked_ssh_identity(request.ssh_user, request.ssh_public_key)
    items = [compute_v1.Items(key=k, value=v) for k, v in request.owner_tags().items()]
    # Project-wide ssh-keys (anyone who may edit project metadata) never reach a
    # fleet VM: only the keys the fleet puts on it log in.
    items.append(compute_v1.Items(key="block-project-ssh-keys", value="TRUE"))
    if key:
        items.append(compute_v1.Items(key="ssh-keys", value=f"{user}:{key}"))
    if request.host_private_key:  # read by cloud-init on the image
        items.append(compute_v1.Items(key="user-data", value=cloud_config(
            None, None, request.host_private_key, request.host_public_key)))
    return items


def _nic(opts: dict[str, Any]) -> compute_v1.NetworkInterface:
    nic = compute_v1.NetworkInterface(network=opts.get("network", "global/networks/default"))
    if opts.get("subnetwork"):
        nic.subnetwork = opts["subnetwork"]
    if opts.get("public_ip", True):
        nic.access_configs = [compute_v1.AccessConfig(name="external-nat",
                                                      type_="ONE_TO_ONE_NAT")]
    return nic


def _scheduling(spot: bool) -> compute_v1.Scheduling:
    if spot:
        return compute_v1.Scheduling(
            provisioning_model="SPOT", instance_termination_action="DELETE",
            automatic_restart=False, on_host_maintenance="TERMINATE")
    return compute_v1.Scheduling(provisioning_model="STANDARD")
