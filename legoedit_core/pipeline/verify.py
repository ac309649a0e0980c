"""Verify and re-plan in batch (``planner.verify_rounds`` > 0): the shard's plans are executed and judged, and a
rejected edit is re-planned with the critique (``planners.replan.VerifyRun``), every round kept for the row. The
edit flow executes each round through its brick-group tasks and keeps the kept round's edit as the row's result
(``pipeline.shard.start_verify`` / ``keep_verified``); ``Verifier`` runs the rounds through an executor (the CLI).

The judge is the VLM judge where ``judge.engine`` is set, otherwise the verifiable checks (``judge.checks``): an
edit whose checks all pass scores 10, one where no check applies is accepted as is (nothing to verify), and a
failed check scores the fraction that passed, with the failed checks and their measurements as the critique.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from legoedit_core.config import Config
from legoedit_core.executor import Executor
from legoedit_core.judge.checks import edit_check
from legoedit_core.judge.judgement import make_judge
from legoedit_core.judge.vlm import VLMJudge
from legoedit_core.planners.base import Planner, PlanRequest, PlanResult
from legoedit_core.planners.replan import Judge, Verified, plan_and_verify


def check_judge(source: np.ndarray, edited: np.ndarray, instruction: str) -> tuple[float, str]:
    """The verifiable checks as a judge: (0-10, critique)."""
    check = edit_check(source, edited, instruction)
    if check is None:
        return 10.0, "no verifiable check applies to this instruction"
    if check.passed:
        return 10.0, "every verifiable check passed"
    measured = ", ".join(f"{name} {value:.3g}" for name, value in check.measured.items())
    return 10.0 * check.score, f"failed checks: {', '.join(check.failed)} (measured: {measured})"


@dataclass
class Verifier:
    """Runs the verify rounds of a shard's planned rows."""

    planner: Planner
    executor: Executor
    judge: Judge
    rounds: int
    accept_score: float

    def __call__(self, requests: Sequence[PlanRequest], plans: Sequence[PlanResult],
                 masks: Sequence[np.ndarray | None]) -> list[Verified]:
        """Every round of every request; ``Verified.best.plan`` is the plan a row keeps."""
        return plan_and_verify(self.planner, self.executor, requests, self.judge, self.rounds, self.accept_score,
                               masks, first=plans)


def verify_judge(vlm: VLMJudge | None) -> Judge:
    """The judge of the verify rounds: the VLM judge where ``judge.engine`` set one up, else the verifiable checks."""
    return vlm or check_judge


def make_verifier(config: Config, planner: Planner, executor: Executor) -> Verifier | None:
    """The verifier the config asks for, or None when ``planner.verify_rounds`` is 0."""
    if config.planner.verify_rounds == 0:
        return None
    return Verifier(planner, executor, verify_judge(make_judge(config.judge)), config.planner.verify_rounds,
                    config.planner.accept_score)


def round_notes(verified: Verified) -> list[str]:
    """One line per round for the row's trace and report: its tools, score and critique, and what came of it."""
    lines = []
    for index, round_ in enumerate(verified.rounds):
        tools = "+".join(round_.plan.workflow.tools()) if round_.plan.workflow is not None else "no plan"
        score = f"score {round_.score:g}/10" if round_.score is not None else (
            f"edit failed: {round_.edit.error}" if round_.edit is not None and round_.edit.status != "ok"
            else "not scored")
        outcome = "kept" if round_ is verified.best else "not kept"
        lines.append(f"verify round {index}: {tools}, {score}; {round_.critique or 'no critique'}; {outcome}")
    return lines
