"""The `lab` provider: real hosts on this machine, one network namespace each, with its
own sshd, user and work directory (czarina_fleet.remote.netns). Needs root. It lets a
user without a cloud account watch the whole loop (launch, bootstrap, idle shutdown).

Pool options (all optional): `price_per_hour` (default 0, to exercise the cost ledger),
`lab_root` (where host state lives, default /run/czarina-lab), `metadata` (the cloud
whose instance metadata service each host serves inside its namespace, for spot
notices: aws, gcp or azure; default aws; "none" for no service).
A host interrupted with `czarina lab interrupt` is reported as a cloud reports a
reclaimed instance, with the moment it was taken (billing ends there).
Instances are found again after a controller restart (or a lost state database) by
their meta.json files, which carry the fleet's identity (`fleet_id`, the ownership
mark), the fleet name, the pool and the idempotency key. Only hosts carrying this
fleet's identity are listed, launched again or torn down; a host with this fleet's name
but another identity (or none: made before identities) is logged, never touched.

A lab host cannot power itself off (it shares this machine's kernel), so its
`self_shutdown` (what the orphan watchdog runs, remote/watchdog.py) leaves a power-off
mark in the lab user's home, and the next list tears the host down: the lab's version
of AWS's instance-initiated shutdown behaviour `terminate`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any

from czarina_fleet.providers.base import (
    OWNER_TAG_FLEET,
    OWNER_TAG_FLEET_ID,
    OWNER_TAG_HOST,
    OWNER_TAG_POOL,
    ConnectInfo,
    Finding,
    ForeignResource,
    Instance,
    InstanceState,
    InterruptionNotice,
    InvalidPoolConfig,
    LaunchRequest,
    PermissionDenied,
    PriceQuote,
    Provider,
    TransientError,
)
from czarina_fleet.remote import lab_spot, netns
from czarina_fleet.remote.lab_command import LabError
from czarina_fleet.remote.lab_sshd import SSHD

log = logging.getLogger(__name__)
SHAPE = "netns"
REGION = "local"
TAKEN_REASON = "lab host interrupted (czarina lab interrupt)"
POWEROFF_MARK = ".czarina-lab-poweroff"


class LabProvider(Provider):
    name = "lab"
    self_shutdown = f': > "$HOME/{POWEROFF_MARK}"'

    def __init__(self, fleet: str, pool: str, *, price_per_hour: float = 0.0,
                 root: Path = netns.LAB_ROOT, clock: Any = None,
                 metadata: str | None = "aws", fleet_id: str = "") -> None:
        self.fleet = fleet
        self.fleet_id = fleet_id
        self._foreign: list[ForeignResource] = []  # look-alikes seen at the last listing
        self.pool = pool
        self.price_per_hour = price_per_hour
        self.root = root
        self._clock = clock
        self.metadata = metadata

    @classmethod
    def from_pool(cls, pool: Any, fleet: str, **context: Any) -> LabProvider:
        options = dict(getattr(pool, "options", {}) or {})
        try:
            price = float(options.get("price_per_hour", 0.0))
        except (TypeError, ValueError):
            raise InvalidPoolConfig(
                f'pool "{pool.name}": options.price_per_hour must be a number') from None
        root = Path(options.get("lab_root") or context.get("lab_root") or netns.LAB_ROOT)
        return cls(fleet, pool.name, price_per_hour=price, root=root,
                   clock=context.get("clock"), metadata=metadata_cloud(pool.name, options),
                   fleet_id=context.get("fleet_id") or "")

    async def list_instances(self) -> list[Instance]:
        hosts = await asyncio.to_thread(self._hosts)
        return [self._instance(h) for h in hosts]

    def _mine(self) -> list[netns.LabHost]:
        """This pool's hosts carrying this fleet's mark; look-alikes go to `foreign()`."""
        mine, foreign = [], []
        for host in netns.list_hosts(self.root, self.fleet):
            if host.pool != self.pool:
                continue
            if host.fleet_id != self.fleet_id:
                why = (f"lab host {host.host_id} of a fleet named {self.fleet} carries "
                       + (f"identity {host.fleet_id}" if host.fleet_id else "no identity"))
                foreign.append(ForeignResource("instance", host.namespace, why))
                continue
            mine.append(host)
        self._foreign = foreign
        return mine

    def foreign(self) -> list[ForeignResource]:
        return list(self._foreign)

    def _hosts(self) -> list[netns.LabHost]:
        found = []
        for host in self._mine():
            if netns.abandoned(host):
                # A controller killed inside `launch` left it half-made: there is no
                # machine to adopt. Tear it down, so the intent is rolled back and the
                # namespace is not orphaned.
                netns.destroy_host(host)
                continue
            if Path(host.home, POWEROFF_MARK).exists():
                netns.destroy_host(host)  # it shut itself down: terminated, as on AWS
                continue
            found.append(host)
        return found

    async def launch(self, request: LaunchRequest) -> Instance:
        """Make a namespace host; the same idempotency key returns the same host."""
        try:
            host = await asyncio.to_thread(
                netns.create_host, self.fleet, request.host_id, root=self.root,
                intent_key=request.idempotency_key, pool=self.pool,
                fleet_id=self.fleet_id)
            if self.metadata is not None:
                await asyncio.to_thread(lab_spot.start_metadata, host, self.metadata)
        except LabError as exc:
            if "need root" in str(exc):
                raise PermissionDenied(f"lab pool {self.pool}: {exc}", "root") from None
            raise TransientError(f"lab pool {self.pool}: {exc}") from None
        return self._instance(host)

    async def terminate(self, instance_id: str) -> None:
        """Tear the host down; an unknown or already removed host is success."""
        for host in await asyncio.to_thread(self._mine):
            if host.namespace == instance_id:
                await asyncio.to_thread(netns.destroy_host, host)

    async def interruption_notices(self) -> list[InterruptionNotice]:
        """Hosts taken with `czarina lab interrupt` (in the last day), with when. A host
        id used again by a host made after that is not reported."""
        day_ago = (self._clock.now() if self._clock is not None else time.time()) - 86400
        taken, hosts = await asyncio.to_thread(
            lambda: (lab_spot.taken(self.root, self.fleet, self.pool, day_ago,
                                    self.fleet_id), self._mine()))
        newer = {h.host_id: h.created_at for h in hosts}
        return [InterruptionNotice(t.namespace, t.host_id, TAKEN_REASON, None, taken_at=t.at)
                for t in taken if newer.get(t.host_id, 0.0) <= t.at]

    async def doctor(self) -> list[Finding]:
        """What making a lab host needs on this machine (netns.create_host)."""
        import os
        import shutil

        found = [Finding("root", os.geteuid() == 0, "running as root" if os.geteuid() == 0
                         else "lab hosts need root (network namespaces, sshd, useradd): "
                         "run the controller as root")]
        for tool, package in (("ip", "iproute2"), ("useradd", "passwd"),
                              ("ssh-keygen", "openssh-client"), ("runuser", "util-linux")):
            where = shutil.which(tool) or shutil.which(tool, path="/usr/sbin:/sbin")
            found.append(Finding(tool, where is not None, where or f"{tool} is missing: "
                                 f"apt-get install {package} (scripts/setup.sh does)"))
        sshd = Path(SSHD).exists()
        found.append(Finding("sshd", sshd, SSHD if sshd else f"no {SSHD}: "
                             "apt-get install openssh-server (scripts/setup.sh does)"))
        return found

    async def prices(self, shape: str, region: str, spot: bool) -> PriceQuote:
        return PriceQuote(shape, region, spot, self.price_per_hour, "lab pool options")

    def _instance(self, host: netns.LabHost) -> Instance:
        pub = Path(host.state_dir, "ssh_host_ed25519_key.pub")
        host_key = " ".join(pub.read_text().split()[:2]) if pub.exists() else None
        return Instance(
            instance_id=host.namespace,
            host_id=host.host_id,
            pool=self.pool,
            state=InstanceState.RUNNING if netns.is_running(host) else InstanceState.PENDING,
            shape=SHAPE,
            region=REGION,
            spot=False,
            launched_at=host.created_at,
            connect=ConnectInfo(address=host.address, port=22, user=host.user,
                                identity_file=host.identity_file, host_key=host_key),
            tags={OWNER_TAG_FLEET: host.fleet, OWNER_TAG_FLEET_ID: host.fleet_id,
                  OWNER_TAG_POOL: self.pool,
                  OWNER_TAG_HOST: host.host_id, "known_hosts": host.known_hosts,
                  "work_dir": host.work_dir},
        )


def metadata_cloud(pool: str, options: dict[str, Any]) -> str | None:
    """The cloud a lab pool's hosts stand in for (their metadata service), or None."""
    value = str(options.get("metadata", "aws")).lower()
    if value == "none":
        return None
    if value not in lab_spot.CLOUDS:
        raise InvalidPoolConfig(f'pool "{pool}": options.metadata must be one of '
                                f'aws, gcp, azure or none (got {value!r})')
    return value
