#!/usr/bin/env bash
# System packages the test suite needs: Debian's chromium for the HTML report check (tests/test_report*.py).
set -euo pipefail
if ! command -v chromium >/dev/null 2>&1; then
    apt-get update
    apt-get install -y --no-install-recommends chromium
fi
