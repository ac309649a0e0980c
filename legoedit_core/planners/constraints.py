"""User feedback as validation constraints: "don't use RES before INPAINT", "avoid SOS", "use RRF for reflections".

Every feedback line goes into the Builder's prompt as written; the lines recognised here also become constraints
(``legoedit_core.workflow.Constraint``), so a plan that breaks one is rejected with a message that quotes the
feedback, and re-asked.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from legoedit_core.workflow import INPUT, Constraint, Problem, Workflow, dependencies

_TOOL = r"([A-Za-z][A-Za-z0-9_-]*)"
_NEGATION = r"(?:don'?t|do not|never|please don'?t)"


@dataclass(frozen=True)
class Avoid:
    """Never use ``tool``."""

    feedback: str
    tool: str

    def describe(self) -> str:
        return f'"{self.feedback}": no {self.tool} node'

    def violations(self, workflow: Workflow) -> list[Problem]:
        return [Problem(n.id, f'breaks the feedback "{self.feedback}": {self.tool} must not be used')
                for n in workflow.nodes if n.tool == self.tool]


@dataclass(frozen=True)
class NotBefore:
    """No ``then`` node may depend, directly or not, on a ``first`` node."""

    feedback: str
    first: str
    then: str

    def describe(self) -> str:
        return f'"{self.feedback}": no {self.then} node may take its input from a {self.first} node'

    def violations(self, workflow: Workflow) -> list[Problem]:
        by_id = {n.id: n for n in workflow.nodes}
        problems = []
        for node in workflow.nodes:
            if node.tool != self.then:
                continue
            culprit = next((a for a in _ancestors(node.id, by_id) if by_id[a].tool == self.first), None)
            if culprit is not None:
                problems.append(Problem(node.id, f'breaks the feedback "{self.feedback}": {self.then} comes after '
                                                 f"{self.first} (node {culprit!r})"))
        return problems


@dataclass(frozen=True)
class UseFor:
    """When the instruction is about ``topic``, the plan must use ``tool``."""

    feedback: str
    tool: str
    topic: str

    def describe(self) -> str:
        return f'"{self.feedback}": instructions about {self.topic} must use {self.tool}'

    def applies_to(self, instruction: str) -> bool:
        words = re.findall(r"[a-z]{3,}", self.topic.lower())
        stems = [w[:-1] if w.endswith("s") else w for w in words]
        return any(stem in instruction.lower() for stem in stems)

    def violations(self, workflow: Workflow) -> list[Problem]:
        if not self.applies_to(workflow.instruction) or self.tool in workflow.tools():
            return []
        return [Problem(None, f'breaks the feedback "{self.feedback}": this instruction is about {self.topic}, '
                              f"so the plan must use {self.tool}")]


def _ancestors(node_id: str, by_id: dict) -> list[str]:
    """Every node that ``node_id`` depends on, nearest first."""
    found: list[str] = []
    frontier = [node_id]
    while frontier:
        current = frontier.pop(0)
        for ref in dependencies(by_id[current]):
            if ref.source != INPUT and ref.source in by_id and ref.source not in found:
                found.append(ref.source)
                frontier.append(ref.source)
    return found


_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(rf"^{_NEGATION}\s+use\s+{_TOOL}\s+(?:before|ahead of|prior to)\s+{_TOOL}$", re.I), "before"),
    (re.compile(rf"^{_NEGATION}\s+use\s+{_TOOL}\s+after\s+{_TOOL}$", re.I), "after"),
    (re.compile(rf"^(?:avoid(?: using)?|{_NEGATION}\s+use|no)\s+{_TOOL}$", re.I), "avoid"),
    (re.compile(rf"^(?:always\s+)?use\s+{_TOOL}\s+(?:for|when)\s+(.+)$", re.I), "use_for"),
]


def parse_feedback(lines: Iterable[str], tool_names: Iterable[str]) -> list[Constraint]:
    """The constraints that feedback lines state about known tools; other lines are prompt text only."""
    known = {name.upper(): name for name in tool_names}
    constraints: list[Constraint] = []
    for line in lines:
        text = line.strip().rstrip(".!")
        for pattern, kind in _PATTERNS:
            match = pattern.match(text)
            if match is None:
                continue
            tools = [known.get(g.upper()) for g in match.groups()[: 1 if kind in ("avoid", "use_for") else 2]]
            if None in tools:
                continue
            if kind == "before":
                constraints.append(NotBefore(line.strip(), tools[0], tools[1]))
            elif kind == "after":
                constraints.append(NotBefore(line.strip(), tools[1], tools[0]))
            elif kind == "avoid":
                constraints.append(Avoid(line.strip(), tools[0]))
            else:
                constraints.append(UseFor(line.strip(), tools[0], match.group(2)))
            break
    return constraints
