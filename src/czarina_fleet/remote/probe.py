"""The status probe: one command, one round trip, every worker on a host.

The script is fixed text. Worker ids and checkout directories reach it as positional
arguments (`sh -c SCRIPT probe MODE SOCKET ID DIR ID DIR ...`), so they are data to the
shell, never code. Its output is tab-separated records:

    H <load1> <cpu count or ""> <MemAvailable kB> <online cpu list, e.g. 0-3 (Linux)>
    A <window activity> <session name>     (space-separated: tmux rewrites a tab in
                                            -F output to "_" outside a UTF-8 locale)
    W <worker id> <hash> <commit time> <subject>
    S                                      (then `git status --porcelain` lines)
    E                                      (end of that worker's status lines)
"""

from __future__ import annotations

from collections.abc import Mapping

from czarina_fleet.model.fleet import CommitInfo, HostProbe, SessionProbe
from czarina_fleet.remote.runner import CommandRunner, CommandTimeout, HostUnreachable
from czarina_fleet.remote.tmux import DEFAULT_TMUX, TmuxTarget
from czarina_fleet.remote.validate import check_path, check_worker_id, worker_id_of_session

PROBE_TIMEOUT = 10.0

PROBE_SCRIPT = r"""
mode=$1; sock=$2; shift 2
t() { if [ -n "$mode" ]; then tmux "$mode" "$sock" "$@"; else tmux "$@"; fi; }
# Host facts with shell builtins where Linux allows (every exec costs on a busy host).
load= online= mem= cpus=
read -r load _ < /proc/loadavg 2>/dev/null
read -r online < /sys/devices/system/cpu/online 2>/dev/null
while read -r k v _; do
  if [ "$k" = MemAvailable: ]; then mem=$v; break; fi
done < /proc/meminfo 2>/dev/null
[ -n "$load" ] || load=$(sysctl -n vm.loadavg 2>/dev/null | cut -d' ' -f2)
[ -n "$online" ] || cpus=$(getconf _NPROCESSORS_ONLN 2>/dev/null)
printf 'H\t%s\t%s\t%s\t%s\n' "$load" "$cpus" "$mem" "$online"
t list-windows -a -F 'A #{window_activity} #{session_name}' 2>/dev/null
while [ "$#" -ge 2 ]; do
  id=$1; dir=$2; shift 2
  case $dir in "~") dir=$HOME ;; "~/"*) dir=$HOME/${dir#"~/"} ;; esac
  # git writes straight to our stdout: no $(...) subshell, no `wc`, per worker.
  printf 'W\t%s\t' "$id"
  if [ -d "$dir" ]; then
    git -C "$dir" log -1 --format='%H%x09%ct%x09%s' 2>/dev/null
    printf '\nS\n'
    git --no-optional-locks -C "$dir" status --porcelain 2>/dev/null
  else
    printf '\nS\n'
  fi
  printf 'E\n'
done
exit 0
"""


def probe_argv(workers: Mapping[str, str], tmux: TmuxTarget = DEFAULT_TMUX) -> list[str]:
    """The probe's argv: `sh -c SCRIPT czarina-probe MODE SOCKET [ID DIR]...`."""
    socket = tmux.socket_args() or ["", ""]
    argv = ["sh", "-c", PROBE_SCRIPT, "czarina-probe", *socket]
    for worker_id, checkout in sorted(workers.items()):
        argv += [check_worker_id(worker_id), check_path(checkout, "checkout directory")]
    return argv


async def probe_host(
    runner: CommandRunner,
    host_id: str,
    workers: Mapping[str, str],
    *,
    tmux: TmuxTarget = DEFAULT_TMUX,
    now: float,
    timeout: float = PROBE_TIMEOUT,
) -> HostProbe:
    """Probe one host in one command. Never raises for a host problem: an unreachable
    host, a timeout or a failed command yields `HostProbe(reachable=False, error=...)`.
    Raises ValueError only for an invalid worker id or directory (a caller bug)."""
    argv = probe_argv(workers, tmux)
    try:
        result = await runner.run(argv, timeout=timeout)
    except (HostUnreachable, CommandTimeout, OSError) as exc:
        return HostProbe(host_id, reachable=False, probed_at=now, error=_describe(exc))
    if not result.ok:
        error = f"probe failed (exit {result.exit_status}): {result.stderr.strip()[-300:]}"
        return HostProbe(host_id, reachable=False, probed_at=now, error=error)
    return parse_probe_output(host_id, result.stdout, workers, now)


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    if isinstance(exc, HostUnreachable | CommandTimeout):
        return text
    return f"{type(exc).__name__}: {text}"


def parse_probe_output(
    host_id: str, output: str, workers: Mapping[str, str], now: float
) -> HostProbe:
    """Turn the probe script's records into a HostProbe (pure; unit-testable)."""
    load: float | None = None
    cpus: int | None = None
    mem: int | None = None
    activity: dict[str, float] = {}
    found: dict[str, tuple[int, CommitInfo | None]] = {}
    in_status: str | None = None   # the worker whose status lines we are reading
    current: str | None = None
    for line in output.splitlines():
        if in_status is not None:
            if line == "E":
                in_status = None
            elif line:
                dirty, commit = found[in_status]
                found[in_status] = (dirty + 1, commit)
            continue
        fields = line.split("\t")
        kind = fields[0]
        if kind == "H" and len(fields) >= 4:
            load, cpus = _float(fields[1]), _int(fields[2].strip())
            mem_kb = _int(fields[3].strip())
            mem = mem_kb // 1024 if mem_kb is not None else None
            if cpus is None and len(fields) >= 5:
                cpus = _count_cpus(fields[4])
        elif line.startswith("A "):
            parts = line.split(" ", 2)
            wid = worker_id_of_session(parts[2]) if len(parts) == 3 else None
            stamp = _float(parts[1])
            if wid and stamp is not None:
                activity[wid] = max(stamp, activity.get(wid, 0.0))
        elif kind == "W" and len(fields) >= 2:
            current = fields[1]
            found[current] = (0, _commit(fields[2:]))
        elif line == "S" and current is not None:
            in_status = current
    sessions: dict[str, SessionProbe] = {}
    for worker_id in set(workers) | set(activity):
        dirty, commit = found.get(worker_id, (0, None))
        sessions[worker_id] = SessionProbe(
            worker_id=worker_id,
            alive=worker_id in activity,
            pane_activity=activity.get(worker_id),
            last_commit=commit,
            dirty_files=dirty,
        )
    return HostProbe(
        host_id, reachable=True, probed_at=now, load_1m=load, cpus=cpus, mem_free_mb=mem,
        sessions=sessions,
    )


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
