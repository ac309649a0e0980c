"""The parts of a clause that are phrases of their own: the things it names (targets), its numbers with their
units, and the purpose tail that says why rather than what."""

from __future__ import annotations

from dataclasses import dataclass

from legoedit_core.planners.reading import Amount, Clause, Target, colour_spans
from legoedit_core.planners.vocabulary import (
    Tag,
    Token,
    can_be_adjective,
    can_be_noun,
    can_describe,
    is_word,
    vocabulary,
)

# words inside a target's phrase that name no thing ("the top left corner", "the jacket's colour", "cool it down")
NOT_THINGS = {"i", "we", "they", "first", "last", "why", "how", "what", "that", "which", "corner", "side", "edge",
              "half", "part", "area", "bit", "region", "section", "colour", "color", "colours", "colors", "shade",
              "size", "resolution", "dimensions", "strength", "radius", "amount", "not", "up", "down", "out", "off",
              "away", "looks", "is", "are", "was", "nobody", "anybody", "anyone", "everyone", "someone", "somebody",
              "people", "you", "kind", "sort", "type", "version", "variant", "copy", "think", "possible", "itself",
              "herself", "himself", "themselves", "altogether", "couple", "shades", "difference", "emphasis",
              "result", "results", "impression", "idea", "option", "options", "colourway", "colorway", "mood", "pass",
              "passes", "bits", "parts", "areas", "run", "apply", "full", "lots", "loads", "plenty", "pump"}
_VALUES = ("rotation", "flip", "styles", "greyscale", "canvas", "units", "comparatives")
DETERMINERS = {"the", "a", "an", "this", "that", "her", "his", "its", "their", "my", "your", "our"}
PREPOSITIONS = {"on", "in", "at", "from", "inside", "over", "across", "along", "around", "with", "by", "of"}
LOOK_VERBS = ("look", "looks", "feel", "feels", "seem", "seems", "appear")
_MANNER = {"style", "look", "vibe", "feel", "type", "format", "aesthetic"}
_ASKING = ("verbs", "adjust", "styles", "greyscale", "problems", "background", "undoable")  # a request before a why
# words written with a full stop that ends no sentence ("Dr. Collins", "Fresh Roast Co.", "est. 1962")
ABBREVIATIONS = ("Dr", "Mr", "Mrs", "Ms", "St", "Jr", "Prof", "Mt", "Co", "Ltd", "Inc", "Est", "est", "No", "Vol",
                 "Bros", "Corp")
_WITHIN = ("in", "on", "across", "over", "at")  # "dark bits in the sky": where a described region is
_ABOUT = ("about", "around", "roughly", "approximately", "maybe", "of", "at", "~", "=", "to", "like", "say")
_PARAMETERS = ("radius", "strength", "amount")
_THING_CLASSES = ("finder_words", "subject", "not_subject", "background", "marked")
_PICTURES = {"image", "photo", "picture", "pic", "shot", "portrait", "snap", "photograph", "frame", "banner", "poster",
             "flyer", "graphic", "artwork", "thumbnail", "wallpaper"}
_SOURCES = {"from", "off", "out"}
_MODALS = {"can", "could", "would", "should", "will", "might", "must", "may"}  # "I can barely see her"
_PERSONS = {"her", "him"}  # a person named by a pronoun alone ("remove her", "blur him out")
_QUALIFIERS = {"nothing", "more", "less", "too", "so", "very", "really", "quite", "much", "way", "extra"}


@dataclass
class Words:
    """A clause's tokens as read: the instruction they come from, the tokens, their words and tags, and which
    tokens an action has taken (``used``)."""

    instruction: str
    part: list[Token]
    words: list[str]
    tags: list[Tag | None]
    used: list[bool]

    def found(self, *path: str) -> list[Tag]:
        """The distinct tags having a meaning under ``path``, in order."""
        seen: list[Tag] = []
        for tag in self.tags:
            if tag is not None and tag.has(*path) and tag not in seen:
                seen.append(tag)
        return seen

    def use(self, tag: Tag | None) -> None:
        if tag is not None:
            for k in range(tag.start, tag.end):
                self.used[k] = True


