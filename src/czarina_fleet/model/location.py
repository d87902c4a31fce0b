"""The worker location grammar (5th field of WORKER_DEFINITIONS, or `location` in JSON).

    local | auto | pool:NAME
    remote:NAME                      a REMOTE_HOSTS / fleet host name or ~/.ssh/config alias
    remote:[USER@]HOST[:PORT]        IPv6 literals in brackets: remote:me@[2001:db8::1]:2222
    aws-spot:TYPE:REGION    aws-ondemand:TYPE:REGION     (aws:TYPE:REGION = on-demand)
    gcp-spot:TYPE:ZONE      gcp-ondemand:TYPE:ZONE       (gcp:TYPE:ZONE)
    azure-spot:SIZE:REGION  azure-ondemand:SIZE:REGION   (azure:SIZE:REGION)
    k8s:TEMPLATE[:POD]

`parse_location` is syntax only. Whether a `remote:NAME` names a known host is checked
by the config loader, which knows REMOTE_HOSTS and the SSH config.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Literal

from czarina_fleet.errors import UserError, did_you_mean

CloudName = Literal["aws", "gcp", "azure"]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
_USER = re.compile(r"^[a-z_][a-z0-9_.-]{0,31}$", re.IGNORECASE)
_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
)
_SHAPES: dict[CloudName, tuple[re.Pattern[str], str, re.Pattern[str], str]] = {
    "aws": (
        re.compile(r"^[a-z][a-z0-9-]*\.[a-z0-9]+$"), "an instance type such as t3.large",
        re.compile(r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d+$"), "a region such as us-east-1",
    ),
    "gcp": (
        re.compile(r"^[a-z][a-z0-9]*-[a-z0-9-]+$"), "a machine type such as e2-standard-4",
        re.compile(r"^[a-z]+-[a-z]+\d+-[a-z]$"), "a zone such as us-central1-a",
    ),
    "azure": (
        re.compile(r"^[A-Za-z][A-Za-z0-9_]+$"), "a VM size such as Standard_D2s_v5",
        re.compile(r"^[a-z][a-z0-9]+$"), "a region such as eastus",
    ),
}
KEYWORDS = ["local", "auto", "pool", "remote", "k8s"] + [
    f"{c}{m}" for c in _SHAPES for m in ("", "-spot", "-ondemand")
]


@dataclass(frozen=True, slots=True)
class LocalLocation:
    kind: Literal["local"] = "local"

    def __str__(self) -> str:
        return "local"


@dataclass(frozen=True, slots=True)
class AutoLocation:
    """Placed by the controller on the least-loaded eligible host (or a pool's new host)."""

    kind: Literal["auto"] = "auto"

    def __str__(self) -> str:
        return "auto"


@dataclass(frozen=True, slots=True)
class PoolLocation:
    pool: str
    kind: Literal["pool"] = "pool"

    def __str__(self) -> str:
        return f"pool:{self.pool}"


@dataclass(frozen=True, slots=True)
class RemoteLocation:
    """Either a host name to resolve (`name`) or a literal `[user@]host[:port]`."""

    host: str
    user: str | None = None
    port: int | None = None
    kind: Literal["remote"] = "remote"

    @property
    def is_bare_name(self) -> bool:
        """Written as `remote:NAME` alone: may name a configured host or an SSH alias."""
        return self.user is None and self.port is None

    @property
    def is_literal(self) -> bool:
        """True when written as user@host, host:port, an address or a dotted host name
        (not a bare alias)."""
        if not self.is_bare_name or "." in self.host:
            return True
        try:
            ipaddress.ip_address(self.host)
            return True
        except ValueError:
            return False

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        user = f"{self.user}@" if self.user else ""
        port = f":{self.port}" if self.port is not None else ""
        return f"remote:{user}{host}{port}"


@dataclass(frozen=True, slots=True)
class CloudLocation:
    cloud: CloudName
    spot: bool
    shape: str
    region: str  # a zone for GCP
    kind: Literal["cloud"] = "cloud"

    def __str__(self) -> str:
        return f"{self.cloud}-{'spot' if self.spot else 'ondemand'}:{self.shape}:{self.region}"


@dataclass(frozen=True, slots=True)
class K8sLocation:
    template: str
    pod: str | None = None
    kind: Literal["k8s"] = "k8s"

    def __str__(self) -> str:
        return f"k8s:{self.template}" + (f":{self.pod}" if self.pod else "")


Location = (
    LocalLocation | AutoLocation | PoolLocation | RemoteLocation | CloudLocation | K8sLocation
)


def parse_location(text: str) -> Location:
    """Parse one location. Raises `UserError` (without `where`) saying what to change."""
    text = text.strip()
    if text in ("", "local"):
        return LocalLocation()
    if text == "auto":
        return AutoLocation()
    head, sep, rest = text.partition(":")
    if head == "pool" and sep:
        return PoolLocation(_check_name(rest, "pool name"))
    if head == "remote" and sep:
        return _parse_remote(rest)
    if head == "k8s" and sep:
        parts = rest.split(":")
        if len(parts) > 2 or not all(_NAME.match(p) for p in parts):
            raise UserError(f'bad location "{text}": expected k8s:TEMPLATE[:POD]')
        return K8sLocation(parts[0], parts[1] if len(parts) == 2 else None)
    cloud, _, market = head.partition("-")
    if cloud in _SHAPES and market in ("", "spot", "ondemand", "on-demand") and sep:
        return _parse_cloud(text, cloud, market == "spot", rest)  # type: ignore[arg-type]
    hint = did_you_mean(head if sep else text, KEYWORDS)
    if hint and sep:  # suggest the whole corrected location, not just its keyword
        hint = hint.replace('"?', f':{rest}"?')
    raise UserError(
        f'unknown location "{text}": use local, auto, pool:NAME, remote:HOST, '
        f"aws-spot:TYPE:REGION, gcp-spot:TYPE:ZONE, azure-spot:SIZE:REGION or k8s:...{hint}"
    )


def _check_name(name: str, what: str) -> str:
    if not _NAME.match(name):
        raise UserError(f'bad {what} "{name}": use letters, digits, ".", "_" and "-"')
    return name


def _parse_remote(spec: str) -> RemoteLocation:
    user: str | None = None
    if "@" in spec:
        user, _, spec = spec.rpartition("@")
        if not _USER.match(user):
            raise UserError(f'bad user name "{user}" in remote:{user}@{spec}')
    port_text: str | None = None
    if spec.startswith("["):
        host, sep, tail = spec[1:].partition("]")
        if not sep or (tail and not tail.startswith(":")):
            raise UserError(f'bad host "{spec}": write IPv6 addresses as [ADDR] or [ADDR]:PORT')
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise UserError(f'bad IPv6 address "{host}" in remote:{spec}') from None
        port_text = tail[1:] if tail else None
    else:
        if spec.count(":") > 1:
            raise UserError(f'bad host "{spec}": write IPv6 addresses in brackets, [ADDR]:PORT')
        host, sep, port_part = spec.partition(":")
        port_text = port_part if sep else None
        if not _HOSTNAME.match(host):
            raise UserError(f'bad host "{host}": expected remote:[USER@]HOST[:PORT]')
    port = parse_port(port_text, f"remote:{spec}") if port_text is not None else None
    return RemoteLocation(host=host, user=user, port=port)


def parse_port(text: str, context: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise UserError(f'port "{text}" in {context} is out of range: use 1-65535')
    return int(text)


def _parse_cloud(text: str, cloud: CloudName, spot: bool, rest: str) -> CloudLocation:
    shape, sep, region = rest.partition(":")
    shape_re, shape_help, region_re, region_help = _SHAPES[cloud]
    if not sep:
        raise UserError(f'bad location "{text}": expected {cloud}-spot:TYPE:REGION')
    if not shape_re.match(shape):
        raise UserError(f'bad location "{text}": "{shape}" is not {shape_help}')
    if not region_re.match(region):
        raise UserError(f'bad location "{text}": "{region}" is not {region_help}')
    return CloudLocation(cloud=cloud, spot=spot, shape=shape, region=region)
