"""Lego-Edit's ``pipeline`` dialect, read as its released Builder writes it and exported back.

    {"process": "...", "pipeline": [
        {"step": 1, "model": "RES", "input": {"image": "init[image]", "prompt": "dog"},
         "output": {"mask": "step1[mask]"}},
        {"step": 2, "model": "INPAINT", "input": {"image": "init[image]", "mask": "step1[mask]"},
         "output": {"image": "step2[image]"}},
        {"result": "[step2[image]]"}]}

What Lego-Edit's executor (``legodemo.py``) accepts is accepted here:

- references ``init[key]``, ``stepN[key]``, or any storage name a step's ``output`` declared;
- several references in one input, as a list or comma-separated: masks are joined with UNION nodes (a legoedit
  port takes one value), anything else is a problem;
- the result as one reference, in brackets or not, a list of references, or several comma-separated ones; mask
  references among them are dropped, and several image references make several outputs (``output`` a list);
- ``"result"`` at the top level beside ``"pipeline"`` (it is moved into the list, as legodemo does).

Export (``to_dialect``) writes the steps in dependency order with the node id and note kept as extra keys, which
Lego-Edit's executor ignores, so a legoedit workflow exports and parses back unchanged.

This module works on plain dicts (the canonical form as ``Workflow.model_dump()`` gives it) and sits below
``workflow``, which calls it to parse; problems come out as ``DialectError``, which ``workflow`` reports.
"""

from __future__ import annotations

import re
from typing import Any

INPUT = "input"
_REF = re.compile(r"^(init|step(\d+))\[([^\[\]]+)\]$")
_CANONICAL_REF = re.compile(r"^@([A-Za-z_][A-Za-z0-9_-]*)\.([A-Za-z_][A-Za-z0-9_-]*)$")