def read_amounts(view: Words, c: Clause) -> None:
    """The clause's numbers with their units, factors ("half") and turns ("clockwise"), into ``c.amounts``."""
    words, part = view.words, view.part
    for k, token in enumerate(part):
        if token.kind != "number":
            continue
        value = float(token.word)
        view.used[k] = True
        after = view.tags[k + 1] if k + 1 < len(part) else None
        nxt = words[k + 1] if k + 1 < len(part) else ""
        if nxt in ("x", "by", "*") and k + 2 < len(part) and part[k + 2].kind == "number":
            c.amounts.append(Amount(value, "pixels", side="width"))
            c.amounts.append(Amount(float(part[k + 2].word), "pixels", side="height"))
            view.used[k + 1] = view.used[k + 2] = True
        elif nxt == ":" and k + 2 < len(part) and part[k + 2].kind == "number":
            c.amounts.append(Amount(value / float(part[k + 2].word or 1), "ratio"))
            view.used[k + 1] = view.used[k + 2] = True
        elif k > 1 and words[k - 1] == ":" and part[k - 2].kind == "number" or k > 1 and words[k - 1] in (
                "x", "by") and part[k - 2].kind == "number":
            continue
        elif after is not None and after.has("units"):
            unit = after.get("units")[1]  # type: ignore[index]
            side = next((w for w in words[k + 1 : k + 4] if w in ("wide", "tall", "high", "width", "height")),
                        None)
            side = None if side is None else "width" if side in ("wide", "width") else "height"
            c.amounts.append(Amount(value, unit, side=side))
            view.use(after)
        elif _parameter_before(words, k) or nxt in _PARAMETERS:
            param = _parameter_before(words, k) or nxt
            c.amounts.append(Amount(value, param))  # "radius 20": a brick's own setting
            view.used[words.index(param)] = True
        else:
            side = next((w for w in words[k + 1 : k + 3] if w in ("wide", "tall", "high", "width", "height")),
                        None)
            side = None if side is None else "width" if side in ("wide", "width") else "height"
            c.amounts.append(Amount(value, "number", side=side))
    for tag in view.found("factors"):
        factor = float(vocabulary().data["factors"][view.words[tag.start]])
        before = [w for w in view.words[: tag.start] if w not in ("a", "an", "about", "roughly", "around", "maybe")]
        after = [w for w in view.words[tag.end : tag.end + 3] if w not in ("a", "an", "of")]
        if after[:1] and after[0] in vocabulary().data["units"]["stops"]:
            c.amounts.append(Amount(factor, "stops"))  # "half a stop", "a third of a stop": how many stops
            view.use(tag)
            continue
        if before[-1:] == ["by"] and factor < 1:
            c.amounts.append(Amount(100 * factor, "percent"))  # "reduce it by a fifth": a change of 20%
        else:
            c.amounts.append(Amount(factor, "factor"))  # "to a fifth of what it is", "half the size"
        view.use(tag)
    for tag in view.found("units", "stops"):
        if not any(a.unit == "stops" for a in c.amounts):  # "one stop" (a number before it is read above)
            c.amounts.append(Amount(1.0, "stops"))
        view.use(tag)
    for tag in view.found("rotation"):
        kind = tag.get("rotation")[1]  # type: ignore[index]
        if kind == "half_turn" and view.found("verbs", "flip"):
            continue
        if kind == "half_turn":
            c.amounts.append(Amount(180.0, "degrees", "clockwise"))
        elif kind == "quarter_turn":
            c.amounts.append(Amount(90.0, "degrees"))  # its direction, if any, is the next rotation word
        elif c.amounts and c.amounts[-1].unit in ("degrees", "number") or view.found("verbs", "rotate"):
            c.amounts = [Amount(a.value, a.unit if a.unit != "number" else "degrees", kind) for a in c.amounts]
            if not c.amounts:
                c.amounts.append(Amount(90.0, "degrees", kind))
        else:
            continue
        view.use(tag)
    _level(view, c)


_TILTS = ("dips", "dip", "leans", "lean", "tilts", "tilted", "slopes", "slants", "sags", "droops", "drops", "sinks")


def _level(view: Words, c: Clause) -> None:
    """A tilt described ("it dips 3 degrees towards the right") is levelled by turning the other way."""
    tilt = next((k for k, w in enumerate(view.words) if w in _TILTS), None)
    side = next((w for w in view.words[tilt:] if w in ("left", "right")), None) if tilt is not None else None
    if side is not None:
        turn = "anticlockwise" if side == "right" else "clockwise"
        c.amounts = [Amount(a.value, "degrees", turn) if a.unit in ("degrees", "number") else a for a in c.amounts]


