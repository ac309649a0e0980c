"""When Prefect retries a task: after any failure but a fault that the same task on the same machine cannot mend.

``MemoryExhausted`` (one item does not fit in memory even alone) and ``ModelDoesNotFit`` (a model larger than its
device) are faults marked ``retryable = False``: retrying would fail the same way, so the task fails at once and
its shard is left for a rerun on a larger machine. Every other fault (a CUDA error, a dead engine, storage) is
retried ``pipeline.task_retries`` times.
"""

from __future__ import annotations

from typing import Any

from prefect.client.schemas.objects import TaskRun
from prefect.states import State

from legoedit_core.faults import is_retryable


def retry_unless_hopeless(task: Any, task_run: TaskRun, state: State) -> bool:
    """Prefect's ``retry_condition_fn``: retry unless the task raised a fault that is not ``retryable``."""
    error = state.data if isinstance(state.data, BaseException) else state.result(raise_on_failure=False)
    return not isinstance(error, BaseException) or is_retryable(error)
