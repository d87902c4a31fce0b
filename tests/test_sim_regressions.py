"""Traces that once exposed controller bugs, run through `czarina simulate`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

TRACES = Path(__file__).resolve().parents[1] / "examples" / "traces"


def simulate(trace: str) -> dict:  # type: ignore[type-arg]
    r = subprocess.run([sys.executable, "-m", "czarina_fleet.cli.main", "simulate",
                        str(TRACES / trace), "--json"], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)  # type: ignore[no-any-return]


def test_scaled_down_workers_come_back_when_min_rises() -> None:
    # Auto-scale stops idle workers above min; raising min must start them again
    # (once, STOPPED -> STARTING was refused and they never came back).
    report = simulate("autoscale-return.json")
    assert [c["status"] for c in report["convergence"]] == ["converged", "converged"]
    assert report["failed_actions"] == {}
    assert report["workers"]["peak_running"] >= 3
