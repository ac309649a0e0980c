"""How the judge is configured: which engine and model score edits, and how hard to try for a parseable reply."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from legoedit_core.settings.planner import EngineName, PlannerSettings

# The settings a judge shares with a Builder engine; they are handed to the same engines unchanged.
_ENGINE_FIELDS = ("engine", "model", "adapter", "base_url", "api_key_env", "image_size", "temperature", "top_p",
                  "max_new_tokens", "constrained", "device", "dtype", "engine_args", "concurrency", "http_retries",
                  "retry_wait", "timeout_s")


class JudgeSettings(BaseModel):
    """The VLM judge. With no ``engine`` only the model-free metrics are computed."""

    model_config = ConfigDict(extra="forbid")

    engine: EngineName | None = Field(None, description="transformers, vllm or openai; unset: no VLM judge")
    model: str | None = Field(None, description="hub id or local path of the judge model")
    adapter: str | None = None
    base_url: str | None = Field(None, description="OpenAI-compatible endpoint of the judge")
    api_key_env: str = "OPENAI_API_KEY"
    image_size: int = Field(512, ge=64, le=2048, description="longest side of each image shown to the judge")
    temperature: float = Field(0.0, ge=0.0, le=2.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    max_new_tokens: int = Field(400, ge=16)
    constrained: bool = Field(True, description="constrain the reply to the score JSON where the engine can")
    max_reasoning_chars: int = Field(300, ge=0, le=4000, description="longest reasoning the constraint lets through")
    max_attempts: int = Field(2, ge=1, le=5, description="asks per item while the reply cannot be parsed")
    device: str = "cpu"
    dtype: str = "float32"
    engine_args: dict[str, Any] = Field(default_factory=dict, description="extra arguments for vllm.LLM or "
                                        "from_pretrained (equal to the Builder's to share its engine)")
    concurrency: int = Field(8, ge=1)
    http_retries: int = Field(4, ge=1, le=20)
    retry_wait: float = Field(1.0, ge=0.0)
    timeout_s: float = Field(120.0, gt=0.0)

    def engine_settings(self) -> PlannerSettings:
        """The engine settings the Builder's engines take (the judge reuses them as they are)."""
        return PlannerSettings(**{name: getattr(self, name) for name in _ENGINE_FIELDS})

    @property
    def name(self) -> str:
        """How results name the judge: engine and model (and adapter), or ``metrics`` without a model."""
        if self.engine is None:
            return "metrics"
        return f"{self.engine}:{self.model}" + (f"+{self.adapter}" if self.adapter else "")
