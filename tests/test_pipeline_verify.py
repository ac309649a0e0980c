"""Re-plan in batch: with planner.verify_rounds > 0 the flow judges each edit (verifiable checks without a VLM
judge), re-plans a rejected one with the critique, and the row's trace holds every round."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from prefect.testing.utilities import prefect_test_harness

from flows.edit_catalogue import edit_catalogue
from legoedit_core.bricks.toolset import Toolset
from legoedit_core.config import Config
from legoedit_core.data.datasets import open_dataset
from legoedit_core.data.images import encode_png
from legoedit_core.data.output import RunOutput
from legoedit_core.executor import Executor
from legoedit_core.pipeline.shard import process_shard
from legoedit_core.pipeline.verify import check_judge, make_verifier
from legoedit_core.planners import make_planner


@pytest.fixture(scope="module", autouse=True)
def prefect_server():
    with prefect_test_harness(server_startup_timeout=180):
        yield


def dark_photo() -> np.ndarray:
    """Dark: "a bit darker" lowers it by less than the darkness check asks (0.03; ADJUST moves a photo less towards
    the end it is already near), so the check rejects it; the re-plan's stronger alternative (x1.5 of the change)
    passes."""
    rng = np.random.default_rng(5)
    return np.clip(40 + rng.normal(0, 6, (48, 64, 3)), 0, 255).astype(np.uint8)


def catalogue(tmp_path) -> str:
    (tmp_path / "dark.png").write_bytes(encode_png(dark_photo()))
    rows = [{"id": "dim", "image": "dark.png", "instruction": "make it a bit darker", "seed": 1},
            {"id": "grey", "image": "dark.png", "instruction": "make it black and white", "seed": 2}]
    manifest = tmp_path / "catalogue.jsonl"
    manifest.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return str(manifest)


def verify_entries(row: dict) -> list[dict]:
    return [node for node in row["trace"] if node["tool"] == "VERIFY"]


def test_the_check_judge_rejects_a_change_too_small_and_accepts_a_done_one():
    photo = dark_photo()
    score, critique = check_judge(photo, photo, "make it a bit darker")
    assert score < 7 and "darker" in critique
    assert check_judge(photo, photo, "sing a song") == (10.0, "no verifiable check applies to this instruction")


def test_flow_with_one_verify_round_replans_a_rejected_edit_and_keeps_both_rounds(tmp_path):
    config = Config.load(overrides=["pipeline.retry_delay_seconds=0", "planner.verify_rounds=1",
                                    "pipeline.shard_size=2"])
    output = str(tmp_path / "out")
    edit_catalogue(dataset=catalogue(tmp_path), output=output, config=config, report=False)
    rows = {row["id"]: row for row in RunOutput(output).read_table().to_pylist()}
    assert {row["status"] for row in rows.values()} == {"ok"}

    dim = verify_entries(rows["dim"])
    assert [entry["node"] for entry in dim] == ["verify_0", "verify_1"]
    assert "score 5/10" in dim[0]["note"] and "failed checks: darker" in dim[0]["note"]
    assert dim[0]["note"].endswith("; not kept")
    assert dim[1]["note"].startswith("verify round 1: ADJUST, score 10/10") and dim[1]["note"].endswith("; kept")
    # the round that was not kept keeps its node trace too; the row's workflow is the kept, stronger one
    assert any(node["note"] == "verify round 0 (not kept)" for node in rows["dim"]["trace"])
    assert json.loads(rows["dim"]["workflow"])["nodes"][0]["inputs"]["brightness"] == pytest.approx(0.87)

    grey = verify_entries(rows["grey"])
    assert len(grey) == 1 and "score 10/10" in grey[0]["note"] and "kept" in grey[0]["note"]


def verified_in_a_plain_loop(folder: Path):
    """The first shard of the test catalogue planned, verified (one round) and executed in a plain loop."""
    config = Config.load(overrides=["planner.verify_rounds=1"])
    toolset = Toolset(config)
    planner, executor = make_planner(config.planner, toolset), Executor(toolset)
    dataset = open_dataset(catalogue(folder))
    table = process_shard(dataset, dataset.shards(2)[0], planner, executor,
                          verify=make_verifier(config, planner, executor))
    return table, planner, executor


def test_the_plain_loop_verifies_like_the_flow(tmp_path):
    table, planner, executor = verified_in_a_plain_loop(tmp_path)
    rows = {row["id"]: row for row in table.to_pylist()}
    assert [entry["node"] for entry in verify_entries(rows["dim"])] == ["verify_0", "verify_1"]
    assert make_verifier(Config.load(), planner, executor) is None  # verify_rounds = 0: no verify step


def test_legoedit_edit_keeps_the_plan_legoedit_run_keeps(tmp_path, capsys):
    from legoedit.cli import main

    table, _, _ = verified_in_a_plain_loop(tmp_path)
    kept = json.loads(table.to_pylist()[0]["workflow"])["nodes"]
    assert main(["plan", str(tmp_path / "dark.png"), "make it a bit darker", "--seed", "1",
                 "--set", "planner.verify_rounds=1"]) == 0
    printed = json.loads(capsys.readouterr().out.split("</think>", 1)[1])
    assert printed["nodes"] == kept
