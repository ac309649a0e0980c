"""The ``rules`` planner: an offline Builder for the common instruction families, with no model at all.

It reads an instruction clause by clause ("remove the dog and then make the sky orange"), matches each clause
against a list of families (background, style, recolour, black and white, remove, swap, blur, crop, brightness /
contrast / saturation, sharpen, flip, rotate, resize, add, weather / time of day) and chains the bricks each one
needs. It only plans with bricks that the active toolset can run, and says plainly when an instruction is outside
what it covers or needs a brick that is not available. It also writes the synthetic expert traces (instruction,
reasoning, workflow) used for supervised fine-tuning of a model Builder.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol, TypeVar

from legoedit_core.bricks.cpu.colors import FILLER as COLOUR_FILLER
from legoedit_core.bricks.cpu.colors import parse_color
from legoedit_core.bricks.toolset import Toolset
from legoedit_core.planners.base import PlanAttempt, PlanRequest, PlanResult
from legoedit_core.planners.constraints import parse_feedback
from legoedit_core.planners.embeddings import Embeddings
from legoedit_core.planners.exemplars import ExemplarRanker
from legoedit_core.planners.reading import Impossible, Reading, is_chatter, normalise, read_clause
from legoedit_core.planners.replan import CRITIQUE
from legoedit_core.settings.planner import RulesSettings
from legoedit_core.workflow import Workflow, parse_workflow, validate

WHOLE = {"it", "this", "the image", "image", "the photo", "photo", "the picture", "picture", "everything",
         "the whole image", "the whole photo", "the scene", "the shot", "the whole thing"}
SUBJECT = {"subject", "the subject", "foreground", "the foreground", "main object", "the main object", "product",
           "the product"}
USER_REGION = {"this", "it", "marked object", "selected object", "selection", "selected area", "selected region",
               "marked area", "marked region", "masked area", "masked region", "region"}  # after _clean
TEXT_WORDS = {"text", "writing", "words", "watermark", "caption", "captions", "letters", "lettering", "subtitles"}
_LEADING = re.compile(r"^(?:all (?:of )?|every |the |a |an |her |his |their |its |my |your |our |that |these |those "
                      r"|possibly |also )+")
_TRAILING = re.compile(r"\s+(?:from|in|on|of) (?:the |this )?(?:image|photo|picture|shot|scene)$")

STYLES: dict[str, str] = {
    "pencil": "pencil sketch", "sketch": "pencil sketch", "drawing": "pencil sketch", "cartoon": "cartoon",
    "anime": "cartoon", "comic": "cartoon", "watercolor": "watercolor", "watercolour": "watercolor",
    "oil painting": "oil painting", "oil-painting": "oil painting", "stylize": "stylize", "stylise": "stylize",
    "painting": "oil painting", "sepia": "sepia", "vintage": "vintage", "retro": "vintage",
}
ENVIRONMENTS = ("snowy", "snow", "winter", "rainy", "rain", "night", "nighttime", "sunset", "sunrise", "dawn", "dusk",
                "autumn", "fall", "summer", "spring", "foggy", "fog", "golden hour", "daytime", "stormy")
_UP = r"(?:increase|raise|boost|bump up|turn up|crank up|push|more|higher|add(?: more)?|up) (?:the |some )?"
_DOWN = r"(?:decrease|reduce|lower|tone down|turn down|less|cut|drop) (?:the |some )?"
ADJUSTMENTS: list[tuple[str, str, float]] = [
    (rf"\b(?:brighten|brighter|lighten|lighter|more light|too dark|{_UP}(?:brightness|exposure))\b", "brightness",
     1.3),
    (rf"\b(?:darken|darker|dimmer|too bright|{_DOWN}(?:brightness|exposure))\b", "brightness", 0.75),
    (rf"\b(?:higher contrast|punchier|{_UP}contrast)\b", "contrast", 1.3),
    (rf"\b(?:lower contrast|softer|{_DOWN}contrast)\b", "contrast", 0.75),
    (rf"\b(?:more vivid|vivid|vibrant|more saturated|saturate|more colou?rful|{_UP}(?:saturation|vibrance|"
     rf"colou?rs?))\b", "saturation", 1.4),
    (rf"\b(?:less saturated|desaturate|muted|washed out|less colou?rful|{_DOWN}(?:saturation|vibrance))\b",
     "saturation", 0.6),
    (rf"\b(?:warmer|warm (?:it )?up|warm(?:er)? (?:tones?|colou?rs?|light|look)|less cold|{_UP}warmth)\b",
     "temperature", 0.4),
    (rf"\b(?:cooler|colder|cool (?:it )?down|cool(?:er)? (?:tones?|colou?rs?|light|look)|less warm|{_DOWN}"
     rf"warmth)\b", "temperature", -0.4),
]
NEUTRAL = {"temperature": 0.0}  # an adjustment's "no change" value; 1 for the factors


class NotCovered(ValueError):
    """The instruction (or a clause of it) is outside what the rules planner handles."""


class Declined(NotCovered):
    """The clause is understood, but this profile cannot do it honestly (a subject it cannot locate, a prompt no
    backend here can render). No other family is tried: a substitute would edit the wrong thing."""


T = TypeVar("T")


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
    instruction: str = ""  # as written: clauses are lower-cased, quoted words keep their case from here
    reading: Reading = field(default_factory=lambda: Reading(""))  # the clause being planned: strength, slots

    def scaled(self, key: str, options: Sequence[float], neutral: float = 0.0) -> float:
        """A parameter chosen from ``options``, its distance from ``neutral`` scaled by the clause's strength words
        ("a bit" less, "much" more)."""
        value = self.choose(key, options)
        return round(neutral + (value - neutral) * self.reading.strength, 3)

    @property
    def profile(self) -> str:
        return self.toolset.config.profile

    def add(self, tool: str, name: str, **inputs: Any) -> str:
        """Add a node and return its id (``name``, ``name_2``, ...).

        Raises Declined when the brick's backend here cannot act on the node's literal ``prompt``.
        """
        prompt = inputs.get("prompt")
        if isinstance(prompt, str) and not prompt.startswith("@") and not self.understands(tool, prompt):
            backend = self.toolset.backend(tool)
            raise Declined(f"{tool} cannot do {prompt!r} on the {self.profile} profile: its {backend.name} backend "
                           f"uses {backend.describe_needs() or 'a fixed vocabulary'}")
        taken = {n["id"] for n in self.nodes}
        node_id = name if name not in taken else next(f"{name}_{i}" for i in range(2, 99) if f"{name}_{i}" not in taken)
        self.nodes.append({"id": node_id, "tool": tool, "inputs": inputs})
        return node_id

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
        """Whether ``tool``'s backend here can act on ``prompt`` (a missing brick is validation's business)."""
        return not self.can_run(tool) or self.toolset.backend_class(tool).understands(prompt)

    def region(self, target: str, image: str) -> tuple[str, str]:
        """(mask reference, plain words) selecting ``target``: the user's mask, SOS, RES, or a UNION of RES."""
        if self.has_mask and target in USER_REGION:
            return "@input.mask", "the region the user marked"
        if target in SUBJECT:
            return f"@{self.add('SOS', 'subject', image=image)}.mask", "SOS finds the main subject"
        parts = [p for p in re.split(r"\s*(?:,|\band\b|&)\s*", target) if p]
        parts = [_clean(p) for p in parts] or [target]
        found = [self.locate(part, image, alone=len(parts) == 1) for part in parts]
        mask = found[0][0]
        for other, _ in found[1:]:
            mask = f"@{self.add('UNION', 'both', mask=mask, other=other)}.mask"
        return mask, "; ".join(words for _, words in found)

    def locate(self, part: str, image: str, alone: bool = True) -> tuple[str, str]:
        """(mask reference, plain words) for one named thing: RES when it can find it here, else the salient
        object if the settings allow that approximation (for a single subject), else Declined."""
        prompt = _res_prompt(part)
        options = ["RES"] if self.understands("RES", prompt) else []
        if alone and self.settings.salient_as_named_subject and self.can_run("SOS"):
            options.append("SOS")
        if not options:
            raise Declined(self.cannot_locate(part))
        if self.choose(f"locate {part}", options) == "RES":
            return f"@{self.add('RES', 'seg_' + _slug(part), image=image, prompt=prompt)}.mask", f"RES finds {part}"
        node = self.add("SOS", "subject", image=image)
        approximation = (f"approximation: the salient object stands in for {part!r}, which RES cannot find on the "
                         f"{self.profile} profile (planner.rules.salient_as_named_subject)")
        self.note(node, approximation)
        return f"@{node}.mask", f"RES cannot find {part} on the {self.profile} profile, so as configured the " \
                                "salient object (SOS) stands in for it"

    def cannot_locate(self, part: str) -> str:
        """Why ``part`` cannot be located here, naming the subject and the profile, and what would help."""
        backend = self.toolset.backend("RES")
        text = (f"cannot locate {part!r} on the {self.profile} profile: its RES backend ({backend.name}) uses "
                f"{backend.describe_needs() or 'a fixed vocabulary'}")
        if self.can_run("SOS"):
            text += ("; set planner.rules.salient_as_named_subject = true to edit the salient object instead "
                     "(for photos with one object each)")
        return text

    def erase(self, image: str, mask: str) -> str:
        tool = self.choose("eraser", self.runnable("INPAINT", "FASTINPAINT"))
        return f"@{self.add(tool, 'erase', image=image, mask=mask)}.image"


