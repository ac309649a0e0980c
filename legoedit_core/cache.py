"""Content-addressed node cache (ComfyUI style): a node's outputs keyed by what determines them.

The key covers the tool, backend and versions, the content keys of its input values, its literals and its seed,
so a hit is exactly the result the brick would recompute. The disk cache stores arrays as ``.npy`` without
pickle and everything else as JSON: nothing executable is ever read back.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any, Protocol

import numpy as np


class NodeCache(Protocol):
    def get(self, key: str) -> dict[str, Any] | None: ...

    def put(self, key: str, outputs: dict[str, Any]) -> None: ...


def array_key(array: np.ndarray) -> str:
    """Content key of an array: its dtype, shape and bytes."""
    digest = hashlib.sha256(f"{array.dtype}{array.shape}".encode())
    digest.update(np.ascontiguousarray(array).data)
    return digest.hexdigest()[:32]


def call_key(parts: dict[str, Any]) -> str:
    """Content key of a node call from JSON-able parts (tool, backend, input keys, literals, seed)."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:32]


class MemoryCache:
    """An in-process LRU cache holding at most ``max_entries`` node results."""

    def __init__(self, max_entries: int = 256) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> dict[str, Any] | None:
        with self._lock:
            if key not in self._entries:
                return None
            self._entries.move_to_end(key)
            return self._entries[key]

    def put(self, key: str, outputs: dict[str, Any]) -> None:
        with self._lock:
            self._entries[key] = outputs
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)


class DiskCache:
    """A directory of results, one folder per key; writes are atomic (temp folder, then rename)."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def get(self, key: str) -> dict[str, Any] | None:
        folder = self.root / key
        index = folder / "outputs.json"
        if not index.exists():
            return None
        outputs = json.loads(index.read_text())
        for port in outputs.pop("__arrays__", []):
            outputs[port] = np.load(folder / f"{port}.npy", allow_pickle=False)
        for port in outputs.pop("__tuples__", []):
            outputs[port] = tuple(outputs[port])
        return outputs

    def put(self, key: str, outputs: dict[str, Any]) -> None:
        folder = self.root / key
        if folder.exists():
            return
        staging = Path(tempfile.mkdtemp(dir=self.root, prefix=".tmp-"))
        plain: dict[str, Any] = {"__arrays__": [], "__tuples__": []}
        for port, value in outputs.items():
            if isinstance(value, np.ndarray):
                np.save(staging / f"{port}.npy", value, allow_pickle=False)
                plain["__arrays__"].append(port)
            else:
                if isinstance(value, tuple):
                    plain["__tuples__"].append(port)
                plain[port] = value
        (staging / "outputs.json").write_text(json.dumps(plain))
        try:
            staging.rename(folder)
        except OSError:  # another process stored the same key first
            for child in staging.iterdir():
                child.unlink()
            staging.rmdir()
