"""The batch pipeline: edit a whole catalogue on Prefect, shard by shard.

For each shard: one ``plan-shard`` task (the Builder plans the whole shard at once), then the executor's waves, in
which each GPU (brick, backend) group is one ``run-brick-groups`` task and the CPU groups of the wave share one
(``GRAYSCALE+FLIP shard 3 wave 1``; with Ray brick routing every group is its own task), then one ``write-part``
task; the flow commits the part to the output's manifest. A shard whose images do not fit its memory share at once
goes through plan and waves slice by slice (``build-rows`` turns each slice but the last into rows), and is still
written and committed as one part. The shards are scheduled by ``flows/scheduler.py`` (the
one scheduler of every flow: stopping, failures, memory); up to ``max_concurrent_shards`` shards are in flight at
once, so the brick groups of one shard overlap with the planning of the next. Brick-group tasks carry the tags
``brick:<NAME>`` and ``cpu`` / ``gpu`` where the server makes them worth their cost (``flows.server.TagPolicy``).

The flow's own thread only moves shards from step to step as their tasks finish; it never touches pixels.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any

from prefect import flow, get_run_logger

from flows.backends import pin_backends
from flows.failures import fails_cleanly
from flows.memory import return_freed_memory
from flows.monitoring import Progress, gallery, summary_table, version_counts
from flows.runners import brick_routing, make_task_runner, on_configured_runner
from flows.scheduler import ShardRun, ShardScheduler, pending_runs
from flows.server import TagPolicy
from flows.start import checked_start
from legoedit_core.config import Config
from legoedit_core.data.datasets import Dataset, open_dataset
from legoedit_core.data.incremental import commit_version, decide, version_report_name, work_output
from legoedit_core.data.output import OutputMismatch, RunOutput
from legoedit_core.data.report import render_report
from legoedit_core.executor import BrickGroup, EditItem, EditResult, GroupResult, WaveRun
from legoedit_core.judge.judgement import Judgement
from legoedit_core.pipeline.shard import PreparedShard, keep_verified, start_verify, versions
from legoedit_core.planners.replan import VerifyRun
from legoedit_core.settings.pipeline import PipelineSettings
from tasks.edit import build_slice_rows, plan_shard, run_brick_groups, write_part
from tasks.judge import judge_results, verify_round
from tasks.runtime import executor_for, toolset_for

REPORT = "report.html"


@dataclass
class _EditSteps:
    """A shard's steps in this flow: plan -> waves of brick groups -> (verify rounds: judge, re-plan, waves of the
    re-planned edits) -> (judge) -> write."""

    dataset: Dataset
    output: RunOutput
    config: Config
    storage_options: dict[str, Any] | None
    tags: TagPolicy

    @property
    def pipeline(self) -> PipelineSettings:
        return self.config.pipeline

    def start(self, scheduler: ShardScheduler, shard_run: ShardRun, start: int | None = None) -> None:
        first = shard_run.shard.start if start is None else start
        scheduler.submit(shard_run, plan_shard, (self.dataset, shard_run.shard, self.config, first),
                         partial(self._planned, scheduler))

    def _planned(self, scheduler: ShardScheduler, shard_run: ShardRun, prepared: PreparedShard) -> None:
        shard_run.values["prepared"] = prepared
        if self.config.planner.verify_rounds > 0:  # each round's edits run as any edit does: in brick-group tasks
            shard_run.values["verify"] = start_verify(prepared, self.config.planner)
            self._start_waves(scheduler, shard_run, shard_run.values["verify"].edit_items())
        else:
            self._start_waves(scheduler, shard_run, prepared.edit_items()[0])

    def _start_waves(self, scheduler: ShardScheduler, shard_run: ShardRun, items: list[EditItem]) -> None:
        shard_run.values["waves"] = executor_for(self.config).start(items)
        self._next_wave(scheduler, shard_run)

    def _next_wave(self, scheduler: ShardScheduler, shard_run: ShardRun) -> None:
        waves: WaveRun = shard_run.values["waves"]
        groups = waves.next_groups()
        if not groups:
            if "verify" in shard_run.values:
                scheduler.submit(shard_run, verify_round, (shard_run.values["verify"], waves.results(), self.config,
                                                           shard_run.shard.index), partial(self._verified, scheduler))
            else:
                self._edited(scheduler, shard_run, waves.results())
            return
        for batch, resource in self._batches(groups):
            tags = self.tags({f"brick:{group.tool}" for group in batch} | {resource})
            with brick_routing(scheduler.runner, batch, resource, self.pipeline.ray_brick_resources):
                scheduler.submit(shard_run, run_brick_groups, (batch, self.config, shard_run.shard.index),
                                 partial(self._groups_done, scheduler, batch), tags)

    def _verified(self, scheduler: ShardScheduler, shard_run: ShardRun, run: VerifyRun) -> None:
        """A verify round was judged: run the re-planned edits, or keep each row's best round as its result."""
        shard_run.values["verify"] = run
        if not run.done:
            self._start_waves(scheduler, shard_run, run.edit_items())
            return
        self._edited(scheduler, shard_run, keep_verified(shard_run.values["prepared"], run))

    def _edited(self, scheduler: ShardScheduler, shard_run: ShardRun, results: list[EditResult]) -> None:
        shard_run.values["results"] = results
        if self.pipeline.judge:
            scheduler.submit(shard_run, judge_results, (shard_run.values["prepared"], results, self.config.judge),
                             partial(self._write, scheduler))
        else:
            self._write(scheduler, shard_run, None)

    def _batches(self, groups: list[BrickGroup]) -> list[tuple[list[BrickGroup], str]]:
        """The wave's groups as tasks: each GPU group alone, the CPU groups together (alone when routed by brick)."""
        toolset = toolset_for(self.config)
        gpu: list[BrickGroup] = []
        cpu: list[BrickGroup] = []
        for group in groups:
            (gpu if toolset.backend_class(group.tool).resource == "gpu" else cpu).append(group)
        cpu_batches = [[group] for group in cpu] if self.pipeline.ray_brick_resources else [cpu] if cpu else []
        return [([group], "gpu") for group in gpu] + [(batch, "cpu") for batch in cpu_batches]

    def _write(self, scheduler: ShardScheduler, shard_run: ShardRun,
               judgements: list[Judgement | None] | None) -> None:
        prepared: PreparedShard = shard_run.values["prepared"]
        results = shard_run.values["results"]
        if not prepared.last:  # the shard's next slice follows this one's rows
            scheduler.submit(shard_run, build_slice_rows, (prepared, results, self.config, judgements),
                             partial(self._slice_done, scheduler))
            return
        fence = self.output.lease.fence() if self.output.lease is not None else None
        scheduler.write(shard_run, write_part, (self.output.uri, self.storage_options, prepared, results,
                                                self.config, self.pipeline.write_images, judgements,
                                                shard_run.values.get("earlier"), fence))

    def _slice_done(self, scheduler: ShardScheduler, shard_run: ShardRun, rows: Any) -> None:
        stop = shard_run.values.pop("prepared").stop
        for name in ("waves", "results", "verify"):  # the slice's pixels and results: let them go, now (Prefect's
            shard_run.values.pop(name, None)  # futures hold them in reference cycles), before the next slice is
        return_freed_memory()  # admitted to the same share
        shard_run.values.setdefault("earlier", []).append(rows)
        self.start(scheduler, shard_run, stop)

    def _groups_done(self, scheduler: ShardScheduler, groups: list[BrickGroup], shard_run: ShardRun,
                     results: list[GroupResult]) -> None:
        waves: WaveRun = shard_run.values["waves"]
        for group, result in zip(groups, results, strict=True):
            waves.record(group, result)
        if shard_run.in_flight == 0:
            self._next_wave(scheduler, shard_run)


