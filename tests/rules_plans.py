"""Helpers shared by the tests of the rules planner's reading: plan one instruction on a blank photo, and read the
plan's tools and literals."""

from __future__ import annotations

import numpy as np

from legoedit_core.planners.base import PlanRequest, PlanResult
from legoedit_core.planners.rules import RulesPlanner


def plan(toolset, instruction: str) -> PlanResult:
    """The rules planner's plan for ``instruction`` on a blank 200x100 photo."""
    return RulesPlanner(toolset).plan(PlanRequest("x", np.zeros((100, 200, 3), np.uint8), instruction))


def values(result: PlanResult, name: str) -> list:
    """Every node's literal input ``name``, in plan order."""
    return [n.inputs[name] for n in result.workflow.nodes if name in n.inputs]


def tools(result: PlanResult) -> set[str]:
    """The plan's tools (either eraser counts as INPAINT); fails with the planner's error when there is no plan."""
    assert result.ok, result.error
    return {"INPAINT" if t == "FASTINPAINT" else t for t in result.workflow.tools()}
