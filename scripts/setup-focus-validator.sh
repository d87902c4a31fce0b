#!/usr/bin/env bash
# Installs the FinOps Foundation's focus-validator into .venv-focus for the FOCUS
# conformance test (tests/test_focus_validator.py). It needs Python 3.12, which Debian 12
# does not package: this uses a python3.12 already on the machine (PATH, pyenv's
# versions, /usr/bin), else asks uv (from PyPI) to install one; uv downloads its Pythons
# from outside PyPI, so that step needs that network.
set -euo pipefail
cd "$(dirname "$0")/.."
req=scripts/focus-validator-requirements.txt
venv=.venv-focus
stamp=$venv/.installed-$(sha1sum "$req" | cut -c1-12)
[ -f "$stamp" ] && [ -x "$venv/bin/focus-validator" ] && exit 0

find_python312() {
  local c
  for c in "$(command -v python3.12 || true)" \
           "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.12*/bin/python3.12 \
           /root/.pyenv/versions/3.12*/bin/python3.12 \
           /usr/bin/python3.12 /usr/local/bin/python3.12; do
    if [ -n "$c" ] && [ -x "$c" ] && "$c" -c 'import venv, ensurepip' >/dev/null 2>&1; then
      echo "$c"
      return 0
    fi
  done
  return 1
}

if ! py=$(find_python312); then
  echo "setup: no Python 3.12 found; trying uv python install 3.12"
  if .venv/bin/pip install -q uv >/dev/null 2>&1 && .venv/bin/uv python install 3.12 >/dev/null 2>&1; then
    py=$(.venv/bin/uv python find 3.12)
  else
    echo "setup: no Python 3.12 for focus-validator (install one: pyenv install 3.12," \
         "or uv python install 3.12); tests/test_focus_validator.py needs it" >&2
    exit 1
  fi
fi
echo "setup: installing focus-validator with $py into $venv (log: $venv/install.log)"
rm -rf "$venv"
"$py" -m venv "$venv"
if ! "$venv/bin/pip" install -q -r "$req" >"$venv/install.log" 2>&1; then
  tail -20 "$venv/install.log" >&2
  echo "setup: focus-validator install failed; see $venv/install.log" >&2
  exit 1
fi
touch "$stamp"
