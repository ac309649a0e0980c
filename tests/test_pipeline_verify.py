"""Re-plan in batch: with planner.verify_rounds > 0 the flow judges each edit (verifiable checks without a VLM
judge), re-plans a rejected one with the critique, and the row's trace holds every round."""

from __future__ import annotations

import json

import numpy as np
import pytest
from prefect.testing.utilities import prefect_test_harness
from test_pipeline import task_runs

from flows.edit_catalogue import edit_catalogue
from legoedit_core.bricks.toolset import Toolset
from legoedit_core.config import Config
from legoedit_core.data.images import encode_png
from legoedit_core.data.output import RunOutput
from legoedit_core.executor import Executor
from legoedit_core.pipeline.verify import check_judge, make_verifier
from legoedit_core.planners import make_planner
from legoedit_core.planners.base import PlanRequest


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


class CountingBricks:
    """Counts the items each brick's backend is called with (every execution of every plan goes through here)."""

    def __init__(self, monkeypatch, bricks: tuple[str, ...] = ("ADJUST", "GRAYSCALE")) -> None:
        self.calls: dict[str, int] = dict.fromkeys(bricks, 0)
        for brick in bricks:
            backend = Toolset().backend_class(brick)
            monkeypatch.setattr(backend, "run_batch", self._counting(brick, backend.run_batch))

    def _counting(self, brick, run_batch):
        def run(backend, inputs, seeds):
            self.calls[brick] += len(inputs)
            return run_batch(backend, inputs, seeds)
        return run


def run_verified(tmp_path, **overrides) -> tuple[dict[str, dict], str]:
    config = Config.load(overrides=["pipeline.retry_delay_seconds=0", "planner.verify_rounds=1",
                                    "pipeline.shard_size=2", *(f"{k}={v}" for k, v in overrides.items())])
    output = str(tmp_path / "out")
    state = edit_catalogue(dataset=catalogue(tmp_path), output=output, config=config, report=False,
                           return_state=True)
    state.result()
    rows = {row["id"]: row for row in RunOutput(output).read_table().to_pylist()}
    return rows, str(state.state_details.flow_run_id)


def test_flow_with_one_verify_round_replans_a_rejected_edit_and_keeps_both_rounds(tmp_path):
    rows, _ = run_verified(tmp_path)
    assert {row["status"] for row in rows.values()} == {"ok"}

    dim = verify_entries(rows["dim"])
    assert [entry["node"] for entry in dim] == ["verify_0", "verify_1"]
    assert "score 5/10" in dim[0]["note"] and "failed checks: darker" in dim[0]["note"]
    assert dim[0]["note"].endswith("; not kept")
    assert dim[1]["note"].startswith("verify round 1: ADJUST, score 10/10") and dim[1]["note"].endswith("; kept")
    # the round that was not kept keeps its node trace too; the row's workflow is the kept, stronger one
    assert any(node["note"] == "verify round 0 (not kept)" for node in rows["dim"]["trace"])
    first = make_planner(Config.load().planner, Toolset()).plan_batch(
        [PlanRequest("dim", dark_photo(), "make it a bit darker", seed=1)])[0]
    kept = json.loads(rows["dim"]["workflow"])["nodes"][0]["inputs"]["brightness"]
    assert kept < first.workflow.nodes[0].inputs["brightness"] < 1

    grey = verify_entries(rows["grey"])
    assert len(grey) == 1 and "score 10/10" in grey[0]["note"] and "kept" in grey[0]["note"]


def test_each_plan_is_executed_once_and_verify_runs_through_the_brick_group_tasks(tmp_path, monkeypatch):
    bricks = CountingBricks(monkeypatch)
    rows, flow_run_id = run_verified(tmp_path)
    # dim: round 0 (rejected) and round 1 (kept) once each; grey: round 0 (kept) once. Nothing runs again.
    assert bricks.calls == {"ADJUST": 2, "GRAYSCALE": 1}
    assert [node["tool"] for node in rows["dim"]["trace"] if node["tool"] != "VERIFY"] == ["ADJUST", "ADJUST"]
    names = sorted(run.name for run in task_runs(flow_run_id, expected=6))
    # round 0's wave runs both rows' bricks in one CPU task, round 1 the re-planned edit; a verify task per round
    assert names == ["ADJUST shard 0 wave 1", "ADJUST+GRAYSCALE shard 0 wave 1", "plan shard 0",
                     "verify shard 0 round 0", "verify shard 0 round 1", "write shard 0"]


def test_without_verify_rounds_there_is_no_verifier(tmp_path):
    config = Config.load()
    toolset = Toolset(config)
    assert make_verifier(config, make_planner(config.planner, toolset), Executor(toolset)) is None


def test_legoedit_edit_keeps_the_plan_legoedit_run_keeps(tmp_path, capsys):
    from legoedit.cli import main

    rows, _ = run_verified(tmp_path)
    kept = json.loads(rows["dim"]["workflow"])["nodes"]
    assert main(["plan", str(tmp_path / "dark.png"), "make it a bit darker", "--seed", "1",
                 "--set", "planner.verify_rounds=1"]) == 0
    printed = json.loads(capsys.readouterr().out.split("</think>", 1)[1])
    assert printed["nodes"] == kept
