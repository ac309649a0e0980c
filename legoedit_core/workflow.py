"""Workflows: the typed graph of tool calls that the Builder writes and the Executor runs.

Canonical form (see docs/architecture.md)::

    {"instruction": "...",
     "nodes": [{"id": "seg", "tool": "RES", "inputs": {"image": "@input.image", "prompt": "dog"}}, ...],
     "output": "@erase.image"}

A string starting with ``@`` is a reference (``@input.image``, ``@input.mask``, ``@<node>.<port>``); ``@@``
escapes a literal leading ``@``. ``output`` may be a list when a workflow makes several images. The Lego-Edit
``pipeline`` dialect (``legoedit_core.dialect``) is parsed into the same form.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import json5
from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, ValidationError, model_serializer

from legoedit_core.bricks.spec import BrickSpec, Port
from legoedit_core.dialect import INPUT, DialectError, from_dialect, to_dialect
from legoedit_core.types import PortType, ValueTypeError, check_value

INPUT_PORTS: dict[str, PortType] = {"image": PortType.IMAGE, "mask": PortType.MASK}
NODE_ID_PATTERN = r"^[A-Za-z_][A-Za-z0-9_-]{0,47}$"
_REF = re.compile(r"^@([A-Za-z_][A-Za-z0-9_-]*)\.([A-Za-z_][A-Za-z0-9_-]*)$")


class Node(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    tool: str
    inputs: dict[str, Any] = Field(default_factory=dict)
    note: str | None = Field(None, description="what the planner wants a reader of the trace to know, e.g. that "
                             "this node approximates what the instruction named; copied into the node's trace")

    @model_serializer(mode="wrap")
    def _without_empty_note(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data = handler(self)
        if data.get("note") is None:
            data.pop("note", None)
        return data


class Workflow(BaseModel):
    model_config = ConfigDict(extra="forbid")

    instruction: str = ""
    nodes: list[Node]
    output: str | list[str] = Field(description="the reference of the result image, or a list of them when the "
                                    "workflow makes several images (each is written)")

    def outputs(self) -> list[str]:
        """The output references, one or more."""
        return list(self.output) if isinstance(self.output, list) else [self.output]

    def node(self, node_id: str) -> Node | None:
        return next((n for n in self.nodes if n.id == node_id), None)

    def tools(self) -> list[str]:
        return [n.tool for n in self.nodes]

    def to_json(self) -> str:
        return self.model_dump_json(indent=2)

    def to_dialect(self) -> dict[str, Any]:
        """This workflow in Lego-Edit's ``pipeline`` dialect (``parse_workflow`` reads it back unchanged)."""
        return to_dialect(self.model_dump())


@dataclass(frozen=True)
class Ref:
    """A reference to a value: ``source`` is ``input`` or a node id, ``port`` an output port name."""

    source: str
    port: str

    def __str__(self) -> str:
        return f"@{self.source}.{self.port}"


def parse_ref(value: Any) -> Ref | None:
    """The reference a literal stands for, or None when it is a plain literal (including ``@@`` escapes)."""
    if not isinstance(value, str) or not value.startswith("@") or value.startswith("@@"):
        return None
    match = _REF.match(value)
    if match is None:
        raise ValueError(f"malformed reference {value!r}: expected @input.image, @input.mask or @<node>.<port>")
    return Ref(match.group(1), match.group(2))


def literal_value(value: Any) -> Any:
    """A literal with its ``@@`` escape undone."""
    return value[1:] if isinstance(value, str) and value.startswith("@@") else value


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a workflow: the node it is about (None for the whole graph) and what is wrong."""

    node: str | None
    message: str

    def __str__(self) -> str:
        return f"{self.node}: {self.message}" if self.node else self.message


class WorkflowError(ValueError):
    """A workflow that cannot be parsed or does not validate; ``problems`` lists every issue found."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        super().__init__("invalid workflow:\n" + "\n".join(f"  - {p}" for p in self.problems))


class Constraint(Protocol):
    """A user rule about plans (e.g. from feedback); validation reports its violations."""

    def describe(self) -> str: ...

    def violations(self, workflow: Workflow) -> list[Problem]: ...


class ToolCatalog(Protocol):
    """What validation needs to know about tools: their declarations and whether they can run here."""

    def spec(self, name: str) -> BrickSpec | None: ...

    def unavailable(self, name: str) -> str | None: ...

    def names(self) -> list[str]: ...


