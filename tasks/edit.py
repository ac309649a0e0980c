"""The tasks of ``edit_catalogue``: one planning task per shard slice, brick-group tasks per wave, one write per
shard (a shard whose images do not fit its memory share at once goes through plan and waves slice by slice; each
slice but the last is turned into rows by ``build-rows``, and the write puts the slices' rows into one part).

Images travel inside task arguments and results, in memory: nothing here is cached or persisted by Prefect
(``NO_CACHE``, ``persist_result=False``); the run's durable state is the Parquet parts and their manifest.
Each task is declared once with its run name (``plan shard 3``, ``GRAYSCALE+FLIP shard 3 wave 1``), so the flow
submits these objects as they are instead of building a variant per submit.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from legoedit_core.config import Config
from legoedit_core.data.datasets import Dataset, Shard
from legoedit_core.data.lease import Fence
from legoedit_core.data.output import PartInfo, RunOutput
from legoedit_core.executor import BrickGroup, EditResult, GroupResult
from legoedit_core.judge.judgement import Judgement
from legoedit_core.pipeline.evaluation import judged_table
from legoedit_core.pipeline.shard import PreparedShard, build_rows, prepare_shard
from tasks.retries import retry_unless_hopeless
from tasks.runtime import executor_for, planner_for, toolset_for

# A hopeless fault (out of memory for one item, a model larger than its device) is not retried: tasks/retries.py.
TASK_OPTIONS: dict[str, Any] = {"cache_policy": NO_CACHE, "persist_result": False,
                                "retry_condition_fn": retry_unless_hopeless}


@task(name="plan-shard", task_run_name="plan shard {shard.index}", **TASK_OPTIONS)
def plan_shard(dataset: Dataset, shard: Shard, config: Config, start: int | None = None) -> PreparedShard:
    """Read a shard's rows and images from row ``start`` on, as many as fit the shard's memory share (without
    ``start``: the whole shard, or ``MemoryBudgetExceeded``), then plan them all in one batched Builder call."""
    rows = dataset.read_rows(shard.start if start is None else start, shard.stop)
    prepared = prepare_shard(rows, shard, planner_for(config), dataset.reader(config.inputs),
                             content_keys=config.executor.cache_dir is not None,
                             memory_budget=config.pipeline.shard_memory(), start=start)
    bad = sum(1 for row in prepared.rows if not row.usable)
    unplanned = sum(1 for plan in prepared.plans if plan is not None and not plan.ok)
    get_run_logger().info("shard %d: rows %d-%d, %d bad input, %d without a valid plan", shard.index,
                          prepared.start, prepared.stop - 1, bad, unplanned)
    return prepared


def brick_groups_run_name(parameters: dict[str, Any]) -> str:
    """``<BRICK>[+<BRICK>...] shard <n> wave <w>``: what a brick-group task run is called, to find it by."""
    groups: list[BrickGroup] = parameters["groups"]
    return f"{'+'.join(group.tool for group in groups)} shard {parameters['shard']} wave {groups[0].wave}"


@task(name="run-brick-groups", task_run_name=brick_groups_run_name, **TASK_OPTIONS)
def run_brick_groups(groups: list[BrickGroup], config: Config, shard: int) -> list[GroupResult]:
    """Batched calls of (brick, backend) groups of one shard's wave, one after another: the flow gives each GPU
    group its own task and puts a wave's CPU groups in one. Each model is lent to one call at a time by the model
    runtime, which also merges the calls of concurrent groups that wait for the same model."""
    executor = executor_for(config)
    return [executor.run_group(group) for group in groups]


def shard_rows(prepared: PreparedShard, results: list[EditResult], config: Config,
               judgements: list[Judgement | None] | None = None) -> pa.Table:
    """A slice's output rows (with the judge columns filled when there are ``judgements``)."""
    toolset = toolset_for(config)
    if judgements is None:
        return build_rows(prepared, results, toolset)
    return judged_table(prepared, results, judgements, toolset)


@task(name="build-rows", task_run_name="rows of shard {prepared.shard.index} from row {prepared.start}",
      **TASK_OPTIONS)
def build_slice_rows(prepared: PreparedShard, results: list[EditResult], config: Config,
                     judgements: list[Judgement | None] | None = None) -> pa.Table:
    """The output rows of a slice that does not end its shard: its images encoded, its pixels let go."""
    return shard_rows(prepared, results, config, judgements)


@task(name="write-part", task_run_name="write shard {prepared.shard.index}", **TASK_OPTIONS)
def write_part(output: str, storage_options: dict[str, Any] | None, prepared: PreparedShard,
               results: list[EditResult], config: Config, write_images: bool = False,
               judgements: list[Judgement | None] | None = None, earlier: list[pa.Table] | None = None,
               fence: Fence | None = None) -> PartInfo:
    """Build the shard's output rows and write its Parquet part (the flow commits it to the manifest).

    With ``judgements`` (from ``judge-shard``), the judge columns are filled; ``earlier`` are the rows of the
    shard's earlier slices. With ``fence`` (the run's fencing token), nothing is written once the run lost the
    output's lease (``LeaseLost``).
    """
    run_output = RunOutput(output, storage_options)
    run_output.fence = fence
    table = shard_rows(prepared, results, config, judgements)
    if earlier:
        table = pa.concat_tables([*earlier, table])
    if write_images:
        run_output.write_images(table)
    return run_output.write_part(prepared.shard.index, table)
