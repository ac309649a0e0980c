#!/usr/bin/env bash
# One-command GPU check (docs/models.md): tiny FLUX-Fill / Kontext / VLM and the perception bricks on cuda against
# cpu, a small flow on cuda, the out-of-memory path under a memory cap, vLLM in its own environment, resident
# memory, batch-8 speedup, the runtime's admitted-vs-measured memory and the `pytest -m gpu` suite, as named
# figures in the last lines. Without a CUDA device it prints "gpu-check: skipped: <why>" and exits 0; with
# --require-gpu it prints "gpu-check: FAILED: <why>" and exits 1.
#
#   bash scripts/gpu-check.sh                 # with the project's virtual environment in .venv (or PYTHON=...)
#   bash scripts/gpu-check.sh --require-gpu   # on a GPU machine: an environment without CUDA fails
set -uo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-.venv/bin/python}"
[ -x "$PYTHON" ] || PYTHON="$(command -v python3 || true)"
if [ -z "$PYTHON" ]; then
    case " $* " in
        *" --require-gpu "*) echo "gpu-check: FAILED: no Python found (set PYTHON or create .venv)"; exit 1 ;;
        *) echo "gpu-check: skipped: no Python found (set PYTHON or create .venv)"; exit 0 ;;
    esac
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1  # nothing is downloaded: every model is built here
LIMIT_S="${GPU_CHECK_LIMIT_S:-570}"  # under 10 minutes, whatever a check does
timeout --kill-after=10 "$LIMIT_S" "$PYTHON" benchmarks/gpu_check.py "$@"
status=$?
if [ "$status" -eq 124 ] || [ "$status" -eq 137 ]; then
    echo "gpu-check: timed out after ${LIMIT_S} s (the figures printed above are complete; the rest did not run)"
fi
exit "$status"
