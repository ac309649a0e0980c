"""Cross-item batching for diffusers pipelines: size buckets, per-item seeded generators.

Items whose working size (and shared call arguments, e.g. strength) agree go to the pipeline in one call (chunks of
at most ``max_batch``) with a list of per-item ``torch.Generator``s. Running out of memory is not handled here: it
raises out of ``run_batch`` to the executor, whose one owner (``faults.run_fitting_memory``) halves the batch.
"""

from __future__ import annotations

import math
from abc import abstractmethod
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

import numpy as np
from PIL import Image

from legoedit_core.bricks.models.base import ModelBackend
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


T = TypeVar("T")
R = TypeVar("R")
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
    """Run every job through ``call``, one call per size group, each item with a generator seeded by its seed."""
    results: list[Image.Image | BrickError | None] = [None] * len(jobs)
    groups: dict[tuple[Any, ...], list[int]] = {}
    for index, job in enumerate(jobs):
        groups.setdefault(job.group, []).append(index)
    for indices in groups.values():
        group = [jobs[i] for i in indices]
        outputs = in_chunks(group, lambda chunk: call(chunk, generators([j.seed for j in chunk], device)),
                            max_batch)
        for index, output in zip(indices, outputs, strict=True):
            results[index] = output
    return results  # type: ignore[return-value]


def in_chunks(items: Sequence[T], call: Callable[[list[T]], list[R]], max_batch: int | None = None) -> list[R]:
    """``call`` on consecutive chunks of at most ``max_batch`` items (all at once without a limit)."""
    size = max(1, max_batch or len(items))
    return [output for start in range(0, len(items), size) for output in call(list(items[start : start + size]))]


@dataclass
class Prepared:
    """A job for the pipeline and how to turn its output back into the brick's image."""

    job: Job
    finish: Callable[[Image.Image], np.ndarray]


class PipelineBackend(ModelBackend):
    """A brick run on one diffusers pipeline ``kind``: prepare each item, run size groups batched, finish each.

    The pipeline is used exclusively for the call, and the jobs of other threads waiting for the same backend are
    run in the same call (each job keeps its own seeded generator).
    """

    kind: ClassVar[str]

    def run_batch(self, inputs: list[dict[str, Any]], seeds: list[int]) -> list[dict[str, Any] | BrickError]:
        results: list[dict[str, Any] | BrickError | None] = [None] * len(inputs)
        prepared: dict[int, Prepared] = {}
        for index, (item, seed) in enumerate(zip(inputs, seeds, strict=True)):
            try:
                prepared[index] = self.prepare(item, seed)
            except BrickError as error:
                results[index] = error
        if prepared:
            generator_device = self.generator_device()

            def work(pipe: Any, jobs: list[Job]) -> list[Image.Image | BrickError]:
                return run_grouped(jobs, lambda chunk, gens: self.call(pipe, chunk, gens), generator_device,
                                   self.options.get("max_batch"))

            outputs = self.run_model(self.kind, work, [p.job for p in prepared.values()])
            for index, output in zip(prepared, outputs, strict=True):
                is_error = isinstance(output, BrickError)
                results[index] = output if is_error else {"image": prepared[index].finish(output)}
        return results  # type: ignore[return-value]

    def generator_device(self) -> str:
        """Where each item's noise is drawn: ``generator_device`` when set (``cpu`` gives an item the same noise on
        every device: what the GPU check compares), else the pipeline's device (the CPU under offload)."""
        if self.options.get("generator_device"):
            return str(self.options["generator_device"])
        return "cpu" if self.options["cpu_offload"] else str(self.options["device"])

    def model_group(self) -> tuple[str, ...]:
        return (str(self.model_key(self.kind)), *(adapter.name for adapter in self.adapters()))

    @abstractmethod
    def prepare(self, item: dict[str, Any], seed: int) -> Prepared:
        """The pipeline job for one item; raise BrickError for bad input."""

    @abstractmethod
    def call(self, pipe: Any, jobs: list[Job], generators: list[Any]) -> list[Image.Image]:
        """One pipeline call for jobs of one size group, one output image per job."""


def resized(array: np.ndarray, size: tuple[int, int]) -> Image.Image:
    """An image or mask array as a PIL image of ``size`` (width, height)."""
    picture = Image.fromarray(array)
    return picture if picture.size == size else picture.resize(size, Image.Resampling.LANCZOS)
