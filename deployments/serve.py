"""Serve the pipeline from one machine, with no work pool or worker: ``python deployments/serve.py [PREFECT_FILE]``.

It serves the deployments of ``prefect.yaml`` (or of the file given), named ``<name>-served`` so that they never
collide with the deployed ones, with the same flows, parameters, schedules, descriptions and concurrency limits, and
runs their flow runs from this process until stopped. It needs the environment listed at the top of prefect.yaml
(``LEGOEDIT_HOME`` at least; it serves from that folder, as the deployments' pull steps run there). Point
``PREFECT_API_URL`` at a Prefect server to see them in its UI.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import yaml
from prefect import serve
from prefect.cli.deploy._schedules import _schedule_config_to_deployment_schedule
from prefect.deployments.runner import RunnerDeployment
from prefect.flows import load_flow_from_entrypoint

from flows.environment import require_environment

PREFECT_FILE = Path(__file__).with_name("prefect.yaml")
SERVED_SUFFIX = "-served"


def served_deployments(prefect_file: str | Path = PREFECT_FILE) -> list[RunnerDeployment]:
    """Every deployment of ``prefect_file`` as one to serve; entrypoints are relative to the working directory,
    as they are for ``prefect deploy``."""
    spec = yaml.safe_load(Path(prefect_file).read_text())
    return [_served(entry) for entry in spec["deployments"]]


def _served(entry: dict[str, Any]) -> RunnerDeployment:
    # prefect deploy's own reading of a `schedules` entry, so both read the same YAML the same way
    schedules = [_schedule_config_to_deployment_schedule(schedule) for schedule in entry.get("schedules") or []]
    deployment = load_flow_from_entrypoint(entry["entrypoint"]).to_deployment(
        name=entry["name"] + SERVED_SUFFIX, description=entry.get("description"), tags=entry.get("tags"),
        parameters=entry.get("parameters") or {}, schedules=schedules,
        concurrency_limit=entry.get("concurrency_limit"))
    # the module entrypoint as written (Prefect would record the file's path): a flow loaded from a file path is
    # module `edit_catalogue`, which Dask and Ray workers cannot unpickle
    deployment.entrypoint = entry["entrypoint"]
    return deployment


def main(argv: list[str]) -> None:
    prefect_file = Path(argv[0]).resolve() if argv else PREFECT_FILE
    os.chdir(require_environment()["LEGOEDIT_HOME"])
    sys.path.insert(0, os.getcwd())
    serve(*served_deployments(prefect_file))


if __name__ == "__main__":
    main(sys.argv[1:])
