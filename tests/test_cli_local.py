"""The embedded default end to end: `czarina` as a subprocess, local workers in real
tmux sessions on real git worktrees, running the quickstart's stand-in agent."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

from tests.fixtures.quickstart import Project, wait_for


def test_once_starts_missing_leaves_running_and_stops_removed(project: Project) -> None:
    r = project.czarina("controller", "run", "--once")
    assert r.returncode == 0, r.stderr
    assert project.sessions() == {"czar-worker-backend", "czar-worker-docs"}
    backend = project.root / ".czarina" / "worktrees" / "backend"
    assert project.git("-C", str(backend), "rev-parse", "--abbrev-ref", "HEAD") == \
        "feat/quickstart-backend"
    # the task was pasted into the agent's pane and reached the agent
    received = backend / "TASKS_RECEIVED.txt"
    wait_for(lambda: received.exists() and "/health" in received.read_text(), "the task")
    wait_for(lambda: "stand-in agent" in project.git("log", "-1", "--format=%s",
                                                     "feat/quickstart-backend"), "a commit")
    pid_before = _pane_pid(project, "backend")

    again = project.czarina("controller", "run", "--once")
    assert again.returncode == 0, again.stderr
    assert "Nothing to do" in again.stdout
    assert _pane_pid(project, "backend") == pid_before  # left alone, not restarted

    tip = project.git("rev-parse", "feat/quickstart-docs")
    project.edit_config(lambda d: d.update(workers=[w for w in d["workers"]
                                                    if w["id"] != "docs"]))
    r = project.czarina("controller", "run", "--once")
    assert r.returncode == 0, r.stderr
    assert "stop worker docs" in r.stdout
    assert project.sessions() == {"czar-worker-backend"}
    # stopping keeps the branch and every commit on it
    assert project.git("merge-base", "--is-ancestor", tip, "feat/quickstart-docs") == ""


def _pane_pid(project: Project, worker: str) -> str:
    return subprocess.run(["tmux", "-L", project.socket, "display-message", "-p", "-t",
                           f"=czar-worker-{worker}:", "#{pane_pid}"],
                          capture_output=True, text=True, check=True).stdout.strip()


def test_status_json_shows_live_workers_with_last_commit(project: Project) -> None:
    before = json.loads(project.czarina("status", "--json").stdout)
    assert {w["worker"]: w["status"] for w in before["workers"]} == {
        "backend": "pending", "docs": "pending"}
    assert project.czarina("controller", "run", "--once").returncode == 0

    def committed() -> bool:
        rows = json.loads(project.czarina("status", "--json").stdout)["workers"]
        return all((w["last_commit"] or "").startswith("stand-in agent") for w in rows)

    wait_for(committed, "commits to show in status")
    rows = json.loads(project.czarina("status", "--json").stdout)["workers"]
    assert {w["status"] for w in rows} == {"working"}
    assert {w["host"] for w in rows} == {"local"}
    assert all(w["usd_per_hour"] == 0.0 for w in rows)
    table = project.czarina("status")
    assert "Last Activity" in table.stdout and "ago" in table.stdout


def test_scale_dry_run_changes_nothing_and_max_caps_workers(project: Project) -> None:
    dry = project.czarina("scale", "--max", "1", "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    kinds = [a["kind"] for a in json.loads(dry.stdout)["actions"]]
    assert kinds.count("StartWorker") == 1
    assert project.sessions() == set()
    assert "max_workers" not in project.czarina("status", "--json").stdout

    r = project.czarina("scale", "--max", "1")
    assert r.returncode == 0, r.stderr + r.stdout
    assert len(project.sessions()) == 1
    r = project.czarina("scale", "--max", "4")
    assert r.returncode == 0, r.stderr
    assert len(project.sessions()) == 2


def test_scale_rejects_bad_input_with_exit_2(project: Project) -> None:
    r = project.czarina("scale", "bakend", "--to", "local")
    assert r.returncode == 2 and 'did you mean "backend"' in r.stderr
    r = project.czarina("scale", "backend", "--to", "lcoal")
    assert r.returncode == 2 and 'did you mean "local"' in r.stderr
    r = project.czarina("scale", "--min", "9")
    assert r.returncode == 2 and "min workers (9)" in r.stderr
    assert "Traceback" not in r.stderr


def test_a_second_controller_is_refused_naming_the_holder(project: Project) -> None:
    first = subprocess.Popen([sys.executable, "-m", "czarina_fleet.cli.main", "controller",
                              "run", "--interval", "1", "--for", "60"], cwd=project.root,
                             env=project.env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: len(project.sessions()) == 2, "the first controller to act")
        r = project.czarina("controller", "run", "--once")
        assert r.returncode == 1
        assert str(first.pid) in r.stderr
    finally:
        first.send_signal(signal.SIGTERM)
        assert first.wait(timeout=30) == 0  # SIGTERM: finish the step, release, exit 0
    assert project.czarina("controller", "run", "--once").returncode == 0


def test_inject_and_logs_reach_the_worker(project: Project, tmp_path: Path) -> None:
    assert project.czarina("controller", "run", "--once").returncode == 0
    task = tmp_path / "task.txt"
    task.write_text("second task: $(touch /tmp/should-not-exist-czt) `id`; done\n")
    r = project.czarina("inject", "backend", str(task))
    assert r.returncode == 0, r.stderr
    received = project.root / ".czarina" / "worktrees" / "backend" / "TASKS_RECEIVED.txt"
    wait_for(lambda: received.exists() and "second task" in received.read_text(), "injection")
    assert "$(touch /tmp/should-not-exist-czt) `id`; done" in received.read_text()
    assert not Path("/tmp/should-not-exist-czt").exists()
    logs = project.czarina("logs", "backend", "-n", "200")
    assert logs.returncode == 0 and "stand-in agent ready" in logs.stdout
    events = project.czarina("events", "--json")
    assert any("task injected" in e["reason"] for e in json.loads(events.stdout))
    assert project.czarina("inject", "nobody", str(task)).returncode == 2


def test_missing_task_file_fails_only_that_worker(project: Project) -> None:
    (project.root / ".czarina" / "prompts" / "docs_TASKS.txt").unlink()
    check = project.czarina("config", "check")
    assert check.returncode == 0 and "docs_TASKS.txt" in check.stderr  # a warning only
    r = project.czarina("controller", "run", "--once")
    assert r.returncode == 1
    assert "docs_TASKS.txt" in r.stderr
    assert project.sessions() == {"czar-worker-backend"}


def test_json_logs_carry_structured_fields(project: Project) -> None:
    r = project.czarina("controller", "run", "--once", "--log-format", "json")
    assert r.returncode == 0, r.stderr
    lines = [json.loads(line) for line in r.stderr.splitlines() if line.startswith("{")]
    planned = [e for e in lines if e.get("action") == "StartWorker"]
    assert len(planned) == 2 and all(e["reason"] for e in planned)
    done = next(e for e in lines if e["message"] == "reconciled")
    assert done["actions"] >= 2 and done["failed"] == 0 and done["level"] == "info"


def test_text_from_workers_is_shown_never_acted_on(project: Project, tmp_path: Path) -> None:
    """A commit subject or pane text carrying terminal escapes (OSC 52 writes the
    clipboard), C0/C1 controls or bidi overrides reaches the user as plain text."""
    assert project.czarina("controller", "run", "--once").returncode == 0
    backend = project.root / ".czarina" / "worktrees" / "backend"
    subprocess.run(["tmux", "-L", project.socket, "kill-session", "-t",
                    "=czar-worker-backend"], check=True)  # no agent commits after ours
    project.git("-C", str(backend), "commit", "-q", "--allow-empty", "-m",
                "\x1b]52;c;cHduZWQ=\x07\x1b[2Jowned \u202esubject")
    shown = project.czarina("status")
    assert shown.returncode == 0 and "owned subject" in shown.stdout, shown.stdout
    assert "\x1b" not in shown.stdout and "\u202e" not in shown.stdout
    task = tmp_path / "task.txt"
    task.write_text("look-\u202eelsewhere \x1b]0;title\x07here\n")
    # a task is typed into the pane: its escape would be a keystroke, so it is refused
    assert project.czarina("inject", "docs", str(task)).returncode == 2
    task.write_text("look-\u202eelsewhere here\n")
    assert project.czarina("inject", "docs", str(task)).returncode == 0
    received = project.root / ".czarina" / "worktrees" / "docs" / "TASKS_RECEIVED.txt"
    wait_for(lambda: received.exists() and "look-" in received.read_text(), "injection")
    tty = subprocess.run(["tmux", "-L", project.socket, "display-message", "-p", "-t",
                          "=czar-worker-docs:", "#{pane_tty}"], capture_output=True, text=True,
                         check=True).stdout.strip()
    with open(tty, "w") as pane:  # what a program in the pane prints: escapes included
        pane.write("\x1b]0;title\x07printed\n")
    wait_for(lambda: "printed" in project.czarina("logs", "docs", "-n", "200").stdout,
             "the pane output")
    logs = project.czarina("logs", "docs", "-n", "200")
    assert logs.returncode == 0 and "look-" in logs.stdout, logs.stdout
    assert "\u202e" not in logs.stdout and "\x1b" not in logs.stdout
