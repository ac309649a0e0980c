#!/usr/bin/env bash
# The vLLM server: the production path of the vLLM engine (README "GPU", docs/models.md "vLLM"). It runs in its own
# environment, built once from its lock (infra/vllm/requirements.txt), and serves the OpenAI-compatible API that
# the `openai` engine speaks (planner.engine = "openai", planner.base_url = "http://HOST:PORT/v1").
#
#   bash infra/vllm/serve.sh Qwen/Qwen2.5-VL-7B-Instruct                         # http://127.0.0.1:8000/v1
#   bash infra/vllm/serve.sh Qwen/Qwen2.5-VL-7B-Instruct --enable-lora --lora-modules builder=/ckpt/builder-lora
#   bash infra/vllm/serve.sh --setup      # only build the environment (scripts/gpu-check.sh runs vLLM in it)
#
# Extra arguments go to `vllm serve` as they are. VLLM_VENV: where the environment lives (default infra/vllm/.venv);
# VLLM_HOST / VLLM_PORT: where it listens.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="${VLLM_VENV:-$here/.venv}"
if [ "$#" -lt 1 ]; then
    echo "usage: bash infra/vllm/serve.sh MODEL [vllm serve options...] | --setup" >&2
    exit 2
fi
if [ ! -x "$venv/bin/vllm" ]; then
    python3 -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet 'uv==0.13.*'
    "$venv/bin/python" -m uv pip install --python "$venv/bin/python" -r "$here/requirements.txt"
fi
if [ "$1" = "--setup" ]; then
    echo "vLLM environment ready: $venv"
    exit 0
fi
model="$1"
shift
exec "$venv/bin/vllm" serve "$model" --host "${VLLM_HOST:-127.0.0.1}" --port "${VLLM_PORT:-8000}" \
    --limit-mm-per-prompt '{"image": 2}' "$@"
