"""Spot interruptions on lab hosts: each lab host stands in for one cloud's instance,
with a metadata service of its own (remote/lab_metadata.py) at 169.254.169.254 inside
its namespace only, and can be interrupted by the user, as a cloud would: a notice
`lead_s` ahead through that service, then the host killed at the deadline (or killed at
once, without notice). Needs root.

Every interruption is appended to `<lab root>/interrupted.log` (fleet, pool, host,
namespace, when it was taken) so that the lab provider reports it, with the moment the
host was taken, as a cloud reports a reclaimed instance.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from czarina_fleet.remote import netns
from czarina_fleet.remote.lab_command import LabError
from czarina_fleet.remote.lab_metadata import ADDRESS

CLOUDS = ("aws", "gcp", "azure")
LOG = "interrupted.log"


def start_metadata(host: netns.LabHost, cloud: str) -> None:
    """Serve `cloud`'s metadata inside the host's namespace (idempotent). The address
    lives on the namespace's loopback: nothing outside it can reach it, and the
    namespace has no route anywhere else, so a real metadata service is never asked."""
    if cloud not in CLOUDS:
        raise LabError(f"lab metadata: unknown cloud {cloud!r} (one of {CLOUDS})")
    if not netns.is_running(host):
        return  # still being made by a racing launch of the same intent: it starts it
    state = Path(host.state_dir)
    with open(state / "metadata.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one server per host, however many callers
        _start_locked(host, cloud, state)


def _start_locked(host: netns.LabHost, cloud: str, state: Path) -> None:
    pid_file = state / "metadata.pid"
    if pid_file.exists() and Path(f"/proc/{pid_file.read_text().strip()}").exists():
        return
    _kill_strays(host)  # one whose starter was killed before it wrote the pid file
    _write_state(host, {"cloud": cloud, "instance": host.namespace, "notice": None})
    (state / "metadata.ready").unlink(missing_ok=True)
    subprocess.run(["ip", "-n", host.namespace, "addr", "add", f"{ADDRESS}/32", "dev", "lo"],
                   capture_output=True, check=False)  # already there after a restart
    log = open(state / "metadata.log", "ab")
    proc = subprocess.Popen(
        ["ip", "netns", "exec", host.namespace, sys.executable, "-m",
         "czarina_fleet.remote.lab_metadata", str(state)],
        stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True)
    log.close()
    pid_file.write_text(str(proc.pid))
    _wait_listening(host, proc)


def _kill_strays(host: netns.LabHost) -> None:
    pids = subprocess.run(["ip", "netns", "pids", host.namespace], capture_output=True,
                          text=True, check=False).stdout.split()
    for pid in pids:
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"czarina_fleet.remote.lab_metadata" in cmdline:
            try:
                os.kill(int(pid), signal.SIGKILL)
            except ProcessLookupError:
                continue


def _wait_listening(host: netns.LabHost, proc: subprocess.Popen[bytes]) -> None:
    ready = Path(host.state_dir) / "metadata.ready"  # written once it listens
    deadline = time.monotonic() + 10
    while not ready.exists():
        if proc.poll() is not None:
            raise LabError(f"lab metadata on {host.host_id} exited: see "
                                 f"{host.state_dir}/metadata.log")
        if time.monotonic() > deadline:
            raise LabError(f"lab metadata on {host.host_id} did not come up in 10 s")
        time.sleep(0.02)


def _write_state(host: netns.LabHost, state: dict[str, object]) -> None:
    path = Path(host.state_dir) / "metadata.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state))
    tmp.replace(path)


def metadata_state(host: netns.LabHost) -> dict[str, object]:
    try:
        return dict(json.loads((Path(host.state_dir) / "metadata.json").read_text()))
    except (OSError, ValueError):
        return {}


def post_notice(host: netns.LabHost, lead_s: float, *, kind: str = "interruption",
                now: float | None = None) -> float:
    """Announce through the host's metadata service that it will be taken in `lead_s`
    (or, kind="rebalance", that it is at elevated risk). Returns the deadline."""
    state = metadata_state(host)
    if not state:
        raise LabError(f"lab host {host.host_id} has no metadata service (its pool "
                             "was made before lab metadata existed); launch a new one")
    at = time.time() if now is None else now
    state["notice"] = {"kind": kind, "at": at, "deadline": at + lead_s,
                       "id": str(uuid.uuid4()).upper()}
    _write_state(host, state)
    return at + lead_s


def acks(host: netns.LabHost) -> list[str]:
    """EventIds approved through the host's (Azure) metadata service."""
    try:
        lines = (Path(host.state_dir) / "metadata-acks.log").read_text().splitlines()
    except OSError:
        return []
    return [json.loads(line)["EventId"] for line in lines if line.strip()]


def take(host: netns.LabHost, root: Path = netns.LAB_ROOT) -> float:
    """Kill the host now, as the cloud does at the deadline; recorded first, so the
    provider can say when it was taken. Returns that time."""
    at = time.time()
    entry = {"fleet": host.fleet, "fleet_id": host.fleet_id, "pool": host.pool,
             "host_id": host.host_id, "namespace": host.namespace, "at": at}
    with open(root / LOG, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(entry) + "\n")
    netns.destroy_host(host)
    return at


def interrupt(host: netns.LabHost, lead_s: float | None, root: Path = netns.LAB_ROOT,
              sleep: object = time.sleep) -> float:
    """The user action: a notice `lead_s` ahead then the kill at the deadline; None:
    killed at once, without notice. Returns when the host was taken."""
    if lead_s is not None and lead_s > 0:
        deadline = post_notice(host, lead_s)
        sleep(max(0.0, deadline - time.time()))  # type: ignore[operator]
    return take(host, root)


@dataclass(frozen=True)
class Taken:
    host_id: str
    namespace: str
    at: float


def taken(root: Path, fleet: str, pool: str, since: float,
          fleet_id: str = "") -> list[Taken]:
    """Hosts of one pool interrupted since `since` (the newest entry per host), of the
    fleet with that name and identity (two fleets may share a name and host ids)."""
    try:
        lines = (root / LOG).read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    found: dict[str, Taken] = {}
    for line in lines:
        try:
            e = json.loads(line)
            if (e["fleet"] == fleet and e.get("fleet_id", "") == fleet_id
                    and e["pool"] == pool and float(e["at"]) >= since):
                found[e["host_id"]] = Taken(str(e["host_id"]), str(e["namespace"]),
                                            float(e["at"]))
        except (ValueError, KeyError, TypeError):
            continue
    return list(found.values())
