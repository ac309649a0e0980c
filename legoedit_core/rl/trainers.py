"""Rollouts in the shapes RL trainers read, and rollouts as training records for ``legoedit train``.

A rollouts output keeps one canonical row per sample (``rl/rollouts.py``). The trainers disagree on the prompt:

- verl (``RLHFDataset``): ``prompt`` is chat messages whose text holds an ``<image>`` placeholder per entry of
  ``images``; ``data_source``, ``ability``, ``reward_model`` ``{style, ground_truth}`` and ``extra_info``. One row per
  item: verl samples its own responses.
- EasyR1 (``RLHFDataset``): ``prompt`` is one string, split on ``<image>`` into text and image blocks; ``answer`` is
  the ground truth its reward function gets; ``images``. One row per item.
- TRL: conversational ``prompt`` with structured content blocks (``{"type": "image"}`` where the image goes, no
  literal placeholder), ``images``, and ``completion`` (the sampled answer) with its ``reward`` and ``advantage``: one
  row per sample that has an answer.

``export_rollouts`` writes one of these as a Parquet file with Hugging Face image features, which each trainer
loads with ``datasets``; ``rollout_records`` turns a rollouts output into ``legoedit train`` records.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any, Literal

from legoedit_core.rl.rollouts import IMAGE_PLACEHOLDER, RolloutOutput

Trainer = Literal["verl", "easyr1", "trl"]
TRAINERS: tuple[Trainer, ...] = ("verl", "easyr1", "trl")
ABILITY = "image-edit-planning"


def _sampled(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows that were sampled (a prompt), not bad input and not excluded from training."""
    return [row for row in rows if row.get("prompt") and not row.get("excluded")]


def _one_per_item(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    seen: dict[str, dict[str, Any]] = {}
    for row in rows:
        seen.setdefault(row["group_id"], row)
    return list(seen.values())


def _split(prompt: list[dict[str, str]]) -> tuple[str, str]:
    """(system text, user text) of a Builder prompt; the user text still starts with the image placeholder."""
    system = "\n\n".join(m["content"] for m in prompt if m["role"] == "system")
    user = "\n\n".join(m["content"] for m in prompt if m["role"] == "user")
    return system, user


def verl_row(row: dict[str, Any], index: int) -> dict[str, Any]:
    return {"data_source": row["data_source"], "prompt": row["prompt"], "images": row["images"], "ability": ABILITY,
            "reward_model": row["reward_model"],
            "extra_info": {"index": index, "id": row["group_id"], "instruction": row["instruction"]}}


def easyr1_row(row: dict[str, Any]) -> dict[str, Any]:
    system, user = _split(row["prompt"])
    return {"prompt": f"{system}\n\n{user}" if system else user, "images": row["images"],
            "answer": row["reward_model"]["ground_truth"] or ""}


def trl_row(row: dict[str, Any]) -> dict[str, Any]:
    system, user = _split(row["prompt"])
    blocks = [{"type": "image", "text": None}] * user.count(IMAGE_PLACEHOLDER) + [
        {"type": "text", "text": user.replace(IMAGE_PLACEHOLDER, "")}]
    prompt = ([{"role": "system", "content": [{"type": "text", "text": system}]}] if system else []) + [
        {"role": "user", "content": blocks}]
    return {"prompt": prompt, "images": row["images"],
            "completion": [{"role": "assistant", "content": [{"type": "text", "text": row["response"]}]}],
            "reward": row["reward"], "advantage": row["advantage"], "group_id": row["group_id"]}


def trainer_rows(rows: Iterable[dict[str, Any]], trainer: Trainer) -> list[dict[str, Any]]:
    """Rollout rows in ``trainer``'s shape (see the module docstring)."""
    sampled = _sampled(rows)
    if trainer == "verl":
        return [verl_row(row, index) for index, row in enumerate(_one_per_item(sampled))]
    if trainer == "easyr1":
        return [easyr1_row(row) for row in _one_per_item(sampled)]
    if trainer == "trl":
        return [trl_row(row) for row in sampled if row.get("response") is not None]
    raise ValueError(f"unknown trainer {trainer!r}: use one of {', '.join(TRAINERS)}")


def read_rollouts(uri: str, storage_options: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """The rows of a rollouts output (``legoedit rollouts``'s output prefix)."""
    output = RolloutOutput(uri, storage_options)
    if not output.finished():
        raise ValueError(f"{uri} is not a rollouts output with committed shards")
    return output.read_table().to_pylist()


def export_rollouts(uri: str, destination: str, trainer: Trainer,
                    storage_options: dict[str, Any] | None = None) -> int:
    """Write a rollouts output as one Parquet file in ``trainer``'s shape, images as Hugging Face image features;
    the number of rows written."""
    from datasets import Dataset, Image, List

    rows = trainer_rows(read_rollouts(uri, storage_options), trainer)
    if not rows:
        raise ValueError(f"{uri} has no sampled rows to export")
    Dataset.from_list(rows).cast_column("images", List(Image())).to_parquet(destination,
                                                                            storage_options=storage_options)
    return len(rows)


def rollout_records(uri: str, storage_options: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """``legoedit train`` records from a rollouts output: one per item, with its image and ground truth, and the
    best-rewarded ``ok`` sample's answer as its ``text`` (stage 1 takes it; an item with none falls back to the
    rules trace)."""
    best: dict[str, dict[str, Any]] = {}
    records: dict[str, dict[str, Any]] = {}
    for row in _sampled(read_rollouts(uri, storage_options)):
        image = (row.get("source_image") or {}).get("path")
        if not image:
            raise ValueError(f"{uri}: item {row['group_id']} has no image path to train on")
        truth = json.loads(row["ground_truth"]) if row.get("ground_truth") else {}
        records.setdefault(row["group_id"], {"instruction": row["instruction"], "image": image,
                                             **{k: truth[k] for k in ("target", "reference_workflow") if k in truth}})
        if row["status"] == "ok" and row.get("response") and (
                row["group_id"] not in best or row["reward"] > best[row["group_id"]]["reward"]):
            best[row["group_id"]] = row
    for group, row in best.items():
        records[group]["text"] = row["response"]
    if not records:
        raise ValueError(f"{uri} holds no sampled items to train on")
    return list(records.values())
