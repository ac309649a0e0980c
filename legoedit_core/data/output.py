"""A run's output location: versions of a table of edited rows, each version a set of Parquet parts.

Layout under the output prefix::

    _manifest.json                      the first run: dataset, shard size, config and its fingerprint (written once)
    _lease/0000000007-000002.json       who writes this output now, and until when (see ``lease.py``)
    _versions/00002.json                version 2: its parts, counts, config fingerprint (put-if-absent: the commit)
    _versions/00002-<work>.index.parquet   id, fingerprint, status and part of every row of version 2
    work/v00002-<work>/parts/part-00003.parquet   rows edited by version 2, shard 3 of its work
    work/v00002-<work>/_commits/00003-0000.json   that shard is finished (attempt 0)
    work/v00002-<work>/kept/part-00001.parquet    an earlier part without the rows version 2 replaced or removed
    work/v00002-<work>/images/<id>-<hash>.png   edited images of that work as files (optional)
    report.html, reports/00002.html     the HTML report of the newest version, and of each version

A run's work (the rows it edits) is a ``RunOutput`` of its own under ``work/``: a part is written in one piece (a
single PUT on object stores, which is atomic; a temporary file and a rename on local disks), and only then is its
commit record written, with a conditional put (put-if-absent) under a name no other commit uses. Records are never
rewritten or deleted, so a commit delayed by the network can add its own record late but cannot undo anyone
else's: finished shards never go backwards (the shape of Delta Lake's append-only log). When the work is done, the
version record is put-if-absent under the next number: that one object is the version's commit, and the current
view (the newest version) changes only then. ``legoedit_core.data.incremental`` decides the work and writes it.

An output without versions (rollouts, evaluation, an output written before versions) is read as its committed
shards at the top level (``parts/part-00003.parquet``, ``_commits/00003-0000.json``), as before.

One run writes an output at a time: ``writing`` takes the output's lease, records the run (or checks that it
matches the recorded one: same shard size and config fingerprint) and releases the lease at the end. Every write
into the output (parts, image files, kept parts, indexes, reports, records) is fenced: made only after checking
that the lease is still this run's (``check_lease``). Image files belong to the work that made them, so a writer
that lost its lease, or an earlier run, never changes a file that a current row stands for.

Records stay inside the output: every path a version record, an index or a commit record names is relative,
normalised and below the output (``inside``); a record naming anything else (an absolute path, ``..``, another
scheme or bucket) is refused with ``UnsafeRecord`` naming the record, before anything is read from it.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
import re
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from legoedit_core.data.images import output_name
from legoedit_core.data.lease import Fence, Lease, fence
from legoedit_core.data.rows import OUTPUT_SCHEMA, STATUSES
from legoedit_core.data.storage import Storage

MANIFEST = "_manifest.json"
COMMITS = "_commits"
PARTS = "parts"
IMAGES = "images"
VERSIONS = "_versions"
WORK = "work"
# The run settings a rerun must share with the recorded run, and what to tell the user when one differs. (The
# dataset may change: a rerun edits what changed into a new version.)
MUST_MATCH = {
    "shard_size": "the same shard size",
    "config_fingerprint": "the same config (or --recorded-config to continue with the recorded one, or "
                          "--reedit-all to re-edit every row with this one)",
}


class OutputMismatch(ValueError):
    """The output already holds a run with another shard size or another config."""


class UnsafeRecord(ValueError):
    """A record of the output names a path outside it: refused, never followed nor carried into a new version."""


def inside(path: Any, record: str) -> str:
    """``path`` when it is a relative, normalised path below the output; ``UnsafeRecord`` naming ``record``
    otherwise."""
    if not isinstance(path, str) or not path or "://" in path or path.startswith(("/", "~")) or "\\" in path \
            or posixpath.normpath(path) != path or path.split("/", 1)[0] in ("..", ".") or "\x00" in path:
        raise UnsafeRecord(f"{record} names {path!r}, which is not a relative path inside the output: refused "
                           "(the record was changed by hand or by another program; restore it or use a new output)")
    return path


class CommitConflict(RuntimeError):
    """A commit record could not be written under any free name (another writer keeps taking them)."""


def config_fingerprint(config: dict[str, Any]) -> str:
    """What identifies a config's results: a hash of its JSON without the ``pipeline`` section (concurrency,
    task runner and similar do not change a row)."""
    relevant = {key: value for key, value in config.items() if key != "pipeline"}
    return hashlib.sha256(json.dumps(relevant, sort_keys=True, default=str).encode()).hexdigest()[:16]


def config_differences(recorded: dict[str, Any], given: dict[str, Any], prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two config dicts (the ``pipeline`` section aside)."""
    changed = []
    keys = sorted(set(recorded) | set(given))
    for key in keys:
        if not prefix and key == "pipeline":
            continue
        old, new = recorded.get(key), given.get(key)
        if isinstance(old, dict) and isinstance(new, dict):
            changed += config_differences(old, new, f"{prefix}{key}.")
        elif old != new:
            changed.append(f"{prefix}{key}")
    return changed


