"""Input datasets: a JSONL or CSV manifest, a Parquet table, or an image folder with an instructions file.

All are read through ``Storage`` (fsspec), so local paths, ``s3://`` and ``memory://`` work alike. Opening a
dataset reads only its listing (the manifest text, or the Parquet metadata); images are read later, by the shard
that needs them. Rows keep their dataset order and shards are consecutive slices of it, so a rerun over the same
dataset with the same shard size makes the same shards.

A row that cannot be used (not UTF-8, not JSON, unknown fields, no instruction, ...) is still a row: it carries
``error`` and becomes a ``bad_input`` output row; the rest of its shard goes on.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import posixpath
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from legoedit_core.data.inputs import InputReader
from legoedit_core.data.storage import Storage
from legoedit_core.settings.inputs import InputSettings

MANIFEST_NAMES = ("instructions.jsonl", "instructions.csv", "metadata.jsonl", "metadata.csv")
FIELDS = ("id", "image", "instruction", "mask", "seed")
# Ground truth and bookkeeping a dataset may carry; they are kept in the output's ``ground_truth`` column.
GROUND_TRUTH_FIELDS = ("target", "category", "reference_workflow", "notes")
ALIASES = {"file_name": "image"}  # the Hugging Face imagefolder convention
REQUIRED_FIELDS = ("image", "instruction")  # without them every row is bad_input
MAX_ID_CHARS = 512
SEED_LIMIT = 2**63  # seeds are stored as int64


class DatasetError(ValueError):
    """The dataset as a whole cannot be read (no such file, unknown format, wrong columns)."""


@dataclass
class InputRow:
    """One row of a dataset. ``image`` / ``mask`` are a URI or the bytes themselves; ``error`` marks a bad row."""

    index: int
    id: str
    instruction: str = ""
    image: str | bytes | None = None
    mask: str | bytes | None = None
    seed: int = 0
    ground_truth: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


@dataclass(frozen=True)
class Shard:
    """Rows ``start`` to ``stop`` (exclusive) of a dataset."""

    index: int
    start: int
    stop: int

    @property
    def size(self) -> int:
        return self.stop - self.start


def make_shards(count: int, shard_size: int) -> list[Shard]:
    """Consecutive slices of ``shard_size`` rows: the stable sharding rule."""
    if shard_size < 1:
        raise ValueError(f"shard size must be at least 1, got {shard_size}")
    return [Shard(i, start, min(start + shard_size, count)) for i, start in enumerate(range(0, count, shard_size))]


def default_seed(row_id: str) -> int:
    """The seed of a row that names none: a stable hash of its id (31 bits)."""
    return int.from_bytes(hashlib.blake2b(row_id.encode(), digest_size=4).digest(), "big") >> 1


class Dataset:
    """A dataset's listing; ``read_rows`` gives the rows of one slice. Its rows' images resolve inside ``root``."""

    uri: str
    root: str
    storage_options: dict[str, Any]

    def __len__(self) -> int:
        raise NotImplementedError

    def read_rows(self, start: int, stop: int) -> list[InputRow]:
        raise NotImplementedError

    def shards(self, shard_size: int) -> list[Shard]:
        return make_shards(len(self), shard_size)

    def columns(self) -> set[str]:
        """The fields its rows carry (under their canonical names), read from the listing only."""
        raise NotImplementedError

    def missing_columns(self) -> list[str]:
        """The required fields that no row carries: a run of it could only write ``bad_input`` rows."""
        return [name for name in REQUIRED_FIELDS if name not in self.columns()]

    def fingerprint(self) -> str:
        """Identifies the listing, so that a rerun can tell the dataset changed under the same output."""
        raise NotImplementedError

    def reader(self, settings: InputSettings | None = None) -> InputReader:
        """Reads this dataset's images and masks, confined to its root (and the roots ``settings`` add)."""
        return InputReader(self.root, self.storage_options, settings or InputSettings())


