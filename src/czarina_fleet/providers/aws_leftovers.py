"""The sweep of what an AWS pool left behind: volumes and network interfaces tagged with
this fleet and pool that no instance uses any more (status `available`), and their
deletion."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from czarina_fleet.providers.base import (
    OWNER_TAG_HOST,
    OWNER_TAG_POOL,
    InvalidPoolConfig,
    Leftover,
)

if TYPE_CHECKING:
    from czarina_fleet.providers.aws import AwsProvider


async def find_leftovers(p: AwsProvider) -> list[Leftover]:
    """Every region's available volumes and interfaces carrying this fleet's mark and
    this pool; each is checked again here, since the filters are the server's."""
    found: list[Leftover] = []
    filters = [p._owner_filters(), {"Name": f"tag:{OWNER_TAG_POOL}",
                                    "Values": [p.pool.name]},
               {"Name": "status", "Values": ["available"]}]
    for region in p._regions:
        volumes = await p._call(region, "DescribeVolumes", Filters=filters)
        for v in volumes.get("Volumes", []):
            found.extend(_leftover(p, "volume", v["VolumeId"], v, region))
        enis = await p._call(region, "DescribeNetworkInterfaces", Filters=filters)
        for n in enis.get("NetworkInterfaces", []):
            found.extend(_leftover(p, "network-interface", n["NetworkInterfaceId"], n, region))
    return found


async def delete_leftover(p: AwsProvider, leftover: Leftover) -> None:
    """Delete one leftover in the region it was found in; one already gone is success."""
    operation, key = (("DeleteVolume", "VolumeId") if leftover.kind == "volume"
                      else ("DeleteNetworkInterface", "NetworkInterfaceId"))
    region = p._region_of.get(leftover.resource_id, p._regions[0])
    try:
        await p._call(region, operation, **{key: leftover.resource_id})
    except InvalidPoolConfig as exc:
        if ".NotFound" not in str(exc):
            raise


def _leftover(p: AwsProvider, kind: str, rid: str, raw: dict[str, Any],
              region: str) -> list[Leftover]:
    tags = {t["Key"]: t["Value"] for t in raw.get("Tags", raw.get("TagSet", []))}
    if not p.mark.matches(tags) or tags.get(OWNER_TAG_POOL) != p.pool.name:
        return []
    if raw.get("State", raw.get("Status")) != "available":  # volumes: State; ENIs: Status
        return []
    p._region_of[rid] = region
    created = raw.get("CreateTime")
    return [Leftover(kind, rid, tags.get(OWNER_TAG_HOST, ""),
                     created.timestamp() if created else None)]
