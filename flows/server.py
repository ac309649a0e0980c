"""The Prefect server a command-line run talks to when the user has not named one.

Without ``PREFECT_API_URL``, Prefect would start its own temporary server as a child in the run's process group:
Ctrl-C in a terminal then kills the server first, and the flow spends minutes retrying a server that is gone.
``temporary_server`` starts the same server (uvicorn with Prefect's app, UI off) in its own session instead, so a
signal reaches only the run, which stops cleanly and then stops the server itself, whatever way it ends.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import prefect
from prefect.settings import (
    PREFECT_API_URL,
    PREFECT_SERVER_ANALYTICS_ENABLED,
    PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS,
    get_current_settings,
    temporary_settings,
)

# Prefect gives its temporary local server 20 s to start by default, and the first start migrates a new database:
# on a small, busy machine that takes longer, and the run fails before it begins.
EPHEMERAL_STARTUP_SECONDS = 120


@contextmanager
def patient_ephemeral_server() -> Iterator[None]:
    """Settings for Prefect's temporary local server, each unless the user set it: ``EPHEMERAL_STARTUP_SECONDS`` to
    start, and no telemetry (on an offline machine every start logged "Failed to send telemetry" as an error)."""
    settings = get_current_settings().server
    wanted: dict[Any, Any] = {}
    if "startup_timeout_seconds" not in settings.ephemeral.model_fields_set:
        wanted[PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS] = EPHEMERAL_STARTUP_SECONDS
    if "analytics_enabled" not in settings.model_fields_set:
        wanted[PREFECT_SERVER_ANALYTICS_ENABLED] = False
    with temporary_settings(wanted):
        yield


@contextmanager
def temporary_server() -> Iterator[Callable[[], None]]:
    """Run the block against a temporary local Prefect server in its own session, unless ``PREFECT_API_URL``
    names a server already. Yields a function that stops the server (also called when the block ends)."""
    if PREFECT_API_URL.value():
        yield lambda: None
        return
    with patient_ephemeral_server():
        timeout = PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS.value()
        settings = get_current_settings().to_environment_variables(exclude_unset=True)
    port = _free_port()
    url = f"http://127.0.0.1:{port}/api"
    log = tempfile.NamedTemporaryFile(prefix="legoedit-prefect-server-", suffix=".log", delete=False)  # noqa: SIM115
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--app-dir", str(Path(prefect.__module_path__).parent), "--factory",
         "prefect.server.api.server:create_app", "--host", "127.0.0.1", "--port", str(port), "--log-level",
         "error", "--lifespan", "on"],
        env={**os.environ, **settings,
             "PREFECT_UI_ENABLED": "0", "PREFECT__SERVER_EPHEMERAL": "1", "PREFECT__SERVER_FINAL": "1"},
        stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True)  # a terminal's Ctrl-C goes to the run, not to its server
    try:
        _wait_healthy(process, url, timeout, log.name)
        print(f"temporary Prefect server at {url} (pid {process.pid})", file=sys.stderr, flush=True)
        with temporary_settings({PREFECT_API_URL: url}):
            try:
                yield lambda: stop_process(process)
            finally:  # also when the block raised: its error is reported after the run's logs are sent
                _drain_prefect_clients()
    finally:
        stop_process(process)
        log.close()


def _drain_prefect_clients(timeout: float = 1.5) -> None:
    """Send the run's last events and logs while the server is still there (not at exit, to a stopped one)."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    for worker in (EventsWorker, APILogWorker):
        worker.drain_all(timeout=timeout)


def stop_process(process: subprocess.Popen, grace: float = 3.0) -> None:
    """Terminate a child process, killing it if it has not exited after ``grace`` seconds."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_healthy(process: subprocess.Popen, url: str, timeout: float, log: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the temporary Prefect server exited with code {process.returncode} (see {log})")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"the temporary Prefect server did not answer within {timeout:.0f} s "
                       f"(PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS; see {log})")
