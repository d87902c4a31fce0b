"""`czarina doctor` for an Azure pool: one read-only call per location
(`Microsoft.Compute/locations/vmSizes/read`; see docs/permissions.md).

Credentials come from DefaultAzureCredential's chain (AZURE_CLIENT_ID/_SECRET/_TENANT_ID,
workload or managed identity, `az login`); the first call is what proves them, and
only which chain was used is shown. Marketplace images are not looked up (that API's
spec is not among the ones the tests validate against): the image is checked at launch.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from azure.core.exceptions import ClientAuthenticationError, HttpResponseError

from czarina_fleet.providers.base import Finding

if TYPE_CHECKING:
    from czarina_fleet.providers.azure import AzureProvider


async def azure_checks(p: AzureProvider) -> list[Finding]:
    found: list[Finding] = []
    for location in p.pool.regions:
        try:
            sizes = await asyncio.to_thread(lambda loc=location: {
                s.name for s in p._compute.virtual_machine_sizes.list(location=loc)})
        except ClientAuthenticationError as e:
            return [Finding("credentials", False, "no usable Azure credentials (tried "
                            "DefaultAzureCredential: environment, managed identity, `az "
                            f"login`): {_first_line(e)}")]
        except HttpResponseError as e:
            code = e.error.code if e.error is not None else e.status_code
            found.append(Finding(f"location {location}", False, f"{code}: no location "
                                 f"{location} for this subscription: fix \"regions\" "
                                 "(e.g. eastus, westeurope)"))
            continue
        found.append(Finding(f"location {location}", True, f"{len(sizes)} VM sizes"))
        for shape in p.pool.instance_types:
            ok = shape in sizes
            found.append(Finding(f"type {shape} in {location}", ok, "offered" if ok else
                                 f"{shape} is not offered in {location}: fix "
                                 "\"instance_types\""))
    found.insert(0, Finding("credentials", True, "accepted (DefaultAzureCredential chain)"))
    found.append(Finding(f"image {p.pool.image or '(default)'}", None,
                         "not checked here: the image is checked when a VM is created"))
    return found


def _first_line(e: Exception) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0]
