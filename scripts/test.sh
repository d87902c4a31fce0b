#!/usr/bin/env bash
# Sets up (see setup.sh) and runs the whole test suite: lint, then pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
.venv/bin/ruff check src tests bench
exec .venv/bin/pytest -q "$@"
