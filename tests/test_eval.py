"""Benchmark loaders and the evaluation flow: a 12-item GEdit-Bench-format fixture judged into a per-category
report."""

from __future__ import annotations

import io
import json
import re

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image
from prefect.testing.utilities import prefect_test_harness
from tiny_vlm import save_tiny_vlm

from flows.evaluate import evaluate
from legoedit.cli import main
from legoedit_core.config import Config
from legoedit_core.data.benchmarks import GEDIT_TASK_TYPES, detect_kind, open_benchmark
from legoedit_core.data.datasets import DatasetError
from legoedit_core.data.output import RunOutput
from legoedit_core.settings.judge import JudgeSettings
from legoedit_core.settings.pipeline import PipelineSettings

GEDIT_ITEMS = {
    "background_change": ["change the background to blue", "replace the background with green",
                          "make the background blurry"],
    "color_alter": ["make the sky orange", "make the shirt red", "paint the wall yellow"],
    "style_change": ["turn it into a pencil sketch", "make it look like a watercolor", "turn it into a cartoon"],
    "tone_transfer": ["make it black and white", "brighten the photo", "make him do a backflip"],
}


def _png(array, size=(96, 96)) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).resize(size).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module", autouse=True)
def prefect_server():
    with prefect_test_harness(server_startup_timeout=180):
        yield


@pytest.fixture(scope="module")
def gedit(tmp_path_factory, astronaut, coffee) -> str:
    """GEdit-Bench's own columns: 12 English items in 4 task types, plus 2 Chinese ones the loader filters out."""
    images = [_png(astronaut), _png(coffee)]
    rows = []
    for task, instructions in GEDIT_ITEMS.items():
        for number, instruction in enumerate(instructions):
            rows.append({"key": f"{task}-{number}", "task_type": task, "instruction": instruction,
                         "instruction_language": "en", "intersection_exist": True,
                         "input_image": {"bytes": images[number % 2], "path": f"{task}-{number}.png"}})
    rows += [{"key": f"cn-{i}", "task_type": "color_alter", "instruction": "把天空变成橙色",
              "instruction_language": "cn", "intersection_exist": True,
              "input_image": {"bytes": images[0], "path": "cn.png"}} for i in range(2)]
    path = tmp_path_factory.mktemp("gedit") / "gedit.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path, row_group_size=5)
    return str(path)


@pytest.fixture(scope="module")
def judge(tmp_path_factory) -> JudgeSettings:
    model = save_tiny_vlm(tmp_path_factory.mktemp("eval_judge"))
    return JudgeSettings(engine="transformers", model=str(model), temperature=1.0, image_size=64,
                         max_reasoning_chars=8)


def test_gedit_loader_reads_its_columns_and_filters_the_language(gedit):
    assert detect_kind(gedit) == "gedit"
    dataset = open_benchmark(gedit)
    assert len(dataset) == 12
    rows = dataset.read_rows(4, 8)  # crosses a row-group boundary
    assert [r.id for r in rows] == ["color_alter-1", "color_alter-2", "style_change-0", "style_change-1"]
    assert rows[0].ground_truth == {"category": "color_alter"} and isinstance(rows[0].image, bytes)
    assert all(r.error is None for r in rows)
    assert len(open_benchmark(gedit, language=None)) == 14
    assert set(GEDIT_ITEMS) <= set(GEDIT_TASK_TYPES) and len(GEDIT_TASK_TYPES) == 11


def test_evaluation_writes_a_per_category_report(tmp_path, gedit, judge):
    output = tmp_path / "eval"
    config = Config(judge=judge, pipeline=PipelineSettings(shard_size=5))  # the flow judges with config.judge
    result = evaluate(gedit, str(output), config=config)
    summary = {row["category"]: row for row in result["summary"]}
    assert list(summary) == [*sorted(GEDIT_ITEMS), "all"]
    assert summary["all"]["items"] == 12
    assert summary["tone_transfer"]["edited"] == 2  # "do a backflip" is outside the rules planner
    # The coffee photo has no shirt (RES finds none: failed) and the CPU RES cannot locate a wall (invalid_plan).
    assert summary["color_alter"]["edited"] == 1
    for task in GEDIT_ITEMS:
        row = summary[task]
        assert row["judged"] == row["edited"] and row["judge_errors"] == 0
        assert 0 <= row["total"] <= 10 and 0 <= row["overall"] <= 10
        assert row["psnr_outside"] is not None
    report = (output / "report.md").read_text()
    assert f"judge: `transformers:{judge.model}`" in report
    for task in GEDIT_ITEMS:
        assert f"| {task} | 3 |" in report
    assert '"shard_size": 5' in report  # the run's config is in the report
    scores = pq.read_table(output / "scores.parquet").to_pylist()
    assert len(scores) == 12
    by_id = {s["id"]: s for s in scores}
    assert by_id["tone_transfer-2"]["status"] == "invalid_plan" and by_id["tone_transfer-2"]["total"] is None
    color = [s["total"] for s in scores if s["category"] == "color_alter" and s["status"] == "ok"]
    assert by_id["color_alter-2"]["status"] == "invalid_plan"
    assert len(color) == 1 and summary["color_alter"]["total"] == pytest.approx(color[0])
    rows = pq.read_table(output / "parts").to_pylist()
    judged = [r for r in rows if r["status"] == "ok"]
    assert all(r["judge_model"] == f"judge/transformers:{judge.model}" for r in judged)
    assert json.loads(judged[0]["judge_feedback"])["metrics"]["same_size"] is True


