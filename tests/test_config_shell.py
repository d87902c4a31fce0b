"""The legacy config.sh loader: upstream's example, every seed example, and the message
(with its line) for each kind of mistake."""

from __future__ import annotations

from pathlib import Path

import pytest

from czarina_fleet.config import check_task_files, load_config, task_path
from czarina_fleet.errors import ConfigError
from czarina_fleet.model.location import (
    AutoLocation,
    CloudLocation,
    K8sLocation,
    LocalLocation,
    RemoteLocation,
)

UPSTREAM = Path("/work/shared/czarina-examples/config.example.sh")
DATA = Path(__file__).parent / "data" / "configs"
SEED_SSH = DATA / "seed-ssh_config"
NO_SSH = Path("/nonexistent/ssh_config")


def test_upstream_example_loads() -> None:
    cfg = load_config(UPSTREAM, ssh_config=NO_SSH)
    assert cfg.format == "shell"
    assert [w.id for w in cfg.workers] == ["engineer1", "engineer2", "engineer3", "qa", "docs"]
    assert cfg.worker("qa").branch == "feat/v1.2-testing"  # type: ignore[union-attr]
    assert cfg.worker("qa").description == "Testing & Validation"  # type: ignore[union-attr]
    assert [w.where for w in cfg.workers] == [f"{UPSTREAM}:{n}" for n in range(36, 41)]
    assert all(w.location == LocalLocation() for w in cfg.workers)
    assert cfg.project.name == "Your Project Name"
    # ORCHESTRATOR_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)" evaluated statically
    assert cfg.prompts_dir == UPSTREAM.parent / "prompts"
    assert cfg.project_root == UPSTREAM.parent  # /path/to/your/project does not exist
    assert cfg.fleet.health.slow_after_s == 3600 and cfg.fleet.health.stuck_after_s == 7200
    assert task_path(cfg, cfg.workers[0]) == UPSTREAM.parent / "prompts" / "engineer1_TASKS.txt"
    warnings = check_task_files(cfg)
    assert len(warnings) == 5
    assert warnings[0].startswith(f'{UPSTREAM}:36: worker "engineer1": task file not found')


def test_seed_full_configuration_example() -> None:
    cfg = load_config(DATA / "seed-config-example.sh", ssh_config=NO_SSH)
    assert [w.id for w in cfg.workers] == ["architect", "docs", "backend", "frontend", "ml", "qa"]
    assert cfg.worker("backend").location == RemoteLocation(host="build-server-1")  # type: ignore[union-attr]
    assert cfg.worker("qa").location == AutoLocation()  # type: ignore[union-attr]
    assert cfg.worker("ml").where.endswith(":19")  # type: ignore[union-attr]
    hosts = {h.name: h for h in cfg.fleet.hosts}
    assert list(hosts) == ["build-server-1", "build-server-2", "gpu-server"]
    gpu = hosts["gpu-server"]
    assert (gpu.host, gpu.user, gpu.port, gpu.work_dir) == (
        "gpu.example.com", "ml", 2222, "/mnt/projects")
    assert hosts["build-server-1"].host == "10.0.1.50"


@pytest.mark.parametrize(("name", "expected"), [
    ("seed-build-optimization.sh", {
        "frontend": "remote:build-server-1", "backend": "remote:build-server-2",
        "ml-training": "remote:gpu-server", "docs": "local"}),
    ("seed-geographic.sh", {
        "us-east": "remote:aws-us-east", "eu-west": "remote:aws-eu-west",
        "ap-south": "remote:aws-ap-south"}),
    ("seed-cost-optimization.sh", {
        "architect": "local", "backend": "remote:cheap-spot-instance",
        "frontend": "remote:cheap-spot-instance", "ml": "remote:gpu-spot-instance"}),
    ("seed-formats.sh", {
        "ml": "remote:gpu-server", "ml2": "remote:ml-worker@gpu.example.com:2222"}),
])
def test_seed_snippets_load_with_ssh_config_aliases(name: str, expected: dict[str, str]) -> None:
    cfg = load_config(DATA / name, ssh_config=SEED_SSH)
    assert {w.id: str(w.location) for w in cfg.workers} == expected
    assert list({w.id: 0 for w in cfg.workers}) == list(expected)  # order kept
    # the same file without the aliases names the unknown host and where to define it
    if any(":" in v and "@" not in v for v in expected.values() if v.startswith("remote:")):
        with pytest.raises(ConfigError) as info:
            load_config(DATA / name, ssh_config=NO_SSH)
        assert "define it in REMOTE_HOSTS or as a Host in" in str(info.value)


