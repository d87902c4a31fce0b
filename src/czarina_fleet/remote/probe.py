"""The status probe: one command, one round trip, every worker on a host.

The script is fixed text. Worker ids, checkout directories and the commit hash the
caller last saw reach it as positional arguments (`sh -c SCRIPT probe MODE SOCKET
HEARTBEAT [ID DIR KNOWN_HASH]...`), so they are data to the shell, never code. On a
launched host HEARTBEAT is the orphan watchdog's heartbeat file (remote/watchdog.py),
refreshed by a shell redirection (no extra process, no extra round trip); "" elsewhere.
Its output:

    H <load1> <cpu count or ""> <MemAvailable kB> <online cpu list, e.g. 0-3 (Linux)>
    A <window activity> <pane pid> <fleet mark>:<ready> <session name>   (space-
                                            separated: tmux rewrites a tab in -F output
                                            to "_" outside a UTF-8 locale; an unmarked
                                            session has ":")
    W <worker id>
    <`git status --porcelain=v2 --branch` lines: "# branch.oid HASH", one per change>
    E
    C <hash> <commit time> <subject>       (only when HEAD differs from KNOWN_HASH)
    U <time its processes last used CPU>   (a live session; Linux /proc only)
    N <cloud> <item> <body>                (hosts of a cloud only: its metadata
                                            notice, remote/metadata.py)

With an `owner` (the fleet id), only sessions carrying that mark count as workers;
look-alike `czar-worker-*` sessions without it are listed in `HostProbe.foreign`, to be
reported, never acted on.

Passing the known hash lets the script skip `git log` when nothing was committed: one
git process per worker per poll instead of two. The records are read by probe_parse.py.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from czarina_fleet.model.fleet import CommitInfo, HostProbe
from czarina_fleet.remote.metadata import metadata_script
from czarina_fleet.remote.probe_parse import parse_probe_output
from czarina_fleet.remote.runner import CommandRunner, CommandTimeout, HostUnreachable
from czarina_fleet.remote.tmux_target import DEFAULT_TMUX, TmuxTarget
from czarina_fleet.remote.validate import check_path, check_worker_id

PROBE_TIMEOUT = 10.0
_HASH = re.compile(r"^[0-9a-f]{7,64}$")

PROBE_SCRIPT = r"""
mode=$1; sock=$2; hb=$3; shift 3
case $hb in "~/"*) hb=$HOME/${hb#"~/"} ;; esac
if [ -n "$hb" ] && [ -d "${hb%/*}" ]; then true 2>/dev/null > "$hb"; fi
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
f='A #{window_activity} #{pane_pid} #{@czarina_fleet}:#{@czarina_ready} #{session_name}'
wl=$(t list-windows -a -F "$f" 2>/dev/null)
[ -n "$wl" ] && printf '%s\n' "$wl"
cpu_ok=; up=; bid=; sbt=
case $wl in (*czar-worker-*)  # now = boot time + uptime: builtins, no `date` process
  read -r up _ < /proc/uptime
  read -r bid < /proc/sys/kernel/random/boot_id
  case ${up%.*} in (''|*[!0-9]*) ;; (*) cpu_ok=1 ;; esac
esac 2>/dev/null
gs() { git --no-optional-locks -C "$1" status --porcelain=v2 --branch 2>/dev/null; }
nl='
'
while [ "$#" -ge 3 ]; do
  id=$1; dir=$2; known=$3; shift 3
  case $dir in "~") dir=$HOME ;; "~/"*) dir=$HOME/${dir#"~/"} ;; esac
  printf 'W\t%s\n' "$id"
  st=
  [ -d "$dir" ] && st=$(gs "$dir")
  printf '%s\nE\n' "$st"
  # One git per worker: `git log` only when HEAD moved since the caller last saw it.
  oid=${st#*"# branch.oid "}; oid=${oid%%"$nl"*}
  if [ -n "$st" ] && [ "$oid" != "$known" ]; then
    printf 'C\t'; git -C "$dir" log -1 --format='%H%x09%ct%x09%s' 2>/dev/null; printf '\n'
  fi
  [ -n "$cpu_ok" ] && cpu "$id" "$dir"
done
"""

# When a worker last used CPU: the CPU ticks of its pane's process tree now (walked
# through /proc/PID/task/PID/children with builtins; one `cat` reads a large tree's
# stat files), against what
# the last probe (of any caller: controller or `czarina status`) wrote in the checkout's
# git directory (never in the work tree: it would show as a change). Busy: more than 5%
# of a CPU since the last probe (USER_HZ 100: over 5 ticks a second). The first probe
# counts as busy.
CPU_SCRIPT = r"""
ticks_of() {  # utime + stime of $1 and its descendants (at most 256 processes)
  tk=0; n=0; ps=; set -- "$1"
  while [ "$#" -gt 0 ] && [ "$n" -lt 256 ]; do
    p=$1; shift
    case $p in (''|*[!0-9]*) continue ;; esac
    [ -e "/proc/$p/stat" ] || continue
    n=$((n + 1)); ps="$ps /proc/$p/stat"
    c=; read -r c < "/proc/$p/task/$p/children" 2>/dev/null
    set -- "$@" $c
  done
  # dash's `read` takes a byte per system call (some 300 per stat line, 0.2-0.25 ms of
  # CPU here); one `cat` of every stat file costs a process start (about 2.4 ms) and
  # 0.06 ms a file: cheaper past some 10 processes (24: 6.1-6.4 -> 3.6-3.9 ms).
  if [ "$n" -gt 10 ]; then
    l=$(cat $ps 2>/dev/null)
    set -f; IFS=$nl; set -- $l; unset IFS; set +f  # a line each, split in one pass
    for l do stat_ticks "${l#*")"}"; done
  else
    for p in $ps; do
      l=; IFS=')' read -r _ l < "$p" 2>/dev/null && stat_ticks "$l"
    done
  fi
}
stat_ticks() {  # the fields after the process name "(...)"; a name holding ")" misreads
  set -- $1
  case ${12}${13} in (''|*[!0-9]*) ;; (*) tk=$((tk + ${12} + ${13})) ;; esac
}
cpu() {
  d=$2; pid=; rest=$wl
  while [ -n "$rest" ]; do  # its session's line in the listing: "A act PID mark name"
    line=${rest%%"$nl"*}; rest=${rest#"$line"}; rest=${rest#"$nl"}
    case $line in (*" czar-worker-$1") set -- $line; pid=$3; break ;; esac
  done
  case $pid in (''|*[!0-9]*) return 0 ;; esac
  ticks_of "$pid"
  m=
  if [ -d "$d/.git" ]; then m=$d/.git/czarina-cpu
  elif [ -f "$d/.git" ]; then  # a worktree: "gitdir: PATH" (only an absolute one)
    g=; read -r _ g < "$d/.git"; case $g in (/*) m=$g/czarina-cpu ;; esac
  fi
  old= then= at= mb= mbid=
  [ -n "$m" ] && read -r old then at mb mbid < "$m" 2>/dev/null
  clock "$mb" "$mbid" || return 0
  case $old$then$at in (*[!0-9]*) old= ;; esac
  if [ -z "$old" ] || [ -z "$at" ] || [ "$now" -le "$then" ] \
     || [ $((tk - old)) -gt $((5 * (now - then))) ] || [ "$tk" -lt "$old" ]; then
    at=$now
  fi
  # Rewritten in place, padded to one length (no truncation: truncating and writing
  # anew cost some 0.13 ms a worker here, an overwrite 0.01 ms); `read` takes the
  # first line only, so a longer old mark's tail past it never counts.
  [ -n "$m" ] && printf '%-99s\n' "$tk $now $at $b $bid" 1<> "$m" 2>/dev/null
  printf 'U\t%s\n' "$at"
}
# now = boot time + uptime. The boot time is kept in the mark with the boot's id: dash's
# `read` takes a byte per system call, and /proc/stat is some 30 KB on a 96-CPU host
# (its interrupt counts), about 20 ms of the host's CPU per probe; read once per boot
# (and once per probe at most: sbt), not every probe.
clock() {
  b=
  [ -n "$bid" ] && [ "$2" = "$bid" ] && b=$1
  case $b in (''|*[!0-9]*)
    if [ -z "$sbt" ]; then
      while read -r k v _; do [ "$k" = btime ] && { sbt=$v; break; }; done < /proc/stat
    fi 2>/dev/null
    b=$sbt ;;
  esac
  case $b in (''|*[!0-9]*) return 1 ;; esac
  now=$((b + ${up%.*}))
}
"""


def probe_argv(workers: Mapping[str, str], tmux: TmuxTarget = DEFAULT_TMUX,
               known: Mapping[str, CommitInfo] | None = None,
               cloud: str | None = None, heartbeat: str | None = None) -> list[str]:
    """The probe's argv: `sh -c SCRIPT czarina-probe MODE SOCKET HEARTBEAT [ID DIR
    HASH]...`; on a host of `cloud` the script also reads that cloud's metadata notice."""
    socket = tmux.socket_args() or ["", ""]
    # All output in one write at the end: each printf or tmux line written as it comes
    # wakes sshd and becomes an SSH packet of its own; the controller paid about 10 per
    # host per poll (in the poll bench, its CPU per poll fell from 14.4 to 10.0 ms).
    script = (CPU_SCRIPT + "probe() {\n" + PROBE_SCRIPT + metadata_script(cloud)
              + "}\nout=$(probe \"$@\")\nprintf '%s\\n' \"$out\"\nexit 0\n")
    beat = check_path(heartbeat, "heartbeat file") if heartbeat else ""
    argv = ["sh", "-c", script, "czarina-probe", *socket, beat]
    for worker_id, checkout in sorted(workers.items()):
        seen = (known or {}).get(worker_id)
        argv += [check_worker_id(worker_id), check_path(checkout, "checkout directory"),
                 seen.hash if seen is not None and _HASH.match(seen.hash) else ""]
    return argv


async def probe_host(
    runner: CommandRunner,
    host_id: str,
    workers: Mapping[str, str],
    *,
    tmux: TmuxTarget = DEFAULT_TMUX,
    now: float,
    timeout: float = PROBE_TIMEOUT,
    commits: dict[str, CommitInfo] | None = None,
    cloud: str | None = None,
    instance: str | None = None,
    heartbeat: str | None = None,
    owner: str | None = None,
) -> HostProbe:
    """Probe one host in one command. Never raises for a host problem: an unreachable
    host, a timeout or a failed command yields `HostProbe(reachable=False, error=...)`.
    Raises ValueError only for an invalid worker id or directory (a caller bug).

    `commits`, if given, is a cache of each worker's last commit that this function
    reads and updates (keep one per host across polls): it spares a `git log` per
    worker whose HEAD has not moved. `cloud` (aws, gcp, azure) makes it read that
    cloud's interruption notice too; pass it only for a host of that cloud, with
    `instance`, the VM's name as the cloud knows it. `heartbeat`, if given, is the
    orphan watchdog's heartbeat file this probe refreshes."""
    argv = probe_argv(workers, tmux, commits, cloud, heartbeat)
    try:
        result = await runner.run(argv, timeout=timeout)
    except (HostUnreachable, CommandTimeout, OSError) as exc:
        return HostProbe(host_id, reachable=False, probed_at=now, error=_describe(exc))
    if not result.ok:
        error = f"probe failed (exit {result.exit_status}): {result.stderr.strip()[-300:]}"
        return HostProbe(host_id, reachable=False, probed_at=now, error=error)
    probe = parse_probe_output(host_id, result.stdout, workers, now, commits, instance,
                               owner=owner)
    if commits is not None:
        commits.clear()
        commits.update({w: p.last_commit for w, p in probe.sessions.items() if p.last_commit})
    return probe


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    if isinstance(exc, HostUnreachable | CommandTimeout):
        return text
    return f"{type(exc).__name__}: {text}"
