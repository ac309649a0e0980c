"""Rollouts for RL on Prefect: K sampled plans per item, executed, judged, rewarded, with GRPO advantages.

Per shard: one ``sample-shard`` task (the Builder samples K plans of every item in one batched call), one
``edit-shard`` task (the executor's waves over every sample), one ``reward-shard`` task (judge, rewards,
advantages, Parquet part). Shards, resume and bad input follow ``edit_catalogue``: finished shards of an earlier
run with the same output are skipped, and a bad row becomes a ``bad_input`` row.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger
from prefect.futures import PrefectFuture

from flows.bounded import commit_bounded
from flows.edit_catalogue import ShardsFailed
from legoedit_core.config import Config
from legoedit_core.data.datasets import Shard, open_dataset
from legoedit_core.data.output import OutputMismatch
from legoedit_core.pipeline.shard import versions
from legoedit_core.rl.rollouts import RolloutOutput, rollout_config, signal_summary
from legoedit_core.settings.judge import JudgeSettings
from legoedit_core.settings.rewards import RewardSettings
from tasks.judge import edit_shard
from tasks.rl import reward_and_write, sample_plans
from tasks.runtime import toolset_for


@flow(name="rollouts")
def rollouts(dataset: str, output: str, k: int = 4, temperature: float = 1.0, config: Config | None = None,
             judge: JudgeSettings | None = None, rewards: RewardSettings | None = None, shard_size: int = 16,
             storage_options: dict[str, Any] | None = None, max_concurrent_shards: int = 4) -> dict[str, Any]:
    """Write ``k`` rewarded samples of every row of ``dataset`` as Parquet parts under ``output``, at most
    ``max_concurrent_shards`` shards in flight."""
    config = rollout_config(config or Config(), temperature)
    judge, rewards = judge or JudgeSettings(), rewards or RewardSettings()
    source = open_dataset(dataset, storage_options)
    run_output = RolloutOutput(output, storage_options)
    earlier = run_output.manifest().get("k")
    if earlier not in (None, k):
        raise OutputMismatch(f"{output} holds rollouts with k={earlier}, this run has k={k}: use a new output")
    run = {"dataset": dataset, "dataset_fingerprint": source.fingerprint(), "shard_size": shard_size,
           "rows": len(source), "k": k, "temperature": temperature, "config": config.model_dump(mode="json"),
           "judge": judge.model_dump(mode="json"), "rewards": rewards.model_dump(mode="json"),
           "versions": versions(toolset_for(config))}

    def submit(shard: Shard) -> PrefectFuture:
        sampled = sample_plans.submit(source, shard, config, k)
        results = edit_shard.submit(sampled, config)
        return reward_and_write.submit(output, storage_options, sampled, results, config, judge, rewards)

    with run_output.writing(run):
        finished = run_output.finished()
        shards = [shard for shard in source.shards(shard_size) if shard.index not in finished]
        failures = commit_bounded(shards, submit, run_output, max_concurrent_shards)
    if failures:
        raise ShardsFailed(f"{len(failures)} shard(s) failed; a rerun with the same output does only what is "
                           "missing:\n" + "\n".join(failures))
    table = run_output.read_table().select(["reward", "sample_index", "group_id", "workflow", "advantage",
                                             "reward_check", "check_failed"]).to_pylist()
    samples = [row["reward"] for row in table if row["sample_index"] is not None]
    summary = {"output": output, "parts": run_output.parts_uri(), "rows": len(table), "samples": len(samples),
               "mean_reward": sum(samples) / len(samples) if samples else None, "signal": signal_summary(table)}
    get_run_logger().info("rollouts done: %s", summary)
    return summary
