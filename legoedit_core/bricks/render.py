"""Renderings of the brick catalogue, all from the declarations alone: prompt text and a CLI table."""

from __future__ import annotations

from collections.abc import Sequence

from legoedit_core.bricks.spec import BrickSpec
from legoedit_core.bricks.toolset import Toolset


def signature(spec: BrickSpec) -> str:
    """``RES(image: Image, prompt: Text) -> mask: Mask``."""
    inputs = ", ".join(p.summary() for p in spec.inputs)
    outputs = ", ".join(f"{p.name}: {p.type.value}" for p in spec.outputs)
    return f"{spec.name}({inputs}) -> {outputs}"


def catalog_text(specs: Sequence[BrickSpec]) -> str:
    """The tool catalogue as the Builder reads it: signature, description and constraints of each tool."""
    blocks = []
    for spec in specs:
        lines = [f"- {signature(spec)}", f"  {spec.description}"]
        lines += [f"  Rule: {rule}" for rule in spec.constraints]
        blocks.append("\n".join(lines))
    return "\n".join(blocks)


def catalog_table(toolset: Toolset) -> str:
    """A plain-text table of every brick with its ports and the backend the active profile chose (or why none)."""
    rows = [("BRICK", "FAMILY", "INPUTS", "OUTPUTS", f"BACKEND ({toolset.config.profile} profile)")]
    for brick in toolset.registry:
        spec = brick.spec
        reason = toolset.unavailable(spec.name)
        if reason:
            backend = f"unavailable: {reason}"
        else:
            chosen = toolset.backend(spec.name)
            needs = chosen.describe_needs()
            backend = f"{chosen.name} [{chosen.resource}]" + (f" {needs}" if needs else "")
            backend += "".join(f"; instead of {reason}" for reason in toolset.passed_over(spec.name))
        rows.append((
            spec.name,
            spec.family,
            ", ".join(p.summary() for p in spec.inputs),
            ", ".join(f"{p.name}: {p.type.value}" for p in spec.outputs),
            backend,
        ))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    return "\n".join(
        "  ".join(cell.ljust(widths[i]) if i < 4 else cell for i, cell in enumerate(row)) for row in rows
    )
