"""One shard's pieces as plain functions: load inputs, plan them in one batch, verify, build output rows.

The edit flow (``flows/edit_catalogue.py``) runs them as its tasks, and runs each brick group of the executor's
waves as its own task; tests and benchmarks run a shard through that flow, the one shard path.
"""

from __future__ import annotations

import functools
import json
import platform
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import numpy as np
import pyarrow as pa

from legoedit_core.bricks.toolset import Toolset
from legoedit_core.data.datasets import InputRow, Shard
from legoedit_core.data.images import (
    ImageDecodeError,
    decode_image,
    decode_mask,
    encode_png,
    image_size,
    output_name,
)
from legoedit_core.data.inputs import InputReader, RefusedInput
from legoedit_core.data.memory import MemoryBudgetExceeded, ShardMemory, SliceFull, TooLargeForShare
from legoedit_core.data.records import storable
from legoedit_core.data.rows import empty_row, image_struct, rows_to_table
from legoedit_core.executor import EditItem, EditResult, NodeTrace, input_keys
from legoedit_core.pipeline.verify import round_notes
from legoedit_core.planners.base import Planner, PlanRequest, PlanResult
from legoedit_core.planners.replan import Verified, VerifyRun
from legoedit_core.settings.planner import PlannerSettings
from legoedit_core.workflow import parse_workflow


@dataclass
class LoadedRow:
    """An input row with its pixels, or with the reason it is bad input. ``source`` keeps the bytes as read."""

    row: InputRow
    image: np.ndarray | None = None
    mask: np.ndarray | None = None
    source: bytes | None = None
    keys: dict[str, str] | None = None  # the node cache's content keys of image and mask, when asked for

    @property
    def usable(self) -> bool:
        return self.row.error is None


def load_row(row: InputRow, reader: InputReader, memory: ShardMemory | None = None) -> LoadedRow:
    """Read and decode one row's image and mask through the dataset's confined ``reader``. Every per-image limit
    (bytes while reading, pixels from the header) is checked first; then, with ``memory``, the image's decoded size
    is admitted (``SliceFull``: the row waits for the shard's next slice, untouched); only then is it decoded.

    A missing, refused, corrupt or too large file (an image that alone exceeds the shard's memory share included)
    marks the row bad input (and its ``source`` stays None unless the image decoded: a bad row never carries bytes
    that are not an image); a failing dataset store raises ``StorageError`` (the shard fails and is retried by a
    rerun).
    """
    loaded = LoadedRow(row)
    _check_reference_workflow(row)
    if row.error is not None:
        return loaded
    try:
        assert row.image is not None
        data = reader.read(row.image)
        size = image_size(data)
        if memory is not None and size is not None:
            memory.admit(*size)
        loaded.image = decode_image(data)
        loaded.source = data
        if row.mask is not None:
            loaded.mask = decode_mask(reader.read(row.mask), size=(loaded.image.shape[1], loaded.image.shape[0]))
    except FileNotFoundError as error:
        row.error = f"file not found: {error.filename or error}"
    except RefusedInput as error:
        row.error = str(error)
    except (ImageDecodeError, TooLargeForShare) as error:
        row.error = f"{_name(row.mask if loaded.image is not None else row.image)}: {error}"
    return loaded


def _check_reference_workflow(row: InputRow) -> None:
    """Mark the row bad input when its ground truth's ``reference_workflow`` does not parse: scoring (rollouts,
    training) reads it later, and a row's data must not fail a later stage."""
    reference = row.ground_truth.get("reference_workflow")
    if row.error is not None or not reference:
        return
    try:
        parse_workflow(reference)
    except (ValueError, TypeError, AttributeError) as error:  # WorkflowError is a ValueError
        row.error = f"reference_workflow does not parse: {storable(str(error))[:300]}"


def _name(value: str | bytes | None) -> str:
    return value if isinstance(value, str) else "embedded image"


