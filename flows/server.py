"""The Prefect server a command-line run talks to when the user has not named one."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from prefect.settings import PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS, get_current_settings, temporary_settings

# Prefect gives its temporary local server 20 s to start by default, and the first start migrates a new database:
# on a small, busy machine that takes longer, and the run fails before it begins.
EPHEMERAL_STARTUP_SECONDS = 120


@contextmanager
def patient_ephemeral_server() -> Iterator[None]:
    """Allow the temporary local server ``EPHEMERAL_STARTUP_SECONDS`` to start, unless the user set the timeout."""
    if "startup_timeout_seconds" in get_current_settings().server.ephemeral.model_fields_set:
        yield
        return
    with temporary_settings({PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS: EPHEMERAL_STARTUP_SECONDS}):
        yield
