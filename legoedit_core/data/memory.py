"""Memory admitted before it is spent: pixel budgets, and memory exhaustion told apart from an item's error.

Decoded pixels are what a catalogue run holds most of (an 8192x8192 RGB image is 201 MB, while its PNG may be
200 KB), so memory is admitted in pixels, from image headers, before anything is decoded or computed:

- a shard admits each row's decoded size before decoding it (``ShardMemory``): a shard whose images do not fit its
  share of ``pipeline.memory_budget_bytes`` is a fault (``MemoryBudgetExceeded``: not committed, nothing written),
  never a row status;
- the executor admits each node's outputs before it runs (per image, per item, per batched call; see
  ``executor.py``).

Running out of memory anyway (``MemoryError``, OpenCV's "Insufficient memory") is a fault of the machinery:
``faults.run_fitting_memory`` (the one owner) halves the failing chunk and then raises ``MemoryExhausted``
(defined there, named here too), so the shard is not committed and a rerun with more memory does it.
"""

from __future__ import annotations

from legoedit_core.faults import MemoryExhausted

RGB_BYTES = 3  # bytes per pixel of a decoded image (masks take one: counting three keeps the bound safe)
# An image, its intermediate results and its output, and the encoder's buffers: what one decoded input costs.
COPIES_PER_INPUT = 4


class MemoryBudgetExceeded(MemoryExhausted):
    """A shard's images do not fit its share of the memory budget (checked from headers, before decoding)."""


class ShardMemory:
    """The decoded pixels one shard may hold: ``limit`` bytes, admitted row by row before decoding."""

    def __init__(self, shard: int, limit: int | None) -> None:
        self.shard = shard
        self.limit = limit
        self.held = 0

    def admit(self, width: int, height: int, what: str) -> None:
        """Count an image of ``width`` x ``height`` against the shard's share, or raise ``MemoryBudgetExceeded``."""
        self.held += width * height * RGB_BYTES * COPIES_PER_INPUT
        if self.limit is not None and self.held > self.limit:
            raise MemoryBudgetExceeded(
                f"shard {self.shard}: its images need {self.held / 2**20:.0f} MiB decoded (with room for results; "
                f"{what} is {width}x{height}), above its share of the memory budget, {self.limit / 2**20:.0f} MiB "
                "(pipeline.memory_budget_bytes / pipeline.max_concurrent_shards): raise the budget on a machine "
                "with more memory, or run fewer shards at once (nothing of this shard was written)")
