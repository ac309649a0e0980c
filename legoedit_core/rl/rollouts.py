"""Rollouts: K sampled plans per item, each executed, judged and rewarded, with GRPO advantages per item.

A shard of rollouts is built from plain pieces, which the rollouts flow (``flows/rollouts.py``) runs as its tasks
(tests and benchmarks run a shard through that flow, the one shard path):

1. ``sample_shard``: read the shard's rows, make K copies of each usable row (sample ``i`` of row ``r`` has id
   ``r#i`` and its own seed), and plan them all in one batched Builder call. Each sample is one answer of the
   Builder, so the planner is asked once per sample (no re-asking).
2. the executor edits every sample that got a plan (``SampledShard.prepared.edit_items()``).
3. ``score_shard``: judge the edits (when a judge is set), reward every sample, and compute advantages within each
   item's group of K; then lay the rows out.

Rows follow the pipeline's output schema plus what RL trainers read: ``prompt`` (chat messages with an ``<image>``
placeholder, as verl expects; ``rl/trainers.py`` writes EasyR1's and TRL's shapes from these rows), ``images`` (the
Hugging Face image structs), ``response`` (the Builder's answer), ``reward_model`` (``{style, ground_truth}``, verl's
column), ``data_source``, every reward component, ``group_id`` / ``sample_index`` / ``advantage``. A bad input row
gives one row, with no sample index.

Samples are scored by ``scoring.score_samples``, the function the TRL reward calls too, with its one exclusion
rule: when the judge still gives no score for one edit of a group after its re-asks, every sample of the group gets
``excluded`` (the reason) and no advantage, so a trainer never mixes rewards with and without the judge component
in one group.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import pyarrow as pa

from legoedit_core.bricks.toolset import Toolset
from legoedit_core.config import Config
from legoedit_core.data.datasets import InputRow, Shard
from legoedit_core.data.inputs import InputReader
from legoedit_core.data.output import RunOutput
from legoedit_core.data.rows import IMAGE, OUTPUT_FIELDS, OUTPUT_SCHEMA
from legoedit_core.executor import EditItem, EditResult
from legoedit_core.judge.judgement import Edit, Judgement
from legoedit_core.judge.vlm import VLMJudge
from legoedit_core.pipeline.shard import LoadedRow, PreparedShard, build_rows, load_row
from legoedit_core.planners.base import Planner, PlanRequest, PlanResult
from legoedit_core.planners.decompose import DECOMPOSITION_PROMPT
from legoedit_core.planners.prompt import builder_chat
from legoedit_core.rl.advantages import advantages_by_group
from legoedit_core.rl.rewards import GroundTruth, RewardModel, Rewards, answer_text
from legoedit_core.rl.scoring import Sample, score_samples

DATA_SOURCE = "legoedit"
IMAGE_PLACEHOLDER = "<image>"
MESSAGE = pa.struct([("role", pa.string()), ("content", pa.string())])
ROLLOUT_FIELDS: list[pa.Field] = [
    pa.field("prompt", pa.list_(MESSAGE)),
    pa.field("images", pa.list_(IMAGE)),
    pa.field("response", pa.string()),
    pa.field("reward_model", pa.struct([("style", pa.string()), ("ground_truth", pa.string())])),
    pa.field("data_source", pa.string()),
    pa.field("reward_executability", pa.float64()),
    pa.field("reward_tool", pa.float64()),
    pa.field("reward_judge", pa.float64()),
    pa.field("reward_check", pa.float64()),
    pa.field("check_failed", pa.string()),
    pa.field("excluded", pa.string()),
]


def _rollout_schema() -> pa.Schema:
    features = json.loads(OUTPUT_SCHEMA.metadata[b"huggingface"])
    features["info"]["features"] |= {
        "prompt": {"feature": {"role": {"dtype": "string", "_type": "Value"},
                               "content": {"dtype": "string", "_type": "Value"}}, "_type": "List"},
        "images": {"feature": {"_type": "Image"}, "_type": "List"},
        "response": {"dtype": "string", "_type": "Value"},
        "reward_model": {"style": {"dtype": "string", "_type": "Value"},
                         "ground_truth": {"dtype": "string", "_type": "Value"}},
        "data_source": {"dtype": "string", "_type": "Value"},
        "check_failed": {"dtype": "string", "_type": "Value"},
    } | {name: {"dtype": "float64", "_type": "Value"} for name in ("reward_executability", "reward_tool",
                                                                      "reward_judge", "reward_check")} | {
        "excluded": {"dtype": "string", "_type": "Value"}}
    return pa.schema(OUTPUT_FIELDS + ROLLOUT_FIELDS, metadata={"huggingface": json.dumps(features)})


ROLLOUT_SCHEMA: pa.Schema = _rollout_schema()


class RolloutOutput(RunOutput):
    """A run output whose parts have the rollout schema (same manifest, layout, atomic writes and resume)."""

    schema = ROLLOUT_SCHEMA


def sample_seed(seed: int, index: int) -> int:
    """The seed of sample ``index`` of an item: a stable hash of the item seed and the index (31 bits)."""
    return int.from_bytes(hashlib.blake2b(f"{seed}#{index}".encode(), digest_size=4).digest(), "big") >> 1


def rollout_config(config: Config, temperature: float) -> Config:
    """The config rollouts plan with: sampling at ``temperature``, one answer per sample (no re-asking)."""
    planner = config.planner.model_copy(update={"temperature": temperature, "max_attempts": 1})
    return config.model_copy(update={"planner": planner})


def builder_prompt(config: Config, toolset: Toolset, request: PlanRequest) -> list[dict[str, str]]:
    """The chat the Builder answers for ``request``, as text messages; the image is the ``<image>`` placeholder."""
    system, user = builder_chat(toolset, config.planner, request)
    if config.planner.strategy == "decompose":
        system.text = DECOMPOSITION_PROMPT
    return [{"role": "system", "content": system.text}, {"role": "user", "content": IMAGE_PLACEHOLDER + user.text}]


@dataclass
class SampledShard:
    """A shard's rows expanded to K samples each, with their plans. ``groups[i]`` is the group id of sample i."""

    prepared: PreparedShard
    sample_index: list[int | None]
    requests: list[PlanRequest | None]
    k: int

    def edit_items(self) -> tuple[list[EditItem], list[int]]:
        """The samples to edit (those with a valid plan) and their positions."""
        return self.prepared.edit_items()

    @property
    def shard(self) -> Shard:
        return self.prepared.shard

    @property
    def group_ids(self) -> list[str]:
        return [loaded.row.id.rpartition("#")[0] if index is not None else loaded.row.id
                for loaded, index in zip(self.prepared.rows, self.sample_index, strict=True)]


