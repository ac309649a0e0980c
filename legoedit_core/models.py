"""The model manager: every model is loaded once per process, kept while it fits a memory budget, LRU-evicted after.

Models are addressed by a ``ModelKey`` (kind, hub id or local path, dtype, device, adapters, offload). The kind
names a ``from_pretrained`` class of diffusers or transformers (``"diffusers.FluxFillPipeline"``); the id or path
always comes from the config. torch and the model libraries are imported only when a model is first loaded.
"""

from __future__ import annotations

import importlib
import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

LIBRARIES = ("diffusers", "transformers")
BUDGET_ENV = "LEGOEDIT_MODEL_BUDGET_GB"


@dataclass(frozen=True)
class ModelKey:
    """Everything that makes two loaded models different. ``adapters`` are (name, path, weight) LoRA triples."""

    kind: str
    source: str
    dtype: str = "float32"
    device: str = "cpu"
    adapters: tuple[tuple[str, str, float], ...] = ()
    cpu_offload: bool = False

    def __str__(self) -> str:
        return f"{self.kind}({self.source}, {self.dtype}, {self.device})"


Loader = Callable[[ModelKey], Any]


def from_pretrained(key: ModelKey) -> Any:
    """Load ``key`` with its class's ``from_pretrained``, apply LoRA adapters, then move it (or offload it)."""
    library, _, class_name = key.kind.partition(".")
    if library not in LIBRARIES:
        raise ValueError(f"model kind {key.kind!r} is not a class of {' or '.join(LIBRARIES)}")
    cls = getattr(importlib.import_module(library), class_name)
    if not hasattr(cls, "to"):  # processors and tokenizers take no dtype and live on the CPU
        return cls.from_pretrained(key.source)
    import torch

    model = cls.from_pretrained(key.source, dtype=getattr(torch, key.dtype))
    if key.adapters:
        for name, path, _ in key.adapters:
            model.load_lora_weights(path, adapter_name=name)
        model.set_adapters([a[0] for a in key.adapters], adapter_weights=[a[2] for a in key.adapters])
    if key.cpu_offload:
        model.enable_model_cpu_offload(device=key.device)
    else:
        model = model.to(key.device)
    if hasattr(model, "eval"):
        model.eval()
    return model


def estimate_bytes(model: Any) -> int:
    """Bytes held by the parameters and buffers of a model, or of every module of a pipeline."""
    modules = list(getattr(model, "components", {}).values()) if hasattr(model, "components") else [model]
    total = 0
    for module in modules:
        for tensor in [*_tensors(module, "parameters"), *_tensors(module, "buffers")]:
            total += tensor.numel() * tensor.element_size()
    return total


def _tensors(module: Any, which: str) -> list[Any]:
    method = getattr(module, which, None)
    return list(method()) if callable(method) else []


@dataclass
class _Entry:
    model: Any
    size: int


class ModelManager:
    """Loads each key once (even when several threads ask at once) and evicts least-recently-used beyond budget.

    ``budget_bytes`` None means no limit. The model just loaded is never evicted, even if it alone exceeds the
    budget. ``loads`` counts calls to the loader, for tests and benchmarks.
    """

    _default: ModelManager | None = None
    _default_lock = threading.Lock()

    def __init__(self, budget_bytes: int | None = None, loader: Loader = from_pretrained,
                 measure: Callable[[Any], int] = estimate_bytes) -> None:
        self.budget_bytes = budget_bytes
        self.loader = loader
        self.measure = measure
        self.loads = 0
        self.evictions = 0
        self._entries: OrderedDict[ModelKey, _Entry] = OrderedDict()
        self._lock = threading.Lock()
        self._key_locks: dict[ModelKey, threading.Lock] = {}

    @classmethod
    def default(cls) -> ModelManager:
        """The process-wide manager; its budget comes from ``LEGOEDIT_MODEL_BUDGET_GB`` (unlimited when unset)."""
        with cls._default_lock:
            if cls._default is None:
                budget = os.environ.get(BUDGET_ENV)
                cls._default = cls(int(float(budget) * 2**30) if budget else None)
            return cls._default

    @classmethod
    def set_default(cls, manager: ModelManager | None) -> ModelManager | None:
        """Replace the process-wide manager (None: a fresh one on next use); returns the previous one."""
        with cls._default_lock:
            previous, cls._default = cls._default, manager
            return previous

    def get(self, key: ModelKey) -> Any:
        """The model for ``key``, loading it on first use."""
        with self._lock:
            entry = self._touch(key)
            if entry is not None:
                return entry.model
            key_lock = self._key_locks.setdefault(key, threading.Lock())
        with key_lock:  # one loader per key; other threads asking for it wait here, then find it loaded
            with self._lock:
                entry = self._touch(key)
                if entry is not None:
                    return entry.model
            model = self.loader(key)
            size = self.measure(model)
            with self._lock:
                self.loads += 1
                self._entries[key] = _Entry(model, size)
                self._evict_beyond_budget(keep=key)
            return model

    def loaded(self) -> list[ModelKey]:
        """Keys currently held, least recently used first."""
        with self._lock:
            return list(self._entries)

    def used_bytes(self) -> int:
        with self._lock:
            return sum(e.size for e in self._entries.values())

    def clear(self) -> None:
        """Drop every model (and free accelerator memory if torch is in use)."""
        with self._lock:
            self._entries.clear()
        _free_accelerator_memory()

    def _touch(self, key: ModelKey) -> _Entry | None:
        entry = self._entries.get(key)
        if entry is not None:
            self._entries.move_to_end(key)
        return entry

    def _evict_beyond_budget(self, keep: ModelKey) -> None:
        if self.budget_bytes is None:
            return
        evicted = False
        while sum(e.size for e in self._entries.values()) > self.budget_bytes:
            victim = next((k for k in self._entries if k != keep), None)
            if victim is None:
                break
            del self._entries[victim]
            self.evictions += 1
            evicted = True
        if evicted:
            _free_accelerator_memory()


def _free_accelerator_memory() -> None:
    import sys

    torch = sys.modules.get("torch")  # never import torch just to free memory that it cannot hold
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()
