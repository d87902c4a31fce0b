"""Shared launch bookkeeping for the cloud drivers: offerings, failover and retries.

An *offering* is one (instance type, region or zone, spot or on-demand) triple. When a
cloud says an offering has no capacity (or no quota), `OfferingBook` marks it unavailable
for a cool-down on the injected clock, so the next launch does not hammer it again, and
`launch_with_failover` moves on to the next offering in the pool's preference order.
Every attempt is appended to a `launch_log` the controller turns into events, so a user
can see *why* a host came up in their third-choice region.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from czarina_fleet.clock import Clock
from czarina_fleet.providers.base import (
    CapacityError,
    Instance,
    InvalidPoolConfig,
    LaunchRequest,
    PriceQuote,
    QuotaError,
    TransientError,
)

T = TypeVar("T")
DEFAULT_COOLDOWN_S = 300.0


@dataclass(frozen=True, slots=True)
class Offering:
    shape: str
    region: str
    spot: bool

    def label(self) -> str:
        return f"{self.shape}@{self.region}/{'spot' if self.spot else 'on-demand'}"


@dataclass(frozen=True, slots=True)
class LaunchAttempt:
    """One try at one offering; `outcome` is launched, capacity, quota, timeout or skipped."""

    at: float
    host_id: str
    offering: Offering
    outcome: str
    reason: str = ""


class OfferingBook:
    """Which offerings are cooling down after a capacity or quota error."""

    def __init__(self, clock: Clock, cooldown_s: float = DEFAULT_COOLDOWN_S) -> None:
        self._clock = clock
        self._cooldown_s = cooldown_s
        self._until: dict[Offering, float] = {}
        self._why: dict[Offering, str] = {}

    def mark_unavailable(self, offering: Offering, reason: str) -> None:
        self._until[offering] = self._clock.now() + self._cooldown_s
        self._why[offering] = reason

    def is_available(self, offering: Offering) -> bool:
        return self._clock.now() >= self._until.get(offering, 0.0)

    def why(self, offering: Offering) -> str:
        return self._why.get(offering, "")

    def candidates(
        self, first: Offering, shapes: Sequence[str], regions: Sequence[str],
        spot: bool, on_demand_fallback: bool,
    ) -> Iterator[Offering]:
        """`first` (the request's own offering), then every other one in preference order:
        regions outer (geography matters more than shape), shapes inner; spot before the
        on-demand fallback, which is only offered when the pool allows it."""
        markets = [spot] + ([False] if spot and on_demand_fallback else [])
        seen: set[Offering] = set()
        ordered = [first] + [
            Offering(s, r, m) for m in markets for r in regions for s in shapes
        ]
        for offering in ordered:
            if offering not in seen:
                seen.add(offering)
                yield offering


Attempt = Callable[[Offering], Awaitable[Instance]]


async def launch_with_failover(
    request: LaunchRequest, book: OfferingBook, pool: Any,
    attempt: Attempt, log: list[LaunchAttempt], clock: Clock,
) -> Instance:
    """Try the request's offering, then each other available one of `pool` (a PoolSpec)
    in preference order, until one launches. `attempt` raises CapacityError, QuotaError
    or LaunchTimeout to move on; anything else (credentials, permissions, a bad pool) is
    the user's to fix and propagates at once."""
    offerings = book.candidates(
        Offering(request.shape, request.region, request.spot), pool.instance_types,
        pool.regions, request.spot, pool.on_demand_fallback)
    failures: list[str] = []
    only_quota = True
    for offering in offerings:
        if not book.is_available(offering):
            reason = f"cooling down after: {book.why(offering)}"
            log.append(LaunchAttempt(clock.now(), request.host_id, offering, "skipped", reason))
            failures.append(f"{offering.label()}: {reason}")
            continue
        try:
            instance = await attempt(offering)
        except (CapacityError, QuotaError, LaunchTimeout) as exc:
            kind = {QuotaError: "quota", LaunchTimeout: "timeout"}.get(type(exc), "capacity")
            only_quota = only_quota and kind == "quota"
            book.mark_unavailable(offering, str(exc))
            log.append(LaunchAttempt(clock.now(), request.host_id, offering, kind, str(exc)))
            failures.append(f"{offering.label()}: {exc}")
            continue
        log.append(LaunchAttempt(clock.now(), request.host_id, offering, "launched"))
        return instance
    summary = "; ".join(failures) or "no offerings configured"
    if failures and only_quota:
        raise QuotaError(f"every offering is over quota ({summary}): request a quota increase")
    raise CapacityError(f"no offering could be launched for {request.host_id}: {summary}")


class LaunchTimeout(CapacityError):
    """The instance did not come up within the per-region timeout."""


async def with_retries(
    call: Callable[[], Awaitable[T]], clock: Clock, attempts: int = 5, base_s: float = 1.0,
    cap_s: float = 30.0,
) -> T:
    """Run `call`, retrying `TransientError` (throttling, 5xx) with exponential backoff on
    the injected clock; the last error propagates."""
    for n in range(attempts):
        try:
            return await call()
        except TransientError:
            if n == attempts - 1:
                raise
            await clock.sleep(min(cap_s, base_s * 2**n))
    raise AssertionError("unreachable")  # pragma: no cover


async def wait_until(
    check: Callable[[], Awaitable[T | None]], clock: Clock, timeout_s: float,
    interval_s: float, what: str,
) -> T:
    """Call `check` until it returns a value; raise LaunchTimeout after `timeout_s` of
    (injected) clock time. Each check is one real status read, so progress does not
    depend on how fast a fake clock runs."""
    deadline = clock.now() + timeout_s
    while True:
        result = await check()
        if result is not None:
            return result
        if clock.now() >= deadline:
            raise LaunchTimeout(f"{what} did not come up within {timeout_s:g}s")
        await clock.sleep(interval_s)


def stable_token(*parts: str, length: int = 32) -> str:
    """A short deterministic token (hex) from the idempotency key and offering."""
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:length]


