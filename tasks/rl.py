"""Tasks of the rollouts flow: sample K plans per item of a shard, then judge, reward and write the shard."""

from __future__ import annotations

from typing import Any

from prefect import task

from legoedit_core.config import Config
from legoedit_core.data.datasets import Dataset, Shard
from legoedit_core.data.output import PartInfo
from legoedit_core.executor import EditResult
from legoedit_core.rl.rewards import RewardModel
from legoedit_core.rl.rollouts import RolloutOutput, SampledShard, sample_shard, score_shard
from tasks.edit import TASK_OPTIONS
from tasks.judge import judge_for
from tasks.runtime import planner_for, toolset_for


@task(name="sample-shard", task_run_name="sample shard {shard.index}", **TASK_OPTIONS)
def sample_plans(dataset: Dataset, shard: Shard, config: Config, k: int) -> SampledShard:
    """Read a shard and plan K samples of each usable row in one batched Builder call."""
    return sample_shard(dataset.read_rows(shard.start, shard.stop), shard, planner_for(config), k,
                        dataset.reader(config.inputs))


@task(name="reward-shard", task_run_name="reward shard {sampled.shard.index}", **TASK_OPTIONS)
def reward_and_write(output: str, storage_options: dict[str, Any] | None, sampled: SampledShard,
                     results: list[EditResult], config: Config) -> PartInfo:
    """Judge (``config.judge``) and reward (``config.rewards``) every sample of a shard, compute group advantages,
    and write the shard's part."""
    table = score_shard(sampled, results, config, toolset_for(config), RewardModel(config.rewards),
                        judge_for(config.judge))
    return RolloutOutput(output, storage_options).write_part(sampled.shard.index, table)
