"""The RunInstances request for one launch: image, tags on every resource it creates,
IMDSv2, the host key in user data, network placement and the spot market. Pure: the
driver (aws.py) makes the call and waits for `running`."""

from __future__ import annotations

from typing import Any

from czarina_fleet.providers.base import InvalidPoolConfig, LaunchRequest
from czarina_fleet.providers.offerings import (
    Offering,
    checked_ssh_identity,
    cloud_config,
    stable_token,
)


def run_instances_params(
    pool: Any, request: LaunchRequest, offering: Offering, zone: str | None
) -> dict[str, Any]:
    """RunInstances' parameters; raises InvalidPoolConfig when the pool names no image."""
    image = request.image or pool.image
    if not image:
        raise InvalidPoolConfig(f'pool "{pool.name}": set "image" to an AMI id')
    tags = [{"Key": k, "Value": v} for k, v in request.owner_tags().items()]
    tags.append({"Key": "Name", "Value": f"czarina-{request.pool}-{request.host_id}"})
    params: dict[str, Any] = {
        "ImageId": image, "InstanceType": offering.shape, "MinCount": 1, "MaxCount": 1,
        "ClientToken": stable_token(request.fleet_id or request.fleet,
                                    request.idempotency_key, offering.label(), length=64),
        "TagSpecifications": [
            {"ResourceType": "instance", "Tags": tags},
            {"ResourceType": "volume", "Tags": tags},
            {"ResourceType": "network-interface", "Tags": tags},
        ],
        # IMDSv2 only, hop limit 1: no IMDSv1 GET (SSRF) and no container behind a
        # bridge reaches the metadata service (user data holds the host key).
        "MetadataOptions": {"HttpTokens": "required", "HttpPutResponseHopLimit": 1,
                            "HttpEndpoint": "enabled"},
        # A power-off from inside (the orphan watchdog) ends the billing.
        "InstanceInitiatedShutdownBehavior": "terminate",
    }
    user, key = checked_ssh_identity(request.ssh_user, request.ssh_public_key)
    if key or request.host_private_key:
        params["UserData"] = cloud_config(user if key else None, key,
                                          request.host_private_key, request.host_public_key)
    opts = {**pool.options, **request.options}
    if opts.get("key_name"):
        params["KeyName"] = opts["key_name"]
    subnet = opts.get("subnet_ids", {}).get(offering.region) or opts.get("subnet_id")
    if subnet:
        params["SubnetId"] = subnet
    if opts.get("security_group_ids"):
        params["SecurityGroupIds"] = list(opts["security_group_ids"])
    if zone:
        params["Placement"] = {"AvailabilityZone": zone}
    if offering.spot:
        params["InstanceMarketOptions"] = _spot_market(request, pool)
    return params


def _spot_market(request: LaunchRequest, pool: Any) -> dict[str, Any]:
    spot: dict[str, Any] = {
        "SpotInstanceType": "one-time", "InstanceInterruptionBehavior": "terminate"}
    cap = request.max_price_per_hour or pool.max_price_per_hour
    if cap:
        spot["MaxPrice"] = f"{cap:.4f}"
    return {"MarketType": "spot", "SpotOptions": spot}