class Groups:
    """A match whose alternative groups (``target2``, ``old2``, ``action2`` ...) stand in for the main ones."""

    def __init__(self, match: re.Match[str]) -> None:
        self._match = match
        self.string = match.string

    def group(self, name: str) -> str | None:
        groups = self._match.groupdict()
        value = groups.get(name)
        return value if value is not None else groups.get(f"{name}2")


def why_not(toolset: Toolset, tool: str) -> str | None:
    """Why ``tool`` cannot run with ``toolset`` (not registered, or no usable backend), or None if it can."""
    if toolset.spec(tool) is None:
        return f"{tool} is not a registered brick"
    return toolset.unavailable(tool)


Rule = Callable[[Groups, Graph, str], tuple[str, str]]  # (match, graph, image ref) -> (image ref, reasoning)


def _clean(target: str) -> str:
    target = _TRAILING.sub("", target.strip(" .!,"))
    return _LEADING.sub("", target).strip() or target


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")[:16] or "x"


def _res_prompt(target: str) -> str:
    return "text" if target in TEXT_WORDS else target


def _whole(target: str) -> bool:
    return _clean(target) in WHOLE or target.strip() in WHOLE


# ------------------------------------------------------------------------------------------------------ families


def _background(match: Groups, graph: Graph, image: str) -> tuple[str, str]:
    action = match.group("action")
    if action in ("blur", "blurry", "blurred", "out of focus", "defocus", "bokeh"):
        prompt, goal = "blur", "blurred"
    elif action in ("remove", "delete", "erase", "get rid of", "cut out"):
        prompt, goal = "white", "removed (plain white)"
    else:
        prompt = _clean(match.group("what") or "")
        if not prompt:
            raise NotCovered("say what the new background should be, e.g. 'change the background to blue'")
        goal = prompt
    subject = graph.add("SOS", "subject", image=image)
    node = graph.add("CBG", "background", image=image, mask=f"@{subject}.mask", prompt=prompt)
    return f"@{node}.image", f"The background is to be {goal}. SOS keeps the subject; CBG replaces what is behind it."


