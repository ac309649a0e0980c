"""Stopping a run on Ctrl-C or SIGTERM: stop submitting, commit nothing partial, exit within seconds.

``stop_on_signals`` turns SIGINT and SIGTERM into a request to stop: the flow's scheduler sees it, submits no more
tasks, commits nothing more, and raises ``Interrupted`` saying how many shards are committed. Tasks already running
cannot be killed from inside a thread; if they have not finished ``grace`` seconds after the signal, the process
runs its cleanup (``on_deadline``: stop the temporary server) and exits with code 130. Committed shards are whole
(a part is committed only after it is written), so the rerun resumes from them.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

STOP = threading.Event()
EXIT_CODE = 130


class Interrupted(RuntimeError):
    """The run was stopped by a signal; what is committed stays, and a rerun resumes."""


@contextmanager
def stop_on_signals(grace: float = 8.0, on_deadline: Callable[[], None] = lambda: None) -> Iterator[None]:
    """While the block runs, SIGINT / SIGTERM set ``STOP``; ``grace`` seconds later the process exits regardless."""
    STOP.clear()

    def deadline() -> None:
        print(f"error: still stopping {grace:.0f} s after the signal: exiting now; committed shards are kept and a "
              "rerun resumes", file=sys.stderr, flush=True)
        on_deadline()
        os._exit(EXIT_CODE)

    def handler(signum: int, frame) -> None:
        if STOP.is_set():
            return
        STOP.set()
        print(f"{signal.Signals(signum).name}: stopping (nothing partial is committed)", file=sys.stderr, flush=True)
        timer = threading.Timer(grace, deadline)
        timer.daemon = True
        timer.start()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