def expand(loaded: Sequence[LoadedRow], k: int) -> tuple[list[LoadedRow], list[int | None]]:
    """K copies of every usable row (id ``<id>#<i>``, seed ``sample_seed(seed, i)``); a bad row stays one row."""
    rows, indices = [], []
    for item in loaded:
        if not item.usable:
            rows.append(item)
            indices.append(None)
            continue
        for index in range(k):
            row: InputRow = replace(item.row, id=f"{item.row.id}#{index}", seed=sample_seed(item.row.seed, index))
            rows.append(replace(item, row=row))
            indices.append(index)
    return rows, indices


def sample_shard(rows: Sequence[InputRow], shard: Shard, planner: Planner, k: int,
                 reader: InputReader) -> SampledShard:
    """Read a shard's rows, expand each usable one to ``k`` samples, and plan every sample in one batched call."""
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    samples, indices = expand([load_row(row, reader) for row in rows], k)
    requests = [PlanRequest(s.row.id, s.image, s.row.instruction, has_mask=s.mask is not None, seed=s.row.seed)
                if s.usable else None for s in samples]
    planned = iter(planner.plan_batch([r for r in requests if r is not None]) if any(requests) else [])
    plans: list[PlanResult | None] = [next(planned) if r is not None else None for r in requests]
    return SampledShard(PreparedShard(shard, samples, plans, planner.name), indices, requests, k)


