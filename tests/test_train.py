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
from legoedit_core.rl.train import (
    BuilderReward,
    TrainSettings,
    grpo_examples,
    make_trainer,
    read_records,
    sft_examples,
    train,
)
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
                         max_completion_length=12, learning_rate=1e-2, lora_r=4, max_length=12288, **extra)


@pytest.fixture
def vision_inputs(monkeypatch) -> list[tuple[int, ...]]:
    """The shapes of the pixel patches the tiny VLM's vision tower receives (forward, generation, backward)."""
    from transformers.models.qwen2_vl import modeling_qwen2_vl

    seen: list[tuple[int, ...]] = []
    forward = modeling_qwen2_vl.Qwen2VisionTransformerPretrainedModel.forward

    def recording(self, hidden_states, *args, **kwargs):
        seen.append(tuple(hidden_states.shape))
        return forward(self, hidden_states, *args, **kwargs)

    monkeypatch.setattr(modeling_qwen2_vl.Qwen2VisionTransformerPretrainedModel, "forward", recording)
    return seen


# the 64x64 photo, shown at planner.image_size (448, never scaled up) and fitted by the image processor into at least
# 56x56 pixels: 4x4 patches of 3*2*14*14 values
PATCHES = (16, 3 * 2 * 14 * 14)


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
    assert [image.size for image in sft[0]["images"]] == [(64, 64)]
    with pytest.raises(ValueError, match="has no image"):
        sft_examples([{"instruction": "make it black and white"}], cpu_toolset, Config())
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
    assert reward.last[0]["check"] == 1.0 and reward.last[1]["check"] is None  # the edit is black and white


def test_a_record_with_a_user_mask_is_planned_executed_and_checked_with_it(tmp_path, astronaut, cpu_toolset):
    """The prompt says a mask was drawn, the plan's ``@input.mask`` gets the record's mask, and the edit check
    measures the removal inside it (the plan made no mask of its own)."""
    Image.fromarray(astronaut).save(tmp_path / "photo.png")
    mask = np.zeros(astronaut.shape[:2], np.uint8)
    mask[40:120, 60:160] = 255
    Image.fromarray(mask).save(tmp_path / "mask.png")
    record = {"instruction": "remove the marked object", "image": "photo.png", "mask": "mask.png",
              "target": {"tools": ["INPAINT"]}}
    (tmp_path / "data.jsonl").write_text(json.dumps(record) + "\n")
    example = grpo_examples(read_records(str(tmp_path / "data.jsonl")), cpu_toolset, Config())[0]
    assert "@input.mask" in example["prompt"][1]["content"]
    workflow, reasoning = RulesPlanner(cpu_toolset).compile(record["instruction"], has_mask=True)
    reward = BuilderReward(cpu_toolset, RewardModel())
    columns = {name: [example[name]] for name in ("instruction", "ground_truth", "image_uri", "mask_uri")}
    assert reward([example["prompt"]], [[{"role": "assistant", "content": trace_text(reasoning, workflow)}]],
                  **columns) == [1.0]
    assert reward.last[0]["executability"] == 1.0 and reward.last[0]["check"] == 1.0


def test_training_tokenises_the_prompt_and_image_as_the_engine_does(workdir, cpu_toolset):
    """TRL's view of a training prompt (its multimodal messages through BuilderProcessor) equals the transformers
    engine's view of the same request at inference: same token ids, same pixel values."""
    from transformers import AutoImageProcessor, AutoTokenizer
    from trl.data_utils import prepare_multimodal_messages

    from legoedit_core.planners.prompt import builder_chat
    from legoedit_core.rl.processor import load_processor
    from legoedit_core.vlm.adapters import chat_adapter
    from legoedit_core.vlm.chat import hf_messages

    record = read_records(str(workdir / "data.jsonl"))[0]
    config = Config()
    example = grpo_examples([record], cpu_toolset, config)[0]
    processor = load_processor(str(workdir / "vlm"))
    trained = processor.apply_chat_template(prepare_multimodal_messages(example["prompt"], example["images"]),
                                            tokenize=True, return_dict=True, add_generation_prompt=True,
                                            return_tensors="pt")
    image = np.asarray(Image.open(workdir / "photo.png").convert("RGB"))
    request = PlanRequest("a", image, record["instruction"])
    messages, images = hf_messages(builder_chat(cpu_toolset, config.planner.model_copy(update={"examples": 0}),
                                                request))
    tokenizer = AutoTokenizer.from_pretrained(workdir / "vlm")
    image_processor = AutoImageProcessor.from_pretrained(workdir / "vlm")
    vision = image_processor(images=images, return_tensors="pt")
    prompt = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    prompt = chat_adapter("qwen2_vl").expand([prompt], vision, image_processor, None)[0]
    assert trained["input_ids"][0].tolist() == tokenizer(prompt, add_special_tokens=False)["input_ids"]
    assert np.array_equal(trained["pixel_values"].numpy(), vision["pixel_values"].numpy())
    assert tuple(trained["pixel_values"].shape) == PATCHES


