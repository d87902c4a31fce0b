"""Fully qualified resource ids for the FOCUS export (FOCUS: ResourceId "SHOULD be a
fully-qualified identifier", unique within the provider).

The store keeps each cloud's short instance id (what its driver terminates by): an AWS
instance id, a GCP `zone/name`, an Azure VM name. The qualified forms need the account,
project or subscription, which live in the pool's options (or the SDK's usual
environment variable), so they are built here, at report time:

- AWS: `arn:<partition>:ec2:<region>:<account>:instance/<id>`; the account is the pool's
  `options.account_id`. Without it the bare instance id stays (unique within AWS).
- GCP: `//compute.googleapis.com/projects/<project>/zones/<zone>/instances/<name>` (the
  resource-name form Cloud Asset Inventory and billing exports use); the project is
  `options.project` or GOOGLE_CLOUD_PROJECT.
- Azure: `/subscriptions/<sub>/resourceGroups/<rg>/providers/Microsoft.Compute/
  virtualMachines/<name>`; `options.subscription_id` or AZURE_SUBSCRIPTION_ID, and
  `options.resource_group`.
- Local, static and lab hosts (and any host without a cloud id): `czarina-fleet/<fleet>/
  hosts/<host id>`, unique because host ids are unique within a fleet.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from czarina_fleet.model.fleet import HostRecord


def resource_ids(hosts: Iterable[HostRecord], fleet: str,
                 pool_options: Mapping[str, Mapping[str, Any]],
                 env: Mapping[str, str]) -> dict[str, str]:
    """host id -> ResourceId for every host in `hosts`. `pool_options` maps a pool name
    to its options; `env` is the process environment (passed in, never read here)."""
    return {h.host_id: resource_id(h, fleet, pool_options.get(h.pool or "", {}), env)
            for h in hosts}


def resource_id(host: HostRecord, fleet: str, options: Mapping[str, Any],
                env: Mapping[str, str]) -> str:
    iid = host.instance_id
    if iid and host.provider == "aws":
        return _aws_arn(iid, host.region or "", str(options.get("account_id") or ""))
    if iid and host.provider == "gcp":
        project = str(options.get("project") or env.get("GOOGLE_CLOUD_PROJECT") or "")
        zone, _, name = iid.rpartition("/")
        if project and zone and name:
            return f"//compute.googleapis.com/projects/{project}/zones/{zone}/instances/{name}"
        return iid
    if iid and host.provider == "azure":
        sub = str(options.get("subscription_id") or env.get("AZURE_SUBSCRIPTION_ID") or "")
        group = str(options.get("resource_group") or "")
        if sub and group:
            return (f"/subscriptions/{sub}/resourceGroups/{group}/providers/"
                    f"Microsoft.Compute/virtualMachines/{iid}")
        return iid
    return f"czarina-fleet/{fleet}/hosts/{host.host_id}"


def _aws_arn(instance_id: str, location: str, account: str) -> str:
    if not account:
        return instance_id
    region = location[:-1] if location[-1:].isalpha() else location  # us-east-1a -> us-east-1
    partition = ("aws-cn" if region.startswith("cn-")
                 else "aws-us-gov" if region.startswith("us-gov-") else "aws")
    return f"arn:{partition}:ec2:{region}:{account}:instance/{instance_id}"
