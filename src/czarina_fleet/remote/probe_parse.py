"""Reading the status probe's answer (its records are listed in probe.py) into a
HostProbe: host facts, worker sessions (this fleet's and look-alikes), git state per
worker, CPU activity and cloud notices. Pure: no I/O, unit-testable."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from czarina_fleet.model.fleet import CommitInfo, HostProbe, SessionProbe
from czarina_fleet.remote.metadata import parse_records
from czarina_fleet.remote.validate import worker_id_of_session


def parse_probe_output(
    host_id: str, output: str, workers: Mapping[str, str], now: float,
    known: Mapping[str, CommitInfo] | None = None, instance: str | None = None, *,
    owner: str | None = None,
) -> HostProbe:
    """Turn the probe script's records into a HostProbe (pure; unit-testable)."""
    host: dict[str, Any] = {}
    metadata: list[list[str]] = []
    activity: dict[str, float] = {}
    foreign: set[str] = set()
    unready: set[str] = set()
    found: dict[str, _WorkerLines] = {}
    current: _WorkerLines | None = None
    for line in output.splitlines():
        if current is not None and current.in_status:
            current.status_line(line)
        elif line.startswith("H\t"):
            host = _host_facts(line.split("\t"))
        elif line.startswith("A "):
            parts = line.split(" ", 4)
            wid = worker_id_of_session(parts[4]) if len(parts) == 5 else None
            stamp = _float(parts[1])
            mark, _, ready = parts[3].partition(":") if wid else ("", "", "")
            if wid and owner is not None and mark != owner:
                foreign.add(f"{parts[4]} ({'another fleet' if mark else 'unmarked'})")
            elif wid and stamp is not None:
                activity[wid] = max(stamp, activity.get(wid, 0.0))
                if owner is not None and ready != "1":
                    unready.add(wid)
        elif line.startswith("W\t"):
            current = found.setdefault(line[2:], _WorkerLines())
        elif line.startswith("C\t") and current is not None:
            current.commit = _commit(line.split("\t")[1:])
        elif line.startswith("U\t") and current is not None:
            current.cpu_at = _float(line[2:])
        elif line.startswith("N\t"):
            metadata.append(line.split("\t")[1:])
    sessions: dict[str, SessionProbe] = {}
    for worker_id in set(workers) | set(activity):
        lines = found.get(worker_id, _WorkerLines())
        commit = lines.commit
        seen = (known or {}).get(worker_id)
        if commit is None and seen is not None and lines.oid == seen.hash:
            commit = seen  # unchanged since the last poll: the script skipped git log
        sessions[worker_id] = SessionProbe(
            worker_id=worker_id, alive=worker_id in activity,
            pane_activity=activity.get(worker_id), last_commit=commit, dirty_files=lines.dirty,
            unpushed_commits=lines.unpushed, ready=worker_id not in unready,
            cpu_activity=lines.cpu_at if worker_id in activity else None,
        )
    notices, metadata_error = parse_records(metadata, now, instance)
    return HostProbe(host_id, reachable=True, probed_at=now, sessions=sessions,
                     notices=notices, metadata_error=metadata_error,
                     foreign=tuple(sorted(foreign)), **host)


@dataclass
class _WorkerLines:
    in_status: bool = True
    oid: str | None = None
    dirty: int = 0
    commit: CommitInfo | None = None
    unpushed: int | None = None
    cpu_at: float | None = None

    def status_line(self, line: str) -> None:
        if line == "E":
            self.in_status = False
        elif line.startswith("# branch.oid "):
            self.oid = line[len("# branch.oid "):].strip()
        elif line.startswith("# branch.ab +"):  # ahead of what origin has (once pushed)
            self.unpushed = _int(line.split()[2][1:])
        elif line and not line.startswith("#"):
            self.dirty += 1


def _host_facts(fields: list[str]) -> dict[str, Any]:
    fields = fields + [""] * (5 - len(fields))
    cpus = _int(fields[2].strip()) or _count_cpus(fields[4])
    mem_kb = _int(fields[3].strip())
    return {"load_1m": _float(fields[1]), "cpus": cpus,
            "mem_free_mb": mem_kb // 1024 if mem_kb is not None else None}


def _count_cpus(online: str) -> int | None:
    """Count the CPUs in a Linux online list such as "0-3,6"."""
    total = 0
    try:
        for part in online.strip().split(","):
            low, _, high = part.partition("-")
            total += int(high or low) - int(low) + 1
    except ValueError:
        return None
    return total or None


def _commit(fields: list[str]) -> CommitInfo | None:
    if len(fields) < 2 or not fields[0]:
        return None
    stamp = _float(fields[1])
    if stamp is None:
        return None
    subject = "\t".join(fields[2:])  # a subject may itself hold a tab
    return CommitInfo(hash=fields[0], time=stamp, subject=subject)


def _float(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _int(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None
