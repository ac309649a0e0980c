"""Backends pinned per run: the flow resolves every brick's backend once and every task honours that choice."""

from __future__ import annotations

from prefect import get_run_logger

from legoedit_core.config import Config
from tasks.runtime import toolset_for


def pin_backends(config: Config) -> Config:
    """The config with every available brick's backend named, resolved here, once for the run; the flow sends it
    to every task, so a worker runs that backend or fails (``BackendMismatch``). On the gpu profile, a brick whose
    preferred backends cannot run here is logged as a warning, with why."""
    toolset = toolset_for(config)
    if config.profile == "gpu":
        logger = get_run_logger()
        for spec in toolset.available_specs():
            if passed_over := toolset.passed_over(spec.name):
                logger.warning("%s runs on %r in this run; passed over: %s", spec.name,
                               toolset.backend_class(spec.name).name, "; ".join(passed_over))
    return toolset.pinned_config()
