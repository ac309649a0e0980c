"""The batch pipeline: edit a whole catalogue on Prefect, shard by shard.

For each shard: one ``plan-shard`` task (the Builder plans the whole shard at once), then the executor's waves, in
which each GPU (brick, backend) group is one ``run-brick-groups`` task and the CPU groups of the wave share one
(``GRAYSCALE+FLIP shard 3 wave 1``; with Ray brick routing every group is its own task), then one ``write-part``
task; the flow commits the part to the output's manifest. Up to ``max_concurrent_shards`` shards are in flight at
once, so the brick groups of one shard overlap with the planning of the next. Brick-group tasks carry the tags
``brick:<NAME>`` and ``cpu`` / ``gpu`` where the server makes them worth their cost (``flows.server.TagPolicy``).

The flow's own thread only moves shards from step to step as their tasks finish; it never touches pixels.
"""

from __future__ import annotations

import queue
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from prefect import Task, flow, get_run_logger

from flows.backends import pin_backends
from flows.failures import ShardFailure, fails_cleanly, log_failure, run_name, shards_failed, with_retries
from flows.memory import FreedMemory, long_lived_objects_frozen
from flows.monitoring import Progress, gallery, summary_table, version_counts
from flows.runners import RunnerKind, brick_routing, make_task_runner, task_argument
from flows.server import TagPolicy
from flows.stopping import STOP, Interrupted, sigterm_stops_like_ctrl_c
from legoedit_core.config import Config
from legoedit_core.data.datasets import Dataset, Shard, open_dataset
from legoedit_core.data.incremental import commit_version, decide, version_report_name, work_output
from legoedit_core.data.output import OutputMismatch, PartInfo, RunOutput
from legoedit_core.data.report import render_report
from legoedit_core.executor import BrickGroup, GroupResult, WaveRun
from legoedit_core.judge.judgement import Judgement
from legoedit_core.pipeline.shard import PreparedShard, versions
from tasks.edit import plan_shard, run_brick_groups, write_part
from tasks.judge import judge_results
from tasks.runtime import executor_for, toolset_for

REPORT = "report.html"


@dataclass
class _ShardRun:
    shard: Shard
    only_ids: list[str] | None = None  # --retry-failed: just these rows, merged into the existing part
    attempt: int = 0  # the commit attempt number this run's record takes (a retry: the newest + 1)
    waves: WaveRun | None = None
    prepared: PreparedShard | None = None
    in_flight: int = 0
    failed: bool = False


