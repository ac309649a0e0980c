"""Which task runner executes the brick groups: threads on one machine, or a Ray or Dask cluster.

On Ray, a brick group goes to a worker that advertises the custom resource ``brick:<NAME>`` (start the workers
that hold a model with ``ray start --resources='{"brick:INPAINT": 4}'``), GPU groups ask for a GPU, and workers are
kept alive between calls (``max_calls=0``) so a loaded model stays resident.

A cluster runner that cannot reach its cluster fails the flow run (an error where Prefect enters the runner would
leave the run Running), after a quick TCP probe of the address instead of Ray's 30 s client timeout.
Before a brick group is submitted to Ray, the cluster is asked whether any node has the resources it will ask for
(``brick:<NAME>``, a GPU): a group no node can take would otherwise wait forever with one line in Ray's log.
Ray 2.60 clusters run with token auth by default: the flow's process needs ``RAY_AUTH_MODE=token`` and the
cluster's ``RAY_AUTH_TOKEN`` (infra/README.md).

On threads, the pool has one thread per CPU core this process may use (at least two), unless the user set
``PREFECT_TASKS_RUNNER_THREAD_POOL_MAX_WORKERS``: Prefect's own default is a thread per submitted task, and CPU brick
tasks past the core count only contend with each other (1,000 items in shards of 25 with 4 shards in flight on two
cores: flow / plain loop 1.34 with a thread per task, 1.15 with two). A GPU group's task waits for its model's
lease in the runtime, never for another task, so a bounded pool cannot deadlock.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any, Literal
from urllib.parse import urlsplit

from prefect import Flow
from prefect.context import FlowRunContext
from prefect.settings import get_current_settings
from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner
from prefect.utilities.annotations import quote

from flows.references import ByReference, ScratchStore
from legoedit_core.config import Config
from legoedit_core.data.output import RunOutput
from legoedit_core.executor import BrickGroup

RunnerKind = Literal["threads", "ray", "dask"]
PROBE_SECONDS = 5.0


class ClusterUnavailable(RuntimeError):
    """The task runner's cluster cannot be reached, or cannot run what the flow asks of it."""


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

        return _failing_the_flow_run(RayTaskRunner)(address=address)
    if kind == "dask":
        from prefect_dask import DaskTaskRunner  # the optional extra: pip install legoedit[dask]

        runner = _failing_the_flow_run(DaskTaskRunner)
        return runner(address=address) if address else runner()
    raise ValueError(f"unknown task runner {kind!r}: use threads, ray or dask")


def on_configured_runner(flow: Flow, config: Config) -> Flow:
    """``flow`` on the task runner ``config.pipeline`` names (``task_runner`` at ``address``)."""
    return flow.with_options(task_runner=make_task_runner(config.pipeline.task_runner, config.pipeline.address))


def current_runner_kind() -> RunnerKind:
    """The kind of task runner the current flow run really has (a deployment runs the flow's own, whatever a
    config says), for routing its tasks."""
    context = FlowRunContext.get()
    names = {kind.__name__ for kind in type(context.task_runner).__mro__} if context is not None else set()
    return "ray" if "RayTaskRunner" in names else "dask" if "DaskTaskRunner" in names else "threads"


def _failing_the_flow_run(runner: type[TaskRunner]) -> type[TaskRunner]:
    """``runner`` whose start probes its cluster's address and, when it cannot connect, keeps the reason and raises
    ``ClusterUnavailable`` from the first submit instead: Prefect enters a task runner outside the flow's body, where
    an error leaves the flow run Running; inside the body it fails the run."""

    def __enter__(self):
        self.unavailable = None
        try:
            probe(getattr(self, "address", None))
            return runner.__enter__(self)
        except Exception as error:
            self.unavailable = ClusterUnavailable(f"the {runner.__name__} cannot connect to {self.address}: {error}")
            return self

    def submit(self, *args, **kwargs):
        if self.unavailable is not None:
            raise self.unavailable
        return runner.submit(self, *args, **kwargs)

    def __exit__(self, *exc_info):
        if self.unavailable is None:
            runner.__exit__(self, *exc_info)

    return type(f"Checked{runner.__name__}", (runner,),
                {"__enter__": __enter__, "submit": submit, "__exit__": __exit__, "__module__": __name__})


def probe(address: str | None) -> None:
    """Raise ``ConnectionError`` unless a TCP connection to the cluster address (``ray://h:p``, ``tcp://h:p``)
    opens within ``PROBE_SECONDS``; a local cluster (None, ``auto``) or an address without a port is not probed."""
    parts = urlsplit(address if address and "://" in address else f"tcp://{address}")
    if not address or address == "auto" or not parts.hostname or not parts.port:
        return
    try:
        socket.create_connection((parts.hostname, parts.port), timeout=PROBE_SECONDS).close()
    except OSError as error:
        raise ConnectionError(f"{parts.hostname}:{parts.port}: {error.strerror or error}") from error


def brick_routing(kind: RunnerKind, groups: list[BrickGroup], resource: str,
                  brick_resources: bool = False) -> AbstractContextManager:
    """The context to submit a task of brick groups in: Ray remote options on Ray, nothing elsewhere."""
    if kind != "ray":
        return nullcontext()
    from prefect_ray.context import remote_options

    resources = {f"brick:{group.tool}": 1 for group in groups} if brick_resources else {}
    num_gpus = 1 if resource == "gpu" else 0
    require_ray_resources(resources | ({"GPU": num_gpus} if num_gpus else {}))
    return remote_options(num_gpus=num_gpus, resources=resources, max_calls=0)


def require_ray_resources(needed: dict[str, float]) -> None:
    """``ClusterUnavailable`` unless a live node of the connected Ray cluster has all of ``needed`` (a task runs on
    one node), naming the resources no node has."""
    import ray

    if not needed:
        return
    nodes = [node["Resources"] for node in ray.nodes() if node.get("Alive")]
    if any(all(node.get(name, 0) >= amount for name, amount in needed.items()) for node in nodes):
        return
    lacking = [name for name, amount in needed.items() if not any(node.get(name, 0) >= amount for node in nodes)]
    raise ClusterUnavailable(
        f"no Ray node has {' and '.join(lacking or needed)} (of {len(nodes)} live node(s)): the task would wait "
        "forever. Start the nodes that hold a brick's model with ray start --resources='{\"brick:NAME\": 1}' (and "
        "GPUs for GPU bricks), or turn pipeline.ray_brick_resources off")


def task_argument(kind: RunnerKind, value: Any, scratch: ScratchStore | None = None) -> Any:
    """``value`` as a task argument: quoted on the thread runner, by reference into ``scratch`` on Dask.

    Prefect walks every nested object of a task's arguments (a shard's rows, plans and images) looking for futures,
    which costs more than a cheap brick's work; ``quote`` skips that walk, and the flow never nests futures in
    arguments. Dask packs arguments into its task graph itself (it would turn the quote, a tuple, into a plain
    tuple): there the value's images go to the run's scratch storage and the graph carries their names
    (``flows/references.py``). Ray keeps arguments in its object store, so it gets the value as it is.
    """
    if kind == "threads":
        return quote(value)
    return ByReference(value, scratch) if kind == "dask" and scratch is not None else value


@contextmanager
def scratch_for(kind: RunnerKind, output: RunOutput) -> Iterator[ScratchStore | None]:
    """The scratch store under ``output`` that a run on ``kind`` passes images through (Dask only), emptied when
    the run ends."""
    if kind != "dask":
        yield None
        return
    scratch = ScratchStore(output.uri, output.storage.storage_options)
    try:
        yield scratch
    finally:
        scratch.clear()
