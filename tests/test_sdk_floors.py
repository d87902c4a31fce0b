"""constraints/sdk-floors.txt (what scripts/test-sdk-floors.sh installs and tests, from
.ci/run) names exactly the floors pyproject.toml claims for the cloud SDKs, so a floor
cannot be lowered (or a new SDK added) without the floor job testing it."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SDKS = {"boto3", "google-cloud-compute", "azure-mgmt-compute", "azure-mgmt-network",
        "azure-identity"}


def test_constraints_pin_pyproject_floors() -> None:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    floors = dict(re.fullmatch(r"([\w.-]+)>=([\w.]+)", d.split(",")[0].strip()).groups()
                  for d in deps if d.split(">=")[0] in SDKS)
    pinned = dict(line.split("#")[0].strip().split("==")
                  for line in (ROOT / "constraints/sdk-floors.txt").read_text().splitlines()
                  if line.split("#")[0].strip())
    assert set(floors) == SDKS
    assert {name: _release(v) for name, v in floors.items()} == {
        name: _release(v) for name, v in pinned.items()}


def test_the_floor_job_runs_in_ci() -> None:
    assert "scripts/test-sdk-floors.sh" in (ROOT / ".ci/run").read_text()


def _release(version: str) -> tuple[int, ...]:
    parts = [int(p) for p in version.split(".")]
    while len(parts) < 3:
        parts.append(0)
    return tuple(parts)