class OutputUnwritable(OSError):
    """The output location cannot be written (checked when a run begins, before any work)."""


@contextmanager
def unwritable_as_error(uri: str) -> Iterator[None]:
    """Turn the file system's refusals (no permission, a file where a folder must be) into ``OutputUnwritable``."""
    try:
        yield
    except (PermissionError, NotADirectoryError, IsADirectoryError, FileExistsError) as error:
        raise OutputUnwritable(f"cannot write the output {uri}: {error.strerror or error}") from error


@dataclass
class PartInfo:
    """What a finished shard left behind: its part, its row counts, brick seconds, and the model runtime's work
    for it (loads per model, the most bytes resident on one device), read from the rows' traces; ``images`` is the
    folder of its rows' image files when it is not the one beside the part's folder (a kept part's rows keep the
    files of the work that edited them)."""

    shard: int
    path: str
    rows: int
    counts: dict[str, int]
    brick_seconds: dict[str, float]
    model_loads: dict[str, int] = field(default_factory=dict)
    resident_bytes: int = 0
    images: str | None = None

    @property
    def images_folder(self) -> str:
        """Where the image files of this part's rows lie (``--write-images``), under the output."""
        return self.images or posixpath.join(posixpath.dirname(posixpath.dirname(self.path)), IMAGES)

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


    @classmethod
    def from_record(cls, record: dict[str, Any], where: str = "a commit record") -> PartInfo:
        """The part a commit or version record (``where``, for messages) describes; its path must lie inside the
        output (``UnsafeRecord``)."""
        info = cls(**{name: record[name] for name in cls.__dataclass_fields__ if name in record})
        inside(info.path, where)
        if info.images is not None:
            inside(info.images, where)
        return info


def part_name(shard: int) -> str:
    return f"{PARTS}/part-{shard:05d}.parquet"


def commit_name(shard: int, attempt: int) -> str:
    return f"{COMMITS}/{shard:05d}-{attempt:04d}.json"


def version_name(number: int) -> str:
    return f"{VERSIONS}/{number:05d}.json"


