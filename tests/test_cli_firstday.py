"""A new user's first day (issue 9), through the real CLI on scratch projects: what they
wrote is printed literally, mistakes in agents and worker keys are named with a fix,
inject takes text, a file or stdin and refuses control bytes, status says why a worker
waits, and missing tools, a read-only or malformed state and a held lock each say what
to do."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from czarina_fleet.clock import SystemClock
from czarina_fleet.controller.state.store import Store
from tests.fixtures.quickstart import Project, wait_for


def _clean(r: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in r.stderr, r.stderr


# --- item 6: what a user wrote is printed as written -------------------------------


def test_user_text_is_printed_literally_not_as_markup_or_emoji(project: Project) -> None:
    project.edit_config(lambda d: d["project"].update(name="[red]start:a:local:4[/red]"))
    store = Store(project.root / ".czarina" / "fleet.db", SystemClock())
    store.record_event("worker", "backend", "start:a:local:4 then start:x:lab1:1 [bold]b[/bold]")
    store.close()
    r = project.czarina("events")
    assert r.returncode == 0, r.stderr
    assert "start:a:local:4 then start:x:lab1:1 [bold]b[/bold]" in r.stdout
    assert "\N{NEGATIVE SQUARED LATIN CAPITAL LETTER A}" not in r.stdout
    assert "\N{CROSS MARK}" not in r.stdout
    r = project.czarina("config", "check")
    assert r.returncode == 0, r.stderr
    assert "[red]start:a:local:4[/red]" in r.stdout


# --- item 9: a large config is checked and printed in full ----------------------------


def test_config_check_prints_every_worker_of_a_large_config(tmp_path: Path) -> None:
    workers = [{"id": f"w{i}", "agent": "claude", "branch": f"feat/w{i}"} for i in range(1200)]
    cfg = tmp_path / ".czarina" / "config.json"
    cfg.parent.mkdir()
    cfg.write_text(json.dumps({"project": {"name": "big"}, "workers": workers}))
    r = Project(tmp_path, "unused").czarina("config", "check")
    assert r.returncode == 0, r.stderr
    rows = [line.split()[0] for line in r.stdout.splitlines() if re.match(r"^w\d+ ", line)]
    assert rows == [f"w{i}" for i in range(1200)]


# --- item 7: a held lock says since when, in local time --------------------------------


def test_held_lock_names_holder_and_local_time(project: Project) -> None:
    store = Store(project.root / ".czarina" / "fleet.db", SystemClock())
    with store.lock():
        r = project.czarina("scale", "--max", "1")
    store.close()
    assert r.returncode == 0, r.stderr
    assert re.search(r"since \d{4}-\d\d-\d\d \d\d:\d\d:\d\d", r.stdout), r.stdout
    assert not re.search(r"since \d{9,}", r.stdout)


# --- item 4: agents are names, worker keys are checked ------------------------------


def test_agent_must_be_a_known_name_never_a_command(project: Project) -> None:
    def set_agents(d: dict) -> None:  # type: ignore[type-arg]
        d["workers"][0]["agent"] = "cluade"
        d["workers"][1]["agent"] = "touch pwned; bash bin/agent.sh"
    project.edit_config(set_agents)
    r = project.czarina("config", "check")
    _clean(r)
    assert r.returncode == 2
    assert '$.workers[0].agent: worker "backend": unknown agent "cluade"; did you mean ' \
        '"claude"?' in r.stderr
    assert '$.workers[1].agent: worker "docs": unknown agent "touch pwned; bash ' \
        'bin/agent.sh"' in r.stderr
    assert "fleet.agents" in r.stderr
    r = project.czarina("controller", "run", "--once")
    assert r.returncode == 2
    assert not (project.root / "pwned").exists()
    assert not project.sessions()


def test_worker_key_typo_is_an_error_upstream_keys_are_accepted(project: Project) -> None:
    def edit(d: dict) -> None:  # type: ignore[type-arg]
        d["workers"][0].update(role="code", dependencies=["docs"], first_action="read",
                               token_budget=1000, rules={"enabled": True}, versions=["1"],
                               merges=[], planned_duration="1d", memory={"enabled": False})
        d["workers"][1]["locaton"] = "aws-spot:t3.large:us-east-1"
    project.edit_config(edit)
    r = project.czarina("config", "check")
    _clean(r)
    assert r.returncode == 2
    assert r.stderr.count("unknown key") == 1
    assert '$.workers[1].locaton: worker "docs": unknown key "locaton"; did you mean ' \
        '"location"?' in r.stderr
    project.edit_config(lambda d: d["workers"][1].pop("locaton"))
    project.edit_config(lambda d: d["workers"][1].update(team_colour="blue"))
    r = project.czarina("config", "check")
    assert r.returncode == 0, r.stderr
    assert 'key "team_colour" is not used by czarina-fleet' in r.stderr


# --- item 5: inject takes text, a file or stdin; scale --to checks as config check ---


def test_inject_text_file_or_stdin_and_refuses_control_bytes(project: Project,
                                                            tmp_path: Path) -> None:
    assert project.czarina("controller", "run", "--once").returncode == 0
    received = project.root / ".czarina" / "worktrees" / "docs" / "TASKS_RECEIVED.txt"
    r = project.czarina("inject", "docs", "--text", "add a CHANGELOG entry")
    assert r.returncode == 0, r.stderr
    assert "Injected --text into docs" in r.stdout
    wait_for(lambda: received.exists() and "add a CHANGELOG entry" in received.read_text(),
             "the --text task")
    piped = subprocess.run([sys.executable, "-m", "czarina_fleet.cli.main", "inject", "docs",
                            "-"], input="from stdin\n",
                           cwd=project.root, env=project.env, capture_output=True, text=True)
    assert piped.returncode == 0, piped.stderr
    wait_for(lambda: "from stdin" in received.read_text(), "the stdin task")

    ctrl_c = tmp_path / "ctrl-c.txt"
    ctrl_c.write_text("first line\nstop \x03 now\n")
    r = project.czarina("inject", "docs", str(ctrl_c))
    _clean(r)
    assert r.returncode == 2
    assert "0x03 (Ctrl-C), at line 2 column 6" in r.stderr and str(ctrl_c) in r.stderr
    r = project.czarina("inject", "docs", "--text", "\x1b[2J")
    assert r.returncode == 2 and "0x1b (Escape)" in r.stderr
    empty = tmp_path / "empty.txt"
    empty.write_text("  \n")
    r = project.czarina("inject", "docs", str(empty))
    _clean(r)
    assert r.returncode == 2 and "the task is empty" in r.stderr
    assert "buffer" not in r.stderr
    r = project.czarina("inject", "docs")
    assert r.returncode == 2 and "--text" in r.stderr
    r = project.czarina("inject", "docs", "add a CHANGELOG entry")  # text without --text
    assert r.returncode == 2
    assert "czarina inject WORKER --text 'add a CHANGELOG entry'" in r.stderr
    r = project.czarina("inject", "docs", str(empty), "--text", "x")
    assert r.returncode == 2
    # the agent survived the refused Ctrl-C: it still takes tasks
    assert project.czarina("inject", "docs", "--text", "still here").returncode == 0
    wait_for(lambda: "still here" in received.read_text(), "the agent to be alive")
    events = json.loads(project.czarina("events", "--json").stdout)
    assert sum("task injected" in e["reason"] for e in events) == 3


def test_scale_to_is_checked_as_config_check_checks(project: Project) -> None:
    r = project.czarina("scale", "docs", "--to", "remote:nosuch", "--dry-run")
    _clean(r)
    assert r.returncode == 2
    assert 'unknown host "nosuch" in "remote:nosuch"; define it in fleet.hosts' in r.stderr
    assert "adopt" not in r.stdout
    project.edit_config(lambda d: d["workers"][1].update(location="remote:nosuch"))
    check = project.czarina("config", "check")
    assert check.returncode == 2
    assert 'unknown host "nosuch" in "remote:nosuch"; define it in fleet.hosts' in check.stderr
    project.edit_config(lambda d: d["workers"][1].update(location="local"))
    r = project.czarina("scale", "docs", "--to", "pool:gpu", "--dry-run")
    assert r.returncode == 2 and 'unknown pool "gpu"' in r.stderr
    r = project.czarina("scale", "docs", "--to", "auto", "--dry-run")
    assert r.returncode == 0, r.stderr


# --- item 3: status says why, and agrees with the events ------------------------------


def _last_worker_state(project: Project, worker: str) -> str:
    events = json.loads(project.czarina("events", "--json", "-n", "200").stdout)
    moves = [e for e in events if e["entity"] == "worker" and e["entity_id"] == worker]
    return max(moves, key=lambda e: e["ts"])["to_state"]


def test_a_waiting_worker_shows_its_hosts_error_and_next_try(project: Project) -> None:
    def edit(d: dict) -> None:  # type: ignore[type-arg]
        # loopback, a port nothing listens on: the host refuses every connection
        d["fleet"]["hosts"] = [{"name": "lab1", "host": "127.0.0.1", "port": 1}]
        d["workers"][1]["location"] = "remote:lab1"
    project.edit_config(edit)
    project.git("remote", "add", "origin", str(project.root))
    assert project.czarina("controller", "run", "--once").returncode == 1
    status = json.loads(project.czarina("status", "--json").stdout)
    docs = next(w for w in status["workers"] if w["worker"] == "docs")
    assert docs["status"] == _last_worker_state(project, "docs") == "placing"
    assert docs["why"].startswith("host lab1 failed to bootstrap (attempt 1): ")
    assert "cannot connect to 127.0.0.1" in docs["why"]
    assert docs["retry_at"] > status["at"]
    table = project.czarina("status")
    assert re.search(r"next try at \d\d:\d\d:\d\d", table.stdout), table.stdout
    hosts = {h["host"]: h for h in json.loads(project.czarina("hosts", "--json").stdout)}
    assert hosts["lab1"]["state"] == "bootstrap_failed"
    assert hosts["lab1"]["why"] == docs["why"] and hosts["lab1"]["retry_at"] == docs["retry_at"]
    assert "next try at" in project.czarina("hosts").stdout
    backend = next(w for w in status["workers"] if w["worker"] == "backend")
    assert backend["why"] is None


def test_scaled_down_workers_show_stopped_as_events_do(project: Project) -> None:
    assert project.czarina("controller", "run", "--once").returncode == 0
    r = project.czarina("scale", "--max", "1")
    assert r.returncode == 0, r.stderr
    rows = {w["worker"]: w for w in json.loads(project.czarina("status", "--json").stdout)
            ["workers"]}
    assert rows["docs"]["status"] == _last_worker_state(project, "docs") == "stopped"
    assert rows["docs"]["why"] == "above max_workers"
    assert rows["backend"]["status"] in ("working", "idle") and rows["backend"]["why"] is None
    assert "stopped" in project.czarina("status").stdout


# --- item 7: missing tools, read-only or damaged state, signals ------------------------


def _path_without(tmp_path: Path, *missing: str) -> str:
    """A PATH with every program of this machine but `missing` (symlinks)."""
    farm = tmp_path / f"bin-without-{'-'.join(missing)}"
    farm.mkdir()
    for source in ("/usr/local/bin", "/usr/bin", "/bin"):
        for entry in Path(source).iterdir():
            link = farm / entry.name
            if entry.name not in missing and not link.exists():
                link.symlink_to(entry)
    return str(farm)


@pytest.mark.parametrize("missing", ["git", "tmux"])
def test_a_missing_tool_is_named_with_how_to_install_it(project: Project, tmp_path: Path,
                                                        missing: str) -> None:
    project.env["PATH"] = _path_without(tmp_path, missing)
    r = project.czarina("controller", "run", "--once")
    _clean(r)
    assert r.returncode == 1
    assert f"{missing} is not installed on this machine (not found on PATH)" in r.stderr
    assert f"sudo apt-get install -y {missing}" in r.stderr
    assert "FileNotFoundError" not in r.stderr and "Errno" not in r.stderr
    rows = json.loads(project.czarina("status", "--json").stdout)["workers"]
    assert all(f"{missing} is not installed" in w["why"] for w in rows)


def test_read_only_state_directory_says_so_and_what_to_do(project: Project) -> None:
    state = project.root / ".czarina"
    assert project.czarina("events").returncode == 0  # the database exists
    subprocess.run(["mount", "--bind", str(state), str(state)], check=True)
    try:
        subprocess.run(["mount", "-o", "remount,ro,bind", str(state)], check=True)
        for argv in (("status",), ("scale", "--max", "1"), ("controller", "run", "--once")):
            r = project.czarina(*argv)
            _clean(r)
            assert r.returncode == 1, argv
            assert f"{state}" in r.stderr and "read-only filesystem" in r.stderr, r.stderr
            assert "--state PATH" in r.stderr
            assert "move this one away" not in r.stderr
    finally:
        subprocess.run(["umount", str(state)], check=True)


def test_damaged_database_is_named_with_its_path(project: Project) -> None:
    assert project.czarina("controller", "run", "--once").returncode == 0
    db = project.root / ".czarina" / "fleet.db"
    assert project.czarina("events").returncode == 0  # checkpoints the WAL into the file
    size = db.stat().st_size
    with open(db, "r+b") as f:  # keep the header page, ruin every table page
        f.seek(4096)
        f.write(b"\xa5" * (size - 4096))
    for verb in ("status", "events"):
        r = project.czarina(verb)
        _clean(r)
        assert r.returncode == 1
        assert f"the state database {db} is damaged" in r.stderr, r.stderr
        assert f"sqlite3 {db} .recover" in r.stderr
        assert "DatabaseError:" not in r.stderr


def test_sigterm_says_what_was_left_running(project: Project) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "czarina_fleet.cli.main", "controller",
                             "run", "--interval", "1", "--for", "120"], cwd=project.root,
                            env=project.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        wait_for(lambda: project.sessions() == {"czar-worker-backend", "czar-worker-docs"},
                 "both workers to start")
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0
    assert "Stopped by SIGTERM" in err
    assert "Left running: 2 worker(s): backend on local, docs on local." in err
    assert "--stop-all" in err
    assert project.sessions() == {"czar-worker-backend", "czar-worker-docs"}


def test_scale_min_and_max_have_help() -> None:
    r = subprocess.run([sys.executable, "-m", "czarina_fleet.cli.main", "scale", "--help"],
                       capture_output=True, text=True)
    assert r.returncode == 0
    assert re.search(r"--min N\s+keep at least N workers running", r.stdout)
    assert re.search(r"--max N\s+run at most N workers", r.stdout)
