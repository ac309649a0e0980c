"""Lego-Edit's dialect as its released Builder writes it (legodemo.py's forms), export, and several outputs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from legoedit.cli import main
from legoedit_core.data.images import decode_image, read_image
from legoedit_core.executor import Executor
from legoedit_core.planners.rules import RulesPlanner
from legoedit_core.workflow import WorkflowError, parse_workflow, validate

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
STEPS = [
    {"step": 1, "model": "RES", "input": {"image": "init[image]", "text": "face"}, "output": {"mask": "step1[mask]"}},
    {"step": 2, "model": "BLUR", "input": {"image": "init[image]", "mask": "step1[mask]"},
     "output": {"image": "step2[image]"}},
    {"step": 3, "model": "GRAYSCALE", "input": {"image": "step2[image]"}, "output": {"image": "step3[image]"}},
]


@pytest.mark.parametrize("result", [
    "step3[image]",                      # the plain reference
    "[step3[image]]",                    # in brackets, as the released Builder writes it
    ["step3[image]"],                    # a list of one
    "['step3[image]']",                  # a Python-style list in a string
    "[step1[mask], step3[image]]",       # mask references are dropped
    ["step1[mask]", "step3[image]"],     # ... in a list too
])
def test_each_single_result_form_parses_to_one_output(result, cpu_toolset):
    workflow = parse_workflow({"process": "blur the face, then grey", "pipeline": [*STEPS, {"result": result}]})
    assert workflow.output == "@step3.image" and validate(workflow, cpu_toolset) == []


@pytest.mark.parametrize("result", ["step2[image], step3[image]", "[step2[image], step3[image]]",
                                    ["step2[image]", "step3[image]"], "[step1[mask], step2[image], step3[image]]"])
def test_several_image_references_make_several_outputs(result, cpu_toolset):
    workflow = parse_workflow({"process": "", "pipeline": [*STEPS, {"result": result}]})
    assert workflow.output == ["@step2.image", "@step3.image"] and validate(workflow, cpu_toolset) == []


def test_top_level_result_beside_the_pipeline_and_lenient_json(cpu_toolset):
    text = """{'process': 'blur the face', 'pipeline': [
        {'step': 1, 'model': 'RES', 'input': {'image': 'init[image]', 'text': 'face',},
         'output': {'mask': 'step1[mask]'},},
        {'step': 2, 'model': 'BLUR', 'input': {'image': 'init[image]', 'mask': 'step1[mask]'},
         'output': {'image': 'step2[image]'}},  // trailing commas, single quotes and comments, as models write
    ], 'result': '[step2[image]]',}"""
    workflow = parse_workflow(text)
    assert workflow.tools() == ["RES", "BLUR"] and workflow.output == "@step2.image"
    assert validate(workflow, cpu_toolset) == []
    with pytest.raises(WorkflowError, match="not valid JSON"):
        parse_workflow("{'pipeline': [")


def test_a_released_builder_answer_parses(cpu_toolset):
    from legoedit_core.planners.parsing import parse_answer

    answer = ("<think>The user wants the face hidden.</think>\n{'process': 'blur the face', 'pipeline': [\n"
              "{'step': 1, 'model': 'RES', 'input': {'image': 'init[image]', 'text': 'face'}, "
              "'output': {'mask': 'step1[mask]'}},\n"
              "{'step': 2, 'model': 'BLUR', 'input': {'image': 'init[image]', 'mask': 'step1[mask]'}, "
              "'output': {'image': 'step2[image]'}},],\n'result': '[step2[image]]',}\nDone.")
    reasoning, workflow, problems = parse_answer(answer, "blur her face")
    assert problems == [] and reasoning == "The user wants the face hidden."
    assert workflow.tools() == ["RES", "BLUR"] and workflow.output == "@step2.image"
    assert validate(workflow, cpu_toolset) == []


def test_references_inside_lists_and_comma_separated_masks_become_a_union(cpu_toolset):
    for masks in (["step1[mask]", "step2[mask]"], "step1[mask], step2[mask]", "[step1[mask], step2[mask]]"):
        workflow = parse_workflow({"process": "", "pipeline": [
            {"step": 1, "model": "RES", "input": {"image": "init[image]", "text": "face"},
             "output": {"mask": "step1[mask]"}},
            {"step": 2, "model": "RES", "input": {"image": "init[image]", "text": "hair"},
             "output": {"mask": "step2[mask]"}},
            {"step": 3, "model": "GRAYSCALE", "input": {"image": "init[image]", "mask": masks},
             "output": {"image": "step3[image]"}},
            {"result": "[step3[image]]"},
        ]})
        assert workflow.tools() == ["RES", "RES", "UNION", "GRAYSCALE"]
        assert workflow.node("step3_mask").inputs == {"mask": "@step1.mask", "other": "@step2.mask"}
        assert workflow.node("step3").inputs["mask"] == "@step3_mask.mask"
        assert validate(workflow, cpu_toolset) == []
    with pytest.raises(WorkflowError, match="several references"):
        parse_workflow({"pipeline": [*STEPS[:2], {"step": 3, "model": "GRAYSCALE",
                                                  "input": {"image": ["init[image]", "step2[image]"]}},
                                     {"result": "step3[image]"}]})
    literal = parse_workflow({"pipeline": [{"step": 1, "model": "CBG", "input": {
        "image": "init[image]", "mask": "init[mask]", "prompt": "a cat, a dog"}, "output": {"image": "x"}},
        {"result": "x"}]})
    assert literal.node("step1").inputs["prompt"] == "a cat, a dog"  # commas in a literal are not references


def _own_workflows(toolset) -> list:
    canonical = [parse_workflow(path.read_text()) for path in sorted((EXAMPLES / "workflows").glob("*.json"))]
    planner = RulesPlanner(toolset)
    planned = [planner.compile(text)[0] for text in ("remove the text and then make it black and white",
                                                     "Change the color of her coat and hair to red",
                                                     "blur the faces and flip it", "crop to the face")]
    several = parse_workflow({"nodes": [
        {"id": "grey", "tool": "GRAYSCALE", "inputs": {"image": "@input.image"}, "note": "a planner note"},
        {"id": "flip", "tool": "FLIP", "inputs": {"image": "@grey.image"}},
        {"id": "label", "tool": "CBG", "inputs": {"image": "@input.image", "mask": "@input.mask",
                                                   "prompt": "@@brand-blue"}}],
        "output": ["@flip.image", "@grey.image", "@label.image"]}, instruction="two looks")
    return [*canonical, *planned, several]


def test_own_workflows_export_to_the_dialect_and_back_unchanged(cpu_toolset):
    for workflow in _own_workflows(cpu_toolset):
        exported = workflow.to_dialect()
        assert exported["pipeline"][-1]["result"].startswith("[")
        text = json.dumps(exported)
        back = parse_workflow(text)
        assert back.model_dump() == workflow.model_dump(), text


def test_export_orders_steps_by_dependency_and_names_them_as_lego_edit_does():
    workflow = parse_workflow({"nodes": [
        {"id": "flip", "tool": "FLIP", "inputs": {"image": "@grey.image"}},
        {"id": "grey", "tool": "GRAYSCALE", "inputs": {"image": "@input.image", "mask": "@input.mask"}}],
        "output": "@flip.image"}, instruction="grey, then mirror")
    exported = workflow.to_dialect()
    assert exported["process"] == "grey, then mirror"
    assert exported["pipeline"] == [
        {"step": 1, "id": "grey", "model": "GRAYSCALE", "input": {"image": "init[image]", "mask": "init[mask]"},
         "output": {"image": "step1[image]"}},
        {"step": 2, "id": "flip", "model": "FLIP", "input": {"image": "step1[image]"},
         "output": {"image": "step2[image]"}},
        {"result": "[step2[image]]"},
    ]


def test_plan_prints_the_dialect_that_runs_unchanged(tmp_path, capsys):
    photo = str(EXAMPLES / "images/astronaut.jpg")
    assert main(["plan", photo, "blur her face and then flip it", "--dialect"]) == 0
    printed = capsys.readouterr().out
    dialect = json.loads(printed[printed.index("{"):])
    assert dialect["pipeline"][-1] == {"result": "[step3[image]]"}
    (tmp_path / "plan.json").write_text(json.dumps(dialect))
    assert main(["run-workflow", photo, str(tmp_path / "plan.json"), "-o", str(tmp_path / "out.png")]) == 0
    assert read_image(tmp_path / "out.png").shape == read_image(photo).shape


def test_a_workflow_with_two_outputs_writes_two_images(tmp_path, capsys):
    dialect = {"process": "a grey and a mirrored version", "pipeline": [
        {"step": 1, "model": "GRAYSCALE", "input": {"image": "init[image]"}, "output": {"image": "step1[image]"}},
        {"step": 2, "model": "FLIP", "input": {"image": "init[image]"}, "output": {"image": "step2[image]"}},
        {"result": "[step1[image], step2[image]]"}]}
    (tmp_path / "two.json").write_text(json.dumps(dialect))
    source = read_image(EXAMPLES / "images/rocket.jpg")
    out = tmp_path / "out.png"
    assert main(["run-workflow", str(EXAMPLES / "images/rocket.jpg"), str(tmp_path / "two.json"), "-o", str(out)]) == 0
    assert capsys.readouterr().out.split() == ["wrote", str(out), "wrote", str(tmp_path / "out-2.png")]
    grey, mirrored = read_image(out), read_image(tmp_path / "out-2.png")
    assert np.ptp(grey.astype(int), axis=2).max() <= 1  # no colour left
    assert np.array_equal(mirrored, source[:, ::-1])


def test_rows_and_written_images_carry_every_output(tmp_path):
    from legoedit_core.bricks.toolset import Toolset
    from legoedit_core.config import Config
    from legoedit_core.data.datasets import open_dataset
    from legoedit_core.data.images import output_name
    from legoedit_core.data.output import RunOutput, image_key
    from legoedit_core.pipeline.shard import build_rows, prepare_shard
    from legoedit_core.planners.base import PlanResult

    (tmp_path / "rocket.jpg").write_bytes((EXAMPLES / "images/rocket.jpg").read_bytes())
    (tmp_path / "m.jsonl").write_text(json.dumps({"id": "r", "image": "rocket.jpg", "instruction": "two"}) + "\n")
    workflow = parse_workflow({"nodes": [
        {"id": "grey", "tool": "GRAYSCALE", "inputs": {"image": "@input.image"}},
        {"id": "flip", "tool": "FLIP", "inputs": {"image": "@input.image"}}], "output": ["@grey.image", "@flip.image"]})

    class Fixed:
        name = "fixed"

        def plan_batch(self, requests):
            return [PlanResult(r.id, self.name, workflow=workflow) for r in requests]

    toolset = Toolset(Config.load())
    dataset = open_dataset(str(tmp_path / "m.jsonl"))
    prepared = prepare_shard(dataset.read_rows(0, 1), dataset.shards(1)[0], Fixed(), dataset.reader())
    items, _ = prepared.edit_items()
    table = build_rows(prepared, Executor(toolset).run_many(items), toolset)
    [row] = table.to_pylist()
    assert row["status"] == "ok" and [image["path"] for image in row["edited_images"]] == ["r.png", "r-2.png"]
    assert row["edited_images"][0]["bytes"] == row["edited_image"]["bytes"]
    output = RunOutput(str(tmp_path / "out"))
    output.write_images(table)
    first = image_key("r").removeprefix("images/")
    second = output_name(first, 1)
    written = sorted(p.name for p in (tmp_path / "out/images").iterdir())
    assert written == sorted([first, second])
    assert np.array_equal(decode_image((tmp_path / "out/images" / second).read_bytes()),
                          read_image(EXAMPLES / "images/rocket.jpg")[:, ::-1])
