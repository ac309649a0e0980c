"""The Builder: strategies (rules, workflow, decompose) over engines (transformers, vllm, openai)."""

from __future__ import annotations

from legoedit_core.bricks.toolset import Toolset
from legoedit_core.planners.base import PlanAttempt, Planner, PlanRequest, PlanResult
from legoedit_core.settings.planner import PlannerSettings


def make_planner(settings: PlannerSettings, toolset: Toolset) -> Planner:
    """The planner ``settings`` describe, planning with ``toolset``'s available bricks. Models load lazily."""
    if settings.strategy == "rules":
        from legoedit_core.planners.rules import RulesPlanner

        return RulesPlanner(toolset, settings.feedback, settings.rules, temperature=settings.temperature)
    from legoedit_core.vlm.engines import make_engine

    engine = make_engine(settings)
    if settings.strategy == "workflow":
        from legoedit_core.planners.workflow_planner import WorkflowPlanner

        return WorkflowPlanner(engine, toolset, settings)
    from legoedit_core.planners.decompose import DecomposePlanner

    return DecomposePlanner(engine, toolset, settings)


__all__ = ["PlanAttempt", "PlanRequest", "PlanResult", "Planner", "PlannerSettings", "make_planner"]
