"""The vLLM engine: offline ``LLM.chat`` over a whole batch, structured outputs, optional LoRA adapter.

vLLM is an optional extra (``pip install 'legoedit[vllm]'``). Everything about a request (conversation, sampling,
structured-output constraint, LoRA request, engine arguments) is built here as plain data; ``_vllm_chat`` is the
one small function that imports vLLM and turns that data into its objects.
"""

from __future__ import annotations

import json
import threading
from typing import Any

from legoedit_core.planners.chat import Chat, GenerationError, OutputFormat, openai_messages
from legoedit_core.planners.grammar import build_grammar
from legoedit_core.planners.settings import PlannerSettings

LORA_NAME = "builder"
MISSING = "the vllm engine needs vLLM, an optional extra: pip install 'legoedit[vllm]' (GPU machines only)"


def llm_args(settings: PlannerSettings) -> dict[str, Any]:
    """Keyword arguments of ``vllm.LLM``: one image per prompt, LoRA enabled when an adapter is set."""
    args: dict[str, Any] = {"model": settings.model, "dtype": settings.dtype, "limit_mm_per_prompt": {"image": 1}}
    if settings.adapter:
        args["enable_lora"] = True
    return args | settings.engine_args


def structured_outputs(fmt: OutputFormat | None) -> dict[str, Any] | None:
    """Keyword arguments of ``StructuredOutputsParams``: the schema, or the composed grammar when it has reasoning."""
    if fmt is None:
        return None
    if fmt.think:
        return {"grammar": str(build_grammar(fmt))}
    if fmt.json_schema is not None:
        return {"json": fmt.json_schema}
    return {"regex": fmt.regex}


def sampling_args(settings: PlannerSettings, fmt: OutputFormat | None, seed: int) -> dict[str, Any]:
    """Keyword arguments of ``SamplingParams`` for one request (``structured_outputs`` still as a dict)."""
    args: dict[str, Any] = {"temperature": settings.temperature, "top_p": settings.top_p,
                            "max_tokens": settings.max_new_tokens, "seed": seed}
    constraint = structured_outputs(fmt)
    if constraint is not None:
        args["structured_outputs"] = constraint
    return args


def lora_args(settings: PlannerSettings) -> dict[str, Any] | None:
    """Keyword arguments of ``LoRARequest`` for the Builder adapter, or None without one."""
    if not settings.adapter:
        return None
    return {"lora_name": LORA_NAME, "lora_int_id": 1, "lora_path": settings.adapter}


class VLLMEngine:
    """All chats of a batch go to vLLM in one ``LLM.chat`` call."""

    def __init__(self, settings: PlannerSettings) -> None:
        if not settings.model:
            raise ValueError("the vllm engine needs planner.model (a hub id or a local path)")
        self.settings = settings
        self.name = f"vllm:{settings.model}" + (f"+{settings.adapter}" if settings.adapter else "")

    def generate(self, chats: list[Chat], fmt: OutputFormat | None, seeds: list[int]) -> list[str | GenerationError]:
        conversations = [openai_messages(chat) for chat in chats]
        sampling = [sampling_args(self.settings, fmt, seed) for seed in seeds]
        return _vllm_chat(llm_args(self.settings), conversations, sampling, lora_args(self.settings))


_llms: dict[str, Any] = {}
_llms_lock = threading.Lock()


def _vllm_chat(llm: dict[str, Any], conversations: list[list[dict[str, Any]]], sampling: list[dict[str, Any]],
               lora: dict[str, Any] | None) -> list[str]:
    """Run the batch on vLLM (the engine is built once per process and argument set)."""
    try:
        from vllm import LLM, SamplingParams
        from vllm.lora.request import LoRARequest
        from vllm.sampling_params import StructuredOutputsParams
    except ImportError:
        raise RuntimeError(MISSING) from None
    key = json.dumps(llm, sort_keys=True)
    with _llms_lock:
        if key not in _llms:
            _llms[key] = LLM(**llm)
    params = [SamplingParams(**{**args, "structured_outputs": StructuredOutputsParams(**args["structured_outputs"])})
              if "structured_outputs" in args else SamplingParams(**args) for args in sampling]
    outputs = _llms[key].chat(conversations, params, lora_request=LoRARequest(**lora) if lora else None)
    return [output.outputs[0].text for output in outputs]
