"""`czarina doctor` for an AWS pool: read-only EC2 calls only (DescribeAvailabilityZones,
DescribeInstanceTypeOfferings, DescribeImages; see docs/permissions.md).

Credentials are looked up in boto3's standard chain (environment, AWS_PROFILE and
~/.aws, SSO, instance role); only where they came from is shown, never a key.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from czarina_fleet.providers.base import CredentialsError, Finding, ProviderError

if TYPE_CHECKING:
    from czarina_fleet.providers.aws import AwsProvider


async def aws_checks(p: AwsProvider) -> list[Finding]:
    from czarina_fleet.providers.aws_instances import split_location

    creds = p._session.get_credentials()
    if creds is None:
        return [Finding("credentials", False, "no AWS credentials found: configure the "
                        "default chain (AWS_PROFILE, ~/.aws/credentials, SSO or an instance "
                        "role)")]
    found = [Finding("credentials", True, f"found ({creds.method})")]
    try:
        for location in p.pool.regions:
            region, zone = split_location(location)
            if await _location(p, region, zone, found):
                found += await _types(p, region, zone)
                found += await _image(p, region)
    except CredentialsError as e:
        found[0] = Finding("credentials", False, f"found ({creds.method}) but refused: {e}")
        found.append(Finding("regions", None, "not checked: the credentials were refused"))
    return found


async def _location(p: AwsProvider, region: str, zone: str | None,
                    found: list[Finding]) -> bool:
    where = zone or region
    try:
        zones = await p._call(region, "DescribeAvailabilityZones")
    except CredentialsError:
        raise
    except ProviderError as e:
        found.append(Finding(f"region {region}", False, str(e)))
        return False
    names = [z.get("ZoneName") for z in zones.get("AvailabilityZones", [])]
    if zone is not None and zone not in names:
        found.append(Finding(f"zone {zone}", False, f"no zone {zone} in {region} (it has "
                             f"{', '.join(str(n) for n in names) or 'none'}): fix \"regions\""))
        return False
    found.append(Finding(f"region {where}", True, f"{len(names)} zones in {region}"))
    return True


async def _types(p: AwsProvider, region: str, zone: str | None) -> list[Finding]:
    out: list[Finding] = []
    for shape in p.pool.instance_types:
        try:
            offered = await p._call(
                region, "DescribeInstanceTypeOfferings",
                LocationType="availability-zone" if zone else "region",
                Filters=[{"Name": "instance-type", "Values": [shape]},
                         {"Name": "location", "Values": [zone or region]}])
        except CredentialsError:
            raise
        except ProviderError as e:
            out.append(Finding(f"type {shape} in {zone or region}", False, str(e)))
            continue
        ok = bool(offered.get("InstanceTypeOfferings"))
        out.append(Finding(f"type {shape} in {zone or region}", ok,
                           "offered" if ok else f"{shape} is not offered in {zone or region}: "
                           "fix \"instance_types\" or \"regions\""))
    return out


async def _image(p: AwsProvider, region: str) -> list[Finding]:
    image = p.pool.image
    if not image:
        return [Finding("image", False, f'pool "{p.pool.name}": set "image" to an AMI id')]
    try:
        found = await p._call(region, "DescribeImages", ImageIds=[image])
    except CredentialsError:
        raise
    except ProviderError as e:
        return [Finding(f"image {image} in {region}", False, str(e))]
    ok = bool(found.get("Images"))
    return [Finding(f"image {image} in {region}", ok, "exists" if ok else
                    f"no image {image} in {region}: AMI ids differ per region; set one "
                    "that exists there")]
