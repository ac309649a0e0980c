"""How the Builder is configured: strategy, engine, model and the re-ask / sampling settings."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Strategy = Literal["rules", "workflow", "decompose"]
EngineName = Literal["transformers", "vllm", "openai"]


class RulesSettings(BaseModel):
    """Options of the offline ``rules`` planner."""

    model_config = ConfigDict(extra="forbid")

    salient_as_named_subject: bool = Field(
        False, description="when no locator of this profile can find a named subject ('the dog'), use the salient "
        "object (SOS) in its place, recorded as an approximation; for catalogues with one object per photo")
    understanding: Literal["embeddings", "lexical"] = Field(
        "embeddings", description="a clause no reader recognises is ranked against exemplar phrasings with the "
        "bundled MiniLM sentence-embedding model (offline, numpy); 'lexical' skips that step")
    exemplar_threshold: float = Field(
        0.62, ge=0.0, le=1.0, description="the cosine similarity a clause needs to its nearest exemplar")


class PlannerSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    strategy: Strategy = "rules"
    engine: EngineName | None = Field(
        None, description="the model engine for the workflow/decompose strategies; rules needs none")
    model: str | None = Field(None, description="hub id or local path of the Builder model")
    adapter: str | None = Field(None, description="local path of a LoRA adapter (the Builder fine-tune)")
    base_url: str | None = Field(None, description="OpenAI-compatible endpoint, e.g. http://localhost:8000/v1")
    api_key_env: str = Field("OPENAI_API_KEY", description="environment variable holding the endpoint's key")
    max_attempts: int = Field(3, ge=1, le=10, description="plans asked for per item before invalid_plan")
    image_size: int = Field(448, ge=64, le=2048, description="longest side of the image shown to the Builder")
    temperature: float = Field(0.0, ge=0.0, le=2.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    max_new_tokens: int = Field(1024, ge=16)
    constrained: bool = Field(True, description="constrain decoding to the workflow JSON Schema")
    reasoning: bool = Field(True, description="ask for <think>...</think> reasoning before the plan")
    max_think_chars: int = Field(1200, ge=16, description="longest reasoning the constrained grammar lets through")
    multi_turn: bool = Field(False, description="decompose: one EDIT call per sub-request instead of one in all")
    feedback: list[str] = Field(default_factory=list, description="user feedback lines, also enforced as rules")
    examples: int = Field(3, ge=0, le=10, description="worked examples shown in the prompt")
    device: str = "cpu"
    dtype: str = "float32"
    engine_args: dict[str, Any] = Field(
        default_factory=dict, description="extra keyword arguments for vllm.LLM or from_pretrained")
    concurrency: int = Field(8, ge=1, description="openai: requests in flight at once")
    http_retries: int = Field(4, ge=1, le=20, description="openai: tries per request on 429 / 5xx / connection errors")
    retry_wait: float = Field(1.0, ge=0.0, description="openai: first back-off in seconds, doubling per retry")
    timeout_s: float = Field(120.0, gt=0.0, description="openai: seconds per request")
    verify_rounds: int = Field(0, ge=0, le=5, description="re-plan rounds after a judge's critique (0: off)")
    accept_score: float = Field(7.0, description="verify: a judge score at or above this ends the loop")
    rules: RulesSettings = Field(default_factory=RulesSettings, description="options of the rules strategy")
