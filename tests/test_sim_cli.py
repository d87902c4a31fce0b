"""`czarina simulate` through the real argument parser: output, exit codes, and a bad
trace answered with a message that names the file and the field (exit 2)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from czarina_fleet.cli.main import main

SMALL: dict[str, Any] = {
    "name": "small", "duration": "30m", "seed": 3,
    "config": {
        "fleet": {"name": "s", "pools": [
            {"name": "a", "provider": "aws", "instance_types": ["t3.large"],
             "regions": ["us-east-1"], "max_hosts": 2, "slots_per_host": 2}],
            "scaling": {"max_workers": 1, "budget_per_hour": 0.2}},
        "workers": [{"id": "w0", "branch": "b0", "location": "pool:a"},
                    {"id": "w1", "branch": "b1", "location": "pool:a"}],
    },
    "cloud": {"launch_latency": "1m", "prices": {"a": 0.05}},
    "events": [{"kind": "scale", "at": "5m", "max": 2}],
}


def write(tmp: Path, data: dict[str, Any]) -> Path:
    path = tmp / "t.json"
    path.write_text(json.dumps(data, indent=2))
    return path


def with_(change: dict[str, Any], at: tuple[str | int, ...] = ()) -> dict[str, Any]:
    data = json.loads(json.dumps(SMALL))
    node = data
    for key in at:
        node = node[key]
    node.update(change)
    return data


def test_json_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", str(write(tmp_path, SMALL)), "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["trace"] == "small" and r["seed"] == 3 and r["ticks"] == 120
    assert [c["event"] for c in r["convergence"]] == ["start", "scale max=2"]
    assert all(c["status"] == "converged" for c in r["convergence"])
    assert r["workers"]["running_at_end"] == 2 and r["hosts"]["launched"] == 1


def test_table_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", str(write(tmp_path, SMALL)), "--seed", "5"]) == 0
    out = capsys.readouterr().out
    assert "Simulation of small (seed 5)" in out
    assert "scale max=2" in out and "converged" in out
    assert "single_session" in out and "NO" not in out


def test_keep_state(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state = tmp_path / "st"
    assert main(["simulate", str(write(tmp_path, SMALL)), "--keep-state", str(state)]) == 0
    assert (state / "fleet.db").is_file()
    assert main(["simulate", str(write(tmp_path, SMALL)), "--keep-state", str(state)]) == 2
    assert "exists already" in capsys.readouterr().err


@pytest.mark.parametrize(("data", "where", "words"), [
    (with_({"to": "remot:gpu", "worker": "w1"}, ("events", 0)),
     "$.events[0].to", ["remot:gpu", "did you mean \"remote:gpu\""]),
    (with_({"launch_latencyy": 5}, ("cloud",)), "$.cloud.launch_latencyy",
     ["unknown key", 'did you mean "launch_latency"']),
    (with_({"events": [{"kind": "remove_worker", "at": 60, "id": "w9"}]}),
     "$.events[0].id", ['no worker "w9"']),
    (with_({"events": [{"kind": "scale", "at": "2h", "max": 3}]}),
     "$.events[0].at", ["after the end"]),
    (with_({"duration": "soon"}), "$.duration", ["not a duration"]),
    (with_({"max_hosts": -1}, ("config", "fleet", "pools", 0)),
     "$.config.fleet.pools[0].max_hosts", ["greater than or equal to 0"]),
    (with_({"prices": {"b": 0.1}}, ("cloud",)), '$.cloud.prices["b"]', ['no pool "b"']),
    (with_({"events": [{"kind": "scale", "at": 60, "min": 5}]}), "$.events[0]",
     ["min workers (5) would be above max workers (1)"]),
    (with_({"events": [{"kind": "explode", "at": 60}]}), "$.events[0]", ["explode"]),
])
def test_bad_trace_exits_2_naming_the_field(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                            data: dict[str, Any], where: str,
                                            words: list[str]) -> None:
    path = write(tmp_path, data)
    assert main(["simulate", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}: {where}" in err, err
    for w in words:
        assert w in err, err
    assert "Traceback" not in err


def test_missing_and_broken_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", str(tmp_path / "nope.json")]) == 2
    assert "no trace file" in capsys.readouterr().err
    bad = tmp_path / "bad.json"
    bad.write_text('{"duration": 5,\n  "config": }')
    assert main(["simulate", str(bad)]) == 2
    assert f"{bad}:2:" in capsys.readouterr().err
