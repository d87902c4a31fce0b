"""GCP helpers: names, labels, the price table, credentials and error mapping (kept out
of gcp.py so the driver reads top-down)."""

from __future__ import annotations

import hashlib
import re
from typing import Any

from google.api_core import exceptions as gexc
from google.auth import exceptions as auth_exc

from czarina_fleet.providers.base import (
    CapacityError,
    CredentialsError,
    InvalidPoolConfig,
    PermissionDenied,
    PriceQuote,
    ProviderError,
    QuotaError,
    TransientError,
)
from czarina_fleet.providers.offerings import catalog_quote
from czarina_fleet.providers.price_sources import PriceBook, gcp_catalog, http_get_json

PREEMPTED = "compute.instances.preempted"
# USD/hour in us-central1 (on-demand, spot), 2024 list prices. A small built-in table:
# the Cloud Billing Catalog API would need another permission and API to enable.
CATALOG: dict[str, tuple[float, float]] = {
    "e2-small": (0.0168, 0.0050), "e2-medium": (0.0335, 0.0101),
    "e2-standard-2": (0.0670, 0.0201), "e2-standard-4": (0.1340, 0.0402),
    "n2-standard-2": (0.0971, 0.0235), "n2-standard-4": (0.1942, 0.0470),
    "n2d-standard-2": (0.0845, 0.0102), "c3-standard-4": (0.2006, 0.0181),
}
# The IAM permission each API method needs: what a 403 names.
PERMISSIONS = {
    "compute.instances.insert": "compute.instances.create",
    "compute.instances.list": "compute.instances.list",
    "compute.instances.get": "compute.instances.get",
    "compute.instances.delete": "compute.instances.delete",
    "compute.instances.setMetadata": "compute.instances.setMetadata",
    "compute.zoneOperations.get": "compute.zoneOperations.get",
    "compute.zoneOperations.list": "compute.zoneOperations.list",
    # `czarina doctor` only (read-only)
    "compute.zones.get": "compute.zones.get",
    "compute.machineTypes.get": "compute.machineTypes.get",
    "compute.images.get": "compute.images.get",
    "compute.images.getFromFamily": "compute.images.getFromFamily",
}
CAPACITY_CODES = frozenset({
    "ZONE_RESOURCE_POOL_EXHAUSTED", "ZONE_RESOURCE_POOL_EXHAUSTED_WITH_DETAILS",
    "RESOURCE_POOL_EXHAUSTED", "STOCKOUT", "RESOURCE_NOT_AVAILABLE",
})
QUOTA_CODES = frozenset({"QUOTA_EXCEEDED", "quotaExceeded"})
CONFIG_CODES = frozenset({
    "RESOURCE_NOT_FOUND", "INVALID_FIELD_VALUE", "NOT_FOUND", "INVALID_USAGE",
})


class GcpNotFound(InvalidPoolConfig):
    """404: an unknown zone, machine type or image on insert; 'already gone' on delete."""


class GcpConflict(InvalidPoolConfig):
    """409: a VM of that name exists already (an earlier launch with the same host id)."""


def vm_name(pool: str, host_id: str, fleet: str = "") -> str:
    """A valid, deterministic VM name (`^[a-z]([-a-z0-9]*[a-z0-9])?$`, at most 63). The
    digest covers the exact fleet: two fleets with the same pool and host ids in one
    project never collide on a name (a collision would adopt the other fleet's VM)."""
    slug = re.sub(r"[^a-z0-9-]+", "-", host_id.lower()).strip("-")[:36] or "host"
    scope = f"{fleet}\x1f{pool}\x1f{host_id}" if fleet else f"{pool}\x1f{host_id}"
    digest = hashlib.sha256(scope.encode()).hexdigest()[:6]
    return f"cz-{pool[:16]}-{slug}-{digest}"


def label_value(value: str) -> str:
    """GCP label values: lowercase letters, digits, `_` and `-`, at most 63."""
    return re.sub(r"[^a-z0-9_-]", "_", value.lower())[:63]


def map_api_error(exc: gexc.GoogleAPICallError, method: str, pool: str) -> ProviderError:
    reasons = {str(e.get("reason", "")) for e in (exc.errors or []) if isinstance(e, dict)}
    text = f"{exc.code} {exc.message}"
    where = f'pool "{pool}"'
    if isinstance(exc, gexc.Unauthorized):
        return CredentialsError(
            "Google rejected the credentials: refresh Application Default Credentials "
            "(`gcloud auth application-default login`)")
    if "quotaExceeded" in reasons or "QUOTA_EXCEEDED" in text:
        return QuotaError(f"{where}: {exc.message}; request a quota increase or lower max_hosts")
    if isinstance(exc, gexc.TooManyRequests | gexc.ServerError) or "rateLimitExceeded" in reasons:
        return TransientError(f"{method}: {text}")
    if isinstance(exc, gexc.Forbidden):
        permission = PERMISSIONS.get(method, method)
        return PermissionDenied(
            f"{where}: the credentials lack {permission}: grant it (see docs/permissions.md "
            f"and terraform-examples/gcp)", permission)
    if isinstance(exc, gexc.NotFound):
        return GcpNotFound(f"{where}: {exc.message}; check the zone, machine type, image and "
                           f"network in the pool")
    if isinstance(exc, gexc.Conflict):
        return GcpConflict(f"{where}: {exc.message}")
    if isinstance(exc, gexc.BadRequest):
        return InvalidPoolConfig(f"{where}: {exc.message}; check the pool's settings")
    return ProviderError(f"{method}: {text}")


def map_operation_error(error: Any, zone: str, pool: str) -> ProviderError:
    """An error inside a DONE operation (capacity shows up here, not as an HTTP error)."""
    code, message = str(error.code), str(error.message)
    if code in CAPACITY_CODES:
        return CapacityError(f"{code}: {message}")
    if code in QUOTA_CODES:
        return QuotaError(f'pool "{pool}", {zone}: {code}: {message}; request a quota increase')
    if code in CONFIG_CODES:
        return InvalidPoolConfig(f'pool "{pool}", {zone}: {code}: {message}')
    return ProviderError(f"operation in {zone} failed: {code}: {message}")



async def quote(book: PriceBook, catalog: tuple[str, str] | None, shape: str, zone: str,
                spot: bool) -> PriceQuote:
    """The Cloud Billing Catalog's core and RAM prices (cached in `book`; `catalog` is
    its URL and API key, None: not asked), else the built-in table."""
    fetch = None
    if catalog is not None:
        url, key = catalog
        fetch = lambda: gcp_catalog(http_get_json(), shape, zone, spot, key, url)  # noqa: E731
    got = await book.lookup(
        f"gcp/{shape}/{zone}/{'spot' if spot else 'od'}", "Cloud Billing Catalog API", fetch)
    if got is not None:
        return PriceQuote(shape, zone, spot, got.usd_per_hour, got.label())
    return catalog_quote(CATALOG, shape, zone, spot)


ADC_HINT = ("no usable Google credentials: run `gcloud auth application-default login`, "
            "or set GOOGLE_APPLICATION_CREDENTIALS to a service-account key file")


def adc() -> tuple[Any, str | None]:
    """Application Default Credentials and their project; CredentialsError if none."""
    import google.auth

    try:
        credentials, project = google.auth.default(
            scopes=["https://www.googleapis.com/auth/compute"])
    except auth_exc.DefaultCredentialsError as exc:
        raise CredentialsError(ADC_HINT) from exc
    return credentials, project
