"""The ``rules`` planner: an offline Builder with no model at all.

It reads the instruction into typed clauses (``reading.read``: action, targets, scope, value, amounts, strength),
maps each clause to bricks (``planning.plan_clause``) and chains them. Every clause is accounted for: planned, or
named as not doable, in which case the whole request is declined with the clause in the user's words (status
``invalid_plan``); a plan never leaves part of a request out. A clause the vocabulary does not cover is ranked
against exemplar phrasings (``exemplars.py``) before it is declined. It also writes the synthetic expert traces
(instruction, reasoning, workflow) used for supervised fine-tuning of a model Builder.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, replace
from typing import Any

from legoedit_core.bricks.toolset import Toolset
from legoedit_core.planners.base import PlanAttempt, PlanRequest, PlanResult
from legoedit_core.planners.constraints import parse_feedback
from legoedit_core.planners.embeddings import Embeddings
from legoedit_core.planners.exemplars import ExemplarRanker
from legoedit_core.planners.graph import (
    Alternative,
    Choice,
    Chooser,
    Declined,
    Graph,
    NotCovered,
    Preferred,
    Sampled,
    why_not,
)
from legoedit_core.planners.planning import plan_clause
from legoedit_core.planners.reader import read
from legoedit_core.planners.reading import Clause
from legoedit_core.planners.replan import CRITIQUE
from legoedit_core.settings.planner import RulesSettings
from legoedit_core.workflow import Workflow, parse_workflow, validate

__all__ = ["Alternative", "Chooser", "Choice", "Declined", "Graph", "NotCovered", "Preferred", "RulesPlanner",
           "Sampled", "expert_traces", "plan_body", "to_workflow", "trace_text", "why_not"]


class RulesPlanner:
    """Plans by rules; needs no model. ``name`` is ``rules``.

    Every alternative it weighs (which locator where both are valid, which eraser, a parameter value: blur radius,
    sharpening amount, adjustment strength, colour shade) goes through ``chooser``; the default takes the preferred
    one, so plans are deterministic. At ``temperature`` > 0 each request samples its choices (``Sampled``, seeded
    with the request's seed), so the K samples of a rollout group differ. The choices made are in
    ``PlanResult.details``.
    """

    name = "rules"

    def __init__(self, toolset: Toolset, feedback: Sequence[str] = (), settings: RulesSettings | None = None,
                 chooser: Chooser | None = None, temperature: float = 0.0,
                 ranker: ExemplarRanker | None = None) -> None:
        self.toolset = toolset
        self.feedback = list(feedback)
        self.settings = settings or RulesSettings()
        self.chooser = chooser or Preferred()
        self.temperature = temperature
        self._ranker = ranker

    @property
    def ranker(self) -> ExemplarRanker | None:
        """The exemplar ranker (made on first use, so a planner that never needs it loads no model)."""
        if self._ranker is None and self.settings.understanding == "embeddings":
            self._ranker = ExemplarRanker(Embeddings(encoder="numpy"), threshold=self.settings.exemplar_threshold)
        return self._ranker

    def chooser_for(self, request: PlanRequest) -> Chooser:
        """At temperature 0 the planner's chooser, or after critiques of rejected edits (``replan``) an
        ``Alternative``; above 0, a ``Sampled`` chooser seeded with the request's seed."""
        if self.temperature > 0:
            return Sampled(request.seed, self.temperature)
        critiques = sum(1 for line in request.feedback if line.startswith(CRITIQUE))
        return Alternative(critiques) if critiques else self.chooser

    def plan_batch(self, requests: list[PlanRequest]) -> list[PlanResult]:
        return [self.plan(request) for request in requests]

    def plan(self, request: PlanRequest) -> PlanResult:
        """Plan one request; a clause it cannot do, a thing it cannot find or a missing brick is ``error``."""
        size = (int(request.image.shape[1]), int(request.image.shape[0]))
        try:
            graph, reasoning = self.build(request.instruction, request.has_mask, size, self.chooser_for(request))
        except NotCovered as error:
            attempt = PlanAttempt(raw="", problems=[str(error)])
            return PlanResult(request.id, self.name, attempts=[attempt], error=str(error))
        workflow = to_workflow(graph, request.instruction)
        details = {"choices": [asdict(c) for c in graph.choices],
                   "notes": {n["id"]: n["note"] for n in graph.nodes if n.get("note")}}
        constraints = parse_feedback([*self.feedback, *request.feedback], self.toolset.names())
        problems = [str(p) for p in validate(workflow, self.toolset, constraints)]
        attempt = PlanAttempt(raw=trace_text(reasoning, workflow), reasoning=reasoning, workflow=workflow,
                              problems=problems)
        if problems:
            return PlanResult(request.id, self.name, reasoning=reasoning, attempts=[attempt], details=details,
                              error="the rules plan cannot run here: " + "; ".join(problems))
        return PlanResult(request.id, self.name, workflow=workflow, reasoning=reasoning, attempts=[attempt],
                          details=details)

    def compile(self, instruction: str, has_mask: bool = False, size: tuple[int, int] = (512, 512)
                ) -> tuple[Workflow, str]:
        """The workflow and reasoning for an instruction; raise NotCovered when it cannot be planned."""
        graph, reasoning = self.build(instruction, has_mask, size)
        return to_workflow(graph, instruction), reasoning

    def build(self, instruction: str, has_mask: bool, size: tuple[int, int],
              chooser: Chooser | None = None) -> tuple[Graph, str]:
        """The graph and reasoning for an instruction. Every clause is planned or declined; raise Declined naming
        every clause that cannot be done (in the user's words), NotCovered when nothing was asked."""
        graph = Graph(self.toolset, has_mask, size, self.settings, chooser or self.chooser)
        image, sentences, declined, asides = "@input.image", [], [], []
        for clause in read(instruction, self.understood).clauses:
            try:
                image, sentence = plan_clause(graph, clause, image)
            except Declined as error:
                (declined if clause.asks else asides).append((clause, str(error)))
                continue
            sentences.append(sentence)
        if declined or not graph.nodes:
            declined += asides
        else:
            sentences += [f"{clause.text!r} asks for no edit: an aside." for clause, _ in asides]
        if declined:
            raise Declined("; ".join(why for _, why in declined))
        if not graph.nodes:
            raise NotCovered(f"the rules planner found no edit in {instruction!r}")
        missing = sorted({f"{n['tool']} ({why_not(self.toolset, n['tool'])})" for n in graph.nodes
                          if why_not(self.toolset, n["tool"])})
        if missing:
            raise NotCovered(f"{instruction!r} needs bricks that cannot run here: {'; '.join(missing)}")
        graph.output = image
        graph.prune()
        return graph, " ".join(sentences)

    def understood(self, clause: Clause) -> Clause:
        """A clause the vocabulary does not cover, read by its nearest exemplar when one is close enough; a
        statement ("it looks mushy") is a request only when it reads like one."""
        if clause.action not in ("unknown", "statement") or self.ranker is None:
            return clause
        match = self.ranker.rank([clause.text.lower()])[0]
        if clause.action == "statement" and not (match.confident and match.reading):
            return replace(clause, action="remark")  # "it was shot at night" says something, asks nothing
        if not match.confident:
            return clause
        if match.reading is None:
            return replace(clause, action="undoable", reason=match.intent, value=match.instead)
        # a statement that reads as a wish ("it feels icy") is a description: beside the same change it explains it
        implied = "implied" if clause.action == "statement" else None
        return replace(clause, targets=[], **{"value": implied, **match.reading})


def to_workflow(graph: Graph, instruction: str) -> Workflow:
    """The parsed workflow of a finished graph."""
    return parse_workflow({"nodes": graph.nodes, "output": graph.output}, instruction=instruction)


def trace_text(reasoning: str, workflow: Workflow) -> str:
    """The answer a model Builder should write: ``<think>`` reasoning, then the compact workflow JSON."""
    return f"<think>{reasoning}</think>\n{json.dumps(plan_body(workflow), separators=(',', ':'))}"


def plan_body(workflow: Workflow) -> dict[str, Any]:
    """What a model Builder writes for a workflow: nodes and output, without the instruction or planner notes."""
    return workflow.model_dump(exclude={"instruction": True, "nodes": {"__all__": {"note"}}})


def expert_traces(instructions: Iterable[str], toolset: Toolset | None = None) -> list[dict[str, Any]]:
    """Synthetic SFT examples for the instructions the rules planner covers with ``toolset``'s bricks.

    Each is ``{"instruction", "reasoning", "workflow" (canonical dict), "text"}``, where ``text`` is the target
    answer. Instructions it does not cover are left out.
    """
    planner = RulesPlanner(toolset or Toolset())
    traces = []
    for instruction in instructions:
        try:
            workflow, reasoning = planner.compile(instruction)
        except NotCovered:
            continue
        if validate(workflow, planner.toolset):
            continue
        traces.append({"instruction": instruction, "reasoning": reasoning,
                       "workflow": plan_body(workflow),
                       "text": trace_text(reasoning, workflow)})
    return traces