def test_stage_1_sft_trains_an_adapter_the_engine_plans_with(workdir, vision_inputs):
    output = train(_settings(workdir, 1))
    assert vision_inputs and set(vision_inputs) == {(2 * PATCHES[0], PATCHES[1])}  # 2 prompts per batch, each imaged
    assert (output / "adapter_config.json").is_file()
    assert any(np.abs(v).sum() > 0 for k, v in _lora(output).items() if "lora_B" in k)  # the steps moved B off 0
    _plans_with(workdir, output)


def test_stage_2_grpo_continues_from_stage_1(workdir, vision_inputs):
    stage1 = workdir / "stage1"
    if not stage1.exists():
        train(_settings(workdir, 1))
    vision_inputs.clear()
    # beta > 0: the KL to the base model gives a gradient even when every sampled plan scores the same
    output = train(_settings(workdir, 2, adapter=str(stage1), beta=0.1))
    before, after = _lora(stage1), _lora(output)
    assert before.keys() == after.keys()
    assert any(not np.allclose(before[k], after[k]) for k in before)
    assert vision_inputs and all(shape[1] == PATCHES[1] and shape[0] % PATCHES[0] == 0 for shape in vision_inputs)
    _plans_with(workdir, output)


def test_stage_3_grpo_rewards_with_the_judge(workdir, cpu_toolset, vision_inputs):
    judge = JudgeSettings(engine="transformers", model=str(workdir / "vlm"), image_size=64, max_reasoning_chars=8)
    output = train(_settings(workdir, 3), judge=judge)
    assert (output / "adapter_model.safetensors").is_file()
    assert vision_inputs and all(shape[1] == PATCHES[1] for shape in vision_inputs)
    steps = [entry for entry in json.loads((output / "trainer_state.json").read_text())["log_history"]
             if "reward" in entry]
    assert len(steps) == 2 and all("reward_judge" in step for step in steps)  # every step's reward has the judge
    _plans_with(workdir, output)
    with pytest.raises(ValueError, match="judge.engine"):
        train(_settings(workdir, 3))


def test_the_stage_3_reward_is_the_stage_2_reward_plus_the_judge(workdir, cpu_toolset):
    """On plans that run, stage 2's reward is format + executability + tool (all 1 here); the stage-3 trainer's
    reward function adds the judge's score, so dropping the judge from stage 3 fails this test."""
    judge = JudgeSettings(engine="transformers", model=str(workdir / "vlm"), image_size=64, max_reasoning_chars=8)
    stage2 = make_trainer(_settings(workdir, 2)).reward_funcs[0]
    stage3 = make_trainer(_settings(workdir, 3), judge=judge).reward_funcs[0]
    records = grpo_examples(read_records(str(workdir / "data.jsonl")), cpu_toolset, Config())
    completions = [[{"role": "assistant", "content": trace_text(*reversed(RulesPlanner(cpu_toolset).compile(
        r["instruction"])))}] for r in records]
    columns = {name: [r[name] for r in records] for name in ("instruction", "ground_truth", "image_uri")}
    assert stage2([r["prompt"] for r in records], completions, **columns) == [1.0, 1.0]
    rewards = stage3([r["prompt"] for r in records], completions, **columns)
    for without, with_judge, total in zip(stage2.last, stage3.last, rewards, strict=True):
        assert with_judge["judge"] is not None
        assert {k: v for k, v in with_judge.items() if k not in ("judge", "total")} == \
            {k: v for k, v in without.items() if k not in ("judge", "total")}
        assert total == pytest.approx(np.mean([v for k, v in with_judge.items() if k != "total" and v is not None]))
