"""The Prefect server a run talks to: a temporary local one of its own, its settings, and which task tags are worth
their cost.

Without ``PREFECT_API_URL``, Prefect would start its own temporary server as a child in the run's process group:
Ctrl-C in a terminal then kills the server first, and the flow spends minutes retrying a server that is gone.
``temporary_server`` starts the same server (uvicorn with Prefect's app, UI off) in its own session instead, so a
signal reaches only the run, which stops cleanly and then stops the server itself, whatever way it ends.

Such a server runs on SQLite. There, every tagged task run asks the server for tag concurrency slots (a database
write, even for a tag with no limit), and SQLite's single writer turns those asks into 503s and client back-offs
that cost more than cheap bricks do. So the flow tags its brick-group tasks only where a tag buys something: on a
real server (the UI filters by tag, and limits may be set at any time), or for the tags that carry a concurrency
limit. The limit the flow itself needs, one call at a time per loaded model, holds in the process without any tag:
the model runtime lends each model to one call at a time.

The server dies with its run, however the run ends: on Linux it is started with a parent-death signal
(``prctl(PR_SET_PDEATHSIG, SIGKILL)``), so a ``kill -9`` of the run (or of its process group, which the server's own
session does not share) takes the server too. Its output goes to an unnamed temporary file, so nothing is left in
``/tmp``; when it fails to start, the error quotes that output.

The run and its temporary server talk over loopback, so what pays on a network is waste there: the server declines
per-message compression of the events websocket (``--ws-per-message-deflate``; compressing and decompressing every
task run's events cost both processes CPU), and flow runs send no heartbeats (``LOCAL_CLIENT_SETTINGS``).
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import httpx
import prefect
from prefect import get_client
from prefect.server.api.server import SubprocessASGIServer
from prefect.settings import (
    PREFECT_API_URL,
    PREFECT_FLOWS_HEARTBEAT_FREQUENCY,
    PREFECT_SERVER_ANALYTICS_ENABLED,
    PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS,
    PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_BATCH_SIZE,
    PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_READ_BATCH_SIZE,
    PREFECT_UI_URL,
    get_current_settings,
    temporary_settings,
)
from prefect.settings.legacy import Setting

# Prefect gives its temporary local server 20 s to start by default, and the first start migrates a new database:
# on a small, busy machine that takes longer, and the run fails before it begins.
EPHEMERAL_STARTUP_SECONDS = 120
# The server's task-run recorder writes one task run per transaction by default; a batch writes up to this many
# (events still land within its flush interval, 5 s), so SQLite's one writer is taken far less often.
RECORDER_BATCH = 100
PR_SET_PDEATHSIG = 1  # prctl(2): the signal a child gets when its parent dies
# The server's URLs while ``temporary_server`` runs them.
STARTED_HERE: set[str] = set()
LOCAL_SERVER_SETTINGS: dict[Setting, Any] = {
    PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS: EPHEMERAL_STARTUP_SECONDS,
    # no telemetry: on an offline machine every start logged "Failed to send telemetry" as an error
    PREFECT_SERVER_ANALYTICS_ENABLED: False,
    PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_BATCH_SIZE: RECORDER_BATCH,
    PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_READ_BATCH_SIZE: RECORDER_BATCH,
}
# What this process sets while it runs flows against a temporary server of its own.
LOCAL_CLIENT_SETTINGS: dict[Setting, Any] = {
    # Heartbeats let a server mark a flow run whose process died as crashed; a temporary server dies with the run,
    # so they buy nothing there, and Prefect's heartbeat thread sleeps in 1 s steps: joining it at the end held
    # every flow run up to a second (half a second on average, 5% of a 1,000-item run of cheap bricks).
    PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None,
}


@contextmanager
def local_server_settings() -> Iterator[None]:
    """Settings for a temporary server this process starts (``LOCAL_SERVER_SETTINGS``), except those the user set.

    They go to the server's process when it starts, so enter this before the server starts.
    """
    with temporary_settings(_unless_user_set(LOCAL_SERVER_SETTINGS)):
        yield


def browse_url() -> str:
    """Where ``legoedit ui`` serves Prefect's UI: the address ``prefect server start`` takes by default
    (``PREFECT_SERVER_API_HOST`` / ``PREFECT_SERVER_API_PORT``, 127.0.0.1:4200 unless set)."""
    api = get_current_settings().server.api
    return f"http://{api.host}:{api.port}"


@contextmanager
def local_client_settings(url: str) -> Iterator[None]:
    """Run the block against the temporary server at ``url`` with ``LOCAL_CLIENT_SETTINGS``, except those the user
    set. The run's "View at" link points at ``browse_url``: the temporary server is gone when the run ends, and
    ``legoedit ui`` serves the same database there."""
    with temporary_settings({PREFECT_API_URL: url,
                             **_unless_user_set({**LOCAL_CLIENT_SETTINGS, PREFECT_UI_URL: browse_url()})}):
        yield


def _unless_user_set(settings: dict[Setting, Any]) -> dict[Setting, Any]:
    current = get_current_settings()
    return {setting: value for setting, value in settings.items() if not _user_set(current, setting)}


def _user_set(settings: Any, setting: Setting) -> bool:
    *parents, leaf = setting.accessor.split(".")
    for parent in parents:
        settings = getattr(settings, parent)
    return leaf in settings.model_fields_set


@contextmanager
def temporary_server() -> Iterator[Callable[[], None]]:
    """Run the block against a temporary local Prefect server in its own session, unless ``PREFECT_API_URL``
    names a server already. Yields a function that stops the server (also called when the block ends)."""
    if PREFECT_API_URL.value():
        yield lambda: None
        return
    with local_server_settings():
        timeout = PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS.value()
        settings = get_current_settings().to_environment_variables(exclude_unset=True)
    port = _free_port()
    url = f"http://127.0.0.1:{port}/api"
    log = tempfile.TemporaryFile(prefix="legoedit-prefect-server-", suffix=".log")  # noqa: SIM115 (no name: no file left)
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--app-dir", str(Path(prefect.__module_path__).parent), "--factory",
         "prefect.server.api.server:create_app", "--host", "127.0.0.1", "--port", str(port), "--log-level",
         "error", "--lifespan", "on", "--ws-per-message-deflate", "false"],
        env={**os.environ, **settings,
             "PREFECT_UI_ENABLED": "0", "PREFECT__SERVER_EPHEMERAL": "1", "PREFECT__SERVER_FINAL": "1"},
        stdout=log, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent(os.getpid()),
        start_new_session=True)  # a terminal's Ctrl-C goes to the run, not to its server
    STARTED_HERE.add(url)
    try:
        _wait_healthy(process, url, timeout, log)
        print(f"temporary Prefect server at {url} (pid {process.pid})", file=sys.stderr, flush=True)
        with local_client_settings(url):
            try:
                yield lambda: stop_process(process)
            finally:  # also when the block raised: its error is reported after the run's logs are sent
                _drain_prefect_clients()
    finally:
        STARTED_HERE.discard(url)
        stop_process(process)
        log.close()
        print("the temporary Prefect server stopped; to look at this run's page (View at ...): legoedit ui",
              file=sys.stderr, flush=True)


def serve_ui() -> int:
    """Run Prefect's server with its UI at ``browse_url`` on the database the temporary servers use (the one of
    ``PREFECT_HOME``, unless ``PREFECT_API_DATABASE_CONNECTION_URL`` names another) until stopped; its exit code."""
    api = get_current_settings().server.api
    with local_server_settings():
        settings = get_current_settings().to_environment_variables(exclude_unset=True)
    environment = {**os.environ, **settings}
    command = [sys.executable, "-m", "prefect", "server", "start", "--host", api.host, "--port", str(api.port)]
    print(f"Prefect UI on the runs of this machine's legoedit commands: {browse_url()} (Ctrl-C stops it)",
          file=sys.stderr, flush=True)
    try:
        return subprocess.call(command, env=environment)
    except KeyboardInterrupt:
        return 0


def _die_with_parent(parent: int) -> Callable[[], None] | None:
    """A ``preexec_fn`` that has the kernel kill the child when its parent dies (Linux; None elsewhere).

    The signal follows the thread that forked the child, so ``temporary_server`` is entered from a thread that
    outlives the server (the CLI's main thread). A parent that died before the signal was armed is caught by
    comparing the parent pid after arming it.
    """
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(None, use_errno=True)

    def arm() -> None:
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:
            os.kill(os.getpid(), signal.SIGKILL)

    return arm


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


def _wait_healthy(process: subprocess.Popen, url: str, timeout: float, log: IO[bytes]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the temporary Prefect server exited with code {process.returncode}: "
                               f"{_tail(log)}")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"the temporary Prefect server did not answer within {timeout:.0f} s "
                       f"(PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS): {_tail(log)}")


def _tail(log: IO[bytes], size: int = 4000) -> str:
    """The end of the server's output, for an error message."""
    log.flush()
    log.seek(max(0, log.seek(0, os.SEEK_END) - size))
    return log.read().decode("utf-8", "replace").strip() or "(it wrote nothing)"


def started_here() -> bool:
    """Whether the API is a server this process started (``temporary_server``, Prefect's temporary local server or
    its test harness)."""
    url = PREFECT_API_URL.value()
    # Prefect keeps the servers it starts in this class attribute (the test harness registers its own there too);
    # tests/test_pipeline.py fails if a Prefect upgrade moves it, as the brick tasks would then be tagged.
    if not url or url.rstrip("/") in STARTED_HERE:
        return True
    return any(server.running and server.api_url == url.rstrip("/")
               for server in list(SubprocessASGIServer._instances.values()))


def limited_tags() -> frozenset[str]:
    """The tags that carry an active concurrency limit on the server (Prefect keeps them as ``tag:<tag>``)."""
    names: list[str] = []
    with get_client(sync_client=True) as client:
        while page := client.read_global_concurrency_limits(limit=200, offset=len(names)):
            names += [limit.name for limit in page if limit.active]
    return frozenset(name.removeprefix("tag:") for name in names if name.startswith("tag:"))


@dataclass(frozen=True)
class TagPolicy:
    """Which of a task's tags to put on it: all of them (``everything``), or only those in ``limited``."""

    everything: bool
    limited: frozenset[str] = frozenset()

    @classmethod
    def for_server(cls) -> TagPolicy:
        """Every tag on a real server; on a temporary one, only the tags a user gave a concurrency limit."""
        return cls(True) if not started_here() else cls(False, limited_tags())

    def __call__(self, tags: Iterable[str]) -> frozenset[str]:
        return frozenset(tags) if self.everything else frozenset(tags) & self.limited
