"""Cross-item batching for diffusers pipelines: size buckets, per-item seeded generators, OOM halving.

Items whose working size (and shared call arguments, e.g. strength) agree go to the pipeline in one call with a
list of per-item ``torch.Generator``s; an out-of-memory error halves the batch and retries, down to one item.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from legoedit_core.bricks.spec import BrickError


@dataclass
class Job:
    """One item of a pipeline call: per-item arguments (``prompt``, ``image``...) already at the working size."""

    size: tuple[int, int]
    seed: int
    args: dict[str, Any]
    shared: tuple[tuple[str, Hashable], ...] = field(default_factory=tuple)

    @property
    def group(self) -> tuple[Any, ...]:
        return (self.size, self.shared)


PipelineCall = Callable[[list[Job], list[Any]], list[Image.Image]]


def working_size(width: int, height: int, multiple: int, max_area: int) -> tuple[int, int]:
    """The size an image is generated at: its aspect ratio, at most ``max_area`` pixels, sides a ``multiple``."""
    scale = min(1.0, math.sqrt(max_area / (width * height)))
    return (max(multiple, round(width * scale / multiple) * multiple),
            max(multiple, round(height * scale / multiple) * multiple))


def generators(seeds: Sequence[int], device: str) -> list[Any]:
    """One generator per item, seeded with that item's seed: an item's noise does not depend on its batch."""
    import torch

    return [torch.Generator(device).manual_seed(seed) for seed in seeds]


def run_grouped(jobs: Sequence[Job], call: PipelineCall, device: str,
                max_batch: int | None = None) -> list[Image.Image | BrickError]:
    """Run every job through ``call``, one call per size group (split into chunks of ``max_batch``)."""
    results: list[Image.Image | BrickError | None] = [None] * len(jobs)
    groups: dict[tuple[Any, ...], list[int]] = {}
    for index, job in enumerate(jobs):
        groups.setdefault(job.group, []).append(index)
    for indices in groups.values():
        for index, output in zip(indices, _run_halving([jobs[i] for i in indices], call, device, max_batch),
                                 strict=True):
            results[index] = output
    return results  # type: ignore[return-value]


def _run_halving(jobs: list[Job], call: PipelineCall, device: str,
                 max_batch: int | None) -> list[Image.Image | BrickError]:
    import torch

    outputs: list[Image.Image | BrickError] = []
    batch = min(len(jobs), max_batch or len(jobs))
    start = 0
    while start < len(jobs):
        chunk = jobs[start : start + batch]
        try:
            images = call(chunk, generators([j.seed for j in chunk], device))
        except torch.OutOfMemoryError:
            _empty_cache(torch)
            if batch > 1:
                batch = max(1, batch // 2)
                continue
            outputs.append(BrickError("out of accelerator memory even for a batch of one"))
            start += 1
            continue
        except Exception as error:  # a library error on this chunk fails its items, not the whole group
            outputs.extend([BrickError(f"{type(error).__name__}: {error}")] * len(chunk))
            start += len(chunk)
            continue
        outputs.extend(images)
        start += len(chunk)
    return outputs


def _empty_cache(torch: Any) -> None:
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
