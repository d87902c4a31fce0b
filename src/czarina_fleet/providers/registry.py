"""Find provider drivers by entry point, so a third party can ship one.

A package registers a driver in its own `pyproject.toml`:

    [project.entry-points."czarina_fleet.providers"]
    mycloud = "mycloud_driver:MyCloudProvider"

and a pool with `"provider": "mycloud"` then uses it. See docs/providers.md.
"""

from __future__ import annotations

from importlib.metadata import EntryPoint, entry_points
from typing import Any

from czarina_fleet.errors import UserError, did_you_mean
from czarina_fleet.providers.base import Provider

ENTRY_POINT_GROUP = "czarina_fleet.providers"


def available_drivers() -> dict[str, EntryPoint]:
    """Every installed driver, by name (the pool's `provider` field)."""
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def load_driver(name: str) -> type[Provider]:
    """The driver class registered as `name`.

    Raises `UserError` when no driver has that name (with a did-you-mean) or when the
    entry point does not load or is not a `Provider` subclass (a broken plugin)."""
    drivers = available_drivers()
    ep = drivers.get(name)
    if ep is None:
        known = ", ".join(sorted(drivers)) or "none"
        raise UserError(
            f'unknown provider "{name}"{did_you_mean(name, drivers)} (installed: {known}); '
            f'install the package that provides it or fix the pool\'s "provider" field'
        )
    try:
        cls = ep.load()
    except Exception as exc:  # a plugin can fail in any way while importing
        raise UserError(
            f'provider "{name}" ({ep.value}) could not be loaded: {type(exc).__name__}: {exc}'
        ) from exc
    if not (isinstance(cls, type) and issubclass(cls, Provider)):
        raise UserError(
            f'provider "{name}" ({ep.value}) is not a czarina_fleet.providers.base.Provider '
            f"subclass"
        )
    return cls


def build_provider(pool: Any, fleet: str, **context: Any) -> Provider:
    """Build the driver for one pool (a `PoolSpec`). `context` is passed through to
    `from_pool` (clock, test endpoints, pre-built clients)."""
    return load_driver(pool.provider).from_pool(pool, fleet, **context)
