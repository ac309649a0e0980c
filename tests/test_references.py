"""Images by reference for cluster task arguments (``flows/references.py``): the round trip, and the scratch store
shared by the flow's threads."""

from __future__ import annotations

import pickle
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from flows.references import MIN_BYTES, ByReference, ScratchStore
from legoedit_core.data.storage import Storage


def test_an_argument_pickles_with_its_images_as_references_and_loads_back_whole(tmp_path):
    images = [np.random.default_rng(i).integers(0, 255, (512, 512, 3), dtype=np.uint8) for i in range(8)]
    value = {"images": images, "small": np.zeros(4), "text": "flip it"}
    payload = pickle.dumps(ByReference(value, ScratchStore(str(tmp_path))))
    assert len(payload) < 2**16 < sum(image.nbytes for image in images)
    assert len(list((tmp_path / ".scratch").glob("*.npy"))) == 8
    loaded = pickle.loads(payload)  # noqa: S301 - the test's own payload
    assert all(np.array_equal(a, b) for a, b in zip(loaded["images"], images, strict=True))
    assert loaded["text"] == "flip it" and loaded["small"].nbytes < MIN_BYTES


def test_threads_putting_the_same_images_write_each_once_and_never_hand_out_an_unwritten_name(tmp_path,
                                                                                            monkeypatch):
    store = ScratchStore(str(tmp_path))
    images = [np.full((64, 128, 3), i, dtype=np.uint8) for i in range(4)]
    writes: list[str] = []
    lock = threading.Lock()
    write_bytes = Storage.write_bytes

    def slow_write(self, data, *parts):
        time.sleep(0.05)  # a store that takes its time: the other threads must wait for this write
        with lock:
            writes.append(parts[-1])
        return write_bytes(self, data, *parts)

    monkeypatch.setattr(Storage, "write_bytes", slow_write)

    def put_then_read(index: int) -> bool:
        image = images[index % len(images)]
        return np.array_equal(store.get(store.put(image)), image)  # readable as soon as put returns

    with ThreadPoolExecutor(8) as pool:
        assert all(pool.map(put_then_read, range(32)))
    assert sorted(writes) == sorted(set(writes)) and len(writes) == len(images)
    store.clear()
    assert not list((tmp_path / ".scratch").glob("*.npy"))
