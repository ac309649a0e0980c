"""Data safety of the ``edit_catalogue`` flow and the ``legoedit run`` command: confinement end to end (local and
S3), one writer per output, config changes, retries, image file names, and stopping on Ctrl-C / SIGTERM."""

from __future__ import annotations

import glob
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import s3fs
from test_data_safety import SECRET, escaping_catalogue
from test_pipeline import (  # noqa: F401 (fixtures: a Prefect test server for the module, a moto server)
    make_bucket,
    moto_server,
    prefect_server,
    run_flow,
    s3_options,
)

from legoedit_core.config import Config
from legoedit_core.data.datasets import DatasetError
from legoedit_core.data.lease import LeaseHeld
from legoedit_core.data.output import OutputMismatch, RunOutput, image_key
from legoedit_core.data.synthetic import write_catalogue

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def config() -> Config:
    return Config.load()


def every_byte(folder: Path) -> bytes:
    return b"".join(path.read_bytes() for path in folder.rglob("*") if path.is_file())


def test_escaping_references_in_one_shard_are_bad_input_and_nothing_of_them_reaches_the_output(tmp_path, config):
    manifest, escapes = escaping_catalogue(tmp_path)
    summary, _ = run_flow(dataset=manifest, output=str(tmp_path / "out"), config=config, shard_size=100,
                          write_images=True)
    assert summary["counts"] == {"ok": 3, "bad_input": len(escapes)}
    rows = {row["id"]: row for row in RunOutput(str(tmp_path / "out")).read_table().to_pylist()}
    assert all(rows[row_id]["status"] == "bad_input" and rows[row_id]["source_image"] is None for row_id in escapes)
    written = every_byte(tmp_path / "out")  # parts, images, report, manifest, commit records
    assert SECRET not in written and b"AWS_SECRET" not in written and os.environ["PATH"].encode() not in written


def test_s3_keys_outside_the_dataset_prefix_are_refused(moto_server, config):  # noqa: F811
    make_bucket(moto_server, "data")
    make_bucket(moto_server, "elsewhere")
    options = s3_options(moto_server)
    fs = s3fs.S3FileSystem(**options, skip_instance_cache=True)
    manifest = write_catalogue("s3://data/catalogue", 2, ["make it black and white"], storage_options=options)
    fs.pipe("data/private/secret.png", SECRET)
    fs.pipe("elsewhere/secret.png", SECRET)
    escapes = {"sibling-prefix": "s3://data/private/secret.png", "climbing": "../private/secret.png",
               "other-bucket": "s3://elsewhere/secret.png", "local-file": "/etc/hostname"}
    lines = fs.cat(manifest).decode() + "".join(
        json.dumps({"id": row_id, "image": image, "instruction": "make it black and white"}) + "\n"
        for row_id, image in escapes.items())
    fs.pipe(manifest, lines.encode())
    summary, _ = run_flow(dataset=manifest, output="s3://data/run", config=config, shard_size=10,
                          storage_options=options)
    assert summary["counts"] == {"ok": 2, "bad_input": 4}
    rows = {row["id"]: row for row in RunOutput("s3://data/run", options).read_table().to_pylist()}
    assert all("outside the dataset's root s3://data/catalogue" in rows[row_id]["error"] for row_id in escapes)
    written = b"".join(fs.cat(path) for path in fs.find("data/run"))
    assert SECRET not in written


def test_two_concurrent_runs_into_one_output_one_is_refused_and_each_id_is_written_once(tmp_path, config,
                                                                                        monkeypatch):
    from legoedit_core.bricks.cpu.functions import Flip

    manifest = write_catalogue(str(tmp_path / "in"), 80, ["make it black and white and then flip it"],
                               size=(256, 192))
    output = tmp_path / "out"
    refused, calls, flip = threading.Event(), iter(range(10**6)), Flip.run_one

    def flip_held_after_shard_0(self, inputs, seed):  # the first run stays in flight until the second is refused
        if next(calls) >= 2:
            refused.wait(timeout=120)
        return flip(self, inputs, seed)

    monkeypatch.setattr(Flip, "run_one", flip_held_after_shard_0)
    first: dict = {}
    runner = threading.Thread(target=lambda: first.update(result=run_flow(
        dataset=manifest, output=str(output), config=config, shard_size=2, max_concurrent_shards=1)))
    runner.start()
    try:
        deadline = time.monotonic() + 120
        while not glob.glob(str(_shard_root(output, "run") / "_commits" / "*.json")) and time.monotonic() < deadline:
            time.sleep(0.05)
        other = Config.load(overrides=["planner.max_attempts=5"])  # even a different config: refused for the lease
        with pytest.raises(LeaseHeld, match=r"is being written by .* pid"):
            run_flow(dataset=manifest, output=str(output), config=other, shard_size=2)
    finally:
        refused.set()
        runner.join()
    assert first["result"][0]["counts"] == {"ok": 80}
    ids = pq.read_table(RunOutput(str(output)).current_files()).column("id").to_pylist()
    assert sorted(ids) == [f"item-{i:05d}" for i in range(80)]  # each id exactly once


