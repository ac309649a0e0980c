"""The vLLM engine: offline ``LLM.chat`` over a whole batch, structured outputs, optional LoRA adapter.

vLLM cannot share an environment with Prefect 3.8.8 (their fastapi ranges are disjoint), so no extra of this project
installs it: in production vLLM runs as its own server (``infra/vllm/serve.sh``) and the ``openai`` engine speaks to
it; this in-process engine runs where vLLM is installed (the GPU check runs it in ``infra/vllm``'s environment).

Everything about a request (conversation, sampling, structured-output constraint, LoRA request, engine arguments)
is built here as plain data; ``vllm_requests`` is the one small function that imports vLLM and turns that data into
its objects.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from legoedit_core.runtime import Adapter, ModelKey, ModelRuntime
from legoedit_core.settings.engine import EngineSettings
from legoedit_core.vlm.chat import Chat, GenerationError, OutputFormat, openai_messages
from legoedit_core.vlm.grammar import build_grammar

MISSING = ("the in-process vllm engine needs vLLM, which cannot share this environment with Prefect: serve the model "
           "with `bash infra/vllm/serve.sh MODEL` and set planner.engine = \"openai\", planner.base_url = "
           "\"http://127.0.0.1:8000/v1\" (README, GPU)")


def llm_args(settings: EngineSettings) -> dict[str, Any]:
    """Keyword arguments of ``vllm.LLM``: up to two images per prompt (the judge's), LoRA on for every role."""
    args: dict[str, Any] = {"model": settings.model, "dtype": settings.dtype, "limit_mm_per_prompt": {"image": 2},
                            "enable_lora": True}
    return args | settings.engine_args


def check_device(device: str) -> None:
    """vLLM places its engine on the first visible GPU itself (it takes no device argument): the settings' device
    must say so, so that the runtime counts the engine's memory on the device it really takes."""
    if device not in ("cuda", "cuda:0"):
        raise ValueError(f"the vllm engine runs on the first visible GPU, not {device!r}: set device = \"cuda\" "
                         "(the gpu profile does) and pick the GPU with CUDA_VISIBLE_DEVICES")


def structured_outputs(fmt: OutputFormat | None) -> dict[str, Any] | None:
    """Keyword arguments of ``StructuredOutputsParams``: the schema, or the composed grammar when it has reasoning."""
    if fmt is None:
        return None
    if fmt.think:
        return {"grammar": str(build_grammar(fmt))}
    if fmt.json_schema is not None:
        return {"json": fmt.json_schema}
    return {"regex": fmt.regex}


def sampling_args(settings: EngineSettings, fmt: OutputFormat | None, seed: int) -> dict[str, Any]:
    """Keyword arguments of ``SamplingParams`` for one request (``structured_outputs`` still as a dict)."""
    args: dict[str, Any] = {"temperature": settings.temperature, "top_p": settings.top_p,
                            "max_tokens": settings.max_new_tokens, "seed": seed}
    constraint = structured_outputs(fmt)
    if constraint is not None:
        args["structured_outputs"] = constraint
    return args


def lora_args(settings: EngineSettings) -> dict[str, Any] | None:
    """Keyword arguments of ``LoRARequest`` for this role's adapter, or None without one. Name and id derive from
    the path, so roles sharing one engine keep their adapters apart and one path is loaded once."""
    if not settings.adapter:
        return None
    name = Adapter.from_path(settings.adapter).name
    return {"lora_name": name, "lora_int_id": int(name.removeprefix("lora_"), 16) % 2**31 or 1,
            "lora_path": settings.adapter}


class VLLMEngine:
    """All chats of a batch go to vLLM in one ``LLM.chat`` call.

    The ``LLM`` is the runtime's: one per (model, dtype, engine arguments) serves every role that names it, each
    role with its own ``LoRARequest``. The engine is built with LoRA enabled (``enable_lora``) so that any role may
    bring an adapter; set ``engine_args.enable_lora = false`` on every role to save its buffers when none does.
    """

    def __init__(self, settings: EngineSettings, runtime: ModelRuntime | None = None) -> None:
        if not settings.model:
            raise ValueError("the vllm engine needs planner.model (a hub id or a local path)")
        check_device(settings.device)
        self.settings = settings
        self.name = f"vllm:{settings.model}" + (f"+{settings.adapter}" if settings.adapter else "")
        self.runtime = runtime
        self.key = ModelKey("vllm.LLM", settings.model, settings.dtype, settings.device,
                            options=json.dumps(llm_args(settings), sort_keys=True))

    def generate(self, chats: list[Chat], fmt: OutputFormat | None, seeds: list[int]) -> list[str | GenerationError]:
        requests = [(openai_messages(chat), sampling_args(self.settings, fmt, seed)) for chat, seed in
                    zip(chats, seeds, strict=True)]
        lora = lora_args(self.settings)
        runtime = self.runtime or ModelRuntime.default()
        # vLLM seeds each request itself, so requests of every thread can share one call.
        return runtime.call(self.key, lambda engine, batch: _vllm_chat(engine.llm, batch, lora), requests,
                            loader=_build_llm, merge=("chat", json.dumps(lora, sort_keys=True)))


@dataclass
class _Engine:
    """A vLLM ``LLM`` as the runtime holds it. The runtime counts it at its ``gpu_memory_utilization`` share of the
    GPU; ``close`` (called on eviction) shuts its engine core down, the process that holds that memory."""

    llm: Any

    def close(self) -> None:
        """Shut the engine core down through vLLM's own ``engine_core.shutdown()`` (what ``LLM``'s finaliser calls).
        A vLLM without it raises here: an engine that frees nothing must not pass for evicted."""
        engine = getattr(self.llm, "llm_engine", None)
        core = getattr(engine, "engine_core", None)
        if core is None or not callable(getattr(core, "shutdown", None)):
            raise RuntimeError(f"cannot free the vLLM engine: {type(self.llm).__name__}.llm_engine.engine_core."
                               "shutdown() is missing in this vLLM, so its GPU memory would stay held")
        core.shutdown()


def _build_llm(key: ModelKey) -> _Engine:
    try:
        from vllm import LLM
    except ImportError:
        raise ImportError(MISSING) from None
    return _Engine(LLM(**json.loads(key.options)))


def vllm_requests(requests: list[tuple[list[dict[str, Any]], dict[str, Any]]], lora: dict[str, Any] | None
                  ) -> tuple[list[Any], Any]:
    """vLLM's objects for a batch: one ``SamplingParams`` per request (its ``StructuredOutputsParams`` inside), and
    the ``LoRARequest`` (None without an adapter)."""
    from vllm import SamplingParams
    from vllm.lora.request import LoRARequest
    from vllm.sampling_params import StructuredOutputsParams

    params = [SamplingParams(**{**args, "structured_outputs": StructuredOutputsParams(**args["structured_outputs"])})
              if "structured_outputs" in args else SamplingParams(**args) for _, args in requests]
    return params, LoRARequest(**lora) if lora else None


def _vllm_chat(llm: Any, requests: list[tuple[list[dict[str, Any]], dict[str, Any]]],
               lora: dict[str, Any] | None) -> list[str]:
    """Run the batch of (conversation, sampling arguments) on a vLLM ``LLM``."""
    params, lora_request = vllm_requests(requests, lora)
    outputs = llm.chat([conversation for conversation, _ in requests], params, lora_request=lora_request)
    return [output.outputs[0].text for output in outputs]
