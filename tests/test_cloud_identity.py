"""A cloud host launched by the controller gets the fleet's login key and a host key
the controller made, and is then reached verified: the real AWS driver against moto,
the real executor, and LiveHostAccess's view of how to connect."""

from __future__ import annotations

import asyncio
import base64
from dataclasses import dataclass, replace
from pathlib import Path

import boto3
import yaml

from czarina_fleet.clock import FakeClock
from czarina_fleet.controller.runtime.compose import build_reconciler
from czarina_fleet.controller.runtime.connect_facts import ConnectFacts
from czarina_fleet.controller.runtime.host_access import LiveHostAccess
from czarina_fleet.controller.runtime.reconciler import Reconciler
from czarina_fleet.controller.state.store import Store
from czarina_fleet.model.config import (
    FleetConfig,
    FleetSettings,
    PoolSpec,
    ProjectInfo,
    WorkerSpec,
)
from czarina_fleet.model.fleet import HostRecord
from czarina_fleet.model.location import parse_location
from czarina_fleet.providers.base import LaunchRequest
from czarina_fleet.providers.fake import InMemoryRuntime
from czarina_fleet.remote.identity import FleetIdentity, fleet_identity
from czarina_fleet.remote.ssh_pool import SshPool
from tests.test_aws_provider import driver, fleet_name, make_pool
from tests.test_cloud_reconcile import _image


class _Machines:
    def __init__(self, store: Store) -> None:
        self.clock, self.store = store.clock, store

    def running(self) -> list[object]:
        return list(self.store.hosts())


def _one_worker_config(tmp_path: Path, fleet: str, pool: PoolSpec, pool_name: str) -> FleetConfig:
    """Fleet `fleet` with one worker on pool `pool_name`."""
    return FleetConfig(
        source=Path("c.json"), format="json", project=ProjectInfo(), project_root=tmp_path,
        workers=[WorkerSpec(id="w0", branch="b0", location=parse_location(f"pool:{pool_name}"))],
        fleet=FleetSettings(name=fleet, pools=[pool], repository_url="https://x.invalid/r"))


@dataclass
class _Launched:
    session: boto3.Session
    clock: FakeClock
    store: Store
    identity: FleetIdentity
    cfg: FleetConfig
    rec: Reconciler
    host: HostRecord


def _launch_one_aws_host(tmp_path: Path, moto_url: str) -> _Launched:
    """One reconcile step of a one-worker fleet on an AWS pool (moto): one host launched."""
    session = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing",
                            region_name="us-east-1")
    fleet, clock = fleet_name(), FakeClock()
    store = Store(tmp_path / ".czarina" / "fleet.db", clock)
    identity = fleet_identity(tmp_path / ".czarina" / "fleet.db")
    pool = make_pool(_image(moto_url))
    cfg = _one_worker_config(tmp_path, fleet, pool, "gpu")
    aws = driver(moto_url, session, pool, fleet, clock=clock)
    rec = build_reconciler(cfg, store, {"gpu": aws}, InMemoryRuntime(_Machines(store)),  # type: ignore[arg-type]
                           clock, backoff_s=0.1, identity=identity)
    asyncio.run(rec.reconcile_once())
    (host,) = store.hosts()
    return _Launched(session, clock, store, identity, cfg, rec, host)


def test_launch_carries_fleet_keys_and_connection_is_verified(tmp_path: Path,
                                                              moto_url: str) -> None:
    run = _launch_one_aws_host(tmp_path, moto_url)
    identity, host = run.identity, run.host
    ec2 = run.session.client("ec2", endpoint_url=moto_url)
    attr = ec2.describe_instance_attribute(InstanceId=host.instance_id, Attribute="userData")
    data = yaml.safe_load(base64.b64decode(attr["UserData"]["Value"]))
    private, public = identity.host_keypair(host.host_id)
    assert data["ssh_keys"] == {"ed25519_private": private, "ed25519_public": public}
    assert data["users"][1]["ssh_authorized_keys"] == [identity.public_key]

    access = LiveHostAccess(run.cfg, run.store, SshPool(clock=run.clock),
                            facts=ConnectFacts(tmp_path / ".czarina"), identity=identity)
    ssh = access.ssh_host(replace(host, address="10.1.2.3"))
    assert ssh.identity_file == str(identity.private_key_path)
    assert ssh.known_hosts is not None
    key_only = " ".join(public.split()[:2])  # the comment is not part of the key
    assert Path(ssh.known_hosts).read_text() == f"10.1.2.3 {key_only}\n"


