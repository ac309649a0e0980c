"""Input datasets: a JSONL or CSV manifest, a Parquet table, or an image folder with an instructions file.

All are read through ``Storage`` (fsspec), so local paths, ``s3://`` and ``memory://`` work alike. Opening a
dataset reads only its listing (the manifest text, or the Parquet metadata); images are read later, by the shard
that needs them. Rows keep their dataset order and shards are consecutive slices of it, so a rerun over the same
dataset with the same shard size makes the same shards.

A row that cannot be used (not UTF-8, not JSON, nested too deep, unknown fields, no instruction, a value of the
wrong type, ...) is still a row: it carries ``error`` and becomes a ``bad_input`` output row; the rest of its shard
goes on. Every value is checked where rows are read (``records.py``), so no later stage can fail on a row's data.

A JSONL manifest is split into lines the way JSON defines them: at ``\n`` only (``\r\n`` too), so a raw U+2028,
NEL or form feed inside a string stays inside its row.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import posixpath
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from legoedit_core.data.inputs import InputReader
from legoedit_core.data.records import (  # noqa: F401 (default_seed stays importable from here)
    ALIASES,
    FIELDS,
    GROUND_TRUTH_FIELDS,
    MAX_NESTING,
    InputRow,
    default_seed,
    nesting,
    normalise_id,
    row_from_record,
)
from legoedit_core.data.storage import Storage
from legoedit_core.settings.inputs import InputSettings

MANIFEST_NAMES = ("instructions.jsonl", "instructions.csv", "metadata.jsonl", "metadata.csv")
REQUIRED_FIELDS = ("image", "instruction")  # without them every row is bad_input


class DatasetError(ValueError):
    """The dataset as a whole cannot be read (no such file, unknown format, wrong columns)."""


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
    """Records of a JSONL manifest, by ``\n``-separated lines (not ``str.splitlines``: U+2028, NEL, form feed and
    the like are legal inside JSON strings), each checked for its nesting with its line number."""
    for number, line in enumerate(text.split("\n"), start=1):
        line = line.removesuffix("\r")
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
        except ValueError:  # the only other error json.loads raises: an integer longer than Python converts
            yield number, None, f"holds a number of more than {sys.get_int_max_str_digits()} digits"
            continue
        except RecursionError:
            yield number, None, f"nested more than {MAX_NESTING} levels deep"
            continue
        if not isinstance(record, dict):
            yield number, None, f"expected a JSON object, got {type(record).__name__}"
        elif nesting(record) > MAX_NESTING:
            yield number, None, f"nested more than {MAX_NESTING} levels deep"
        else:
            yield number, record, None


def _csv_records(text: str, uri: str) -> Iterator[tuple[int, dict[str, Any] | None, str | None]]:
    """Records of a CSV manifest; a quote left open is a ``DatasetError`` naming the line it opens on (the
    reader would otherwise swallow every following line into one field)."""
    # A field may be as long as the file (a long value is its row's problem, judged in records.py): the csv
    # module's default limit (131,072 characters) would otherwise refuse the whole manifest.
    csv.field_size_limit(max(csv.field_size_limit(), len(text)))
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
    """The id a record's row will have (the fallback for a record without a usable one)."""
    return normalise_id((record or {}).get("id"), f"line-{line}")[0]


def refuse_duplicate_ids(ids: Iterable[tuple[str, int]], unit: str = "lines") -> None:
    """Raise a ``DatasetError`` listing every id that occurs more than once, with its lines (or rows)."""
    where: dict[str, list[int]] = {}
    for row_id, line in ids:
        where.setdefault(row_id, []).append(line)
    duplicated = {row_id: lines for row_id, lines in where.items() if len(lines) > 1}
    if duplicated:
        listed = "; ".join(f"{ascii(row_id[:80])} on {unit} {', '.join(map(str, lines))}"
                           for row_id, lines in list(duplicated.items())[:20])
        raise DatasetError(f"{len(duplicated)} id(s) occur more than once (every row needs its own id): {listed}")


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
                column = _values(parquet.read(columns=["id"]).column("id"))
            ids += [(normalise_id(v, f"row-{len(ids) + i}")[0], len(ids) + i) for i, v in enumerate(column)]
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
                columns = {name: _values(table.column(name)) for name in table.column_names}
                for position, values in enumerate(zip(*columns.values(), strict=True)):
                    index = lo + position
                    clean = {k: v for k, v in zip(columns, values, strict=True) if v is not None}
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


class Undecodable:
    """A Parquet value that Arrow cannot turn into Python (invalid UTF-8 inside a struct): its row's problem."""

    def __repr__(self) -> str:
        return "<undecodable value>"


def _values(column: pa.ChunkedArray) -> list[Any]:
    """A column's Python values. Text is decoded leniently (invalid UTF-8 becomes lone surrogates, which the row's
    checks refuse), and a value Arrow cannot convert becomes ``Undecodable``: one bad value never fails a shard."""
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        raw = column.cast(pa.large_binary()).to_pylist()
        return [None if value is None else value.decode("utf-8", "surrogateescape") for value in raw]
    try:
        return column.to_pylist()
    except (UnicodeDecodeError, pa.ArrowException, ValueError, OverflowError):
        return [_value(scalar) for scalar in column]


def _value(scalar: pa.Scalar) -> Any:
    try:
        return scalar.as_py()
    except (UnicodeDecodeError, pa.ArrowException, ValueError, OverflowError):
        return Undecodable()


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
