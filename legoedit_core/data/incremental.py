"""Incremental runs: an output follows its catalogue over time, one version per run.

``decide`` compares every row's fingerprint (``fingerprints.py``: catalogue metadata, no pixels) with the newest
version's index and sorts the rows into new, changed, unchanged (and, with ``retry_failed``, retried: not ``ok``
before); ids of the index that the catalogue no longer has are removed. Only new, changed and retried rows are
edited: they are the run's work, a ``Selection`` of the dataset sharded as usual and written under
``work/v<version>-<key>/`` by a ``RunOutput`` of its own, whose shards are committed one by one. The key hashes the
version number, the shard size and the work's ids and fingerprints, so a rerun after a crash that sees the same
catalogue finds the same work and skips its committed shards; a catalogue that changed meanwhile gets new work.

``commit_version`` then puts the version together: the earlier parts that hold no replaced or removed id are
reused as they are, the others are rewritten without those rows (``kept/``), the work's parts are added, and the
version record is put-if-absent under the next number. Until that one put, readers see the earlier version whole;
after it, the new one whole: every id exactly once in each.

A version is committed with what finished: when some shards of the work failed (a fault, after their retries),
the version still takes the work's committed shards; the rows of the failed shards keep their earlier row (a new
row has none yet) and are counted as ``pending``, so the next run edits them. A run's failure never leaves the
current view without the shards it committed.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from legoedit_core.data.datasets import Dataset, InputRow
from legoedit_core.data.fingerprints import fingerprints
from legoedit_core.data.inputs import InputReader
from legoedit_core.data.output import (
    VERSIONS,
    CommitConflict,
    PartInfo,
    RunOutput,
    UnsafeRecord,
    config_fingerprint,
    table_bytes,
    version_name,
    work_name,
)
from legoedit_core.settings.inputs import InputSettings

REPORTS = "reports"
INDEX_SCHEMA = pa.schema([("id", pa.string()), ("fingerprint", pa.string()), ("status", pa.string()),
                          ("path", pa.string())])
CHANGE_KINDS = ("new", "changed", "unchanged", "removed", "retried")


class IncompleteVersion(RuntimeError):
    """A version would not hold each id of the catalogue exactly once (its work is not complete): not committed."""


class Selection(Dataset):
    """Some rows of a dataset (by index, in dataset order), read and confined exactly as the dataset's own."""

    def __init__(self, source: Dataset, indices: Sequence[int]) -> None:
        self.source, self.indices = source, list(indices)
        self.uri, self.root, self.storage_options = source.uri, source.root, source.storage_options

    def __len__(self) -> int:
        return len(self.indices)

    def fingerprint(self) -> str:
        return self.source.fingerprint()

    def reader(self, settings: InputSettings | None = None) -> InputReader:
        return self.source.reader(settings)

    def read_rows(self, start: int, stop: int) -> list[InputRow]:
        """The selected rows ``start:stop``, reading each consecutive run of the source's rows once."""
        wanted = self.indices[start:stop]
        rows: list[InputRow] = []
        run_start = 0
        for position in range(1, len(wanted) + 1):
            if position == len(wanted) or wanted[position] != wanted[position - 1] + 1:
                rows += self.source.read_rows(wanted[run_start], wanted[position - 1] + 1)
                run_start = position
        return rows


@dataclass
class Change:
    """What a run does to its output: the version it makes and the rows it edits, replaces and removes."""

    version: int
    previous: dict[str, Any] | None
    ids: list[str]  # every row of the catalogue, in dataset order
    fingerprints: list[str]
    work: list[int]  # indices of the rows to edit (new, changed, retried)
    replaced: set[str]  # ids whose earlier row the work replaces (changed, retried)
    removed: list[str]
    counts: dict[str, int]
    key: str = field(default="")

    @property
    def prefix(self) -> str:
        """Where the work goes under the output."""
        return work_name(self.version, self.key)

    @property
    def nothing_changed(self) -> bool:
        return not self.work and not self.removed

    def dataset(self, source: Dataset) -> Selection:
        """The rows to edit, as a dataset the flow shards and plans as usual."""
        return Selection(source, self.work)

    def describe(self) -> str:
        """One line: what changed and what is to edit."""
        return f"version {self.version}: {counts_line(self.counts)}, {len(self.work)} row(s) to edit"


