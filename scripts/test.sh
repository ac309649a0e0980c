#!/usr/bin/env bash
# Set up everything the tests need, then run them. CI runs exactly this (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh dev
if [ -f scripts/install-test-deps.sh ]; then
    bash scripts/install-test-deps.sh
fi
.venv/bin/ruff check .
.venv/bin/lint-imports
exec .venv/bin/python -m pytest -q "$@"
