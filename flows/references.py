"""Images as storage references in cluster task arguments.

On Dask, a task's arguments travel inside the task graph: a shard's images (8 images at 512 px are 6 MiB) made
"Sending large graph" warnings and a scheduler that holds every shard's pixels. Wrapped in ``ByReference``, an
argument pickles (as Dask pickles its graph) with each large array written once to the run's scratch folder under
the output (``.scratch/<content hash>.npy``) and replaced by its name; unpickling on the worker reads them back, so
a task sees the same values as on threads. The flow removes the scratch folder when the run ends.
"""

from __future__ import annotations

import hashlib
import io
import pickle
import threading
from concurrent.futures import Future
from typing import Any

import numpy as np

from legoedit_core.data.storage import Storage

SCRATCH = ".scratch"
MIN_BYTES = 16 * 1024  # smaller arrays (masks of thumbnails, vectors) stay inline


class ScratchStore:
    """Arrays by content hash in a run's scratch folder. Each is written once per process: the first thread to put
    an array writes it, and a thread putting the same array meanwhile waits for that write, so no reference leaves
    the process before its file is complete."""

    def __init__(self, root: str, storage_options: dict[str, Any] | None = None) -> None:
        self.root, self.storage_options = root, dict(storage_options or {})
        self.storage = Storage(root, self.storage_options)
        self._writes: dict[str, Future] = {}
        self._lock = threading.Lock()

    def put(self, array: np.ndarray) -> str:
        """Store ``array`` (once) and return its name."""
        buffer = io.BytesIO()
        np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
        data = buffer.getvalue()
        name = f"{hashlib.sha256(data).hexdigest()[:32]}.npy"
        with self._lock:
            write = self._writes.get(name)
            mine = write is None
            if mine:
                write = self._writes[name] = Future()
        if not mine:
            write.result()  # the first writer's outcome: done, or its error
            return name
        try:
            self.storage.write_bytes(data, SCRATCH, name)
        except BaseException as error:
            with self._lock:
                del self._writes[name]  # a later put tries again
            write.set_exception(error)
            raise
        write.set_result(None)
        return name

    def get(self, name: str) -> np.ndarray:
        return np.load(io.BytesIO(self.storage.read_bytes(SCRATCH, name)), allow_pickle=False)

    def clear(self) -> None:
        for uri in self.storage.glob(f"{SCRATCH}/*.npy"):
            self.storage.delete(uri)
        with self._lock:
            self._writes.clear()


class ByReference:
    """``value``, pickling with its large arrays as references into ``store``."""

    def __init__(self, value: Any, store: ScratchStore) -> None:
        self.value, self.store = value, store

    def __reduce__(self):
        buffer = io.BytesIO()
        _Referencing(buffer, self.store).dump(self.value)
        return _restore, (self.store.root, self.store.storage_options, buffer.getvalue())


class _Referencing(pickle.Pickler):
    def __init__(self, file: io.BytesIO, store: ScratchStore) -> None:
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self.store = store

    def persistent_id(self, obj: Any) -> str | None:
        if type(obj) is np.ndarray and obj.nbytes >= MIN_BYTES and obj.dtype != object:
            return self.store.put(obj)
        return None


class _Resolving(pickle.Unpickler):
    def __init__(self, file: io.BytesIO, store: ScratchStore) -> None:
        super().__init__(file)
        self.store = store

    def persistent_load(self, name: str) -> np.ndarray:
        return self.store.get(name)


def _restore(root: str, storage_options: dict[str, Any], payload: bytes) -> Any:
    # the payload is what this run's flow pickled (as Dask's own graph is); the arrays load with allow_pickle off
    return _Resolving(io.BytesIO(payload), ScratchStore(root, storage_options)).load()
