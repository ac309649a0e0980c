"""Tasks of the evaluation flow (and the rollouts flow): edit a planned shard, judge it, write its part."""

from __future__ import annotations

from functools import lru_cache

from prefect import task

from legoedit_core.config import Config
from legoedit_core.executor import EditResult
from legoedit_core.judge.judgement import Judgement, make_judge
from legoedit_core.judge.vlm import VLMJudge
from legoedit_core.pipeline.evaluation import judge_shard
from legoedit_core.pipeline.shard import PreparedShard, keep_verified, start_verify
from legoedit_core.pipeline.verify import verify_judge
from legoedit_core.planners.replan import VerifyRun, run_rounds
from legoedit_core.rl.rollouts import SampledShard
from legoedit_core.settings.judge import JudgeSettings
from tasks.edit import TASK_OPTIONS
from tasks.runtime import executor_for, planner_for


@lru_cache(maxsize=2)
def _judge(settings_json: str) -> VLMJudge | None:
    return make_judge(JudgeSettings.model_validate_json(settings_json))


def judge_for(settings: JudgeSettings) -> VLMJudge | None:
    """The judge ``settings`` name, built once per worker process (None: metrics only)."""
    return _judge(settings.model_dump_json())


@task(name="edit-shard", task_run_name="edit shard {planned.shard.index}", **TASK_OPTIONS)
def edit_shard(planned: PreparedShard | SampledShard, config: Config) -> list[EditResult]:
    """Run every planned item of a shard (or every sample of a rollout shard) through the executor's waves; a
    verified shard's kept edits are its results as they are (``verify_shard`` ran them)."""
    if isinstance(planned, PreparedShard) and planned.kept is not None:
        return planned.kept
    return executor_for(config).run_many(planned.edit_items()[0])


@task(name="judge-shard", task_run_name="judge shard {prepared.shard.index}", **TASK_OPTIONS)
def judge_results(prepared: PreparedShard, results: list[EditResult], judge: JudgeSettings) -> list[Judgement | None]:
    """Judge a shard's edits: one batched VLM judge call (when one is configured) plus the model-free metrics."""
    return judge_shard(prepared, results, judge_for(judge))


@task(name="verify-round", task_run_name="verify shard {shard} round {run.round}", **TASK_OPTIONS)
def verify_round(run: VerifyRun, edits: list[EditResult], config: Config, shard: int) -> VerifyRun:
    """Judge a verify round's edits (run by the brick-group tasks) and re-plan the rejected ones with their critique
    in one batched Builder call (``planner.verify_rounds``)."""
    replan = run.judge(edits, verify_judge(judge_for(config.judge)))
    if replan:
        run.replanned(planner_for(config).plan_batch(replan))
    return run


@task(name="verify-shard", task_run_name="verify shard {prepared.shard.index}", **TASK_OPTIONS)
def verify_shard(prepared: PreparedShard, config: Config) -> PreparedShard:
    """Every verify round of a planned shard, each round's edits through the executor as ``edit-shard`` runs them
    (the evaluation flow's way): the shard with each row's kept plan, its rounds, and its kept edit."""
    run = run_rounds(start_verify(prepared, config.planner), planner_for(config), executor_for(config),
                     verify_judge(judge_for(config.judge)))
    keep_verified(prepared, run)
    return prepared
