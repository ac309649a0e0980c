"""Rollouts for RL on Prefect: K sampled plans per item, executed, judged, rewarded, with GRPO advantages.

Per shard: one ``sample-shard`` task (the Builder samples K plans of every item in one batched call), one
``edit-shard`` task (the executor's waves over every sample), one ``reward-shard`` task (the config's judge and
rewards, advantages, Parquet part). The shards are scheduled by ``flows/scheduler.py`` like every flow's: finished
shards of an earlier run with the same output are skipped, Ctrl-C / SIGTERM stop it cleanly, and a bad row becomes
a ``bad_input`` row.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger

from flows.backends import pin_backends
from flows.failures import fails_cleanly
from flows.runners import make_task_runner
from flows.scheduler import Chain, Step, run_every_shard
from flows.start import checked_start
from legoedit_core.config import Config
from legoedit_core.data.datasets import open_dataset
from legoedit_core.data.output import OutputMismatch
from legoedit_core.pipeline.shard import versions
from legoedit_core.rl.rollouts import RolloutOutput, rollout_config, signal_summary
from tasks.judge import edit_shard
from tasks.rl import reward_and_write, sample_plans
from tasks.runtime import toolset_for


@flow(name="rollouts", task_runner=make_task_runner("threads"))
@fails_cleanly
@checked_start()
def rollouts(dataset: str, output: str, k: int = 4, temperature: float = 1.0, config: Config | None = None,
             storage_options: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write ``k`` rewarded samples of every row of ``dataset`` as Parquet parts under ``output``: judged with
    ``config.judge``, rewarded with ``config.rewards``, shards as ``config.pipeline`` says."""
    config = pin_backends(rollout_config(config or Config(), temperature))
    pipeline = config.pipeline
    source = open_dataset(dataset, storage_options)
    run_output = RolloutOutput(output, storage_options)
    earlier = run_output.manifest().get("k")
    if earlier not in (None, k):
        raise OutputMismatch(f"{output} holds rollouts with k={earlier}, this run has k={k}: use a new output")
    run = {"dataset": dataset, "dataset_fingerprint": source.fingerprint(), "shard_size": pipeline.shard_size,
           "rows": len(source), "k": k, "temperature": temperature, "config": config.model_dump(mode="json"),
           "versions": versions(toolset_for(config))}
    steps = Chain([
        Step("sampled", sample_plans, lambda run: (source, run.shard, config, k)),
        Step("results", edit_shard, lambda run: (run.values["sampled"], config)),
        Step("part", reward_and_write, lambda run: (output, storage_options, run.values["sampled"],
                                                    run.values["results"], config)),
    ])
    run_every_shard(run_output, run, source, pipeline, steps, "rollouts-progress")
    table = run_output.read_table().select(["reward", "sample_index", "group_id", "workflow", "advantage",
                                             "reward_check", "check_failed"]).to_pylist()
    samples = [row["reward"] for row in table if row["sample_index"] is not None]
    summary = {"output": output, "parts": run_output.parts_uri(), "rows": len(table), "samples": len(samples),
               "mean_reward": sum(samples) / len(samples) if samples else None, "signal": signal_summary(table)}
    get_run_logger().info("rollouts done: %s", summary)
    return summary
