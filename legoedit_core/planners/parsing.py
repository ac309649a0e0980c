"""Reading the Builder's answer: ``<think>`` reasoning, then a workflow JSON (canonical or Lego-Edit dialect).

Tolerant of code fences and of text around the JSON. The JSON is read strictly first, then as JSON5 (trailing
commas, single quotes), which is what Lego-Edit's released Builder writes and its demo reads.
"""

from __future__ import annotations

import json
import re
from typing import Any

from legoedit_core.workflow import MAX_JSON5_CHARS, Problem, Workflow, WorkflowError, load_json5, parse_workflow

JSON5_TRIES = 8  # spans tried with the lenient parser, longest first
_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.S | re.I)


def split_reasoning(text: str) -> tuple[str, str]:
    """(reasoning, rest). Accepts a missing opening tag (models that start inside ``<think>``)."""
    if "</think>" not in text:
        return "", text
    before, _, after = text.partition("</think>")
    return before.split("<think>", 1)[-1].strip(), after


def extract_json(text: str) -> Any:
    """The first JSON object in ``text``, inside a code fence or not; raise WorkflowError when there is none."""
    fenced = _FENCE.search(text)
    body = fenced.group(1) if fenced else text
    start = body.find("{")
    if start < 0:
        raise WorkflowError([Problem(None, "the answer contains no JSON object: write the workflow as JSON")])
    try:
        value, _ = json.JSONDecoder().raw_decode(body[start:])
        return value
    except json.JSONDecodeError as error:
        strict = error
    ends = [match.start() for match in re.finditer("}", body) if start < match.start() < start + MAX_JSON5_CHARS]
    for end in reversed(ends[-JSON5_TRIES:]):  # the longest span from the first "{" that JSON5 reads (bounded)
        try:
            return load_json5(body[start : end + 1])
        except ValueError:
            continue
    raise WorkflowError([Problem(None, f"the workflow JSON is malformed: {strict}")])


def parse_answer(text: str, instruction: str) -> tuple[str, Workflow | None, list[str]]:
    """(reasoning, workflow or None, problems) of one answer; validation against tools is the caller's job."""
    reasoning, rest = split_reasoning(text)
    try:
        return reasoning, parse_workflow(extract_json(rest), instruction=instruction), []
    except WorkflowError as error:
        return reasoning, None, [str(p) for p in error.problems]
