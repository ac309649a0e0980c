"""Hostile rows through the ``edit_catalogue`` flow (issue 24's table): each case sits between good rows in one
shard; the good rows are ``ok``, the hostile row gets a row status, the shard is committed, and a rerun changes
nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from test_pipeline import (  # noqa: F401 (fixtures: a Prefect test server for the module)
    prefect_server,
    run_flow,
)

from legoedit_core.config import Config
from legoedit_core.data.datasets import open_dataset
from legoedit_core.data.images import encode_png
from legoedit_core.data.output import RunOutput
from legoedit_core.data.synthetic import synthetic_image, write_catalogue

GOOD = ["item-00000", "item-00001"]
IMAGE = "images/item-00000.png"


def line(**fields) -> str:
    return json.dumps({"instruction": "make it black and white", "image": IMAGE} | fields)


# id of the hostile row, the raw JSONL text of its line, its expected status and a phrase its error holds.
CASES = {
    "nul-in-path": (line(id="nul", image="images/item-00000.png\u0000x"), "bad_input", "NUL byte"),
    "image-bytes-number": (line(id="bytes", image={"bytes": 5}), "bad_input", "image.bytes must be bytes"),
    "image-path-list": (line(id="pathlist", image={"path": ["a.png"]}), "bad_input", "image.path must be text"),
    "mask-bytes-number": (line(id="maskbytes", mask={"bytes": 1}), "bad_input", "mask.bytes must be bytes"),
    "seed-infinity": (line(id="inf")[:-1] + ', "seed": Infinity}', "bad_input", "seed must be an integer"),
    "seed-1e400": (line(id="huge")[:-1] + ', "seed": 1e400}', "bad_input", "seed must be an integer"),
    "seed-nan": (line(id="nan")[:-1] + ', "seed": NaN}', "bad_input", "seed must be an integer"),
    "surrogate-id": (line(id="bad\udc80"), "bad_input", "not valid Unicode"),
    "surrogate-instruction": (line(id="badtext", instruction="flip \udc80 it"), "bad_input", "not valid Unicode"),
    "nested-100k": ('{"id": "deep", "notes": ' + "[" * 100_000 + "]" * 100_000 + "}", "bad_input",
                    "nested more than 32 levels deep"),
    "reference-workflow-number": (line(id="ref", reference_workflow=5), "bad_input", "reference_workflow does not"),
    "reference-workflow-hostile": (line(id="ref2", reference_workflow={"nodes": [{"id": "a\udc80", "tool": 7}]}),
                                   "bad_input", "reference_workflow does not parse"),
    "nested-40": (line(id="deep40", notes=json.loads("[" * 40 + "]" * 40)), "bad_input", "nested more than 32"),
}


def write_hostile_catalogue(folder: Path, hostile: str) -> str:
    """Two good rows with the hostile line between them, and a bad line after it whose number must stay 4."""
    manifest = write_catalogue(str(folder), 2, ["make it black and white"])
    good = Path(manifest).read_text().splitlines()
    after = json.dumps({"id": "after", "image": IMAGE})  # no instruction
    Path(manifest).write_text("\n".join([good[0], hostile, good[1], after]) + "\n")
    return manifest


def run_twice(dataset: str, output: Path) -> dict[str, dict]:
    """Run the flow, check its one shard is committed, rerun it and check nothing changed; the rows by id."""
    config = Config.load()
    summary, _ = run_flow(dataset=dataset, output=str(output), config=config, shard_size=100)
    assert len(list(output.glob("work/*/_commits/*.json"))) == 1
    files = RunOutput(str(output)).current_files()
    parts = [Path(file.removeprefix("file://")).read_bytes() for file in files]
    rerun, _ = run_flow(dataset=dataset, output=str(output), config=config, shard_size=100)
    assert rerun["counts"] == summary["counts"] and rerun["changes"].get("new", 0) == 0
    assert rerun["changes"].get("changed", 0) == 0 and len(list(output.glob("work/*/_commits/*.json"))) == 1
    assert RunOutput(str(output)).current_files() == files
    assert [Path(file.removeprefix("file://")).read_bytes() for file in files] == parts
    return {row["id"]: row for row in RunOutput(str(output)).read_table().to_pylist()}


@pytest.mark.parametrize("case", list(CASES))
def test_a_hostile_jsonl_row_is_a_row_status_and_its_shard_is_committed(tmp_path, case):
    hostile, status, phrase = CASES[case]
    rows = run_twice(write_hostile_catalogue(tmp_path / "in", hostile), tmp_path / "out")
    assert [rows[row_id]["status"] for row_id in GOOD] == ["ok", "ok"]
    (bad,) = [row for row_id, row in rows.items() if row_id not in (*GOOD, "after")]
    assert bad["status"] == status and phrase in bad["error"]
    assert bad["error"].startswith("line 2: ") or case.startswith("reference")  # (checked where it is parsed)
    assert rows["after"]["error"].startswith("line 4: the instruction is empty")
    assert len(rows) == 4


@pytest.mark.parametrize("separator", ["\u2028", "\u2029", "\x85", "\x0c", "\x1e"], ids=ascii)
def test_a_raw_line_separator_inside_a_json_string_stays_inside_its_row(tmp_path, separator):
    hostile = json.dumps({"id": "sep", "image": IMAGE, "instruction": "x"}).replace(
        '"x"', f'"make it black and white{separator}"')
    rows = run_twice(write_hostile_catalogue(tmp_path / "in", hostile), tmp_path / "out")
    assert [rows[row_id]["status"] for row_id in GOOD] == ["ok", "ok"]
    if separator < " ":  # a raw control character is not allowed in a JSON string: one bad row, not two
        assert rows["line-2"]["status"] == "bad_input" and "line 2: not valid JSON" in rows["line-2"]["error"]
    else:  # legal inside a JSON string
        assert rows["sep"]["status"] == "ok" and rows["sep"]["instruction"] == "make it black and white"
    assert rows["after"]["error"].startswith("line 4: ") and len(rows) == 4


@pytest.mark.parametrize("seed", [float("inf"), float("-inf"), float("nan"), 0.5], ids=str)
def test_a_parquet_float_seed_that_is_no_integer_is_a_row_status(tmp_path, seed):
    folder = tmp_path / "in"
    (folder / "images").mkdir(parents=True)
    (folder / "images" / "a.png").write_bytes(encode_png(synthetic_image(1)))
    pq.write_table(pa.table({"id": ["a", "hostile", "b"], "image": ["images/a.png"] * 3,
                             "instruction": ["make it black and white"] * 3, "seed": [1.0, seed, 2.0]}),
                   folder / "data.parquet")
    rows = run_twice(str(folder / "data.parquet"), tmp_path / "out")
    assert rows["a"]["status"] == rows["b"]["status"] == "ok" and rows["a"]["seed"] == 1
    assert rows["hostile"]["status"] == "bad_input" and "seed must be an integer" in rows["hostile"]["error"]


def test_invalid_utf8_in_a_parquet_text_column_is_a_row_status(tmp_path):
    folder = tmp_path / "in"
    (folder / "images").mkdir(parents=True)
    (folder / "images" / "a.png").write_bytes(encode_png(synthetic_image(1)))
    instructions = pa.array([b"make it black and white", b"flip \xff it", b"make it black and white"], pa.binary())
    table = pa.table({"id": ["a", "hostile", "b"], "image": ["images/a.png"] * 3,
                      "instruction": instructions.view(pa.string())})
    pq.write_table(table, folder / "data.parquet")
    rows = {row.id: row for row in open_dataset(str(folder / "data.parquet")).read_rows(0, 3)}
    assert rows["a"].error is None and rows["b"].error is None
    assert "instruction is not valid Unicode" in rows["hostile"].error


def first_grayscale_call_faults(monkeypatch) -> None:
    """A fault of the machinery (``Fault("device lost")``) in the first GRAYSCALE call of the run, none after."""
    from legoedit_core.bricks.cpu.functions import Grayscale
    from legoedit_core.faults import Fault

    calls, run_one = iter(range(10**6)), Grayscale.run_one

    def first_call_faults(self, inputs, seed):
        if next(calls) == 0:
            raise Fault("device lost")
        return run_one(self, inputs, seed)

    monkeypatch.setattr(Grayscale, "run_one", first_call_faults)


def test_a_store_failing_after_a_shard_failed_still_names_the_shard(tmp_path, monkeypatch):
    from flows.failures import ShardsFailed
    from flows.scheduler import ShardScheduler
    from legoedit_core.data.storage import StorageError

    manifest = write_catalogue(str(tmp_path / "in"), 4, ["make it black and white"])
    store_down, finished, run_shards = [], RunOutput.finished, ShardScheduler.run

    def store_down_at_the_end(self):
        if store_down:
            raise StorageError(f"object store: list {self.uri}/_commits/*.json failed after 5 attempt(s): down")
        return finished(self)

    def run_then_store_goes_down(self, runs):
        run_shards(self, runs)
        store_down.append(True)

    first_grayscale_call_faults(monkeypatch)
    monkeypatch.setattr(RunOutput, "finished", store_down_at_the_end)
    monkeypatch.setattr(ShardScheduler, "run", run_then_store_goes_down)
    config = Config.load(overrides=["pipeline.task_retries=0"])
    with pytest.raises(ShardsFailed) as raised:
        run_flow(dataset=manifest, output=str(tmp_path / "out"), config=config, shard_size=2,
                 max_concurrent_shards=1)
    message = str(raised.value)
    assert "1 of 2 shard(s) not committed: shard 0 (rows 0-1)" in message and "device lost" in message
    assert "Writing the summary and report failed too" in message and "_commits/*.json failed" in message


def test_an_edit_whose_output_would_not_fit_is_refused_before_it_runs(tmp_path):
    import numpy as np

    hostile = line(id="tall", image="images/tall.png", instruction="resize it to 8192 pixels wide")
    manifest = write_hostile_catalogue(tmp_path / "in", hostile)
    (tmp_path / "in" / "images" / "tall.png").write_bytes(encode_png(np.full((8192, 4, 3), 90, np.uint8)))
    rows = run_twice(manifest, tmp_path / "out")  # 8192 wide is 8192x16777216: no MemoryError, a row status
    assert [rows[row_id]["status"] for row_id in GOOD] == ["ok", "ok"]
    assert rows["tall"]["status"] == "failed" and "would be 8192x16777216" in rows["tall"]["error"]


def test_a_run_whose_shard_failed_commits_a_version_of_what_finished_and_a_rerun_completes_it(tmp_path, monkeypatch):
    from flows.failures import ShardsFailed

    manifest = write_catalogue(str(tmp_path / "in"), 4, ["make it black and white"])
    first_grayscale_call_faults(monkeypatch)
    config = Config.load(overrides=["pipeline.task_retries=0"])
    output = RunOutput(str(tmp_path / "out"))
    with pytest.raises(ShardsFailed, match="1 of 2 shard"):
        run_flow(dataset=manifest, output=output.uri, config=config, shard_size=2, max_concurrent_shards=1)
    record = output.version()
    assert record["version"] == 1 and record["counts"]["pending"] == 2 and record["rows"] == 2
    rows = output.read_table().to_pylist()  # the committed shard is the current view: not empty
    assert [(row["id"], row["status"]) for row in rows] == [("item-00002", "ok"), ("item-00003", "ok")]

    summary, _ = run_flow(dataset=manifest, output=output.uri, config=config, shard_size=2)
    assert summary["version"] == 2 and summary["changes"]["new"] == 2 and summary["changes"]["unchanged"] == 2
    rows = output.read_table().to_pylist()
    assert sorted(row["id"] for row in rows) == [f"item-{i:05d}" for i in range(4)]  # each id once
    assert {row["status"] for row in rows} == {"ok"} and "pending" not in output.version()["counts"]
