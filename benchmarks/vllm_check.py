"""The vLLM step of ``scripts/gpu-check.sh``, run by the vLLM environment's Python (``infra/vllm``): vLLM and this
project's environment cannot be one (docs/models.md, "vLLM"), and the engine's module needs only pydantic, numpy
and Pillow, which vLLM brings.

A vLLM ``LLM`` is built through the project's engine and model runtime on a tiny Qwen2-VL made here with
transformers (random weights, as the tests make theirs) plus a LoRA adapter made with peft; one batched ``chat`` of
two conversations (one with an image) runs under a JSON-schema constraint (``StructuredOutputsParams``) with the
adapter's ``LoRARequest``; every answer must parse and follow the schema. The engine is then evicted from the
runtime (``engine_core.shutdown()``), and the GPU's free memory must come back to within ``EVICTION_MARGIN`` of what
it was before the engine was built. Prints one line, ``vllm=...``; exit 1 when a check failed.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

EVICTION_MARGIN = 512 * 2**20  # GPU bytes that may stay taken after eviction: this process's CUDA context and cache
ENGINE_ARGS = {"gpu_memory_utilization": 0.2, "max_model_len": 1024, "enforce_eager": True, "max_lora_rank": 8,
               "max_num_seqs": 4}
COLOURS = ["red", "green", "blue"]
SCHEMA = {"type": "object", "properties": {"colour": {"type": "string", "enum": COLOURS}}, "required": ["colour"],
          "additionalProperties": False}


def save_lora(model: Path, directory: Path) -> Path:
    """A rank-8 LoRA adapter (random, non-zero) on the language model's attention of the tiny VLM at ``model``."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForImageTextToText

    base = AutoModelForImageTextToText.from_pretrained(model)
    adapted = get_peft_model(base, LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"],
                                              init_lora_weights=False))
    adapted.save_pretrained(directory)
    return directory


def follows_schema(answer: object) -> bool:
    if not isinstance(answer, str):
        return False  # a GenerationError
    try:
        parsed = json.loads(answer)
    except json.JSONDecodeError:
        return False
    return isinstance(parsed, dict) and set(parsed) == {"colour"} and parsed["colour"] in COLOURS


def main() -> int:
    import numpy as np
    import torch
    import vllm
    from tiny_vlm import save_tiny_vlm

    from legoedit_core.runtime import ModelRuntime
    from legoedit_core.settings.planner import PlannerSettings
    from legoedit_core.vlm.chat import Message, OutputFormat, shown_image
    from legoedit_core.vlm.engines.vllm import VLLMEngine

    with tempfile.TemporaryDirectory() as directory:
        model = save_tiny_vlm(Path(directory) / "vlm", width=128)
        lora = save_lora(model, Path(directory) / "lora")
        torch.cuda.init()
        free_before = torch.cuda.mem_get_info()[0]
        runtime = ModelRuntime()
        engine = VLLMEngine(PlannerSettings(engine="vllm", model=str(model), adapter=str(lora), device="cuda",
                                            dtype="bfloat16", temperature=0.0, max_new_tokens=24,
                                            engine_args=ENGINE_ARGS), runtime)
        picture = shown_image(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8), 64)
        chats = [[Message("user", "Which colour is the cup? Answer in JSON.", picture)],
                 [Message("user", "Name a colour, in JSON.")]]
        started = time.perf_counter()
        answers = engine.generate(chats, OutputFormat(json_schema=SCHEMA), [0, 1])
        seconds = time.perf_counter() - started
        held = free_before - torch.cuda.mem_get_info()[0]
        runtime.clear()  # evicts the engine: its engine core shuts down
        deadline = time.monotonic() + 60
        while (left := free_before - torch.cuda.mem_get_info()[0]) > EVICTION_MARGIN and time.monotonic() < deadline:
            time.sleep(1)  # the engine core's process exits, then the driver takes its memory back
    parsed = all(follows_schema(answer) for answer in answers)
    freed = left <= EVICTION_MARGIN
    print(f"vllm=vllm {vllm.__version__}: batched chat with a JSON schema and a LoRA request, answers parse "
          f"{parsed} ({answers!r}, first call {seconds:.0f} s incl. loading); engine held {held / 2**20:.0f} MiB, "
          f"after eviction {left / 2**20:.0f} MiB still taken (margin {EVICTION_MARGIN / 2**20:.0f} MiB)"
          + ("" if parsed and freed else "  FAILED"))
    return 0 if parsed and freed else 1


if __name__ == "__main__":
    raise SystemExit(main())