def split_targets(view: Words, run: list[int]) -> list[Target]:
    """The targets named by the tokens at ``run`` (split at "and" and commas)."""
    groups: list[list[int]] = [[]]
    for k in run:
        # "the text on her tag and patch": the things after "on" are where the text is, not more targets
        relating = any(view.words[j] in ("on", "of") for j in groups[-1][1:]) and any(
            view.tags[j] is not None and view.tags[j].has("finder_words", "same", "text") for j in groups[-1])
        if view.words[k] in ("and", ",", "&", "or") and not (relating and view.words[k] == "and"):
            groups.append([])
        elif view.part[k].kind in ("word", "caps", "number", "quote"):
            groups[-1].append(k)
    return [t for t in (_target(view, g) for g in groups if g) if t is not None]

def _target(view: Words, group: list[int]) -> Target | None:
    words, tags = view.words, view.tags
    place = relation = owner = None
    content: list[int] = []
    names: list[str] = []
    kind = "thing"
    for index, k in enumerate(group):
        tag = tags[k]
        if view.part[k].kind in ("quote", "caps"):
            names.append(view.part[k].word if view.part[k].kind == "quote" else view.part[k].text)
            continue
        if content and view.words[k] in _SOURCES:
            if not _whole_source(view, group[index + 1 :]):  # "the collar off the cat": what it is on
                relation = _span(view, group[index:], lead=False).lower()
            break  # where it is taken from ("the cup out of the shot", "the rocket off the pad"): no narrowing
        if content and words[k] in _WITHIN and _relation_starts(view, group, index) and all(
                can_be_adjective(words[j]) and not colour_spans(words[j : j + 1]) for j in content):
            content.clear()  # "dark noisy bits in the sky": the sky
            continue
        if content and _relation_starts(view, group, index):
            relation = _span(view, group[index:], lead=False).lower()  # "the spots on her face", "the guy at the back"
            break
        if content and words[k] == "behind" and index + 1 == len(group):
            relation = "behind"  # "no shuttle model behind"
            break
        if not content and kind == "thing" and words[k] == "behind" and index + 1 < len(group):
            return Target(_span(view, group), "background", "background", place=place)  # "behind the cat"
        if tag is not None and tag.start < k:
            continue  # the rest of a phrase already taken ("date stamp")
        if tag is not None and tag.has("places") and not (k and words[k - 1] in ("is", "are", "be", "remains")):
            place = tag.get("places")[1]  # type: ignore[index]
        elif tag is not None and tag.has("marked"):
            kind = "marked"
        elif tag is not None and tag.has("subject") and not content:
            kind = "subject"
        elif tag is not None and tag.has("background") and content and all(_describes(view, j) for j in content):
            kind = "background"  # "the empty grey backdrop": the background, described
            content.clear()
        elif tag is not None and tag.has("background") and content:
            relation = _span(view, group[index:], lead=False).lower()  # "the model behind her"
            break
        elif tag is not None and tag.has("background"):
            kind = "background"
        elif words[k] in _PERSONS and not content and _stands_alone(view, group, index):
            return Target(view.part[k].text, "person", "thing", place=place)  # "remove her from the picture"
        elif tag is not None and tag.has("pronouns", "owners"):
            continue
        elif tag is not None and (tag.has("scope", "whole") or tag.has("pronouns")) and not tag.has(
                "finder_words"):
            if words[k] in _PICTURES and kind == "thing" and (not content or content[-1] == k - 1):
                content.clear()  # "the cat pic", "the whole portrait": the picture itself (not "text on the banner")
            kind = "whole" if kind == "thing" and not content else kind
        elif words[k] in NOT_THINGS or tag is not None and (_not_a_thing(tag) or tag.has("copulas") or (tag.has(
                "adjust") or tag.has("problems")) and not tag.has("finder_words")) or (
                words[k] in _MODALS and not (k and words[k - 1] in ("the", "a", "an", "this", "that"))):
            continue
        elif index + 1 < len(group) and words[group[index + 1]] in ("it", "this", "that", "them", "these", "those"):
            continue  # a verb the vocabulary lacks ("redo it"), not a thing
        elif k > 0 and words[k - 1] in _QUALIFIERS:
            continue  # a quality asked for ("more intense", "too shiny"), not a thing
        elif tag is None and not can_be_noun(words[k], view.part[k].text if k else "") and not _modifies(
                view, group, index):  # a capital at the clause's start is no name
            continue  # "nothing crazy", "by about 30%": words that name no thing
        else:
            content.append(k)
    if words[group[-1]] in _MANNER and not any(tags[k] is not None and any(tags[k].has(c) for c in _THING_CLASSES)
                                               for k in group):
        return None  # "passport/headshot style": how, not what
    if kind in ("marked", "subject", "background") or not content:
        if kind == "thing" and place is None:
            return None
        if kind in ("thing", "whole") and place is not None:
            return Target(_span(view, group), place, "thing", place=place)  # "the left side": a part of the frame
        return Target(_span(view, group), kind, kind, place=place)
    heads = [" ".join(words[k : tags[k].end]) if tags[k] is not None and tags[k].start == k else words[k]
             for k in content]
    if heads[-1].endswith("'s"):
        owner, heads = heads[-1][:-2], heads[:-1] or [heads[-1][:-2]]
    for index, word in enumerate(heads[:-1]):
        if word.endswith("'s") or (word.endswith("s") and not word.endswith("ss") and len(heads) > 1
                                   and index == 0 and is_word(word[:-1])):
            owner = word[:-2] if word.endswith("'s") else word[:-1]
    head = heads[-1]
    modifiers = tuple(w.removesuffix("'s") for w in heads[:-1] if w.removesuffix("'s") != owner
                      and w[:-1] != owner)
    return Target(_span(view, group), head, "thing", modifiers, owner, place, relation, " ".join(names) or None)

