"""The output row schema (DESIGN.md "Output rows"): one Arrow schema, shared by every writer and reader.

Images are stored as the Hugging Face image struct ``{bytes, path}``, and the schema carries the ``huggingface``
features metadata, so that ``datasets.load_dataset("parquet", ...)`` decodes them as ``Image()`` features while
pyarrow and pandas read the same file without any conversion.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Literal

import pyarrow as pa

RowStatus = Literal["ok", "bad_input", "invalid_plan", "failed"]
STATUSES: tuple[str, ...] = ("ok", "bad_input", "invalid_plan", "failed")

IMAGE = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
MODEL_USE = pa.struct([
    ("model", pa.string()),
    ("loaded", pa.bool_()),  # this node's group made the runtime load the model
    ("merged", pa.int64()),  # callers served by the one model call (groups of other shards joined in)
    ("resident_bytes", pa.int64()),  # bytes of models resident on that device after the call
])
TRACE = pa.struct([
    ("node", pa.string()),
    ("tool", pa.string()),
    ("backend", pa.string()),
    ("seconds", pa.float64()),
    ("cache_hit", pa.bool_()),
    ("error", pa.string()),
    ("wave", pa.int64()),
    ("batch_size", pa.int64()),
    ("models", pa.list_(MODEL_USE)),
    ("note", pa.string()),  # the planner's note on the node (e.g. an approximation it made)
    ("fallback", pa.string()),  # why the node ran on a CPU backend, not the run's pinned GPU one (config allows)
])

OUTPUT_FIELDS: list[pa.Field] = [
    pa.field("id", pa.string(), nullable=False),
    pa.field("instruction", pa.string()),
    pa.field("source_image", IMAGE),
    pa.field("edited_image", IMAGE),
    pa.field("edited_images", pa.list_(IMAGE)),  # every output, when the workflow makes several (null otherwise)
    pa.field("status", pa.string(), nullable=False),
    pa.field("error", pa.string()),
    pa.field("workflow", pa.string()),  # canonical workflow JSON
    pa.field("reasoning", pa.string()),
    pa.field("plan_attempts", pa.int64()),
    pa.field("trace", pa.list_(TRACE)),
    pa.field("seed", pa.int64()),
    pa.field("planner", pa.string()),
    pa.field("versions", pa.string()),  # JSON: package and brick backend versions
    pa.field("shard", pa.int64()),
    pa.field("seconds", pa.float64()),  # brick seconds spent on this row
    pa.field("ground_truth", pa.string()),  # JSON of the dataset's extra fields (target, category, ...)
    # Judge scores (the judge fills them; null until then).
    pa.field("judge_score", pa.float64()),
    pa.field("judge_model", pa.string()),
    pa.field("judge_feedback", pa.string()),
    # Rewards for RL (ImageEdit-R1: format, action, subject, goal) and their total.
    pa.field("reward", pa.float64()),
    pa.field("reward_format", pa.float64()),
    pa.field("reward_action", pa.float64()),
    pa.field("reward_subject", pa.float64()),
    pa.field("reward_goal", pa.float64()),
    # Rollouts: samples of one request share a group; the advantage is relative to the group.
    pa.field("group_id", pa.string()),
    pa.field("sample_index", pa.int64()),
    pa.field("advantage", pa.float64()),
]
IMAGE_COLUMNS = ("source_image", "edited_image")
IMAGE_LIST_COLUMNS = ("edited_images",)


def _hf_feature(name: str, dtype: pa.DataType) -> dict[str, Any]:
    """The Hugging Face ``Features`` JSON of one Arrow type."""
    if name in IMAGE_COLUMNS:
        return {"_type": "Image"}
    if name in IMAGE_LIST_COLUMNS:
        return {"feature": {"_type": "Image"}, "_type": "List"}
    if pa.types.is_list(dtype):
        return {"feature": _hf_feature("", dtype.value_type), "_type": "List"}
    if pa.types.is_struct(dtype):
        return {field.name: _hf_feature(field.name, field.type) for field in dtype}
    names = {pa.string(): "string", pa.binary(): "binary", pa.int64(): "int64", pa.float64(): "float64",
             pa.bool_(): "bool"}
    return {"dtype": names[dtype], "_type": "Value"}


def _schema() -> pa.Schema:
    features = {field.name: _hf_feature(field.name, field.type) for field in OUTPUT_FIELDS}
    metadata = {"huggingface": json.dumps({"info": {"features": features}})}
    return pa.schema(OUTPUT_FIELDS, metadata=metadata)


OUTPUT_SCHEMA: pa.Schema = _schema()


def image_struct(data: bytes | None, path: str | None = None) -> dict[str, Any] | None:
    """The Hugging Face image struct, or None when there is no image."""
    return None if data is None else {"bytes": data, "path": path}


def empty_row(row_id: str, status: RowStatus, **values: Any) -> dict[str, Any]:
    """A row with every column present (nulls where nothing is known), then ``values`` filled in."""
    if status not in STATUSES:
        raise ValueError(f"unknown status {status!r}; expected one of {', '.join(STATUSES)}")
    unknown = set(values) - set(OUTPUT_SCHEMA.names)
    if unknown:
        raise ValueError(f"not output columns: {', '.join(sorted(unknown))}")
    row: dict[str, Any] = dict.fromkeys(OUTPUT_SCHEMA.names)
    row.update({"id": row_id, "status": status, "trace": [], **values})
    return row


def rows_to_table(rows: Sequence[dict[str, Any]]) -> pa.Table:
    """Rows (dicts with every column) as an Arrow table with the output schema."""
    return pa.Table.from_pylist(list(rows), schema=OUTPUT_SCHEMA)
