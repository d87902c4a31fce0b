"""The provider driver contract.

A driver manages the *instances* of one pool (or, for `local` and `static`, a fixed
inventory). It is small on purpose (GitLab fleeting has seven verbs, Karpenter's
CloudProvider a handful): everything else (placement, bootstrap, budgets) is the
controller's job.

Contract, method by method:

- `list_instances()` returns every instance this fleet owns in this pool, found by the
  ownership tags/labels (`czarina-fleet`, `czarina-pool`, `czarina-host`), including ones
  the store does not know (the controller adopts them). Terminated instances may be
  omitted. Read-only; safe to call any time.
- `launch(request)` starts one instance and returns it (state may still be pending).
  Must be idempotent on `request.idempotency_key`: calling it again with the same key
  returns the same instance, never a second one (AWS ClientToken, GCP requestId,
  deterministic Azure names). Raises `CapacityError` when the offering (shape + region)
  has no capacity or a spot price is too low (the controller tries the next offering),
  `QuotaError`, `CredentialsError`, `PermissionDenied`, `InvalidPoolConfig` for what a
  user must fix, and `TransientError` for throttling and 5xx (retried with backoff).
- `terminate(instance_id)` is idempotent: an instance already gone is success.
- `prices(shape, region, spot)` returns the current hourly price (USD).
- `interruption_notices()` returns instances the cloud has said it will reclaim (or
  already reclaimed): spot interruptions, and rebalance recommendations
  (`kind="rebalance"`). Empty for drivers without spot. `notices_handled()` is called
  once the controller has acted on them.
- `close()` releases clients.
- `doctor()` (optional) runs read-only checks for `czarina doctor`: credentials found,
  regions/zones, instance types and the image exist. It never creates anything.
- `foreign()` returns what the last list saw that looks like this fleet's but does not
  carry its exact mark (a VM of another fleet whose name flattens to the same GCP label,
  a VM named by our scheme without our tags): the controller reports it, never touches it.
- `leftovers()` returns resources made for a host (public IPs, NICs, disks, volumes)
  that carry this fleet's exact mark and whose host is gone; `delete_leftover(r)`
  deletes one (already gone is success). The controller's sweep deletes them after a
  grace period and writes each deletion to the event log.
- `self_shutdown` is the command a launched host's watchdog runs when it has not heard
  from its controller for `fleet.orphan_timeout_s` (see remote/watchdog.py).

Credentials come from each cloud's standard chain and are never logged.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # offerings.py imports this module
    from czarina_fleet.providers.offerings import LaunchAttempt

OWNER_TAG_FLEET = "czarina-fleet"
OWNER_TAG_POOL = "czarina-pool"
OWNER_TAG_HOST = "czarina-host"
# The fleet's identity (config/identity.py): the exact mark, never a display name.
OWNER_TAG_FLEET_ID = "czarina-fleet-id"


class InstanceState(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    STOPPING = "stopping"
    TERMINATED = "terminated"


@dataclass(frozen=True, slots=True)
class ConnectInfo:
    address: str
    port: int = 22
    user: str = "czarina"
    identity_file: str | None = None
    proxy_jump: str | None = None
    host_key: str | None = None  # an OpenSSH public key line when the driver knows it


@dataclass(frozen=True, slots=True)
class Instance:
    instance_id: str
    host_id: str
    pool: str
    state: InstanceState
    shape: str
    region: str
    spot: bool
    launched_at: float | None = None
    connect: ConnectInfo | None = None
    tags: dict[str, str] = field(default_factory=dict)
    interrupted: bool = False  # the cloud reclaimed it (spot)


@dataclass(frozen=True, slots=True)
class LaunchRequest:
    host_id: str
    fleet: str
    pool: str
    shape: str
    region: str
    spot: bool
    idempotency_key: str
    ssh_user: str = "czarina"
    ssh_public_key: str | None = None
    # A host key made by the controller for this host (OpenSSH private key text and its
    # public line), installed through cloud-init so the first connection is verified.
    # Kept out of repr: a request logged or shown in a traceback must not carry it.
    host_private_key: str | None = field(default=None, repr=False)
    host_public_key: str | None = None
    image: str | None = None
    max_price_per_hour: float | None = None
    options: dict[str, Any] = field(default_factory=dict)
    fleet_id: str = ""  # the fleet's identity (config/identity.py); "" in old callers

    def owner_tags(self) -> dict[str, str]:
        tags = {
            OWNER_TAG_FLEET: self.fleet, OWNER_TAG_POOL: self.pool, OWNER_TAG_HOST: self.host_id
        }
        if self.fleet_id:
            tags[OWNER_TAG_FLEET_ID] = self.fleet_id
        return tags


@dataclass(frozen=True, slots=True)
class OwnerMark:
    """The exact mark a driver recognises its resources by: the fleet id
    (config/identity.py) when the controller passes one (context `fleet_id`), else the
    fleet name (old callers, tests). Compared exactly, never in a flattened form."""

    fleet: str
    fleet_id: str = ""

    @property
    def key(self) -> str:
        return OWNER_TAG_FLEET_ID if self.fleet_id else OWNER_TAG_FLEET

    @property
    def value(self) -> str:
        return self.fleet_id or self.fleet

    def matches(self, tags: Mapping[str, str]) -> bool:
        return tags.get(self.key) == self.value

    def scope(self) -> str:
        """What names and idempotency tokens hash in, so two fleets never collide."""
        return self.value


@dataclass(frozen=True, slots=True)
class ForeignResource:
    """Something that looks like this fleet's but is not marked as exactly ours."""

    kind: str          # "instance", "nic", ...
    resource_id: str
    why: str


