"""Static hosts: machines reached over SSH that are always there.

They come from REMOTE_HOSTS (config.sh), `fleet.hosts` (config.json) and literal
`remote:[USER@]HOST[:PORT]` worker locations. They cannot be launched or terminated;
`list_instances` reports each one (its reachability is the probe's business).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from czarina_fleet.model.config import StaticHost
from czarina_fleet.model.location import RemoteLocation
from czarina_fleet.providers.base import (
    ConnectInfo,
    Instance,
    InstanceState,
    LaunchRequest,
    NotSupported,
    PriceQuote,
    Provider,
)
from czarina_fleet.remote.hosts import SshHost

POOL = "static"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def literal_host(location: RemoteLocation, slots: int = 2) -> StaticHost:
    """A StaticHost for a literal `remote:[USER@]HOST[:PORT]` location. Its name is the
    location without `remote:`, made name-safe (`me@gpu.lan:2222` -> `me-gpu.lan-2222`)."""
    text = str(location).removeprefix("remote:")
    name = _UNSAFE.sub("-", text).strip("-.")[:63] or "host"
    return StaticHost(name=name, host=location.host, user=location.user, port=location.port,
                      slots=slots)


def static_hosts(config: Any) -> list[StaticHost]:
    """Every static host of a FleetConfig: fleet.hosts (REMOTE_HOSTS) first, then one per
    distinct literal remote location of a worker."""
    hosts: dict[str, StaticHost] = {h.name: h for h in config.fleet.hosts}
    for worker in config.workers:
        location = worker.location
        if isinstance(location, RemoteLocation) and location.is_literal:
            host = literal_host(location)
            hosts.setdefault(host.name, host)
    return list(hosts.values())


class StaticHostProvider(Provider):
    name = "static"

    def __init__(self, hosts: Iterable[StaticHost], fleet: str = "") -> None:
        self.fleet = fleet
        self.hosts = {h.name: h for h in hosts}

    @classmethod
    def from_pool(cls, pool: Any, fleet: str, **context: Any) -> StaticHostProvider:
        """`context` carries `config` (a FleetConfig) or `hosts` (StaticHost list)."""
        if context.get("config") is not None:
            return cls(static_hosts(context["config"]), fleet)
        return cls(context.get("hosts", ()), fleet)

    @classmethod
    def from_config(cls, config: Any) -> StaticHostProvider:
        return cls(static_hosts(config), config.fleet_name)

    def ssh_hosts(self, known_hosts: str | None = None) -> list[SshHost]:
        """The hosts as the SSH pool wants them."""
        return [SshHost.from_static(h, known_hosts) for h in self.hosts.values()]

    async def list_instances(self) -> list[Instance]:
        return [self._instance(h) for h in self.hosts.values()]

    async def launch(self, request: LaunchRequest) -> Instance:
        raise NotSupported("static hosts are always there: add one to fleet.hosts or "
                           "REMOTE_HOSTS instead of launching it")

    async def terminate(self, instance_id: str) -> None:
        raise NotSupported(f"static host {instance_id} cannot be terminated by czarina")

    async def prices(self, shape: str, region: str, spot: bool) -> PriceQuote:
        return PriceQuote(shape, region, spot, 0.0, "static")

    def _instance(self, host: StaticHost) -> Instance:
        return Instance(
            instance_id=host.name, host_id=host.name, pool=POOL, state=InstanceState.RUNNING,
            shape="static", region="static", spot=False,
            # user "" = whatever ~/.ssh/config (or the local user name) says
            connect=ConnectInfo(address=host.host, port=host.port or 22, user=host.user or "",
                                identity_file=host.identity_file, proxy_jump=host.proxy_jump),
            tags={"slots": str(host.slots), "work_dir": host.work_dir,
                  "trust_on_first_use": str(host.trust_on_first_use).lower()},
        )
