#!/usr/bin/env bash
# The whole loop on real hosts, without a cloud account (needs root): copies this
# example to $CZARINA_LAB_DIR (default /tmp/czarina-lab-demo), makes it a git
# repository with a bare origin the lab hosts clone, then lets the controller launch lab
# hosts (network namespaces with their own sshd), bootstrap them over SSH, start the
# stand-in agents there, and, once scaled to zero, shut the idle hosts down.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
czarina() { "$repo/.venv/bin/czarina" "$@"; }
[ "$(id -u)" -eq 0 ] || { echo "demo: lab hosts need root (run: sudo $0)" >&2; exit 1; }
[ -x "$repo/.venv/bin/czarina" ] || "$repo/scripts/setup.sh"

work=${CZARINA_LAB_DIR:-/tmp/czarina-lab-demo}
if [ -e "$work/proj/.czarina/fleet.db" ]; then
  echo "demo: $work holds an earlier run; tear it down first:" >&2
  echo "  (cd $work/proj && $repo/.venv/bin/czarina controller run --once --stop-all) && rm -rf $work" >&2
  exit 1
fi
mkdir -p "$work" && chmod 755 "$work"          # lab users clone $work/origin.git
rm -rf "$work/proj" "$work/origin.git"
cp -r "$here/." "$work/proj"
cd "$work/proj"
python3 - "$work/origin.git" <<'PY'
import json, sys
path = ".czarina/config.json"
cfg = json.load(open(path))
cfg["fleet"]["repository_url"] = sys.argv[1]
json.dump(cfg, open(path, "w"), indent=2)
PY
git init -q -b main
git -c user.name=czarina-demo -c user.email=demo@czarina.invalid add -A
git -c user.name=czarina-demo -c user.email=demo@czarina.invalid commit -q -m "lab example"
git clone -q --bare . "$work/origin.git"
chmod -R a+rX "$work/origin.git"

echo "== czarina config check"
czarina config check
echo "== czarina controller run (launch, bootstrap, start; about 20 s)"
czarina controller run --interval 2 --for 20
echo "== czarina hosts"; czarina hosts
echo "== czarina status"; czarina status
echo "== czarina logs backend (the stand-in agent, on its lab host)"
czarina logs backend --lines 5
echo "== czarina scale --max 0 (workers stop; the hosts go idle)"
czarina scale --max 0
echo "== czarina controller run (idle_timeout_s is 30: the idle hosts are shut down)"
czarina controller run --interval 5 --for 45
echo "== czarina hosts"; czarina hosts
echo "== czarina events (the whole story)"; czarina events --limit 40
echo "The demo project is in $work/proj; lab namespaces left: $(ip netns list | grep -c czlab- || true)"
