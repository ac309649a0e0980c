"""What a device really has free, and how memory is really given back after a model is dropped.

The runtime asks a ``DeviceMemory`` before every load. On CUDA that is ``torch.cuda.mem_get_info`` (free and total
bytes as the driver sees them, so other processes count) plus what PyTorch's allocator has cached but not handed
out; on the CPU nothing is probed and the configured budget is the only limit. Tests pass a fake device with the
same three methods.
"""

from __future__ import annotations

import gc
import sys
from typing import Any, Protocol


class DeviceMemory(Protocol):
    """Free and total bytes of a device (None: unknown, only the budget applies), and a way to hand back the
    memory of dropped models."""

    def free(self, device: str) -> int | None: ...

    def total(self, device: str) -> int | None: ...

    def release(self, device: str) -> None:
        """Return the memory of objects dropped on ``device`` to the device (collect garbage, empty caches)."""


class TorchDeviceMemory:
    """The real devices: CUDA through torch (imported only when a CUDA device is asked about), the CPU unprobed."""

    def free(self, device: str) -> int | None:
        info = _cuda_info(device)
        return info[0] if info else None

    def total(self, device: str) -> int | None:
        info = _cuda_info(device)
        return info[1] if info else None

    def release(self, device: str) -> None:
        gc.collect()  # pipelines hold reference cycles: their tensors go only when the cycles are collected
        torch = sys.modules.get("torch")  # never import torch just to free memory that it cannot hold
        if torch is not None and device.startswith("cuda") and torch.cuda.is_available():
            torch.cuda.empty_cache()  # give the allocator's cached blocks back to the driver


def _cuda_info(device: str) -> tuple[int, int] | None:
    if not device.startswith("cuda"):
        return None
    import torch

    if not torch.cuda.is_available():
        return None
    where = torch.device(device)
    free, total = torch.cuda.mem_get_info(where)
    # Blocks PyTorch has cached but not handed out are free for the next model too (the driver counts them used).
    cached = torch.cuda.memory_reserved(where) - torch.cuda.memory_allocated(where)
    return int(free + cached), int(total)


def close_model(model: Any) -> None:
    """Run a model's own release hook before its last reference goes: ``close()`` (engines, our wrappers) or,
    for a diffusers pipeline, ``remove_all_hooks()`` (the CPU-offload hooks hold references to its modules)."""
    for hook in ("close", "remove_all_hooks"):
        method = getattr(model, hook, None)
        if callable(method):
            method()
            return