def score_shard(sampled: SampledShard, results: Sequence[EditResult], config: Config, toolset: Toolset,
                rewards: RewardModel, judge: VLMJudge | None = None) -> pa.Table:
    """Judge, reward (``scoring.score_samples``, as training does) and lay out every sample of a shard, with
    advantages relative to each item's samples; an excluded group's samples get none."""
    prepared = sampled.prepared
    _, positions = prepared.edit_items()
    result_at = dict(zip(positions, results, strict=True))
    groups = sampled.group_ids
    samples = {p: _sample(prepared.rows[p], plan, groups[p], result_at.get(p))
               for p, plan in enumerate(prepared.plans) if plan is not None}
    planned = list(samples)
    scores = score_samples(list(samples.values()), rewards, judge)
    scored: dict[int, Rewards] = dict(zip(planned, scores.rewards, strict=True))
    judgement_at: dict[int, Judgement | None] = dict(zip(planned, scores.judgements, strict=True))
    kept = [p for p in planned if groups[p] not in scores.excluded]
    advantage_of = dict(zip(kept, advantages_by_group([groups[p] for p in kept], [scored[p].total for p in kept]),
                            strict=True))
    base = build_rows(prepared, results, toolset).to_pylist()
    rows = []
    for position, row in enumerate(base):
        plan, request = prepared.plans[position], sampled.requests[position]
        reward, judgement = scored.get(position), judgement_at.get(position)
        row |= {"group_id": groups[position], "sample_index": sampled.sample_index[position],
                "advantage": advantage_of.get(position), "excluded": scores.excluded.get(groups[position]),
                "data_source": DATA_SOURCE,
                "images": [row["source_image"]] if row["source_image"] else [],
                "reward_model": {"style": "rule", "ground_truth": row["ground_truth"]}}
        if request is not None:
            row["prompt"] = builder_prompt(config, toolset, request)
        if plan is not None:
            row["response"] = answer_text(plan)
        if reward is not None:
            row |= {"reward": reward.total, **{f"reward_{name}": value for name, value in reward.as_dict().items()
                                               if name != "total"}}
        if judgement is not None:
            row |= {"judge_score": judgement.score, "judge_model": judgement.judge,
                    "judge_feedback": judgement.feedback()}
            if judgement.check is not None and judgement.check.failed:
                row["check_failed"] = ", ".join(judgement.check.failed)
        rows.append(row)
    return pa.Table.from_pylist(rows, schema=ROLLOUT_SCHEMA)


def _sample(loaded: LoadedRow, plan: PlanResult, group: str, result: EditResult | None) -> Sample:
    row = loaded.row
    edit = Edit(loaded.image, result, row.instruction, row.seed, loaded.mask) if result is not None else None
    return Sample(group, row.id, plan, GroundTruth.from_row(row.ground_truth), edit)


def signal_summary(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """How much a rollout dataset can teach: per group of samples, whether its workflows differ and its advantages
    spread; how many samples have a verifiable check, its mean, and which checks failed how often."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        if row["sample_index"] is not None:
            groups.setdefault(row["group_id"], []).append(row)
    distinct = {g for g, members in groups.items() if len({m["workflow"] for m in members}) >= 2}
    spread = {g for g, members in groups.items() if any(m["advantage"] for m in members)}
    samples = [row for members in groups.values() for row in members]
    checks = [row["reward_check"] for row in samples if row["reward_check"] is not None]
    failed = Counter(name for row in samples if row["check_failed"] for name in row["check_failed"].split(", "))
    return {"groups": len(groups), "groups_with_distinct_workflows": len(distinct),
            "groups_with_advantage_spread": len(spread), "groups_with_both": len(distinct & spread),
            "samples": len(samples), "samples_with_check": len(checks),
            "mean_check": sum(checks) / len(checks) if checks else None, "failed_checks": dict(sorted(failed.items()))}
