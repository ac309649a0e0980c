"""Memory is admitted before it is spent, and running out of it is a fault, never a row status (issue 24)."""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from legoedit_core.bricks.cpu.functions import Grayscale
from legoedit_core.bricks.toolset import Toolset
from legoedit_core.config import Config
from legoedit_core.data.datasets import InputRow, Shard, open_dataset
from legoedit_core.data.images import encode_png
from legoedit_core.data.inputs import InputReader
from legoedit_core.data.memory import MemoryBudgetExceeded, MemoryExhausted
from legoedit_core.executor import EditItem, Executor
from legoedit_core.pipeline import shard as shard_module
from legoedit_core.pipeline.shard import prepare_shard
from legoedit_core.planners.rules import RulesPlanner
from legoedit_core.workflow import parse_workflow

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import memory_bound  # noqa: E402 (the benchmark's child is the memory test's workload)

GRAY = parse_workflow({"nodes": [{"id": "g", "tool": "GRAYSCALE", "inputs": {"image": "@input.image"}}],
                       "output": "@g.image"})


def items(count: int) -> list[EditItem]:
    return [EditItem(f"i{n}", np.full((16, 16, 3), n, np.uint8), GRAY) for n in range(count)]


def test_out_of_memory_in_a_batch_is_retried_in_halves_then_is_a_fault(monkeypatch):
    calls: list[int] = []
    run_batch = Grayscale.run_batch

    def tight(self, inputs, seeds):  # more than two items at once do not fit
        calls.append(len(inputs))
        if len(inputs) > 2:
            raise MemoryError("no room")
        return run_batch(self, inputs, seeds)

    monkeypatch.setattr(Grayscale, "run_batch", tight)
    results = Executor(Toolset()).run_many(items(8))
    assert [r.status for r in results] == ["ok"] * 8 and calls == [8, 4, 2, 2, 4, 2, 2]  # only failing chunks halve

    def insufficient(self, inputs, seed):  # OpenCV's way of saying it
        raise cv2.error("OpenCV(4.10.0) error: (-4:Insufficient memory) Failed to allocate 201326592 bytes")

    monkeypatch.setattr(Grayscale, "run_batch", run_batch)
    monkeypatch.setattr(Grayscale, "run_one", insufficient)
    with pytest.raises(MemoryExhausted, match="out of memory on a single item"):
        Executor(Toolset()).run_many(items(4))  # a fault: no item gets a row status for it


def test_a_batch_is_split_to_fit_the_batch_pixel_budget(monkeypatch):
    sizes: list[int] = []
    run_batch = Grayscale.run_batch
    monkeypatch.setattr(Grayscale, "run_batch", lambda self, inputs, seeds: sizes.append(len(inputs)) or
                        run_batch(self, inputs, seeds))
    toolset = Toolset(Config.load(overrides=[f"executor.max_batch_pixels={3 * 16 * 16}"]))
    results = Executor(toolset).run_many(items(7))
    assert [r.status for r in results] == ["ok"] * 7 and sizes == [3, 3, 1]


def test_outputs_are_admitted_before_their_node_runs(monkeypatch):
    ran: list[int] = []
    monkeypatch.setattr("legoedit_core.bricks.cpu.functions.Resize.run_one",
                        lambda self, inputs, seed: ran.append(1) or {"image": np.zeros((2, 2, 3), np.uint8)})
    huge = parse_workflow(memory_bound.fan_out_workflow(1) | {"nodes": [{"id": "r", "tool": "RESIZE", "inputs": {
        "image": "@input.image", "width": 8192}}], "output": "@r.image"})
    result = Executor(Toolset()).run(huge, np.zeros((8192, 4, 3), np.uint8))  # 4 wide: 8192 wide is 16.7M tall
    assert result.status == "failed" and "would be 8192x16777216" in result.error and not ran
    fan = Executor(Toolset()).run(parse_workflow(memory_bound.fan_out_workflow(63)), np.zeros((96, 128, 3), np.uint8))
    assert fan.status == "failed" and "executor.max_item_pixels" in fan.error and not ran


def test_a_shard_whose_images_exceed_its_share_is_sliced_before_decoding(tmp_path, monkeypatch):
    (tmp_path / "a.png").write_bytes(encode_png(np.zeros((512, 512, 3), np.uint8)))
    (tmp_path / "m.jsonl").write_text("".join(f'{{"id": "r{i}", "image": "a.png", "instruction": "make it black '
                                              'and white"}\n' for i in range(5)))
    decoded: list[int] = []
    real_decode = shard_module.decode_image
    monkeypatch.setattr(shard_module, "decode_image", lambda data: decoded.append(1) or real_decode(data))
    dataset = open_dataset(str(tmp_path / "m.jsonl"))
    rows = dataset.read_rows(0, 5)
    planner = RulesPlanner(Toolset())
    first = prepare_shard(rows, Shard(5, 0, 5), planner, dataset.reader(), memory_budget=8 * 2**20, start=0)
    assert (first.start, first.stop, first.last, len(decoded)) == (0, 2, False, 2)  # the third waits, undecoded
    with pytest.raises(MemoryBudgetExceeded, match=r"shard 5: its images do not fit together .* smaller "
                                                   r"pipeline.shard_size"):
        prepare_shard(rows, Shard(5, 0, 5), planner, dataset.reader(), memory_budget=8 * 2**20)  # taken whole
    # the rest of the shard is its next slices (the flow's slices into one part: tests/test_row_isolation.py)
    second = prepare_shard(rows[first.stop:], Shard(5, 0, 5), planner, dataset.reader(), memory_budget=8 * 2**20,
                           start=first.stop)
    assert (second.start, second.stop, second.last) == (2, 4, False)


def test_an_image_that_alone_exceeds_the_share_is_its_rows_bad_input(tmp_path):
    (tmp_path / "big.png").write_bytes(encode_png(np.zeros((1024, 1024, 3), np.uint8)))  # 12 MiB admitted
    (tmp_path / "small.png").write_bytes(encode_png(np.zeros((64, 64, 3), np.uint8)))
    rows = [InputRow(0, "big", "make it black and white", "big.png"),
            InputRow(1, "small", "make it black and white", "small.png")]
    prepared = prepare_shard(rows, Shard(0, 0, 2), RulesPlanner(Toolset()), InputReader(str(tmp_path)),
                             memory_budget=8 * 2**20, start=0)
    assert prepared.last and [r.usable for r in prepared.rows] == [False, True]
    assert "big.png: image is 1024x1024: decoded, with room for its results, it needs 12 MiB, more than a " \
           "shard's share of the memory budget, 8 MiB" in rows[0].error


def test_8192_pixel_images_at_default_settings_and_a_fan_out_stay_under_the_bound_within_ulimit_v_8_gb():
    rows = 6  # one shard of 7 rows at the defaults, more than its 3 GiB share holds at once: edited in slices
    result = memory_bound.run_limited(rows, [], limit_kb=8_000_000)
    statuses = {row_id: status for row_id, (status, _) in result["rows"].items()}
    assert [statuses[f"big-{i:03d}"] for i in range(rows)] == ["ok"] * rows
    assert "above the limit" in result["rows"]["tall"][1]  # refused from its size, before anything was computed
    assert result["fan_out"][0] == "failed" and "executor.max_item_pixels" in result["fan_out"][1]
    assert not any("memory" in (error or "").lower() for _, error in result["rows"].values())
    assert result["peak_mib"] < memory_bound.bound_mib(rows, [])
