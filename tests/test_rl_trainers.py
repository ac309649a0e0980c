"""A rollouts output in each RL trainer's shape, loaded the way each trainer loads it, and ``legoedit train``
reading a rollouts output directly (stages 1 and 2 on a tiny random-weight VLM).

verl and EasyR1 do not install here (verl needs tensordict and a GPU stack; EasyR1 is not on the registry), so
their datasets are checked against the column contract their ``RLHFDataset`` classes document; TRL's is loaded by
TRL itself: its chat-template preparation and an SFT step on the exported file.
"""

from __future__ import annotations

import json

import pytest
from datasets import load_dataset
from PIL import Image
from prefect.testing.utilities import prefect_test_harness
from tiny_vlm import save_tiny_vlm

from flows.rollouts import rollouts as flow_rollouts
from legoedit.cli import main
from legoedit_core.config import Config
from legoedit_core.rl.rollouts import RolloutOutput
from legoedit_core.rl.train import read_records
from legoedit_core.settings.pipeline import PipelineSettings

ITEMS = [("make it black and white", {"tools": ["GRAYSCALE"]}), ("flip it horizontally", {"tools": ["FLIP"]}),
         ("teach the astronaut to juggle", {})]
K = 2


@pytest.fixture(scope="module")
def rollouts(tmp_path_factory, astronaut) -> str:
    """A rollouts output of 3 items x K samples, written by the rollouts flow."""
    folder = tmp_path_factory.mktemp("rollouts")
    Image.fromarray(astronaut).resize((64, 64)).save(folder / "photo.png")
    (folder / "data.jsonl").write_text("".join(json.dumps({"id": f"item{i}", "image": "photo.png", "instruction": text,
                                                           "target": target}) + "\n"
                                               for i, (text, target) in enumerate(ITEMS)))
    with prefect_test_harness(server_startup_timeout=180):
        flow_rollouts(str(folder / "data.jsonl"), str(folder / "out"), k=K, temperature=1.0,
                      config=Config(pipeline=PipelineSettings(shard_size=3)))
    output = RolloutOutput(str(folder / "out"))
    return output.uri


def _export(rollouts: str, tmp_path, trainer: str):
    destination = tmp_path / f"{trainer}.parquet"
    assert main(["export-rollouts", rollouts, str(destination), "--trainer", trainer]) == 0
    return load_dataset("parquet", data_files=str(destination), split="train")


def test_verl_reads_chat_messages_with_an_image_placeholder_per_image(rollouts, tmp_path):
    dataset = _export(rollouts, tmp_path, "verl")
    assert len(dataset) == len(ITEMS)  # one prompt per item: verl samples its own responses
    assert {"data_source", "prompt", "images", "ability", "reward_model", "extra_info"} <= set(dataset.column_names)
    for index, row in enumerate(dataset):
        assert [m["role"] for m in row["prompt"]] == ["system", "user"]
        assert all(isinstance(m["content"], str) for m in row["prompt"])
        placeholders = sum(m["content"].count("<image>") for m in row["prompt"])
        assert placeholders == len(row["images"]) == 1 and isinstance(row["images"][0], Image.Image)
        assert row["reward_model"]["style"] == "rule" and row["extra_info"]["index"] == index
        assert json.loads(row["reward_model"]["ground_truth"])["target"] == ITEMS[index][1]


def test_easyr1_reads_a_string_prompt_split_on_image_and_an_answer(rollouts, tmp_path):
    dataset = _export(rollouts, tmp_path, "easyr1")
    assert len(dataset) == len(ITEMS)
    for (instruction, target), row in zip(ITEMS, dataset, strict=True):
        assert isinstance(row["prompt"], str) and instruction in row["prompt"]
        # EasyR1's RLHFDataset: content blocks from prompt.split("<image>"), one image per placeholder
        assert len(row["prompt"].split("<image>")) - 1 == len(row["images"]) == 1
        assert isinstance(row["images"][0], Image.Image)
        assert json.loads(row["answer"])["target"] == target


