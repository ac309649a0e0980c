"""The Builder's interface: requests in, plans out, always in batches."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from legoedit_core.workflow import Workflow


@dataclass
class PlanRequest:
    """One image and instruction to plan for. ``has_mask`` tells the Builder the user drew a region."""

    id: str
    image: np.ndarray
    instruction: str
    has_mask: bool = False
    feedback: list[str] = field(default_factory=list)
    seed: int = 0


@dataclass
class PlanAttempt:
    """One answer of the Builder: the raw text, what was parsed from it, and why it was rejected (if it was)."""

    raw: str
    reasoning: str = ""
    workflow: Workflow | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def accepted(self) -> bool:
        return self.workflow is not None and not self.problems


@dataclass
class PlanResult:
    """The outcome of planning one request: a valid workflow, or ``error`` with every attempt kept."""

    id: str
    planner: str
    workflow: Workflow | None = None
    reasoning: str = ""
    attempts: list[PlanAttempt] = field(default_factory=list)
    error: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.workflow is not None and self.error is None


class Planner(Protocol):
    """A Builder strategy. ``name`` identifies it (and its engine/model) in output rows."""

    name: str

    def plan_batch(self, requests: list[PlanRequest]) -> list[PlanResult]:
        """Plan every request; one result per request, in order, never raising for a single bad request."""
        ...