def read_dataset_file(storage: Storage, what: str) -> bytes:
    """The bytes of a dataset's index file, or a DatasetError naming ``what`` is missing."""
    try:
        return storage.read_bytes()
    except FileNotFoundError:
        raise DatasetError(f"{what} {storage.uri()} does not exist") from None


class ManifestDataset(Dataset):
    """A JSONL or CSV manifest. Relative image paths are resolved against the manifest's folder."""

    def __init__(self, uri: str, storage_options: dict[str, Any] | None = None) -> None:
        self.uri = uri
        self.storage_options = dict(storage_options or {})
        storage = Storage(uri, self.storage_options)
        raw = read_dataset_file(storage, "dataset manifest")
        self.root = self.base = posixpath.dirname(storage.uri())
        self._digest = hashlib.sha256(raw).hexdigest()[:16]
        # surrogateescape keeps undecodable bytes visible per row, so one bad line does not sink the manifest;
        # a leading byte-order mark (Excel writes one) is not part of the first column's name.
        text = raw.decode("utf-8", errors="surrogateescape").removeprefix("\ufeff")
        self._records = list(_csv_records(text, uri) if uri.lower().endswith(".csv") else _jsonl_records(text))
        refuse_duplicate_ids((_record_id(record, line), line) for line, record, _ in self._records)

    def __len__(self) -> int:
        return len(self._records)

    def fingerprint(self) -> str:
        return self._digest

    def columns(self) -> set[str]:
        return {ALIASES.get(key, key) for _, record, _ in self._records if record for key in record}

    def read_rows(self, start: int, stop: int) -> list[InputRow]:
        return [self._row(index, *self._records[index]) for index in range(start, stop)]

    def _row(self, index: int, line: int, record: dict[str, Any] | None, problem: str | None) -> InputRow:
        fallback_id = f"line-{line}"
        if record is None:
            return InputRow(index, fallback_id, error=f"line {line}: {problem}")
        row = row_from_record(index, record, fallback_id)
        if row.error:
            row.error = f"line {line}: {row.error}"
        for name in ("image", "mask"):
            value = getattr(row, name)
            if isinstance(value, str) and value and "://" not in value and not value.startswith("/"):
                setattr(row, name, posixpath.join(self.base, value))
        return row


def _jsonl_records(text: str) -> Iterator[tuple[int, dict[str, Any] | None, str | None]]:
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        if _has_undecodable(line):
            yield number, None, "not valid UTF-8"
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            yield number, None, f"not valid JSON ({error.msg} at column {error.colno})"
            continue
        if not isinstance(record, dict):
            yield number, None, f"expected a JSON object, got {type(record).__name__}"
            continue
        yield number, record, None


def _csv_records(text: str, uri: str) -> Iterator[tuple[int, dict[str, Any] | None, str | None]]:
    """Records of a CSV manifest; a quote left open is a ``DatasetError`` naming the line it opens on (the
    reader would otherwise swallow every following line into one field)."""
    reader = csv.DictReader(io.StringIO(text), strict=True)
    start = 2  # the line the next record starts on (line 1 is the header)
    try:
        for record in reader:
            number, start = start, reader.line_num + 1
            if any(_has_undecodable(str(v)) for v in record.values()):
                yield number, None, "not valid UTF-8"
            elif None in record:
                yield number, None, f"{len(record[None])} more value(s) than the header has columns"
            else:
                yield number, {k: v for k, v in record.items() if v not in ("", None)}, None
    except csv.Error as error:
        raise DatasetError(f"{uri}: line {start}: broken CSV ({error}): is a quote left open?") from None


def _has_undecodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _record_id(record: dict[str, Any] | None, line: int) -> str:
    """The id a record's row will have (the fallback for a record without one)."""
    given = str((record or {}).get("id") or "").strip()
    return given or f"line-{line}"