def fine_detail(target: Target) -> bool:
    """Whether a target names fine detail ("the edges sharp", "the horizon line"), not a region to leave out."""
    tags = vocabulary().tag(target.words.lower().split())
    return any(tag is not None and tag.has("fine_detail") for tag in tags)


def _parameter_before(words: list[str], k: int) -> str | None:
    """A brick's setting named just before a number, perhaps with a word of about-ness ("radius around 25")."""
    before = [w for w in words[max(0, k - 3) : k] if w not in _ABOUT]
    return before[-1] if before and before[-1] in _PARAMETERS else None


def _whole_source(view: Words, rest: list[int]) -> bool:
    """Whether what a thing is taken out of or off is the picture or the setting ("out of the shot", "off the launch
    pad"), not a part of it ("from behind her", "from the corner")."""
    named = [k for k in rest if view.words[k] not in ("the", "a", "an", "of", "this", "my", "our") and not (
        view.tags[k] is not None and all(m == ("filler",) for m in view.tags[k].meanings))]  # "out entirely"
    if not named:
        return True
    tag = view.tags[named[0]]
    return tag is not None and (tag.has("scope", "whole") and view.words[named[0]] in _PICTURES or tag.has(
        "not_subject", "setting"))


def _modifies(view: Words, group: list[int], index: int) -> bool:
    """Whether the word at ``group[index]`` describes a thing named after it ("the shiny car")."""
    after = [k for k in group[index + 1 :] if view.words[k] not in ("the", "a", "an")]
    if not after or view.words[after[0]] in PREPOSITIONS | NOT_THINGS or not can_describe(view.words[group[index]]):
        return False
    tag = view.tags[after[0]]
    if tag is None:
        return can_be_noun(view.words[after[0]], view.part[after[0]].text)
    return any(tag.has(c) for c in ("finder_words", "subject", "not_subject", "background"))


def _stands_alone(view: Words, group: list[int], index: int) -> bool:
    """Whether the word at ``group[index]`` names no thing after it: "her" in "remove her", not in "her coat"."""
    after = group[index + 1 : index + 2]
    if not after:
        return True
    tag = view.tags[after[0]]
    return view.words[after[0]] in PREPOSITIONS | {"out", "off", "up", "down"} or tag is not None and (
        tag.has("filler") or tag.has("scope", "whole") or tag.has("places"))


def _span(view: Words, group: list[int], lead: bool = True) -> str:
    """The user's words for a target, without filler at either end (nor a leading preposition, with ``lead``)."""
    def filler(k: int) -> bool:
        return view.tags[k] is not None and all(m[0] == "filler" for m in view.tags[k].meanings)

    while len(group) > 1 and filler(group[-1]):
        group = group[:-1]
    while lead and len(group) > 1 and (filler(group[0]) or view.words[group[0]] in ("close", "in", "on", "to", "of")):
        group = group[1:]
    return view.instruction[view.part[group[0]].start : view.part[group[-1]].end]


def another_change(tag: Tag) -> bool:
    """Whether a phrase names a change of its own wherever it stands: a look, greyscale, a square canvas, or a
    change no brick makes that never describes the photo as it is (a named artist, colourising, outpainting)."""
    return tag.has("styles") or tag.has("greyscale") or tag.has("canvas", "square") or any(
        tag.has("undoable", kind) for kind in ("artist", "colourise", "outpaint", "translate", "generate"))


