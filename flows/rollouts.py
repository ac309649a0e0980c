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

from flows.edit_catalogue import ShardsFailed
from legoedit_core.config import Config
from legoedit_core.data.datasets import Shard, open_dataset
from legoedit_core.data.output import OutputMismatch, RunOutput
from legoedit_core.pipeline.shard import versions
from legoedit_core.rl.rollouts import RolloutOutput, rollout_config
from legoedit_core.settings.judge import JudgeSettings
from legoedit_core.settings.rewards import RewardSettings
from tasks.judge import edit_shard
from tasks.rl import reward_and_write, sample_plans
from tasks.runtime import toolset_for


def commit_shards(parts: dict[Shard, PrefectFuture], output: RunOutput) -> list[str]:
    """Commit each shard's part as it is written; a failing shard is logged and left for a rerun."""
    logger, failures = get_run_logger(), []
    for shard, future in parts.items():
        try:
            info = future.result()
        except Exception as error:
            failures.append(f"shard {shard.index} (rows {shard.start}-{shard.stop - 1}): "
                            f"{type(error).__name__}: {error}")
            logger.error(failures[-1])
            continue
        output.commit(info)
        logger.info("shard %d committed: %s", info.shard, info.counts)
    return failures


@flow(name="rollouts")
def rollouts(dataset: str, output: str, k: int = 4, temperature: float = 1.0, config: Config | None = None,
             judge: JudgeSettings | None = None, rewards: RewardSettings | None = None, shard_size: int = 16,
             storage_options: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write ``k`` rewarded samples of every row of ``dataset`` as Parquet parts under ``output``."""
    config = rollout_config(config or Config(), temperature)
    judge, rewards = judge or JudgeSettings(), rewards or RewardSettings()
    source = open_dataset(dataset, storage_options)
    run_output = RolloutOutput(output, storage_options)
    earlier = run_output.manifest().get("k")
    if earlier not in (None, k):
        raise OutputMismatch(f"{output} holds rollouts with k={earlier}, this run has k={k}: use a new output")
    run_output.begin({"dataset": dataset, "dataset_fingerprint": source.fingerprint(), "shard_size": shard_size,
                      "rows": len(source), "k": k, "temperature": temperature,
                      "config": config.model_dump(mode="json"), "judge": judge.model_dump(mode="json"),
                      "rewards": rewards.model_dump(mode="json"), "versions": versions(toolset_for(config))})
    finished = run_output.finished()
    parts = {}
    for shard in source.shards(shard_size):
        if shard.index in finished:
            continue
        sampled = sample_plans.submit(source, shard, config, k, storage_options)
        results = edit_shard.submit(sampled, config)
        parts[shard] = reward_and_write.submit(output, storage_options, sampled, results, config, judge, rewards)
    failures = commit_shards(parts, run_output)
    if failures:
        raise ShardsFailed(f"{len(failures)} shard(s) failed; a rerun with the same output does only what is "
                           "missing:\n" + "\n".join(failures))
    table = run_output.read_table().select(["reward", "sample_index"]).to_pylist()
    samples = [row["reward"] for row in table if row["sample_index"] is not None]
    summary = {"output": output, "parts": run_output.parts_uri(), "rows": len(table), "samples": len(samples),
               "mean_reward": sum(samples) / len(samples) if samples else None}
    get_run_logger().info("rollouts done: %s", summary)
    return summary
