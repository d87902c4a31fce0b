"""Static hosts (fleet.hosts / REMOTE_HOSTS) and literal remote: locations are fixed hosts
of the desired state: never launched or terminated, each with one id (the name, or the
location without `remote:`) that the planner, the store and the CLI all use."""

from __future__ import annotations

from pathlib import Path

from czarina_fleet.controller.core.desired import desired_from
from czarina_fleet.model.config import (
    FleetConfig,
    FleetSettings,
    ProjectInfo,
    StaticHost,
    WorkerSpec,
)
from czarina_fleet.model.fleet import Overrides
from czarina_fleet.model.location import parse_location


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
    desired = desired_from(config(), Overrides())
    fixed = desired.fixed_hosts
    assert set(fixed) == {"gpu-server", "me@10.0.0.5:2200", "[2001:db8::1]:22", "local"}
    gpu = fixed["gpu-server"]
    assert (gpu.provider, gpu.address, gpu.port, gpu.user, gpu.slots, gpu.work_dir) == (
        "static", "gpu.example.com", 2222, "ml", 4, "/mnt/projects")
    lit = fixed["me@10.0.0.5:2200"]
    assert (lit.provider, lit.address, lit.port, lit.user) == ("static", "10.0.0.5", 2200, "me")
    # the two workers on one literal host share it; each worker names its host by that id
    on = {w.worker_id: w.host_id for w in desired.workers}
    assert on["a"] == on["b"] == "me@10.0.0.5:2200" and on["ml"] == "gpu-server"
    assert on["l"] == "local"
