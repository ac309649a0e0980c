"""Faults of the machinery, told from one item's errors by type.

A fault (the device out of memory, a CUDA or driver error, an inference engine that died, a model or package that
does not load, storage that cannot be read) is not about any item: it raises out of the task, Prefect retries the
task, and a shard whose task still fails is not committed. Everything else a brick raises for an item is that
item's error (its row is ``failed``), whatever the exception's type: torch raises ``RuntimeError`` for one item's
bad shape as readily as for a dead device, so ``RuntimeError`` alone says nothing.

Running out of memory has one owner here: ``is_out_of_memory`` recognises it (by the table ``OUT_OF_MEMORY``),
``run_fitting_memory`` halves only the chunk that failed and raises ``MemoryExhausted`` once; no backend halves on
its own.

Nothing here imports torch or vLLM: their exception types are looked up only when the library is already loaded
(an error of a library that was never imported cannot be one of its errors).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class Fault(Exception):
    """A failure of the machinery, not of an item: raise it (or a subclass) to have the task retried.

    ``retryable = False`` marks a fault that the same task on the same machine cannot mend (a model larger than its
    device, one item that does not fit in memory): it fails at once, without the task's retries.
    """

    retryable: ClassVar[bool] = True


# Storage refusals that stay whatever the number of tries: permission denied, a missing bucket or file.
_HOPELESS_TYPES: tuple[type[BaseException], ...] = (PermissionError, FileNotFoundError, NotADirectoryError)


def is_retryable(error: BaseException) -> bool:
    """Whether retrying the task that raised ``error`` can succeed: everything but a fault marked
    ``retryable = False``, a storage refusal that no retry changes, and missing credentials (botocore's
    ``NoCredentialsError`` / ``PartialCredentialsError``, told by name: botocore is an optional import here)."""
    if getattr(error, "retryable", True) is False or isinstance(error, _HOPELESS_TYPES):
        return False
    return not (type(error).__module__.startswith("botocore") and "Credential" in type(error).__name__)


# Always faults: storage and files (OSError), a package that does not import (and running out of memory, below).
_FAULT_TYPES: tuple[type[BaseException], ...] = (Fault, OSError, ImportError)
# Exception classes of optional engines, by name (vLLM's engine process died: every later request fails).
_FAULT_NAMES = frozenset({"EngineDeadError", "AsyncEngineDeadError"})
# CUDA library failures that torch raises as a plain RuntimeError (newer torch raises ``AcceleratorError`` for the
# driver's own errors), told by the status the library reports.
_DEVICE_STATUS = re.compile(r"CUDA (driver )?error|CUBLAS_STATUS_|CUDNN_STATUS_|cuDNN error|NCCL error|"
                            r"device-side assert")


class MemoryExhausted(Fault):
    """Out of memory even for one item alone: a fault (the shard is not committed) that a retry of the same task on
    the same machine cannot mend, so it is not retried; a rerun with more memory (or smaller images) does it.

    ``done`` holds the outputs of the chunks that succeeded before, by item index: they are kept, not recomputed.
    """

    retryable = False

    def __init__(self, message: str, done: dict[int, Any] | None = None) -> None:
        super().__init__(message)
        self.done = done or {}


@dataclass(frozen=True)
class OutOfMemorySign:
    """How one library says that it ran out of memory: an exception type of ``module`` (looked up only when the
    module is loaded) and, for libraries that raise a general type for every error, the phrase of its message."""

    module: str
    type_name: str
    phrase: str | None = None

    def matches(self, error: BaseException) -> bool:
        module = sys.modules.get(self.module)
        kind: Any = module
        for name in self.type_name.split("."):
            kind = getattr(kind, name, None)
        if not isinstance(kind, type) or not isinstance(error, kind):
            return False
        return self.phrase is None or self.phrase.lower() in str(error).lower()


# The one table of out-of-memory signs, per library used: exception types first, messages only where a library
# raises nothing more specific.
OUT_OF_MEMORY: tuple[OutOfMemorySign, ...] = (
    OutOfMemorySign("builtins", "MemoryError"),  # Python, numpy (``_ArrayMemoryError``), Pillow
    OutOfMemorySign("torch", "OutOfMemoryError"),  # the CUDA caching allocator (= torch.cuda.OutOfMemoryError)
    OutOfMemorySign("torch", "AcceleratorError", "out of memory"),  # the driver's own "CUDA error: out of memory"
    OutOfMemorySign("builtins", "RuntimeError", "CUBLAS_STATUS_ALLOC_FAILED"),  # cuBLAS cannot allocate its workspace
    # torch's CPU allocator raises a plain RuntimeError
    OutOfMemorySign("builtins", "RuntimeError", "DefaultCPUAllocator: can't allocate memory"),
    OutOfMemorySign("cv2", "error", "Insufficient memory"),  # OpenCV's status -4 (CV_StsNoMem)
    OutOfMemorySign("onnxruntime", "capi.onnxruntime_pybind11_state.RuntimeException", "Failed to allocate memory"),
)


def is_out_of_memory(error: BaseException) -> bool:
    """Whether ``error`` is a library's way of saying that the process or device ran out of memory."""
    return any(sign.matches(error) for sign in OUT_OF_MEMORY)


def run_fitting_memory(items: Sequence[T], call: Callable[[list[T]], list[R]], what: str) -> list[R]:
    """``call`` over all ``items`` at once, in smaller chunks only when they do not fit: the one place that decides
    what running out of memory does.

    A chunk that runs out of memory is split in two halves, each run in turn (only the failing chunk is halved;
    chunks that succeeded are kept, never run again). One item that runs out of memory alone raises
    ``MemoryExhausted`` once, carrying the outputs done so far. A batch of n with one item that never fits costs at
    most 2 log2(n) + 1 calls. Any other error raises as it is.
    """
    done: dict[int, R] = {}
    pending = [(0, len(items))] if items else []  # a stack of [start, stop) ranges still to run, next on top
    while pending:
        start, stop = pending.pop()
        try:
            outputs = call(list(items[start:stop]))
        except Exception as error:
            if not is_out_of_memory(error):
                raise
            _release_device_cache()
            if stop - start == 1:
                raise MemoryExhausted(f"{what}: out of memory on a single item (item {start} of {len(items)}): "
                                      f"{error}; the shard is not committed and a rerun with more memory does it",
                                      done) from error
            middle = (start + stop) // 2
            pending += [(middle, stop), (start, middle)]
            continue
        done.update(zip(range(start, stop), outputs, strict=True))
    return [done[index] for index in range(len(items))]


def _release_device_cache() -> None:
    """Hand the failed call's cached CUDA blocks back before the smaller chunk runs (torch only when loaded)."""
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()


def _torch_faults() -> tuple[type[BaseException], ...]:
    torch = sys.modules.get("torch")
    if torch is None:
        return ()
    return tuple(kind for kind in (getattr(torch, "OutOfMemoryError", None), getattr(torch, "AcceleratorError", None))
                 if isinstance(kind, type))


def is_fault(error: BaseException) -> bool:
    """Whether ``error`` is a fault of the machinery (raise it out of the task) rather than one item's error."""
    if isinstance(error, _FAULT_TYPES + _torch_faults()) or is_out_of_memory(error):
        return True
    if any(kind.__name__ in _FAULT_NAMES for kind in type(error).__mro__):
        return True
    return isinstance(error, RuntimeError) and bool(_DEVICE_STATUS.search(str(error)))
