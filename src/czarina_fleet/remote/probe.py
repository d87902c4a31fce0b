"""The status probe: one command, one round trip, every worker on a host.

The script is fixed text. Worker ids and checkout directories reach it as positional
arguments (`sh -c SCRIPT probe MODE SOCKET ID DIR ID DIR ...`), so they are data to the
shell, never code. Its output is tab-separated records:

    H <load1> <cpus> <mem_free_mb>
    A <window activity> <session name>     (space-separated: tmux rewrites a tab in
                                            -F output to "_" outside a UTF-8 locale)
    W <worker id> <dirty files> <hash> <commit time> <subject>
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
load=$(cut -d' ' -f1 /proc/loadavg 2>/dev/null || sysctl -n vm.loadavg 2>/dev/null | cut -d' ' -f2)
cpus=$(getconf _NPROCESSORS_ONLN 2>/dev/null || nproc 2>/dev/null)
mem=$(awk '/^MemAvailable:/ {print int($2/1024)}' /proc/meminfo 2>/dev/null)
printf 'H\t%s\t%s\t%s\n' "$load" "$cpus" "$mem"
t list-windows -a -F 'A #{window_activity} #{session_name}' 2>/dev/null
while [ "$#" -ge 2 ]; do
  id=$1; dir=$2; shift 2
  case $dir in "~") dir=$HOME ;; "~/"*) dir=$HOME/${dir#"~/"} ;; esac
  dirty=
  log=
  if [ -d "$dir" ]; then
    dirty=$(git -C "$dir" status --porcelain 2>/dev/null | wc -l | tr -d ' ')
    log=$(git -C "$dir" log -1 --format='%H%x09%ct%x09%s' 2>/dev/null)
  fi
  printf 'W\t%s\t%s\t%s\n' "$id" "$dirty" "$log"
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
    for line in output.splitlines():
        fields = line.split("\t")
        kind = fields[0]
        if kind == "H" and len(fields) >= 4:
            load, cpus, mem = _float(fields[1]), _int(fields[2]), _int(fields[3])
        elif line.startswith("A "):
            parts = line.split(" ", 2)
            wid = worker_id_of_session(parts[2]) if len(parts) == 3 else None
            stamp = _float(parts[1])
            if wid and stamp is not None:
                activity[wid] = max(stamp, activity.get(wid, 0.0))
        elif kind == "W" and len(fields) >= 3:
            found[fields[1]] = (_int(fields[2]) or 0, _commit(fields[3:]))
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