@dataclass
class PreparedShard:
    """A slice of a shard's rows (all of them when they fit its memory share) with their pixels and plans: what
    the executor's waves start from. Its rows are the dataset's ``start`` to ``stop``."""

    shard: Shard
    rows: list[LoadedRow]
    plans: list[PlanResult | None]  # None for bad input
    planner: str
    verified: list[Verified | None] | None = None  # every verify round of each row (planner.verify_rounds > 0)
    start: int = -1  # the dataset's index of its first row; -1: the shard's start

    def __post_init__(self) -> None:
        self.start = self.shard.start if self.start < 0 else self.start

    @property
    def stop(self) -> int:
        """The dataset's index after its last row: where the shard's next slice starts."""
        return self.start + len(self.rows)

    @property
    def last(self) -> bool:
        """Whether this slice ends its shard."""
        return self.stop >= self.shard.stop
    kept: list[EditResult] | None = None  # the kept rounds' edits (``keep_verified``): already run, not run again

    def edit_items(self) -> tuple[list[EditItem], list[int]]:
        """The items to edit (rows with a valid plan) and their positions in ``rows``."""
        items, positions = [], []
        for position, (loaded, plan) in enumerate(zip(self.rows, self.plans, strict=True)):
            if plan is not None and plan.ok:
                assert plan.workflow is not None and loaded.image is not None
                items.append(EditItem(loaded.row.id, loaded.image, plan.workflow, loaded.mask, loaded.row.seed,
                                      loaded.keys))
                positions.append(position)
        return items, positions


def _plan_requests(loaded: Sequence[LoadedRow]) -> list[PlanRequest]:
    return [PlanRequest(r.row.id, r.image, r.row.instruction, has_mask=r.mask is not None, seed=r.row.seed)
            for r in loaded if r.usable]


def prepare_shard(rows: Sequence[InputRow], shard: Shard, planner: Planner, reader: InputReader,
                  content_keys: bool = False, memory_budget: int | None = None,
                  start: int | None = None) -> PreparedShard:
    """Load the rows of a shard from ``start`` on (its first row by default; ``rows`` are the dataset's rows from
    there to the shard's end) through the dataset's ``reader``, as many as fit ``memory_budget``, then plan all
    usable ones in one batched Builder call. The slice ends where a row's image does not fit beside the ones before
    it (``PreparedShard.stop``): the caller prepares the rest as the shard's next slice. Without ``start`` the
    shard is taken whole: rows that do not fit together are a fault (``MemoryBudgetExceeded``).

    ``content_keys`` also hashes each usable row's pixels for the node cache, here where they are decoded.
    ``memory_budget`` is the bytes of decoded pixels the shard may hold (``PipelineSettings.shard_memory``).
    """
    memory = ShardMemory(shard.index, memory_budget)
    loaded: list[LoadedRow] = []
    for row in rows:
        try:
            loaded.append(load_row(row, reader, memory))
        except SliceFull:
            if start is None:
                raise MemoryBudgetExceeded(
                    f"shard {shard.index}: its images do not fit together in its share of the memory budget, "
                    f"{memory_budget / 2**20:.0f} MiB (from row {row.index}): use a smaller pipeline.shard_size for "
                    "this output, or a larger pipeline.memory_budget_bytes on a machine with more memory") from None
            break
    for row in loaded:
        if content_keys and row.image is not None:
            row.keys = input_keys(row.image, row.mask)
    requests = _plan_requests(loaded)
    planned = iter(planner.plan_batch(requests) if requests else [])
    plans = [next(planned) if r.usable else None for r in loaded]
    return PreparedShard(shard, loaded, plans, planner.name,
                         start=shard.start if start is None else start)


def start_verify(prepared: PreparedShard, settings: PlannerSettings) -> VerifyRun:
    """The verify rounds of a planned shard's usable rows (``planner.verify_rounds``), round 0 on their plans."""
    usable = [r for r in prepared.rows if r.usable]
    return VerifyRun.start(_plan_requests(usable), [p for p in prepared.plans if p is not None],
                           settings.verify_rounds, settings.accept_score, [r.mask for r in usable])