def test_seed_auto_scaling_and_spot() -> None:
    cfg = load_config(DATA / "seed-advanced.sh", ssh_config=NO_SSH)
    s = cfg.fleet.scaling
    assert (s.min_workers, s.max_workers, s.auto_scale) == (3, 12, True)
    assert cfg.worker("frontend").location == CloudLocation(  # type: ignore[union-attr]
        cloud="aws", spot=True, shape="t3.large", region="us-west-2")


def test_seed_kubernetes() -> None:
    cfg = load_config(DATA / "seed-k8s.sh", ssh_config=NO_SSH)
    assert cfg.worker("backend").location == K8sLocation("build-worker", "backend-pod")  # type: ignore[union-attr]
    assert cfg.fleet.k8s == ["backend|k8s:build-worker:backend-pod",
                             "frontend|k8s:build-worker:frontend-pod"]


def test_czarina_md_sketch_loads() -> None:
    cfg = load_config(DATA / "czarina-md.sh", ssh_config=NO_SSH)
    assert cfg.worker("engineer1").location == CloudLocation(  # type: ignore[union-attr]
        cloud="aws", spot=True, shape="t3.large", region="us-east-1")
    assert cfg.fleet.scaling.max_workers == 12
    assert cfg.prompts_dir == DATA / "prompts"


def errors_of(tmp_path: Path, text: str, ssh: Path = NO_SSH) -> list[str]:
    p = tmp_path / "config.sh"
    p.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(p, ssh_config=ssh)
    return [str(e).removeprefix(f"{p}:") for e in info.value.problems]


BAD = '''\
REMOTE_HOSTS=(
  "gpu:ml@gpu.example.com:70000:/mnt"     # port out of range
  "nocolon"
  "v6:me@[2001:db8::1]:22:/work"
  "gpu-server:ml@gpu.example.com:2222:/mnt/projects"
)
WORKER_DEFINITIONS=(
  # comment inside the array
  "qa|feat/qa|qa.txt|QA|remot:gpu-server"
  "qa|feat/qa2|qa.txt|QA again"
  "Bad_Id|feat/x|x.txt|X"
  "br|feat/a b|x.txt|X"
  "ui|feat/ui|ui.txt|UI|remote:gpu-servr"
  "short|feat/s|s.txt"
  "v6w|feat/v6|v6.txt|V6|remote:v6"
)
MIN_WORKERS=9
MAX_WORKERS=4
AUTO_SCALE=maybe
WORKER_CLOUD_CONFIG=( "qaa|aws-spot:t3.large:us-east-1" "v6w|aws-spot:t3.large:nowhere" )
WORKER_K8S_CONFIG=( "br|aws-spot:t3.large:us-east-1" )
'''


def test_every_problem_reported_with_its_line(tmp_path: Path) -> None:
    msgs = errors_of(tmp_path, BAD)

    def on(line: int) -> list[str]:
        return [m.removeprefix(f"{line}: ") for m in msgs if m.startswith(f"{line}: ")]

    assert on(2) == ['host "gpu": port "70000" in remote:gpu.example.com:70000 is out of '
                     "range: use 1-65535; write NAME:USER@HOST:PORT:/PATH"]
    assert on(3)[0].startswith('malformed host spec "nocolon"')
    assert on(9)[0].startswith('worker "qa": unknown location "remot:gpu-server"')
    assert on(9)[0].endswith('did you mean "remote:gpu-server"?')
    assert on(10)[0].startswith('worker "qa": duplicate worker id, first defined at ')
    assert on(11)[0].startswith('worker "Bad_Id": id "Bad_Id" must match ^[a-z0-9-]+$')
    assert on(12)[0].startswith('worker "br": branch "feat/a b" is not a valid git branch '
                                "name: it contains a space")
    assert on(13)[0].startswith('worker "ui": unknown host "gpu-servr"')
    assert on(13)[0].endswith('did you mean "remote:gpu-server"?')
    assert on(14) == ['worker definition "short|feat/s|s.txt" has 3 field(s); write '
                      "ID|BRANCH|TASK_FILE|DESCRIPTION[|LOCATION]"]
    assert on(17)[0].startswith("MIN_WORKERS (9) is greater than MAX_WORKERS (4, line 18)")
    assert on(19) == ['AUTO_SCALE must be true or false (got "maybe")']
    assert sorted(on(20)) == sorted([
        'worker "qaa": WORKER_CLOUD_CONFIG names no worker in WORKER_DEFINITIONS; fix the id; '
        'did you mean "qa"?',
        'worker "v6w": bad location "aws-spot:t3.large:nowhere": "nowhere" is not a region '
        "such as us-east-1",
    ])
    assert on(21)[0].startswith('worker "br": WORKER_K8S_CONFIG location "aws-spot:')
    assert len(msgs) == 13
    lines = [int(m.split(":", 1)[0]) for m in msgs]
    assert lines == sorted(lines)  # in file order, as a person fixes them