@flow(name="edit-catalogue", task_runner=make_task_runner("threads"))
@fails_cleanly
@checked_start()
def edit_catalogue(dataset: str, output: str, config: Config | None = None, retry_failed: bool = False,
                   storage_options: dict[str, Any] | None = None, report: bool = True,
                   recorded_config: bool = False, reedit_all: bool = False) -> dict[str, Any]:
    """Edit ``dataset`` into a new version of ``output``: only the rows that are new or changed since the output's
    newest version (with ``retry_failed``, also its rows that are not ``ok``); removed ids leave the version. A
    rerun after a crash skips the shards of this work that were committed (``legoedit_core.data.incremental``).

    How the run goes comes from ``config.pipeline``: shard size, shards in flight, image files, retries, and
    ``judge``, which adds a ``judge-shard`` task per shard (the config's judge: a VLM when one is set, else
    model-free metrics) that fills the judge columns.
    The run owns ``output`` while it runs (a lease: a second run into it is refused), and an output keeps its
    config: a rerun with another config is refused, unless ``recorded_config`` (continue with the recorded config,
    whatever ``config`` says) or ``reedit_all`` (take this config and re-edit every row with it).
    ``report`` writes ``report.html`` and the gallery artifact (it reads the parts back one at a time).
    """
    logger = get_run_logger()
    source = open_dataset(dataset, storage_options)
    run_output = RunOutput(output, storage_options)
    config = config or Config()
    if recorded_config:  # what a row depends on is the output's; how to run (the pipeline section) is this run's
        config = _recorded_config(run_output).model_copy(update={"pipeline": config.pipeline})
    config = pin_backends(config)
    shard_size = config.pipeline.shard_size
    run = {"dataset": dataset, "dataset_fingerprint": source.fingerprint(), "shard_size": shard_size,
           "rows": len(source), "config": config.model_dump(mode="json"), "versions": versions(toolset_for(config))}
    with run_output.writing(run, new_config=reedit_all):
        change = decide(run_output, source, run["config"], shard_size, retry_failed, reedit_all)
        work, todo = work_output(run_output, change), change.dataset(source)
        shards = todo.shards(shard_size)
        runs = pending_runs(work, shards)
        logger.info("%s: %d rows; %s; %d shard(s), %d finished earlier", dataset, len(source), change.describe(),
                    len(shards), len(shards) - len(runs))
        steps = _EditSteps(todo, work, config, storage_options, TagPolicy.for_server())
        scheduler = ShardScheduler(work, config.pipeline, steps,
                                   Progress(len(shards), len(shards) - len(runs), key="edit-catalogue-progress"),
                                   named=output)
        scheduler.run(runs)
        version_report = version_report_name(change.version) if report else None
        try:
            # committed with what finished, failed shards or not: their rows are pending for the next run
            committed = commit_version(run_output, change, work, run, version_report)
            summary = summary_table(run_output.current_parts())
            report_uri = run_output.storage.uri(REPORT) if report else None
            if report:  # written under the lease, like every write into the output
                html = render_report(run_output.iter_parts, title=f"legoedit: {dataset}").encode()
                if committed is not None:
                    run_output.write_fenced(html, version_report)
                run_output.write_fenced(html, REPORT)
                rows = (row for part in run_output.iter_parts(["id", "instruction", "status", "source_image",
                                                               "edited_image"]) for row in part.to_pylist())
                gallery(rows, report_uri, storage_options)
        except OSError as error:  # the store or disk failing after shards failed: name those shards, not only this
            scheduler.raise_failures(len(shards), also=error)
            raise
    scheduler.raise_failures(len(shards))
    version_counts(committed, run_output.storage.url(version_report) if version_report else None)
    logger.info("done: %s; version %d: %s; report at %s", summary["counts"], committed["version"],
                committed["counts"], report_uri)
    return summary | {"output": output, "parts": run_output.current_files(), "report": report_uri,
                      "shards": len(shards), "rows": len(source), "version": committed["version"],
                      "changes": committed["counts"]}


def _recorded_config(output: RunOutput) -> Config:
    """The config an output was started with (``--recorded-config``)."""
    recorded = output.recorded_config()
    if recorded is None:
        raise OutputMismatch(f"{output.uri} records no config yet: there is nothing to continue")
    return Config.model_validate(recorded)


def run_catalogue(dataset: str, output: str, config: Config | None = None, **parameters: Any) -> dict[str, Any]:
    """Run ``edit_catalogue`` on the task runner ``config.pipeline`` names (threads here, or a Ray / Dask cluster
    at its ``address``)."""
    return on_configured_runner(edit_catalogue, config or Config())(dataset, output, config=config, **parameters)