def _style(match: Groups, graph: Graph, image: str) -> tuple[str, str]:
    style = STYLES[match.group("style")]
    target = match.group("target")
    if target and not _whole(target):
        mask, found = graph.region(_clean(target), image)
        node = graph.add("STYLE", "style", image=image, prompt=style, mask=mask)
        return f"@{node}.image", f"Only {_clean(target)} gets a {style} look: {found}, STYLE renders that region."
    node = graph.add("STYLE", "style", image=image, prompt=style)
    return f"@{node}.image", f"The whole image gets a {style} look: STYLE renders it."


def _grayscale(match: Groups, graph: Graph, image: str) -> tuple[str, str]:
    target = match.group("target")
    inputs: dict[str, Any] = {}
    if target and not _whole(target):
        inputs["mask"], found = graph.region(_clean(target), image)
    if graph.choose("greyscale tool", graph.runnable("GRAYSCALE", "ADJUST")) == "ADJUST":
        node, tool = graph.add("ADJUST", "gray", image=image, saturation=0.0, **inputs), "ADJUST with saturation 0"
    else:
        node, tool = graph.add("GRAYSCALE", "gray", image=image, **inputs), "GRAYSCALE"
    if inputs:
        return f"@{node}.image", f"Only {_clean(target)} loses its colour: {found}, {tool} greys that region."
    return f"@{node}.image", f"The whole image becomes black and white: {tool}."


def _recolour(match: Groups, graph: Graph, image: str) -> tuple[str, str]:
    words = match.group("rest").split()
    for split in range(1, len(words)):
        target = " ".join(words[:split])
        colour = re.sub(r"^(?:to|into|in|a|an)\s+", "", " ".join(words[split:]))
        colour = colour.split(" or ")[0].strip()
        if parse_color(colour) is None or _whole(target) or target in _DETERMINERS:
            continue
        target = re.sub(r"^the colou?r of\s+", "", target)
        target = re.sub(r"\s+(?:to|into|in)$", "", target)
        mask, found = graph.region(_clean(target), image)
        colour = graph.choose("colour shade", _shades(colour))
        node = graph.add("RCM", "recolor", image=image, mask=mask, prompt=colour)
        return f"@{node}.image", f"{_clean(target).capitalize()} should become {colour}: {found}, RCM recolours it."
    raise NotCovered("no colour named")  # not a recolouring after all: let the next family try


