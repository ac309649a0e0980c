"""The ``workflow`` strategy (Lego-Edit): one call per item -> ``<think>`` reasoning + workflow JSON."""

from __future__ import annotations

from legoedit_core.bricks.toolset import Toolset
from legoedit_core.planners.base import PlanAttempt, PlanRequest, PlanResult
from legoedit_core.planners.constraints import parse_feedback
from legoedit_core.planners.dialogue import ask_until_valid, failure
from legoedit_core.planners.parsing import parse_answer
from legoedit_core.planners.prompt import builder_chat
from legoedit_core.settings.planner import PlannerSettings
from legoedit_core.vlm.chat import OutputFormat
from legoedit_core.vlm.engines import Engine
from legoedit_core.workflow import Workflow, validate
from legoedit_core.workflow_schema import workflow_json_schema


def workflow_format(toolset: Toolset, settings: PlannerSettings) -> OutputFormat | None:
    """The constraint on answers: reasoning (if asked for) then JSON of the toolset's workflow schema."""
    if not settings.constrained:
        return None
    return OutputFormat(json_schema=workflow_json_schema(toolset.available_specs()), think=settings.reasoning,
                        max_think_chars=settings.max_think_chars)


class WorkflowPlanner:
    """Plans every request of a batch together: one engine call per round of (re-)asking."""

    def __init__(self, engine: Engine, toolset: Toolset, settings: PlannerSettings) -> None:
        self.engine = engine
        self.toolset = toolset
        self.settings = settings
        self.name = f"workflow/{engine.name}"

    def plan_batch(self, requests: list[PlanRequest]) -> list[PlanResult]:
        settings = self.settings
        feedback = [[*settings.feedback, *r.feedback] for r in requests]
        constraints = [parse_feedback(lines, self.toolset.names()) for lines in feedback]
        chats = [builder_chat(self.toolset, settings, request) for request in requests]

        def parse(index: int, raw: str) -> tuple[PlanAttempt, Workflow | None]:
            reasoning, workflow, problems = parse_answer(raw, requests[index].instruction)
            if workflow is not None:
                problems = [str(p) for p in validate(workflow, self.toolset, constraints[index])]
            return PlanAttempt(raw, reasoning, workflow, problems), workflow

        exchanges = ask_until_valid(self.engine, chats, workflow_format(self.toolset, settings),
                                    [r.seed for r in requests], parse, settings.max_attempts)
        results = []
        for request, exchange in zip(requests, exchanges, strict=True):
            if exchange.value is None:
                results.append(failure(request.id, self.name, exchange.attempts))
            else:
                results.append(PlanResult(request.id, self.name, workflow=exchange.value,
                                          reasoning=exchange.attempts[-1].reasoning, attempts=exchange.attempts))
        return results
