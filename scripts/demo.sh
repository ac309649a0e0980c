#!/usr/bin/env bash
# Set up legoedit and run the main job on the bundled example catalogue (CPU profile, local files, local Prefect).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/legoedit demo "$@"