def counts_line(counts: dict[str, int]) -> str:
    """``new 4, changed 1, unchanged 8, removed 0[, failed 0]``, saying so when nothing changed."""
    shown = [kind for kind in (*CHANGE_KINDS, "failed", "pending")
             if kind in counts and (kind not in ("retried", "pending") or counts[kind])]
    line = ", ".join(f"{kind} {counts[kind]}" for kind in shown)
    edited = sum(counts.get(kind, 0) for kind in ("new", "changed", "removed", "retried"))
    return line if edited else f"{line}: nothing changed, nothing edited"


def version_report_name(version: int) -> str:
    """Where a version's HTML report goes under the output."""
    return f"{REPORTS}/{version:05d}.html"


def read_index(output: RunOutput, record: dict[str, Any] | None) -> pa.Table:
    """A version's index (id, fingerprint, status, path of its part); empty when there is no version."""
    if record is None:
        return INDEX_SCHEMA.empty_table()
    index = output.read_path(record["index"], INDEX_SCHEMA.names)
    parts = {entry["path"] for entry in record["parts"]}
    strays = set(index.column("path").to_pylist()) - parts
    if strays:
        raise UnsafeRecord(f"{output.uri}: the index of version {record['version']} ({record['index']}) names "
                           f"{sorted(strays)[:3]!r}, not parts of that version: refused")
    return index


def decide(output: RunOutput, dataset: Dataset, config: dict[str, Any], shard_size: int,
           retry_failed: bool = False, reedit_all: bool = False) -> Change:
    """Sort the catalogue's rows against the output's newest version (see the module's docstring); with
    ``reedit_all`` every row the version has counts as changed."""
    previous = output.version()
    index = read_index(output, previous).select(["id", "fingerprint", "status"]).to_pydict()
    before = {row_id: (fingerprint, status)
              for row_id, fingerprint, status in zip(index["id"], index["fingerprint"], index["status"], strict=True)}
    rows = dataset.read_rows(0, len(dataset))
    content_hash = bool((config.get("pipeline") or {}).get("content_hash"))
    prints = fingerprints(dataset, config_fingerprint(config), rows, content_hash)
    kinds = []
    for row, fingerprint in zip(rows, prints, strict=True):
        earlier = before.get(row.id)
        kinds.append("new" if earlier is None else "changed" if reedit_all or earlier[0] != fingerprint else
                     "retried" if retry_failed and earlier[1] != "ok" else "unchanged")
    ids = [row.id for row in rows]
    removed = sorted(set(before) - set(ids))
    work = [i for i, kind in enumerate(kinds) if kind != "unchanged"]
    counts = {kind: kinds.count(kind) for kind in CHANGE_KINDS} | {"removed": len(removed)}
    change = Change((previous or {}).get("version", 0) + 1, previous, ids, prints, work,
                    {ids[i] for i in work if kinds[i] != "new"}, removed, counts)
    work_rows = [(ids[i], prints[i]) for i in work]
    change.key = hashlib.blake2b(json.dumps([change.version, shard_size, work_rows]).encode(),
                                 digest_size=6).hexdigest()
    return change


def work_output(output: RunOutput, change: Change) -> RunOutput:
    """The ``RunOutput`` the run's work is written and committed into (under the output's lease)."""
    work = RunOutput(output.storage.uri(change.prefix), output.storage.storage_options)
    work.lease = output.lease
    return work


