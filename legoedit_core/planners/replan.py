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


@dataclass
class VerifyRun:
    """The verify rounds of a batch of requests, one step at a time, for whoever executes the plans: the flow runs
    each round's edits through its brick-group tasks (as it runs any edit), ``plan_and_verify`` through an executor.

    ``edit_items`` are this round's edits to run; ``judge`` takes their results, judges them and says which requests
    to re-plan (with the critique in their feedback); ``replanned`` takes those plans. Each round's ``EditResult`` is
    kept in its ``Round``, so the kept round's edit is the row's result and no plan is executed twice.
    """

    requests: list[PlanRequest]
    masks: list[np.ndarray | None]
    rounds: int
    accept_score: float
    verified: list[Verified]
    open_items: list[int]
    plans: list[PlanResult]  # the current round's plan of each open item
    round: int = 0

    @classmethod
    def start(cls, requests: Sequence[PlanRequest], plans: Sequence[PlanResult], rounds: int, accept_score: float,
              masks: Sequence[np.ndarray | None] | None = None) -> VerifyRun:
        """Round 0 of ``requests`` with their first ``plans``."""
        return cls(list(requests), list(masks) if masks is not None else [None] * len(requests), rounds,
                   accept_score, [Verified(r.id) for r in requests], list(range(len(requests))), list(plans))

    @property
    def done(self) -> bool:
        return not self.open_items

    def _runnable(self) -> list[tuple[int, PlanResult]]:
        return [(i, plan) for i, plan in zip(self.open_items, self.plans, strict=True) if plan.ok]

    def edit_items(self) -> list[EditItem]:
        """The edits of this round: each open request with a valid plan."""
        return [EditItem(self.requests[i].id, self.requests[i].image, plan.workflow, self.masks[i],
                         self.requests[i].seed) for i, plan in self._runnable()]

    def judge(self, edits: Sequence[EditResult], judge: Judge) -> list[PlanRequest]:
        """Record this round's ``edits`` (one per ``edit_items``), judge the ok ones, and return the requests to
        re-plan, their critique added to their feedback (none: verification is over)."""
        edit_of = {i: edit for (i, _), edit in zip(self._runnable(), edits, strict=True)}
        rejected = []
        for i, plan in zip(self.open_items, self.plans, strict=True):
            round_ = Round(plan, edit_of.get(i))
            self.verified[i].rounds.append(round_)
            if round_.edit is None:
                continue  # no valid plan: another round would ask the same question
            if round_.edit.status == "ok":
                request = self.requests[i]
                try:
                    round_.score, round_.critique = judge(request.image, round_.edit.image, request.instruction)
                except ValueError as error:  # an unreadable judge reply (JudgeError) leaves the round unscored
                    round_.critique = f"the judge could not score this edit: {error}"
                    continue
                if round_.score >= self.accept_score:
                    continue
            self.requests[i] = replace(self.requests[i], feedback=[*self.requests[i].feedback,
                                                                    critique_feedback(round_)])
            rejected.append(i)
        self.open_items = rejected if self.round < self.rounds else []
        self.plans = []
        return [self.requests[i] for i in self.open_items]

    def replanned(self, plans: Sequence[PlanResult]) -> None:
        """The next round's plans, one per request ``judge`` returned."""
        self.plans = list(plans)
        self.round += 1


def plan_and_verify(planner: Planner, executor: Executor, requests: Sequence[PlanRequest], judge: Judge,
                    rounds: int = 1, accept_score: float = 7.0,
                    masks: Sequence[np.ndarray | None] | None = None,
                    first: Sequence[PlanResult] | None = None) -> list[Verified]:
    """Plan, execute and judge every request; re-plan the ones below ``accept_score`` up to ``rounds`` times.

    ``first`` are the requests' plans when they are already planned: round 0 uses them.
    """
    plans = list(first) if first is not None else planner.plan_batch(list(requests))
    return run_rounds(VerifyRun.start(requests, plans, rounds, accept_score, masks), planner, executor, judge).verified


def run_rounds(run: VerifyRun, planner: Planner, executor: Executor, judge: Judge) -> VerifyRun:
    """Every remaining round of ``run``, each round's edits through ``executor`` in one ``run_many``."""
    while replan := run.judge(executor.run_many(run.edit_items()), judge):
        run.replanned(planner.plan_batch(replan))
    return run