def _shades(colour: str) -> list[str]:
    """The colour as named, then its light and dark shades when it is a plain colour name ("blue", not "navy")."""
    if " " in colour or colour not in _PLAIN_COLOURS:
        return [colour]
    return [colour, f"light {colour}", f"dark {colour}"]


_DETERMINERS = frozenset({"the", "a", "an", "her", "his", "their", "its", "my", "your", "our", "this", "that"})
_PLAIN_COLOURS = frozenset({"red", "orange", "yellow", "green", "blue", "purple", "pink", "brown", "grey", "gray"})


def _remove(match: Groups, graph: Graph, image: str) -> tuple[str, str]:
    target = _clean(match.group("target"))
    if _whole(target) and not (graph.has_mask and target in USER_REGION):
        raise NotCovered("say what to remove, e.g. 'remove the dog'")
    mask, found = graph.region(target, image)
    result = graph.erase(image, mask)
    return result, f"{target.capitalize()} should disappear: {found}, {graph.nodes[-1]['tool']} fills it in."


def _swap(match: Groups, graph: Graph, image: str) -> tuple[str, str]:
    old, new = _clean(match.group("old")), _clean(match.group("new"))
    mask, found = graph.region(old, image)
    erased = graph.erase(image, mask)
    node = graph.add("FILL", "fill", image=erased, mask=mask, prompt=new)
    return f"@{node}.image", f"{old.capitalize()} becomes {new}: {found}, the old one is removed, FILL paints {new}."


def _blur(match: Groups, graph: Graph, image: str) -> tuple[str, str]:
    target = match.group("target")
    if target is None or _whole(target):
        node = graph.add("BLUR", "blur", image=image, radius=graph.scaled("blur radius", [6, 4, 10]))
        return f"@{node}.image", "The whole image should be softer: BLUR."
    mask, found = graph.region(_clean(target), image)
    node = graph.add("BLUR", "blur", image=image, radius=graph.choose("region blur radius", [12, 8, 20]), mask=mask)
    return f"@{node}.image", f"{_clean(target).capitalize()} should be blurred: {found}, BLUR hides that region."


def _crop(match: Groups, graph: Graph, image: str) -> tuple[str, str]:
    target = _clean(match.group("target"))
    mask, found = graph.region(target, image)
    box = graph.add("BBOX", "box", mask=mask)
    node = graph.add("CROP", "crop", image=image, bbox=f"@{box}.bbox")
    return f"@{node}.image", f"Keep only {target}: {found}, BBOX boxes it, CROP cuts the image to the box."


def _adjust(match: Groups, graph: Graph, image: str) -> tuple[str, str]:
    clause = match.string
    factors = {name: value for pattern, name, value in ADJUSTMENTS if re.search(pattern, clause)}
    strength = graph.reading.strength * graph.choose("adjust strength", [1.0, 0.6, 1.5])
    factors = {name: round(NEUTRAL.get(name, 1.0) + (value - NEUTRAL.get(name, 1.0)) * strength, 2)
               for name, value in factors.items()}
    target = re.match(r"^(?:brighten|darken|lighten)\s+(?P<t>.+?)(?:\s+(?:up|down|out))?$", clause)
    inputs: dict[str, Any] = dict(factors)
    where = "the whole image"
    if target and not _whole(target.group("t")):
        inputs["mask"], found = graph.region(_clean(target.group("t")), image)
        where = f"{_clean(target.group('t'))} ({found})"
    node = graph.add("ADJUST", "adjust", image=image, **inputs)
    changes = ", ".join(f"{name} {value:+g}" if name in NEUTRAL else f"{name} x{value:g}"
                        for name, value in factors.items())
    return f"@{node}.image", f"A tonal change of {where}: ADJUST with {changes}."


def _text(match: Groups, graph: Graph, image: str) -> tuple[str, str]:
    words = match.group("words").strip()
    quoted = re.fullmatch(r"[\"'“‘](.+)[\"'”’]", words)
    words = quoted.group(1) if quoted else words
    original = re.search(re.escape(words), graph.instruction, re.IGNORECASE)  # clauses are lower-cased
    words = original.group(0) if original else words
    if match.group("noun") is None and not quoted and not words.isupper():
        # "write a poem" is not a text overlay; "write SALE" and "add 'Fresh'" are
        raise NotCovered("not a text overlay: name the words, text or caption, or quote what to write")
    slots = graph.reading.slots
    where = (match.group("where") or "bottom").replace("-", " ")
    position = slots.get("position") or (TEXT_PLACES[where] if match.group("where") or "opacity" not in slots
                                         else "center")  # a watermark with no place goes in the middle
    size = float(slots["size"]) if "size" in slots else graph.choose("text size", [0.1, 0.08, 0.14])
    opacity = float(slots.get("opacity", 1.0))
    node = graph.add("TEXT", "text", image=image, prompt=words, position=position, size=size, opacity=opacity)
    how = " tiled over the image" if position == "tiled" else f" at the {position.replace('-', ' ')}"
    seen = f", {opacity:.0%} opaque" if opacity < 1 else ""
    return f"@{node}.image", f"The words {words!r} go{how}{seen}: TEXT draws them."