def test_gui_agent_rule_and_ipv6_hosts(tmp_path: Path) -> None:
    p = tmp_path / "config.sh"
    p.write_text('REMOTE_HOSTS=("v6:me@[2001:db8::1]:2200:/srv/w")\n'
                 'WORKER_DEFINITIONS=("a|feat/a|a.txt|A|remote:v6")\n')
    cfg = load_config(p, ssh_config=NO_SSH)
    [host] = cfg.fleet.hosts
    assert (host.host, host.user, host.port, host.work_dir) == ("2001:db8::1", "me", 2200, "/srv/w")
    assert cfg.workers[0].location == RemoteLocation(host="v6")


def test_unknown_values_are_errors_only_when_used(tmp_path: Path) -> None:
    msgs = errors_of(tmp_path, '''\
TOP="$(git rev-parse --show-toplevel)"
UNUSED="$(date)"
PROMPTS_DIR="$TOP/prompts"
if [ -n "$CI" ]; then
  MAX_WORKERS=2
fi
WORKER_DEFINITIONS=("a|feat/a|a.txt|A" "$(cat workers.txt)")
''')
    assert "7: WORKER_DEFINITIONS element cannot be determined: $(cat workers.txt) on line 7 " \
        "is not evaluated (czarina-fleet runs no code from config files); write the value " \
        "literally" in msgs
    assert any(m.startswith("3: PROMPTS_DIR cannot be determined: $(git rev-parse "
                            "--show-toplevel) on line 1 is not evaluated") for m in msgs)
    assert any(m.startswith("5: MAX_WORKERS cannot be determined: MAX_WORKERS is set inside")
               for m in msgs)
    assert not any("date" in m for m in msgs)
    assert len(msgs) == 3


def test_syntax_bash_would_refuse(tmp_path: Path) -> None:
    assert errors_of(tmp_path, 'A=1\nWORKER_DEFINITIONS=(\n "a|b|c|d"\n') == [
        "2: this array is never closed; add the missing )"]
    assert errors_of(tmp_path, 'X="open\nWORKER_DEFINITIONS=()\n') == [
        '1: unterminated double quote ("); close it']
    p = tmp_path / "config.sh"
    p.write_text("# nothing here\n")
    with pytest.raises(ConfigError) as info:
        load_config(p, ssh_config=NO_SSH)
    assert str(info.value) == (f'{p}: WORKER_DEFINITIONS is not set; add WORKER_DEFINITIONS=('
                               '"ID|BRANCH|TASK_FILE|DESCRIPTION[|LOCATION]" ...)')


def test_prompts_dir_and_project_root(tmp_path: Path) -> None:
    (tmp_path / "repo").mkdir()
    (tmp_path / "tasks").mkdir()
    (tmp_path / "tasks" / "a.txt").write_text("task a")
    p = tmp_path / "config.sh"
    p.write_text('ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"\n'
                 'export PROJECT_ROOT="$ROOT/repo" PROMPTS_DIR=tasks\n'
                 'WORKER_DEFINITIONS=("a|feat/a|a.txt|A" "b|feat/b|/abs/b.txt|B" "c|feat/c||C")\n')
    cfg = load_config(p, ssh_config=NO_SSH)
    assert cfg.project_root == tmp_path / "repo"
    assert cfg.project.name == "repo"
    a, b, c = cfg.workers
    assert task_path(cfg, a) == tmp_path / "tasks" / "a.txt"
    assert task_path(cfg, b) == Path("/abs/b.txt")
    assert task_path(cfg, c) is None
    assert check_task_files(cfg) == [
        f'{p}:3: worker "b": task file not found: looked for /abs/b.txt; create it before '
        "starting this worker"]
