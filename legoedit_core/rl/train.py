"""The Builder's three training stages (Lego-Edit's progressive recipe) on TRL, LoRA by default.

1. ``sft``: supervised fine-tuning on expert traces: instruction -> ``<think>`` reasoning + workflow JSON. The rules
   planner writes them for any instruction it covers; a dataset may also bring its own ``workflow``/``text``.
2. ``grpo`` with verifiable rewards (format, executability, tool and decomposition match) on annotated
   instructions.
3. ``grpo`` with the judge's score as the reward, on unannotated open-domain instructions with images.

Training data is a rollouts output (``legoedit rollouts``'s output: its items, with the best answer of each as
the stage-1 target), or JSONL, one object per line: ``instruction`` and, as a stage needs them, ``image`` (path or URI,
relative to the file), ``target`` ({actions, subjects, goals, tools}), ``reference_workflow``, ``workflow`` /
``reasoning`` / ``text`` (stage 1); every record needs its ``image``. Prompts are the Builder's own chat
(``planners.prompt.builder_chat``): the system prompt, then the user turn with the image scaled to
``planner.image_size`` and the instruction, tokenised by ``BuilderProcessor`` exactly as the transformers engine
does at inference, so the model trains on the task it performs (TRL's vision-language path). Each stage saves a
LoRA adapter (``adapter_config.json`` + ``adapter_model.safetensors``) that the transformers and vLLM engines
load with ``planner.adapter``; a later stage can start from an earlier stage's adapter.
"""

from __future__ import annotations

import json
import posixpath
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from legoedit_core.bricks.toolset import Toolset
from legoedit_core.config import Config
from legoedit_core.data.images import ImageDecodeError, decode_image, decode_mask
from legoedit_core.data.storage import Storage
from legoedit_core.executor import EditItem, Executor
from legoedit_core.judge.judgement import Edit
from legoedit_core.judge.vlm import VLMJudge
from legoedit_core.planners.base import PlanRequest
from legoedit_core.planners.prompt import builder_chat
from legoedit_core.planners.rules import expert_traces, trace_text
from legoedit_core.rl.rewards import COMPONENTS, GroundTruth, RewardModel
from legoedit_core.rl.scoring import Sample, answer_plan, score_samples
from legoedit_core.rl.trainers import rollout_records
from legoedit_core.settings.engine import default_dtype
from legoedit_core.settings.judge import JudgeSettings
from legoedit_core.settings.planner import PlannerSettings
from legoedit_core.settings.rewards import RewardSettings
from legoedit_core.types import size_of
from legoedit_core.workflow import parse_workflow

Stage = Literal[1, 2, 3]


