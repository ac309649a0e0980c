"""The one shard scheduler of every flow: shards move through their tasks as the tasks finish, at most
``max_concurrent_shards`` at once, and each shard's part is committed when its last task has written it.

A flow says what a shard's steps are and nothing else: ``edit_catalogue`` fans a shard out into brick-group tasks
wave by wave, ``evaluate`` and ``rollouts`` chain whole-shard tasks (``Chain``); both are ``ShardSteps``. Everything
else is here, once:

- **Stopping.** Ctrl-C and SIGTERM set ``flows.stopping.STOP``; the scheduler checks it between tasks, submits
  nothing more, commits nothing more and raises ``Interrupted`` (SIGTERM is handed back from Prefect's handler
  while shards run: ``sigterm_stops_like_ctrl_c``). A part is committed only after it is written, so nothing is
  half-written and a rerun resumes from the committed shards.
- **Failures.** A task that still fails after the config's retries leaves its shard uncommitted; the flow ends
  with one paragraph over every such shard (``flows.failures.shards_failed``). A lost lease (``LeaseLost``) is no
  shard's failure: the run stops at once, submitting and writing nothing more.
- **Memory.** The heap that exists before the shards run is frozen (``long_lived_objects_frozen``), a committed
  shard's intermediate results are let go at once and collected soon after (``FreedMemory``).

The flow's own thread only moves references from step to step; it never touches pixels.
"""

from __future__ import annotations

import queue
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from prefect import Task, get_run_logger

from flows.failures import ShardFailure, log_failure, run_name, shards_failed, with_retries
from flows.memory import FreedMemory, long_lived_objects_frozen
from flows.monitoring import Progress
from flows.references import ScratchStore
from flows.runners import RunnerKind, current_runner_kind, scratch_for, task_argument
from flows.stopping import STOP, Interrupted, sigterm_stops_like_ctrl_c
from legoedit_core.data.datasets import Dataset, Shard
from legoedit_core.data.lease import LeaseLost
from legoedit_core.data.output import PartInfo, RunOutput
from legoedit_core.settings.pipeline import PipelineSettings

# What runs on the flow's thread with a task's result: the shard's next step.
Then = Callable[["ShardRun", Any], None]


@dataclass
class ShardRun:
    """One shard on its way to a commit; ``values`` holds its steps' results until the commit lets them go."""

    shard: Shard
    values: dict[str, Any] = field(default_factory=dict)
    in_flight: int = 0
    failed: bool = False
    committed: bool = False


class ShardSteps(Protocol):
    """What a flow does with a shard: ``start`` submits its first task(s) through the scheduler; each task's
    ``then`` submits the next, and the last one is submitted with ``scheduler.write`` (its part is committed)."""

    def start(self, scheduler: ShardScheduler, shard_run: ShardRun) -> None: ...