# ---------------------------------------------------------------------------------------------------- parsing


def parse_workflow(data: str | bytes | dict[str, Any], instruction: str | None = None) -> Workflow:
    """Parse a workflow in canonical form or the Lego-Edit ``pipeline`` dialect; raise WorkflowError if malformed."""
    if isinstance(data, (str, bytes)):
        data = load_json(data)
    if not isinstance(data, dict):
        raise WorkflowError([Problem(None, f"a workflow is a JSON object, got {type(data).__name__}")])
    if "pipeline" in data:
        try:
            data = from_dialect(data)
        except DialectError as error:
            raise WorkflowError([Problem(node, message) for node, message in error.problems]) from None
    if instruction is not None:
        data = {**data, "instruction": instruction}
    try:
        return Workflow.model_validate(data)
    except ValidationError as error:
        raise WorkflowError([_pydantic_problem(e) for e in error.errors()]) from None


def load_json(text: str | bytes) -> Any:
    """Strict JSON, or failing that the lenient JSON5 a model Builder writes (trailing commas, single quotes,
    comments, unquoted keys); WorkflowError when it is neither."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        strict = error
    try:
        return json5.loads(text.decode() if isinstance(text, bytes) else text)
    except ValueError:
        raise WorkflowError([Problem(None, f"not valid JSON (nor JSON5): {strict}")]) from None


def _pydantic_problem(error: dict[str, Any]) -> Problem:
    location = ".".join(str(part) for part in error["loc"])
    return Problem(None, f"{location}: {error['msg']}")


# ------------------------------------------------------------------------------------------------- validation


def validate(workflow: Workflow, tools: ToolCatalog, constraints: Iterable[Constraint] = ()) -> list[Problem]:
    """Every problem with ``workflow`` at once; an empty list means it can run."""
    problems: list[Problem] = []
    ids = [n.id for n in workflow.nodes]
    seen: set[str] = set()
    for node_id in ids:
        if node_id in seen:
            problems.append(Problem(node_id, "duplicate node id"))
        seen.add(node_id)
        if node_id == INPUT or not re.match(NODE_ID_PATTERN, node_id):
            problems.append(Problem(node_id, "node id must be a name like 'seg_dog' and not 'input'"))
    specs = {n.id: tools.spec(n.tool) for n in workflow.nodes}

    for node in workflow.nodes:
        spec = specs[node.id]
        if spec is None:
            problems.append(Problem(node.id, f"unknown tool {node.tool!r} (known: {', '.join(tools.names())})"))
            continue
        reason = tools.unavailable(node.tool)
        if reason:
            problems.append(Problem(node.id, f"tool {node.tool} cannot run here: {reason}"))
        problems += _check_inputs(node, spec, specs)

    problems += _check_output(workflow, specs)
    problems += [Problem(node, f"cycle: {' -> '.join(cycle)}") for node, cycle in _cycles(workflow)]
    for constraint in constraints:
        problems += constraint.violations(workflow)
    return problems


def _check_inputs(node: Node, spec: BrickSpec, specs: dict[str, BrickSpec | None]) -> list[Problem]:
    problems = []
    for name, value in node.inputs.items():
        port = spec.input(name)
        if port is None:
            known = ", ".join(p.name for p in spec.inputs)
            problems.append(Problem(node.id, f"{spec.name} has no input {name!r} (inputs: {known})"))
            continue
        message = _check_value(port, value, specs)
        if message:
            problems.append(Problem(node.id, f"input {name!r}: {message}"))
    for port in spec.inputs:
        if port.required and port.name not in node.inputs:
            problems.append(Problem(node.id, f"missing required input {port.name!r} ({port.type.value})"))
    return problems


def _check_value(port: Port, value: Any, specs: dict[str, BrickSpec | None]) -> str | None:
    try:
        ref = parse_ref(value)
    except ValueError as error:
        return str(error)
    if ref is not None:
        source_type, error = _ref_type(ref, specs)
        if error:
            return error
        if source_type is not None and source_type is not port.type:
            return f"type mismatch: {ref} is a {source_type.value}, but {port.name!r} takes a {port.type.value}"
        return None
    if not port.type.literal_allowed:
        example = "@input.mask" if port.type is PortType.MASK else "@input.image"
        return f"needs a reference to a {port.type.value} (like {example}), got the literal {value!r}"
    try:
        checked = check_value(port.type, literal_value(value))
    except ValueTypeError as error:
        return f"bad literal {value!r}: {error}"
    too_low = port.minimum is not None and checked < port.minimum
    too_high = port.maximum is not None and checked > port.maximum
    if port.type is PortType.NUMBER and (too_low or too_high):
        return f"{checked:g} is out of range {port.range_text()}"
    if port.choices and checked not in port.choices:
        return f"{checked!r} is not one of {', '.join(port.choices)}"
    return None


def _ref_type(ref: Ref, specs: dict[str, BrickSpec | None]) -> tuple[PortType | None, str | None]:
    """(the type a reference yields, an error message); the type is None when the source tool is unknown."""
    if ref.source == INPUT:
        if ref.port not in INPUT_PORTS:
            return None, f"unknown input {ref}: the inputs are @input.image and @input.mask"
        return INPUT_PORTS[ref.port], None
    if ref.source not in specs:
        return None, f"dangling reference {ref}: there is no node {ref.source!r}"
    source = specs[ref.source]
    if source is None:
        return None, None
    port = source.output(ref.port)
    if port is None:
        known = ", ".join(p.name for p in source.outputs)
        return None, f"{ref}: {source.name} has no output {ref.port!r} (outputs: {known})"
    return port.type, None


def _check_output(workflow: Workflow, specs: dict[str, BrickSpec | None]) -> list[Problem]:
    outputs = workflow.outputs()
    if not outputs or not all(outputs):
        return [Problem(None, "the workflow has no output: set 'output' to a reference like @node.image")]
    return [problem for output in outputs for problem in _check_one_output(output, specs)]


def _check_one_output(output: str, specs: dict[str, BrickSpec | None]) -> list[Problem]:
    try:
        ref = parse_ref(output)
    except ValueError as error:
        return [Problem(None, f"output: {error}")]
    if ref is None:
        return [Problem(None, f"output must be a reference like @node.image, got {output!r}")]
    source_type, error = _ref_type(ref, specs)
    if error:
        return [Problem(None, f"output: {error}")]
    if source_type is not None and source_type is not PortType.IMAGE:
        return [Problem(None, f"output {ref} is a {source_type.value}; the output must be an Image")]
    if ref.source == INPUT:
        return [Problem(None, "output is the unedited input image: the workflow must edit something")]
    return []


def dependencies(node: Node) -> list[Ref]:
    """The references a node's inputs make, skipping malformed ones (validation reports those)."""
    refs = []
    for value in node.inputs.values():
        try:
            ref = parse_ref(value)
        except ValueError:
            continue
        if ref is not None:
            refs.append(ref)
    return refs