def test_the_eval_command_runs_with_model_free_metrics_only(tmp_path, gedit, capsys):
    output = tmp_path / "cli"
    assert main(["eval", gedit, str(output), "--shard-size", "6"]) == 0
    assert "12 items, 9 edited, 0 judged" in capsys.readouterr().out
    report = (output / "report.md").read_text()
    assert "judge: `metrics`" in report and "| style_change | 3 | 3 | 0 | 0 |" in report


def test_other_benchmark_layouts(tmp_path, astronaut):
    image = _png(astronaut)
    magicbrush = tmp_path / "magicbrush.parquet"
    pq.write_table(pa.Table.from_pylist([{"img_id": "327726", "turn_index": 1, "instruction": "make the sky orange",
                                          "source_img": {"bytes": image, "path": None},
                                          "mask_img": {"bytes": image, "path": None},
                                          "target_img": {"bytes": image, "path": None}}]), magicbrush)
    emu = tmp_path / "emu.parquet"
    pq.write_table(pa.Table.from_pylist([{"idx": 7, "task": "background", "split": "test", "hash": "x",
                                          "instruction": "change the background to a beach",
                                          "image": {"bytes": image, "path": None}, "input_caption": "a",
                                          "output_caption": "b"}]), emu)
    (tmp_path / "animal").mkdir()
    (tmp_path / "animal" / "1.png").write_bytes(image)
    imgedit = tmp_path / "singleturn.json"
    imgedit.write_text(json.dumps({"1": {"id": "animal/1.png", "prompt": "remove the dog", "edit_type": "remove"}}))
    (row,) = open_benchmark(str(magicbrush)).read_rows(0, 1)
    assert (row.id, row.instruction, row.error) == ("327726-1", "make the sky orange", None)
    (row,) = open_benchmark(str(emu)).read_rows(0, 1)
    assert (row.id, row.ground_truth) == ("7", {"category": "background"})
    (row,) = open_benchmark(str(imgedit)).read_rows(0, 1)
    assert row.image == str(tmp_path / "animal" / "1.png") and row.ground_truth == {"category": "remove"}
    with pytest.raises(DatasetError, match="not gedit"):
        open_benchmark(str(emu), kind="gedit")


def test_without_a_vlm_judge_the_metrics_judge_each_edit(tmp_path, gedit):
    output = tmp_path / "eval"
    evaluate(gedit, str(output), config=Config(pipeline=PipelineSettings(shard_size=3)))
    rows = RunOutput(str(output)).read_table().to_pylist()[:3]
    assert [r["status"] for r in rows] == ["ok", "ok", "ok"]
    feedback = json.loads(rows[0]["judge_feedback"])
    assert rows[0]["judge_model"] == "metrics" and rows[0]["judge_score"] is None
    assert feedback["metrics"]["edited_fraction"] > 0  # CBG's subject mask marks what the plan meant to change

def test_with_verify_rounds_the_evaluation_keeps_each_rows_verified_edit(tmp_path, gedit, monkeypatch):
    from legoedit_core.bricks.toolset import Toolset

    calls = {"GRAYSCALE": 0}
    backend = Toolset().backend_class("GRAYSCALE")
    run_batch = backend.run_batch
    monkeypatch.setattr(backend, "run_batch", lambda self, inputs, seeds: calls.__setitem__(
        "GRAYSCALE", calls["GRAYSCALE"] + len(inputs)) or run_batch(self, inputs, seeds))
    config = Config.load(overrides=["planner.verify_rounds=1"])
    config.pipeline = config.pipeline.model_copy(update={"shard_size": 12})
    evaluate(gedit, str(tmp_path / "eval"), config=config)
    rows = RunOutput(str(tmp_path / "eval")).read_table().to_pylist()
    edited = [row for row in rows if row["status"] == "ok"]
    assert edited and all(any(node["tool"] == "VERIFY" for node in row["trace"]) for row in edited)
    rounds = [re.match(r"verify round \d+: ([^,]+),", node["note"]).group(1).split("+")
              for row in rows for node in row["trace"] or [] if node["tool"] == "VERIFY"]
    assert calls["GRAYSCALE"] == sum(tools.count("GRAYSCALE") for tools in rounds) > 0  # each round's plan ran once
