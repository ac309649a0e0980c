"""A run's output location: Parquet parts, one per shard, committed through ``_manifest.json``.

Layout under the output prefix::

    _manifest.json            run settings, versions, and one entry per finished shard
    parts/part-00003.parquet  the rows of shard 3 (output row schema)
    images/<id>.png           edited images as files (optional)
    report.html               the HTML report

A part is written in one piece (a single PUT on object stores, which is atomic; a temporary file and a rename on
local disks), and only then is the shard's entry added to the manifest. A shard counts as finished when its entry
is there, so a crash at any point leaves either a finished shard or one that the next run redoes and overwrites.
Only the flow's own thread updates the manifest; two runs must not share one output.
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from legoedit_core.data.images import output_name
from legoedit_core.data.rows import OUTPUT_SCHEMA, STATUSES
from legoedit_core.data.storage import Storage

MANIFEST = "_manifest.json"
PARTS = "parts"


class OutputMismatch(ValueError):
    """The output already holds a run over another dataset or with another shard size."""


@dataclass
class PartInfo:
    """What a finished shard left behind: its part, its row counts, brick seconds, and the model runtime's work
    for it (loads per model, the most bytes resident on one device), read from the rows' traces."""

    shard: int
    path: str
    rows: int
    counts: dict[str, int]
    brick_seconds: dict[str, float]
    model_loads: dict[str, int] = field(default_factory=dict)
    resident_bytes: int = 0

    @classmethod
    def of(cls, shard: int, path: str, table: pa.Table) -> PartInfo:
        statuses = table.column("status").to_pylist()
        seconds: dict[str, float] = {}
        loads: set[tuple[str, int, str]] = set()  # every node of a group repeats the group's uses: count it once
        resident = 0
        for trace in table.column("trace").to_pylist():
            for node in trace or []:
                seconds[node["tool"]] = seconds.get(node["tool"], 0.0) + node["seconds"]
                for use in node.get("models") or []:
                    resident = max(resident, use["resident_bytes"])
                    if use["loaded"]:
                        loads.add((node["tool"], node["wave"], use["model"]))
        model_loads = Counter(model for _, _, model in loads)
        return cls(shard, path, table.num_rows, {s: statuses.count(s) for s in STATUSES if s in statuses}, seconds,
                   dict(model_loads), resident)


def part_name(shard: int) -> str:
    return f"{PARTS}/part-{shard:05d}.parquet"


def table_bytes(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue().to_pybytes()


class RunOutput:
    """Reads and writes one run's output prefix; its parts have ``schema``."""

    schema: pa.Schema = OUTPUT_SCHEMA

    def __init__(self, uri: str, storage_options: dict[str, Any] | None = None,
                 storage: Storage | None = None) -> None:
        self.uri = uri
        self.storage = storage or Storage(uri, storage_options)

    # ------------------------------------------------------------------------------------------ manifest
    def manifest(self) -> dict[str, Any]:
        """The manifest, or an empty one when nothing was written yet."""
        try:
            return json.loads(self.storage.read_bytes(MANIFEST))
        except FileNotFoundError:
            return {"shards": {}}

    def begin(self, run: dict[str, Any]) -> dict[str, Any]:
        """Start (or resume) a run: check that it matches what is there, record its settings, return the manifest.

        ``run`` must hold ``dataset_fingerprint`` and ``shard_size``; a resumed run must agree on both, since
        finished shards are identified by index.
        """
        manifest = self.manifest()
        for key in ("dataset_fingerprint", "shard_size"):
            if manifest.get(key) not in (None, run[key]):
                raise OutputMismatch(f"{self.uri} holds a run with {key}={manifest[key]!r}, this run has "
                                     f"{run[key]!r}: use a new output, or the same dataset and shard size")
        manifest.update(run, updated=time.time())
        self._write_manifest(manifest)
        return manifest

    def finished(self) -> dict[int, dict[str, Any]]:
        """Finished shards by index, with their manifest entries."""
        return {int(k): v for k, v in self.manifest()["shards"].items()}

    def commit(self, info: PartInfo) -> None:
        """Mark a shard finished (after its part is in place)."""
        manifest = self.manifest()
        manifest["shards"][str(info.shard)] = vars(info) | {"committed": time.time()}
        manifest["updated"] = time.time()
        self._write_manifest(manifest)

    def _write_manifest(self, manifest: dict[str, Any]) -> None:
        self.storage.write_bytes(json.dumps(manifest, indent=2, sort_keys=True).encode(), MANIFEST)

    # --------------------------------------------------------------------------------------------- parts
    def write_part(self, shard: int, table: pa.Table) -> PartInfo:
        """Write a shard's part in one piece (it is committed separately, by ``commit``)."""
        table = table.cast(self.schema)
        self.storage.write_bytes(table_bytes(table), part_name(shard))
        return PartInfo.of(shard, part_name(shard), table)

    def read_part(self, shard: int) -> pa.Table:
        return pq.read_table(pa.BufferReader(self.storage.read_bytes(part_name(shard))), schema=self.schema)

    def read_table(self) -> pa.Table:
        """Every committed part, in shard order."""
        finished = self.finished()
        tables = [self.read_part(shard) for shard in sorted(finished)]
        return pa.concat_tables(tables) if tables else self.schema.empty_table()

    def parts_uri(self) -> str:
        """The glob of the committed parts, for ``datasets.load_dataset("parquet", data_files=...)``."""
        return self.storage.uri(PARTS, "*.parquet")

    def write_images(self, table: pa.Table) -> None:
        """Also write each edited image as ``images/<id>.png`` (several outputs: ``<id>-2.png``, ...)."""
        columns = (table.column(name).to_pylist() for name in ("id", "edited_image", "edited_images"))
        for row_id, edited, several in zip(*columns, strict=True):
            for index, image in enumerate(several or ([edited] if edited is not None else [])):
                self.storage.write_bytes(image["bytes"], output_name(image_key(row_id), index))


def image_key(row_id: str) -> str:
    """Where a row's edited image goes as a file (when images are written): ``images/<id>.png``, made safe."""
    return f"images/{re.sub(r'[^A-Za-z0-9._-]', '_', row_id)}.png"


def merge_retried(previous: pa.Table, retried: pa.Table) -> pa.Table:
    """A part with the rows of ``retried`` replacing the rows of the same id in ``previous``, order kept."""
    replacements = {row["id"]: row for row in retried.to_pylist()}
    rows = [replacements.get(row["id"], row) for row in previous.to_pylist()]
    return pa.Table.from_pylist(rows, schema=OUTPUT_SCHEMA)