def test_a_rerun_with_another_config_is_refused_unless_it_continues_with_the_recorded_one(tmp_path, config):
    manifest = write_catalogue(str(tmp_path / "in"), 6, ["make it black and white"])
    output = str(tmp_path / "out")
    (tmp_path / "in" / "images" / "item-00004.png").rename(tmp_path / "item-00004.png")
    run_flow(dataset=manifest, output=output, config=config, shard_size=2)
    changed = Config.load(overrides=["bricks.GRAYSCALE.backend=\"pillow\"", "planner.max_attempts=4"])
    with pytest.raises(OutputMismatch, match=r"config_fingerprint.*changed: .*planner.max_attempts"):
        run_flow(dataset=manifest, output=output, config=changed, shard_size=2, retry_failed=True)
    (tmp_path / "item-00004.png").rename(tmp_path / "in" / "images" / "item-00004.png")
    summary, _ = run_flow(dataset=manifest, output=output, config=changed, shard_size=2, retry_failed=True,
                          recorded_config=True)
    assert summary["counts"] == {"ok": 6}
    assert json.loads((tmp_path / "out" / "_manifest.json").read_text())["config"]["planner"]["max_attempts"] != 4


def test_retry_failed_never_replaces_an_ok_row_and_colliding_ids_get_their_own_image_files(tmp_path, config):
    write_catalogue(str(tmp_path), 2, ["make it black and white"])
    ids = ["a/b", "a_b", "東京", "大阪"]
    rows = [{"id": row_id, "image": f"images/item-0000{i % 2}.png", "instruction": "make it black and white"}
            for i, row_id in enumerate(ids)]
    rows.append({"id": "gone", "image": "images/missing.png", "instruction": "make it black and white"})
    (tmp_path / "m.jsonl").write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))
    output = tmp_path / "out"
    summary, _ = run_flow(dataset=str(tmp_path / "m.jsonl"), output=str(output), config=config, shard_size=8,
                          write_images=True)
    assert summary["counts"] == {"ok": 4, "bad_input": 1}
    before = RunOutput(str(output)).read_table().to_pylist()
    images = RunOutput(str(output)).current_images()
    for row in before[:4]:
        assert images[row["id"]].endswith(image_key(row["id"]).removeprefix("images"))
        assert Path(images[row["id"]].removeprefix("file://")).read_bytes() == row["edited_image"]["bytes"]
    assert len(list(output.glob("work/*/images/*.png"))) == 4

    (tmp_path / "images" / "item-00000.png").unlink()  # the file of two ok rows is replaced before the retry ...
    (tmp_path / "images" / "item-00000.png").symlink_to(tmp_path / "images" / "item-00001.png")
    summary, _ = run_flow(dataset=str(tmp_path / "m.jsonl"), output=str(output), config=config, shard_size=8,
                          write_images=True, retry_failed=True)
    after = {row["id"]: row for row in RunOutput(str(output)).read_table().to_pylist()}
    assert sorted(after) == sorted([*ids, "gone"])
    assert summary["changes"] | {"failed": 0} == {"new": 0, "changed": 2, "unchanged": 2, "removed": 0,
                                                  "retried": 1, "failed": 0}
    # ... so those two are edited again (a changed row); the other ok rows are untouched, the bad one retried
    assert [after[row["id"]] == row for row in before[:4]] == [False, True, False, True]
    assert after["東京"]["source_image"]["bytes"] == (tmp_path / "images" / "item-00001.png").read_bytes()
    images = RunOutput(str(output)).current_images()  # the unchanged rows' files stay where version 1 wrote them
    assert sorted(images) == sorted(row["id"] for row in after.values() if row["status"] == "ok")
    for row_id, image in images.items():
        assert Path(image.removeprefix("file://")).read_bytes() == after[row_id]["edited_image"]["bytes"]


def test_duplicate_ids_fail_the_run_before_anything_is_written(tmp_path, config):
    write_catalogue(str(tmp_path), 1)
    line = json.dumps({"id": "same", "image": "images/item-00000.png", "instruction": "flip it"}) + "\n"
    (tmp_path / "m.jsonl").write_text(line * 3)
    with pytest.raises(DatasetError, match="'same' on lines 1, 2, 3"):
        run_flow(dataset=str(tmp_path / "m.jsonl"), output=str(tmp_path / "out"), config=config)
    assert not (tmp_path / "out").exists()


def test_the_heap_is_frozen_only_while_shards_run_so_a_failed_run_leaves_nothing_uncollectable():
    import gc

    from flows.memory import long_lived_objects_frozen

    with long_lived_objects_frozen():
        frozen = gc.get_freeze_count()
    with pytest.raises(RuntimeError), long_lived_objects_frozen():
        raise RuntimeError("a shard's commit failed")
    assert frozen > 100_000 and gc.get_freeze_count() == 0


