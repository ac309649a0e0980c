"""The environment a deployed flow run needs, checked before it starts with one clear message.

A Prefect worker runs a deployment's flow in a fresh process on its own machine: nothing from the machine that
deployed it comes along but the deployment's parameters. ``deployments/prefect.yaml`` runs ``require_environment``
as its first pull step, and ``deployments/serve.py`` runs it before serving, so a missing variable fails the run at
once, naming the variable and what it is for, instead of a ``FileNotFoundError`` from deep inside Prefect. In a
worker's flow-run process the run is also set Failed with that line, so the UI shows it (the worker would otherwise
report a crash, and the line would stay in the worker's terminal).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

# The variables every deployment needs, with what they are for (listed at the top of deployments/prefect.yaml too).
REQUIRED = {
    "LEGOEDIT_HOME": "the legoedit checkout on the machine that runs the flow (the folder that holds flows/)",
}
ENTRYPOINT_FILE = Path("flows") / "edit_catalogue.py"


class MissingEnvironment(RuntimeError):
    """A variable a deployment needs is unset or wrong on the machine that runs the flow."""


def require_environment(names: list[str] | None = None) -> dict[str, str]:
    """The values of ``names`` (default: every required variable); ``MissingEnvironment`` naming each missing or
    wrong one. Usable as a Prefect pull step: its return value becomes the step's outputs."""
    names = list(REQUIRED) if names is None else names
    problems = [f"{name} is not set: it must name {REQUIRED.get(name, 'a value')}"
                for name in names if not os.environ.get(name)]
    home = os.environ.get("LEGOEDIT_HOME")
    if "LEGOEDIT_HOME" in names and home and not (Path(home) / ENTRYPOINT_FILE).is_file():
        problems.append(f"LEGOEDIT_HOME={home} holds no {ENTRYPOINT_FILE}: it must name {REQUIRED['LEGOEDIT_HOME']}")
    if problems:
        message = "; ".join(problems) + " (set it in the worker's or serve process's environment)"
        _fail_the_flow_run(message)
        raise MissingEnvironment(message)
    return {name: os.environ[name] for name in names}


def _fail_the_flow_run(message: str) -> None:
    """Set the flow run of this process (a worker's: ``PREFECT__FLOW_RUN_ID``) Failed with ``message``."""
    run_id = os.environ.get("PREFECT__FLOW_RUN_ID")
    if not run_id:
        return
    from prefect import get_client
    from prefect.states import Failed

    with contextlib.suppress(Exception), get_client(sync_client=True) as client:  # best effort: the error is raised
        client.set_flow_run_state(run_id, Failed(message=message), force=True)
