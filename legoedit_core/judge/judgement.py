"""Judging finished edits: the model-free metrics and the verifiable check of every edit and, when a VLM judge is
set, its scores. The edited region is the union of the masks the plan produced, or the user's mask when the plan
produced none (a plan that edits through ``@input.mask`` makes no mask of its own)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from legoedit_core.executor import EditResult
from legoedit_core.judge.checks import CheckResult, edit_check
from legoedit_core.judge.metrics import EditMetrics, edit_metrics, edited_region
from legoedit_core.judge.scores import JudgeScores
from legoedit_core.judge.vlm import JudgeRequest, VLMJudge
from legoedit_core.settings.judge import JudgeSettings
from legoedit_core.types import size_of


@dataclass
class Judgement:
    """What is known about one finished edit. ``scores`` is None without a VLM judge."""

    judge: str
    metrics: EditMetrics
    scores: JudgeScores | None = None
    check: CheckResult | None = None

    @property
    def score(self) -> float | None:
        """The headline score, 0-10: the ImageEdit-R1 total (None without a judge or when its reply was unreadable)."""
        return self.scores.total if self.scores is not None else None

    @property
    def error(self) -> str | None:
        return self.scores.error if self.scores is not None else None

    def feedback(self) -> str:
        """The ``judge_feedback`` column: every score, the reasoning, the metrics, the verifiable check (null where
        none applies) and any judge error, as JSON."""
        scores = self.scores.as_dict() if self.scores is not None else {}
        check = self.check.as_dict() if self.check is not None else None
        return json.dumps({"judge": self.judge, **scores, "metrics": self.metrics.as_dict(), "check": check},
                          sort_keys=True)

    def record(self) -> dict[str, Any]:
        """A flat record for score tables."""
        scores = self.scores.as_dict() if self.scores is not None else {}
        scores.pop("reasoning", None)
        metrics = self.metrics.as_dict()
        metrics.pop("notes")
        check = {"check": self.check.score if self.check else None,
                 "check_failed": ", ".join(self.check.failed) if self.check else None}
        return {"judge": self.judge, "judge_error": scores.pop("error", None), **scores, **metrics, **check}


@dataclass
class Edit:
    """A finished edit to judge: the source pixels, the executor's result, the instruction, the item seed and the
    user's mask (if they drew one)."""

    source: np.ndarray
    result: EditResult
    instruction: str
    seed: int = 0
    mask: np.ndarray | None = None

    def masks(self) -> list[np.ndarray]:
        """The masks that say where the edit was meant to be: the plan's, else the user's."""
        return self.result.masks() or ([self.mask] if self.mask is not None else [])


def make_judge(settings: JudgeSettings) -> VLMJudge | None:
    """The VLM judge the settings name, or None when only the model-free metrics are wanted."""
    return VLMJudge(settings) if settings.engine is not None else None


def judge_edits(edits: Sequence[Edit], judge: VLMJudge | None) -> list[Judgement | None]:
    """One judgement per edit that produced an image (None for the others); the VLM judge runs as one batch."""
    done = [i for i, edit in enumerate(edits) if edit.result.status == "ok" and edit.result.image is not None]
    name = judge.name if judge is not None else "metrics"
    judgements: list[Judgement | None] = [None] * len(edits)
    for i in done:
        edit = edits[i]
        masks = edit.masks()
        region = edited_region(masks, size_of(edit.source)) if masks else None
        judgements[i] = Judgement(name, edit_metrics(edit.source, edit.result.image, masks),
                                  check=edit_check(edit.source, edit.result.image, edit.instruction, region))
    if judge is not None and done:
        requests = [JudgeRequest(edits[i].source, edits[i].result.image, edits[i].instruction, edits[i].seed)
                    for i in done]
        for i, scores in zip(done, judge.judge_batch(requests), strict=True):
            judgements[i].scores = scores
    return judgements
