#!/usr/bin/env bash
# One-command GPU check (docs/models.md): tiny FLUX-Fill / Kontext / VLM on cuda against cpu, resident memory,
# batch-8 speedup, the runtime's admitted-vs-measured memory and the `pytest -m gpu` suite, as named figures in
# the last lines. Without a CUDA device it prints "gpu-check: skipped: <why>" and exits 0.
#
#   bash scripts/gpu-check.sh            # with the project's virtual environment in .venv (or PYTHON=...)
set -uo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-.venv/bin/python}"
[ -x "$PYTHON" ] || PYTHON="$(command -v python3 || true)"
if [ -z "$PYTHON" ]; then
    echo "gpu-check: skipped: no Python found (set PYTHON or create .venv)"
    exit 0
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1  # nothing is downloaded: every model is built here
LIMIT_S="${GPU_CHECK_LIMIT_S:-470}"  # under 8 minutes, whatever a check does
timeout --kill-after=10 "$LIMIT_S" "$PYTHON" benchmarks/gpu_check.py "$@"
status=$?
if [ "$status" -eq 124 ] || [ "$status" -eq 137 ]; then
    echo "gpu-check: timed out after ${LIMIT_S} s (the figures printed above are complete; the rest did not run)"
fi
exit "$status"
