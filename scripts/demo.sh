#!/usr/bin/env bash
# Sets up (see setup.sh) and runs the main job on the embedded default: the controller
# on examples/quickstart (local workers in tmux, SQLite state, no cloud account) for a
# bounded time, then the dashboard. The example is copied to a scratch directory so
# the checkout stays clean.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
seconds=${CZARINA_DEMO_SECONDS:-30}
work=${CZARINA_DEMO_DIR:-$(mktemp -d /tmp/czarina-quickstart.XXXXXX)}
cp -r examples/quickstart/. "$work/"
cd "$work"
if [ ! -d .git ]; then
  git init -q -b main
  git -c user.name=czarina-demo -c user.email=demo@czarina.invalid add -A
  git -c user.name=czarina-demo -c user.email=demo@czarina.invalid commit -q -m "quickstart project"
fi
# The demo's own tmux server: it never sees (or touches) the user's own sessions, not
# even ones named czar-worker-*; killed at the end, by name.
export CZARINA_TMUX_SOCKET=${CZARINA_TMUX_SOCKET:-czarina-demo-$$}
trap 'tmux -L "$CZARINA_TMUX_SOCKET" kill-server 2>/dev/null || true' EXIT
czarina() { "$OLDPWD/.venv/bin/czarina" "$@"; }
echo "== czarina config check"
czarina config check
echo "== czarina controller run --for $seconds (workers start, the stand-in agents commit)"
czarina controller run --interval 5 --for "$seconds"
echo "== czarina status"
czarina status
echo "== czarina controller run --once --stop-all (stops the demo's workers)"
czarina controller run --once --stop-all
echo "The demo project is in $work"
