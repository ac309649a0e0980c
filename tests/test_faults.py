"""Faults of the machinery told from one item's errors by type: a brick's RuntimeError for one item of a batch fails
that item alone and is never retried; a device out of memory (or a CUDA error, a dead engine) raises out of the
task and Prefect retries it."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from test_pipeline import prefect_server, run_flow, task_runs  # noqa: F401 (a Prefect test server for the module)

from legoedit_core.bricks.spec import BrickError, PerItemBackend
from legoedit_core.bricks.toolset import BackendMismatch, Toolset
from legoedit_core.config import Config
from legoedit_core.data.images import encode_png
from legoedit_core.data.memory import MemoryExhausted
from legoedit_core.data.output import RunOutput
from legoedit_core.executor import EditItem, Executor
from legoedit_core.faults import Fault, is_fault, is_out_of_memory, run_fitting_memory
from legoedit_core.runtime import ModelDoesNotFit
from legoedit_core.workflow import parse_workflow

GREY = parse_workflow({"nodes": [{"id": "g", "tool": "GRAYSCALE", "inputs": {"image": "@input.image"}}],
                       "output": "@g.image"})
BAD_WIDTH = 40  # the item whose shape the fake library refuses


@pytest.fixture(scope="module")
def config() -> Config:
    return Config.load(overrides=["pipeline.retry_delay_seconds=0"])  # Prefect retries at once in tests


class EngineDeadError(Exception):
    """Named as vLLM names its dead engine's error."""


