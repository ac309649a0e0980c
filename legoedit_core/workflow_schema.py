"""The workflow JSON Schema, generated from brick declarations.

Constrained decoding uses it so that a model can only write tool names and ports that exist. Every string is
bounded by an enum or a pattern (free strings let weak models emit control characters that strict JSON rejects).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from legoedit_core.bricks.spec import BrickSpec, Port
from legoedit_core.types import PortType
from legoedit_core.workflow import INPUT_PORTS

SCHEMA_NODE_ID = r"[a-z][a-z0-9_]{0,23}"
TEXT_LITERAL_PATTERN = r"^[^@\"\\\x00-\x1f][^\"\\\x00-\x1f]{0,119}$"
MAX_NODES = 16


def _ref_pattern(port_type: PortType, specs: Sequence[BrickSpec]) -> str | None:
    """A regex matching every reference that can yield ``port_type``; None when nothing can."""
    ports = sorted({p.name for s in specs for p in s.outputs if p.type is port_type})
    alternatives = [f"input\\.{name}" for name, t in INPUT_PORTS.items() if t is port_type]
    if ports:
        alternatives.append(f"{SCHEMA_NODE_ID}\\.({'|'.join(ports)})")
    return f"^@({'|'.join(alternatives)})$" if alternatives else None


def _port_schema(port: Port, specs: Sequence[BrickSpec]) -> dict[str, Any]:
    ref = _ref_pattern(port.type, specs)
    options: list[dict[str, Any]] = [{"type": "string", "pattern": ref}] if ref else []
    if port.type is PortType.TEXT:
        literal = {"enum": list(port.choices)} if port.choices else {"type": "string", "pattern": TEXT_LITERAL_PATTERN}
        options.append(literal)
    elif port.type is PortType.NUMBER:
        number: dict[str, Any] = {"type": "number"}
        if port.minimum is not None:
            number["minimum"] = port.minimum
        if port.maximum is not None:
            number["maximum"] = port.maximum
        options.append(number)
    elif port.type is PortType.BBOX:
        options.append({"type": "array", "items": {"type": "integer", "minimum": 0}, "minItems": 4, "maxItems": 4})
    schema: dict[str, Any] = options[0] if len(options) == 1 else {"anyOf": options}
    if port.description:
        schema = {**schema, "description": port.description}
    return schema


def _node_schema(spec: BrickSpec, specs: Sequence[BrickSpec]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "id": {"type": "string", "pattern": f"^{SCHEMA_NODE_ID}$"},
            "tool": {"const": spec.name},
            "inputs": {
                "type": "object",
                "properties": {p.name: _port_schema(p, specs) for p in spec.inputs},
                "required": [p.name for p in spec.inputs if p.required],
                "additionalProperties": False,
            },
        },
        "required": ["id", "tool", "inputs"],
        "additionalProperties": False,
    }


def workflow_json_schema(specs: Sequence[BrickSpec]) -> dict[str, Any]:
    """The JSON Schema of a workflow that uses only ``specs`` (e.g. ``Toolset.available_specs()``)."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "legoedit workflow",
        "type": "object",
        "properties": {
            "nodes": {
                "type": "array",
                "items": {"anyOf": [_node_schema(s, specs) for s in specs]},
                "minItems": 1,
                "maxItems": MAX_NODES,
            },
            "output": {"type": "string", "pattern": _ref_pattern(PortType.IMAGE, specs)},
        },
        "required": ["nodes", "output"],
        "additionalProperties": False,
    }
