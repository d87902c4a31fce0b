"""How an EC2 instance reads as the contract's `Instance`: its locations (`us-east-1a` is
a zone of `us-east-1`), its states, and the ownership tags it carries. Pure: no calls."""

from __future__ import annotations

from typing import Any

from czarina_fleet.providers.base import (
    OWNER_TAG_HOST,
    OWNER_TAG_POOL,
    ConnectInfo,
    Instance,
    InstanceState,
)

SPOT_INTERRUPTION = "Server.SpotInstanceTermination"
_LIVE_STATES = ["pending", "running", "shutting-down", "stopping", "stopped"]
# DescribeInstances filter: every instance that is not yet terminated.
STATE_FILTER = {"Name": "instance-state-name", "Values": _LIVE_STATES}
_STATES = {
    "pending": InstanceState.PENDING, "running": InstanceState.RUNNING,
    "shutting-down": InstanceState.STOPPING, "stopping": InstanceState.STOPPING,
    "stopped": InstanceState.STOPPING, "terminated": InstanceState.TERMINATED,
}


def split_location(location: str) -> tuple[str, str | None]:
    """`us-east-1a` -> (`us-east-1`, `us-east-1a`); `us-east-1` -> (`us-east-1`, None)."""
    if location and location[-1].isalpha() and location[-2].isdigit():
        return location[:-1], location
    return location, None


def to_instance(raw: dict[str, Any], region: str, pool: Any) -> Instance:
    """One DescribeInstances entry of `region`, addressed as `pool` asks (its
    `use_private_ip` option, its ssh user and identity file)."""
    tags = {t["Key"]: t["Value"] for t in raw.get("Tags", [])}
    private = bool(pool.options.get("use_private_ip"))
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
        connect=ConnectInfo(address, 22, pool.ssh_user, pool.options.get("identity_file"))
        if address else None,
        tags=tags,
        interrupted=raw.get("StateReason", {}).get("Code") == SPOT_INTERRUPTION,
    )
