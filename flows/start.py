"""How every flow run starts, however it was started (``legoedit run``, ``prefect deployment run``, a schedule,
``deployments/serve.py``): the run's preflight, its task runner, and a clean stop on Ctrl-C / SIGTERM.

- **Preflight.** ``legoedit_core.pipeline.preflight`` checks the config, dataset and output first; a problem ends the
  flow run Failed with one line naming it (``flows.failures.fails_cleanly``), and nothing is written.
- **Task runner.** A deployment runs the flow on the task runner its decorator names (threads), whatever its
  parameters say. When ``config.pipeline.task_runner`` names another (``ray``, ``dask``, at ``address``), the flow
  runs itself again as a subflow on that runner, after a quick probe of the address; so the config is the one way to
  choose the runner, for the CLI and for deployments alike.
- **Stopping.** A worker stops a run it cancels with SIGTERM. Where nothing listens for it yet (a deployment's flow
  run process; the CLI installs its own), ``flows.stopping.stop_on_signals`` is installed for the run: the scheduler
  stops between tasks, commits nothing partial and releases the output's lease, so a rerun resumes.
"""

from __future__ import annotations

import functools
import inspect
import threading
from collections.abc import Callable
from contextlib import nullcontext
from typing import ParamSpec, TypeVar

from prefect import get_run_logger
from prefect.context import FlowRunContext

from flows import stopping
from flows.runners import ClusterUnavailable, current_runner_kind, on_configured_runner, probe
from legoedit_core.config import Config
from legoedit_core.pipeline.preflight import preflight

P = ParamSpec("P")
R = TypeVar("R")


def checked_start(dataset: str | None = "dataset") -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Start a flow function as the module says; ``dataset`` names its dataset parameter (None for a benchmark,
    which its own reader checks). The function takes ``output``, ``config`` and ``storage_options``."""

    def decorate(flow_function: Callable[P, R]) -> Callable[P, R]:
        signature = inspect.signature(flow_function)

        @functools.wraps(flow_function)
        def run(*args: P.args, **kwargs: P.kwargs) -> R:
            arguments = signature.bind(*args, **kwargs).arguments
            config = arguments.get("config") or Config()
            preflight(config, arguments.get(dataset) if dataset else None, arguments["output"],
                      arguments.get("storage_options"))
            with _stop_on_signals_unless_handled():
                wanted, running = config.pipeline.task_runner, current_runner_kind()
                if wanted == running:
                    return flow_function(*args, **kwargs)
                try:
                    probe(config.pipeline.address)
                except ConnectionError as error:
                    raise ClusterUnavailable(f"the {wanted} cluster at {config.pipeline.address} cannot be reached: "
                                             f"{error}") from None
                get_run_logger().info("config.pipeline.task_runner is %s: running on it as a subflow%s", wanted,
                                      f" at {config.pipeline.address}" if config.pipeline.address else "")
                return on_configured_runner(FlowRunContext.get().flow, config)(*args, **kwargs)

        return run

    return decorate


def _stop_on_signals_unless_handled():
    """``stop_on_signals`` for the block, unless it is active already (the CLI's) or cannot be (not the main
    thread)."""
    if stopping.active() or threading.current_thread() is not threading.main_thread():
        return nullcontext()
    return stopping.stop_on_signals()
