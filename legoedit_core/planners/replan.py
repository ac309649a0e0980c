"""Verify and re-plan: execute the plan, ask a judge, and re-plan with its critique as feedback.

A judge is any callable ``judge(source, edited, instruction) -> (score, critique)`` (the VLM judge of
``legoedit_core.judge`` fits). Items whose score reaches ``accept_score`` stop; the others are re-planned with the
critique added to their feedback, for at most ``rounds`` extra rounds. Every round is kept; the best one wins.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from legoedit_core.executor import EditItem, EditResult, Executor
from legoedit_core.planners.base import Planner, PlanRequest, PlanResult

Judge = Callable[[np.ndarray, np.ndarray, str], tuple[float, str]]


@dataclass
class Round:
    """One plan-execute-judge round of one item."""

    plan: PlanResult
    edit: EditResult | None = None
    score: float | None = None
    critique: str = ""


@dataclass
class Verified:
    """Every round of one item; ``best`` is the highest-scoring round that produced an image."""

    id: str
    rounds: list[Round] = field(default_factory=list)

    @property
    def best(self) -> Round:
        scored = [r for r in self.rounds if r.score is not None]
        return max(scored, key=lambda r: r.score) if scored else self.rounds[-1]


CRITIQUE = "the previous plan"  # how every critique line starts: a planner can count the rounds it is in


def critique_feedback(round_: Round) -> str:
    """The feedback line a round leaves for the next plan."""
    if round_.edit is not None and round_.edit.status != "ok":
        return f"{CRITIQUE} failed: {round_.edit.error}"
    return f"{CRITIQUE} scored {round_.score:g}/10: {round_.critique}"


def plan_and_verify(planner: Planner, executor: Executor, requests: Sequence[PlanRequest], judge: Judge,
                    rounds: int = 1, accept_score: float = 7.0,
                    masks: Sequence[np.ndarray | None] | None = None,
                    first: Sequence[PlanResult] | None = None) -> list[Verified]:
    """Plan, execute and judge every request; re-plan the ones below ``accept_score`` up to ``rounds`` times.

    ``first`` are the requests' plans when they are already planned (the pipeline's shard plan): round 0 uses them.
    """
    masks = list(masks) if masks is not None else [None] * len(requests)
    verified = [Verified(r.id) for r in requests]
    current = list(requests)
    open_items = list(range(len(requests)))
    for index in range(rounds + 1):
        if index == 0 and first is not None:
            plans = list(first)
        else:
            plans = planner.plan_batch([current[i] for i in open_items])
        runnable = [(i, plan) for i, plan in zip(open_items, plans, strict=True) if plan.ok]
        edits = executor.run_many([EditItem(current[i].id, current[i].image, plan.workflow, masks[i], current[i].seed)
                                   for i, plan in runnable])
        edit_of = {i: edit for (i, _), edit in zip(runnable, edits, strict=True)}
        next_open = []
        for i, plan in zip(open_items, plans, strict=True):
            round_ = Round(plan, edit_of.get(i))
            verified[i].rounds.append(round_)
            if round_.edit is None:
                continue  # no valid plan: another round would ask the same question
            if round_.edit.status == "ok":
                try:
                    round_.score, round_.critique = judge(current[i].image, round_.edit.image,
                                                          current[i].instruction)
                except ValueError as error:  # an unreadable judge reply (JudgeError) leaves the round unscored
                    round_.critique = f"the judge could not score this edit: {error}"
                    continue
                if round_.score >= accept_score:
                    continue
            current[i] = replace(current[i], feedback=[*current[i].feedback, critique_feedback(round_)])
            next_open.append(i)
        open_items = next_open
        if not open_items:
            break
    return verified