@dataclass
class _Scheduler:
    """Moves shards through plan -> waves of brick groups -> write -> commit, as their tasks finish."""

    dataset: Dataset
    output: RunOutput
    config: Config
    storage_options: dict[str, Any] | None
    runner: RunnerKind
    ray_brick_resources: bool
    write_images: bool
    judge: bool
    progress: Progress
    tags: TagPolicy
    finished: queue.Queue = field(default_factory=queue.Queue)
    failures: list[ShardFailure] = field(default_factory=list)
    committed: int = 0
    variants: dict[tuple[Task, frozenset[str]], Task] = field(default_factory=dict)
    freed_memory: FreedMemory = field(default_factory=FreedMemory)

    def run(self, runs: list[_ShardRun], limit: int) -> None:
        """Run every shard, at most ``limit`` at once; ``runs`` is consumed (a committed shard is let go)."""
        waiting, open_runs = list(reversed(runs)), 0
        runs.clear()
        while waiting or open_runs:
            while waiting and open_runs < limit:
                self._plan(waiting.pop())
                open_runs += 1
            future, shard_run, task_name, then = self._next_finished()
            if shard_run.failed:
                continue  # a late task of a shard that already failed
            try:
                result = future.result()
            except Exception as error:  # the task failed after its retries: the shard stays uncommitted
                shard_run.failed = True
                self._fail(shard_run, task_name, error)
            else:
                try:
                    then(shard_run, result)
                except Exception as error:  # committing (or starting the next step) failed
                    shard_run.failed = True
                    self._fail(shard_run, "commit", error)
            if shard_run.failed or then == self._committed:
                open_runs -= 1

    def _next_finished(self) -> tuple[Any, _ShardRun, str, Callable[[_ShardRun, Any], None]]:
        """The next finished task; ``Interrupted`` as soon as a stop was asked for (Ctrl-C, SIGTERM)."""
        while not STOP.is_set():
            try:
                return self.finished.get(timeout=0.2)
            except queue.Empty:
                continue
        raise Interrupted(f"stopped by a signal: {self.committed} shard(s) committed in this run, nothing partial; "
                          f"rerun the same command to resume with what is left in {self.output.uri}")

    def _submit(self, shard_run: _ShardRun, task: Task, args: tuple[Any, ...],
                then: Callable[[_ShardRun, Any], None], tags: frozenset[str] = frozenset()) -> None:
        """Submit ``task(*args)`` for a shard, with the config's retries and ``tags``; ``then`` runs on the flow's
        thread with its result."""
        name = run_name(task, args)
        future = self._task(task, tags).submit(*(task_argument(self.runner, arg) for arg in args))
        shard_run.in_flight += 1
        future.add_done_callback(lambda done: self.finished.put((done, shard_run, name, then)))

    def _task(self, task: Task, tags: frozenset[str]) -> Task:
        """``task`` with the config's retries and ``tags``, built once per run and tag set (``with_options`` copies
        the task, reading its source)."""
        if (task, tags) not in self.variants:
            self.variants[task, tags] = with_retries(task, self.config.pipeline, tags=set(tags))
        return self.variants[task, tags]

    def _plan(self, shard_run: _ShardRun) -> None:
        self._submit(shard_run, plan_shard, (self.dataset, shard_run.shard, self.config, shard_run.only_ids),
                     self._planned)

    def _planned(self, shard_run: _ShardRun, prepared: PreparedShard) -> None:
        shard_run.in_flight -= 1
        shard_run.prepared = prepared
        shard_run.waves = executor_for(self.config).start(prepared.edit_items()[0])
        self._next_wave(shard_run)

    def _next_wave(self, shard_run: _ShardRun) -> None:
        assert shard_run.waves is not None and shard_run.prepared is not None
        groups = shard_run.waves.next_groups()
        if not groups:
            if self.judge:
                self._submit(shard_run, judge_results, (shard_run.prepared, shard_run.waves.results(),
                                                        self.config.judge), self._judged)
            else:
                self._write(shard_run, None)
            return
        for batch, resource in self._batches(groups):
            tags = self.tags({f"brick:{group.tool}" for group in batch} | {resource})
            with brick_routing(self.runner, batch, resource, self.ray_brick_resources):
                self._submit(shard_run, run_brick_groups, (batch, self.config, shard_run.shard.index),
                             _recorder(batch, self._groups_done), tags)

    def _batches(self, groups: list[BrickGroup]) -> list[tuple[list[BrickGroup], str]]:
        """The wave's groups as tasks: each GPU group alone, the CPU groups together (alone when routed by brick)."""
        toolset = toolset_for(self.config)
        gpu: list[BrickGroup] = []
        cpu: list[BrickGroup] = []
        for group in groups:
            (gpu if toolset.backend_class(group.tool).resource == "gpu" else cpu).append(group)
        cpu_batches = [[group] for group in cpu] if self.ray_brick_resources else [cpu] if cpu else []
        return [([group], "gpu") for group in gpu] + [(batch, "cpu") for batch in cpu_batches]

    def _judged(self, shard_run: _ShardRun, judgements: list[Judgement | None]) -> None:
        shard_run.in_flight -= 1
        self._write(shard_run, judgements)

    def _write(self, shard_run: _ShardRun, judgements: list[Judgement | None] | None) -> None:
        assert shard_run.waves is not None and shard_run.prepared is not None
        self._submit(shard_run, write_part, (self.output.uri, self.storage_options, shard_run.prepared,
                                       shard_run.waves.results(), self.config, shard_run.only_ids is not None,
                                       self.write_images, judgements), self._committed)

    def _groups_done(self, shard_run: _ShardRun, groups: list[BrickGroup], results: list[GroupResult]) -> None:
        assert shard_run.waves is not None
        shard_run.in_flight -= 1
        for group, result in zip(groups, results, strict=True):
            shard_run.waves.record(group, result)
        if shard_run.in_flight == 0:
            self._next_wave(shard_run)

    def _committed(self, shard_run: _ShardRun, info: PartInfo) -> None:
        self.output.commit(info, shard_run.attempt)
        shard_run.prepared = shard_run.waves = None  # the shard's images and results: let them go
        self.freed_memory.return_after_commit()
        self.committed += 1
        self.progress.advance()
        get_run_logger().info("shard %d committed: %s", info.shard, info.counts)

    def _fail(self, shard_run: _ShardRun, task_name: str, error: Exception) -> None:
        self.failures.append(ShardFailure(shard_run.shard, task_name, error))
        log_failure(self.failures[-1])


