"""Stopping a run on Ctrl-C or SIGTERM: stop submitting, commit nothing partial, exit within seconds.

``stop_on_signals`` turns SIGINT and SIGTERM into a request to stop: the flow's scheduler sees it, submits no more
tasks, commits nothing more, and raises ``Interrupted`` saying how many shards are committed. Tasks already running
cannot be killed from inside a thread; if they have not finished ``grace`` seconds after the signal, the process
runs its cleanup (``on_deadline``: stop the temporary server) and exits with code 130. Committed shards are whole
(a part is committed only after it is written), so the rerun resumes from them. Prefect replaces the SIGTERM
handler while a flow runs; ``sigterm_stops_like_ctrl_c`` hands it back for the flow's scheduling.
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
_active_handler: Callable[[int, object], None] | None = None  # stop_on_signals' handler while it is active


class Interrupted(RuntimeError):
    """The run was stopped by a signal; what is committed stays, and a rerun resumes."""


@contextmanager
def stop_on_signals(grace: float = 8.0, on_deadline: Callable[[], None] = lambda: None) -> Iterator[None]:
    """While the block runs, SIGINT / SIGTERM set ``STOP``; ``grace`` seconds later the process exits regardless
    (also when the block has ended: the pool's threads still running would keep the interpreter from exiting)."""
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

    global _active_handler
    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    _active_handler = handler
    try:
        yield
    finally:
        _active_handler = None
        STOP.clear()  # a stop asked of this block is not a stop of the next one in the same process
        for sig, old in previous.items():
            signal.signal(sig, old)


def active() -> bool:
    """Whether ``stop_on_signals`` is active (in this process)."""
    return _active_handler is not None


@contextmanager
def sigterm_stops_like_ctrl_c() -> Iterator[None]:
    """Inside a flow run, give SIGTERM back to ``stop_on_signals`` (when it is active, on the main thread).

    Prefect's flow engine swaps in its own SIGTERM handler, which raises ``TerminationSignal`` at whatever line the
    main thread is on; Prefect code on that line may catch it, and the run then goes on to the end (seen once in
    CI). ``STOP`` is checked at one place, between tasks, so SIGTERM stops the run exactly as Ctrl-C does.
    """
    if _active_handler is None or threading.current_thread() is not threading.main_thread():
        yield
        return
    prefects = signal.signal(signal.SIGTERM, _active_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, prefects)
