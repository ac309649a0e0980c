"""The Builder: strategies (rules, workflow, decompose) over engines (transformers, vllm, openai)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from legoedit_core.planners.base import PlanAttempt, Planner, PlanRequest, PlanResult
from legoedit_core.planners.settings import PlannerSettings

if TYPE_CHECKING:  # config imports planners.settings: a runtime import here would be circular
    from legoedit_core.config import Toolset


def make_planner(settings: PlannerSettings, toolset: Toolset) -> Planner:
    """The planner ``settings`` describe, planning with ``toolset``'s available bricks. Models load lazily."""
    if settings.strategy == "rules":
        from legoedit_core.planners.rules import RulesPlanner

        return RulesPlanner(toolset, settings.feedback)
    from legoedit_core.planners.engines import make_engine

    engine = make_engine(settings)
    if settings.strategy == "workflow":
        from legoedit_core.planners.workflow_planner import WorkflowPlanner

        return WorkflowPlanner(engine, toolset, settings)
    from legoedit_core.planners.decompose import DecomposePlanner

    return DecomposePlanner(engine, toolset, settings)


__all__ = ["PlanAttempt", "PlanRequest", "PlanResult", "Planner", "PlannerSettings", "make_planner"]