def _crop_shape(match: Groups, graph: Graph, image: str) -> tuple[str, str]:
    width, height = graph.size
    if match.group("ratio") == "center":
        aspect, keep = width / height, 0.7  # "the centre": the middle 70% of each side
    else:
        w, h = (int(n) for n in match.group("ratio").split(":"))
        if w <= 0 or h <= 0:
            raise NotCovered(f"{match.group('ratio')!r} is not an aspect ratio")
        aspect, keep = w / h, 1.0
    crop_w, crop_h = (width * keep, width * keep / aspect) if width / aspect <= height else (height * keep * aspect,
                                                                                            height * keep)
    crop_w, crop_h = round(min(crop_w, width)), round(min(crop_h, height))
    x0, y0 = (width - crop_w) // 2, (height - crop_h) // 2
    node = graph.add("CROP", "crop", image=image, bbox=[x0, y0, x0 + crop_w, y0 + crop_h])
    what = "the centre" if match.group("ratio") == "center" else f"a {match.group('ratio')} frame"
    return f"@{node}.image", f"Crop to {what} around the middle ({crop_w}x{crop_h}): CROP."


def _skin(match: Groups, graph: Graph, image: str) -> tuple[str, str]:
    mask, found = graph.locate("skin", image)
    node = graph.add("SMOOTH", "smooth", image=image, mask=mask, strength=graph.choose("skin smoothing",
                                                                                      [0.5, 0.35, 0.7]))
    return f"@{node}.image", f"Smoother skin: {found}, SMOOTH evens it out while keeping edges."


def _denoise(match: Groups, graph: Graph, image: str) -> tuple[str, str]:
    node = graph.add("SMOOTH", "denoise", image=image,
                     strength=min(1.0, graph.scaled("denoise strength", [0.4, 0.25, 0.6])))
    return f"@{node}.image", "Less noise and grain: SMOOTH, which keeps edges."


def _canvas(match: Groups, graph: Graph, image: str) -> tuple[str, str]:
    clause = match.string
    square = "square" in clause
    border = graph.choose("border width", [0.05, 0.03, 0.08]) if re.search(BORDER_WORDS, clause) else 0.0
    colour = colour_in(re.sub(r"\b(?:square|border|frame|margin|padding|canvas)\b", " ", clause)) or "white"
    node = graph.add("PAD", "pad", image=image, border=border, shape="square" if square else "same", color=colour)
    what = " and ".join(part for part, wanted in (("a square canvas", square), ("a border", border)) if wanted)
    return f"@{node}.image", f"{what.capitalize()} in {colour}, nothing cut: PAD extends the canvas."


def colour_in(text: str) -> str | None:
    """The longest run of words in ``text`` that names a colour ("a thin navy blue border" -> "navy blue")."""
    words = text.split()
    spans = [" ".join(words[i:j]) for i in range(len(words)) for j in range(i + 1, len(words) + 1)]
    named = [span for span in spans if parse_color(span) is not None
             and span.split()[0] not in COLOUR_FILLER and span.split()[-1] not in COLOUR_FILLER]
    return max(named, key=lambda span: len(span.split()), default=None)


def _sharpen(match: Groups, graph: Graph, image: str) -> tuple[str, str]:
    amount = graph.scaled("sharpen amount", [1.0, 0.6, 1.5])
    target = re.match(r"^sharpen\s+(?P<t>.+?)(?:\s+up)?$", match.string)
    if target and not _whole(target.group("t")) and _clean(target.group("t")) not in _WHOLE_DETAIL:
        mask, found = graph.region(_clean(target.group("t")), image)
        node = graph.add("SHARPEN", "sharpen", image=image, amount=amount, mask=mask)
        return f"@{node}.image", f"Crisper {_clean(target.group('t'))}: {found}, SHARPEN inside it."
    node = graph.add("SHARPEN", "sharpen", image=image, amount=amount)
    return f"@{node}.image", "Crisper detail: SHARPEN."


_WHOLE_DETAIL = frozenset({"details", "detail", "edges", "it up", "the details", "focus", "everything", "image",
                           "photo", "picture", "textures", "texture"})


