#!/usr/bin/env bash
# Installs the infrastructure checkers (checkov, parliament, python-hcl2) into their own
# virtual environment, .venv-iac, for tests/test_terraform_examples.py: checkov pins
# many libraries the project also uses, so they stay apart. `terraform` itself comes
# from no package registry: the test runs `terraform validate` only where a terraform
# binary and a local copy of the hashicorp/aws provider exist (see that test).
set -euo pipefail
cd "$(dirname "$0")/.."
req=scripts/iac-tools-requirements.txt
con=scripts/iac-tools-constraints.txt
venv=.venv-iac
stamp=$venv/.installed-$(cat "$req" "$con" | sha1sum | cut -c1-12)
[ -f "$stamp" ] && [ -x "$venv/bin/checkov" ] && exit 0
echo "setup: installing checkov, parliament and python-hcl2 into $venv (log: $venv/install.log)"
rm -rf "$venv"
python3 -m venv "$venv"
if ! "$venv/bin/pip" install -q -r "$req" -c "$con" >"$venv/install.log" 2>&1; then
  tail -20 "$venv/install.log" >&2
  echo "setup: installing the infrastructure checkers failed; see $venv/install.log" >&2
  exit 1
fi
touch "$stamp"
