"""`czarina doctor` for a GCP pool: read-only Compute Engine calls only (zones.get,
machineTypes.get, images.get / images.getFromFamily; see docs/permissions.md).

Credentials are Application Default Credentials (GOOGLE_APPLICATION_CREDENTIALS,
`gcloud auth application-default login`, the metadata server); finding them is what
building the driver did. A refused token shows up as the first call failing.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from google.api_core import exceptions as gexc
from google.auth import exceptions as auth_exc
from google.cloud import compute_v1

from czarina_fleet.providers.base import CredentialsError, Finding

if TYPE_CHECKING:
    from czarina_fleet.providers.gcp import GcpProvider

_IMAGE = re.compile(r"^(?:https://[^/]+/compute/v1/)?projects/(?P<project>[^/]+)/global/"
                    r"images/(?:family/(?P<family>[^/]+)|(?P<name>[^/]+))$")


async def gcp_checks(p: GcpProvider) -> list[Finding]:
    kw = p.client_kwargs
    found = [Finding("credentials", True, f"found (project {p.project})")]
    zones, types = compute_v1.ZonesClient(**kw), compute_v1.MachineTypesClient(**kw)
    try:
        for zone in p.pool.regions:
            ok = await _exists(f"zone {zone}", found, lambda z=zone: zones.get(
                project=p.project, zone=z), f'no zone {zone} in project {p.project}: fix '
                '"regions" (zones such as "us-central1-a")')
            if not ok:
                continue
            for shape in p.pool.instance_types:
                await _exists(f"type {shape} in {zone}", found, lambda z=zone, t=shape:
                              types.get(project=p.project, zone=z, machine_type=t),
                              f'{shape} is not offered in {zone}: fix "instance_types"')
        found += await _image(p, compute_v1.ImagesClient(**kw))
    except CredentialsError as e:
        return [Finding("credentials", False, str(e))]
    return found


async def _image(p: GcpProvider, images: compute_v1.ImagesClient) -> list[Finding]:
    image = p.pool.image
    if not image:
        return [Finding("image", False, 'set "image" (e.g. projects/debian-cloud/global/'
                        'images/family/debian-12)')]
    m = _IMAGE.match(image)
    if m is None:
        return [Finding(f"image {image}", None, "not checked: give the image as "
                        "projects/PROJECT/global/images/NAME or .../images/family/FAMILY")]
    out: list[Finding] = []
    project = m.group("project")
    if m.group("family"):
        await _exists(f"image {image}", out, lambda: images.get_from_family(
            project=project, family=m.group("family")),
            f"no image family {m.group('family')} in project {project}: fix \"image\"")
    else:
        await _exists(f"image {image}", out, lambda: images.get(project=project,
                                                                 image=m.group("name")),
                      f"no image {m.group('name')} in project {project}: fix \"image\"")
    return out


async def _exists(check: str, out: list[Finding], call: Callable[[], Any],
                  missing: str) -> bool:
    """Run one read-only GET: found -> ok, 404 -> `missing`, credentials -> raise."""
    try:
        await asyncio.to_thread(call)
    except gexc.NotFound:
        out.append(Finding(check, False, missing))
        return False
    except (gexc.Unauthorized, auth_exc.DefaultCredentialsError, auth_exc.RefreshError) as e:
        raise CredentialsError(f"Google refused the credentials: {type(e).__name__}") from e
    except gexc.GoogleAPICallError as e:
        out.append(Finding(check, False, f"{e.code}: {e.message}"))
        return False
    out.append(Finding(check, True, "exists"))
    return True