def _flip(match: Groups, graph: Graph, image: str) -> tuple[str, str]:
    direction = "vertical" if re.search(r"vertical|upside down|top to bottom", match.string) else "horizontal"
    node = graph.add("FLIP", "flip", image=image, direction=direction)
    return f"@{node}.image", f"A mirror image: FLIP {direction}ly."


def _rotate(match: Groups, graph: Graph, image: str) -> tuple[str, str]:
    clause = match.string
    number = re.search(r"(-?\d+(?:\.\d+)?)", clause)
    angle = 180.0 if "upside down" in clause else float(number.group(1)) if number else 90.0
    counter = re.search(r"counter[- ]?clockwise|anti[- ]?clockwise|\bleft\b", clause)
    angle = angle if counter else -angle  # ROTATE turns counter-clockwise; people mostly mean clockwise
    node = graph.add("ROTATE", "rotate", image=image, angle=angle)
    return f"@{node}.image", f"Rotation by {abs(angle):g} degrees {'counter-' if counter else ''}clockwise: ROTATE."


def _resize(match: Groups, graph: Graph, image: str) -> tuple[str, str]:
    clause, (width, height) = match.string, graph.size
    inputs: dict[str, float]
    if both := re.search(r"(\d+)\s*[x×*]\s*(\d+)", clause):
        inputs = {"width": float(both.group(1)), "height": float(both.group(2))}
    elif percent := re.search(r"(\d+(?:\.\d+)?)\s*%(?:\s*(?P<way>smaller|bigger|larger))?", clause):
        share = float(percent.group(1))
        share = {"smaller": 100 - share, "bigger": 100 + share, "larger": 100 + share}.get(percent["way"], share)
        inputs = {"width": round(width * share / 100)}
    elif re.search(r"\bhalf\b", clause):
        inputs = {"width": round(width / 2)}
    elif re.search(r"\b(?:double|twice)\b", clause):
        inputs = {"width": width * 2}
    elif side := re.search(r"(\d+)\s*(?:px|pixels)?\s*(?P<side>wide|width|tall|high|height)", clause):
        inputs = {"width" if side.group("side") in ("wide", "width") else "height": float(side.group(1))}
    elif number := re.search(r"(\d+)", clause):
        inputs = {"width": float(number.group(1))} if width >= height else {"height": float(number.group(1))}
    else:
        raise NotCovered("say the new size, e.g. 'resize to 512x512' or 'resize to 50%'")
    node = graph.add("RESIZE", "resize", image=image, **inputs)
    return f"@{node}.image", f"A new size ({', '.join(f'{k} {v:g}' for k, v in inputs.items())}): RESIZE."


def _add(match: Groups, graph: Graph, image: str) -> tuple[str, str]:
    what = _clean(match.group("what"))
    where = graph.add("ADD-PRED", "where", image=image, prompt=match.group("what").strip())
    node = graph.add("FILL", "fill", image=image, mask=f"@{where}.mask", prompt=what)
    return f"@{node}.image", f"Something new, {what}: ADD-PRED finds a place for it, FILL paints it there."


def _environment(match: Groups, graph: Graph, image: str) -> tuple[str, str]:
    condition = match.group("condition")
    node = graph.add("ENV", "env", image=image, prompt=condition)
    return f"@{node}.image", f"The whole scene changes to {condition}: ENV."


TEXT_PLACES = {"top": "top", "bottom": "bottom", "middle": "center", "center": "center", "centre": "center",
               "top left": "top-left", "upper left": "top-left", "top right": "top-right", "upper right": "top-right",
               "bottom left": "bottom-left", "lower left": "bottom-left", "bottom right": "bottom-right",
               "lower right": "bottom-right"}