def refuse_duplicate_ids(ids: Iterable[tuple[str, int]], unit: str = "lines") -> None:
    """Raise a ``DatasetError`` listing every id that occurs more than once, with its lines (or rows)."""
    where: dict[str, list[int]] = {}
    for row_id, line in ids:
        where.setdefault(row_id, []).append(line)
    duplicated = {row_id: lines for row_id, lines in where.items() if len(lines) > 1}
    if duplicated:
        listed = "; ".join(f"{row_id[:80]!r} on {unit} {', '.join(map(str, lines))}"
                           for row_id, lines in list(duplicated.items())[:20])
        raise DatasetError(f"{len(duplicated)} id(s) occur more than once (every row needs its own id): {listed}")


def row_from_record(index: int, record: dict[str, Any], fallback_id: str) -> InputRow:
    """Check one record's fields and build its row; every problem found goes into ``error``."""
    record = {ALIASES.get(k, k): v for k, v in record.items()}
    row_id = str(record.get("id") or "").strip() or fallback_id
    problems = []
    if len(row_id) > MAX_ID_CHARS:
        problems.append(f"the id is {len(row_id)} characters long, above {MAX_ID_CHARS}")
    unknown = sorted(set(record) - set(FIELDS) - set(GROUND_TRUTH_FIELDS))
    if unknown:
        known = ", ".join(FIELDS + GROUND_TRUTH_FIELDS)
        problems.append(f"unknown field(s) {', '.join(unknown)} (known: {known})")
    instruction = record.get("instruction")
    if not isinstance(instruction, str) or not instruction.strip():
        problems.append("the instruction is empty" if instruction in (None, "") or isinstance(instruction, str)
                        else f"the instruction must be text, got {type(instruction).__name__}")
        instruction = instruction if isinstance(instruction, str) else ""
    image = _image_value(record.get("image"), "image", problems)
    if image is None and not any(p.startswith("image") for p in problems):
        problems.append("no image given")
    mask = _image_value(record.get("mask"), "mask", problems)
    seed = record.get("seed")
    if seed is None:
        seed = default_seed(row_id)
    else:
        try:
            seed = int(seed)
        except (TypeError, ValueError):
            problems.append(f"seed must be an integer, got {str(seed)[:40]!r}")
            seed = 0
        if not -SEED_LIMIT <= seed < SEED_LIMIT:
            problems.append(f"seed {seed} is outside the 64-bit range [-2**63, 2**63)")
            seed = 0
    ground_truth = {k: record[k] for k in GROUND_TRUTH_FIELDS if k in record}
    return InputRow(index, row_id, instruction.strip(), image, mask, seed, ground_truth,
                    "; ".join(problems) or None)


def _image_value(value: Any, name: str, problems: list[str]) -> str | bytes | None:
    """A URI string, bytes, or the Hugging Face struct ``{bytes, path}``."""
    if value is None or value == "":
        return None
    if isinstance(value, dict):
        return value.get("bytes") or value.get("path") or None
    if isinstance(value, (str, bytes)):
        return value
    problems.append(f"{name} must be a path, a URI or image bytes, got {type(value).__name__}")
    return None


