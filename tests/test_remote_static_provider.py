"""The static-host provider: hosts from fleet.hosts / REMOTE_HOSTS and literal
remote: locations."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from czarina_fleet.model.config import (
    FleetConfig,
    FleetSettings,
    ProjectInfo,
    StaticHost,
    WorkerSpec,
)
from czarina_fleet.model.location import parse_location
from czarina_fleet.providers.base import LaunchRequest, NotSupported
from czarina_fleet.providers.static import StaticHostProvider, literal_host


def config() -> FleetConfig:
    gpu = StaticHost(name="gpu-server", host="gpu.example.com", user="ml", port=2222,
                     work_dir="/mnt/projects", slots=4)
    workers = [
        WorkerSpec(id="ml", branch="feat/ml", location=parse_location("remote:gpu-server")),
        WorkerSpec(id="a", branch="feat/a", location=parse_location("remote:me@10.0.0.5:2200")),
        WorkerSpec(id="b", branch="feat/b", location=parse_location("remote:me@10.0.0.5:2200")),
        WorkerSpec(id="c", branch="feat/c", location=parse_location("remote:[2001:db8::1]:22")),
        WorkerSpec(id="l", branch="feat/l"),
    ]
    return FleetConfig(source=Path("config.json"), format="json", project=ProjectInfo(),
                       project_root=Path("."), workers=workers,
                       fleet=FleetSettings(name="demo", hosts=[gpu]))


def test_hosts_from_fleet_hosts_and_literal_locations() -> None:
    provider = StaticHostProvider.from_config(config())
    instances = asyncio.run(provider.list_instances())
    by_id = {i.host_id: i for i in instances}
    assert set(by_id) == {"gpu-server", "me-10.0.0.5-2200", "2001-db8-1-22"}
    gpu = by_id["gpu-server"]
    assert gpu.connect is not None
    assert (gpu.connect.address, gpu.connect.port, gpu.connect.user) == (
        "gpu.example.com", 2222, "ml")
    assert gpu.tags["slots"] == "4" and gpu.tags["work_dir"] == "/mnt/projects"
    lit = by_id["me-10.0.0.5-2200"].connect
    assert lit is not None and (lit.address, lit.port, lit.user) == ("10.0.0.5", 2200, "me")
    ssh = {h.host_id: h for h in provider.ssh_hosts()}
    assert ssh["gpu-server"].port == 2222 and ssh["gpu-server"].work_dir == "/mnt/projects"
    assert not ssh["gpu-server"].trust_on_first_use


def test_static_hosts_cannot_be_launched_or_terminated() -> None:
    provider = StaticHostProvider.from_pool(None, "demo", config=config())
    request = LaunchRequest(host_id="x", fleet="demo", pool="static", shape="s", region="r",
                            spot=False, idempotency_key="k")
    with pytest.raises(NotSupported, match="fleet.hosts or REMOTE_HOSTS"):
        asyncio.run(provider.launch(request))
    with pytest.raises(NotSupported):
        asyncio.run(provider.terminate("gpu-server"))
    assert asyncio.run(provider.prices("s", "r", False)).usd_per_hour == 0.0


def test_literal_host_names_are_safe() -> None:
    host = literal_host(parse_location("remote:me@gpu.lan:2222"))  # type: ignore[arg-type]
    assert host.name == "me-gpu.lan-2222" and host.host == "gpu.lan" and host.port == 2222