_PLACE = "|".join(sorted((re.escape(p).replace(r"\ ", "[- ]") for p in TEXT_PLACES), key=len, reverse=True))
_TEXT_NOUNS = r"words?|text|caption|label|title|headline|slogan|tagline|line"
_BORDERS = "border|frame|margin|padding"
BORDER_WORDS = rf"\b(?:{_BORDERS})\b"
_STYLE_WORDS = "|".join(sorted(map(re.escape, STYLES), key=len, reverse=True))
_COLOUR_VERBS = r"make|turn|paint|colou?r|change|recolou?r|dye|set"
FAMILIES: list[tuple[str, re.Pattern[str], Rule]] = [
    ("background", re.compile(
        r"^(?:(?P<action>remove|delete|erase|get rid of|cut out|blur|defocus)\s+(?:the\s+)?(?:background|backdrop)"
        r"|(?:make|turn)\s+(?:the\s+)?(?:background|backdrop)\s+(?P<action2>blurry|blurred|out of focus)"
        r"|(?:change|replace|make|turn|set|swap|switch)\s+(?:the\s+)?(?:background|backdrop)"
        r"\s*(?:to|with|into|for|as)?\s*(?P<what>.*))$"), _background),
    ("style", re.compile(rf"^(?:(?:turn|make|convert|render|transform|change|redraw|draw|paint)\s+(?P<target>.+?)\s+"
                         rf"(?:into|to|as|look like|like|in)\s+)?(?:an?\s+|the\s+)?(?:(?:\w+\s+)?style\s+of\s+)?"
                         rf".*?(?P<style>{_STYLE_WORDS})\b.*$"), _style),
    ("black and white", re.compile(
        r"^(?:(?:make|turn|convert|render|change)\s+(?P<target>.+?)\s+(?:in|into|to)?\s*)?"
        r"(?:black[- ]and[- ]white|b&w|gr[ae]y\s*scale|monochrome|colou?rless)$"
        r"|^(?:remove|drop)\s+(?:the\s+|all\s+)?colou?rs?(?:\s+from\s+(?P<target2>.+))?$"), _grayscale),
    ("recolour", re.compile(rf"^(?:{_COLOUR_VERBS})\s+(?P<rest>.+)$"), _recolour),
    ("swap", re.compile(r"^(?:replace|swap|exchange|substitute)\s+(?P<old>.+?)\s+(?:with|for|by)\s+(?P<new>.+)$"
                        r"|^(?:turn|change|transform)\s+(?P<old2>.+?)\s+into\s+(?P<new2>.+)$"), _swap),
    ("skin smoothing", re.compile(r"\b(?:smooth(?:en)?|soften|even out|retouch|airbrush|clean up)\b.*"
                                  r"\b(?:skin|complexion)\b|^(?:retouch|airbrush)\b"), _skin),
    ("denoise", re.compile(r"\b(?:denoise|de-noise|(?:reduce|remove|less|clean up)\s+(?:the\s+)?(?:noise|grain)"
                           r"|less (?:noisy|grainy))\b"), _denoise),
    ("remove", re.compile(r"^(?:remove|erase|delete|get rid of|take out|take away|eliminate|clean up|clear)\s+"
                          r"(?P<target>.+)$"), _remove),
    ("blur", re.compile(r"^(?:blur|pixelate|obscure|anonymi[sz]e|soften)(?:\s+(?P<target>.+))?$"
                        r"|^make\s+(?P<target2>.+?)\s+(?:blurry|blurred|soft)$"), _blur),
    ("crop to a shape", re.compile(r"^crop to aspect (?P<ratio>\d+:\d+|center)$"), _crop_shape),
    ("crop", re.compile(r"^(?:crop|cut)\s+(?:it\s+|the image\s+|the photo\s+|the picture\s+)?(?:down\s+)?"
                        r"(?:to|around|on|at)\s+(?P<target>.+)$"), _crop),
    ("brightness / contrast / saturation / warmth", re.compile(
        "|".join(f"(?:{pattern})" for pattern, _, _ in ADJUSTMENTS)), _adjust),
    ("sharpen", re.compile(r"\b(?:sharpen|sharper|crisper|deblur|unblur|more detail)\b"), _sharpen),
    ("flip", re.compile(r"\b(?:flip|mirror)\b"), _flip),
    ("rotate", re.compile(r"\b(?:rotate|turn)\b.*\b(?:\d+|degrees|clockwise|counter-?clockwise|left|right"
                          r"|upside down)"), _rotate),
    ("resize", re.compile(r"\b(?:resize|rescale|scale|downscale|upscale|shrink|enlarge)\b"
                          r"|\b\d+\s*(?:px|pixels)\s*(?:wide|tall|high)\b|\d\s*%\s*(?:smaller|bigger|larger)\b"),
     _resize),
    ("text overlay", re.compile(
        rf"^(?P<verb>add|write|put|place|insert|overlay|print|stamp)\s+(?:(?:the|a|an)\s+)?"
        rf"(?:(?P<noun>{_TEXT_NOUNS})\s+(?:saying\s+|that says\s+|reading\s+)?)?(?P<words>.+?)"
        rf"(?:\s+(?:at|in|on|along|across|to|near)\s+(?:the\s+)?(?P<where>{_PLACE})(?:\s+(?:corner|edge|side))?"
        rf"(?:\s+of\s+(?:the\s+)?(?:image|photo|picture))?)?$"), _text),
    ("square canvas / border", re.compile(rf"\b(?:make (?:it|the (?:image|photo|picture)) square|square "
                                          rf"(?:canvas|format)|pad\b.*\bsquare|{_BORDERS})\b"), _canvas),
    ("add", re.compile(r"^(?:add|insert|put|place|include)\s+(?P<what>.+)$"), _add),
    ("weather / time of day", re.compile(
        rf"\b(?:make|turn|change|set)\b.*?\b(?P<condition>{'|'.join(ENVIRONMENTS)})\b"), _environment),
]


