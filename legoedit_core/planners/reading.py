"""The typed reading of an instruction: what each clause asks, on what, how much, and in the user's own words.

``reader.read(instruction)`` splits the instruction's tokens into clauses (``;``, sentence ends, "then", and "and" or a
comma before a verb) and reads each into a ``Clause``: its action, its targets (head word, modifiers, owner, side of
the frame, relation), its scope (the whole image, only X, everything except X), the attribute and direction of a
tonal change, the value (a colour, a look, a background, the words to write), an amount (degrees, percent, pixels,
a factor) and a strength ("a bit", "a lot"). The words come from ``vocabulary.toml``; nothing is rewritten into
other English. Planning (``bricks_for``) works from these fields only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from legoedit_core.bricks.cpu.colors import FILLER as COLOUR_FILLER
from legoedit_core.bricks.cpu.colors import parse_color
from legoedit_core.planners.vocabulary import Tag, vocabulary


@dataclass(frozen=True)
class Target:
    """A thing a clause names: ``words`` as written, ``head`` the thing itself, ``modifiers`` (colours and other
    words before it), ``owner`` ("the robin's breast"), ``place`` (a side of the frame) and ``relation`` (to
    another thing, "behind the car"), ``name`` (the words it carries). ``kind`` is thing, subject, background,
    marked or whole."""

    words: str
    head: str
    kind: str = "thing"
    modifiers: tuple[str, ...] = ()
    owner: str | None = None
    place: str | None = None
    relation: str | None = None
    name: str | None = None  # words it carries, quoted or in capitals ("the word SALE", "the 'OPEN' sign")


@dataclass(frozen=True)
class Amount:
    """A number with its unit (degrees, percent, pixels, factor) and, for a rotation, its direction."""

    value: float
    unit: str
    direction: str | None = None
    side: str | None = None  # "width" or "height" for a size in pixels


@dataclass
class Clause:
    """One thing asked. ``text`` is the user's words for it (as written, for messages)."""

    text: str
    action: str
    targets: list[Target] = field(default_factory=list)
    scope: str = "whole"  # whole | only | except
    excluded: list[Target] = field(default_factory=list)
    attribute: str | None = None
    direction: int = 0
    value: str | None = None
    amounts: list[Amount] = field(default_factory=list)
    place: str | None = None
    strength: float = 1.0
    reason: str | None = None  # why it cannot be done (an undoable change)
    brick: str | None = None  # the generative brick that does an undoable change where a profile has it (ENV)
    condition: str | None = None  # the words that brick is asked for ("snowy")
    colour: str | None = None  # the colour text is written in
    wording: str | None = None  # the user's own words for ``value`` ("charcoal" for the pencil sketch look)
    qualities: set[str] = field(default_factory=set)  # of text and canvas: faint, tiled, big, small, square, border
    asks: bool = True  # a verb of editing is in it; a clause read as nothing that asks nothing is an aside


@dataclass
class Reading:
    """The instruction as written and its clauses."""

    instruction: str
    clauses: list[Clause]


def colour_spans(words: list[str]) -> list[tuple[int, int, str]]:
    """The runs of words naming a colour, longest first where they overlap: (start, end, colour)."""
    spans: list[tuple[int, int, str]] = []
    i = 0
    while i < len(words):
        best = None
        for j in range(min(len(words), i + 3), i, -1):
            span = " ".join(words[i:j])
            if words[i] in COLOUR_FILLER or words[j - 1] in COLOUR_FILLER or not all(
                    w.replace("-", "").isalpha() for w in words[i:j]):
                continue
            if parse_color(span) is not None:
                best = (i, j, span)
                break
            plain = _without_ish(span).removeprefix("bright ").removeprefix("vivid ").removeprefix("deep ")
            if plain != span and parse_color(plain) is not None:
                best = (i, j, plain)  # "pinkish", "yellowish straw": the colour itself
                break
        if best:
            spans.append(best)
            i = best[1]
        else:
            i += 1
    return spans


def _without_ish(span: str) -> str:
    """A colour word's plain form: "pinkish" -> "pink", "reddish" -> "red", "blueish" -> "blue"."""
    last = span.split()[-1]
    if not last.endswith("ish") or len(last) < 6:
        return span
    stem = last[:-3].removesuffix("e") if last[:-3] not in ("blue",) else last[:-3]
    stem = stem[:-1] if len(stem) > 3 and stem[-1] == stem[-2] else stem
    return " ".join([*span.split()[:-1], stem])


def tag_list(words: list[str]) -> list[Tag | None]:
    """Each position's tag, and the positions a longer phrase covers marked with that same tag."""
    tags = vocabulary().tag(words)
    covered: list[Tag | None] = [None] * len(words)
    i = 0
    while i < len(words):
        tag = tags[i]
        if tag is None:
            i += 1
            continue
        for k in range(tag.start, tag.end):
            covered[k] = tag
        i = tag.end
    return covered
