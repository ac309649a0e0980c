"""Workflow parsing (canonical and Lego-Edit dialect), validation and the generated JSON Schema."""

from __future__ import annotations

import json

import jsonschema
import pytest

from legoedit_core.workflow import Problem, WorkflowError, needed_nodes, parse_ref, parse_workflow, validate
from legoedit_core.workflow_schema import workflow_json_schema

REMOVE_DOG = {
    "instruction": "remove the dog",
    "nodes": [
        {"id": "step1", "tool": "RES", "inputs": {"image": "@input.image", "prompt": "dog"}},
        {"id": "step2", "tool": "FASTINPAINT", "inputs": {"image": "@input.image", "mask": "@step1.mask"}},
        {"id": "step3", "tool": "INPAINT", "inputs": {"image": "@step2.image", "mask": "@step1.mask"}},
    ],
    "output": "@step3.image",
}

REMOVE_DOG_PIPELINE = {
    "process": "Segment the dog, erase it quickly, then refine the fill.",
    "pipeline": [
        {"step": 1, "model": "RES", "input": {"image": "init[image]", "text": "dog"},
         "output": {"mask": "step1[mask]"}},
        {"step": 2, "model": "FASTINPAINT", "input": {"image": "init[image]", "mask": "step1[mask]"},
         "output": {"image": "step2[image]"}},
        {"step": 3, "model": "INPAINT", "input": {"image": "step2[image]", "mask": "step1[mask]"},
         "output": {"image": "step3[image]"}},
        {"result": "step3[image]"},
    ],
}


def test_pipeline_dialect_parses_into_the_same_graph_as_its_canonical_twin():
    canonical = parse_workflow(REMOVE_DOG)
    dialect = parse_workflow(REMOVE_DOG_PIPELINE, instruction="remove the dog")
    assert dialect.model_dump() == canonical.model_dump()


def test_references_and_escapes():
    assert parse_ref("@seg.mask").source == "seg"
    assert parse_ref("@input.image").port == "image"
    assert parse_ref("@@handle") is None
    assert parse_ref("dog") is None
    with pytest.raises(ValueError, match="malformed reference"):
        parse_ref("@seg")


def test_valid_workflow_has_no_problems(cpu_toolset):
    blur_face = {
        "nodes": [
            {"id": "face", "tool": "BBOX", "inputs": {"mask": "@input.mask"}},
            {"id": "blur", "tool": "BLUR", "inputs": {"image": "@input.image", "mask": "@face.mask", "radius": 12}},
        ],
        "output": "@blur.image",
    }
    assert validate(parse_workflow(blur_face), cpu_toolset) == []


def test_every_problem_is_reported_at_once_with_its_node(cpu_toolset):
    broken = {
        "nodes": [
            {"id": "a", "tool": "SPARKLE", "inputs": {"image": "@input.image"}},
            {"id": "b", "tool": "BLUR", "inputs": {"image": "@input.image", "radius": 500, "colour": "red"}},
            {"id": "c", "tool": "GRAYSCALE", "inputs": {"image": "@input.mask"}},
            {"id": "d", "tool": "CROP", "inputs": {"image": "@b.image"}},
            {"id": "e", "tool": "INVERSE", "inputs": {"mask": "@ghost.mask"}},
            {"id": "e", "tool": "ADJUST", "inputs": {"image": "@c.image", "brightness": "lots"}},
        ],
        "output": "@d.image",
    }
    problems = validate(parse_workflow(broken), cpu_toolset)
    messages = [str(p) for p in problems]
    expected = {
        "a": "unknown tool 'SPARKLE'",
        "b": "out of range",
        "c": "type mismatch: @input.mask is a Mask",
        "d": "missing required input 'bbox'",
        "e": "dangling reference @ghost.mask",
    }
    for node, fragment in expected.items():
        assert any(p.node == node and fragment in p.message for p in problems), (node, fragment, messages)
    assert any(p.node == "b" and "no input 'colour'" in p.message for p in problems)
    assert any(p.node == "e" and p.message == "duplicate node id" for p in problems)
    assert any(p.node == "e" and "bad literal 'lots'" in p.message for p in problems)


