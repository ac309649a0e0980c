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
MAX_JSON5_CHARS = 32_768  # lenient JSON is parsed in pure Python: bounded so that parsing stays under ~1 s
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
class WorkflowLimits:
    """Caps that keep a hostile or runaway workflow from exhausting memory or time (config: ``executor``)."""

    max_nodes: int = 64
    max_depth: int = 32  # the longest chain of nodes, each needing the one before
    max_image_side: int = 8192  # literal width / height inputs

    @classmethod
    def of(cls, settings: Any) -> WorkflowLimits:
        """The limits an ``ExecutorSettings`` names."""
        return cls(settings.max_nodes, settings.max_depth, settings.max_image_side)


DEFAULT_LIMITS = WorkflowLimits()
SIZE_PORTS = ("width", "height")


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
    except RecursionError:
        raise WorkflowError([Problem(None, "not a usable workflow: JSON nested too deeply")]) from None
    try:
        return load_json5(text.decode() if isinstance(text, bytes) else text)
    except (ValueError, RecursionError) as error:
        raise WorkflowError([Problem(None, f"not valid JSON (nor JSON5): {strict}"
                                     + (f"; {error}" if isinstance(error, JSON5TooLong) else ""))]) from None


class JSON5TooLong(ValueError):
    """Text too long for the lenient parser (refused without parsing)."""


def load_json5(text: str) -> Any:
    """JSON5 text, refused (``JSON5TooLong``) above ``MAX_JSON5_CHARS``: the pure-Python parser takes about a
    second per 30 KB, and a workflow of the largest allowed size is about 10 KB (strict JSON has no such limit)."""
    if len(text) > MAX_JSON5_CHARS:
        raise JSON5TooLong(f"JSON5 is only read up to {MAX_JSON5_CHARS} characters, this is {len(text)}")
    return json5.loads(text)


def _pydantic_problem(error: dict[str, Any]) -> Problem:
    location = ".".join(str(part) for part in error["loc"])
    return Problem(None, f"{location}: {error['msg']}")


# ------------------------------------------------------------------------------------------------- validation


def validate(workflow: Workflow, tools: ToolCatalog, constraints: Iterable[Constraint] = (),
             limits: WorkflowLimits = DEFAULT_LIMITS) -> list[Problem]:
    """Every problem with ``workflow`` at once; an empty list means it can run."""
    if len(workflow.nodes) > limits.max_nodes:
        return [Problem(None, f"{len(workflow.nodes)} nodes, above the limit of {limits.max_nodes} "
                              "(executor.max_nodes)")]
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
    cycles = _cycles(workflow)
    problems += [Problem(node, f"cycle: {' -> '.join(cycle)}") for node, cycle in cycles]
    if not cycles:
        problems += _check_size(workflow, limits)
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


def _check_size(workflow: Workflow, limits: WorkflowLimits) -> list[Problem]:
    """The graph's depth and its literal image sizes against ``limits`` (the graph is acyclic)."""
    problems = []
    for node in workflow.nodes:
        for port in SIZE_PORTS:
            value = node.inputs.get(port)
            if isinstance(value, (int, float)) and not isinstance(value, bool) and value > limits.max_image_side:
                problems.append(Problem(node.id, f"input {port!r}: {value:g} is above the limit of "
                                                 f"{limits.max_image_side} pixels (executor.max_image_side)"))
    depth: dict[str, int] = {}
    edges = _edges(workflow)
    for node_id in _topological(edges):
        depth[node_id] = 1 + max((depth[d] for d in edges[node_id]), default=0)
        if depth[node_id] > limits.max_depth:
            problems.append(Problem(node_id, f"a chain of {depth[node_id]} nodes ends here, above the limit of "
                                             f"{limits.max_depth} (executor.max_depth)"))
            break
    return problems


def _edges(workflow: Workflow) -> dict[str, list[str]]:
    """Each node's dependencies among the workflow's nodes (input references and unknown nodes left out)."""
    known = {n.id for n in workflow.nodes}
    return {n.id: [r.source for r in dependencies(n) if r.source in known] for n in workflow.nodes}


def _topological(edges: dict[str, list[str]]) -> list[str]:
    """Nodes in an order where every node follows its dependencies (an acyclic graph), without recursion."""
    order: list[str] = []
    done: set[str] = set()
    for start in edges:
        stack = [(start, iter(edges[start]))]
        if start in done:
            continue
        done.add(start)
        while stack:
            node_id, pending = stack[-1]
            dep = next((d for d in pending if d not in done), None)
            if dep is None:
                stack.pop()
                order.append(node_id)
            else:
                done.add(dep)
                stack.append((dep, iter(edges[dep])))
    return order


def _cycles(workflow: Workflow) -> list[tuple[str, list[str]]]:
    """Each cycle once, as (first node, path), found by an iterative depth-first search over references."""
    edges = _edges(workflow)
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done
    found: list[tuple[str, list[str]]] = []
    for start in edges:
        if start in state:
            continue
        state[start] = 1
        path, stack = [start], [iter(edges[start])]
        while stack:
            dep = next(stack[-1], None)
            if dep is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(dep) == 1:
                found.append((dep, path[path.index(dep):] + [dep]))
            elif dep not in state:
                state[dep] = 1
                path.append(dep)
                stack.append(iter(edges[dep]))
    return found


def needed_nodes(workflow: Workflow) -> list[str]:
    """Ids of the nodes the output depends on, in an order where every node follows its dependencies.

    Assumes a validated (acyclic) workflow. Unused branches are left out. No recursion: any depth works.
    """
    edges = _edges(workflow)
    sources = [ref.source for ref in map(parse_ref, workflow.outputs())
               if ref is not None and ref.source != INPUT and ref.source in edges]
    needed, stack = set(sources), list(sources)
    while stack:
        for dep in edges[stack.pop()]:
            if dep not in needed:
                needed.add(dep)
                stack.append(dep)
    return _topological({n: edges[n] for n in edges if n in needed})
