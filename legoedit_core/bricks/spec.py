"""Declarations: what a brick takes and gives (``BrickSpec``) and how it runs (``Backend``).

A brick is declared once. The Builder's tool catalogue, the workflow JSON Schema, the CLI listing and the docs
are all rendered from these declarations, so a declaration is the single source of truth about a tool.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from legoedit_core.faults import is_fault
from legoedit_core.types import PortType

Family = Literal["predict", "edit", "function"]
Resource = Literal["cpu", "gpu"]


class Port(BaseModel):
    """One typed input or output of a brick."""

    model_config = ConfigDict(frozen=True)

    name: str
    type: PortType
    description: str = ""
    required: bool = True
    default: Any = None
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] | None = None
    nonempty: bool = Field(False, description="a mask that must select something: the executor fails the item when "
                           "such an input is given empty, or such an output comes back empty (a locator that found "
                           "nothing), so no edit runs on nothing")

    def summary(self) -> str:
        """``name: Type`` plus its default, range and choices, as shown to the Builder."""
        text = f"{self.name}: {self.type.value}"
        if not self.required:
            text += f" = {self.default!r}" if self.default is not None else " (optional)"
        if self.minimum is not None or self.maximum is not None:
            text += f" in {self.range_text()}"
        if self.choices:
            text += " one of " + "|".join(self.choices)
        return text

    def range_text(self) -> str:
        """``[min, max]`` of a Number port, with an open side shown as -inf / inf."""
        low = "-inf" if self.minimum is None else f"{self.minimum:g}"
        high = "inf" if self.maximum is None else f"{self.maximum:g}"
        return f"[{low}, {high}]"

def image(name: str = "image", description: str = "", required: bool = True) -> Port:
    return Port(name=name, type=PortType.IMAGE, description=description, required=required)


def mask(name: str = "mask", description: str = "", required: bool = True, nonempty: bool = False) -> Port:
    return Port(name=name, type=PortType.MASK, description=description, required=required, nonempty=nonempty)


def text(name: str = "prompt", description: str = "", required: bool = True, default: str | None = None,
         choices: tuple[str, ...] | None = None) -> Port:
    return Port(name=name, type=PortType.TEXT, description=description, required=required and default is None,
                default=default, choices=choices)


def number(name: str, description: str = "", default: float | None = None, minimum: float | None = None,
           maximum: float | None = None) -> Port:
    return Port(name=name, type=PortType.NUMBER, description=description, required=default is None, default=default,
                minimum=minimum, maximum=maximum)


def bbox(name: str = "bbox", description: str = "", required: bool = True) -> Port:
    return Port(name=name, type=PortType.BBOX, description=description, required=required)


class BrickSpec(BaseModel):
    """The declaration of a tool: typed ports and what it does. What it needs to run (cpu or gpu) and how it
    batches belong to each of its backends, which is what routing and the executor read."""

    model_config = ConfigDict(frozen=True)

    name: str = Field(pattern=r"^[A-Z][A-Z0-9_-]*$")
    family: Family
    description: str
    inputs: tuple[Port, ...]
    outputs: tuple[Port, ...]
    constraints: tuple[str, ...] = ()
    version: str = "1"

    def input(self, name: str) -> Port | None:
        return next((p for p in self.inputs if p.name == name), None)

    def output(self, name: str) -> Port | None:
        return next((p for p in self.outputs if p.name == name), None)


class BrickError(Exception):
    """A brick could not produce a result for one item; the message says why in plain words."""


def item_error(error: Exception) -> BrickError:
    """An item's error that is not a ``BrickError`` (a library refused this item's inputs), as its ``BrickError``."""
    return BrickError(f"{type(error).__name__}: {error}")


class Backend(ABC):
    """One way to run a brick. Subclasses declare ``brick``, ``name``, ``resource`` and implement ``run_batch``.

    A backend is constructed with its settings (a dict from the config: model id, steps, ...). It must not load
    anything heavy in ``__init__``; models load lazily on the first call, through the model runtime
    (``legoedit_core.runtime``).
    """

    brick: ClassVar[str]
    name: ClassVar[str]
    resource: ClassVar[Resource] = "cpu"
    version: ClassVar[str] = "1"
    # the settings keys it reads (a config key no backend of the brick knows is refused as a typo)
    setting_keys: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def known_settings(cls) -> frozenset[str]:
        """Every settings key this backend reads."""
        return cls.setting_keys

    def __init__(self, settings: dict[str, Any] | None = None) -> None:
        self.settings: dict[str, Any] = dict(settings or {})

    @classmethod
    def missing(cls, settings: dict[str, Any]) -> str | None:
        """Why this backend cannot run with these settings (a missing package or model), or None if it can."""
        return None

    @classmethod
    def understands(cls, prompt: str) -> bool:
        """Whether this backend can act on a text prompt (a backend with a limited vocabulary says no)."""
        return True

    def describe_needs(self) -> str:
        """What the backend needs to run, for the CLI listing (e.g. the model id it loads)."""
        return ""

    def model_group(self) -> tuple[str, ...]:
        """The base model this backend's calls hold and the adapters they activate (empty: no model). The
        executor orders a wave's groups by it, so a base switches adapters once per group, never per item."""
        return ()

    @abstractmethod
    def run_batch(self, inputs: list[dict[str, Any]], seeds: list[int]) -> list[dict[str, Any] | BrickError]:
        """Run the brick on many items at once: one output dict (or a BrickError) per input dict, in order.

        ``inputs`` carry every declared input port, with defaults filled in and values already type-checked.
        """


class PerItemBackend(Backend):
    """A backend that handles items one at a time: implement ``run_one``; errors stay with their item, except
    faults of the machinery (``legoedit_core.faults.is_fault``), which raise."""

    def run_batch(self, inputs: list[dict[str, Any]], seeds: list[int]) -> list[dict[str, Any] | BrickError]:
        results: list[dict[str, Any] | BrickError] = []
        for item_inputs, seed in zip(inputs, seeds, strict=True):
            try:
                results.append(self.run_one(item_inputs, seed))
            except BrickError as error:
                results.append(error)
            except Exception as error:  # a library error on this item's inputs must not sink the batch
                if is_fault(error):
                    raise
                results.append(item_error(error))
        return results

    @abstractmethod
    def run_one(self, inputs: dict[str, Any], seed: int) -> dict[str, Any]:
        """Run on one item; raise BrickError for a per-item failure the user should read."""