def test_cycles_missing_output_and_mask_output_are_reported(cpu_toolset):
    cyclic = {
        "nodes": [
            {"id": "x", "tool": "INVERSE", "inputs": {"mask": "@y.mask"}},
            {"id": "y", "tool": "INVERSE", "inputs": {"mask": "@x.mask"}},
        ],
        "output": "@x.mask",
    }
    problems = validate(parse_workflow(cyclic), cpu_toolset)
    assert any("cycle" in p.message and "x" in p.message and "y" in p.message for p in problems)
    assert any("the output must be an Image" in p.message for p in problems)
    no_output = parse_workflow({"nodes": [{"id": "g", "tool": "GRAYSCALE", "inputs": {"image": "@input.image"}}],
                                "output": ""})
    assert [p.message for p in validate(no_output, cpu_toolset)] == [
        "the workflow has no output: set 'output' to a reference like @node.image"
    ]


def test_model_only_brick_fails_validation_on_the_cpu_profile_saying_why(cpu_toolset):
    fill = parse_workflow({
        "nodes": [{"id": "f", "tool": "FILL", "inputs": {"image": "@input.image", "mask": "@input.mask",
                                                         "prompt": "a cat"}}],
        "output": "@f.image",
    })
    [problem] = validate(fill, cpu_toolset)
    assert problem.node == "f"
    assert "FILL cannot run here" in problem.message and "cpu profile" in problem.message


def test_malformed_json_and_structure_raise_workflow_error():
    with pytest.raises(WorkflowError, match="not valid JSON"):
        parse_workflow("{nodes: ")
    with pytest.raises(WorkflowError, match="nodes"):
        parse_workflow({"output": "@a.image"})
    with pytest.raises(WorkflowError, match="result"):
        parse_workflow({"pipeline": [{"step": 1, "model": "RES", "input": {}, "output": {}}, {"result": 3}]})


def test_needed_nodes_skip_unused_branches():
    workflow = parse_workflow({
        "nodes": [
            {"id": "unused", "tool": "GRAYSCALE", "inputs": {"image": "@input.image"}},
            {"id": "flip", "tool": "FLIP", "inputs": {"image": "@sharp.image"}},
            {"id": "sharp", "tool": "SHARPEN", "inputs": {"image": "@input.image"}},
        ],
        "output": "@flip.image",
    })
    assert needed_nodes(workflow) == ["sharp", "flip"]


def test_json_schema_accepts_valid_plans_and_rejects_unknown_tools_and_ports(cpu_toolset):
    schema = workflow_json_schema(cpu_toolset.available_specs())
    jsonschema.Draft202012Validator.check_schema(schema)
    good = {"nodes": [{"id": "gray", "tool": "GRAYSCALE", "inputs": {"image": "@input.image"}}],
            "output": "@gray.image"}
    jsonschema.validate(good, schema)
    for bad in (
        {"nodes": [{"id": "x", "tool": "SPARKLE", "inputs": {"image": "@input.image"}}], "output": "@x.image"},
        {"nodes": [{"id": "x", "tool": "GRAYSCALE", "inputs": {"image": "@input.image", "foo": 1}}],
         "output": "@x.image"},
        {"nodes": [{"id": "x", "tool": "BLUR", "inputs": {"image": "@input.image", "radius": 1000}}],
         "output": "@x.image"},
        {"nodes": [{"id": "x", "tool": "FLIP", "inputs": {"image": "@input.image", "direction": "diagonal"}}],
         "output": "@x.image"},
    ):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, schema)
    assert "FILL" not in json.dumps(schema)  # unavailable on the cpu profile, so not offered


def test_problem_string_names_the_node():
    assert str(Problem("seg", "unknown tool 'X'")) == "seg: unknown tool 'X'"