def stable_uuid(*parts: str) -> str:
    """A deterministic UUID (GCP requestId must be a UUID)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "czarina-fleet:" + "\x1f".join(parts)))


_SSH_USER = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
_SSH_KEY = re.compile(
    r"^(ssh-(rsa|ed25519|dss)|ecdsa-sha2-[a-z0-9-]+|sk-[a-z0-9@.-]+) [A-Za-z0-9+/=]+( [^\r\n]*)?$"
)


def checked_ssh_identity(user: str, public_key: str | None) -> tuple[str, str | None]:
    """Validate the SSH user and public key before they go into user data or metadata,
    so neither can smuggle in YAML, extra metadata lines or shell syntax."""
    if not _SSH_USER.match(user):
        raise InvalidPoolConfig(
            f'ssh_user "{user}" is not a valid login name: use lowercase letters, digits, _ or -'
        )
    if public_key is not None:
        public_key = public_key.strip()
        if not _SSH_KEY.match(public_key):
            raise InvalidPoolConfig(
                "the SSH public key is not one OpenSSH public key line (type, base64, comment)"
            )
    return user, public_key


# The one sudoers rule the login user gets (cloud-init `users[].sudo`): power off.
POWER_OFF = "/usr/sbin/shutdown -h now"
POWER_OFF_SUDO = f"ALL=(root) NOPASSWD: {POWER_OFF}"

_PRIVATE_KEY = re.compile(
    r"^-----BEGIN OPENSSH PRIVATE KEY-----\n[A-Za-z0-9+/=\n]+-----END OPENSSH PRIVATE KEY-----\n?$"
)


def cloud_config(user: str | None, public_key: str | None,
                 host_private_key: str | None = None, host_public_key: str | None = None) -> str:
    """cloud-init user data: the login user with its key (when `user` is given) and the
    host key the controller made for this host (when given), so that the controller can
    verify the very first connection instead of trusting it. Every value is validated,
    then JSON-quoted (JSON is YAML): nothing can add YAML or shell syntax."""
    lines = ["#cloud-config"]
    if user is not None and public_key:
        user, public_key = checked_ssh_identity(user, public_key)
        # Root for one command only: the orphan watchdog's power-off (remote/watchdog.py).
        # Nothing else the fleet runs as this user needs root (git, tmux and the agent
        # run as the user; packages come with the image).
        lines += ["users:", "  - default", f"  - name: {json.dumps(user)}",
                  "    shell: /bin/bash", f"    sudo: {json.dumps(POWER_OFF_SUDO)}",
                  f"    ssh_authorized_keys: [{json.dumps(public_key)}]"]
    if host_private_key and host_public_key:
        if not _PRIVATE_KEY.match(host_private_key) or not host_public_key.startswith(
                "ssh-ed25519 ") or not _SSH_KEY.match(host_public_key.strip()):
            raise InvalidPoolConfig("the generated host key is not an OpenSSH ed25519 key pair")
        lines += ["ssh_deletekeys: true", "ssh_genkeytypes: []", "ssh_keys:",
                  f"  ed25519_private: {json.dumps(host_private_key)}",
                  f"  ed25519_public: {json.dumps(host_public_key.strip())}"]
    return "\n".join(lines) + "\n"


def catalog_quote(catalog: Mapping[str, tuple[float, float]], shape: str, region: str,
                  spot: bool) -> PriceQuote:
    """The built-in (on-demand, spot) price of `shape`, for clouds whose prices we do
    not query. Raises InvalidPoolConfig naming the shapes it knows."""
    if shape not in catalog:
        raise unknown_shape(shape, catalog)
    on_demand, spot_price = catalog[shape]
    return PriceQuote(shape, region, spot, spot_price if spot else on_demand, "built-in table")


def unknown_shape(shape: str, known: Iterable[str]) -> InvalidPoolConfig:
    return InvalidPoolConfig(f'no built-in price for "{shape}"; set max_price_per_hour or '
                             f"use one of: {', '.join(sorted(known))}")