def test_trl_prepares_structured_prompts_and_completions(rollouts, tmp_path):
    from trl.data_utils import apply_chat_template, is_conversational

    from legoedit_core.rl.processor import load_processor

    dataset = _export(rollouts, tmp_path, "trl")
    assert len(dataset) == len(ITEMS) * K  # every sample with its answer (a refusal too) and reward
    row = dataset[0]
    assert is_conversational(row)
    user = row["prompt"][-1]["content"]
    assert [block["type"] for block in user] == ["image", "text"] and "<image>" not in user[1]["text"]
    assert row["completion"][0]["role"] == "assistant" and "<think>" in row["completion"][0]["content"][0]["text"]
    assert isinstance(row["images"][0], Image.Image) and row["reward"] > 0
    processor = load_processor(str(save_tiny_vlm(tmp_path / "vlm")))
    text = apply_chat_template({"prompt": row["prompt"], "completion": row["completion"]}, processor.tokenizer)
    assert "<image>" not in text["prompt"] and "<|vision_start|>" in text["prompt"]  # the template's image tokens
    assert row["completion"][0]["content"][0]["text"] in text["completion"]


def test_legoedit_train_reads_a_rollouts_output(rollouts):
    records = read_records(rollouts)
    assert [r["instruction"] for r in records] == [text for text, _ in ITEMS]
    assert [r["target"] for r in records] == [target for _, target in ITEMS]
    assert "text" in records[0] and "text" in records[1] and "text" not in records[2]  # the best ok answer


@pytest.mark.parametrize("stage", [1, 2])
def test_legoedit_train_stage_on_a_rollouts_output(stage, rollouts, tmp_path, capsys):
    model = save_tiny_vlm(tmp_path / "vlm")
    code = main(["train", "--stage", str(stage), "--model", str(model), "--data", rollouts, "--output-dir",
                 str(tmp_path / "adapter"), "--max-steps", "1", "--batch-size", "2", "--num-generations", "2",
                 "--max-completion-length", "12", "--max-length", "12288"])
    assert code == 0, capsys.readouterr().err
    assert (tmp_path / "adapter" / "adapter_model.safetensors").is_file()
    assert f"stage {stage} saved to" in capsys.readouterr().out


def test_trl_sft_trains_a_step_on_the_exported_file(rollouts, tmp_path):
    from trl import SFTConfig, SFTTrainer

    from legoedit_core.rl.train import TrainSettings, _common_args, _model_and_peft

    dataset = _export(rollouts, tmp_path, "trl").remove_columns(["reward", "advantage", "group_id"])
    settings = TrainSettings(stage=1, model=str(save_tiny_vlm(tmp_path / "vlm")), data="unused.jsonl",
                             output_dir=str(tmp_path / "sft"), max_steps=1, batch_size=2, lora_r=4)
    model, processor, lora = _model_and_peft(settings)
    trainer = SFTTrainer(model=model, args=SFTConfig(**_common_args(settings), max_length=12288),
                         train_dataset=dataset, processing_class=processor, peft_config=lora)
    result = trainer.train()
    assert result.global_step == 1 and result.training_loss > 0


def test_training_follows_the_engine_settings_dtype(tmp_path, monkeypatch):
    import torch

    from legoedit_core.rl.train import TrainSettings, _common_args, _model_and_peft, training_dtype

    model = str(save_tiny_vlm(tmp_path / "vlm"))
    settings = TrainSettings(stage=1, model=model, data="unused.jsonl", output_dir=str(tmp_path / "out"))
    assert training_dtype(settings) == "float32" and not _common_args(settings)["bf16"]
    on_cuda = settings.model_copy(update={"device": "cuda"})
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: True)
    assert training_dtype(on_cuda) == "bfloat16" and _common_args(on_cuda)["bf16"]  # as the engines: bf16 on cuda
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: False)
    assert training_dtype(on_cuda) == "float32" and not _common_args(on_cuda)["bf16"]  # where it is supported
    bf16 = settings.model_copy(update={"dtype": "bfloat16"})
    loaded, _, _ = _model_and_peft(bf16)
    assert loaded.dtype == torch.bfloat16 and _common_args(bf16)["bf16"] and not _common_args(bf16)["fp16"]