def work_name(version: int, key: str) -> str:
    """Where the rows a version edits are written and committed, under the output."""
    return f"{WORK}/v{version:05d}-{key}"


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
        self.lease: Lease | None = None
        self.fence: Fence | None = None  # the run's fencing token, in a task that writes away from the run

    def check_lease(self) -> None:
        """Raise ``LeaseLost`` unless this writer still owns the output (a no-op for a writer without a lease)."""
        if self.lease is not None:
            self.lease.check()
        elif self.fence is not None:
            self.fence.check()

    def write_fenced(self, data: bytes, path: str) -> None:
        """Write ``data`` under the output, only while this writer owns it."""
        self.check_lease()
        self.storage.write_bytes(data, path)

    # ------------------------------------------------------------------------------------------ the run
    def manifest(self) -> dict[str, Any]:
        """The recorded run, or an empty dict when nothing was written yet."""
        try:
            return json.loads(self.storage.read_bytes(MANIFEST))
        except FileNotFoundError:
            return {}

    @contextmanager
    def writing(self, run: dict[str, Any], new_config: bool = False) -> Iterator[dict[str, Any]]:
        """Own the output for the block: take the lease, record or check the run, release the lease at the end.

        ``run`` must hold ``dataset_fingerprint``, ``shard_size`` and ``config`` (a JSON dict); its config
        fingerprint is added. ``new_config`` accepts a config other than the recorded one (re-edit every row).
        Raises ``LeaseHeld`` when another run writes the output, ``OutputMismatch`` when the output holds a
        different run, ``OutputUnwritable`` when the location cannot be written.
        """
        lease = Lease(self.storage)
        with unwritable_as_error(self.uri):
            lease.acquire()
        self.lease = lease
        try:
            self.storage.remove_temporaries()  # left by a killed writer; the lease says none is alive
            with unwritable_as_error(self.uri):
                recorded = self.begin(run, new_config)
            yield recorded
        finally:
            self.lease = None
            lease.release()

    def begin(self, run: dict[str, Any], new_config: bool = False) -> dict[str, Any]:
        """Record the run (first time) or check that it matches the recorded one (the newest version's config,
        which ``new_config`` lets differ); the recorded manifest."""
        run = dict(run, config_fingerprint=config_fingerprint(run["config"]))
        recorded = self.manifest()
        if not recorded:
            # FileExistsError: a retried put of ours, or a concurrent first run: compare with what is there
            with suppress(FileExistsError):
                self.storage.create_bytes(json.dumps(dict(run, created=time.time()), indent=2, sort_keys=True)
                                          .encode(), MANIFEST)
            recorded = self.manifest()
        current = dict(recorded, **{key: value for key, value in (self.version() or {}).items()
                                    if key in ("config", "config_fingerprint")})
        for key, meaning in MUST_MATCH.items():
            if current.get(key) != run[key] and not (new_config and key == "config_fingerprint"):
                detail = ""
                if key == "config_fingerprint":
                    changed = config_differences(current.get("config") or {}, run["config"])
                    detail = f" (changed: {', '.join(changed[:12]) or 'unknown'})"
                raise OutputMismatch(f"{self.uri} holds a run with {key}={current.get(key)!r}, this run has "
                                     f"{run[key]!r}{detail}: use a new output, or {meaning}")
        return recorded

    def recorded_config(self) -> dict[str, Any] | None:
        """The config the output's rows were made with: the newest version's, else the first run's."""
        return (self.version() or self.manifest()).get("config")

    # ----------------------------------------------------------------------------------------- versions
    def versions(self) -> list[int]:
        """The committed version numbers, oldest first."""
        found = (re.search(r"/(\d+)\.json$", name) for name in self.storage.glob(f"{VERSIONS}/*.json"))
        return [int(match.group(1)) for match in found if match]

    def version(self, number: int | None = None) -> dict[str, Any] | None:
        """Version ``number``'s record (the newest when None), or None when there is none."""
        if number is None:
            numbers = self.versions()
            if not numbers:
                return None
            number = numbers[-1]
        try:
            record = json.loads(self.storage.read_bytes(version_name(number)))
        except FileNotFoundError:
            return None
        where = f"{self.storage.uri(version_name(number))}"
        for key in ("index", "work", "report"):
            if record.get(key) is not None:
                inside(record[key], f"{where} ({key})")
        for entry in record.get("parts") or []:
            PartInfo.from_record(entry, f"{where} (parts)")
        return record

    def current_parts(self, version: int | None = None) -> list[PartInfo]:
        """The parts of a version (the newest when None): every id in exactly one of them. An output without
        versions gives its committed shards."""
        record = self.version(version)
        if record is None and version is not None:
            raise FileNotFoundError(f"{self.uri} has no version {version} (versions: {self.versions()})")
        if record is None:
            return [PartInfo.from_record(entry) for entry in self.finished().values()]
        return [PartInfo.from_record(entry, f"version {record['version']}") for entry in record["parts"]]

    def current_files(self, version: int | None = None) -> list[str]:
        """The URIs of a version's parts (the newest when None): ``datasets.load_dataset("parquet",
        data_files=...)``, DuckDB's ``read_parquet([...])``, Polars and Spark read exactly that version."""
        return [self.storage.uri(part.path) for part in self.current_parts(version)]

    # ------------------------------------------------------------------------------------------ commits
    def finished(self) -> dict[int, dict[str, Any]]:
        """Finished shards by index, each with the record of its newest commit (``attempt`` included).

        A record that a fenced writer put after another run took the lease is ignored (``lease.fence``)."""
        attempts: dict[int, list[int]] = {}
        for name in self.storage.glob(f"{COMMITS}/*.json"):
            match = re.search(r"(\d+)-(\d+)\.json$", name)
            if match:
                attempts.setdefault(int(match.group(1)), []).append(int(match.group(2)))
        finished, superseded = {}, None
        for shard in sorted(attempts):
            for attempt in sorted(attempts[shard], reverse=True):
                record = json.loads(self.storage.read_bytes(commit_name(shard, attempt)))
                inside(record.get("path"), self.storage.uri(commit_name(shard, attempt)))
                if record.get("lease_epoch") is not None:
                    superseded = superseded or fence(self.storage)
                    if superseded(record["lease_epoch"], record["committed"]):
                        continue
                finished[shard] = record
                break
        return finished

    def commit(self, info: PartInfo, attempt: int = 0) -> None:
        """Mark a shard finished (after its part is in place) with an immutable record, put-if-absent.

        ``attempt`` is the first attempt number to try (the shard's newest + 1 for a retry); a name taken by a
        stale writer moves on to the next. While a lease is held, a commit without it raises ``LeaseLost``.
        """
        for number in range(attempt, attempt + 100):
            if self.lease is not None:
                self.lease.check()
            holder = self.lease.holder if self.lease is not None else None
            epoch = self.lease.epoch if self.lease is not None else None  # the fencing token
            record = vars(info) | {"attempt": number, "committed": time.time(), "holder": holder,
                                   "lease_epoch": epoch}
            try:
                self.storage.create_bytes(json.dumps(record, sort_keys=True).encode(), commit_name(info.shard, number))
                return
            except FileExistsError:
                there = json.loads(self.storage.read_bytes(commit_name(info.shard, number)))
                if holder is not None and there.get("holder") == holder and there.get("path") == info.path:
                    return  # our own put, retried after it landed
        raise CommitConflict(f"{self.uri}: shard {info.shard} could not be committed: 100 commit names taken")

    # --------------------------------------------------------------------------------------------- parts
    def write_part(self, shard: int, table: pa.Table) -> PartInfo:
        """Write a shard's part in one piece (it is committed separately, by ``commit``)."""
        table = table.cast(self.schema)
        self.write_fenced(table_bytes(table), part_name(shard))
        return PartInfo.of(shard, part_name(shard), table)

    def read_path(self, path: str, columns: list[str] | None = None) -> pa.Table:
        """A part by its path under the output (only ``columns`` when given: the others are not read); a path that
        leaves the output is refused (``UnsafeRecord``)."""
        with self.storage.fs.open(self.storage.path(inside(path, "a record")), "rb") as handle:
            table = pq.ParquetFile(handle).read(columns=columns)
        return table if columns else table.cast(self.schema)

    def read_table(self, version: int | None = None) -> pa.Table:
        """The current view (or ``version``), all in memory: use ``iter_parts`` for big outputs."""
        tables = list(self.iter_parts(version=version))
        return pa.concat_tables(tables) if tables else self.schema.empty_table()

    def iter_parts(self, columns: list[str] | None = None, version: int | None = None) -> Iterator[pa.Table]:
        """The parts of the current view (or of ``version``) one at a time (only ``columns`` when given)."""
        for part in self.current_parts(version):
            yield self.read_path(part.path, columns)

    def current_images(self, version: int | None = None) -> dict[str, str]:
        """The image files (``--write-images``) of the current view's rows (or of ``version``'s), by id: each in
        the images folder of the work that edited it."""
        files = {}
        for part in self.current_parts(version):
            for row_id, edited in zip(*self.read_path(part.path, ["id", "edited_image"]).to_pydict().values(),
                                      strict=True):
                if edited is not None:
                    files[row_id] = self.storage.uri(part.images_folder, image_key(row_id).split("/", 1)[1])
        return files

    def parts_uri(self) -> str:
        """The glob of the committed shards of an output without versions (rollouts, evaluation); an edit
        output's current view is ``current_files()``."""
        return self.storage.uri(PARTS, "*.parquet")

    def write_images(self, table: pa.Table) -> None:
        """Also write each edited image as ``images/<id>-<hash>.png`` (several outputs: ``-2.png``, ...) under this
        output: a version's work keeps its own, so no other run's writes change them. Fenced like the parts."""
        self.check_lease()
        columns = (table.column(name).to_pylist() for name in ("id", "edited_image", "edited_images"))
        for row_id, edited, several in zip(*columns, strict=True):
            for index, image in enumerate(several or ([edited] if edited is not None else [])):
                self.storage.write_bytes(image["bytes"], output_name(image_key(row_id), index))


def image_key(row_id: str) -> str:
    """Where a row's edited image goes as a file: ``images/<readable part of the id>-<hash of the id>.png``.

    The hash of the exact id makes names collision-free (``a/b`` and ``a_b``, or two non-ASCII ids, differ), and
    the readable part is cut at 64 characters, so a name stays short whatever the id.
    """
    readable = re.sub(r"[^A-Za-z0-9._-]", "_", row_id)[:64]
    digest = hashlib.blake2b(row_id.encode("utf-8", "surrogatepass"), digest_size=8).hexdigest()
    return f"{IMAGES}/{readable}-{digest}.png"
