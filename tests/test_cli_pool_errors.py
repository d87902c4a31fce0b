"""A pool whose cloud credentials are missing is reported, by name, with what to do;
the rest of the fleet keeps running. No traceback, exit 1 (an operational failure)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path


def test_missing_credentials_disable_only_their_pool(tmp_path: Path) -> None:
    env = {**os.environ, "HOME": str(tmp_path), "AWS_EC2_METADATA_DISABLED": "true",
           "CZARINA_TMUX_SOCKET": f"czt-{uuid.uuid4().hex[:8]}",
           "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@x.invalid",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@x.invalid"}
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE",
                "GOOGLE_APPLICATION_CREDENTIALS", "AZURE_CLIENT_ID"):
        env.pop(var, None)
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=tmp_path, check=True)
    subprocess.run(["git", "commit", "-q", "--allow-empty", "-m", "init"], cwd=tmp_path,
                   env=env, check=True)
    (tmp_path / ".czarina").mkdir()
    (tmp_path / ".czarina" / "config.json").write_text(json.dumps({
        "project": {"name": "pt"},
        "workers": [
            {"id": "g", "agent": "claude", "branch": "feat/g", "location": "pool:gp"},
            {"id": "w", "agent": "claude", "branch": "feat/w", "location": "pool:aw"},
            {"id": "here", "agent": "sleeper", "branch": "feat/here", "location": "local"}],
        "fleet": {
            "repository_url": "https://example.invalid/r.git",
            "agents": {"sleeper": "sleep 60"},
            "pools": [
                {"name": "gp", "provider": "gcp", "instance_types": ["e2-standard-2"],
                 "regions": ["us-central1-a"], "options": {"project": "x"}},
                {"name": "aw", "provider": "aws", "instance_types": ["t3.large"],
                 "regions": ["us-east-1"]}]},
    }))
    try:
        r = subprocess.run([sys.executable, "-m", "czarina_fleet.cli.main", "controller", "run",
                            "--once"], cwd=tmp_path, env=env, capture_output=True, text=True,
                           timeout=120)
        assert r.returncode == 1
        assert "Traceback" not in r.stderr
        assert "pool gp: no usable Google credentials" in r.stderr
        assert "gcloud auth application-default login" in r.stderr
        assert "pool aw: no AWS credentials found" in r.stderr
        assert "start worker here on local" in r.stdout  # the rest of the fleet went on
        sessions = subprocess.run(["tmux", "-L", env["CZARINA_TMUX_SOCKET"], "ls", "-F",
                                   "#{session_name}"], capture_output=True, text=True)
        assert sessions.stdout.split() == ["czar-worker-here"]
    finally:
        subprocess.run(["tmux", "-L", env["CZARINA_TMUX_SOCKET"], "kill-server"],
                       capture_output=True)


def test_a_kubernetes_worker_is_named_as_not_built_yet(tmp_path: Path) -> None:
    env = {**os.environ, "HOME": str(tmp_path)}
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=tmp_path, check=True)
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@x.invalid", "commit",
                    "-q", "--allow-empty", "-m", "init"], cwd=tmp_path, check=True)
    (tmp_path / ".czarina").mkdir()
    (tmp_path / ".czarina" / "config.json").write_text(json.dumps({
        "project": {"name": "k"},
        "workers": [{"id": "a", "agent": "claude", "branch": "feat/a",
                     "location": "k8s:build-worker:backend-pod"}]}))

    def czarina(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "czarina_fleet.cli.main", *args],
                              cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=120)

    check = czarina("config", "check")
    assert check.returncode == 0  # it parses: a warning, not an error
    assert "Kubernetes pod workers are not built yet" in check.stderr
    once = czarina("controller", "run", "--once")
    assert once.returncode == 1 and "Traceback" not in once.stderr
    assert "worker a: k8s:build-worker:backend-pod" in once.stderr
    status = json.loads(czarina("status", "--json").stdout)
    assert status["workers"][0]["status"] == "pending"
