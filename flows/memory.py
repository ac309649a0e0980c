"""How a long run keeps its memory flat: what a committed shard leaves behind is collected soon after, and handed back
to the operating system, without scanning the long-lived heap each time.

Prefect's futures sit in reference cycles (a future's done-callback closes over the future), and each holds its
task's final state with the result in it (a shard's images, a brick group's outputs): without a collection those
wait for Python's rare full GC, and a long run's RSS saw-tooths far above a short one's.
"""

from __future__ import annotations

import ctypes
import gc
import sys
from collections.abc import Iterator
from contextlib import contextmanager, suppress

from flows.throttle import Throttle

# The least time between two collections: a collection holds the GIL (~10 ms on the 2-core development machine with
# the heap frozen), and with shards of 25 cheap items, commits come several times a second.
COLLECT_INTERVAL_S = 1.0


@contextmanager
def long_lived_objects_frozen() -> Iterator[None]:
    """Leave what exists before the shards run (modules, the toolset, Prefect's client) out of the collections
    ``return_freed_memory`` runs: a full collection of a process with torch, transformers and Prefect imported scans
    ~350k objects (0.3 s each on the 2-core development machine, ~12 s of a 1000-row run in shards of 25), and one
    that skips the frozen ones takes milliseconds (``gc.freeze``). No collection first: that would cost a full one,
    and garbage frozen here is collected after ``unfreeze``."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def return_freed_memory() -> None:
    """Free what committed shards left behind, now, and hand the memory back to the operating system (glibc's
    ``malloc_trim`` returns the freed pages, which its per-thread arenas would otherwise keep; a no-op elsewhere)."""
    gc.collect()
    if sys.platform.startswith("linux"):
        with suppress(OSError, AttributeError):
            ctypes.CDLL("libc.so.6").malloc_trim(0)


class FreedMemory:
    """A run's collections: at most one per ``interval`` seconds."""

    def __init__(self, interval: float = COLLECT_INTERVAL_S) -> None:
        self.collections = Throttle(interval)

    def return_after_commit(self) -> None:
        """``return_freed_memory``, unless it ran less than ``interval`` seconds ago: a slow shard (real bricks) is
        collected as soon as it commits, and quick ones are collected together."""
        if self.collections.due():
            return_freed_memory()
