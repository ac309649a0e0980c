"""Tasks of the evaluation flow (and the rollouts flow): edit a planned shard, judge it, write its part."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from prefect import task

from legoedit_core.config import Config
from legoedit_core.data.batch import PreparedShard
from legoedit_core.data.output import PartInfo, RunOutput
from legoedit_core.executor import EditResult
from legoedit_core.judge.evaluation import judge_shard, judged_table
from legoedit_core.judge.judgement import make_judge
from legoedit_core.judge.settings import JudgeSettings
from legoedit_core.judge.vlm import VLMJudge
from legoedit_core.rl.rollouts import SampledShard
from tasks.edit import TASK_OPTIONS
from tasks.runtime import executor_for, toolset_for


@lru_cache(maxsize=2)
def _judge(settings_json: str) -> VLMJudge | None:
    return make_judge(JudgeSettings.model_validate_json(settings_json))


def judge_for(settings: JudgeSettings) -> VLMJudge | None:
    """The judge ``settings`` name, built once per worker process (None: metrics only)."""
    return _judge(settings.model_dump_json())


@task(name="edit-shard", **TASK_OPTIONS)
def edit_shard(planned: PreparedShard | SampledShard, config: Config) -> list[EditResult]:
    """Run every planned item of a shard (or every sample of a rollout shard) through the executor's waves."""
    return executor_for(config).run_many(planned.edit_items()[0])


@task(name="judge-shard", **TASK_OPTIONS)
def judge_and_write(output: str, storage_options: dict[str, Any] | None, prepared: PreparedShard,
                    results: list[EditResult], config: Config, judge: JudgeSettings) -> PartInfo:
    """Judge a shard's edits (one batched judge call) and write its part with the judge columns filled."""
    table = judged_table(prepared, results, judge_shard(prepared, results, judge_for(judge)), toolset_for(config))
    return RunOutput(output, storage_options).write_part(prepared.shard.index, table)
