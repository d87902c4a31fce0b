#!/usr/bin/env bash
# The supported-SDK-versions job: installs the lowest cloud SDK versions we claim
# (constraints/sdk-floors.txt, equal to pyproject.toml's floors) into a separate virtual
# environment, .venv-floors, and runs the cloud driver tests (the real SDK clients against
# moto and the spec-validated fake GCE/ARM servers) with them. Called by .ci/run after the
# main suite; about ten minutes on a fresh machine (the Azure wheels are large), two once
# the venv exists.
# SDK_FLOORS=<file> tries other versions (used to find the floors).
set -euo pipefail
cd "$(dirname "$0")/.."
constraints=${SDK_FLOORS:-constraints/sdk-floors.txt}
venv=${SDK_FLOORS_VENV:-.venv-floors}

if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
stamp="$venv/.installed-$(cat pyproject.toml "$constraints" | sha1sum | cut -c1-12)"
if [ ! -f "$stamp" ]; then
  echo "sdk-floors: installing the floor versions into $venv (log: $venv/install.log)"
  if ! { "$venv/bin/pip" install -q --upgrade pip &&
         "$venv/bin/pip" install -q -c "$constraints" -e '.[test]'; } >"$venv/install.log" 2>&1; then
    tail -40 "$venv/install.log" >&2
    echo "sdk-floors: pip install failed; see $venv/install.log" >&2
    exit 1
  fi
  rm -f "$venv"/.installed-*
  touch "$stamp"
fi
# pip may not honour a pin it cannot satisfy silently: check what is installed.
"$venv/bin/python" - "$constraints" <<'PY'
import sys
from importlib.metadata import version

for line in open(sys.argv[1]):
    line = line.split("#")[0].strip()
    if line:
        name, _, wanted = line.partition("==")
        have = version(name)
        if have != wanted:
            sys.exit(f"sdk-floors: {name} {have} installed, {wanted} wanted")
        print(f"sdk-floors: {name}=={have}")
PY
exec "$venv/bin/pytest" -q -p no:cacheprovider tests/test_aws_provider.py \
  tests/test_gcp_provider.py tests/test_azure_provider.py tests/test_fake_conformance.py "$@"