def test_a_launch_request_never_shows_the_host_private_key(tmp_path: Path) -> None:
    private, public = fleet_identity(tmp_path / "fleet.db").host_keypair("h1")
    request = LaunchRequest("h1", "f", "p", "t3.micro", "eu-west-1", True, "launch:h1",
                            host_private_key=private, host_public_key=public)
    assert request.host_private_key == private
    body = private.splitlines()[1]
    assert body not in repr(request) and body not in str(request)


def test_host_keys_die_with_their_host_and_are_never_reused(tmp_path: Path,
                                                             moto_url: str) -> None:
    """Terminating a host deletes the key made for it; a host id seen again for a new
    launch (after a state reset) gets a new key, while a relaunch of the same intent
    (a crash mid-launch) installs the same one."""
    from czarina_fleet.model.actions import TerminateHost

    launched = _launch_one_aws_host(tmp_path, moto_url)
    rec, identity, host = launched.rec, launched.identity, launched.host
    keys = identity.directory / "hostkeys"
    assert sorted(p.name for p in keys.iterdir()) == [host.host_id, f"{host.host_id}.intent",
                                                     f"{host.host_id}.pub"]
    launched = identity.host_public_key(host.host_id)
    assert identity.host_keypair(host.host_id, f"launch:{host.host_id}:again")[1] != launched
    made = identity.host_keypair(host.host_id, "intent-x")
    assert identity.host_keypair(host.host_id, "intent-x") == made

    asyncio.run(rec.executor.execute([TerminateHost(host.host_id, host.instance_id, "gpu",
                                                    "test")], rec.desired()))
    assert list(keys.iterdir()) == []
    assert identity.host_public_key(host.host_id) is None


def test_the_host_key_leaves_gcp_metadata_once_the_host_is_verified(tmp_path: Path) -> None:
    """After bootstrap (the first connection, verified against the made key) the
    executor asks the real GCP driver to drop `user-data`; the fake GCE checks every
    request against Google's discovery document."""
    from tests.fakes.gcp_server import FakeGce
    from tests.test_gcp_provider import driver as gcp_driver
    from tests.test_gcp_provider import make_pool as gcp_pool

    gce = FakeGce(polls_until_done=1).start()
    try:
        clock = FakeClock()
        store = Store(tmp_path / ".czarina" / "fleet.db", clock)
        identity = fleet_identity(tmp_path / ".czarina" / "fleet.db")
        pool = gcp_pool()
        cfg = _one_worker_config(tmp_path, "Team.Alpha", pool, "cpu")
        rec = build_reconciler(cfg, store, {"cpu": gcp_driver(gce, pool, clock=clock)},
                               InMemoryRuntime(_Machines(store)),  # type: ignore[arg-type]
                               clock, backoff_s=0.1, identity=identity)
        for _ in range(5):
            asyncio.run(rec.reconcile_once())
            if any(str(h.state) == "ready" for h in store.hosts() if h.pool == "cpu"):
                break
        (host,) = [h for h in store.hosts() if h.pool == "cpu"]
        assert str(host.state) == "ready", [str(h.state) for h in store.hosts()]
        (vm,) = gce.instances.values()
        keys = [i["key"] for i in vm["metadata"]["items"]]
        assert "user-data" not in keys and "ssh-keys" in keys
        assert any(e.reason == "host key removed from the instance's user data"
                   for e in store.events(limit=100))
    finally:
        gce.stop()
    assert gce.violations == []
