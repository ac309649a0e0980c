"""Faults of the machinery, told from one item's errors by type.

A fault (the device out of memory, a CUDA or driver error, an inference engine that died, a model or package that
does not load, storage that cannot be read) is not about any item: it raises out of the task, Prefect retries the
task, and a shard whose task still fails is not committed. Everything else a brick raises for an item is that
item's error (its row is ``failed``), whatever the exception's type: torch raises ``RuntimeError`` for one item's
bad shape as readily as for a dead device, so ``RuntimeError`` alone says nothing.

Nothing here imports torch or vLLM: their exception types are looked up only when the library is already loaded
(an error of a library that was never imported cannot be one of its errors).
"""

from __future__ import annotations

import re
import sys


class Fault(Exception):
    """A failure of the machinery, not of an item: raise it (or a subclass) to have the task retried."""


# Always faults: storage and files (OSError), a package that does not import (and running out of memory, below).
_FAULT_TYPES: tuple[type[BaseException], ...] = (Fault, OSError, ImportError)
# Exception classes of optional engines, by name (vLLM's engine process died: every later request fails).
_FAULT_NAMES = frozenset({"EngineDeadError", "AsyncEngineDeadError"})
# CUDA library failures that torch raises as a plain RuntimeError (newer torch raises ``AcceleratorError`` for the
# driver's own errors), told by the status the library reports.
_DEVICE_STATUS = re.compile(r"CUDA (driver )?error|CUBLAS_STATUS_|CUDNN_STATUS_|cuDNN error|NCCL error|"
                            r"device-side assert")


# How allocators that raise no MemoryError say they ran out (OpenCV's cv2.error "Insufficient memory", ...).
_OUT_OF_MEMORY_PHRASES = ("insufficient memory", "failed to allocate", "out of memory", "cannot allocate memory")


def is_out_of_memory(error: BaseException) -> bool:
    """Whether ``error`` means the process or device ran out of memory (worth retrying with a smaller batch)."""
    return isinstance(error, MemoryError) or any(phrase in str(error).lower() for phrase in _OUT_OF_MEMORY_PHRASES)


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