def commit_version(output: RunOutput, change: Change, work: RunOutput, run: dict[str, Any],
                   report: str | None = None) -> dict[str, Any] | None:
    """Put the version together from the earlier parts and the work's committed shards, and commit it
    (put-if-absent); None when none of the work's shards finished (the current view stays as it is).

    Rows of shards that did not finish keep their earlier rows and are counted as ``pending``. Raises
    ``IncompleteVersion`` when the parts would not hold every id exactly once, ``CommitConflict`` when another run
    committed this version number first, ``LeaseLost`` when this run no longer owns the output.
    """
    fingerprint_of = dict(zip(change.ids, change.fingerprints, strict=True))
    work_parts, work_index = [], []
    failed = 0
    for entry in work.finished().values():
        info = PartInfo.from_record(entry)
        info.path = f"{change.prefix}/{info.path}"
        work_parts.append(info)
        failed += sum(n for status, n in info.counts.items() if status != "ok")
        rows = output.read_path(info.path, ["id", "status"]).to_pydict()
        work_index.append(pa.table({"id": rows["id"], "fingerprint": [fingerprint_of[i] for i in rows["id"]],
                                    "status": rows["status"], "path": [info.path] * len(rows["id"])},
                                   schema=INDEX_SCHEMA))
    done = {row_id for table in work_index for row_id in table.column("id").to_pylist()}
    pending = [change.ids[i] for i in change.work if change.ids[i] not in done]
    if pending and not done:
        return None
    parts, index = _kept_parts(output, change, change.replaced & done)
    table = pa.concat_tables(index + work_index or [INDEX_SCHEMA.empty_table()])
    expected = len(change.ids) - sum(1 for row_id in pending if row_id not in change.replaced)
    if table.num_rows != expected or pc.count_distinct(table.column("id")).as_py() != table.num_rows:
        raise IncompleteVersion(f"{output.uri}: version {change.version} would not hold each of the catalogue's "
                                f"{expected} finished ids exactly once ({table.num_rows} rows)")
    if change.nothing_changed and change.previous is not None:
        index_path = change.previous["index"]
    else:
        index_path = f"{VERSIONS}/{change.version:05d}-{change.key}.index.parquet"
        output.write_fenced(table_bytes(table), index_path)
    holder = output.lease.holder if output.lease is not None else None
    record = {"version": change.version, "previous": (change.previous or {}).get("version"),
              "parts": [vars(info) for info in parts + work_parts], "index": index_path, "work": change.prefix,
              "counts": change.counts | {"failed": failed} | ({"pending": len(pending)} if pending else {}),
              "dataset": run.get("dataset"),
              "dataset_fingerprint": run.get("dataset_fingerprint"), "config": run["config"],
              "config_fingerprint": config_fingerprint(run["config"]), "rows": table.num_rows, "report": report,
              "committed": time.time(), "holder": holder}
    output.check_lease()
    try:
        output.storage.create_bytes(json.dumps(record, sort_keys=True).encode(), version_name(change.version))
    except FileExistsError:
        there = output.version(change.version) or {}
        if holder is None or (there.get("holder"), there.get("work")) != (holder, change.prefix):
            raise CommitConflict(f"{output.uri}: version {change.version} was committed by another run "
                                 f"({there.get('holder')}); rerun to make the next one") from None
        return there  # our own put, retried after it landed
    return record


def _kept_parts(output: RunOutput, change: Change, replaced: set[str]) -> tuple[list[PartInfo], list[pa.Table]]:
    """The earlier version's parts and index without the ``replaced`` and removed rows: parts that hold none of
    them are reused as they are; the others are rewritten without them under the work's ``kept/``."""
    if change.previous is None:
        return [], []
    dropped = pa.array(sorted(replaced | set(change.removed)), pa.string())
    index = read_index(output, change.previous)
    touched = set(index.filter(pc.is_in(index.column("id"), dropped)).column("path").to_pylist())
    kept_index = index.filter(pc.invert(pc.is_in(index.column("id"), dropped)))
    parts, renamed = [], {}
    for position, info in enumerate(output.current_parts(change.previous["version"])):
        if info.path not in touched:
            parts.append(info)
            continue
        table = output.read_path(info.path)
        table = table.filter(pc.invert(pc.is_in(table.column("id"), dropped)))
        if table.num_rows:
            path = f"{change.prefix}/kept/part-{position:05d}.parquet"
            output.write_fenced(table_bytes(table), path)
            renamed[info.path] = path
            kept = PartInfo.of(info.shard, path, table)
            kept.images = info.images_folder  # its rows' image files stay where their edit wrote them
            parts.append(kept)
    paths = [renamed.get(path, path) for path in kept_index.column("path").to_pylist()]
    kept_index = kept_index.set_column(3, "path", pa.array(paths, pa.string()))
    return parts, [kept_index]