_VERBS = ("make|turn|remove|erase|delete|change|replace|swap|add|insert|put|blur|crop|brighten|darken|lighten|"
          "sharpen|flip|mirror|rotate|resize|scale|convert|paint|colou?r|recolou?r|increase|reduce|get rid of")


def split_clauses(instruction: str) -> list[str]:
    """Normalised clauses of an instruction (``reading.normalise``): split on ';', ', then', ' and then', ' then ',
    sentence ends, and 'and' before a verb."""
    text = normalise(instruction).rstrip(".!?")
    text = re.sub(r"^(?:please|can you|could you|i want you to|i'd like you to)\s+", "", text)
    parts = re.split(r"\s*(?:;|[.!?] |, and then |,? and then |, then | then |, also | and also )\s*", text)
    parts = [piece for part in parts for piece in re.split(rf",?\s+and\s+(?=(?:{_VERBS})\b)", part)]
    return [re.sub(r"^(?:please|also|and|then)\s+", "", p).strip(" ,") for p in parts if p.strip(" ,")]


def read_clauses(instruction: str) -> list[Reading]:
    """Each clause's reading (intent and slots as a canonical clause), without clauses that carry no edit ("it's
    for our shop", "thanks") when others do. Raises Declined for a change no brick here can make."""
    readings = []
    for clause in split_clauses(instruction):
        try:
            readings.append(read_clause(clause))
        except Impossible as error:
            raise Declined(str(error)) from None
    edits = [r for r in readings if not is_chatter(r.text)]
    return edits or readings


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
        """Plan one request; an uncovered instruction, a subject it cannot locate or a missing brick is ``error``."""
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
        """The workflow and reasoning for an instruction; raise NotCovered when a clause matches no family."""
        graph, reasoning = self.build(instruction, has_mask, size)
        return to_workflow(graph, instruction), reasoning

    def build(self, instruction: str, has_mask: bool, size: tuple[int, int],
              chooser: Chooser | None = None) -> tuple[Graph, str]:
        """The graph (nodes, choices) and reasoning for an instruction; raise NotCovered as ``compile`` does."""
        graph = Graph(self.toolset, has_mask, size, self.settings, chooser or self.chooser, instruction=instruction)
        image, sentences = "@input.image", []
        for reading in read_clauses(instruction):
            graph.reading = reading
            image, sentence = self._clause(reading.text, graph, image)
            sentences.append(sentence)
        if not graph.nodes:
            raise NotCovered(f"the rules planner found nothing to do in {instruction!r}")
        reasons = {n["tool"]: why_not(self.toolset, n["tool"]) for n in graph.nodes}
        missing = [f"{tool} ({reason})" for tool, reason in reasons.items() if reason]
        if missing:
            raise NotCovered(f"{instruction!r} needs bricks that cannot run here: {'; '.join(missing)}")
        graph.output = image
        return graph, " ".join(sentences)

    def _clause(self, clause: str, graph: Graph, image: str, exemplars: bool = True) -> tuple[str, str]:
        reasons = []
        for name, pattern, rule in FAMILIES:
            match = pattern.search(clause)
            if match is None:
                continue
            before, chosen = len(graph.nodes), len(graph.choices)
            try:
                return rule(Groups(match), graph, image)
            except Declined:
                raise
            except NotCovered as error:
                del graph.nodes[before:], graph.choices[chosen:]
                reasons.append(f"{name}: {error}")
        if exemplars and self.ranker is not None:
            match = self.ranker.rank([clause])[0]
            if match.confident and match.canonical is None:
                raise Declined(f"{clause!r} reads as {match.intent} (nearest example: {match.exemplar!r}, similarity "
                               f"{match.similarity:.2f}), which the rules planner does not do on this profile")
            if match.confident and match.canonical is not None:
                image, sentence = self._clause(match.canonical, graph, image, exemplars=False)
                return image, (f"{clause!r} reads like {match.exemplar!r} (similarity {match.similarity:.2f}), "
                               f"that is {match.canonical!r}. {sentence}")
        if why_not(self.toolset, "EDIT") is None:
            node = graph.add("EDIT", "edit", image=image, prompt=clause)
            return f"@{node}.image", f"No specific brick fits {clause!r}: EDIT applies it to the whole image."
        families = ", ".join(name for name, _, _ in FAMILIES)
        detail = f" ({'; '.join(reasons)})" if reasons else ""
        raise NotCovered(f"the rules planner does not cover {clause!r}{detail}. It handles: {families}; "
                         "anything else needs a model Builder (planner.strategy=workflow) or the EDIT brick")


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
