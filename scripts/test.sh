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
# Three workers, one test module each at a time (module fixtures: a Prefect test server, S3 servers, tiny models):
# most of the suite's time is spent waiting on servers and subprocesses, so three workers fit two cores.
exec .venv/bin/python -m pytest -q -n "${LEGOEDIT_TEST_WORKERS:-3}" --dist loadfile "$@"
