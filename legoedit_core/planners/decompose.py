"""The ``decompose`` strategy (ImageEdit-R1): decomposition, then sequencing, compiled to EDIT calls.

1. The decomposition call answers ``<think>...</think><action>Recoloring</action><subjects>coat; hair</subjects>
   <goals>scarlet or copper red</goals>``: the kinds of edit, what they apply to, and what the result should be.
2. The sequencing call turns that into ordered, self-contained sub-requests: ``<requests>1. ...\\n2. ...</requests>``.
3. The sub-requests compile to a workflow that calls EDIT once with all of them joined by "; " (single-turn, the
   default, which the paper found better) or once per sub-request in sequence (multi-turn).

Both calls are constrained by a regex of their tag format where the engine can; answers are parsed strictly and a
broken one is re-asked with what is wrong.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from legoedit_core.bricks.toolset import Toolset
from legoedit_core.planners.base import PlanAttempt, PlanRequest, PlanResult
from legoedit_core.planners.constraints import parse_feedback
from legoedit_core.planners.dialogue import Parse, ask_until_valid, failure
from legoedit_core.planners.parsing import split_reasoning
from legoedit_core.planners.prompt import user_message
from legoedit_core.settings.planner import PlannerSettings
from legoedit_core.vlm.chat import Message, OutputFormat
from legoedit_core.vlm.engines import Engine
from legoedit_core.workflow import Workflow, parse_workflow, validate

ACTIONS = ("Addition", "Removal", "Replacement", "Recoloring", "Material", "Style", "Background", "Attribute",
           "Pose", "Environment", "Text", "Global")
MAX_REQUESTS = 6
_ITEM = r"[^<>;\x00-\x1f]{1,80}"
_ACTION = "(" + "|".join(ACTIONS) + ")"
DECOMPOSITION_REGEX = (rf"<action>{_ACTION}(; {_ACTION}){{0,3}}</action>\n<subjects>{_ITEM}(; {_ITEM}){{0,5}}"
                       rf"</subjects>\n<goals>{_ITEM}(; {_ITEM}){{0,5}}</goals>")
SEQUENCE_REGEX = rf"<requests>\n(\d\. [^<>\x00-\x1f]{{1,110}}\n){{1,{MAX_REQUESTS}}}</requests>"

DECOMPOSITION_PROMPT = f"""\
You are the decomposition agent of an image editor. Read the image and the instruction and break the edit down.
Answer in exactly this format:
<think>what the user wants and what in the image it concerns</think>
<action>one or more of: {", ".join(ACTIONS)}; separated by "; "</action>
<subjects>the things to edit, separated by "; "</subjects>
<goals>what each should become, separated by "; "</goals>
Example, for "Change the color of her coat and possibly hair to scarlet or copper red":
<think>The coat, and maybe the hair, should turn a red shade.</think>
<action>Recoloring</action>
<subjects>coat; hair</subjects>
<goals>scarlet or copper red</goals>"""

SEQUENCE_PROMPT = """\
You are the sequencing agent of an image editor. Turn the decomposition of an edit into ordered, self-contained
sub-requests that an instruction-following editor can apply one after the other (at most six).
Answer in exactly this format:
<think>the order and why</think>
<requests>
1. first sub-request
2. second sub-request
</requests>"""


@dataclass
class Decomposition:
    actions: list[str]
    subjects: list[str]
    goals: list[str]

    def text(self) -> str:
        return (f"<action>{'; '.join(self.actions)}</action>\n<subjects>{'; '.join(self.subjects)}</subjects>\n"
                f"<goals>{'; '.join(self.goals)}</goals>")


def _tag(text: str, name: str) -> str:
    found = re.findall(rf"<{name}>(.*?)</{name}>", text, re.S)
    if not found:
        raise ValueError(f"no <{name}>...</{name}> in the answer")
    if len(found) > 1:
        raise ValueError(f"<{name}> appears {len(found)} times; write it once")
    return found[0].strip()


def _items(text: str, name: str, separators: str = ";") -> list[str]:
    items = [item.strip() for item in re.split(f"[{separators}]", _tag(text, name)) if item.strip()]
    if not items:
        raise ValueError(f"<{name}> is empty")
    return items


def parse_decomposition(text: str) -> tuple[str, Decomposition]:
    """(reasoning, decomposition) of a decomposition answer; raise ValueError saying what is wrong."""
    reasoning, rest = split_reasoning(text)
    by_name = {a.lower(): a for a in ACTIONS}
    actions = []
    for action in _items(rest, "action", ";,"):
        if action.lower() not in by_name:
            raise ValueError(f"unknown action {action!r}: use {', '.join(ACTIONS)}")
        actions.append(by_name[action.lower()])
    return reasoning, Decomposition(actions, _items(rest, "subjects", ";,"), _items(rest, "goals"))


def parse_sequence(text: str) -> tuple[str, list[str]]:
    """(reasoning, ordered sub-requests) of a sequencing answer; raise ValueError saying what is wrong."""
    reasoning, rest = split_reasoning(text)
    lines = [line.strip() for line in _tag(rest, "requests").splitlines() if line.strip()]
    requests = []
    for expected, line in enumerate(lines, start=1):
        match = re.match(r"^(\d+)[.)]\s+(.+)$", line)
        if match is None:
            raise ValueError(f"line {line!r} is not a numbered sub-request like '1. make the coat red'")
        if int(match.group(1)) != expected:
            raise ValueError(f"sub-request {match.group(1)} is out of order: expected {expected}")
        requests.append(match.group(2).strip())
    if not requests:
        raise ValueError("<requests> holds no sub-request")
    if len(requests) > MAX_REQUESTS:
        raise ValueError(f"{len(requests)} sub-requests: at most {MAX_REQUESTS}")
    return reasoning, requests


def compile_workflow(instruction: str, requests: list[str], multi_turn: bool = False) -> Workflow:
    """EDIT once with every sub-request (single-turn) or once per sub-request in order (multi-turn)."""
    if not multi_turn:
        nodes = [{"id": "edit", "tool": "EDIT", "inputs": {"image": "@input.image", "prompt": "; ".join(requests)}}]
    else:
        nodes, image = [], "@input.image"
        for index, request in enumerate(requests, start=1):
            nodes.append({"id": f"edit_{index}", "tool": "EDIT", "inputs": {"image": image, "prompt": request}})
            image = f"@edit_{index}.image"
    return parse_workflow({"nodes": nodes, "output": f"@{nodes[-1]['id']}.image"}, instruction=instruction)


def _checked(parser: Callable[[str], tuple[str, Any]]) -> Parse:
    """A dialogue parse function from a tag parser: a ValueError becomes the attempt's problem."""
    def parse(index: int, raw: str) -> tuple[PlanAttempt, Any]:
        try:
            reasoning, value = parser(raw)
        except ValueError as error:
            return PlanAttempt(raw, split_reasoning(raw)[0], problems=[str(error)]), None
        return PlanAttempt(raw, reasoning), value
    return parse


