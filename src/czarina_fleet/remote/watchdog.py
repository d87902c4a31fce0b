"""The orphan watchdog: no launched host outlives its controller.

Bootstrap installs a small loop on every host the fleet launched (never on static hosts:
they are the user's machines). Every probe of the host refreshes a heartbeat file
(remote/probe.py writes it in the same round trip). When the heartbeat is older than
`fleet.orphan_timeout_s` (a laptop asleep, a controller killed, a lost state file), the
loop makes a final checkpoint of every worker checkout on the host (commit what is
uncommitted, push the branch to origin, never forced), writes `orphaned`, and runs the
driver's `self_shutdown` command (a power-off; AWS instances are launched with
InstanceInitiatedShutdownBehavior=terminate and GCP Spot VMs with termination action
DELETE, so that ends the billing; see docs/controller.md for Azure).

Everything lives in `<work_dir>/.czarina-fleet/`: `heartbeat`, `orphan_timeout` (read
on every turn, so a new timeout applies without a restart), `watchdog.sh`,
`watchdog.pid`, `watchdog.log`, `orphaned`. The loop is a plain background process (no
systemd needed; lab hosts have none), started once: a second install only rewrites the
timeout and the heartbeat. The scripts are fixed text; the work directory, timeout and
shutdown command reach them as positional arguments. The shutdown command is the
driver's own constant, never user input.
"""

from __future__ import annotations

from czarina_fleet.remote.runner import CommandRunner
from czarina_fleet.remote.tmux import RemoteOperationError
from czarina_fleet.remote.validate import check_path

STATE_DIR = ".czarina-fleet"
INSTALL_TIMEOUT = 30.0

WATCHDOG_LOOP = r"""
wd=$1; shutdown=$2; dir=$wd/.czarina-fleet
log() { printf '%s %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*" >> "$dir/watchdog.log"; }
age() {
  now=$(date +%s)
  hb=$(stat -c %Y "$dir/heartbeat" 2>/dev/null || date -r "$dir/heartbeat" +%s 2>/dev/null \
       || echo "$now")
  echo $((now - hb))
}
log "watching $dir/heartbeat"
while :; do
  timeout=$(cat "$dir/orphan_timeout" 2>/dev/null) || timeout=14400
  case $timeout in ''|*[!0-9]*) timeout=14400 ;; esac
  a=$(age)
  if [ "$a" -ge "$timeout" ]; then break; fi
  step=$(( (timeout - a) < 10 ? (timeout - a) : 10 ))
  sleep $(( step > 0 ? step : 1 ))
done
log "no heartbeat for ${a}s (orphan_timeout ${timeout}s): final checkpoint"
msg="czarina-fleet checkpoint: uncommitted work saved before the host shut itself down"
msg="$msg (its controller was silent for ${a}s)"
# checkouts: <wd>/<fleet id>/<repo>/<worker> (bootstrap.py), or <wd>/<repo>/<worker>
for g in "$wd"/*/*/*/.git "$wd"/*/*/.git; do
  [ -e "$g" ] || continue
  w=${g%/.git}
  branch=$(git -C "$w" symbolic-ref -q --short HEAD) || continue
  git -C "$w" add -A
  if ! git -C "$w" diff --cached --quiet; then
    git -C "$w" -c user.name=czarina-fleet -c user.email=fleet@czarina.invalid \
      commit -q --no-verify -m "$msg"
  fi
  if git -C "$w" push -q origin "HEAD:refs/heads/$branch" >> "$dir/watchdog.log" 2>&1; then
    log "pushed $branch from $w"
  else
    log "push of $branch from $w failed"
  fi
done
date +%s > "$dir/orphaned"
log "shutting down: $shutdown"
sh -c "$shutdown" >> "$dir/watchdog.log" 2>&1
"""

INSTALL_SCRIPT = r"""
set -eu
wd=$1; timeout=$2; shutdown=$3; loop=$4
case $wd in "~") wd=$HOME ;; "~/"*) wd=$HOME/${wd#"~/"} ;; esac
dir=$wd/.czarina-fleet
mkdir -p -- "$dir"
: > "$dir/heartbeat"
printf '%s\n' "$timeout" > "$dir/orphan_timeout"
printf '%s' "$loop" > "$dir/watchdog.sh"
pid=$(cat "$dir/watchdog.pid" 2>/dev/null || true)
if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
  printf 'watchdog\trunning\t%s\n' "$pid"; exit 0
fi
nohup sh "$dir/watchdog.sh" "$wd" "$shutdown" < /dev/null >> "$dir/watchdog.log" 2>&1 &
printf '%s\n' "$!" > "$dir/watchdog.pid"
printf 'watchdog\tstarted\t%s\n' "$!"
"""


def heartbeat_path(work_dir: str) -> str:
    """The file each probe refreshes (`~` expanded on the host)."""
    return f"{work_dir.rstrip('/')}/{STATE_DIR}/heartbeat"


async def install_watchdog(runner: CommandRunner, work_dir: str, orphan_timeout_s: float,
                           shutdown_command: str) -> str:
    """Start (or refresh) the watchdog on a launched host; returns its pid. Idempotent.
    Raises RemoteOperationError when the host refuses."""
    timeout = max(1, int(orphan_timeout_s))
    argv = ["sh", "-c", INSTALL_SCRIPT, "czarina-watchdog-install",
            check_path(work_dir, "work directory"), str(timeout), shutdown_command,
            WATCHDOG_LOOP]
    result = await runner.run(argv, timeout=INSTALL_TIMEOUT)
    if not result.ok:
        raise RemoteOperationError(runner.host_id, "could not start the orphan watchdog",
                                   result)
    for line in result.stdout.splitlines():
        if line.startswith("watchdog\t"):
            return line.rsplit("\t", 1)[-1]
    raise RemoteOperationError(runner.host_id, "watchdog install gave no pid", result)