def test_commits_in_quick_succession_share_one_collection(monkeypatch):
    from flows import memory

    collections = []
    monkeypatch.setattr(memory, "return_freed_memory", lambda: collections.append("collected"))
    quick = memory.FreedMemory(interval=3600)
    quick.return_after_commit(), quick.return_after_commit()
    assert collections == ["collected"]  # the first commit is collected at once, the second within the interval
    slow = memory.FreedMemory(interval=0)
    slow.return_after_commit(), slow.return_after_commit()
    assert len(collections) == 3


# ------------------------------------------------------------------------------------------ Ctrl-C and SIGTERM
def test_inside_a_flow_run_sigterm_sets_the_stop_flag_instead_of_raising_where_the_main_thread_stands():
    from prefect import flow

    from flows.stopping import STOP, sigterm_stops_like_ctrl_c, stop_on_signals

    @flow
    def signalled() -> bool:
        with sigterm_stops_like_ctrl_c():
            os.kill(os.getpid(), signal.SIGTERM)  # without the hand-back, Prefect's handler raises TerminationSignal
            time.sleep(0.05)
            return STOP.is_set()

    before = signal.getsignal(signal.SIGTERM)
    with stop_on_signals(grace=3600):  # the exit deadline must not fall inside this test session
        assert signalled()
    assert signal.getsignal(signal.SIGTERM) is before and not STOP.is_set()


# Every flow command, as the scheduler runs it (flows/scheduler.py): its arguments past the dataset and output, what
# its completed rerun prints, and how many rows its parts then hold (rollouts: 2 samples of each of the 60 rows).
FLOW_COMMANDS = {
    "run": (["run"], [], "rows by status: {'ok': 60}", 60),
    "rollouts": (["rollouts"], ["-k", "2"], "120 samples in 120 rows", 120),
    "eval": (["eval"], ["--kind", "manifest"], "60 items, 60 edited, 0 judged", 60),
}


def legoedit_run(dataset: str, output: Path, command: str = "run") -> subprocess.Popen:
    env = {key: value for key, value in os.environ.items() if not key.startswith("PREFECT_API")}
    env["PYTHONPATH"] = str(REPO)
    name, options, _, _ = FLOW_COMMANDS[command]
    return subprocess.Popen([sys.executable, "-m", "legoedit.cli", *name, dataset, str(output), *options,
                             "--shard-size", "2", "--concurrent-shards", "1"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)  # its own process group


def _shard_root(output: Path, command: str) -> Path:
    """Where a flow commits its shards: an edit run under its version's work, rollouts and eval at the top."""
    if command != "run":
        return output
    works = glob.glob(str(output / "work" / "*"))
    return Path(works[0]) if works else output / "work" / "not-yet"


@pytest.mark.slow
@pytest.mark.parametrize("command", list(FLOW_COMMANDS))
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_a_signal_to_the_process_group_stops_the_run_cleanly_and_a_rerun_completes(tmp_path, signum, command):
    """Ctrl-C (SIGINT to the terminal's process group) and SIGTERM stop ``legoedit run``, ``rollouts`` and ``eval``
    by the scheduler: exit code 130, only whole shards committed, the temporary server gone; the rerun completes.

    Every wait is on an event (a committed shard, the process's exit), none on a duration: on a loaded machine the
    tidy-up after the stop (the server's last events, its stop) may outlast the grace period, whose exit is as clean
    (code 130, the server stopped); what must hold is that the scheduler stopped the run between shards."""
    manifest = write_catalogue(str(tmp_path / "in"), 60, ["make it black and white and then flip it"],
                               size=(256, 192))
    output = tmp_path / "out"
    process = legoedit_run(manifest, output, command)
    deadline = time.monotonic() + 240
    while not glob.glob(str(_shard_root(output, command) / "_commits" / "*.json")) and time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        time.sleep(0.1)
    os.killpg(process.pid, signum)
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 130, stderr[-2000:]
    assert f"{signal.Signals(signum).name}: stopping" in stderr and "rerun of the same command resumes" in stderr
    assert "error: stopped by a signal: " in stderr  # the scheduler stopped it between shards (flows/scheduler.py)
    port = int(re.search(r"temporary Prefect server at http://127.0.0.1:(\d+)", stderr).group(1))
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0  # the temporary server is gone
    root = _shard_root(output, command)
    finished = RunOutput(str(root)).finished()
    assert 0 < len(finished) < 30
    rows_per_shard = FLOW_COMMANDS[command][3] // 30
    for shard, record in finished.items():  # nothing half-written: each committed part is whole
        assert pq.read_table(root / "parts" / f"part-{shard:05d}.parquet").num_rows == rows_per_shard
        assert sum(record["counts"].values()) == rows_per_shard

    rerun = legoedit_run(manifest, output, command)
    stdout, stderr = rerun.communicate(timeout=600)
    assert rerun.returncode == 0, stderr[-2000:]
    assert FLOW_COMMANDS[command][2] in stdout, stdout
    ids = pq.read_table(RunOutput(str(output)).current_files()).column("id").to_pylist()
    assert len(ids) == len(set(ids)) == FLOW_COMMANDS[command][3]
    assert {row_id.partition("#")[0] for row_id in ids} == {f"item-{i:05d}" for i in range(60)}
