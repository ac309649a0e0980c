"""Incremental runs: an output follows its catalogue over time, one version per run (real Prefect server, local disk
and S3 on loopback)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

import datasets as hf
import nbformat
import numpy as np
import pytest
import s3fs
from nbclient import NotebookClient
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from prefect.flow_engine import run_flow
from prefect.settings import PREFECT_API_URL
from prefect.testing.utilities import prefect_test_harness
from test_pipeline import make_bucket, moto_server, s3_options, with_pipeline  # noqa: F401 (moto_server: a fixture)

from flows.edit_catalogue import edit_catalogue
from legoedit.cli import main
from legoedit_core.config import Config
from legoedit_core.data.datasets import open_dataset
from legoedit_core.data.images import encode_png
from legoedit_core.data.incremental import IncompleteVersion, commit_version, decide, work_output
from legoedit_core.data.output import CommitConflict, OutputMismatch, RunOutput, config_fingerprint
from legoedit_core.data.rows import empty_row, rows_to_table
from legoedit_core.data.storage import Storage
from legoedit_core.data.synthetic import synthetic_image, write_catalogue

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "explore_run.ipynb"
GREY = "make it black and white"


@pytest.fixture(scope="module", autouse=True)
def prefect_server():
    with prefect_test_harness(server_startup_timeout=180):
        yield


@pytest.fixture(scope="module")
def config() -> Config:
    return Config.load(overrides=["pipeline.retry_delay_seconds=0"])


def run(manifest: str, output: str, config: Config, **parameters) -> tuple[dict, str]:
    state = edit_catalogue(dataset=manifest, output=output, config=with_pipeline(config, shard_size=4),
                           return_state=True, **parameters)
    return state.result(), str(state.state_details.flow_run_id)


def planned(flow_run_id: str, expected: int = 0) -> int:
    """How many shards the flow run planned, from the server's task runs (which it records shortly after the run:
    waits up to 15 s for ``expected`` of them, then a little more for any late ones)."""
    def count() -> int:
        runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])), limit=200)
        return sum(run.name.startswith("plan shard") for run in runs)

    deadline = time.monotonic() + 15
    with get_client(sync_client=True) as client:
        while count() < expected and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(0.5)
        return count()


def manifest_rows(manifest: str, options: dict | None = None) -> list[dict]:
    storage = Storage(manifest, options)
    return [json.loads(line) for line in storage.read_bytes().decode().splitlines()]


def write_manifest(manifest: str, rows: list[dict], options: dict | None = None) -> None:
    Storage(manifest, options).write_bytes("".join(json.dumps(row) + "\n" for row in rows).encode())


def rows_by_id(output: RunOutput, version: int | None = None) -> dict[str, dict]:
    table = output.read_table(version)
    ids = table.column("id").to_pylist()
    assert len(ids) == len(set(ids)), "an id appears more than once"
    return {row["id"]: row for row in table.to_pylist()}


def edited_in(output: RunOutput, version: int) -> set[str]:
    """The ids that version ``version`` edited (the rows of its own work's parts)."""
    record = output.version(version)
    return {row_id for part in record["parts"] if part["path"].startswith(record["work"] + "/parts/")
            for row_id in output.read_path(part["path"], ["id"]).column("id").to_pylist()}


def append_rows(root: Path, manifest: str, start: int, count: int) -> None:
    rows = manifest_rows(manifest)
    for index in range(start, start + count):
        (root / "images" / f"item-{index:05d}.png").write_bytes(encode_png(synthetic_image(index)))
        rows.append({"id": f"item-{index:05d}", "image": f"images/item-{index:05d}.png", "instruction": GREY,
                     "seed": index})
    write_manifest(manifest, rows)


def test_a_grown_catalogue_edits_only_its_new_rows_and_the_others_stay_byte_identical(tmp_path, config,
                                                                                      monkeypatch):
    manifest = write_catalogue(str(tmp_path / "in"), 8, [GREY])
    output = RunOutput(str(tmp_path / "out"))
    first, _ = run(manifest, output.uri, config)
    assert first["version"] == 1 and first["changes"] == {"new": 8, "changed": 0, "unchanged": 0, "removed": 0,
                                                          "retried": 0, "failed": 0}
    before = rows_by_id(output)

    append_rows(tmp_path / "in", manifest, 8, 4)
    second, flow_run_id = run(manifest, output.uri, config)
    assert second["version"] == 2 and second["changes"]["new"] == 4 and second["changes"]["unchanged"] == 8
    assert planned(flow_run_id, 1) == 1  # one shard of 4 new rows, not three shards of the catalogue
    after = rows_by_id(output)
    assert sorted(after) == [f"item-{i:05d}" for i in range(12)]
    assert all(after[row_id] == row for row_id, row in before.items())  # untouched, byte for byte
    assert edited_in(output, 2) == {f"item-{i:05d}" for i in range(8, 12)}
    assert output.version(2)["parts"][:2] == output.version(1)["parts"]  # the earlier parts reused, not rewritten
    assert (tmp_path / "out" / "reports" / "00002.html").exists()

    notebook = nbformat.read(NOTEBOOK, as_version=4)  # the notebook reads the current view
    monkeypatch.setenv("LEGOEDIT_RUN", output.uri)
    NotebookClient(notebook, timeout=120, kernel_name="python3",
                   resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()
    first_code = next(cell for cell in notebook.cells[1:] if cell.cell_type == "code" and "RunOutput(" in cell.source)
    assert "12 rows in version 2 of 2" in "".join(out.get("text", "") for out in first_code.outputs)


def test_exactly_the_changed_rows_are_re_edited_and_removed_rows_leave_the_current_view_only(tmp_path, config):
    root = tmp_path / "in"
    manifest = write_catalogue(str(root), 10, [GREY])
    (root / "mask.png").write_bytes(encode_png(np.full((72, 96), 255, np.uint8)))
    output = RunOutput(str(tmp_path / "out"))
    run(manifest, output.uri, config)
    version_1 = rows_by_id(output)

    rows = {row["id"]: row for row in manifest_rows(manifest)}
    rows["item-00001"]["instruction"] = "flip it horizontally"
    rows["item-00002"]["seed"] = 99
    rows["item-00003"]["mask"] = "mask.png"
    image = root / "images" / "item-00004.png"  # same name, new bytes
    image.write_bytes(encode_png(synthetic_image(1234)))
    del rows["item-00008"], rows["item-00009"]
    write_manifest(manifest, list(rows.values()))
    summary, _ = run(manifest, output.uri, config)

    assert summary["changes"] | {"failed": 0} == {"new": 0, "changed": 4, "unchanged": 4, "removed": 2,
                                                  "retried": 0, "failed": 0}
    assert edited_in(output, 2) == {"item-00001", "item-00002", "item-00003", "item-00004"}
    current = rows_by_id(output)
    assert sorted(current) == [f"item-{i:05d}" for i in range(8)]
    assert current["item-00001"]["trace"][0]["tool"] == "FLIP" and current["item-00002"]["seed"] == 99
    assert current["item-00004"]["source_image"]["bytes"] == image.read_bytes()
    for row_id in ("item-00000", "item-00005", "item-00006", "item-00007"):
        assert current[row_id] == version_1[row_id]
    assert rows_by_id(output, version=1) == version_1  # the earlier version reads as it was, removed rows too
    current_view = hf.load_dataset("parquet", data_files=output.current_files(), split="train")
    assert sorted(current_view["id"]) == sorted(current) and isinstance(current_view.features["edited_image"],
                                                                        hf.Image)
    assert hf.load_dataset("parquet", data_files=output.current_files(1), split="train").num_rows == 10


def test_no_change_edits_nothing_and_says_so(tmp_path, config, capsys):
    manifest = write_catalogue(str(tmp_path / "in"), 6, [GREY])
    output = RunOutput(str(tmp_path / "out"))
    run(manifest, output.uri, config)
    summary, flow_run_id = run(manifest, output.uri, config)
    assert summary["version"] == 2 and planned(flow_run_id) == 0
    assert summary["changes"] == {"new": 0, "changed": 0, "unchanged": 6, "removed": 0, "retried": 0, "failed": 0}
    assert output.version(2)["parts"] == output.version(1)["parts"]

    # the command prints the same counts (on the test's Prefect server)
    assert main(["run", manifest, output.uri, "--shard-size", "4", "--set", "pipeline.retry_delay_seconds=0"]) == 0
    printed = capsys.readouterr().out
    assert "version 3: new 0, changed 0, unchanged 6, removed 0, failed 0: nothing changed, nothing edited" in printed


def test_a_config_change_is_refused_unless_asked_for(tmp_path, config):
    manifest = write_catalogue(str(tmp_path / "in"), 4, [GREY])
    output = RunOutput(str(tmp_path / "out"))
    run(manifest, output.uri, config)
    other = Config.load(overrides=["pipeline.retry_delay_seconds=0", "planner.max_attempts=5"])
    with pytest.raises(OutputMismatch, match="planner.max_attempts.*--reedit-all"):
        run(manifest, output.uri, other)
    summary, _ = run(manifest, output.uri, other, recorded_config=True)
    assert summary["changes"]["unchanged"] == 4  # the recorded config: nothing to re-edit
    summary, _ = run(manifest, output.uri, other, reedit_all=True)
    assert summary["changes"]["changed"] == 4 and output.version()["config"]["planner"]["max_attempts"] == 5
    summary, _ = run(manifest, output.uri, other)  # the output now follows the new config
    assert summary["changes"]["unchanged"] == 4
    summary, _ = run(manifest, output.uri, other, reedit_all=True)  # asked for: every row again, same config
    assert summary["changes"]["changed"] == 4 and summary["version"] == 5


def test_retry_failed_re_edits_only_rows_that_are_not_ok(tmp_path, config):
    manifest = write_catalogue(str(tmp_path / "in"), 6, [GREY, "sing a song"])
    output = RunOutput(str(tmp_path / "out"))
    first, _ = run(manifest, output.uri, config)
    assert first["counts"] == {"ok": 3, "invalid_plan": 3}
    summary, _ = run(manifest, output.uri, config, retry_failed=True)
    assert summary["changes"]["retried"] == 3 and summary["changes"]["unchanged"] == 3
    assert edited_in(output, 2) == {"item-00001", "item-00003", "item-00005"}
    assert len(rows_by_id(output)) == 6


def test_deciding_reads_no_image_and_sees_a_replaced_object_on_s3(moto_server, config, monkeypatch):  # noqa: F811
    make_bucket(moto_server, "decide")
    options = s3_options(moto_server)
    manifest = write_catalogue("s3://decide/catalogue", 5, [GREY], storage_options=options)
    output = RunOutput("s3://decide/out", options)
    run(manifest, output.uri, config, storage_options=options)
    storage = Storage("s3://decide/catalogue", options)
    image = storage.read_bytes("images/item-00002.png")
    storage.write_bytes(image[:-1] + bytes([image[-1] ^ 1]), "images/item-00002.png")  # same size, new bytes

    def no_reads(self, *args, **kwargs):
        raise AssertionError(f"an image was read: {args}")

    monkeypatch.setattr(Storage, "read_capped", no_reads)  # what every image read of an S3 dataset goes through
    change = decide(output, open_dataset(manifest, options), output.recorded_config(), 4)
    assert change.counts["changed"] == 1 and [change.ids[i] for i in change.work] == ["item-00002"]


def test_fingerprints_differ_with_the_config(tmp_path):
    manifest = write_catalogue(str(tmp_path / "in"), 2, [GREY])
    output = RunOutput(str(tmp_path / "out"))
    dataset = open_dataset(manifest)
    one = decide(output, dataset, Config.load().model_dump(mode="json"), 4)
    two = decide(output, dataset, Config.load(overrides=["planner.max_attempts=5"]).model_dump(mode="json"), 4)
    assert config_fingerprint(Config.load().model_dump(mode="json")) and one.fingerprints != two.fingerprints
    assert one.key != two.key


# -------------------------------------------------------------------------------------------- kill -9 mid run
KILLED_RUN = """
import json, sys
from flows.edit_catalogue import edit_catalogue
from legoedit_core.config import Config
manifest, output, options = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
config = Config.load(overrides=["pipeline.retry_delay_seconds=0", "pipeline.shard_size=2",
                                "pipeline.max_concurrent_shards=1"])
edit_catalogue(dataset=manifest, output=output, config=config, storage_options=options or None, report=False)
"""


def kill_9_mid_run(manifest: str, output: RunOutput, options: dict | None) -> None:
    """Run the flow in a child process and SIGKILL it once its work committed a shard (and before the version)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), PREFECT_API_URL=PREFECT_API_URL.value(), LEGOEDIT_LEASE_SECONDS="3")
    child = subprocess.Popen([sys.executable, "-c", KILLED_RUN, manifest, output.uri, json.dumps(options)],
                             env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while not output.storage.glob("work/v00002-*/_commits/*.json"):
        assert child.poll() is None, child.communicate()[1][-3000:]
        assert time.monotonic() < deadline
        time.sleep(0.05)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    time.sleep(3.5)  # its lease runs out


@pytest.mark.parametrize("store", ["local", "s3"])
def test_kill_9_mid_incremental_run_then_rerun_holds_every_id_once(tmp_path, config, moto_server, store):  # noqa: F811
    if store == "s3":
        make_bucket(moto_server, "killed")
        options, root = s3_options(moto_server), "s3://killed"
    else:
        options, root = None, str(tmp_path)
    manifest = write_catalogue(f"{root}/in", 4, [GREY], storage_options=options)
    output = RunOutput(f"{root}/out", options)
    config = with_pipeline(config, shard_size=2)
    edit_catalogue(dataset=manifest, output=output.uri, config=config, storage_options=options)
    version_1 = rows_by_id(output)
    storage = Storage(f"{root}/in", options)
    rows = manifest_rows(manifest, options)
    for index in range(4, 40):  # 36 new rows (reusing one image): 18 shards of work
        rows.append({"id": f"item-{index:05d}", "image": "images/item-00000.png", "instruction": GREY, "seed": index})
    write_manifest(manifest, rows, options)
    assert storage.exists("images/item-00000.png")

    kill_9_mid_run(manifest, output, options)
    assert output.versions() == [1] and rows_by_id(output) == version_1  # nothing of the killed run is visible
    committed = len(output.storage.glob("work/v00002-*/_commits/*.json"))

    state = edit_catalogue(dataset=manifest, output=output.uri, config=config, storage_options=options,
                           return_state=True)
    summary = state.result()
    assert summary["version"] == 2 and summary["changes"]["new"] == 36
    left = 18 - committed
    assert planned(str(state.state_details.flow_run_id), left) == left  # the committed shards are not redone
    current = rows_by_id(output)  # (asserts every id once)
    assert sorted(current) == [f"item-{i:05d}" for i in range(40)]
    assert rows_by_id(output, version=1) == version_1


# ----------------------------------------------------------------------------------- a scheduled deployment
def test_a_scheduled_deployment_makes_a_version_and_a_counts_artifact_per_run(tmp_path, config):
    manifest = write_catalogue(str(tmp_path / "in"), 4, [GREY])
    output = str(tmp_path / "out")
    deployment = edit_catalogue.to_deployment(
        name="follow-catalogue", interval=timedelta(days=1),
        parameters={"dataset": manifest, "output": output,
                    "config": with_pipeline(config, shard_size=4).model_dump(mode="json")})
    deployment_id = deployment.apply()
    artifacts = []
    with get_client(sync_client=True) as client:
        assert client.read_deployment(deployment_id).schedules[0].schedule.interval == timedelta(days=1)
        for grown in (False, True):
            if grown:
                append_rows(tmp_path / "in", manifest, 4, 1)
            flow_run = client.create_flow_run_from_deployment(deployment_id)
            run_flow(edit_catalogue, flow_run=flow_run, parameters=flow_run.parameters)
            assert client.read_flow_run(flow_run.id).state.is_completed()
            response = client.request("POST", "/artifacts/filter", json={"artifacts": {
                "key": {"any_": ["edit-catalogue-version"]}, "flow_run_id": {"any_": [str(flow_run.id)]}}})
            artifacts += [found["data"] for found in response.json()]
    assert RunOutput(output).versions() == [1, 2]
    assert "| new | 4 |" in artifacts[0] and "| new | 1 |" in artifacts[1] and "| unchanged | 4 |" in artifacts[1]
    assert f"(file://{output}/reports/00002.html)" in artifacts[1]


# ------------------------------------------------------------------------------------------- the core, no Prefect
def commit_plain(output: RunOutput, manifest: str, before_commit=lambda: None) -> dict:
    """One version the plain-loop way: decide, write each shard of the work as image-less ok rows, commit."""

    dataset = open_dataset(manifest)
    config = Config().model_dump(mode="json")
    change = decide(output, dataset, config, 2)
    work = work_output(output, change)
    for shard in change.dataset(dataset).shards(2):
        work.commit(work.write_part(shard.index, rows_to_table(
            [empty_row(row.id, "ok") for row in change.dataset(dataset).read_rows(shard.start, shard.stop)])))
    before_commit()
    return commit_version(output, change, work, {"config": config})


def test_two_writers_racing_for_one_version_number_commit_it_once(tmp_path):

    manifest = write_catalogue(str(tmp_path / "in"), 5, [GREY])
    output = RunOutput(str(tmp_path / "out"))
    outcomes: list[str] = []
    decided = threading.Barrier(4)  # all four decided version 1 before any commits it

    def commit() -> None:
        try:
            outcomes.append(f"version {commit_plain(output, manifest, decided.wait)['version']}")
        except CommitConflict:
            outcomes.append("refused")

    threads = [threading.Thread(target=commit) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["refused"] * 3 + ["version 1"] and output.versions() == [1]
    assert sorted(rows_by_id(output)) == [f"item-{i:05d}" for i in range(5)]


def test_an_emptied_catalogue_removes_every_row_and_an_empty_one_makes_an_empty_version(tmp_path):
    manifest = write_catalogue(str(tmp_path / "in"), 3, [GREY])
    output = RunOutput(str(tmp_path / "out"))
    commit_plain(output, manifest)
    Path(manifest).write_text("")
    record = commit_plain(output, manifest)
    assert record["counts"]["removed"] == 3 and output.read_table().num_rows == 0
    assert output.read_table(version=1).num_rows == 3
    assert commit_plain(RunOutput(str(tmp_path / "fresh")), manifest)["rows"] == 0


def test_a_version_is_committed_with_what_finished_and_one_that_would_repeat_an_id_is_not(tmp_path):
    manifest = write_catalogue(str(tmp_path / "in"), 5, [GREY])
    output = RunOutput(str(tmp_path / "out"))
    config = Config().model_dump(mode="json")
    change = decide(output, open_dataset(manifest), config, 2)
    work = work_output(output, change)
    work.commit(work.write_part(0, rows_to_table([empty_row(row_id, "ok") for row_id in change.ids[:2]])))
    work.commit(work.write_part(1, rows_to_table([empty_row(change.ids[1], "ok")])))  # an id a second time
    with pytest.raises(IncompleteVersion, match="2 finished ids exactly once \\(3 rows\\)"):
        commit_version(output, change, work, {"config": config})
    assert output.versions() == []

    work.commit(work.write_part(1, rows_to_table([empty_row(row_id, "ok") for row_id in change.ids[2:4]])),
                attempt=1)
    record = commit_version(output, change, work, {"config": config})  # shard 2 did not finish: pending
    assert record["counts"]["pending"] == 1 and output.versions() == [1]
    assert sorted(output.read_table().column("id").to_pylist()) == change.ids[:4]
    assert decide(output, open_dataset(manifest), config, 2).counts["new"] == 1  # the next run edits the rest


def test_a_version_put_that_lands_but_answers_an_error_is_retried_and_recognised_on_s3(moto_server, config,  # noqa: F811
                                                                                       monkeypatch):
    """The store takes the version record, then the connection drops before the answer: the retried conditional put
    finds the name taken by this run's own record and the run goes on (no second version, no conflict)."""
    make_bucket(moto_server, "dropped")
    options = s3_options(moto_server)
    manifest = write_catalogue("s3://dropped/catalogue", 4, [GREY], storage_options=options)
    monkeypatch.setenv("LEGOEDIT_STORAGE_WAIT", "0.05")
    pipe = s3fs.S3FileSystem._pipe_file
    dropped: list[str] = []

    async def lands_then_drops(self, path, data, *args, **kwargs):
        answer = await pipe(self, path, data, *args, **kwargs)
        if "_versions/" in path and path.endswith(".json") and not dropped:
            dropped.append(path)
            raise ConnectionResetError("connection reset by peer (injected after the put landed)")
        return answer

    monkeypatch.setattr(s3fs.S3FileSystem, "_pipe_file", lands_then_drops)
    s3fs.S3FileSystem.clear_instance_cache()  # file systems bind their sync methods when made
    summary, _ = run(manifest, "s3://dropped/out", config, storage_options=options)
    output = RunOutput("s3://dropped/out", options)
    assert dropped == ["dropped/out/_versions/00001.json"] and summary["version"] == 1
    assert output.versions() == [1] and sorted(rows_by_id(output)) == [f"item-{i:05d}" for i in range(4)]
