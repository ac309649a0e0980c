"""The VLM judge: the Builder's engines (transformers, vllm, openai) asked to score edits against two rubrics.

Each item is one chat: the original image, the edited image, and the instruction. All items of a batch go to the
engine in one call; the replies that cannot be read are asked again (up to ``max_attempts``), and a reply that still
cannot be read is a recorded judge error, not a score. An engine that raises is a fault: the error goes up.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from legoedit_core.judge.scores import JudgeScores, parse_scores, reply_schema
from legoedit_core.settings.judge import JudgeSettings
from legoedit_core.vlm.chat import Chat, GenerationError, Message, OutputFormat, shown_image
from legoedit_core.vlm.engines import Engine, make_engine

SYSTEM_PROMPT = """\
You are a strict judge of image edits. You see the original image, then the edited image, then the editing
instruction. Score the edit on two rubrics.

Rubric A (ImageEdit-R1):
- fulfilment, 0-4: how completely the edit does what the instruction asks (0 nothing, 4 all of it, exactly).
- quality, 0-3: how natural and artifact-free the edited image looks (0 broken, 3 flawless).
- preservation, 0-3: how well everything the instruction did not ask to change is kept (0 all changed, 3 intact).

Rubric B (VIEScore):
- semantic_consistency, 0-10: how well the edited image follows the instruction (0 not at all, 10 perfectly),
  counting both what had to change and what had to stay.
- perceptual_quality, 0-10: how real and free of distortions and artifacts the edited image looks.

Answer with one JSON object and nothing else: a short plain "reasoning" first, then the five integer scores:
{"reasoning": "...", "fulfilment": 0, "quality": 0, "preservation": 0, "semantic_consistency": 0,
 "perceptual_quality": 0}"""


class JudgeError(ValueError):
    """The judge's reply could not be read as a complete score."""


@dataclass
class JudgeRequest:
    """One edit to judge."""

    source: np.ndarray
    edited: np.ndarray
    instruction: str
    seed: int = 0


def judge_chat(request: JudgeRequest, image_size: int) -> Chat:
    """The chat that asks for one edit's scores: the two images in order, then the instruction."""
    return [
        Message("system", SYSTEM_PROMPT),
        Message("user", "Original image.", shown_image(request.source, image_size)),
        Message("user", f"Edited image.\nInstruction: {request.instruction}\nScore the edit.",
                shown_image(request.edited, image_size)),
    ]


class VLMJudge:
    """Scores batches of edits with a multimodal model. ``name`` identifies the judge in output rows."""

    def __init__(self, settings: JudgeSettings, engine: Engine | None = None) -> None:
        if settings.engine is None and engine is None:
            raise ValueError("the VLM judge needs judge.engine (transformers, vllm or openai) and judge.model")
        self.settings = settings
        self.engine = engine or make_engine(settings)
        self.name = f"judge/{self.engine.name}"
        self.format = OutputFormat(json_schema=reply_schema(settings.max_reasoning_chars)) \
            if settings.constrained else None

    def judge_batch(self, requests: Sequence[JudgeRequest]) -> list[JudgeScores]:
        """One score per request, in order. Unreadable replies are re-asked; the last reply is kept either way."""
        chats = [judge_chat(r, self.settings.image_size) for r in requests]
        results: list[JudgeScores] = [JudgeScores(errors=["not judged"]) for _ in requests]
        pending = list(range(len(requests)))
        for attempt in range(self.settings.max_attempts):
            if not pending:
                break
            replies = self.engine.generate([chats[i] for i in pending], self.format,
                                           [requests[i].seed + attempt for i in pending])
            for index, reply in zip(pending, replies, strict=True):
                results[index] = JudgeScores(errors=[f"judge engine error: {reply}"]) \
                    if isinstance(reply, GenerationError) else parse_scores(reply)
            pending = [i for i in pending if results[i].error is not None]
        return results

    def __call__(self, source: np.ndarray, edited: np.ndarray, instruction: str) -> tuple[float, str]:
        """(total 0-10, reasoning) of one edit: the judge callable that ``planners.replan`` takes.

        Raises JudgeError when the reply gives no complete rubric score.
        """
        scores = self.judge_batch([JudgeRequest(source, edited, instruction)])[0]
        if scores.total is None:
            raise JudgeError(f"{self.name}: {scores.error}")
        return scores.total, scores.reasoning