def keep_verified(prepared: PreparedShard, run: VerifyRun) -> list[EditResult]:
    """Give each usable row its kept round's plan and every round's record, and return the kept rounds' edits, one
    per item of ``prepared.edit_items()``: the row's result is the edit the verification already ran."""
    rounds = iter(run.verified)
    prepared.verified = [next(rounds) if r.usable else None for r in prepared.rows]
    prepared.plans = [v.best.plan if v is not None else None for v in prepared.verified]
    kept = [prepared.verified[position].best.edit for position in prepared.edit_items()[1]]  # type: ignore[union-attr]
    assert all(edit is not None for edit in kept)  # a round with a valid plan was executed
    prepared.kept = kept  # type: ignore[assignment]
    return prepared.kept


def verify_trace(verified: Verified | None) -> list[dict[str, Any]]:
    """The trace entries of a row's verify rounds: one ``VERIFY`` entry per round (tools, score, critique, kept or
    not), followed by the nodes of each round that was not kept; the kept round's nodes are the row's own trace."""
    if verified is None:
        return []
    entries = []
    for index, (round_, line) in enumerate(zip(verified.rounds, round_notes(verified), strict=True)):
        entries.append(vars(NodeTrace(f"verify_{index}", "VERIFY", None, 0.0, note=line)))
        if round_ is not verified.best and round_.edit is not None:
            entries += [vars(node) | {"note": f"verify round {index} (not kept)"} for node in round_.edit.trace]
    return entries


@functools.cache
def package_versions() -> tuple[tuple[str, str], ...]:
    """The installed versions of the packages that shape a row, read once per process (each lookup parses the
    package's metadata file, a few milliseconds a shard when read for every shard)."""
    found = []
    for package in ("legoedit", "numpy", "pillow", "opencv-python-headless", "torch", "diffusers", "transformers"):
        try:
            found.append((package, version(package)))
        except PackageNotFoundError:
            continue
    return tuple(found)


def versions(toolset: Toolset) -> dict[str, Any]:
    """What produced a row: package versions and, for each available brick, the backend the run pinned (name,
    version, resource) with the brick's settings (model source, dtype, device, ...)."""
    bricks = {}
    for spec in toolset.available_specs():
        backend = toolset.backend_class(spec.name)
        bricks[spec.name] = {"backend": backend.name, "version": backend.version, "resource": backend.resource,
                             "settings": toolset.config.brick(spec.name).backend_settings()}
    return {"python": platform.python_version(), "packages": dict(package_versions()), "bricks": bricks}


def build_rows(prepared: PreparedShard, results: Sequence[EditResult], toolset: Toolset) -> pa.Table:
    """One output row per input row of the shard, in input order."""
    _, positions = prepared.edit_items()
    by_position = dict(zip(positions, results, strict=True))
    shared = {"shard": prepared.shard.index, "planner": prepared.planner,
              "versions": json.dumps(versions(toolset), sort_keys=True)}
    rows = []
    for position, (loaded, plan) in enumerate(zip(prepared.rows, prepared.plans, strict=True)):
        row = loaded.row
        common = dict(shared, instruction=row.instruction, seed=row.seed,
                      source_image=image_struct(loaded.source, row.image if isinstance(row.image, str) else None),
                      ground_truth=json.dumps(row.ground_truth, default=str) if row.ground_truth else None)
        if plan is None:
            rows.append(empty_row(row.id, "bad_input", error=row.error, **common))
            continue
        common.update(reasoning=plan.reasoning or None, plan_attempts=len(plan.attempts),
                      workflow=plan.workflow.model_dump_json() if plan.workflow is not None else None)
        result = by_position.get(position)
        if result is None:
            rows.append(empty_row(row.id, "invalid_plan", error=plan.error, **common))
            continue
        edited = image_struct(encode_png(result.image), f"{row.id}.png") if result.image is not None else None
        several = [image_struct(encode_png(image), output_name(f"{row.id}.png", index))
                   for index, image in enumerate(result.images)] if len(result.images) > 1 else None
        rounds = verify_trace(prepared.verified[position]) if prepared.verified is not None else []
        rows.append(empty_row(row.id, result.status, error=result.error, edited_image=edited, edited_images=several,
                              trace=rounds + [vars(t) for t in result.trace],
                              seconds=sum(t.seconds for t in result.trace), **common))
    return rows_to_table(rows)