class DialectError(ValueError):
    """A dialect workflow that cannot be read (or a canonical one that cannot be written): every problem, each as
    (node id or None, message)."""

    def __init__(self, problems: list[tuple[str | None, str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(message for _, message in problems))
_INPUT_ALIASES = {"img": "image", "text": "prompt", "caption": "prompt"}
_OUTPUT_ALIASES = {"img": "image"}


def from_dialect(data: dict[str, Any]) -> dict[str, Any]:
    """The canonical workflow dict of a dialect workflow; raise DialectError listing every problem."""
    pipeline = data["pipeline"]
    if not isinstance(pipeline, list):
        raise DialectError([(None, "pipeline: expected a list of steps")])
    entries = [*pipeline, {"result": data["result"]}] if "result" in data else list(pipeline)
    stored: dict[str, str] = {}  # storage name ("step1[mask]") -> canonical reference ("@step1.mask")
    nodes: list[dict[str, Any]] = []
    output: str | list[str] | None = None
    problems: list[tuple[str | None, str]] = []
    for entry in entries:
        if isinstance(entry, dict) and "result" in entry and "model" not in entry:
            output = _result(entry["result"], stored, problems)
            continue
        if not isinstance(entry, dict) or "step" not in entry or "model" not in entry:
            problems.append((None, f"pipeline entry {entry!r} has no step/model"))
            continue
        node_id = str(entry.get("id") or f"step{entry['step']}")
        inputs = {}
        for key, value in (entry.get("input") or {}).items():
            port = _INPUT_ALIASES.get(key, key)
            inputs[port] = _input(value, stored, f"{node_id}_{port}", nodes, problems, node_id)
        node: dict[str, Any] = {"id": node_id, "tool": entry["model"], "inputs": inputs}
        if entry.get("note"):
            node["note"] = entry["note"]
        nodes.append(node)
        for port, name in (entry.get("output") or {}).items():
            stored[str(name).strip()] = f"@{node_id}.{_OUTPUT_ALIASES.get(port, port)}"
    if problems:
        raise DialectError(problems)
    canonical: dict[str, Any] = {"nodes": nodes, "output": output or ""}
    if "instruction" in data:
        canonical["instruction"] = data["instruction"]
    return canonical


def references(value: Any, stored: dict[str, str]) -> list[str] | None:
    """The canonical references a dialect value holds (one or several: a list, brackets, commas), or None when
    it is a literal."""
    texts = value if isinstance(value, list) else [value]
    if not texts or not all(isinstance(text, str) for text in texts):
        return None
    parts = [part for text in texts for part in _parts(text)]
    refs = [_reference(part, stored) for part in parts]
    if not refs or any(ref is None for ref in refs):
        return None
    return [ref for ref in refs if ref is not None]


def _parts(text: str) -> list[str]:
    text = text.strip().replace("'", "").replace('"', "")
    if text.startswith("[") and text.endswith("]") and not _REF.match(text):
        text = text[1:-1]
    return [part.strip() for part in text.split(",") if part.strip()]


def _reference(name: str, stored: dict[str, str]) -> str | None:
    if name in stored:
        return stored[name]
    match = _REF.match(name)
    if match is None:
        return None
    source = INPUT if match.group(1) == "init" else match.group(1)
    return f"@{source}.{_INPUT_ALIASES.get(match.group(3), match.group(3))}"


def _input(value: Any, stored: dict[str, str], union_id: str, nodes: list[dict[str, Any]],
           problems: list[tuple[str | None, str]], node_id: str) -> Any:
    """A step input in canonical form: a reference, a UNION of several masks, or a literal (``@`` escaped)."""
    refs = references(value, stored)
    if refs is None:
        return "@" + value if isinstance(value, str) and value.startswith("@") else value
    if len(refs) == 1:
        return refs[0]
    if not all(ref.endswith(".mask") for ref in refs):
        problems.append((node_id, f"an input holds several references ({', '.join(refs)}); a legoedit port takes "
                                  "one (several masks are joined with UNION)"))
        return refs[0]
    mask = refs[0]
    for index, other in enumerate(refs[1:], start=1):
        union = union_id if index == 1 else f"{union_id}_{index}"
        nodes.append({"id": union, "tool": "UNION", "inputs": {"mask": mask, "other": other}})
        mask = f"@{union}.mask"
    return mask


def _result(value: Any, stored: dict[str, str], problems: list[tuple[str | None, str]]) -> str | list[str] | None:
    refs = references(value, stored)
    if refs is None:
        problems.append((None, f"result: expected references like [step3[image]], got {value!r}"))
        return None
    images = [ref for ref in refs if not ref.endswith(".mask")]  # Lego-Edit drops mask results
    if not images:
        problems.append((None, f"result: {value!r} names only masks; the result is an image"))
        return None
    return images[0] if len(images) == 1 else images


# ---------------------------------------------------------------------------------------------------- export


def to_dialect(workflow: dict[str, Any]) -> dict[str, Any]:
    """A canonical workflow (``Workflow.model_dump()``) in Lego-Edit's dialect: steps in dependency order, each
    output named ``stepN[port]``.

    The node id (when it is not ``stepN``) and note ride along as extra step keys, so ``from_dialect`` gives the
    same workflow back. Raises DialectError for a cycle or a reference to no node.
    """
    nodes = {node["id"]: node for node in workflow["nodes"]}
    order = _dependency_order(nodes)
    step = {node_id: index for index, node_id in enumerate(order, start=1)}
    outputs = workflow["output"] if isinstance(workflow["output"], list) else [workflow["output"]]
    used: dict[str, set[str]] = {}
    for value in [*outputs, *(v for node in nodes.values() for v in node["inputs"].values())]:
        ref = _canonical_ref(value)
        if ref is not None and ref[0] != INPUT:
            used.setdefault(ref[0], set()).add(ref[1])

    def export(value: Any) -> Any:
        ref = _canonical_ref(value)
        if ref is None:
            return value[1:] if isinstance(value, str) and value.startswith("@@") else value
        source, port = ref
        return f"init[{port}]" if source == INPUT else f"step{step[source]}[{port}]"

    steps: list[dict[str, Any]] = []
    for node_id in order:
        node = nodes[node_id]
        entry: dict[str, Any] = {"step": step[node_id]}
        if node_id != f"step{step[node_id]}":
            entry["id"] = node_id
        entry.update(model=node["tool"], input={port: export(value) for port, value in node["inputs"].items()},
                     output={port: f"step{step[node_id]}[{port}]" for port in sorted(used.get(node_id, ()))})
        if node.get("note"):
            entry["note"] = node["note"]
        steps.append(entry)
    steps.append({"result": "[" + ", ".join(export(value) for value in outputs) + "]"})
    instruction = workflow.get("instruction", "")
    return {"process": instruction, "instruction": instruction, "pipeline": steps}


def _canonical_ref(value: Any) -> tuple[str, str] | None:
    """(source, port) of a canonical reference ``@source.port``; None for a literal (``@@`` escapes included)."""
    if not isinstance(value, str) or value.startswith("@@"):
        return None
    match = _CANONICAL_REF.match(value)
    return (match.group(1), match.group(2)) if match else None


def _dependency_order(nodes: dict[str, dict[str, Any]]) -> list[str]:
    """Node ids with every node after the nodes it reads, otherwise in their given order (so an ordered workflow
    keeps its order); DialectError for a reference to no node or a cycle."""
    needs = {node_id: {ref[0] for v in node["inputs"].values() if (ref := _canonical_ref(v)) and ref[0] != INPUT}
             for node_id, node in nodes.items()}
    dangling = sorted(set().union(*needs.values()) - set(needs))
    if dangling:
        raise DialectError([(None, f"dangling reference to {', '.join(dangling)}")])
    order: list[str] = []
    while len(order) < len(needs):
        ready = next((n for n in needs if n not in order and needs[n] <= set(order)), None)
        if ready is None:
            raise DialectError([(None, "the nodes reference each other in a cycle")])
        order.append(ready)
    return order
