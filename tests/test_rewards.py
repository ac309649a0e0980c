"""Rewards on hand-built cases with known values, and GRPO advantages."""

from __future__ import annotations

import math

import numpy as np
import pytest

from legoedit_core.planners.decompose import Decomposition
from legoedit_core.planners.rules import RulesPlanner, trace_text
from legoedit_core.rl.advantages import advantages_by_group, group_advantages
from legoedit_core.rl.rewards import (
    GroundTruth,
    RewardModel,
    executability_reward,
    format_reward,
    set_f1,
)
from legoedit_core.settings.rewards import RewardSettings, RewardWeights

TRUTH = GroundTruth(actions=["Recoloring"], subjects=["coat", "hair"], goals=["scarlet red"], tools=["RES", "RCM"])


@pytest.fixture(scope="module")
def model() -> RewardModel:
    return RewardModel(RewardSettings())


def _answer(actions, subjects, goals) -> tuple[str, Decomposition]:
    decomposition = Decomposition(actions, subjects, goals)
    return f"<think>what to change</think>\n{decomposition.text()}", decomposition


def test_a_perfect_decomposition_scores_one(model):
    text, decomposition = _answer(["Recoloring"], ["coat", "hair"], ["scarlet red"])
    rewards = model.score(text, TRUTH, decomposition=decomposition, plan_ok=True)
    assert (rewards.format, rewards.action, rewards.subject, rewards.goal) == (1.0, 1.0, 1.0, 1.0)
    assert rewards.tool == 0.0  # no workflow: the reference tools are not used
    assert rewards.total == pytest.approx((1 + 1 + 0 + 1 + 1 + 1) / 6)


def test_a_missing_subject_lowers_the_subject_reward_to_the_f1_of_one_of_two(model):
    text, decomposition = _answer(["Recoloring"], ["coat"], ["scarlet red"])
    rewards = model.score(text, TRUTH, decomposition=decomposition)
    # precision 1/1, recall 1/2 -> F1 = 2/3
    assert rewards.subject == pytest.approx(2 / 3)
    assert rewards.action == rewards.goal == 1.0


def test_an_extra_subject_lowers_precision_by_the_same_rule(model):
    _, decomposition = _answer(["Recoloring"], ["coat", "hair", "shoes"], ["scarlet red"])
    assert model.score("", TRUTH, decomposition=decomposition).subject == pytest.approx(2 * (2 / 3) * 1 / (2 / 3 + 1))


def test_synonyms_match_through_sentence_embeddings(model):
    text, decomposition = _answer(["Recoloring"], ["jacket", "hair"], ["scarlet red"])
    assert model.score(text, TRUTH, decomposition=decomposition).subject == 1.0
    similarity = model.similarity
    assert similarity(["jacket"], ["coat"])[0, 0] >= model.settings.match_threshold
    assert set_f1(["jacket", "hair"], ["coat", "hair"]) == 0.5  # without embeddings only "hair" matches
    # an unrelated word does not match, and one phrase cannot match two
    assert set_f1(["sky"], ["coat"], similarity, 0.75) == 0.0
    assert set_f1(["coat"], ["coat", "jacket"], similarity, 0.75) == pytest.approx(2 / 3)


def test_actions_match_by_name_only(model):
    _, decomposition = _answer(["Replacement"], ["coat", "hair"], ["scarlet red"])
    assert model.score("", TRUTH, decomposition=decomposition).action == 0.0


def test_format_reward_needs_reasoning_and_a_parseable_answer(cpu_toolset):
    workflow, reasoning = RulesPlanner(cpu_toolset).compile("make it black and white")
    assert format_reward(trace_text(reasoning, workflow)) == 1.0
    assert format_reward(workflow.to_json()) == 0.0  # no <think>
    assert format_reward("<think>hm</think>{\"nodes\": [") == 0.0
    assert format_reward(_answer(["Style"], ["photo"], ["sketch"])[0]) == 1.0
    assert format_reward("<think>x</think><action>Flying</action><subjects>a</subjects><goals>b</goals>") == 0.0


