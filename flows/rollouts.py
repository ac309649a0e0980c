"""Rollouts for RL on Prefect: K sampled plans per item, executed, judged, rewarded, with GRPO advantages.

Per shard: one ``sample-shard`` task (the Builder samples K plans of every item in one batched call), one
``edit-shard`` task (the executor's waves over every sample), one ``reward-shard`` task (judge, rewards,
advantages, Parquet part). Shards, resume and bad input follow ``edit_catalogue``: finished shards of an earlier
run with the same output are skipped, and a bad row becomes a ``bad_input`` row.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger

from flows.backends import pin_backends
from flows.bounded import Chain, commit_bounded
from flows.failures import fails_cleanly, shards_failed, submit
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
@fails_cleanly
def rollouts(dataset: str, output: str, k: int = 4, temperature: float = 1.0, config: Config | None = None,
             judge: JudgeSettings | None = None, rewards: RewardSettings | None = None, shard_size: int = 16,
             storage_options: dict[str, Any] | None = None, max_concurrent_shards: int = 4) -> dict[str, Any]:
    """Write ``k`` rewarded samples of every row of ``dataset`` as Parquet parts under ``output``, at most
    ``max_concurrent_shards`` shards in flight."""
    config = pin_backends(rollout_config(config or Config(), temperature))
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
    pipeline = config.pipeline

    def chain(shard: Shard) -> Chain:
        sampled = submit(sample_plans, pipeline, f"sample shard {shard.index}", source, shard, config, k)
        results = submit(edit_shard, pipeline, f"edit shard {shard.index}", sampled[1], config)
        written = submit(reward_and_write, pipeline, f"reward shard {shard.index}", output, storage_options,
                         sampled[1], results[1], config, judge, rewards)
        return [sampled, results, written]

    with run_output.writing(run):
        finished = run_output.finished()
        shards = source.shards(shard_size)
        failures = commit_bounded([shard for shard in shards if shard.index not in finished], chain, run_output,
                                  max_concurrent_shards)
    if failures:
        raise shards_failed(failures, len(shards), output)
    table = run_output.read_table().select(["reward", "sample_index", "group_id", "workflow", "advantage",
                                             "reward_check", "check_failed"]).to_pylist()
    samples = [row["reward"] for row in table if row["sample_index"] is not None]
    summary = {"output": output, "parts": run_output.parts_uri(), "rows": len(table), "samples": len(samples),
               "mean_reward": sum(samples) / len(samples) if samples else None, "signal": signal_summary(table)}
    get_run_logger().info("rollouts done: %s", summary)
    return summary
