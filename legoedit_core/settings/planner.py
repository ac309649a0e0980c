"""How the Builder is configured: strategy, engine (shared with the judge: ``EngineSettings``) and the re-ask /
prompt settings."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from legoedit_core.settings.engine import EngineName, EngineSettings

Strategy = Literal["rules", "workflow", "decompose"]

__all__ = ["EngineName", "PlannerSettings", "RulesSettings", "Strategy"]


class RulesSettings(BaseModel):
    """Options of the offline ``rules`` planner."""

    model_config = ConfigDict(extra="forbid")

    salient_as_named_subject: bool = Field(
        True, description="a single named thing no locator of this profile can find ('the cup'), and that the "
        "vocabulary does not list as the setting or a part of something, is the photo's main subject: the salient "
        "object (SOS) finds it, noted in the plan; false: such a request is declined")
    understanding: Literal["embeddings", "lexical"] = Field(
        "embeddings", description="a clause no reader recognises is ranked against exemplar phrasings with the "
        "bundled MiniLM sentence-embedding model (offline, numpy); 'lexical' skips that step")
    exemplar_threshold: float = Field(
        0.62, ge=0.0, le=1.0, description="the cosine similarity a clause needs to its nearest exemplar")


class PlannerSettings(EngineSettings):
    """The Builder: its strategy, and the engine settings it shares with the judge and the VLM bricks."""

    strategy: Strategy = "rules"
    max_attempts: int = Field(3, ge=1, le=10, description="plans asked for per item before invalid_plan")
    reasoning: bool = Field(True, description="ask for <think>...</think> reasoning before the plan")
    max_think_chars: int = Field(1200, ge=16, description="longest reasoning the constrained grammar lets through")
    multi_turn: bool = Field(False, description="decompose: one EDIT call per sub-request instead of one in all")
    feedback: list[str] = Field(default_factory=list, description="user feedback lines, also enforced as rules")
    examples: int = Field(3, ge=0, le=10, description="worked examples shown in the prompt")
    verify_rounds: int = Field(0, ge=0, le=5, description="re-plan rounds after a judge's critique (0: off)")
    accept_score: float = Field(7.0, description="verify: a judge score at or above this ends the loop")
    rules: RulesSettings = Field(default_factory=RulesSettings, description="options of the rules strategy")
