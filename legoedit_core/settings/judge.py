"""How the judge is configured: the engine settings it shares with the Builder, and how hard to try for a
parseable reply."""

from __future__ import annotations

from pydantic import Field

from legoedit_core.settings.engine import EngineSettings


class JudgeSettings(EngineSettings):
    """The VLM judge. With no ``engine`` only the model-free metrics are computed."""

    image_size: int = Field(512, ge=64, le=2048, description="longest side of each image shown to the judge")
    max_new_tokens: int = Field(400, ge=16)
    max_reasoning_chars: int = Field(300, ge=0, le=4000, description="longest reasoning the constraint lets through")
    max_attempts: int = Field(2, ge=1, le=5, description="asks per item while the reply cannot be parsed")

    @property
    def name(self) -> str:
        """How results name the judge: engine and model (and adapter), or ``metrics`` without a model."""
        if self.engine is None:
            return "metrics"
        return f"{self.engine}:{self.model}" + (f"+{self.adapter}" if self.adapter else "")
