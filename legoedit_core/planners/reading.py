"""The typed reading of an instruction: what each clause asks, on what, how much, and in the user's own words.

``read(instruction)`` splits the instruction's tokens into clauses (``;``, sentence ends, "then", and "and" or a
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
from legoedit_core.planners.vocabulary import Tag, Token, tokens, vocabulary


@dataclass(frozen=True)
class Target:
    """A thing a clause names: ``words`` as written, ``head`` the thing itself, ``modifiers`` (colours and other
    words before it), ``owner`` ("the robin's breast"), ``place`` (a side of the frame) and ``relation`` (to
    another thing, "behind the car"). ``kind`` is thing, subject, background, marked or whole."""

    words: str
    head: str
    kind: str = "thing"
    modifiers: tuple[str, ...] = ()
    owner: str | None = None
    place: str | None = None
    relation: str | None = None


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
    qualities: set[str] = field(default_factory=set)  # of text and canvas: faint, tiled, big, small, square, border


@dataclass
class Reading:
    """The instruction as written and its clauses."""

    instruction: str
    clauses: list[Clause]


_SPLIT_WORDS = {"then", "also", "afterwards", "after", "finally", "plus"}
_EDIT_VERBS = ("remove", "change", "blur", "hide", "sharpen", "denoise", "smooth", "crop", "rotate", "flip", "resize",
               "write", "add", "replace", "pad", "isolate", "increase", "decrease")


def read(instruction: str) -> Reading:
    """The typed reading of ``instruction``."""
    toks = tokens(instruction)
    clauses: list[Clause] = []
    for piece in split(toks):
        clauses.append(read_clause(instruction, piece, clauses))
    return Reading(instruction, _described(clauses))


def _described(clauses: list[Clause]) -> list[Clause]:
    """A description of a problem ("the sky looks washed out") followed by an edit of "it" is that edit's target:
    the change belongs to the region described, and the description itself asks for nothing more. A description
    beside an edit that makes the same change ("brighter, it's too dark") explains that edit; a vague "fix it"
    after a description asks for the fix the description implies."""
    vague = vocabulary().undoable("vague")["reason"]
    for first, then in zip(clauses, clauses[1:], strict=False):
        for implied, edit in ((first, then), (then, first)):
            same = (implied.action, implied.attribute) == (edit.action, edit.attribute) and (
                implied.attribute is None or implied.direction == edit.direction)
            if implied.value == "implied" and edit.value != "implied" and same:
                implied.action = "describe"
        if first.value == "implied" and then.reason == vague:
            then.action = "remark"
        described = first.value == "implied" and [t for t in first.targets if t.kind != "whole"]
        if described and all(t.kind == "whole" for t in then.targets) and then.action not in (
                "undoable", "remark", "unknown", "write", "rotate", "flip", "resize", "pad"):
            then.targets = list(first.targets)
            first.action = "describe"
    return clauses


def split(toks: list[Token]) -> list[list[Token]]:
    """The tokens of each clause: split at ; . ! ?, at "then" / "also", and at "and" or a comma before a verb."""
    vocab = vocabulary()
    words = [t.word for t in toks]
    tags = vocab.tag(words)
    parts: list[list[Token]] = [[]]
    for i, token in enumerate(toks):
        if token.word == ":" and (_between_numbers(toks, i) or i + 1 < len(toks) and toks[i + 1].kind == "quote"):
            parts[-1].append(token)  # "16:9", "caption: 'Hello'"
        elif parts[-1] and _ends_clause(toks, tags, i, parts[-1]):
            parts.append([])
        elif token.kind != "punct" or token.word in ",%°:&":
            parts[-1].append(token)
    return [p for p in parts if any(t.kind != "punct" for t in p)]


def _between_numbers(toks: list[Token], i: int) -> bool:
    return 0 < i < len(toks) - 1 and toks[i - 1].kind == "number" and toks[i + 1].kind == "number"


def _ends_clause(toks: list[Token], tags: list[Tag | None], i: int, part: list[Token]) -> bool:
    """Whether the clause so far (``part``) ends at token ``i``: at ; . ! ? : ( ), at "then" / "also", at a comma
    before a statement ("..., it's too dark"), at "and", "but" or a comma before a verb."""
    token, vocab = toks[i], vocabulary()
    if token.kind == "punct" and token.word in ";.!?:()" or token.word in _SPLIT_WORDS:
        return True
    if token.word not in ("and", ",", "but") or not _has_action(part, vocab):
        return False
    nxt = tags[i + 1] if i + 1 < len(toks) else None
    verb_next = nxt is not None and (any(nxt.has("verbs", v) for v in _EDIT_VERBS) or (
        (nxt.has("adjust") or nxt.has("greyscale")) and toks[i + 1].word.endswith("en")))
    return verb_next or token.word == "," and _statement_next(tags, i)


def _statement_next(tags: list[Tag | None], i: int) -> bool:
    """Whether the words after position ``i`` state something ("it's too dark", "the fur looks soft")."""
    ahead = [t for t in tags[i + 1 : i + 5] if t is not None]
    return any(t.has("copulas") or t.has("problems") for t in ahead)


def _has_action(part: list[Token], vocab) -> bool:
    tags = vocab.tag([t.word for t in part])
    return any(t is not None and (t.has("verbs") or t.has("adjust") or t.has("styles") or t.has("greyscale")
                                  or t.has("problems")) for t in tags) or any(t.kind in ("quote", "caps")
                                                                               for t in part)


def _source(instruction: str, part: list[Token]) -> str:
    return instruction[part[0].start : part[-1].end]


def read_clause(instruction: str, part: list[Token], before: list[Clause]) -> Clause:
    """One clause read from its tokens; ``before`` are the clauses read so far (for "it" and for a description
    that an edit of the same thing follows)."""
    from legoedit_core.planners.clause_reader import ClauseReader

    return ClauseReader(instruction, part, before).read()


def colour_spans(words: list[str]) -> list[tuple[int, int, str]]:
    """The runs of words naming a colour, longest first where they overlap: (start, end, colour)."""
    spans: list[tuple[int, int, str]] = []
    i = 0
    while i < len(words):
        best = None
        for j in range(min(len(words), i + 3), i, -1):
            span = " ".join(words[i:j])
            if words[i] in COLOUR_FILLER or words[j - 1] in COLOUR_FILLER:
                continue
            if parse_color(span) is not None:
                best = (i, j, span)
                break
        if best:
            spans.append(best)
            i = best[1]
        else:
            i += 1
    return spans


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