def _cycles(workflow: Workflow) -> list[tuple[str, list[str]]]:
    """Each cycle once, as (first node, path), found by depth-first search over references."""
    edges = {n.id: [r.source for r in dependencies(n) if r.source != INPUT] for n in workflow.nodes}
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done
    found: list[tuple[str, list[str]]] = []

    def visit(node_id: str, path: list[str]) -> None:
        state[node_id] = 1
        for dep in edges.get(node_id, []):
            if dep not in edges:
                continue
            if state.get(dep) == 1:
                cycle = path[path.index(dep):] + [dep]
                found.append((dep, cycle))
            elif dep not in state:
                visit(dep, path + [dep])
        state[node_id] = 2

    for node_id in edges:
        if node_id not in state:
            visit(node_id, [node_id])
    return found


def needed_nodes(workflow: Workflow) -> list[str]:
    """Ids of the nodes the output depends on, in an order where every node follows its dependencies.

    Assumes a validated (acyclic) workflow. Unused branches are left out.
    """
    by_id = {n.id: n for n in workflow.nodes}
    order: list[str] = []
    done: set[str] = set()

    def visit(node_id: str) -> None:
        if node_id in done or node_id not in by_id:
            return
        done.add(node_id)
        for ref in dependencies(by_id[node_id]):
            if ref.source != INPUT:
                visit(ref.source)
        order.append(node_id)

    for output in workflow.outputs():
        ref = parse_ref(output)
        if ref is not None and ref.source != INPUT:
            visit(ref.source)
    return order
