"""Rewards for training the Builder (ImageEdit-R1 and Lego-Edit), each in 0-1, and their weighted total.

- ``format``: the answer has its required shape: ``<think>`` reasoning and a workflow JSON that parses, or the
  decomposition tags (``<action>``, ``<subjects>``, ``<goals>``) that parse.
- ``executability``: 0 when there is no valid plan, 0.5 when it validates but fails to run, 1 when it runs.
- ``tool``: set F1 of the plan's tools against a reference workflow's (or a reference tool list).
- ``action`` / ``subject`` / ``goal``: set F1 of the decomposition against the ground truth; actions match by name,
  subjects and goals by meaning (two phrases match when their sentence embeddings have a cosine similarity of at
  least ``match_threshold``, and the matching is one-to-one, maximal).
- ``judge``: the judge's 0-10 total divided by 10; 0 when the plan produced no image.
- ``check``: the verifiable edit check's score (``judge.checks``: the fraction of the instruction family's pixel
  checks that pass); left out where no check applies or there is no edited image (``executability`` scores that).

The total is the weighted mean of the components that apply to a sample (a workflow answer has no decomposition,
an unannotated item has no reference tools): a component that does not apply is left out, never counted as 0.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment

from legoedit_core.planners.base import PlanResult
from legoedit_core.planners.decompose import Decomposition, parse_decomposition
from legoedit_core.planners.parsing import parse_answer
from legoedit_core.settings.rewards import RewardSettings
from legoedit_core.workflow import Workflow, WorkflowError, parse_workflow

COMPONENTS = ("format", "executability", "tool", "action", "subject", "goal", "judge", "check")
Similarity = Callable[[Sequence[str], Sequence[str]], np.ndarray]


@dataclass
class GroundTruth:
    """What a sample is compared with; any part may be unknown (None)."""

    actions: list[str] | None = None
    subjects: list[str] | None = None
    goals: list[str] | None = None
    tools: list[str] | None = None

    @classmethod
    def from_row(cls, ground_truth: dict[str, Any] | str | None) -> GroundTruth:
        """From a dataset row's ground truth: ``target`` = {actions, subjects, goals, tools} and/or
        ``reference_workflow`` (a workflow whose tools are the reference tools)."""
        if isinstance(ground_truth, str):
            ground_truth = json.loads(ground_truth)
        ground_truth = ground_truth or {}
        target = ground_truth.get("target")
        target = target if isinstance(target, dict) else {}
        truth = cls(**{name: _phrases(target.get(name)) for name in ("actions", "subjects", "goals", "tools")})
        reference = ground_truth.get("reference_workflow")
        if truth.tools is None and reference:
            try:
                truth.tools = parse_workflow(reference).tools()
            except WorkflowError as error:
                raise ValueError(f"reference_workflow does not parse: {error}") from None
        return truth


def _phrases(value: Any) -> list[str] | None:
    """A list of phrases from a list or a ``;``-separated string."""
    if value is None:
        return None
    items = value if isinstance(value, list) else re.split(r";", str(value))
    return [str(item).strip() for item in items if str(item).strip()]


@dataclass
class Rewards:
    """Each component in 0-1, None where it does not apply; ``total`` is their weighted mean."""

    format: float | None = None
    executability: float | None = None
    tool: float | None = None
    action: float | None = None
    subject: float | None = None
    goal: float | None = None
    judge: float | None = None
    check: float | None = None
    total: float = 0.0

    def as_dict(self) -> dict[str, float | None]:
        return asdict(self)


def set_f1(predicted: Sequence[str], reference: Sequence[str], similarity: Similarity | None = None,
           threshold: float = 1.0) -> float:
    """F1 of two sets of phrases under a one-to-one maximal matching.

    Without ``similarity`` phrases match when equal (case and surrounding space ignored); with it, when their
    similarity is at least ``threshold``. Two empty sets agree (1.0); one empty set scores 0.
    """
    predicted = list(dict.fromkeys(p.strip().lower() for p in predicted if p.strip()))
    reference = list(dict.fromkeys(r.strip().lower() for r in reference if r.strip()))
    if not predicted and not reference:
        return 1.0
    if not predicted or not reference:
        return 0.0
    if similarity is None:
        matches = np.array([[p == r for r in reference] for p in predicted], float)
    else:
        matches = (np.asarray(similarity(predicted, reference)) >= threshold).astype(float)
    rows, cols = linear_sum_assignment(matches, maximize=True)
    matched = float(matches[rows, cols].sum())
    if matched == 0:
        return 0.0
    precision, recall = matched / len(predicted), matched / len(reference)
    return 2 * precision * recall / (precision + recall)


def format_reward(answer: str) -> float:
    """1 when the answer is ``<think>`` reasoning plus a workflow that parses, or decomposition tags that parse."""
    if not re.search(r"<think>.*?</think>", answer, re.S):
        return 0.0
    _, workflow, _ = parse_answer(answer, "")
    if workflow is not None:
        return 1.0
    try:
        parse_decomposition(answer)
    except ValueError:
        return 0.0
    return 1.0


def executability_reward(plan_ok: bool, edit_status: str | None) -> float:
    """0 without a valid plan, 0.5 for a valid plan whose run failed, 1 for a plan that ran (or was not run)."""
    if not plan_ok or edit_status == "invalid_plan":
        return 0.0
    return 0.5 if edit_status == "failed" else 1.0


def decomposition_of(plan: PlanResult) -> Decomposition | None:
    """The decomposition a ``decompose`` Builder answered with (the last one that parses), or None."""
    for attempt in reversed(plan.attempts):
        try:
            return parse_decomposition(attempt.raw)[1]
        except ValueError:
            continue
    return None


def answer_text(plan: PlanResult) -> str:
    """Everything the Builder wrote for a plan, in order: the response that is rewarded."""
    return "\n".join(attempt.raw for attempt in plan.attempts if attempt.raw)


class RewardModel:
    """Scores Builder answers against ground truth with the configured weights."""

    def __init__(self, settings: RewardSettings | None = None, similarity: Similarity | None = None) -> None:
        self.settings = settings or RewardSettings()
        self._similarity = similarity

    @property
    def similarity(self) -> Similarity:
        if self._similarity is None:
            from legoedit_core.planners.embeddings import Embeddings

            self._similarity = Embeddings(self.settings.embedding_model).similarity
        return self._similarity

    def score(self, answer: str, truth: GroundTruth, workflow: Workflow | None = None,
              decomposition: Decomposition | None = None, plan_ok: bool | None = None,
              edit_status: str | None = None, judge_score: float | None = None,
              judged: bool = False, check: float | None = None) -> Rewards:
        """Every component that applies, and the total.

        ``plan_ok`` defaults to "a workflow is given"; ``judged`` says the judge was asked, so that a plan without an
        image gets judge reward 0 and an unreadable judge reply leaves the component out. ``check`` is the edit
        check's score (None where no check applies).
        """
        threshold = self.settings.match_threshold
        rewards = Rewards(format=format_reward(answer),
                          executability=executability_reward(workflow is not None if plan_ok is None else plan_ok,
                                                             edit_status))
        if truth.tools is not None:
            rewards.tool = set_f1(workflow.tools(), truth.tools) if workflow is not None else 0.0
        if decomposition is not None:
            if truth.actions is not None:
                rewards.action = set_f1(decomposition.actions, truth.actions)
            if truth.subjects is not None:
                rewards.subject = set_f1(decomposition.subjects, truth.subjects, self.similarity, threshold)
            if truth.goals is not None:
                rewards.goal = set_f1(decomposition.goals, truth.goals, self.similarity, threshold)
        if judged:
            rewards.judge = judge_score / 10.0 if judge_score is not None else \
                (0.0 if edit_status != "ok" else None)
        rewards.check = check
        rewards.total = self.total(rewards)
        return rewards

    def total(self, rewards: Rewards) -> float:
        """The weighted mean of the components that apply (0 when none does)."""
        weights = self.settings.weights
        pairs = [(getattr(weights, name), getattr(rewards, name)) for name in COMPONENTS]
        pairs = [(w, r) for w, r in pairs if r is not None and w > 0]
        weight = sum(w for w, _ in pairs)
        return sum(w * r for w, r in pairs) / weight if weight else 0.0

    def score_plan(self, plan: PlanResult, truth: GroundTruth, edit_status: str | None = None,
                   judge_score: float | None = None, judged: bool = False, check: float | None = None) -> Rewards:
        """Rewards of one planned sample (its answer text, workflow and decomposition come from ``plan``)."""
        return self.score(answer_text(plan), truth, plan.workflow, decomposition_of(plan), plan.ok, edit_status,
                          judge_score, judged, check)
