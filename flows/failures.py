"""How the flows fail: shards whose task kept failing are left uncommitted and summed up in one paragraph, task
retries come from the config, and an anticipated failure ends the flow in a Failed state with one line.

Item failures (bad input, no valid plan, a brick refusing an item) are row statuses and never reach this module;
what does is a fault of the machinery (a model that does not load, a device error, the object store down) that
raised out of a task after Prefect's retries.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

from prefect import Task, get_run_logger
from prefect._internal.engine import resolve_custom_task_run_name
from prefect.states import Cancelled, Failed
from prefect.utilities.callables import get_call_parameters

from flows.runners import ClusterUnavailable
from flows.stopping import Interrupted
from legoedit_core.data.datasets import DatasetError, Shard
from legoedit_core.data.lease import LeaseHeld, LeaseLost
from legoedit_core.data.output import OutputMismatch, UnsafeRecord
from legoedit_core.faults import is_retryable
from legoedit_core.pipeline.preflight import PreflightFailed
from legoedit_core.settings.pipeline import PipelineSettings
from tasks.retries import retry_unless_hopeless

P = ParamSpec("P")
R = TypeVar("R")


class ShardsFailed(RuntimeError):
    """Some shards failed; every other shard is committed and a rerun picks up the failed ones."""


# What a flow run can be expected to end with: one line for the user, no traceback (OSError covers StorageError,
# OutputUnwritable and an unreachable cluster's ConnectionError; a failed preflight, a lease held by another run, or
# lost, and a stop by a signal are expected too).
ANTICIPATED = (ShardsFailed, DatasetError, OutputMismatch, UnsafeRecord, OSError, LeaseHeld, LeaseLost, Interrupted,
               PreflightFailed, ClusterUnavailable)


@dataclass
class ShardFailure:
    """A shard that was not committed: which task failed last, and why."""

    shard: Shard
    task: str
    error: BaseException

    def __str__(self) -> str:
        shard = self.shard
        return (f"shard {shard.index} (rows {shard.start}-{shard.stop - 1}) failed in task '{self.task}': "
                f"{type(self.error).__name__}: {_one_line(self.error)}")


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split())


def log_failure(failure: ShardFailure) -> None:
    get_run_logger().error(str(failure))


def shards_failed(failures: list[ShardFailure], shards: int, output: str) -> ShardsFailed:
    """One paragraph: how many shards were not committed, each with its task and cause, and what to do next."""
    causes = "; ".join(str(f) for f in sorted(failures, key=lambda f: f.shard.index))
    return ShardsFailed(f"{len(failures)} of {shards} shard(s) not committed: {causes}. The other shards are "
                        f"committed in {output}; a rerun with the same output does only what is missing.")


def with_retries(task: Task, pipeline: PipelineSettings, **options: Any) -> Task:
    """``task`` with the config's retries: ``task_retries`` more tries after a failure, each wait ``retry_backoff``
    times the one before, starting at ``retry_delay_seconds``. A fault that a retry cannot mend (a lost lease, one
    item too large for memory, a model larger than its device, missing credentials, permission denied, a missing
    bucket) is not retried (``tasks.retries``)."""
    delays = [pipeline.retry_delay_seconds * pipeline.retry_backoff ** i for i in range(pipeline.task_retries)]
    return task.with_options(retries=pipeline.task_retries, retry_delay_seconds=delays or 0,
                             retry_condition_fn=retry_unless_hopeless, **options)


def run_name(task: Task, args: tuple[Any, ...]) -> str:
    """What Prefect names the run of ``task(*args)``: its ``task_run_name`` rendered, else the task's name."""
    if not task.task_run_name:
        return task.name
    return resolve_custom_task_run_name(task, get_call_parameters(task.fn, args, {}))


class AnticipatedFailureLogged(logging.Filter):
    """Keeps Prefect from logging an anticipated failure with its traceback. A worker's flow-run process logs every
    Failed run once more as "Engine execution exited with unexpected exception" with the traceback, after the one
    line of "Finished in state Failed(...)" that says it all: that record is dropped (``drop``). A task that failed
    with a fault that cannot heal keeps its one line, without the traceback."""

    def __init__(self, drop: bool) -> None:
        super().__init__()
        self.drop = drop

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if error is None or not (isinstance(error, ANTICIPATED) or not is_retryable(error)):
            return True
        record.exc_info = record.exc_text = None
        return not self.drop


# Prefect's loggers of failures: the flow run's (the run's log in the UI), the engine's (the worker's terminal), and
# the task runs', whether each drops the record.
PREFECT_FAILURE_LOGGERS = {"prefect.flow_runs": True, "prefect.engine": True, "prefect.task_runs": False}


def anticipated_failures_in_one_line() -> None:
    """Install ``AnticipatedFailureLogged`` on Prefect's loggers of failures (once per process)."""
    for name, drop in PREFECT_FAILURE_LOGGERS.items():
        logger = logging.getLogger(name)
        if not any(isinstance(existing, AnticipatedFailureLogged) for existing in logger.filters):
            logger.addFilter(AnticipatedFailureLogged(drop))


def fails_cleanly(flow_function: Callable[P, R]) -> Callable[P, R]:
    """Make an anticipated failure end the flow run in a Failed state carrying the error, with no traceback in the
    log (Prefect's own included: ``AnticipatedFailureLogged``), and a stop by a signal end it Cancelled (what a
    worker cancelling the run expects); calling the flow still raises that same error."""

    @functools.wraps(flow_function)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        anticipated_failures_in_one_line()
        try:
            return flow_function(*args, **kwargs)
        except Interrupted as error:  # stopped on purpose (Ctrl-C, or SIGTERM from a worker cancelling the run)
            logger = get_run_logger()
            logger.warning(_one_line(error))
            for handler in getattr(logger, "logger", logger).handlers:
                handler.flush()  # the line reaches the API before the stop's grace period ends the process
            return Cancelled(message=_one_line(error), data=error)  # type: ignore[return-value]
        except ANTICIPATED as error:
            return Failed(message=_one_line(error), data=error)  # type: ignore[return-value]
    # Prefect reads the parameters' types from the signature: resolved here, in the flow's own module.
    run.__signature__ = inspect.signature(flow_function, eval_str=True)  # type: ignore[attr-defined]
    return run
