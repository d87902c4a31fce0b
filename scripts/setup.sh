#!/usr/bin/env bash
# Sets up everything czarina-fleet needs on a fresh Debian machine (run as root, or
# with the system packages already installed): tmux, git, OpenSSH, iproute2, and a
# Python virtual environment at .venv with the package and its test dependencies.
# The lab hosts (network namespaces with their own sshd, used by the lab provider and
# its tests) also need useradd/usermod (passwd), runuser and flock (util-linux), ps
# (procps), ssh-keygen/ssh-keyscan (openssh-client), and curl (the probe reads a
# cloud's metadata notice with it; lab hosts serve one).
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
for pair in tmux:tmux git:git sshd:openssh-server ssh:openssh-client ip:iproute2 \
            ssh-keygen:openssh-client ssh-keyscan:openssh-client useradd:passwd \
            usermod:passwd runuser:util-linux flock:util-linux ps:procps \
            python3:python3 curl:curl; do
  cmd=${pair%%:*} pkg=${pair#*:}
  command -v "$cmd" >/dev/null 2>&1 || [ -x "/usr/sbin/$cmd" ] || need+=("$pkg")
done
# Debian's python3 makes virtual environments only with python3-venv (ensurepip).
if ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
  need+=(python3-venv)
fi
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: missing system packages: ${need[*]} (install them as root: apt-get install ${need[*]})" >&2
    exit 1
  fi
  echo "setup: installing system packages: ${need[*]} (apt-get; about a minute)"
  export DEBIAN_FRONTEND=noninteractive
  echo "setup: apt-get update"
  apt-get update -qq
  echo "setup: apt-get install"
  apt-get install -y -qq "${need[@]}" >/dev/null
fi

# Long steps print a line every 10 s (elapsed, packages so far, the one in hand), so a
# first run is never silent for minutes while pip downloads.
progress() {  # progress PID LOG
  local start=$SECONDS next=$((SECONDS + 10)) n last
  while kill -0 "$1" 2>/dev/null; do
    sleep 1
    [ "$SECONDS" -ge "$next" ] || continue
    next=$((next + 10))
    n=$(grep -cE '^(Collecting|Processing)' "$2" 2>/dev/null || true)
    last=$(grep -E '^ *(Collecting|Processing|Obtaining|Installing|Getting|Preparing|Building)' \
           "$2" 2>/dev/null | tail -1 | sed 's/^ *//; s/ (from .*//; s/: started$//' | cut -c1-70 \
           || true)  # no match yet is no error (set -e, pipefail)
    case $last in
      "Installing collected"*)  # the long quiet part: count what has landed so far
        last="installing: $( (ls -d .venv/lib/python3*/site-packages/*.dist-info 2>/dev/null \
               || true) | wc -l) in .venv of ${n:-?}" ;;
    esac
    echo "setup: $((SECONDS - start))s, ${n:-0} packages so far${last:+ ($last)}"
  done
}
mkdir -p /run/sshd 2>/dev/null || true

if [ ! -x .venv/bin/python ]; then
  echo "setup: creating the Python virtual environment .venv"
  python3 -m venv .venv
fi
stamp=.venv/.installed-$(sha1sum pyproject.toml | cut -c1-12)
if [ ! -f "$stamp" ]; then
  echo "setup: installing Python packages into .venv (first time: 1-3 minutes; log: .venv/install.log)"
  { .venv/bin/pip install --upgrade pip && .venv/bin/pip install --progress-bar off -e '.[test]'; } \
      >.venv/install.log 2>&1 &
  pip_pid=$!
  progress "$pip_pid" .venv/install.log
  if ! wait "$pip_pid"; then
    tail -40 .venv/install.log >&2
    echo "setup: pip install failed; see .venv/install.log" >&2
    exit 1
  fi
  rm -f .venv/.installed-*
  touch "$stamp"
  echo "setup: Python packages installed"
fi

# The FinOps Foundation's FOCUS validator runs in its own Python 3.12 environment
# (.venv-focus) for tests/test_focus_validator.py. Without it that test skips on a
# developer's machine and fails in CI, so CI stops here instead.
if ! ./scripts/setup-focus-validator.sh; then
  if [ -n "${CI:-}" ]; then exit 1; fi
  echo "setup: focus-validator not installed; tests/test_focus_validator.py will fail" >&2
fi

# checkov, parliament and python-hcl2 for tests/test_terraform_examples.py (.venv-iac).
if ! ./scripts/setup-iac-tools.sh; then
  if [ -n "${CI:-}" ]; then exit 1; fi
  echo "setup: infrastructure checkers not installed; tests/test_terraform_examples.py will fail" >&2
fi
