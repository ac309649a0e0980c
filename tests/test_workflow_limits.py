"""Hostile workflows: huge and deep graphs, huge images, NaN, deeply nested JSON; intermediates are let go."""

from __future__ import annotations

import json

import numpy as np
import pytest

from legoedit.cli import main
from legoedit_core.bricks.toolset import Toolset
from legoedit_core.config import Config
from legoedit_core.executor import Executor
from legoedit_core.workflow import WorkflowError, WorkflowLimits, parse_workflow, validate


def chain(length: int, tool: str = "FLIP", **inputs) -> dict:
    nodes = [{"id": f"n{i}", "tool": tool, "inputs": {"image": f"@n{i - 1}.image" if i else "@input.image", **inputs}}
             for i in range(length)]
    return {"nodes": nodes, "output": f"@n{length - 1}.image"}


def test_a_1000_node_chain_is_refused_by_default_and_runs_without_recursion_when_allowed(tmp_path, capsys):
    workflow = parse_workflow(chain(1500))
    problems = validate(workflow, Toolset())
    assert [str(p) for p in problems] == ["1500 nodes, above the limit of 64 (executor.max_nodes)"]
    path = tmp_path / "chain.json"
    path.write_text(json.dumps(chain(1500)))
    assert main(["validate", str(path)]) == 1 and "above the limit of 64" in capsys.readouterr().out

    roomy = Toolset(Config.load(overrides=["executor.max_nodes=5000", "executor.max_depth=5000"]))
    image = np.arange(4 * 6 * 3, dtype=np.uint8).reshape(4, 6, 3)
    result = Executor(roomy).run(workflow, image)  # no RecursionError at any depth
    assert result.status == "ok" and np.array_equal(result.image, image)  # 1500 flips: back where it started
    deep = validate(parse_workflow(chain(40)), Toolset())
    assert [str(p) for p in deep] == ["n32: a chain of 33 nodes ends here, above the limit of 32 (executor.max_depth)"]


def test_nan_and_sizes_above_the_limits_are_refused():
    nan = parse_workflow('{"nodes": [{"id": "b", "tool": "BLUR", "inputs": {"image": "@input.image", '
                         '"radius": NaN}}], "output": "@b.image"}')
    assert any("finite number" in str(p) for p in validate(nan, Toolset()))
    big = parse_workflow(chain(1, "RESIZE", width=8192, height=8192))
    assert validate(big, Toolset(), limits=WorkflowLimits(max_image_side=4096))[0].message.startswith(
        "input 'width': 8192 is above the limit of 4096 pixels")
    small = Toolset(Config.load(overrides=[f"executor.max_image_pixels={4096 * 4096}"]))
    result = Executor(small).run(big, np.zeros((8, 8, 3), np.uint8))  # 8192 is allowed as a side ...
    assert result.status == "failed" and "above the limit of 16777216 pixels" in result.error  # ... not its area


def test_deeply_nested_json_is_a_clear_error(tmp_path, capsys):
    nested = "[" * 200_000 + "]" * 200_000
    with pytest.raises(WorkflowError, match="nested too deeply"):
        parse_workflow(nested)
    path = tmp_path / "nested.json"
    path.write_text(nested)
    assert main(["validate", str(path)]) == 1 and "nested too deeply" in capsys.readouterr().out


def test_intermediate_images_are_let_go_once_no_node_reads_them():
    workflow = parse_workflow(chain(6))
    result = Executor(Toolset()).run(workflow, np.zeros((16, 16, 3), np.uint8))
    assert result.status == "ok"
    held = [node for node, outputs in result.values.items() if "image" in outputs]
    assert held == ["n5"]  # only the output; n0..n4 were freed as soon as their reader had them
