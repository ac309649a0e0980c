"""The three training stages on TRL: two optimisation steps each of a tiny random-weight VLM on CPU, an adapter
saved, and the transformers engine planning with it."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from safetensors.numpy import load_file
from tiny_vlm import save_tiny_vlm

from legoedit_core.bricks.toolset import Toolset
from legoedit_core.config import Config
from legoedit_core.planners import PlannerSettings, PlanRequest, make_planner
from legoedit_core.planners.rules import RulesPlanner, trace_text
from legoedit_core.rl.rewards import RewardModel
from legoedit_core.rl.train import BuilderReward, TrainSettings, grpo_examples, read_records, sft_examples, train
from legoedit_core.runtime import Adapter, ModelRuntime
from legoedit_core.settings.judge import JudgeSettings

RECORDS = [
    {"instruction": "make it black and white", "image": "photo.png", "target": {"tools": ["GRAYSCALE"]}},
    {"instruction": "flip it horizontally", "image": "photo.png", "target": {"tools": ["FLIP"]}},
]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory, astronaut):
    folder = tmp_path_factory.mktemp("train")
    Image.fromarray(astronaut).resize((64, 64)).save(folder / "photo.png")
    (folder / "data.jsonl").write_text("\n".join(json.dumps(r) for r in RECORDS) + "\n")
    save_tiny_vlm(folder / "vlm")
    return folder


def _settings(workdir, stage: int, **extra) -> TrainSettings:
    return TrainSettings(stage=stage, model=str(workdir / "vlm"), data=str(workdir / "data.jsonl"),
                         output_dir=str(workdir / f"stage{stage}"), max_steps=2, batch_size=2, num_generations=2,
                         max_completion_length=12, learning_rate=1e-2, lora_r=4, max_length=6144, **extra)


def _lora(path) -> dict[str, np.ndarray]:
    return load_file(str(path / "adapter_model.safetensors"))


def _plans_with(workdir, adapter) -> None:
    """The transformers engine loads base model + adapter and plans (one answer, constrained)."""
    settings = PlannerSettings(strategy="workflow", engine="transformers", model=str(workdir / "vlm"),
                               adapter=str(adapter), max_attempts=1, examples=0, image_size=64, max_new_tokens=48,
                               max_think_chars=16)
    planner = make_planner(settings, Toolset())
    image = np.asarray(Image.open(workdir / "photo.png").convert("RGB"))
    result = planner.plan_batch([PlanRequest("a", image, "make it black and white")])[0]
    assert result.planner == f"workflow/transformers:{workdir / 'vlm'}"
    assert result.attempts and result.attempts[0].raw.startswith("<think>")
    vlm = next(m for m in ModelRuntime.default().stats()["models"]
               if m["model"].startswith(f"vlm.transformers({workdir / 'vlm'},"))
    assert Adapter.from_path(str(adapter)).name in vlm["adapters"]  # loaded by name into the shared base


def test_training_data_comes_from_rules_traces_and_records(workdir, cpu_toolset):
    records = read_records(str(workdir / "data.jsonl"))
    assert records[0]["image"] == str(workdir / "photo.png")
    sft = sft_examples(records + [{"instruction": "teach the dog to sing"}], cpu_toolset, Config())
    assert len(sft) == 2  # the uncovered instruction has no expert trace and is left out
    workflow, reasoning = RulesPlanner(cpu_toolset).compile("make it black and white")
    assert sft[0]["completion"][0]["content"] == trace_text(reasoning, workflow)
    assert sft[0]["prompt"][1]["content"] == "Instruction: make it black and white"
    grpo = grpo_examples(records, cpu_toolset, Config())
    assert json.loads(grpo[1]["ground_truth"]) == {"target": {"tools": ["FLIP"]}}


def test_the_grpo_reward_executes_and_scores_completions(workdir, cpu_toolset):
    records = grpo_examples(read_records(str(workdir / "data.jsonl")), cpu_toolset, Config())
    workflow, reasoning = RulesPlanner(cpu_toolset).compile("make it black and white")
    good = [{"role": "assistant", "content": trace_text(reasoning, workflow)}]
    noise = [{"role": "assistant", "content": "\x13 qq {"}]
    reward = BuilderReward(cpu_toolset, RewardModel())
    record = records[0]
    scores = reward([record["prompt"]] * 2, [good, noise], instruction=[record["instruction"]] * 2,
                    ground_truth=[record["ground_truth"]] * 2, image_uri=[record["image_uri"]] * 2)
    assert scores == [1.0, 0.0]
    assert reward.last[0]["executability"] == 1.0 and reward.last[0]["tool"] == 1.0


def test_stage_1_sft_trains_an_adapter_the_engine_plans_with(workdir):
    output = train(_settings(workdir, 1))
    assert (output / "adapter_config.json").is_file()
    assert any(np.abs(v).sum() > 0 for k, v in _lora(output).items() if "lora_B" in k)  # the steps moved B off 0
    _plans_with(workdir, output)


def test_stage_2_grpo_continues_from_stage_1(workdir):
    stage1 = workdir / "stage1"
    if not stage1.exists():
        train(_settings(workdir, 1))
    # beta > 0: the KL to the base model gives a gradient even when every sampled plan scores the same
    output = train(_settings(workdir, 2, adapter=str(stage1), beta=0.1))
    before, after = _lora(stage1), _lora(output)
    assert before.keys() == after.keys()
    assert any(not np.allclose(before[k], after[k]) for k in before)
    _plans_with(workdir, output)


def test_stage_3_grpo_rewards_with_the_judge(workdir):
    judge = JudgeSettings(engine="transformers", model=str(workdir / "vlm"), image_size=64, max_reasoning_chars=8)
    output = train(_settings(workdir, 3), judge=judge)
    assert (output / "adapter_model.safetensors").is_file()
    _plans_with(workdir, output)
    with pytest.raises(ValueError, match="judge.engine"):
        train(_settings(workdir, 3))