@dataclass(frozen=True, slots=True)
class Leftover:
    """A resource made for a host, marked as this fleet's, whose host is gone."""

    kind: str          # "public-ip", "nic", "disk", "volume", "network-interface"
    resource_id: str
    host_id: str
    created_at: float | None = None  # when the cloud says it was made, if it says


@dataclass(frozen=True, slots=True)
class PriceQuote:
    shape: str
    region: str
    spot: bool
    usd_per_hour: float
    source: str  # e.g. "AWS Price List API, fetched <UTC time>", "built-in table"


@dataclass(frozen=True, slots=True)
class InterruptionNotice:
    instance_id: str
    host_id: str
    reason: str
    deadline: float | None = None  # when the cloud will take it; None = already gone
    kind: str = "interruption"     # or "rebalance": at elevated risk, no deadline
    taken_at: float | None = None  # gone: when it was taken, if the cloud says (billing)
    ack: str | None = None         # what to acknowledge once acted upon (Azure EventId)


class ProviderError(Exception):
    """Base of every error a driver raises. `retryable` says whether to try again."""

    retryable = False


class TransientError(ProviderError):
    retryable = True


class CapacityError(ProviderError):
    """This offering (shape + region) cannot be had now; try another."""


class QuotaError(ProviderError):
    pass


class CredentialsError(ProviderError):
    pass


class PermissionDenied(ProviderError):
    def __init__(self, message: str, permission: str | None = None) -> None:
        super().__init__(message)
        self.permission = permission


class InvalidPoolConfig(ProviderError):
    """Unknown region, zone, instance type or image: the user must change the pool."""


class NotSupported(ProviderError):
    pass


@dataclass(frozen=True)
class Finding:
    """One read-only check of a pool for `czarina doctor`: ok True (passed), False
    (workers of this pool cannot start; `detail` says what to change), None (not checked)."""

    check: str
    ok: bool | None
    detail: str


class Provider(abc.ABC):
    """One pool's driver. Subclasses are registered under the
    `czarina_fleet.providers` entry point group and built with `from_pool`."""

    name: str = "base"
    # What a launched host runs to stop itself (see remote/watchdog.py): with
    # instance-initiated shutdown behaviour `terminate` (AWS) or a Spot VM's DELETE
    # action (GCP) a power-off ends the billing.
    # The login user may run exactly this as root (offerings.POWER_OFF_SUDO); images
    # whose default user has sudo (GCP's guest agent, Azure's admin user) allow it too.
    self_shutdown: str = "sudo -n /usr/sbin/shutdown -h now"

    @classmethod
    @abc.abstractmethod
    def from_pool(cls, pool: Any, fleet: str, **context: Any) -> Provider:
        """Build a driver for `pool` (a `PoolSpec`); `context` carries the clock and
        test-only endpoints."""

    @abc.abstractmethod
    async def list_instances(self) -> list[Instance]: ...

    @abc.abstractmethod
    async def launch(self, request: LaunchRequest) -> Instance: ...

    @abc.abstractmethod
    async def terminate(self, instance_id: str) -> None: ...

    @abc.abstractmethod
    async def prices(self, shape: str, region: str, spot: bool) -> PriceQuote: ...

    async def interruption_notices(self) -> list[InterruptionNotice]:
        return []

    async def forget_host_key(self, instance_id: str) -> bool:
        """Remove the host key the controller made from the instance's user data once
        the host is verified (it is in its known_hosts now). True when it removed it;
        False when there was none, or the cloud cannot change user data on a running
        instance (AWS, Azure: the default)."""
        return False

    async def doctor(self) -> list[Finding]:
        """Read-only checks of the pool (see the module docstring). Default: none."""
        return [Finding("driver", None, f"the {self.name} driver has no read-only checks")]
    def foreign(self) -> list[ForeignResource]:
        return []

    async def leftovers(self) -> list[Leftover]:
        return []

    async def delete_leftover(self, leftover: Leftover) -> None:
        raise NotSupported(f"{self.name} makes nothing beside its hosts")

    def launch_attempts(self) -> Sequence[LaunchAttempt]:
        """Every offering this driver has tried so far (outcome and why), oldest first;
        the executor writes a launch's attempts as events. Drivers without offering
        failover have none."""
        return ()

    async def notices_handled(self) -> None:
        """The controller has acted on the notices last returned (AWS: delete the queue
        messages they came in). Called after every step; default: nothing to do."""
        return None

    async def close(self) -> None:
        return None