def without_purpose(part: list[Token], tags: list[Tag | None]) -> list[Token]:
    """The clause's tokens before a purpose or reason ("so she stands out", "for the newsletter"); a "for" that
    leads to a colour, a look or a background is kept ("swap it for blue")."""
    words = [t.word for t in part]
    for k in range(1, len(part)):
        tag = vocabulary().phrase_at(words, k, "purpose")
        if tag is None:
            continue
        rest = tags[tag.end :]
        swapping = any(t is not None and (t.has("verbs", "replace") or t.has("background")) for t in tags[:k])
        if part[k].word == "for" and (tags[k - 1] is not None and tags[k - 1].has("scope", "except") or tags[
                k + 1 : k + 2] and tags[k + 1] is not None and tags[k + 1].has("scope")):
            continue  # "except for the person", "black and white for everything but her"
        if part[k].word == "like" and (words[k - 1] in LOOK_VERBS or any(t is not None and (t.has(
                "text_overlay") or t.has("strength") or t.has("factors")) for t in tags[k + 1 : k + 3])):
            continue  # "make it look like a snowy day": what it should look like; "like half see-through": about
        wider = shows_more(words)
        if wider is not None and wider < k:
            continue  # "wider so there's more lawn on each side": more than the photo holds, not why
        cropped = any(t is not None and t.has("verbs", "crop") for t in tags[:k])
        if {"just", "only"} & set(words[k : k + 6]) and cropped:
            continue  # "crop it so it's just the rocket", "crop in, I only want the cup": what is kept, not why
        if part[k].word == "for" and (swapping or colour_spans(words[k + 1 :]) or any(
                t is not None and t.has("background") for t in rest)):
            continue
        wanted = {c for c in _VALUES if any(t is not None and t.has(c) and not (t.has("places") and words[
            t.start - 1] in ("the", "on", "to", "and")) for t in rest)}  # "so the tower on the left": a place
        if any(not any(t is not None and t.has(c) for t in tags[:k]) for c in wanted) or any(
                t is not None and (t.has("undoable") and another_change(t) or t.has("strength")) for t in rest):
            continue  # "rotate it so it's upside down", "like Studio Ghibli", "wider so we see more of the pad":
            # the tail holds what was asked
        if any(t is not None and any(t.has(c) for c in _ASKING) for t in tags[:k]) or any(
                p.kind in ("quote", "caps") for p in part[:k]):
            return part[:k]
    return part


def shows_more(words: list[str]) -> int | None:
    """Where "wider" / "taller" asks for more than the photo holds ("wider, so there's more lawn on each side",
    "wider so we can see more of the pad"), or None."""
    wider = next((k for k, w in enumerate(words) if w in ("wider", "taller")), None)
    after = set(words[wider:]) if wider is not None else set()
    return wider if "more" in after and {"side", "sides", "see"} & after else None


def inside(tag: Tag | None, span: tuple[int, int, str]) -> bool:
    """Whether a colour span is part of a longer phrase ("too yellow", "more golden")."""
    return tag is not None and (tag.start < span[0] or tag.end > span[1])


def _relation_starts(view: Words, group: list[int], index: int) -> bool:
    """Whether a relation to something else starts at ``group[index]``: a relation word, or a preposition followed by
    more words that are not a side of the frame ("on her face"; but "on the left")."""
    tag, word = view.tags[group[index]], view.words[group[index]]
    if tag is not None and tag.has("places") and not tag.has("relations"):
        return False
    rest = group[index + 1 :]
    named = [j for j in rest if view.tags[j] is None and can_be_noun(view.words[j], view.part[j].text) or (
        view.tags[j] is not None and any(view.tags[j].has(c) for c in _THING_CLASSES))]  # "in colour" is no thing
    if tag is not None and tag.has("relations"):
        return bool(rest)
    return word in PREPOSITIONS and bool(named)


def _describes(view: Words, k: int) -> bool:
    """Whether a word only describes (an adjective or a colour: "plain", "grey"), so it names no thing of its own."""
    return can_be_adjective(view.words[k]) or any(a <= k < b for a, b, _ in colour_spans(view.words))


def _not_a_thing(tag: Tag) -> bool:
    """Filler, a vague wish or a remark inside a target's words ("the sky, which would be great")."""
    return tag.has("filler") and not tag.has("finder_words") or tag.has("undoable", "vague") or tag.has(
        "remarks") or tag.has("undoable", "colourise") or tag.has("scope", "only")  # "keep the cup in colour": how
    # it stays; "I'd only like the sky brighter": which, not what
