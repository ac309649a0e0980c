"""One scoring of the Builder's samples, for rollouts and for training alike: judge the edits, reward every
sample, and exclude the groups that cannot be compared.

Rollouts (``rollouts.score_shard``) and the TRL reward function (``train.BuilderReward``) each get their samples
their own way (a planner's batched call and the executor's waves in a flow; completions parsed and executed in the
trainer's process), then both call ``score_samples``, so a sample scores the same in both.

The exclusion rule: when the judge is asked and still gives no score for one edit of a group (after its re-asks),
the whole group is excluded. Its totals would mix rewards with and without the judge component, and the
advantages within the group would compare unlike things. Rollouts write the group's rows with ``excluded`` (the
reason) and no advantage; the TRL reward function returns None for each of its samples, which TRL counts as
unscorable: left out of the group's baseline, advantage 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from legoedit_core.bricks.toolset import Toolset
from legoedit_core.judge.judgement import Edit, Judgement, judge_edits
from legoedit_core.judge.vlm import VLMJudge
from legoedit_core.planners.base import PlanAttempt, PlanResult
from legoedit_core.planners.parsing import parse_answer
from legoedit_core.rl.rewards import GroundTruth, RewardModel, Rewards
from legoedit_core.workflow import validate


@dataclass
class Sample:
    """One answer of the Builder, executed where it could be."""

    group: str  # the prompt it answers: a group's samples are compared with each other
    name: str  # how the exclusion reason names it
    plan: PlanResult  # the answer: its text, its valid workflow (if any) and its decomposition (if any)
    truth: GroundTruth
    edit: Edit | None  # the edit it made; None when it had no valid plan or nothing to run on


@dataclass
class Scores:
    """Per sample: its rewards and the judgement of its edit; and the excluded groups, each with the reason."""

    rewards: list[Rewards]
    judgements: list[Judgement | None]
    excluded: dict[str, str]


def score_samples(samples: Sequence[Sample], model: RewardModel, judge: VLMJudge | None = None) -> Scores:
    """Judge every sample's edit (the VLM judge, when set, in one batch; the edit checks always), reward every
    sample (format, executability, tool and decomposition match, judge, check), and exclude the groups with an
    edit the judge gave no score."""
    edited = [i for i, sample in enumerate(samples) if sample.edit is not None]
    judgements: list[Judgement | None] = [None] * len(samples)
    for i, judgement in zip(edited, judge_edits([samples[i].edit for i in edited], judge), strict=True):
        judgements[i] = judgement
    rewards = [model.score_plan(sample.plan, sample.truth,
                                sample.edit.result.status if sample.edit is not None else None,
                                judgement.score if judgement is not None else None, judged=judge is not None,
                                check=judgement.check.score if judgement and judgement.check else None)
               for sample, judgement in zip(samples, judgements, strict=True)]
    excluded: dict[str, str] = {}
    if judge is not None:
        for sample, judgement in zip(samples, judgements, strict=True):
            if judgement is not None and judgement.score is None:
                excluded.setdefault(sample.group, f"the judge gave {sample.name} no score: {judgement.error}")
    return Scores(rewards, judgements, excluded)


def answer_plan(text: str, instruction: str, toolset: Toolset, planner: str = "trained") -> PlanResult:
    """A completion as the plan a planner would have made of it (one attempt, no re-asking): its workflow when it
    parses and validates against ``toolset``, and its text, from which the reward reads a decomposition."""
    reasoning, workflow, problems = parse_answer(text, instruction)
    if workflow is not None and not problems:
        problems = [str(problem) for problem in validate(workflow, toolset)]
    valid = workflow is not None and not problems
    return PlanResult(instruction, planner, workflow if valid else None, reasoning,
                      [PlanAttempt(text, reasoning, workflow, problems)],
                      None if valid else "; ".join(problems) or "no workflow in the answer")