@dataclass
class ShardScheduler:
    """Runs shard runs through a flow's ``ShardSteps`` on the flow's task runner."""

    output: RunOutput
    pipeline: PipelineSettings
    steps: ShardSteps
    progress: Progress
    finished: queue.Queue = field(default_factory=queue.Queue)
    failures: list[ShardFailure] = field(default_factory=list)
    committed: int = 0
    variants: dict[tuple[Task, frozenset[str]], Task] = field(default_factory=dict)
    freed_memory: FreedMemory = field(default_factory=FreedMemory)
    runner: RunnerKind = field(default_factory=current_runner_kind)
    scratch: ScratchStore | None = None  # where images go by reference on Dask (flows/references.py)
    named: str | None = None  # the output as the user named it, for messages (an edit version's work lies below it)

    def run(self, runs: list[ShardRun]) -> None:
        """Run every shard, at most ``pipeline.max_concurrent_shards`` at once; ``runs`` is consumed (a committed
        shard is let go). Raises ``Interrupted`` on a stop."""
        with (sigterm_stops_like_ctrl_c(), long_lived_objects_frozen(),
              scratch_for(self.runner, self.output) as self.scratch):
            self._run(runs, max(1, self.pipeline.max_concurrent_shards))

    def _run(self, runs: list[ShardRun], limit: int) -> None:
        waiting, open_runs = list(reversed(runs)), 0
        runs.clear()
        while waiting or open_runs:
            while waiting and open_runs < limit:
                # not caught: a runner that cannot take tasks (its cluster unreachable) fails the whole run
                self.steps.start(self, waiting.pop())
                open_runs += 1
            future, shard_run, task_name, then = self._next_finished()
            shard_run.in_flight -= 1
            if shard_run.failed:
                continue  # a late task of a shard that already failed
            try:
                result = future.result()
            except LeaseLost:
                raise  # another run owns the output now: nothing more is submitted or written
            except Exception as error:  # the task failed after its retries: the shard stays uncommitted
                self._fail(shard_run, task_name, error)
            else:
                self._step(shard_run, "commit" if then == self._commit_part else task_name, then, result)
            if shard_run.failed or shard_run.committed:
                open_runs -= 1

    def _step(self, shard_run: ShardRun, name: str, then: Then, result: Any) -> None:
        try:
            then(shard_run, result)
        except LeaseLost:
            raise
        except Exception as error:  # committing, or starting the next step, failed
            self._fail(shard_run, name, error)

    def _next_finished(self) -> tuple[Any, ShardRun, str, Then]:
        """The next finished task; ``Interrupted`` as soon as a stop was asked for (Ctrl-C, SIGTERM)."""
        while not STOP.is_set():
            try:
                return self.finished.get(timeout=0.2)
            except queue.Empty:
                continue
        raise Interrupted(f"stopped by a signal: {self.committed} shard(s) committed in this run, nothing partial; "
                          f"rerun the same command to resume with what is left in {self.named or self.output.uri}")

    def submit(self, shard_run: ShardRun, task: Task, args: tuple[Any, ...], then: Then,
               tags: frozenset[str] = frozenset()) -> None:
        """Submit ``task(*args)`` for a shard, with the config's retries and ``tags``; ``then`` runs on the flow's
        thread with its result."""
        if self.output.lease is not None:
            self.output.lease.check_known()  # a run that lost its lease starts nothing more
        name = run_name(task, args)
        future = self._task(task, tags).submit(*(task_argument(self.runner, arg, self.scratch) for arg in args))
        shard_run.in_flight += 1
        future.add_done_callback(lambda done: self.finished.put((done, shard_run, name, then)))

    def write(self, shard_run: ShardRun, task: Task, args: tuple[Any, ...]) -> None:
        """Submit the task that writes the shard's part (it returns a ``PartInfo``); the part is committed then."""
        self.submit(shard_run, task, args, self._commit_part)

    def _task(self, task: Task, tags: frozenset[str]) -> Task:
        """``task`` with the config's retries and ``tags``, built once per run and tag set (``with_options`` copies
        the task, reading its source)."""
        if (task, tags) not in self.variants:
            self.variants[task, tags] = with_retries(task, self.pipeline, tags=set(tags))
        return self.variants[task, tags]

    def _commit_part(self, shard_run: ShardRun, info: PartInfo) -> None:
        self.output.commit(info)
        shard_run.values.clear()  # the shard's images and results: let them go
        shard_run.committed = True
        self.freed_memory.return_after_commit()
        self.committed += 1
        self.progress.advance()
        get_run_logger().info("shard %d committed: %s", info.shard, info.counts)

    def _fail(self, shard_run: ShardRun, task_name: str, error: Exception) -> None:
        shard_run.failed = True
        shard_run.values.clear()
        self.failures.append(ShardFailure(shard_run.shard, task_name, error))
        log_failure(self.failures[-1])

    def raise_failures(self, shards: int, also: Exception | None = None) -> None:
        """End the flow with one paragraph over the shards that were not committed (after its report); ``also`` is a
        later error (the summary or report failing too) that must not hide them."""
        if not self.failures:
            return
        failed = shards_failed(self.failures, shards, self.named or self.output.uri)
        if also is not None:
            raise type(failed)(f"{failed} Writing the summary and report failed too: {also}") from also
        raise failed


@dataclass(frozen=True)
class Step:
    """One whole-shard task of a chain: its result is stored as ``values[name]`` for the steps after it."""

    name: str
    task: Task
    arguments: Callable[[ShardRun], tuple[Any, ...]]  # from the shard and the earlier steps' results


@dataclass(frozen=True)
class Chain:
    """``ShardSteps`` that run whole-shard ``steps`` one after another; the last one writes the part that is
    committed."""

    steps: Sequence[Step]

    def start(self, scheduler: ShardScheduler, shard_run: ShardRun) -> None:
        self._submit(scheduler, shard_run, 0)

    def _submit(self, scheduler: ShardScheduler, shard_run: ShardRun, index: int) -> None:
        step = self.steps[index]
        args = step.arguments(shard_run)
        if index == len(self.steps) - 1:
            scheduler.write(shard_run, step.task, args)
            return

        def then(run: ShardRun, result: Any) -> None:
            run.values[step.name] = result
            self._submit(scheduler, run, index + 1)

        scheduler.submit(shard_run, step.task, args, then)


def run_every_shard(output: RunOutput, run: dict[str, Any], source: Dataset, pipeline: PipelineSettings,
                    steps: ShardSteps, progress_key: str) -> None:
    """Own ``output`` for ``run``, take every shard of ``source`` that is not committed yet through ``steps``, then
    end with one paragraph over the shards that failed (the whole-shard flows: evaluate, rollouts)."""
    with output.writing(run):
        shards = source.shards(pipeline.shard_size)
        runs = pending_runs(output, shards)
        scheduler = ShardScheduler(output, pipeline, steps,
                                   Progress(len(shards), len(shards) - len(runs), key=progress_key))
        scheduler.run(runs)
    scheduler.raise_failures(len(shards))


def pending_runs(output: RunOutput, shards: Sequence[Shard]) -> list[ShardRun]:
    """A run for every shard that no earlier run with this output has committed."""
    finished = output.finished()
    return [ShardRun(shard) for shard in shards if shard.index not in finished]