@pytest.mark.parametrize("error, fault", [
    (RuntimeError("stack expects each tensor to be equal size, but got [3, 40, 32] at entry 1"), False),
    (RuntimeError("The size of tensor a (40) must match the size of tensor b (32) at non-singleton dimension 2"),
     False),
    (ValueError("bad item"), False),
    (TypeError("unsupported operand"), False),
    (torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"), True),
    (torch.AcceleratorError("CUDA error: an illegal memory access was encountered"), True),
    (RuntimeError("CUDA error: device-side assert triggered"), True),
    (RuntimeError("cuBLAS failed: CUBLAS_STATUS_EXECUTION_FAILED when calling cublasSgemm"), True),
    (EngineDeadError("EngineCore encountered an issue"), True),
    (MemoryError(), True), (OSError("the store is down"), True), (ImportError("no vllm"), True),
    (Fault("anything the code calls a fault"), True), (BackendMismatch("pinned elsewhere"), True),
], ids=lambda value: type(value).__name__ if isinstance(value, BaseException) else str(value))
def test_faults_are_told_by_type_not_by_runtime_error(error, fault):
    assert is_fault(error) is fault


class ShapeFussy:
    """A batched backend's ``run_batch`` that raises as torch does: a RuntimeError for the whole batch when one
    item has a shape it cannot take (``BAD_WIDTH``), a device out of memory the first ``oom`` times, or a CUDA
    error the first ``cuda`` times."""

    def __init__(self, brick: str, oom: int = 0, cuda: int = 0) -> None:
        self.original = Toolset().backend_class(brick).run_batch
        self.oom, self.cuda, self.calls = oom, cuda, []

    def __call__(self, backend, inputs, seeds):
        self.calls.append(len(inputs))
        if self.oom > 0:
            self.oom -= 1
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
        if self.cuda > 0:
            self.cuda -= 1
            raise torch.AcceleratorError("CUDA error: an illegal memory access was encountered")
        if any(item["image"].shape[1] == BAD_WIDTH for item in inputs):
            raise RuntimeError(f"stack expects each tensor to be equal size, but got [3, 32, {BAD_WIDTH}]")
        return self.original(backend, inputs, seeds)


def fussy(monkeypatch, brick: str = "GRAYSCALE", oom: int = 0, cuda: int = 0) -> ShapeFussy:
    fake = ShapeFussy(brick, oom, cuda)
    monkeypatch.setattr(Toolset().backend_class(brick), "run_batch", lambda self, inputs, seeds: fake(self, inputs,
                                                                                                      seeds))
    return fake


def _items() -> list[EditItem]:
    return [EditItem(f"i{i}", np.full((32, BAD_WIDTH if i == 2 else 32, 3), 60 * i, np.uint8), GREY)
            for i in range(4)]


def test_a_batch_that_raises_for_one_item_fails_that_item_alone(monkeypatch):
    fake = fussy(monkeypatch)
    results = Executor(Toolset()).run_many(_items())
    assert [r.status for r in results] == ["ok", "ok", "failed", "ok"]
    assert "RuntimeError: stack expects each tensor" in results[2].error and results[2].image is None
    assert fake.calls == [4, 1, 1, 1, 1]  # the batch, then each item alone


def test_out_of_memory_halves_the_batch_then_raises_a_fault(monkeypatch):
    fake = fussy(monkeypatch, oom=1)  # once: the two halves run
    results = Executor(Toolset()).run_many(_items())
    assert [r.status for r in results] == ["ok", "ok", "failed", "ok"] and fake.calls[:3] == [4, 2, 2]
    fussy(monkeypatch, oom=100)  # always: halved down to one call, then a fault, never a row status
    with pytest.raises(MemoryExhausted) as raised:
        Executor(Toolset()).run_many(_items())
    assert isinstance(raised.value, Fault) and isinstance(raised.value.__cause__, torch.OutOfMemoryError)


@pytest.mark.parametrize("never_fits", [0, 17, 63])
def test_one_item_that_never_fits_in_a_batch_of_64_costs_at_most_2_log2_64_plus_64_calls(never_fits):
    calls: list[list[int]] = []

    def call(chunk: list[int]) -> list[str]:
        calls.append(chunk)
        if never_fits in chunk or len(chunk) > 16:  # more than 16 at once never fit; nor does one item at all
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
        return [f"out{item}" for item in chunk]

    with pytest.raises(MemoryExhausted, match="out of memory on a single item") as raised:
        run_fitting_memory(list(range(64)), call, "FILL")
    assert len(calls) <= 2 * math.log2(64) + 64
    succeeded = [item for chunk in calls if never_fits not in chunk and len(chunk) <= 16 for item in chunk]
    assert len(succeeded) == len(set(succeeded)), "a chunk that succeeded was run again"
    assert raised.value.done == {item: f"out{item}" for item in succeeded}  # kept, with the fault
    assert sum(1 for chunk in calls if chunk == [never_fits]) == 1  # raised once, at the single item


def test_out_of_memory_is_told_by_type_and_by_the_libraries_own_messages():
    import cv2

    assert is_out_of_memory(torch.OutOfMemoryError("CUDA out of memory")) and is_out_of_memory(MemoryError())
    assert is_out_of_memory(cv2.error("OpenCV(4.10.0) error: (-4:Insufficient memory) Failed to allocate 8 bytes"))
    assert is_out_of_memory(torch.AcceleratorError("CUDA error: out of memory"))
    assert not is_out_of_memory(torch.AcceleratorError("CUDA error: an illegal memory access was encountered"))
    with pytest.raises(RuntimeError) as cpu:  # torch's CPU allocator
        torch.empty(2**62, dtype=torch.uint8)
    assert is_out_of_memory(cpu.value)
    assert not is_out_of_memory(ValueError("the model ran out of memory"))  # words in any message mean nothing
    assert not is_out_of_memory(RuntimeError("stack expects each tensor to be equal size"))


class Fussy(PerItemBackend):
    brick, name = "GRAYSCALE", "fussy"

    def run_one(self, inputs, seed):
        if inputs["image"].shape[1] == BAD_WIDTH:
            raise RuntimeError("expected a tensor of shape [3, 32, 32]")
        if inputs["image"].mean() > 150:
            raise torch.OutOfMemoryError("CUDA out of memory")
        return {"image": inputs["image"]}


def test_a_per_item_backend_keeps_an_items_runtime_error_and_raises_a_fault():
    image = np.zeros((32, 32, 3), np.uint8)
    outputs = Fussy().run_batch([{"image": image}, {"image": np.zeros((32, BAD_WIDTH, 3), np.uint8)}], [0, 1])
    assert outputs[0]["image"] is image and isinstance(outputs[1], BrickError)
    with pytest.raises(torch.OutOfMemoryError):
        Fussy().run_batch([{"image": image}, {"image": np.full((32, 32, 3), 200, np.uint8)}], [0, 1])


def _catalogue(folder) -> str:
    """Four rows for GRAYSCALE in one shard; the third image has the shape the fake library refuses."""
    folder.mkdir()
    lines = []
    for i in range(4):
        (folder / f"{i}.png").write_bytes(encode_png(np.full((32, BAD_WIDTH if i == 2 else 32, 3), 50 * i,
                                                             np.uint8)))
        lines.append(f'{{"id": "row{i}", "image": "{i}.png", "instruction": "make it black and white"}}\n')
    (folder / "rows.jsonl").write_text("".join(lines))
    return str(folder / "rows.jsonl")


def test_in_the_flow_one_items_runtime_error_fails_that_row_and_the_task_is_not_retried(tmp_path, config,
                                                                                       monkeypatch):
    fake = fussy(monkeypatch)
    summary, flow_run_id = run_flow(dataset=_catalogue(tmp_path / "in"), output=str(tmp_path / "out"),
                                    config=config, shard_size=4)
    assert summary["counts"] == {"ok": 3, "failed": 1}
    rows = {row["id"]: row for row in RunOutput(str(tmp_path / "out")).read_table().to_pylist()}
    assert rows["row2"]["status"] == "failed" and "stack expects each tensor" in rows["row2"]["error"]
    assert fake.calls == [4, 1, 1, 1, 1]  # one task run: the batch, then each item alone; no retry
    bricks = [run for run in task_runs(flow_run_id) if run.name.startswith("GRAYSCALE")]
    assert [run.run_count for run in bricks] == [1] and bricks[0].state.is_completed()


def test_in_the_flow_a_device_error_is_retried_and_every_row_is_ok(tmp_path, config, monkeypatch):
    fake = fussy(monkeypatch, cuda=1)
    manifest = _catalogue(tmp_path / "in")
    (tmp_path / "in" / "2.png").write_bytes(encode_png(np.zeros((32, 32, 3), np.uint8)))  # no bad item here
    summary, flow_run_id = run_flow(dataset=manifest, output=str(tmp_path / "out"), config=config, shard_size=4)
    assert summary["counts"] == {"ok": 4} and fake.calls == [4, 4]  # raised once, then the retry ran the batch
    bricks = [run for run in task_runs(flow_run_id) if run.name.startswith("GRAYSCALE")]
    assert [run.run_count for run in bricks] == [2] and bricks[0].state.is_completed()


@pytest.mark.parametrize("hopeless", [MemoryExhausted("GRAYSCALE: out of memory on a single item"),
                                      ModelDoesNotFit("the model needs 80 GiB on cuda")],
                         ids=lambda error: type(error).__name__)
def test_in_the_flow_a_hopeless_fault_fails_at_once_without_retries(tmp_path, config, monkeypatch, hopeless):
    calls: list[int] = []

    def raises(backend, inputs, seeds):
        calls.append(len(inputs))
        raise hopeless

    monkeypatch.setattr(Toolset().backend_class("GRAYSCALE"), "run_batch", raises)
    with pytest.raises(Exception, match="1 of 1 shard"):
        run_flow(dataset=_catalogue(tmp_path / "in"), output=str(tmp_path / "out"), config=config, shard_size=4)
    assert calls == [4]  # one try: no Prefect retry (config.pipeline.task_retries is 2)


@pytest.mark.parametrize("error", [PermissionError(13, "Permission denied"),
                                   FileNotFoundError(2, "The specified bucket does not exist")],
                         ids=["permission-denied", "missing-bucket"])
def test_a_fault_that_cannot_heal_is_not_retried_and_is_one_line(error, tmp_path, config, monkeypatch, caplog):
    from flows.failures import ShardsFailed

    writes = []

    def refused(self, shard, table):
        writes.append(shard)
        raise error

    monkeypatch.setattr(RunOutput, "write_part", refused)
    with pytest.raises(ShardsFailed, match=f"failed in task 'write shard 0': {type(error).__name__}: "):
        run_flow(dataset=_catalogue(tmp_path / "in"), output=str(tmp_path / "out"), config=config, shard_size=4)
    assert writes == [0]  # one try: a retry could not have helped
    assert not [record for record in caplog.records if record.exc_info or record.exc_text]  # no traceback logged
