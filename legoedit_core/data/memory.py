"""Memory admitted before it is spent: pixel budgets, and memory exhaustion told apart from an item's error.

Decoded pixels are what a catalogue run holds most of (an 8192x8192 RGB image is 201 MB, while its PNG may be
200 KB), so memory is admitted in pixels, from image headers, before anything is decoded or computed:

- a shard admits each row's decoded size before decoding it (``ShardMemory``), against its share of
  ``pipeline.memory_budget_bytes``. Memory decides how many rows a shard holds at once, not the shard size: rows
  that do not fit beside the ones already admitted wait for the shard's next slice (``SliceFull``), and the shard
  goes through plan, edit and row building slice by slice and is still written and committed as one part. Only an
  image that alone needs more than the share is refused, as its row's ``bad_input`` (``TooLargeForShare``);
- the executor admits each node's outputs before it runs (per image, per item, per batched call; see
  ``executor.py``).

Every shard in flight holds at most its share, so the shards in flight together hold at most the budget. A caller
that takes a shard whole (the evaluate flow) gets ``MemoryBudgetExceeded`` (a fault) instead of a second slice.

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
    """A caller that takes a shard whole (``evaluate``) met images that do not fit its share together."""


class SliceFull(Exception):
    """The image does not fit beside the rows the shard's slice holds already: it starts the next slice."""


class TooLargeForShare(ValueError):
    """One image needs more memory, decoded, than a whole shard's share of the budget: its row's ``bad_input``."""


def decoded_bytes(width: int, height: int) -> int:
    """What one input image of ``width`` x ``height`` is admitted as: its pixels with room for its results."""
    return width * height * RGB_BYTES * COPIES_PER_INPUT


class ShardMemory:
    """The decoded pixels one slice of a shard may hold: ``limit`` bytes, admitted row by row before decoding."""

    def __init__(self, shard: int, limit: int | None) -> None:
        self.shard = shard
        self.limit = limit
        self.held = 0

    def admit(self, width: int, height: int) -> None:
        """Count an image of ``width`` x ``height`` against the share: ``SliceFull`` when it does not fit beside
        what is held (the next slice takes it), ``TooLargeForShare`` when it would not fit alone."""
        needed = decoded_bytes(width, height)
        if self.limit is not None and needed > self.limit:
            raise TooLargeForShare(
                f"image is {width}x{height}: decoded, with room for its results, it needs {needed / 2**20:.0f} MiB, "
                f"more than a shard's share of the memory budget, {self.limit / 2**20:.0f} MiB "
                "(pipeline.memory_budget_bytes / pipeline.max_concurrent_shards): raise pipeline.memory_budget_bytes "
                "on a machine with that much more memory, or lower pipeline.max_concurrent_shards (each shard's share "
                "grows) for this image to be edited")
        if self.limit is not None and self.held and self.held + needed > self.limit:
            raise SliceFull
        self.held += needed