class TrainSettings(BaseModel):
    """One training run. ``model`` is the base Builder; ``adapter`` an earlier stage's adapter to start from."""

    model_config = ConfigDict(extra="forbid")

    stage: Stage
    model: str
    data: str = Field(description="JSONL training data (see the module docstring)")
    output_dir: str
    adapter: str | None = None
    lora: bool = Field(True, description="train a LoRA adapter (False: train every weight)")
    lora_r: int = Field(16, ge=1)
    lora_alpha: int = Field(32, ge=1)
    lora_dropout: float = Field(0.05, ge=0.0, lt=1.0)
    target_modules: list[str] = Field(default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"])
    max_steps: int = Field(200, ge=1)
    learning_rate: float = Field(1e-5, gt=0)
    batch_size: int = Field(4, ge=1)
    gradient_accumulation_steps: int = Field(1, ge=1)
    num_generations: int = Field(4, ge=2, description="GRPO: samples per prompt (the group)")
    max_completion_length: int = Field(512, ge=8)
    max_length: int = Field(4096, ge=64, description="SFT: longest prompt + answer in tokens")
    temperature: float = Field(1.0, gt=0)
    beta: float = Field(0.0, ge=0, description="GRPO: KL penalty against the starting policy")
    examples: int = Field(0, ge=0, description="worked examples in the Builder prompt used for training")
    seed: int = 0
    device: str = Field("cpu", description="cpu, or cuda for the accelerator")
    dtype: str = Field("auto", description="float32, bfloat16 or float16; auto: as the engines, bfloat16 on an "
                       "accelerator that supports it, else float32")
    logging_steps: int = Field(1, ge=1)


# ------------------------------------------------------------------------------------------------------- data


def read_records(uri: str, storage_options: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """The JSON objects of a JSONL file, ``image`` paths made absolute against the file's folder; or the items of a
    rollouts output (any other ``uri``: ``legoedit rollouts``'s output prefix, see ``trainers.rollout_records``)."""
    if not uri.lower().endswith(".jsonl"):
        return rollout_records(uri, storage_options)
    storage = Storage(uri, storage_options)
    base = posixpath.dirname(storage.uri())
    records = []
    for number, line in enumerate(storage.read_bytes().decode("utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise ValueError(f"{uri} line {number}: not valid JSON ({error.msg})") from None
        if not isinstance(record, dict) or not isinstance(record.get("instruction"), str):
            raise ValueError(f"{uri} line {number}: expected an object with an instruction")
        for key in ("image", "mask"):
            value = record.get(key)
            if isinstance(value, str) and "://" not in value and not value.startswith("/"):
                record[key] = posixpath.join(base, value)
        records.append(record)
    if not records:
        raise ValueError(f"{uri} holds no training records")
    return records


def _record_image(record: dict[str, Any], storage_options: dict[str, Any] | None) -> np.ndarray:
    """The pixels of a record's ``image``; every training prompt carries its image, as every inference prompt does."""
    uri = record.get("image")
    if not isinstance(uri, str) or not uri:
        raise ValueError(f"the record {record['instruction']!r} has no image: training prompts carry the image "
                         "the Builder plans from, as at inference")
    try:
        return decode_image(Storage(uri, storage_options).read_bytes())
    except (FileNotFoundError, ImageDecodeError) as error:
        raise ValueError(f"the image of the record {record['instruction']!r} does not load: {error}") from None


def prompt_example(record: dict[str, Any], toolset: Toolset, settings: PlannerSettings,
                   storage_options: dict[str, Any] | None = None) -> dict[str, Any]:
    """The Builder's chat for a record as TRL takes it: text messages (``prompt``) and the user turn's image
    (``images``), the same chat, image and size as inference (``builder_chat``); TRL puts the image before the
    user's text, as the engines do."""
    request = PlanRequest(record["instruction"], _record_image(record, storage_options), record["instruction"],
                          has_mask=bool(record.get("mask")))
    chat = builder_chat(toolset, settings, request)
    return {"prompt": [{"role": m.role, "content": m.text} for m in chat],
            "images": [m.image for m in chat if m.image is not None]}


def _planner_settings(config: Config, examples: int) -> PlannerSettings:
    return config.planner.model_copy(update={"examples": examples})


def sft_examples(records: Sequence[dict[str, Any]], toolset: Toolset, config: Config, examples: int = 0,
                 storage_options: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Prompt/completion pairs: a record's own ``text`` or ``workflow`` (+ ``reasoning``), else the rules trace."""
    rows = []
    ruled = {t["instruction"]: t["text"] for t in expert_traces([r["instruction"] for r in records
                                                                  if "text" not in r and "workflow" not in r],
                                                                 toolset)}
    settings = _planner_settings(config, examples)
    for record in records:
        instruction = record["instruction"]
        if "text" in record:
            text = record["text"]
        elif "workflow" in record:
            text = trace_text(record.get("reasoning", ""), parse_workflow(record["workflow"]))
        elif instruction in ruled:
            text = ruled[instruction]
        else:
            continue  # the rules planner does not cover it and no answer was given
        rows.append(prompt_example(record, toolset, settings, storage_options)
                    | {"completion": [{"role": "assistant", "content": text}]})
    if not rows:
        raise ValueError("no SFT example: give workflows, or instructions the rules planner covers")
    return rows


def grpo_examples(records: Sequence[dict[str, Any]], toolset: Toolset, config: Config, examples: int = 0,
                  storage_options: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Prompts with their images, plus what the rewards need: the instruction, the ground truth (JSON) and the
    image URI (the plan is executed on the full-size image, not on the one shown to the Builder)."""
    settings = _planner_settings(config, examples)
    return [prompt_example(r, toolset, settings, storage_options)
            | {"instruction": r["instruction"], "image_uri": r["image"], "mask_uri": r.get("mask") or "",
               "ground_truth": json.dumps({k: r[k] for k in ("target", "reference_workflow") if k in r})}
            for r in records]


# ---------------------------------------------------------------------------------------------------- rewards


class BuilderReward:
    """A TRL reward function: each completion is parsed, validated, executed on its image (when there is one), and
    then scored by ``scoring.score_samples``, as rollouts are: checked (the verifiable edit checks), judged
    (stage 3) and rewarded (format, executability, tool and decomposition match, judge, check).

    The samples of one prompt in a call are a group: when the judge gives one of them no score, every sample of the
    group gets None (TRL leaves unscorable samples out of the group's baseline and gives them advantage 0), as
    rollouts exclude such a group."""

    def __init__(self, toolset: Toolset, rewards: RewardModel, judge: VLMJudge | None = None,
                 storage_options: dict[str, Any] | None = None) -> None:
        self.toolset, self.rewards, self.judge = toolset, rewards, judge
        self.executor = Executor(toolset)
        self.storage_options = storage_options
        self.__name__ = "builder_judge" if judge is not None else "builder_verifiable"
        self.last: list[dict[str, Any]] = []

    def _read(self, uri: str, decode: Callable[[bytes], np.ndarray]) -> np.ndarray | None:
        if not uri:
            return None
        try:
            return decode(Storage(uri, self.storage_options).read_bytes())
        except (FileNotFoundError, ImageDecodeError):
            return None

    def _mask(self, uri: str, image: np.ndarray | None) -> np.ndarray | None:
        """The record's user mask at its image's size (None without one, or without the image)."""
        if image is None:
            return None
        return self._read(uri, lambda data: decode_mask(data, size=size_of(image)))

    def __call__(self, prompts: list, completions: list, instruction: list[str], ground_truth: list[str],
                 image_uri: list[str], mask_uri: list[str] | None = None,
                 log_metric: Callable[[str, float], None] | None = None, **_: Any) -> list[float | None]:
        texts = [c[-1]["content"] if isinstance(c, list) else str(c) for c in completions]
        plans = [answer_plan(text, wanted, self.toolset) for text, wanted in zip(texts, instruction, strict=True)]
        images = [self._read(uri, decode_image) for uri in image_uri]
        masks = [self._mask(uri, image) for uri, image in zip(mask_uri or [""] * len(images), images, strict=True)]
        runnable = [i for i, plan in enumerate(plans) if plan.ok and images[i] is not None]
        edits: dict[int, Edit] = {}
        for i, result in zip(runnable, self.executor.run_many(
                [EditItem(str(i), images[i], plans[i].workflow, masks[i]) for i in runnable]), strict=True):
            edits[i] = Edit(images[i], result, instruction[i], mask=masks[i])
        groups = [json.dumps([instruction[i], image_uri[i], ground_truth[i]]) for i in range(len(texts))]
        scores = score_samples([Sample(groups[i], f"sample {i}", plans[i], GroundTruth.from_row(ground_truth[i]),
                                       edits.get(i)) for i in range(len(texts))], self.rewards, self.judge)
        self.last = [r.as_dict() | {"excluded": scores.excluded.get(group)}
                     for r, group in zip(scores.rewards, groups, strict=True)]
        if log_metric is not None:  # each component's mean over the samples it applies to, in the trainer's log
            for name in COMPONENTS:
                values = [r[name] for r in self.last if r[name] is not None]
                if values:
                    log_metric(f"reward_{name}", float(np.mean(values)))
        return [None if group in scores.excluded else r.total for r, group in zip(scores.rewards, groups, strict=True)]


# ----------------------------------------------------------------------------------------------------- stages


def training_dtype(settings: TrainSettings) -> str:
    """The dtype the Builder trains in: the settings' (``auto`` as the engines: ``default_dtype`` of the device), with
    bfloat16 on CUDA only where the GPU supports it (float32 otherwise)."""
    dtype = default_dtype(settings.device) if settings.dtype == "auto" else settings.dtype
    if dtype == "bfloat16" and settings.device.startswith("cuda"):
        import torch

        return dtype if torch.cuda.is_bf16_supported() else "float32"
    return dtype


def _model_and_peft(settings: TrainSettings) -> tuple[Any, Any, Any]:
    """(model, processor, peft config or None): the base Builder in its training dtype, with an earlier adapter
    made trainable."""
    import torch
    from peft import LoraConfig, PeftModel
    from transformers import AutoModelForImageTextToText

    from legoedit_core.rl.processor import load_processor

    torch.manual_seed(settings.seed)
    # float16 weights cannot be trained (its gradients would not unscale): float32 weights under fp16 autocast
    dtype = {"bfloat16": torch.bfloat16}.get(training_dtype(settings), torch.float32)
    model = AutoModelForImageTextToText.from_pretrained(settings.model, dtype=dtype)
    processor = load_processor(settings.model)
    if settings.adapter:
        return PeftModel.from_pretrained(model, settings.adapter, is_trainable=True), processor, None
    if not settings.lora:
        return model, processor, None
    lora = LoraConfig(r=settings.lora_r, lora_alpha=settings.lora_alpha, lora_dropout=settings.lora_dropout,
                      target_modules=settings.target_modules, task_type="CAUSAL_LM")
    return model, processor, lora


def _common_args(settings: TrainSettings) -> dict[str, Any]:
    """The trainer arguments every stage shares; mixed precision follows the training dtype."""
    dtype = training_dtype(settings)
    return {"output_dir": settings.output_dir, "max_steps": settings.max_steps,
            "learning_rate": settings.learning_rate, "per_device_train_batch_size": settings.batch_size,
            "gradient_accumulation_steps": settings.gradient_accumulation_steps, "seed": settings.seed,
            "logging_steps": settings.logging_steps, "report_to": [], "save_strategy": "no",
            "use_cpu": settings.device == "cpu", "bf16": dtype == "bfloat16", "fp16": dtype == "float16"}


def make_trainer(settings: TrainSettings, config: Config | None = None, rewards: RewardSettings | None = None,
                 judge: JudgeSettings | None = None, storage_options: dict[str, Any] | None = None) -> Any:
    """The TRL trainer of one stage (SFT for stage 1, GRPO for 2 and 3), ready to ``train()``.

    Stage 3 needs ``judge`` with an engine: its 0-10 total is the reward's judge component.
    """
    from datasets import Dataset

    if settings.stage == 3 and (judge is None or judge.engine is None):
        raise ValueError("stage 3 rewards with the judge: set judge.engine and judge.model")
    config = config or Config()
    toolset = Toolset(config)
    records = read_records(settings.data, storage_options)
    model, processor, lora = _model_and_peft(settings)
    if settings.stage == 1:
        from trl import SFTConfig, SFTTrainer

        dataset = Dataset.from_list(sft_examples(records, toolset, config, settings.examples, storage_options))
        args = SFTConfig(**_common_args(settings), max_length=settings.max_length)
        return SFTTrainer(model=model, args=args, train_dataset=dataset, processing_class=processor,
                          peft_config=lora)
    from trl import GRPOConfig, GRPOTrainer

    reward = BuilderReward(toolset, RewardModel(rewards), VLMJudge(judge) if settings.stage == 3 else None,
                           storage_options)
    dataset = Dataset.from_list(grpo_examples(records, toolset, config, settings.examples, storage_options))
    args = GRPOConfig(**_common_args(settings), num_generations=settings.num_generations,
                      max_completion_length=settings.max_completion_length, temperature=settings.temperature,
                      beta=settings.beta)
    return GRPOTrainer(model=model, reward_funcs=[reward], args=args, train_dataset=dataset,
                       processing_class=processor, peft_config=lora)


def train(settings: TrainSettings, config: Config | None = None, rewards: RewardSettings | None = None,
          judge: JudgeSettings | None = None, storage_options: dict[str, Any] | None = None) -> Path:
    """Run one stage and save its adapter (or full model) and its log (``trainer_state.json``: loss, rewards and
    each reward component per step) in ``settings.output_dir``; return that path."""
    trainer = make_trainer(settings, config, rewards, judge, storage_options)
    trainer.train()
    trainer.save_model(settings.output_dir)
    trainer.save_state()
    return Path(settings.output_dir)
