"""Builder engines: one interface, ``generate(chats, fmt, seeds) -> answers``, batched by design."""

from __future__ import annotations

from typing import Protocol

from legoedit_core.settings.engine import EngineSettings
from legoedit_core.vlm.chat import Chat, GenerationError, OutputFormat


class Engine(Protocol):
    """A model that answers chats. ``name`` identifies engine and model in output rows."""

    name: str

    def generate(self, chats: list[Chat], fmt: OutputFormat | None, seeds: list[int]) -> list[str | GenerationError]:
        """One answer (or a GenerationError) per chat, in order; ``fmt`` constrains the answers where it can."""
        ...


def make_engine(settings: EngineSettings) -> Engine:
    """The engine ``settings.engine`` names, built lazily: nothing loads until the first ``generate``."""
    if settings.engine == "transformers":
        from legoedit_core.vlm.engines.hf import TransformersEngine

        return TransformersEngine(settings)
    if settings.engine == "vllm":
        from legoedit_core.vlm.engines.vllm import VLLMEngine

        return VLLMEngine(settings)
    if settings.engine == "openai":
        from legoedit_core.vlm.engines.openai import OpenAIEngine

        return OpenAIEngine(settings)
    raise ValueError(f"a model engine is needed (engine = {settings.engine!r}): transformers, vllm or openai")