def _recorder(groups: list[BrickGroup],
              record: Callable[[_ShardRun, list[BrickGroup], list[GroupResult]], None]):
    return lambda shard_run, results: record(shard_run, groups, results)


@flow(name="edit-catalogue", task_runner=make_task_runner("threads"))
@fails_cleanly
def edit_catalogue(dataset: str, output: str, config: Config | None = None, shard_size: int = 64,
                   retry_failed: bool = False, max_concurrent_shards: int = 4, write_images: bool = False,
                   storage_options: dict[str, Any] | None = None, report: bool = True,
                   task_runner: RunnerKind = "threads", ray_brick_resources: bool = False,
                   judge: bool = False, recorded_config: bool = False, reedit_all: bool = False) -> dict[str, Any]:
    """Edit ``dataset`` into a new version of ``output``: only the rows that are new or changed since the output's
    newest version (with ``retry_failed``, also its rows that are not ``ok``); removed ids leave the version. A
    rerun after a crash skips the shards of this work that were committed (``legoedit_core.data.incremental``).

    The run owns ``output`` while it runs (a lease: a second run into it is refused), and an output keeps its
    config: a rerun with another config is refused, unless ``recorded_config`` (continue with the recorded config,
    whatever ``config`` says) or ``reedit_all`` (take this config and re-edit every row with it).
    ``report`` writes ``report.html`` and the gallery artifact (it reads the parts back one at a time).
    ``judge`` adds a ``judge-shard`` task per shard (the config's judge: a VLM when one is set, else model-free
    metrics) that fills the judge columns.
    ``task_runner`` names the runner this flow was given (see ``run_catalogue``), for routing brick groups.
    """
    logger = get_run_logger()
    source = open_dataset(dataset, storage_options)
    run_output = RunOutput(output, storage_options)
    config = config or Config()
    if recorded_config:  # what a row depends on is the output's; how to run (the pipeline section) is this run's
        config = _recorded_config(run_output).model_copy(update={"pipeline": config.pipeline})
    config = pin_backends(config)
    run = {"dataset": dataset, "dataset_fingerprint": source.fingerprint(), "shard_size": shard_size,
           "rows": len(source), "config": config.model_dump(mode="json"), "versions": versions(toolset_for(config))}
    with run_output.writing(run, new_config=reedit_all), sigterm_stops_like_ctrl_c(), long_lived_objects_frozen():
        change = decide(run_output, source, run["config"], shard_size, retry_failed, reedit_all)
        work = work_output(run_output, change)
        shards = change.dataset(source).shards(shard_size)
        finished = work.finished()
        runs = [_ShardRun(shard) for shard in shards if shard.index not in finished]
        logger.info("%s: %d rows; %s; %d shard(s), %d finished earlier", dataset, len(source), change.describe(),
                    len(shards), len(finished))
        scheduler = _Scheduler(change.dataset(source), work, config, storage_options, task_runner,
                               ray_brick_resources, write_images, judge, Progress(len(shards), len(shards) - len(runs)),
                               TagPolicy.for_server())
        scheduler.run(runs, max(1, max_concurrent_shards))
        version_report = version_report_name(change.version) if report else None
        committed = None if scheduler.failures else commit_version(run_output, change, work, run, version_report)

    summary = summary_table(run_output.current_parts())
    report_uri = run_output.storage.uri(REPORT) if report else None
    if report:
        html = render_report(run_output.iter_parts, title=f"legoedit: {dataset}").encode()
        if committed is not None:
            run_output.storage.write_bytes(html, version_report)
        run_output.storage.write_bytes(html, REPORT)
        rows = (row for part in run_output.iter_parts(["id", "instruction", "status", "source_image", "edited_image"])
                for row in part.to_pylist())
        gallery(rows, report_uri, storage_options)
    if scheduler.failures:
        raise shards_failed(scheduler.failures, len(shards), output)
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


def run_catalogue(dataset: str, output: str, task_runner: RunnerKind = "threads", address: str | None = None,
                  **parameters: Any) -> dict[str, Any]:
    """Run ``edit_catalogue`` on the chosen task runner (threads here, or a Ray / Dask cluster at ``address``)."""
    runner = make_task_runner(task_runner, address)
    return edit_catalogue.with_options(task_runner=runner)(dataset, output, task_runner=task_runner, **parameters)
