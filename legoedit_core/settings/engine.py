"""How a VLM engine is configured: one settings model that the Builder, the judge and the VLM bricks all extend.

Device and dtype come from the profile: the ``gpu`` profile sets ``device = "cuda"`` for the planner and the judge
(the vLLM engine, which runs on a GPU only, defaults to it anywhere), and a dtype left ``auto`` follows the device
(``bfloat16`` on CUDA, ``float32`` on the CPU).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

EngineName = Literal["transformers", "vllm", "openai"]


def default_dtype(device: str) -> str:
    """The dtype a model takes when none is set: bfloat16 on an accelerator, float32 on the CPU."""
    return "float32" if device == "cpu" else "bfloat16"


class EngineSettings(BaseModel):
    """Which engine and model answer chats, on which device, and how requests are sampled and sent."""

    model_config = ConfigDict(extra="forbid")

    engine: EngineName | None = Field(None, description="transformers, vllm or openai")
    model: str | None = Field(None, description="hub id or local path of the model")
    adapter: str | None = Field(None, description="local path of a LoRA adapter (a fine-tune of the model)")
    base_url: str | None = Field(None, description="OpenAI-compatible endpoint, e.g. http://localhost:8000/v1")
    api_key_env: str = Field("OPENAI_API_KEY", description="environment variable holding the endpoint's key")
    image_size: int = Field(448, ge=64, le=2048, description="longest side of each image shown to the model")
    temperature: float = Field(0.0, ge=0.0, le=2.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    max_new_tokens: int = Field(1024, ge=16)
    constrained: bool = Field(True, description="constrain decoding to the answer's JSON Schema where the engine can")
    device: str = Field("cpu", description="cpu, cuda or cuda:N (the gpu profile sets cuda; vllm: cuda)")
    dtype: str = Field("auto", description="float32, bfloat16 or float16; auto: bfloat16 on cuda, float32 on cpu")
    engine_args: dict[str, Any] = Field(
        default_factory=dict, description="extra keyword arguments for vllm.LLM or from_pretrained (equal in two "
        "roles with the same model, they share one engine)")
    concurrency: int = Field(8, ge=1, description="openai: requests in flight at once")
    http_retries: int = Field(4, ge=1, le=20, description="openai: tries per request on 429 / 5xx / connection errors")
    retry_wait: float = Field(1.0, ge=0.0, description="openai: first back-off in seconds, doubling per retry")
    timeout_s: float = Field(120.0, gt=0.0, description="openai: seconds per request")

    @model_validator(mode="after")
    def _dtype_follows_device(self) -> EngineSettings:
        if self.engine == "vllm" and "device" not in self.model_fields_set:
            self.device = "cuda"  # vLLM runs on a GPU only
        if self.dtype == "auto":
            self.dtype = default_dtype(self.device)
        return self
