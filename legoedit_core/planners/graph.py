"""A workflow under construction by the rules planner: nodes, the choices made to build them, and the choosers
that make those choices (preferred, sampled, the alternative of a re-plan)."""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from legoedit_core.bricks.toolset import Toolset
from legoedit_core.settings.planner import RulesSettings

T = TypeVar("T")


class NotCovered(ValueError):
    """The instruction (or a clause of it) is outside what the rules planner handles."""


class Declined(NotCovered):
    """A clause is understood, but this profile cannot do it honestly (a thing no finder here can see, a change no
    brick here makes). The whole request is declined: a substitute would edit the wrong thing."""


class Chooser(Protocol):
    """Picks one alternative of a planning decision; ``options`` come in order of preference (at least two)."""

    def choose(self, key: str, options: Sequence[T]) -> T: ...


class Preferred:
    """The deterministic chooser: always the preferred (first) alternative."""

    def choose(self, key: str, options: Sequence[T]) -> T:
        return options[0]


class Sampled:
    """A seeded chooser for sampling plans (rollouts). Every option is a valid alternative, so at temperature 1 (and
    above) they are equally likely; below 1 option ``i`` (0 = preferred) has weight ``(i + 1) ** -(1/t - 1)``, which
    favours the preferred one more the lower the temperature (2:1 over the second at 0.5). The same seed gives the
    same choices."""

    def __init__(self, seed: int, temperature: float) -> None:
        if temperature <= 0:
            raise ValueError(f"sampling needs a temperature above 0, got {temperature}")
        self.random = random.Random(seed)
        self.temperature = temperature

    def choose(self, key: str, options: Sequence[T]) -> T:
        sharpness = max(0.0, 1.0 / self.temperature - 1.0)
        weights = [(index + 1) ** -sharpness for index in range(len(options))]
        return self.random.choices(list(options), weights)[0]


class Alternative:
    """The chooser of a re-plan after ``rank`` rejected edits: the options from the last one backwards (the last is
    mostly the stronger setting: a larger adjustment, blur radius or text, the other eraser), so each verify round
    tries a different plan instead of the one just rejected."""

    def __init__(self, rank: int) -> None:
        self.rank = rank

    def choose(self, key: str, options: Sequence[T]) -> T:
        return options[(len(options) - self.rank) % len(options)]


@dataclass(frozen=True)
class Choice:
    """One decision the planner made: what it was about, the alternatives it had, and the one it took."""

    key: str
    options: tuple[Any, ...]
    picked: Any


def why_not(toolset: Toolset, tool: str) -> str | None:
    """Why ``tool`` cannot run with ``toolset`` (not registered, or no usable backend), or None if it can."""
    if toolset.spec(tool) is None:
        return f"{tool} is not a registered brick"
    return toolset.unavailable(tool)


@dataclass
class Graph:
    """A workflow under construction: nodes with readable, unique ids, and the choices made to build them."""

    toolset: Toolset
    has_mask: bool
    size: tuple[int, int]
    settings: RulesSettings = field(default_factory=RulesSettings)
    chooser: Chooser = field(default_factory=Preferred)
    nodes: list[dict[str, Any]] = field(default_factory=list)
    choices: list[Choice] = field(default_factory=list)
    output: str = ""
    strength: float = 1.0  # the clause being planned: "a bit" 0.35, "a lot" 1.8

    def scaled(self, key: str, options: Sequence[float], neutral: float = 0.0) -> float:
        """A parameter chosen from ``options``, its distance from ``neutral`` scaled by the clause's strength."""
        value = self.choose(key, options)
        return round(neutral + (value - neutral) * self.strength, 3)

    @property
    def profile(self) -> str:
        return self.toolset.config.profile

    def add(self, tool: str, name: str, **inputs: Any) -> str:
        """Add a node and return its id (``name``, ``name_2``, ...)."""
        taken = {n["id"] for n in self.nodes}
        node_id = name if name not in taken else next(f"{name}_{i}" for i in range(2, 99) if f"{name}_{i}" not in taken)
        self.nodes.append({"id": node_id, "tool": tool, "inputs": inputs})
        return node_id

    def reuse(self, tool: str, name: str, **inputs: Any) -> str:
        """The id of a node with this tool and these inputs (a finder asked twice for one thing), else a new one."""
        same = next((n["id"] for n in self.nodes if n["tool"] == tool and n["inputs"] == inputs), None)
        return same if same is not None else self.add(tool, name, **inputs)

    def inverse(self, mask: str, name: str) -> str:
        """The mask of everything outside ``mask``: an INVERSE node, or, when ``mask`` is itself an inverse, the
        mask it was taken of (everything except the background is the subject)."""
        inverted = next((n for n in self.nodes if n["tool"] == "INVERSE" and mask == f"@{n['id']}.mask"), None)
        return inverted["inputs"]["mask"] if inverted is not None else f"@{self.add('INVERSE', name, mask=mask)}.mask"

    def prune(self) -> None:
        """Drop the nodes that nothing leading to the output uses (a mask replaced by a simpler one)."""
        needed, wanted = set(), [self.output]
        while wanted:
            ref = wanted.pop()
            node = next((n for n in self.nodes if ref.startswith(f"@{n['id']}.")), None)
            if node is not None and node["id"] not in needed:
                needed.add(node["id"])
                wanted += [v for v in node["inputs"].values() if isinstance(v, str) and v.startswith("@")]
        self.nodes = [n for n in self.nodes if n["id"] in needed]

    def note(self, node_id: str, text: str) -> None:
        """Attach a note to a node: it travels with the workflow into the node's trace."""
        next(n for n in self.nodes if n["id"] == node_id)["note"] = text

    def choose(self, key: str, options: Sequence[T]) -> T:
        """One of ``options`` (in order of preference), picked by the chooser and recorded."""
        if not options:
            raise ValueError(f"no alternatives for {key}")
        picked = options[0] if len(options) == 1 else self.chooser.choose(key, options)
        self.choices.append(Choice(key, tuple(options), picked))
        return picked

    def runnable(self, *tools: str) -> list[str]:
        """Those of ``tools`` that can run here (all of them when none can: validation then says why)."""
        return [t for t in tools if self.can_run(t)] or list(tools)

    def can_run(self, tool: str) -> bool:
        return why_not(self.toolset, tool) is None

    def understands(self, tool: str, prompt: str) -> bool:
        """Whether ``tool``'s backend here can act on ``prompt`` (what the brick declares); a brick that cannot
        run here at all is left to the planner's missing-brick check, which names it."""
        return not self.can_run(tool) or self.toolset.backend_class(tool).understands(prompt)

    def needs(self, tool: str) -> str:
        """What ``tool``'s backend here works with, in its own words."""
        return self.toolset.backend(tool).describe_needs() or "a fixed vocabulary"

    def erase(self, image: str, mask: str) -> str:
        tool = self.choose("eraser", self.runnable("INPAINT", "FASTINPAINT"))
        return f"@{self.add(tool, 'erase', image=image, mask=mask)}.image"


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")[:16] or "x"
