"""Reading an instruction: its tokens split into clauses, each read into a ``Clause`` (``clause_reader``), and
descriptions joined to the edits they describe. ``read`` is what the planner calls."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from legoedit_core.planners.clause_reader import ClauseReader
from legoedit_core.planners.phrases import fine_detail
from legoedit_core.planners.reading import Clause, Reading, Target, colour_spans
from legoedit_core.planners.splitting import split, tonal_only
from legoedit_core.planners.vocabulary import Token, tokens, vocabulary

_TONAL = ("adjust", "greyscale", "style")
_REGION_CHANGES = (*_TONAL, "tint", "recolour", "sharpen", "smooth", "denoise")  # a change a bare tone word continues
_ONCE = ("sharpen", "denoise", "smooth", "blur")  # said twice in a row without a new target, it is one change
_NEEDS_A_THING = ("recolour", "remove", "sharpen", "blur", "hide", "smooth", "denoise", "tint")
_VALUED = ("recolour", "tint", "background", "style")
_PERSONAL = ("her", "him", "she", "he")
_POINTERS = ("it", "them", "that", "those", "this", "these")


def read(instruction: str, understand: Callable[[Clause], Clause] | None = None) -> Reading:
    """The typed reading of ``instruction``; ``understand`` reads a clause the vocabulary does not cover (the
    planner's exemplar ranking) before descriptions are joined to their edits."""
    found = tokens(instruction)
    pieces = split(found)
    clauses = [read_clause(instruction, piece) for piece in pieces]
    for (first, then), piece in zip(zip(clauses, clauses[1:], strict=False), pieces[1:], strict=True):
        if tonal_only(piece) and all(t.kind == "whole" for t in then.targets) and then.action in _TONAL and (
                first.action in _REGION_CHANGES):
            then.targets, then.scope, then.excluded = first.targets, first.scope, first.excluded  # "her face
            # brighter and warmer": the second change is of the same thing
    if understand is not None:
        clauses = [understand(clause) for clause in clauses]
    animal = any(tag is not None and tag.has("animal_parts") for tag in vocabulary().tag([t.word for t in found]))
    return Reading(instruction, _headed(_corrected(_pronouns(_described(clauses, instruction), animal)), instruction))


def _headed(clauses: list[Clause], instruction: str) -> list[Clause]:
    """A thing named before a colon or dash at the start, when the clause after names its own things, is a heading
    ("ID card format: lose the flag ..."), not what the edit is of."""
    pointed = clauses[0].text.lower().startswith(("see ", "notice ", "spot "))  # "see the woman in the flight
    # suit? her hair looks flat": whom the request after is about
    if len(clauses) > 1 and clauses[0].action == "named" and (pointed or _between(instruction, *clauses[:2]) in (
            ":", "-", "—", "–")) and (any(t.kind != "whole" for t in clauses[1].targets) or clauses[1].action in (
                "remark", "describe")) and not _points_back(clauses[1]):
        clauses[0].action = "remark"
    return clauses


def _described(clauses: list[Clause], instruction: str) -> list[Clause]:
    """A description of a problem ("the sky looks washed out") followed by an edit of "it" is that edit's target:
    the change belongs to the region described, and the description itself asks for nothing more. A description
    beside an edit that makes the same change ("brighter, it's too dark") explains that edit; a vague "fix it"
    after a description asks for the fix the description implies."""
    vague = vocabulary().undoable("vague")["reason"]
    rest = set(vocabulary().data["scope"]["rest"])
    for edit, named in zip(clauses, clauses[1:], strict=False):
        if named.action == "named" and edit.action in _NEEDS_A_THING + _TONAL and _points_back(edit):
            edit.targets, named.action = list(named.targets), "describe"  # "brighten it? The rocket, I mean"
    for k, named in enumerate(clauses):
        said = [t.word for t in tokens(named.text)]
        spans = colour_spans(said)
        if named.action == "named" and spans and spans[0][0] == 0 and not (
                k + 1 < len(clauses) and _points_back(clauses[k + 1])):  # "navy cup, thin border": the cup in navy
            named.action, named.value = "recolour", spans[0][2]
            named.targets = [replace(t, modifiers=tuple(m for m in t.modifiers if m not in spans[0][2].split()))
                             for t in named.targets]
    for first, then in zip(clauses, clauses[1:], strict=False):
        for implied, edit in ((first, then), (then, first)):
            same = (implied.action, implied.attribute) == (edit.action, edit.attribute)  # "it's too dark, brighten
            # it", "it's warm, make it warmer": the request says which way
            if implied.value == "implied" and edit.value != "implied" and same:
                implied.action = "describe"
                if edit.strength == 1.0:  # "take the colour out, nearly monochrome": how much, said after
                    edit.strength = implied.strength
        for edit, why in ((first, then), (then, first)):
            if _explains(why, edit):
                why.action = "describe"  # "soften her face, the flash made it harsh": why that edit, no other
        vague_fix = then.reason == vague or (then.action == "remove" and not (first.action == "background" and any(
            t.kind == "thing" for t in first.targets)) or first.action == "denoise" and then.action in (
            "smooth", "blur")) and all(t.kind == "whole" for t in then.targets)  # "noise in the sky, smooth it out"
        # (but "the flag is distracting, remove it" removes the flag)
        if first.value == "implied" and vague_fix:
            then.action = "remark"  # "it's too noisy, clean it up": the fix the description implies
        if first.value == then.value == "implied" and (first.attribute, first.direction) == (
                then.attribute, then.direction):
            then.action = "describe"  # "way too dark, I can barely see the foam": one change, said twice
        for edit, why in ((first, then), (then, first)):
            if why.action == "background" and why.value == "implied" and (edit.action == "background" or (
                    edit.scope == "except" and edit.action in ("blur", "adjust", "greyscale"))):
                why.action = "describe"  # "soften all of it except the mug; that shelf is so cluttered": why
        if first.action == "background" and first.value in ("blur", "implied") and then.action == "blur" and all(
                t.kind == "whole" for t in then.targets):
            then.action = "describe"  # "the stuff behind her is too busy, blur it out": the same blur
        if first.action == "background" and then.action == "recolour" and then.value and all(
                t.kind == "whole" for t in then.targets):
            first.value, then.action = then.value, "describe"  # "lose the background? white would be great"
        if first.action == "keep" and then.action not in ("keep", "undoable", "remark", "unknown") and all(
                t.kind == "whole" for t in then.targets):
            then.scope, then.excluded, first.action = "except", list(first.targets), "describe"
        elif then.action == "keep" and then.targets and all(fine_detail(t) for t in then.targets):
            then.action = "describe"  # "denoise it but keep the edges crisp": how the edit goes
        elif then.action == "keep" and first.action not in ("keep", "undoable", "remark", "unknown", "describe"):
            if not (first.scope == "only" and any(t.kind == "thing" and vocabulary().not_subject(t.head) is None
                                                  for t in first.targets)):  # "the box only, leave the grey": said
                first.excluded += [t for t in then.targets if t.kind != "whole" and not (  # twice
                    first.excluded and t.words.lower() in (*_PERSONAL, *_POINTERS, "they")) and t.head not in {
                    e.head for e in first.targets}]  # "he stays": the same; "only the cat": what is edited
            # "brighten the ground, leave the sky": everything but the sky
            first.scope = "except" if first.excluded else first.scope
            then.action = "describe"
        named = [t for t in first.targets if t.kind != "whole"]
        if named and then.scope == "whole" and then.targets and all(t.kind == "whole" for t in then.targets) and any(
                t.words.lower().split(" of ")[0] in rest for t in then.targets):
            then.scope, then.excluded = "except", named  # "blur her face & turn the rest black and white"
        if first.action == "undoable" and first.reason == vague and _between(instruction, first, then) in (
                ":", "-", "—", "–") and then.action not in ("undoable", "remark", "unknown", "describe", "named"):
            first.action = "describe"  # "make the cat pop: sharpen it and blur the background": how
        if first.action == "write" and then.action not in ("write", "undoable") and _text_settings(then, first):
            then.action = "describe"  # "add 'NEW' top left, red, big": how the words look
        if first.action in ("tint", "recolour") and then.value == "implied" and then.attribute in (
                "saturation", "temperature") and all(t.kind == "whole" for t in then.targets):
            then.action = "describe"  # "make the sky bluer, it's too grey": why
        if first.action == "style" and _describes_look(then):
            then.action = "describe"  # "a watercolour, soft and loose", "a vintage look, faded colours and all":
            # how the look is, not a change of its own
        if first.action == then.action == "remove" and first.targets and _points_back(then):
            then.action = "describe"  # "remove the writing, want it clean": the same removal
        if first.action == "remove" and _fills(then):
            then.action = "describe"  # "erase the rocket and fill in the sky": how the hole is filled
        if first.action == "remove" and then.action == "background" and then.value == "implied":
            then.action = "describe"  # "delete the model behind her, it is distracting": why it goes
        for removal, left in ((first, then), (then, first)):
            if removal.action == "remove" and _the_subject(removal) and (left.action == "background" and (
                    left.value or "").split()[:1] in (["blur"], ["empty"], ["implied"], ["clean"]) or left.action in (
                    "keep", "describe", "named") and any(t.kind == "background" or vocabulary().not_subject(
                        t.head) == "setting" for t in left.targets)):
                left.action = "describe"  # "remove the cat, I need just the blurry room": what is left
        if first.action == "named" and (all(t.kind == "whole" for t in then.targets) or then.targets == first.targets
                                         ) and then.action not in ("remark", "describe", "named", "unknown"):
            then.targets, first.action = first.targets, "describe"  # "the red stripes on the left - make them navy"
        if then.action == "named" and ({t.head for t in then.targets} <= {t.head for t in first.targets} or (
                first.targets and _between(instruction, first, then) in (":", "-", "—", "–", "("))):
            then.action = "describe"  # "dye her hair pink. Just the hair, obviously", "erase the lettering - the
            # name tag and the badge": which ones
        for said, sized in ((first, then), (then, first)):
            if said.action == sized.action == "rotate" and not said.amounts and sized.amounts:
                said.action = "describe"  # "it leans 4 degrees to the left, can you level it": one turn
        if then.action == "remark" and then.strength != 1.0 and first.strength == 1.0 and first.action in (
                *_REGION_CHANGES, "blur", "background") and all(t.kind == "whole" for t in then.targets):
            first.strength = then.strength  # "brighten it - subtle please", "warm it up, don't go too heavy"
        amount_only = then.action in ("remark", "unknown") and then.amounts and all(
            a.unit in ("factor", "percent") for a in then.amounts)
        if first.action == "adjust" and not first.amounts and amount_only:
            first.amounts, then.action = list(then.amounts), "describe"  # "pump the saturation up, roughly double"
        if then.action == first.action == "adjust" and (then.attribute, then.direction) == (
                first.attribute, first.direction) and then.value is None and _points_back(then):
            then.action = "describe"  # "a richer blue, more saturation in it": one change, said twice
        if then.action == first.action == "pad" and then.value == first.value and not then.amounts:
            first.qualities |= then.qualities  # "a thin frame round it. Just a narrow white edge": one border
            then.action = "describe"
        if then.action == first.action == "flip" and then.value == first.value:
            then.action = "describe"  # "a mirror image of it. Side to side, I mean": one flip, said twice
        if then.action == "greyscale" and then.scope == first.scope == "except" and (first.action == "greyscale" or (
                first.action, first.attribute, first.direction) == ("adjust", "saturation", -1)):
            then.action = "describe"  # "grey except the cat, so she's the only thing in colour": said twice
        if then.action == first.action in _ONCE and then.value in (None, "implied") and all(
                t.kind == "whole" for t in then.targets):
            then.action = "describe"  # "sharpen it hard, max crispness": the same change, said again
        described = first.value == "implied" and then.action != "describe" and [
            t for t in first.targets if t.kind != "whole"]
        if described and all(t.kind == "whole" and t.words.lower() in ("", *_POINTERS) for t in then.targets) and (
                then.action not in (
                "undoable", "remark", "unknown", "write", "rotate", "flip", "resize", "pad")):
            then.targets = list(first.targets)
            if then.value != "implied":
                first.action = "describe"  # (not "the sky looks washed out and flat": two problems, two fixes)
    return _asked_later(_covered(_cropped(clauses)))


def _cropped(clauses: list[Clause]) -> list[Clause]:
    """Losing what lies around the subject beside a crop to it ("crop tight on the cat, lose the empty space round
    the edges", "... lose the rest of the table", "... lose most of the empty sky") is what the crop does."""
    if any(c.action == "crop" and any(t.kind != "whole" for t in c.targets) for c in clauses):
        for clause in clauses:
            words = {t.word for t in tokens(clause.text)}
            around = all(t.kind == "background" or vocabulary().not_subject(t.head) == "setting" or t.head == "sky"
                         for t in clause.targets)
            if clause.action in ("remove", "background") and around and (
                    words & {"empty", "rest", "space", "dead", "most"} or clause.action == "remove"):
                clause.action = "describe"
    return clauses


def _asked_later(clauses: list[Clause]) -> list[Clause]:
    """A problem whose fix another clause asks for in so many words, anywhere in the request ("too dark and grainy,
    clean it up and make it brighter"), explains that clause."""
    for implied in [c for c in clauses if c.value == "implied" and c.action not in ("describe", "remark")]:
        if any(c is not implied and c.value != "implied" and (c.action, c.attribute, c.direction) == (
                implied.action, implied.attribute, implied.direction) for c in clauses):
            implied.action = "describe"
    return clauses


def _covered(clauses: list[Clause]) -> list[Clause]:
    """Removing things of the setting beside a new background ("a dark blue background, the flag must go", "cut her
    out onto white, no flag") asks nothing more: the new background covers them."""
    if any(c.action == "background" and c.value not in (None, "blur", "implied") or c.action == "isolate"
           for c in clauses):
        for clause in clauses:
            if clause.action == "remove" and clause.targets and all(vocabulary().not_subject(
                    t.head) == "setting" or (t.relation or "").startswith("behind") for t in clause.targets):
                clause.action = "describe"
    return clauses


def _explains(why: Clause, edit: Clause) -> bool:
    """Whether a problem said of the photo, "it" or the same thing is of the kind an edit of a named region already
    fixes: a colour complaint beside a recolour, harshness or noise beside a softening, softness beside a
    sharpening."""
    if why.value != "implied" or edit.value == "implied" or all(t.kind == "whole" for t in edit.targets):
        return False
    heads = {e.head for e in edit.targets}
    heads |= {"person", "she", "he"} if heads & {"face", "skin"} else set()
    if not all(t.kind == "whole" or t.head in heads or vocabulary().phrases.get((t.head,)) == [(
            "background_kinds",)] for t in why.targets):  # "the gradient looks muddy", "she's pale, warm her face"
        return False
    fix = why.attribute if why.action == "adjust" else why.action
    kinds = {"recolour": ("saturation", "contrast", "temperature"), "tint": ("saturation", "contrast", "temperature"),
             "blur": ("contrast", "smooth", "denoise"), "smooth": ("contrast", "smooth", "denoise"),
             "sharpen": ("sharpen",), "adjust": (edit.attribute, *(("saturation",) if edit.attribute == "temperature"
                                                                   else ()))}  # "pale, warm her face up"
    return fix in kinds.get(edit.action, ()) and not (fix == "contrast" and edit.action in ("blur", "smooth")
                                                     and why.direction > 0)


def _pronouns(clauses: list[Clause], animal_named: bool) -> list[Clause]:
    """An edit of "it" / "them" after a clause that only names or describes a thing ("there's a logo near the
    nose. remove it", "her suit is too loud, could it be navy") is an edit of that thing. With ``animal_named`` (a part
    only an animal has is named), "her" / "him" is the main subject."""
    named: list = []
    source = None
    for clause in clauses:
        things = [t for t in clause.targets if t.kind not in ("whole", "background")]
        if things and (clause.action in ("statement", "named", "remark") or clause.value == "implied"):  # what
            named, source = things, clause  # a statement is about ("the cup's too red, make it teal")
        elif clause.action in (*_NEEDS_A_THING, "adjust") and source is not None and _points_back(clause):
            clause.targets, source.action, source = list(named), "describe", None
        elif clause.action not in ("describe", "remark", "statement"):
            source = None
    for first, then in zip(clauses, clauses[1:], strict=False):
        if then.action == "recolour" and _points_back(then) and first.targets and all(t.kind == "background" for t in (
                first.targets)) and first.action in ("describe", "statement", "named", "remark"):
            then.action, then.targets = "background", []  # "grey backdrop is boring, swap it for flat mint"
        if then.action == "recolour" and not then.targets and any(t.kind == "thing" for t in first.targets):
            then.targets = list(first.targets)  # "can her hair go darker, more of a chocolate brown"
        if then.action == "crop" and _points_back(then) and first.action in _NEEDS_A_THING + _TONAL and any(
                t.kind != "whole" for t in first.targets):
            then.targets = list(first.targets)  # "box to red, and crop in close on it"
    for k, clause in enumerate(clauses):
        animal = next((t for c in reversed(clauses[:k]) for t in c.targets if _a_thing_itself(t) and not (
            t.head.endswith("s") and not t.head.endswith("ss"))), None)  # one thing, not "the shadows"
        animal = animal or (Target("the subject", "subject", "subject") if animal_named else None)
        if animal is not None and clause.targets and all(t.head == "person" and t.words.lower() in _PERSONAL
                                                         for t in clause.targets):
            clause.targets = [animal]  # "our cat looks fuzzy ... make her look clearer": her is the cat
        edit = next((c for c in reversed(clauses[:k]) if c.action not in ("named", "describe", "remark")), None)
        if clause.action == "named" and edit is not None and edit.action in _NEEDS_A_THING + _TONAL and (
                _points_back(edit) or not edit.targets):
            edit.targets, clause.action = list(clause.targets), "describe"  # "bump up its contrast - the rocket I
            # mean": which thing "it" was
        if clause.action == "named" and any({t.head for t in clause.targets} <= {t.head for t in c.targets}
                                            for c in clauses[:k] if c.action not in ("named", "describe")):
            clause.action = "describe"  # "could it be made a darker brown? Just her hair, mind": said again
        if clause.action in ("statement", "remark") and any(t.kind != "whole" for t in clause.targets):
            clause.action = "describe"  # what was said about the thing an edit then changes (or a remark)
    return clauses


def _corrected(clauses: list[Clause]) -> list[Clause]:
    """A change of mind ("make it red - no, actually blue", "purple - oh no, wait ... a dark green instead"): the
    value given after the correction replaces the one before it, and the clauses in between ask for nothing."""
    for i, clause in enumerate(clauses):
        if not _corrects(clause.text):
            continue
        earlier = next((c for c in reversed(clauses[:i]) if c.action in _VALUED and c.value), None)
        if earlier is None:
            continue
        last = None  # the last value said before another edit of a thing: "purple - oh no, wait, purple would
        for k, later in enumerate(clauses[i:], start=i):  # look silly. Let's say a dark green instead"
            if k > i and later.action not in _VALUED + ("describe", "remark", "statement", "named", "unknown"):
                break
            said = [span[2] for span in colour_spans([t.word for t in tokens(later.text)])]
            value = later.value if later.value not in (None, "implied") else said[-1] if said and earlier.action in (
                "recolour", "tint", "background") else None  # "a light blue would look cleaner"
            last = (k, value, later.wording) if value is not None else last
        if last is not None:
            earlier.value, earlier.wording = last[1], last[2]
            for between in clauses[i : last[0] + 1]:
                between.action = "describe"
    return clauses


def _corrects(text: str) -> bool:
    """Whether a clause starts by taking back what came before ("no, actually", "on second thoughts")."""
    words = [t.word for t in tokens(text)]
    starts = (["no", ","], ["no", "actually"], ["no", "wait"], ["oh", "no"], ["or", "no"], ["on", "second"],
              ["scratch", "that"], ["or", "rather"], ["wait", ","], ["actually", ","], ["no"])
    return any(words[: len(s)] == s for s in starts[:-1]) or words == ["no"]


def _a_thing_itself(target: Target) -> bool:
    """Whether a target names a thing of its own: not a person or a part of one, not the setting nor a part."""
    return target.kind == "thing" and target.head not in ("person", "face", "skin", "hair", "clothes") and (
        vocabulary().not_subject(target.head) is None)


def _the_subject(clause: Clause) -> bool:
    """Whether a clause's targets are a thing that may be the photo's main subject (no finder word, no setting)."""
    phrases = vocabulary().phrases
    return bool(clause.targets) and all(t.kind == "subject" or _a_thing_itself(t) and not any(
        m[0] == "finder_words" for m in phrases.get(tuple(t.head.split()), [])) for t in clause.targets)


def _describes_look(clause: Clause) -> bool:
    """Whether a clause after a look only says how the look is: a problem said plainly ("soft and loose") or a tone
    with no verb ("faded colours and all"), with no stress on it ("too", "more")."""
    said = [t.word for t in tokens(clause.text)]
    plain = clause.value == "implied" and clause.strength == 1.0 and not clause.targets or (
        clause.action == "adjust" and all(t.kind == "whole" for t in clause.targets) and not any(
            tag is not None and tag.has("verbs") for tag in vocabulary().tag(said)))
    return plain and not {"too", "so", "very", "really", "more", "less"} & set(said)


def _fills(clause: Clause) -> bool:
    """Whether a clause says how a hole is filled ("fill it in with the sky", "patch up the grey behind")."""
    said = [t.word for t in tokens(clause.text)]
    return clause.action not in ("write", "undoable") and any(
        tag is not None and tag.has("verbs", "fill") for tag in vocabulary().tag(said))


def _points_back(clause: Clause) -> bool:
    """Whether a clause's only target is "it" / "them" ("smooth it out", "make them red")."""
    said = {t.word for t in tokens(clause.text)} & set(_POINTERS)
    return bool(said) and all(t.kind == "whole" for t in clause.targets) and (not clause.targets or all(
        set(t.words.lower().split()) & set(_POINTERS) for t in clause.targets))


def _text_settings(clause: Clause, written: Clause) -> bool:
    """Whether ``clause`` only says how the words of ``written`` look ("red, big", "make it bigger", "white, fairly
    big, top left"); if so, they are set on ``written``."""
    vocab, words = vocabulary(), [t.word for t in tokens(clause.text) if t.kind != "punct"]
    tags, spans = vocab.tag(words), colour_spans(words)
    settings = ("places", ("text_overlay", "big"), ("text_overlay", "small"), ("text_overlay", "faint"), "strength",
                "filler", "pronouns", ("verbs", "change"), ("text_overlay", "nouns"))  # "red letters"
    plain = ("bigger", "smaller", "fairly", "quite", "pretty", "rather", "nice", "and", "actually", "instead")

    def setting(k: int) -> bool:
        return any(a <= k < b for a, b, _ in spans) or words[k] in plain or tags[k] is not None and any(
            tags[k].has(*([s] if isinstance(s, str) else s)) for s in settings)

    if not words or not all(setting(k) for k in range(len(words))):
        return False
    written.colour = spans[-1][2] if spans else written.colour
    written.qualities |= {q for q in ("big", "small", "faint") if any(
        t is not None and t.has("text_overlay", q) for t in tags)}
    written.qualities |= {"big"} if "bigger" in words else {"small"} if "smaller" in words else set()
    place = next((t.get("places")[1] for t in tags if t is not None and t.has("places")), None)  # type: ignore[index]
    written.place = place or written.place
    return True


def _between(instruction: str, first: Clause, then: Clause) -> str:
    """The punctuation between two clauses as written (":" in "make it pop: sharpen it")."""
    start = instruction.find(first.text) + len(first.text)
    end = instruction.find(then.text, start)
    return instruction[start:end].strip() if start >= len(first.text) and end >= 0 else ""


def read_clause(instruction: str, part: list[Token]) -> Clause:
    """One clause read from its tokens."""
    return ClauseReader(instruction, part).read()