class ParquetDataset(Dataset):
    """Parquet file(s) with the columns of a manifest; images as URIs or the Hugging Face struct (embedded bytes).

    Only the metadata is read when the dataset is opened; a shard reads just the row groups it covers.
    """

    def __init__(self, uri: str, storage_options: dict[str, Any] | None = None) -> None:
        self.uri = uri
        self.storage_options = dict(storage_options or {})
        storage = Storage(uri, self.storage_options)
        self._files = [storage.uri()] if uri.endswith(".parquet") else storage.glob("*.parquet")
        if not self._files:
            raise DatasetError(f"no .parquet files in {uri}")
        self._storage = storage
        self.root = storage.uri() if not uri.endswith(".parquet") else posixpath.dirname(storage.uri())
        self._counts: list[int] = []
        self._columns: set[str] = set()
        for file in self._files:
            with storage.fs.open(storage.path(file), "rb") as handle:
                metadata = pq.ParquetFile(handle).metadata
            known = {*FIELDS, *GROUND_TRUTH_FIELDS, *ALIASES}
            unknown = set(metadata.schema.to_arrow_schema().names) - known
            if unknown:
                raise DatasetError(f"{file}: unknown column(s) {', '.join(sorted(unknown))} "
                                   f"(known: {', '.join(FIELDS + GROUND_TRUTH_FIELDS)})")
            self._counts.append(metadata.num_rows)
            self._columns |= {ALIASES.get(name, name) for name in metadata.schema.to_arrow_schema().names}
        self._refuse_duplicate_ids()

    def __len__(self) -> int:
        return sum(self._counts)

    def columns(self) -> set[str]:
        return set(self._columns)

    def _refuse_duplicate_ids(self) -> None:
        """Read only the ``id`` column (when there is one) and refuse ids that repeat, naming their rows."""
        ids: list[tuple[str, int]] = []
        for file in self._files:
            with self._storage.fs.open(self._storage.path(file), "rb") as handle:
                parquet = pq.ParquetFile(handle)
                if "id" not in parquet.schema_arrow.names:
                    return
                column = parquet.read(columns=["id"]).column("id").to_pylist()
            ids += [(str(v).strip() if v not in (None, "") else f"row-{len(ids) + i}", len(ids) + i)
                    for i, v in enumerate(column)]
        refuse_duplicate_ids(ids, unit="rows")

    def fingerprint(self) -> str:
        return hashlib.sha256(json.dumps([self._files, self._counts]).encode()).hexdigest()[:16]

    def read_rows(self, start: int, stop: int) -> list[InputRow]:
        rows: list[InputRow] = []
        offset = 0
        for file, count in zip(self._files, self._counts, strict=True):
            lo, hi = max(start, offset), min(stop, offset + count)
            if lo < hi:
                table = self._read_slice(file, lo - offset, hi - offset)
                for position, record in enumerate(table.to_pylist()):
                    index = lo + position
                    clean = {k: v for k, v in record.items() if v is not None}
                    rows.append(row_from_record(index, clean, f"row-{index}"))
            offset += count
        return rows

    def _read_slice(self, file: str, start: int, stop: int) -> pa.Table:
        """Rows ``start:stop`` of one file, reading only the row groups that hold them."""
        with self._storage.fs.open(self._storage.path(file), "rb") as handle:
            parquet = pq.ParquetFile(handle)
            groups, first, position = [], None, 0
            for group in range(parquet.num_row_groups):
                size = parquet.metadata.row_group(group).num_rows
                if position < stop and position + size > start:
                    groups.append(group)
                    first = position if first is None else first
                position += size
            table = parquet.read_row_groups(groups)
        return table.slice(start - (first or 0), stop - start)


def open_dataset(uri: str, storage_options: dict[str, Any] | None = None) -> Dataset:
    """Open a dataset by its URI: ``*.jsonl`` / ``*.csv`` manifest, ``*.parquet`` file or folder of them, or an
    image folder holding ``instructions.jsonl|csv`` (or the Hugging Face ``metadata.jsonl|csv``)."""
    lowered = uri.lower().rstrip("/")
    if lowered.endswith((".jsonl", ".csv")):
        return ManifestDataset(uri, storage_options)
    if lowered.endswith(".parquet"):
        return ParquetDataset(uri, storage_options)
    storage = Storage(uri, storage_options)
    for name in MANIFEST_NAMES:
        if storage.exists(name):
            return ManifestDataset(storage.uri(name), storage_options)
    if storage.glob("*.parquet"):
        return ParquetDataset(uri, storage_options)
    raise DatasetError(f"{uri}: not a .jsonl/.csv manifest, a Parquet dataset, or a folder holding one of "
                       f"{', '.join(MANIFEST_NAMES)}")
