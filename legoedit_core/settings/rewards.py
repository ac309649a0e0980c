"""How samples are rewarded: component weights and phrase matching."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class RewardWeights(BaseModel):
    model_config = ConfigDict(extra="forbid")

    format: float = Field(1.0, ge=0)
    executability: float = Field(1.0, ge=0)
    tool: float = Field(1.0, ge=0)
    action: float = Field(1.0, ge=0)
    subject: float = Field(1.0, ge=0)
    goal: float = Field(1.0, ge=0)
    judge: float = Field(1.0, ge=0)
    check: float = Field(1.0, ge=0)


class RewardSettings(BaseModel):
    """How samples are rewarded: the weight of each component, and how phrases are matched."""

    model_config = ConfigDict(extra="forbid")

    weights: RewardWeights = Field(default_factory=RewardWeights)
    match_threshold: float = Field(0.75, ge=0.0, le=1.0,
                                   description="cosine similarity at which a subject or goal counts as matched")
    embedding_model: str | None = Field(None, description="sentence-embedding model path (default: the bundled one)")
