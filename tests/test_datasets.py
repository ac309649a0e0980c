"""Dataset readers, sharding, bad rows and the output schema, without Prefect."""

from __future__ import annotations

import json

import datasets as hf
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from flow_runs import edited_rows
from prefect.testing.utilities import prefect_test_harness

from legoedit_core.data.datasets import DatasetError, make_shards, open_dataset
from legoedit_core.data.images import decode_image, encode_png
from legoedit_core.data.output import RunOutput
from legoedit_core.data.rows import OUTPUT_SCHEMA, empty_row
from legoedit_core.data.storage import Storage, StorageError, is_transient
from legoedit_core.data.synthetic import synthetic_image, write_catalogue
from legoedit_core.pipeline.shard import load_row


@pytest.fixture(scope="module")
def prefect_server():
    with prefect_test_harness(server_startup_timeout=180):
        yield


def test_shards_are_consecutive_and_stable():
    shards = make_shards(10, 4)
    assert [(s.start, s.stop) for s in shards] == [(0, 4), (4, 8), (8, 10)]
    assert make_shards(10, 4) == shards
    with pytest.raises(ValueError, match="at least 1"):
        make_shards(10, 0)


def test_jsonl_manifest_reads_rows_lazily_and_resolves_relative_paths(tmp_path):
    manifest = write_catalogue(str(tmp_path), 5)
    dataset = open_dataset(manifest)
    assert len(dataset) == 5
    rows = dataset.read_rows(2, 4)
    assert [r.id for r in rows] == ["item-00002", "item-00003"]
    assert rows[0].image == str(tmp_path / "images/item-00002.png")  # a path, not yet pixels
    assert rows[0].seed == 2 and rows[0].error is None
    assert np.array_equal(load_row(rows[0], dataset.reader()).image, synthetic_image(2))


def test_bad_rows_are_rows_with_clear_errors(tmp_path):
    (tmp_path / "good.png").write_bytes(encode_png(synthetic_image(0)))
    (tmp_path / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    lines = [
        json.dumps({"id": "good", "image": "good.png", "instruction": "flip it"}).encode(),
        json.dumps({"id": "missing", "image": "nowhere.png", "instruction": "flip it"}).encode(),
        json.dumps({"id": "corrupt", "image": "corrupt.png", "instruction": "flip it"}).encode(),
        json.dumps({"id": "empty", "image": "good.png", "instruction": "  "}).encode(),
        json.dumps({"id": "typo", "image": "good.png", "instrucion": "flip it"}).encode(),
        b'{"id": "latin1", "image": "good.png", "instruction": "caf\xe9"}',
        b"{not json",
    ]
    (tmp_path / "m.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    dataset = open_dataset(str(tmp_path / "m.jsonl"))
    rows = [load_row(r, dataset.reader()) for r in dataset.read_rows(0, 7)]
    errors = {r.row.id: r.row.error for r in rows}
    assert errors["good"] is None and rows[0].image is not None
    assert "file not found" in errors["missing"] and "nowhere.png" in errors["missing"]
    assert "corrupt.png" in errors["corrupt"] and "corrupt" in errors["corrupt"]
    assert "instruction is empty" in errors["empty"]
    assert "unknown field(s) instrucion" in errors["typo"]
    assert errors["line-6"] == "line 6: not valid UTF-8"
    assert errors["line-7"].startswith("line 7: not valid JSON")


def test_csv_manifest_and_image_folder(tmp_path):
    (tmp_path / "a.png").write_bytes(encode_png(synthetic_image(1)))
    (tmp_path / "instructions.csv").write_text("file_name,instruction,seed\na.png,flip it,7\na.png,,\n")
    dataset = open_dataset(str(tmp_path))  # an image folder with its instructions file
    rows = dataset.read_rows(0, 2)
    assert rows[0].image == str(tmp_path / "a.png") and rows[0].seed == 7 and rows[0].error is None
    assert rows[1].id == "line-3" and "instruction is empty" in rows[1].error


def test_parquet_dataset_with_embedded_images_reads_only_its_slice(tmp_path):
    images = [{"bytes": encode_png(synthetic_image(i)), "path": None} for i in range(6)]
    table = pa.table({"id": [f"p{i}" for i in range(6)], "instruction": ["flip it"] * 6, "image": images})
    pq.write_table(table, tmp_path / "data.parquet", row_group_size=2)
    dataset = open_dataset(str(tmp_path / "data.parquet"))
    rows = dataset.read_rows(3, 5)
    assert [r.id for r in rows] == ["p3", "p4"]
    assert np.array_equal(load_row(rows[0], dataset.reader()).image, synthetic_image(3))
    pq.write_table(table.append_column("colour", pa.array(["red"] * 6)), tmp_path / "wrong.parquet")
    with pytest.raises(DatasetError, match="unknown column"):
        open_dataset(str(tmp_path / "wrong.parquet"))


def test_memory_filesystem_works_like_a_folder():
    manifest = write_catalogue("memory://legoedit-test/cat", 3)
    assert manifest.startswith("memory://") and manifest.endswith("legoedit-test/cat/catalogue.jsonl")
    dataset = open_dataset(manifest)
    assert load_row(dataset.read_rows(0, 3)[1], dataset.reader()).image.shape == (72, 96, 3)


def test_storage_retries_transient_errors_and_names_permanent_ones(monkeypatch):
    monkeypatch.setenv("LEGOEDIT_STORAGE_WAIT", "0.01")
    storage = Storage("memory://legoedit-retry")
    storage.write_bytes(b"data", "x.bin")
    calls = []

    def flaky(path):
        calls.append(path)
        if len(calls) < 3:
            raise ConnectionResetError("connection reset by peer")
        return b"data"

    monkeypatch.setattr(storage.fs, "cat_file", flaky)
    assert storage.read_bytes("x.bin") == b"data" and len(calls) == 3
    monkeypatch.setattr(storage.fs, "cat_file", lambda path: (_ for _ in ()).throw(OSError(5, "503 SlowDown")))
    with pytest.raises(StorageError, match=r"read .*x.bin failed after 5 attempt\(s\)"):
        storage.read_bytes("x.bin")
    assert not is_transient(FileNotFoundError("x")) and not is_transient(PermissionError("x"))


def test_output_rows_load_with_pyarrow_pandas_and_datasets(tmp_path, prefect_server):
    manifest = write_catalogue(str(tmp_path / "in"), 6, instructions=["make it black and white", "sing a song"])
    table = edited_rows(manifest, str(tmp_path / "out"), shard_size=6)
    assert table.column("status").to_pylist() == ["ok", "invalid_plan"] * 3

    files = RunOutput(str(tmp_path / "out")).current_files()
    read = pq.read_table(files)
    assert read.schema.equals(OUTPUT_SCHEMA, check_metadata=False) and read.num_rows == 6
    frame = pd.read_parquet(files)
    assert list(frame["id"]) == [f"item-{i:05d}" for i in range(6)]
    loaded = hf.load_dataset("parquet", data_files=files, split="train")
    assert isinstance(loaded.features["edited_image"], hf.Image)
    edited = loaded[0]["edited_image"]
    assert edited.size == (96, 72)
    grey = np.asarray(edited.convert("RGB"))
    assert np.array_equal(grey[..., 0], grey[..., 1])  # black and white really happened
    assert loaded[1]["edited_image"] is None and "cannot do 'sing a song'" in loaded[1]["error"]
    assert decode_image(read.column("source_image")[0].as_py()["bytes"]).shape == (72, 96, 3)


def test_a_row_with_an_unknown_status_is_refused():
    with pytest.raises(ValueError, match="unknown status"):
        empty_row("a", "great")
