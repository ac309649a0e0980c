"""Which task runner executes the brick groups: threads on one machine, or a Ray or Dask cluster.

On Ray, a brick group goes to a worker that advertises the custom resource ``brick:<NAME>`` (start the workers
that hold a model with ``ray start --resources='{"brick:INPAINT": 4}'``), GPU groups ask for a GPU, and workers are
kept alive between calls (``max_calls=0``) so a loaded model stays resident.

On threads, the pool has one thread per CPU core this process may use (at least two), unless the user set
``PREFECT_TASKS_RUNNER_THREAD_POOL_MAX_WORKERS``: Prefect's own default is a thread per submitted task, and CPU brick
tasks past the core count only contend with each other (1,000 items in shards of 25 with 4 shards in flight on two
cores: flow / plain loop 1.34 with a thread per task, 1.15 with two). A GPU group's task waits for its model's
lease in the runtime, never for another task, so a bounded pool cannot deadlock.
"""

from __future__ import annotations

import os
from contextlib import AbstractContextManager, nullcontext
from typing import Any, Literal

from prefect import Flow
from prefect.context import FlowRunContext
from prefect.settings import get_current_settings
from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner
from prefect.utilities.annotations import quote

from legoedit_core.config import Config
from legoedit_core.executor import BrickGroup

RunnerKind = Literal["threads", "ray", "dask"]


def thread_workers() -> int:
    """Threads for the thread task runner: the user's Prefect setting, else one per usable CPU core (at least 2)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return get_current_settings().tasks.runner.thread_pool_max_workers or max(2, cores)


def make_task_runner(kind: RunnerKind = "threads", address: str | None = None,
                     max_workers: int | None = None) -> TaskRunner:
    """A task runner of the given kind; ``address`` is the Ray or Dask cluster (a local one when None)."""
    if kind == "threads":
        return ThreadPoolTaskRunner(max_workers=max_workers or thread_workers())
    if kind == "ray":
        from prefect_ray import RayTaskRunner  # the optional extra: pip install legoedit[ray]

        return RayTaskRunner(address=address)
    if kind == "dask":
        from prefect_dask import DaskTaskRunner  # the optional extra: pip install legoedit[dask]

        return DaskTaskRunner(address=address) if address else DaskTaskRunner()
    raise ValueError(f"unknown task runner {kind!r}: use threads, ray or dask")


def on_configured_runner(flow: Flow, config: Config) -> Flow:
    """``flow`` on the task runner ``config.pipeline`` names (``task_runner`` at ``address``)."""
    return flow.with_options(task_runner=make_task_runner(config.pipeline.task_runner, config.pipeline.address))


def current_runner_kind() -> RunnerKind:
    """The kind of task runner the current flow run really has (a deployment runs the flow's own, whatever a
    config says), for routing its tasks."""
    context = FlowRunContext.get()
    name = type(context.task_runner).__name__ if context is not None else ""
    return "ray" if name == "RayTaskRunner" else "dask" if name == "DaskTaskRunner" else "threads"


def brick_routing(kind: RunnerKind, groups: list[BrickGroup], resource: str,
                  brick_resources: bool = False) -> AbstractContextManager:
    """The context to submit a task of brick groups in: Ray remote options on Ray, nothing elsewhere."""
    if kind != "ray":
        return nullcontext()
    from prefect_ray.context import remote_options

    resources = {f"brick:{group.tool}": 1 for group in groups} if brick_resources else {}
    return remote_options(num_gpus=1 if resource == "gpu" else 0, resources=resources, max_calls=0)


def task_argument(kind: RunnerKind, value: Any) -> Any:
    """``value`` as a task argument: quoted on the thread runner, as it is elsewhere.

    Prefect walks every nested object of a task's arguments (a shard's rows, plans and images) looking for futures,
    which costs more than a cheap brick's work; ``quote`` skips that walk, and the flow never nests futures in
    arguments. Dask packs arguments itself and turns the quote (a tuple) into a plain tuple, so the cluster runners
    get the value unquoted.
    """
    return quote(value) if kind == "threads" else value
