"""The .czarina/config.json loader: upstream's real files, our fleet extension, and the
messages a user gets for each kind of mistake."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from czarina_fleet.config import check_task_files, find_config, load_config, task_path
from czarina_fleet.errors import ConfigError, UserError
from czarina_fleet.model.location import CloudLocation, PoolLocation, RemoteLocation

UPSTREAM = Path("/work/shared/czarina-examples")
DATA = Path(__file__).parent / "data" / "configs"
NO_SSH = Path("/nonexistent/ssh_config")


def load(path: Path, ssh: Path = NO_SSH):  # type: ignore[no-untyped-def]
    return load_config(path, ssh_config=ssh)


@pytest.mark.parametrize("name", sorted(p.name for p in UPSTREAM.glob("*.json")))
def test_every_upstream_json_file_loads(name: str) -> None:
    raw = json.loads((UPSTREAM / name).read_text())
    cfg = load(UPSTREAM / name)
    assert [w.id for w in cfg.workers] == [w["id"] for w in raw.get("workers", [])]
    assert [w.branch for w in cfg.workers] == [w["branch"] for w in raw.get("workers", [])]
    assert all(str(w.location) == "local" for w in cfg.workers)
    assert cfg.format == "json"


def test_upstream_own_config_keeps_unknown_keys_and_off_schema_role() -> None:
    cfg = load(UPSTREAM / "czarina-own-config.json")
    qa = cfg.worker("integration-testing")
    assert qa is not None and qa.role == "qa"
    assert qa.model_extra == {"dependencies": []}
    assert qa.where.endswith("czarina-own-config.json: $.workers[3]")
    assert cfg.project.slug == "czarina-v0_7_1"
    assert cfg.project.model_extra and cfg.project.model_extra["phase"] == 1
    # the repository is someone else's home directory: fall back to the file's project
    assert cfg.project_root == UPSTREAM
    assert any("/home/jhenry/Source/czarina" in w for w in cfg.warnings)


def test_gui_agents_load_when_local() -> None:
    cfg = load(UPSTREAM / "config-v0.7.0-full.json")
    assert cfg.worker("frontend").agent == "cursor"  # type: ignore[union-attr]
    assert cfg.worker("integration").agent == "windsurf"  # type: ignore[union-attr]


def test_schema_file_loads_with_no_workers_and_a_warning() -> None:
    cfg = load(UPSTREAM / "config-schema.json")
    assert cfg.workers == []
    assert any("no \"workers\"" in w for w in cfg.warnings)


def test_fleet_extension_fields() -> None:
    cfg = load(DATA / "fleet-full.json")
    assert [w.id for w in cfg.workers] == [
        "architect", "ml", "backend", "qa", "direct", "spot", "ui"]
    assert cfg.worker("ml").location == RemoteLocation(host="gpu-server")  # type: ignore[union-attr]
    assert cfg.worker("backend").location == PoolLocation("spot-east")  # type: ignore[union-attr]
    assert str(cfg.worker("qa").location) == "auto"  # type: ignore[union-attr]
    assert cfg.worker("direct").location == RemoteLocation(  # type: ignore[union-attr]
        host="2001:db8::1", user="me", port=2200)
    assert cfg.worker("spot").location == CloudLocation(  # type: ignore[union-attr]
        cloud="gcp", spot=True, shape="e2-standard-4", region="us-central1-a")
    hosts = {h.name: h for h in cfg.fleet.hosts}
    assert (hosts["gpu-server"].user, hosts["gpu-server"].port) == ("ml", 2222)
    assert hosts["gpu-server"].work_dir == "/mnt/projects"
    assert cfg.fleet.pools[0].instance_types == ["t3.large", "m5.large"]
    s = cfg.fleet.scaling
    assert (s.min_workers, s.max_workers, s.auto_scale, s.budget_per_hour) == (1, 6, True, 2.5)
    assert cfg.fleet.health.stuck_after_s == 3600
    assert cfg.agent_command("claude").endswith("--model opus")
    assert cfg.project_root == DATA  # repository "." relative to the file's directory
    assert cfg.project.model_extra == {}


def write(tmp_path: Path, data: object) -> Path:
    d = tmp_path / ".czarina"
    d.mkdir(exist_ok=True)
    p = d / "config.json"
    p.write_text(data if isinstance(data, str) else json.dumps(data, indent=2))
    return p


def problems(path: Path, ssh: Path = NO_SSH) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load(path, ssh)
    return [str(p) for p in info.value.problems]


def w(id_: str, **kw: object) -> dict[str, object]:
    return {"id": id_, "agent": "claude", "branch": f"feat/{id_}", **kw}


def test_invalid_json_names_line_and_column(tmp_path: Path) -> None:
    p = write(tmp_path, '{\n  "workers": [\n    {"id": "a",}\n  ]\n}\n')
    [msg] = problems(p)
    assert msg.startswith(f"{p}:3:")
    assert "invalid JSON" in msg


def test_all_worker_problems_reported_together(tmp_path: Path) -> None:
    p = write(tmp_path, {"workers": [
        w("qa", location="remot:gpu"),
        w("qa"),
        w("Bad_Id"),
        {"id": "br", "agent": "claude", "branch": "feat/x..y"},
        w("ui", agent="cursor", location="aws-spot:t3.large:us-east-1"),
        w("pooled", location="pool:spot-eats"),
        w("far", location="remote:gpu-servr"),
        {"id": "nobranch", "agent": "claude"},
    ], "fleet": {"hosts": [{"name": "gpu-server", "host": "gpu.example.com"}],
                 "pools": [{"name": "spot-east", "provider": "aws",
                            "instance_types": ["t3.large"], "regions": ["us-east-1"]}]}})
    msgs = problems(p)
    f = str(p)

    def at(path: str) -> str:
        [m] = [m for m in msgs if m.startswith(f"{f}: {path}: ")]
        return m.removeprefix(f"{f}: {path}: ")

    assert at("$.workers[0].location").startswith('worker "qa": unknown location "remot:gpu"')
    assert at("$.workers[0].location").endswith('did you mean "remote:gpu"?')
    assert at("$.workers[1].id").startswith('worker "qa": duplicate worker id')
    assert f"first defined at {f}: $.workers[0].id" in at("$.workers[1].id")
    assert at("$.workers[2].id").startswith('worker "Bad_Id": id "Bad_Id" must match')
    assert at("$.workers[2].id").endswith('did you mean "bad-id"?')
    assert at("$.workers[3].branch").startswith('worker "br": branch "feat/x..y"')
    assert 'contains ".."' in at("$.workers[3].branch")
    assert at("$.workers[4].location").startswith('worker "ui": agent "cursor"')
    assert "set the location to local" in at("$.workers[4].location")
    assert at("$.workers[5].location").startswith('worker "pooled": unknown pool')
    assert at("$.workers[5].location").endswith('did you mean "pool:spot-east"?')
    assert at("$.workers[6].location").startswith('worker "far": unknown host')
    assert at("$.workers[6].location").endswith('did you mean "remote:gpu-server"?')
    assert at("$.workers[7]") == 'worker "nobranch": missing required key "branch"; add it'
    assert len(msgs) == 8


def test_fleet_keys_are_strict_with_suggestions(tmp_path: Path) -> None:
    p = write(tmp_path, {"workers": [w("a")], "fleet": {
        "scalling": {},
        "scaling": {"min_workers": 5, "max_workers": 2},
        "hosts": [{"name": "h1", "host": "h1.example", "port": 70000, "slotz": 3}],
    }})
    msgs = problems(p)
    f = str(p)
    assert any(m.startswith(f"{f}: $.fleet.scalling: unknown key") and
               m.endswith('did you mean "scaling"?') for m in msgs)
    assert any(m.startswith(f"{f}: $.fleet.hosts[0].slotz: unknown key") and
               m.endswith('did you mean "slots"?') for m in msgs)
    assert any(m.startswith(f"{f}: $.fleet.hosts[0].port: ") and "65535" in m for m in msgs)
    assert any(m.startswith(f"{f}: $.fleet.scaling: min_workers (5) is greater than "
                            "max_workers (2)") for m in msgs)
    assert not any("pydantic" in m or "errors.pydantic.dev" in m for m in msgs)


def test_unknown_remote_name_accepted_when_ssh_alias(tmp_path: Path) -> None:
    ssh = tmp_path / "ssh_config"
    ssh.write_text("Host gpu-box other\n    HostName 10.0.0.5\nHost *\n    User x\n")
    p = write(tmp_path, {"workers": [w("a", location="remote:gpu-box")]})
    cfg = load(p, ssh)
    assert cfg.workers[0].location == RemoteLocation(host="gpu-box")
    msgs = problems(write(tmp_path, {"workers": [w("a", location="remote:gpu-bx")]}), ssh)
    assert msgs[0].endswith('did you mean "remote:gpu-box"?')
    assert str(ssh) in msgs[0]


def test_wrong_types_and_top_level(tmp_path: Path) -> None:
    assert problems(write(tmp_path, "[1, 2]"))[0].endswith(
        'the top level must be a JSON object ({...}); it needs at least "workers": [...]')
    msgs = problems(write(tmp_path, {"workers": [{"id": 7, "branch": "x", "agent": "claude"},
                                                 "nope"], "project": {"name": 3}}))
    assert any(m.endswith('$.workers[0].id: worker #0: "id" must be a string') for m in msgs)
    assert any("$.workers[1]: each worker must be an object" in m for m in msgs)
    assert any("$.project.name: input should be a valid string (got 3)" in m for m in msgs)


def test_true_is_not_a_number(tmp_path: Path) -> None:
    # pydantic's lax mode would read true as 1 worker; a flag where a number goes is a typo
    msgs = problems(write(tmp_path, {"workers": [w("a")], "fleet": {
        "scaling": {"max_workers": True, "auto_scale": True},
        "hosts": [{"name": "h", "host": "h.example", "slots": False}]}}))
    assert any("$.fleet.scaling.max_workers: expected a number, not true" in m for m in msgs)
    assert any("$.fleet.hosts[0].slots: expected a number, not false" in m for m in msgs)
    assert not any("auto_scale" in m for m in msgs)  # a real flag stays one


def test_project_root_is_repository_when_it_exists(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    cfg = load(write(tmp_path, {"project": {"name": "x", "repository": str(repo)},
                                "workers": [w("a")]}))
    assert cfg.project_root == repo
    assert cfg.warnings == []
    cfg = load(write(tmp_path, {"project": {"name": "x", "repository": "/no/such/dir"},
                                "workers": [w("a")]}))
    assert cfg.project_root == tmp_path


def test_task_files_resolve_beside_config(tmp_path: Path) -> None:
    p = write(tmp_path, {"workers": [w("a", task_file="tasks/a.md"), w("b"), w("c")]})
    (tmp_path / ".czarina" / "workers").mkdir()
    (tmp_path / ".czarina" / "workers" / "b.md").write_text("do b")
    cfg = load(p)
    a, b, c = cfg.workers
    assert task_path(cfg, a) == tmp_path / ".czarina" / "tasks" / "a.md"
    assert task_path(cfg, b) == tmp_path / ".czarina" / "workers" / "b.md"
    assert task_path(cfg, c) is None
    [warning] = check_task_files(cfg)
    assert 'worker "a": task file not found: looked for ' in warning
    assert str(tmp_path / ".czarina" / "tasks" / "a.md") in warning
    (tmp_path / ".czarina" / "tasks").mkdir()
    (tmp_path / ".czarina" / "tasks" / "a.md").write_text("do a")
    assert check_task_files(cfg) == []


def test_find_config_order_and_parents(tmp_path: Path) -> None:
    deep = tmp_path / "a" / "b"
    deep.mkdir(parents=True)
    (tmp_path / "config.sh").write_text("WORKER_DEFINITIONS=()\n")
    assert find_config(deep) == tmp_path / "config.sh"
    write(tmp_path / "a", {"workers": []})
    assert find_config(deep) == tmp_path / "a" / ".czarina" / "config.json"
    (tmp_path / "a" / ".czarina" / "config.json").unlink()
    (tmp_path / "a" / ".czarina" / "config.sh").write_text("")
    assert find_config(deep) == tmp_path / "a" / ".czarina" / "config.sh"


def test_find_config_says_where_it_looked(tmp_path: Path) -> None:
    with pytest.raises(UserError) as info:
        find_config(tmp_path)
    assert ".czarina/config.json" in str(info.value) and str(tmp_path) in str(info.value)


def test_unreadable_and_non_utf8(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load(tmp_path / "missing.json")
    assert "cannot read the file" in str(info.value)
    bad = tmp_path / "bad.json"
    bad.write_bytes(b'{\n"workers": [\xff]}')
    with pytest.raises(ConfigError) as info:
        load(bad)
    assert str(info.value).startswith(f"{bad}:2: not UTF-8 text")


def test_static_host_values_that_ssh_would_read_as_options_are_refused(tmp_path: Path) -> None:
    p = write(tmp_path, {"workers": [w("a")], "fleet": {"hosts": [
        {"name": "h1", "host": "-oProxyCommand=touch /tmp/pwned"},
        {"name": "h2", "host": "h2.example", "proxy_jump": "-oProxyCommand=x"},
        {"name": "h3", "host": "h3.example", "user": "me\nProxyCommand x"},
        {"name": "h4", "host": "h4.example", "proxy_jump": "me@bastion:2222"},
    ]}})
    msgs = problems(p)
    f = str(p)
    for field in ("hosts[0].host", "hosts[1].proxy_jump", "hosts[2].user"):
        assert any(m.startswith(f"{f}: $.fleet.{field}: must be non-empty, not start with "
                                "'-'") for m in msgs), (field, msgs)
    assert not any("hosts[3]" in m for m in msgs)
