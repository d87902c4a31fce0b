"""The store's own errors (the state tables raise them; callers import them from
`store`)."""

from __future__ import annotations

from czarina_fleet.errors import FleetError


class StoreError(FleetError):
    pass


class UnknownEntity(FleetError, KeyError):
    pass