def test_executability_and_tool_rewards(model, cpu_toolset):
    assert executability_reward(False, None) == 0.0
    assert executability_reward(True, "failed") == 0.5
    assert executability_reward(True, "ok") == 1.0
    workflow, reasoning = RulesPlanner(cpu_toolset).compile("make the coat red")
    text = trace_text(reasoning, workflow)
    rewards = model.score(text, GroundTruth(tools=["RES", "RCM"]), workflow, edit_status="ok")
    assert (rewards.format, rewards.executability, rewards.tool) == (1.0, 1.0, 1.0)
    assert rewards.action is None and rewards.subject is None  # a workflow answer has no decomposition
    assert rewards.total == 1.0
    assert model.score(text, GroundTruth(tools=["SOS", "RCM", "BLUR"]), workflow).tool == pytest.approx(0.4)


def test_judge_reward_and_the_weighted_total_of_what_applies(cpu_toolset):
    model = RewardModel(RewardSettings(weights=RewardWeights(format=1, executability=1, judge=2)))
    workflow, reasoning = RulesPlanner(cpu_toolset).compile("flip it")
    text = trace_text(reasoning, workflow)
    judged = model.score(text, GroundTruth(), workflow, edit_status="ok", judge_score=7.0, judged=True)
    assert judged.judge == pytest.approx(0.7)
    assert judged.total == pytest.approx((1 + 1 + 2 * 0.7) / 4)
    unreadable = model.score(text, GroundTruth(), workflow, edit_status="ok", judge_score=None, judged=True)
    assert unreadable.judge is None and unreadable.total == 1.0  # an unreadable reply is left out, not a 0
    failed = model.score(text, GroundTruth(), workflow, edit_status="failed", judged=True)
    assert failed.judge == 0.0 and failed.total == pytest.approx((1 + 0.5 + 0) / 4)


def test_ground_truth_from_a_row_reads_targets_and_reference_workflows():
    reference = {"nodes": [{"id": "s", "tool": "SOS", "inputs": {"image": "@input.image"}},
                           {"id": "b", "tool": "CBG", "inputs": {"image": "@input.image", "mask": "@s.mask",
                                                                 "prompt": "blue"}}], "output": "@b.image"}
    truth = GroundTruth.from_row({"target": {"subjects": "coat; hair", "actions": ["Recoloring"]},
                                  "reference_workflow": reference})
    assert truth.subjects == ["coat", "hair"] and truth.actions == ["Recoloring"] and truth.goals is None
    assert truth.tools == ["SOS", "CBG"]
    with pytest.raises(ValueError, match="reference_workflow"):
        GroundTruth.from_row({"reference_workflow": "{not json"})


def test_group_advantages_are_centred_scaled_and_zero_for_equal_rewards():
    advantages = group_advantages([1.0, 0.0, 0.5, 0.5])
    assert sum(advantages) == pytest.approx(0.0)
    assert np.std(advantages) == pytest.approx(1.0)
    assert advantages[0] == pytest.approx(0.5 / math.sqrt(0.125))
    assert group_advantages([0.3, 0.3, 0.3]) == [0.0, 0.0, 0.0]
    assert group_advantages([1.0, 0.0], scale=False) == [0.5, -0.5]
    with pytest.raises(ValueError, match="finite"):
        group_advantages([1.0, float("nan")])


def test_advantages_by_group_keep_groups_apart():
    groups = ["a", "b", "a", "b", "c"]
    advantages = advantages_by_group(groups, [1.0, 5.0, 0.0, 5.0, 2.0])
    assert advantages == [1.0, 0.0, -1.0, 0.0, 0.0]



def test_the_trl_reward_scores_a_decomposition_answer_against_its_target(model, cpu_toolset):
    """Stage 2's decomposition match is wired: a decompose Builder's completion earns the action, subject and goal
    rewards in the TRL reward function, as it does in rollouts (one scoring: ``rl.scoring.score_samples``)."""
    import json

    from legoedit_core.rl.train import BuilderReward

    text, _ = _answer(["Recoloring"], ["coat", "hair"], ["scarlet red"])
    truth = json.dumps({"target": {"actions": ["Recoloring"], "subjects": ["coat", "hair"], "goals": ["scarlet red"]}})
    reward = BuilderReward(cpu_toolset, model)
    [total] = reward([[]], [[{"role": "assistant", "content": text}]], instruction=["make her coat and hair red"],
                     ground_truth=[truth], image_uri=[""])
    scored = reward.last[0]
    assert (scored["format"], scored["action"], scored["subject"], scored["goal"]) == (1.0, 1.0, 1.0, 1.0)
    assert scored["executability"] == 0.0 and 0 < total < 1  # no workflow to run: the plan is not executable