class DecomposePlanner:
    """Two batched calls per round (decomposition, sequencing), then a compiled EDIT workflow."""

    def __init__(self, engine: Engine, toolset: Toolset, settings: PlannerSettings) -> None:
        self.engine = engine
        self.toolset = toolset
        self.settings = settings
        self.name = f"decompose/{engine.name}"

    def _format(self, regex: str) -> OutputFormat | None:
        if not self.settings.constrained:
            return None
        return OutputFormat(regex=regex, think=True, max_think_chars=self.settings.max_think_chars)

    def plan_batch(self, requests: list[PlanRequest]) -> list[PlanResult]:
        settings, seeds = self.settings, [r.seed for r in requests]
        first = [[Message("system", DECOMPOSITION_PROMPT), user_message(r, settings.image_size)] for r in requests]
        decomposed = ask_until_valid(self.engine, first, self._format(DECOMPOSITION_REGEX), seeds,
                                     _checked(parse_decomposition), settings.max_attempts)
        ready = [i for i, e in enumerate(decomposed) if e.value is not None]
        second = [[Message("system", SEQUENCE_PROMPT),
                   Message("user", f"Instruction: {requests[i].instruction}\n{decomposed[i].value.text()}")]
                  for i in ready]
        sequenced = dict(zip(ready, ask_until_valid(self.engine, second, self._format(SEQUENCE_REGEX),
                                                    [seeds[i] for i in ready], _checked(parse_sequence),
                                                    settings.max_attempts), strict=True))
        results = []
        for index, request in enumerate(requests):
            attempts = list(decomposed[index].attempts)
            if index in sequenced:
                attempts += sequenced[index].attempts
            if index not in sequenced or sequenced[index].value is None:
                results.append(failure(request.id, self.name, attempts))
                continue
            results.append(self._compile(request, attempts, sequenced[index].value))
        return results

    def _compile(self, request: PlanRequest, attempts: list[PlanAttempt], requests: list[str]) -> PlanResult:
        """The compiled workflow, validated (EDIT must be available; feedback constraints apply)."""
        workflow = compile_workflow(request.instruction, requests, self.settings.multi_turn)
        constraints = parse_feedback([*self.settings.feedback, *request.feedback], self.toolset.names())
        problems = [str(p) for p in validate(workflow, self.toolset, constraints)]
        reasoning = "\n".join(a.reasoning for a in attempts if a.reasoning and not a.problems)
        compiled = PlanAttempt(raw=workflow.to_json(), reasoning=reasoning, workflow=workflow, problems=problems)
        attempts = [*attempts, compiled]
        if problems:
            return PlanResult(request.id, self.name, reasoning=reasoning, attempts=attempts,
                              error="the compiled plan cannot run here: " + "; ".join(problems))
        return PlanResult(request.id, self.name, workflow=workflow, reasoning=reasoning, attempts=attempts)
