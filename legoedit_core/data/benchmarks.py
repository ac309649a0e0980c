"""Benchmark loaders: local copies of GEdit-Bench, ImgEdit-Bench, MagicBrush and Emu Edit, read as datasets.

Each loader maps a benchmark's own layout onto pipeline rows (``id``, ``image``, ``instruction``, and the
benchmark's task type as the ``category`` ground truth), so a benchmark runs through the same pipeline as any
catalogue and its scores can be grouped the way the benchmark's paper groups them. Any other benchmark (PSR,
RealEdit, UltraEdit samples, ...) comes as a generic manifest (``.jsonl`` / ``.csv`` with a ``category`` column).

Parquet benchmarks are read lazily: opening one reads only its metadata and the columns needed to filter it;
each shard then reads its own rows.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
from dataclasses import dataclass
from typing import Any

import pyarrow.dataset as pads

from legoedit_core.data.datasets import (
    Dataset,
    DatasetError,
    InputRow,
    open_dataset,
    read_dataset_file,
    row_from_record,
)
from legoedit_core.data.storage import Storage

GEDIT_TASK_TYPES = ("background_change", "color_alter", "material_alter", "motion_change", "ps_human",
                    "style_change", "subject-add", "subject-remove", "subject-replace", "text_change",
                    "tone_transfer")


@dataclass(frozen=True)
class ParquetLayout:
    """Where a Parquet benchmark keeps each field. ``id`` columns are joined with ``-``."""

    name: str
    id: tuple[str, ...]
    image: str
    instruction: str
    category: str | None = None
    language: str | None = None  # the column that holds the instruction's language, for filtering

    def columns(self) -> list[str]:
        names = [*self.id, self.image, self.instruction, self.category, self.language]
        return list(dict.fromkeys(n for n in names if n))


LAYOUTS: dict[str, ParquetLayout] = {
    # stepfun-ai/GEdit-Bench
    "gedit": ParquetLayout("gedit", ("key",), "input_image", "instruction", "task_type", "instruction_language"),
    # osunlp/MagicBrush: one row per turn; a turn's source image is the previous turn's target
    "magicbrush": ParquetLayout("magicbrush", ("img_id", "turn_index"), "source_img", "instruction"),
    # facebook/emu_edit_test_set
    "emu": ParquetLayout("emu", ("idx",), "image", "instruction", "task"),
}
KINDS = ("gedit", "imgedit", "magicbrush", "emu", "manifest")


class ParquetBenchmark(Dataset):
    """A Parquet benchmark (a file or a folder of files), optionally limited to one instruction language."""

    def __init__(self, uri: str, layout: ParquetLayout, language: str | None = "en",
                 storage_options: dict[str, Any] | None = None) -> None:
        self.uri, self.layout = uri, layout
        self.storage_options = dict(storage_options or {})
        storage = Storage(uri, self.storage_options)
        files = [storage.path()] if uri.endswith(".parquet") else \
            [storage.path(f) for f in storage.glob("**/*.parquet")]
        if not files:
            raise DatasetError(f"{layout.name}: no .parquet files in {uri}")
        self.root = posixpath.dirname(storage.uri()) if uri.endswith(".parquet") else storage.uri()
        self._data = pads.dataset(files, filesystem=storage.fs, format="parquet")
        missing = [c for c in layout.columns() if c not in self._data.schema.names]
        if missing:
            raise DatasetError(f"{uri} is not {layout.name}: no column(s) {', '.join(missing)} "
                               f"(it has {', '.join(self._data.schema.names)})")
        if layout.language and language:
            languages = self._data.to_table(columns=[layout.language]).column(0).to_pylist()
            self._indices = [i for i, value in enumerate(languages) if value == language]
        else:
            self._indices = list(range(self._data.count_rows()))
        self._fingerprint = hashlib.sha256(json.dumps([layout.name, files, language, len(self._indices)])
                                           .encode()).hexdigest()[:16]

    def __len__(self) -> int:
        return len(self._indices)

    def fingerprint(self) -> str:
        return self._fingerprint

    def read_rows(self, start: int, stop: int) -> list[InputRow]:
        layout = self.layout
        table = self._data.take(self._indices[start:stop], columns=layout.columns())
        rows = []
        for index, record in zip(range(start, stop), table.to_pylist(), strict=True):
            fields = {"id": "-".join(str(record[c]) for c in layout.id), "image": record[layout.image],
                      "instruction": record[layout.instruction]}
            if layout.category:
                fields["category"] = record[layout.category]
            rows.append(row_from_record(index, {k: v for k, v in fields.items() if v is not None}, f"row-{index}"))
        return rows


class ImgEditBenchmark(Dataset):
    """ImgEdit-Bench: a JSON file ``{key: {"id": <image path>, "prompt": ..., "edit_type": ...}}`` and its images
    (paths relative to ``images``, by default the JSON file's folder)."""

    def __init__(self, uri: str, images: str | None = None, storage_options: dict[str, Any] | None = None) -> None:
        self.uri = uri
        self.storage_options = dict(storage_options or {})
        storage = Storage(uri, self.storage_options)
        raw = read_dataset_file(storage, "ImgEdit-Bench file")
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as error:
            raise DatasetError(f"{uri} is not JSON: {error}") from None
        if not isinstance(data, dict):
            raise DatasetError(f"{uri}: expected a JSON object of items keyed by id")
        self.root = self.images = images or posixpath.dirname(storage.uri())
        self._items = sorted(data.items())
        self._fingerprint = hashlib.sha256(raw).hexdigest()[:16]

    def __len__(self) -> int:
        return len(self._items)

    def fingerprint(self) -> str:
        return self._fingerprint

    def read_rows(self, start: int, stop: int) -> list[InputRow]:
        rows = []
        for index in range(start, stop):
            key, item = self._items[index]
            item = item if isinstance(item, dict) else {}
            record = {"id": str(key), "instruction": item.get("prompt"), "category": item.get("edit_type"),
                      "image": posixpath.join(self.images, item["id"]) if item.get("id") else None}
            rows.append(row_from_record(index, {k: v for k, v in record.items() if v is not None}, str(key)))
        return rows


def detect_kind(uri: str, storage_options: dict[str, Any] | None = None) -> str:
    """The benchmark a path holds: ImgEdit-Bench for ``.json``, a Parquet layout by its columns, else a manifest."""
    lowered = uri.lower().rstrip("/")
    if lowered.endswith(".json"):
        return "imgedit"
    if lowered.endswith((".jsonl", ".csv")):
        return "manifest"
    storage = Storage(uri, storage_options)
    files = [storage.path()] if lowered.endswith(".parquet") else [storage.path(f) for f in
                                                                   storage.glob("**/*.parquet")]
    if files:
        names = set(pads.dataset(files[:1], filesystem=storage.fs, format="parquet").schema.names)
        for kind, layout in LAYOUTS.items():
            if set(layout.columns()) <= names:
                return kind
    return "manifest"


def open_benchmark(uri: str, kind: str = "auto", language: str | None = "en", images: str | None = None,
                   storage_options: dict[str, Any] | None = None) -> Dataset:
    """Open a local (or object-store) copy of a benchmark as a dataset.

    ``kind`` is one of gedit, imgedit, magicbrush, emu, manifest, or auto (detected from the files). ``language``
    keeps GEdit-Bench's instructions in that language (``en`` or ``cn``; None keeps both). ``images`` is
    ImgEdit-Bench's image folder.
    """
    if kind == "auto":
        kind = detect_kind(uri, storage_options)
    if kind in LAYOUTS:
        return ParquetBenchmark(uri, LAYOUTS[kind], language, storage_options)
    if kind == "imgedit":
        return ImgEditBenchmark(uri, images, storage_options)
    if kind == "manifest":
        return open_dataset(uri, storage_options)
    raise DatasetError(f"unknown benchmark kind {kind!r}: use one of {', '.join(KINDS)} or auto")
