"""From a read clause to bricks: one function per action, each working from the clause's fields only.

Every function returns the new image reference and one sentence of reasoning, or raises ``Declined`` with the
clause in the user's words and what the profile can do instead (``grounding.decline``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from legoedit_core.planners.graph import Declined, Graph, NotCovered
from legoedit_core.planners.grounding import Region, decline, named, region, taken_as_subject
from legoedit_core.planners.reading import Clause, Target
from legoedit_core.planners.vocabulary import vocabulary

Planned = tuple[str, str]
# attribute -> (value when raised, value when lowered, neutral); ADJUST's factors and temperature offset
TONES: dict[str, tuple[float, float, float]] = {
    "brightness": (1.3, 0.75, 1.0), "contrast": (1.3, 0.75, 1.0), "saturation": (1.4, 0.6, 1.0),
    "temperature": (0.4, -0.4, 0.0),
}
_WARM = {"yellow", "orange", "red", "golden", "gold", "amber"}  # "more orange": a warmer cast over a whole photo
_CASTS = {"blue", "golden", "gold", "amber"}  # a whole photo in these is a cast; "make it red" names no part
_SKIN_OF = frozenset({"skin", "face", "faces", "person", "complexion", "cheeks", "forehead"})
_PLAIN_COLOURS = frozenset({"red", "orange", "yellow", "green", "blue", "purple", "pink", "brown", "grey", "gray"})


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _where(found: str, mask: str | None) -> str:
    return "the whole image" if mask is None else found


def _masked(mask: str | None) -> dict[str, Any]:
    return {} if mask is None else {"mask": mask}


def _require(graph: Graph, clause: Clause, brick: str, prompt: str, why: str, offers: str) -> None:
    """Decline the request unless ``brick`` on this profile understands ``prompt`` (a style, colour, background)."""
    if not graph.understands(brick, prompt):
        raise Declined(decline(clause, f"{why} on the {graph.profile} profile", f"{offers} {graph.needs(brick)}"))


def undoable(graph: Graph, clause: Clause, image: str) -> Planned:
    """A change no classical brick makes: its own generative brick (``brick`` in the vocabulary), else EDIT, where
    the profile has them; else the request is declined."""
    if clause.brick is not None and graph.can_run(clause.brick):
        node = graph.add(clause.brick, clause.brick.lower(), image=image, prompt=clause.condition)
        return f"@{node}.image", f"{clause.text!r} asks for {clause.reason}: {clause.brick} does it."
    if graph.can_run("EDIT"):
        node = graph.add("EDIT", "edit", image=image, prompt=clause.text)
        return f"@{node}.image", f"{clause.text!r} asks for {clause.reason}: EDIT, the generative editor, does it."
    raise Declined(decline(clause, f"it asks for {clause.reason}, which no brick on the {graph.profile} profile "
                                   "can do", clause.value or "a tone, style, background, text or crop change"))


def background(graph: Graph, clause: Clause, image: str) -> Planned:
    prompt = "blur" if clause.value == "implied" else clause.value or "white"  # "the clutter is distracting"
    _require(graph, clause, "CBG", prompt, f"CBG cannot do {prompt!r}", "its background brick uses")
    subject = graph.reuse("SOS", "subject", image=image)
    if prompt == "blur" and graph.strength != 1.0 and clause.value != "implied":  # "blur it heavily": that strength
        behind = graph.add("INVERSE", "background", mask=f"@{subject}.mask")
        radius = graph.scaled("region blur radius", [12, 8, 20])
        node = graph.add("BLUR", "blur", image=image, radius=radius, mask=f"@{behind}.mask")
        return f"@{node}.image", f"Blur what is behind the subject (radius {radius:g}): SOS, INVERSE, BLUR."
    node = graph.add("CBG", "background", image=image, mask=f"@{subject}.mask", prompt=prompt)
    return f"@{node}.image", f"The background becomes {prompt}: SOS keeps the subject, CBG replaces what is behind."


def greyscale(graph: Graph, clause: Clause, image: str) -> Planned:
    where = region(graph, clause, image, main_subject=clause.scope == "except")
    if graph.choose("greyscale tool", graph.runnable("GRAYSCALE", "ADJUST")) == "ADJUST":
        node, tool = graph.add("ADJUST", "gray", image=image, saturation=0.0, **_masked(where.mask)), "ADJUST"
    else:
        node, tool = graph.add("GRAYSCALE", "gray", image=image, **_masked(where.mask)), "GRAYSCALE"
    return f"@{node}.image", f"{_cap(_where(where.found, where.mask))} loses its colour: {tool}."


def style(graph: Graph, clause: Clause, image: str) -> Planned:
    look = clause.value or ""
    _require(graph, clause, "STYLE", look, f"no style brick draws {look!r}", "its STYLE brick draws")
    if clause.scope == "whole" and clause.targets and all(_drawn_whole(graph, t) for t in clause.targets):
        clause = replace(clause, targets=[])  # "a pencil sketch of the cat", "make him look like a sketch": the
        # photo of its subject, drawn ("cartoon just the cat" or "... but leave the background" draws the subject)
    where = region(graph, clause, image, main_subject=clause.scope == "except")
    own = [w for w in (clause.wording or "").split() if w.replace("colour", "color") not in look]
    said = f"{look}, {' '.join(own)}" if own else look  # "pencil sketch, charcoal": the brick's look first, then
    # the user's own word for it (a model brick reads both)
    node = graph.add("STYLE", "style", image=image, prompt=said, **_masked(where.mask))
    return f"@{node}.image", f"{_cap(_where(where.found, where.mask))} gets a {look} look: STYLE."


def _drawn_whole(graph: Graph, target: Target) -> bool:
    """Whether a look asked for ``target`` is the whole photo's: the photo's main subject, or him or her."""
    return target.kind == "subject" or target.words.lower() in ("him", "her", "he", "she") or (
        target.kind == "thing" and graph.settings.salient_as_named_subject and taken_as_subject(graph, target))


def remove(graph: Graph, clause: Clause, image: str) -> Planned:
    where = region(graph, clause, image)
    if where.mask is None:
        raise Declined(decline(clause, "it names nothing to remove", "name the thing, e.g. 'remove the text'"))
    return graph.erase(image, where.mask), f"Remove it: {where.found}, {graph.nodes[-1]['tool']} fills it in."


def _given(clause: Clause, unit: str, scale: float = 1.0) -> float | None:
    """A setting the user gave as a number ("radius 20", "20% strength"), in the brick's scale."""
    return next((round(a.value * scale, 3) for a in clause.amounts if a.unit == unit), None)


def blur(graph: Graph, clause: Clause, image: str) -> Planned:
    where = region(graph, clause, image, main_subject=clause.scope == "except")
    given = _given(clause, "radius")
    if where.mask is None:
        node = graph.add("BLUR", "blur", image=image, radius=given or graph.scaled("blur radius", [8, 5, 12]))
        return f"@{node}.image", "The whole image should be softer: BLUR."
    radius = given or graph.scaled("region blur radius", [12, 8, 20])
    node = graph.add("BLUR", "blur", image=image, radius=radius, mask=where.mask)
    return f"@{node}.image", f"Blur {where.found}: BLUR inside that region."


def hide(graph: Graph, clause: Clause, image: str) -> Planned:
    if not [t for t in clause.targets if t.kind != "whole"]:
        clause.targets = [Target("the faces", "face")]
    return blur(graph, clause, image)


def _detail_region(graph: Graph, clause: Clause, image: str) -> Region:
    """Where detail is sharpened or cleaned: what is named, or, for small parts no finder sees ("the whiskers",
    "the crema"), the whole photo, which carries them (a sharper photo has sharper whiskers)."""
    try:
        return region(graph, clause, image, main_subject=clause.scope == "except")
    except Declined:
        parts = [t for t in clause.targets if t.kind == "thing" and vocabulary().not_subject(t.head) in (
            "part", "surface")]
        if clause.scope != "whole" or not parts or len(parts) != len(clause.targets):
            raise
        return Region(None, f"the whole photo, which carries the {', '.join(named(t) for t in parts)}")


def sharpen(graph: Graph, clause: Clause, image: str) -> Planned:
    where = _detail_region(graph, clause, image)
    amount = _given(clause, "amount") or graph.scaled("sharpen amount", [1.0, 0.6, 1.5])
    node = graph.add("SHARPEN", "sharpen", image=image, amount=amount, **_masked(where.mask))
    return f"@{node}.image", f"Crisper detail in {_where(where.found, where.mask)}: SHARPEN."


def denoise(graph: Graph, clause: Clause, image: str) -> Planned:
    where = _detail_region(graph, clause, image)
    strength = _given(clause, "percent", 0.01) or min(1.0, graph.scaled("denoise strength", [0.4, 0.25, 0.6]))
    node = graph.add("SMOOTH", "denoise", image=image, strength=strength, **_masked(where.mask))
    return f"@{node}.image", f"Less noise and grain in {_where(where.found, where.mask)}: SMOOTH, which keeps edges."


def smooth(graph: Graph, clause: Clause, image: str) -> Planned:
    # skin smoothing acts on the skin of whoever is named ("her face", "his skin"); other things as named ("her hair");
    # "smooth it" smooths the whole image
    clause.targets = [Target(t.words, "skin", place=t.place) if t.head in _SKIN_OF else t for t in clause.targets]
    where = region(graph, clause, image)
    strength = _given(clause, "percent", 0.01) or min(1.0, graph.scaled("skin smoothing", [0.5, 0.35, 0.7]))
    node = graph.add("SMOOTH", "smooth", image=image, strength=strength, **_masked(where.mask))
    return f"@{node}.image", f"Smoother skin: {where.found}, SMOOTH evens it out while keeping edges."


def crop(graph: Graph, clause: Clause, image: str) -> Planned:
    ratio = next((a.value for a in clause.amounts if a.unit == "ratio"), None)
    if ratio is not None or clause.place == "center":
        return _crop_box(graph, clause, image, ratio)
    where = region(graph, clause, image)
    if where.mask is None:
        raise Declined(decline(clause, "it names nothing to crop to", "say what to keep ('crop to her face') or "
                                                                        "a shape ('crop to a square', '16:9')"))
    box = graph.add("BBOX", "box", mask=where.mask)
    node = graph.add("CROP", "crop", image=image, bbox=f"@{box}.bbox")
    return f"@{node}.image", f"Keep only what {where.found}: BBOX boxes it, CROP cuts the image to the box."


def _crop_box(graph: Graph, clause: Clause, image: str, ratio: float | None) -> Planned:
    width, height = graph.size
    aspect, keep = (width / height, 0.7) if ratio is None else (ratio, 1.0)
    if aspect <= 0:
        raise Declined(decline(clause, "that is not an aspect ratio", "say e.g. 'crop to 16:9'"))
    crop_w, crop_h = (width * keep, width * keep / aspect) if width / aspect <= height else (height * keep * aspect,
                                                                                            height * keep)
    crop_w, crop_h = round(min(crop_w, width)), round(min(crop_h, height))
    x0, y0 = (width - crop_w) // 2, (height - crop_h) // 2
    node = graph.add("CROP", "crop", image=image, bbox=[x0, y0, x0 + crop_w, y0 + crop_h])
    return f"@{node}.image", f"Crop around the middle to {crop_w}x{crop_h}: CROP."


def rotate(graph: Graph, clause: Clause, image: str) -> Planned:
    turn = next((a for a in clause.amounts if a.unit in ("degrees", "number")), None)
    if turn is None:
        raise Declined(decline(clause, "it does not say by how much", "say e.g. 'rotate 5 degrees clockwise'"))
    counter = turn.direction == "anticlockwise"
    angle = turn.value if counter else -turn.value  # ROTATE turns counter-clockwise; people mostly mean clockwise
    node = graph.add("ROTATE", "rotate", image=image, angle=angle)
    return f"@{node}.image", f"Turn by {turn.value:g} degrees {'anti' if counter else ''}clockwise: ROTATE."


def flip(graph: Graph, clause: Clause, image: str) -> Planned:
    node = graph.add("FLIP", "flip", image=image, direction=clause.value or "horizontal")
    return f"@{node}.image", f"A mirror image: FLIP {clause.value or 'horizontal'}ly."


def resize(graph: Graph, clause: Clause, image: str) -> Planned:
    width, height = graph.size
    pixels = {a.side: a.value for a in clause.amounts if a.unit in ("pixels", "number") and a.side}
    loose = next((a.value for a in clause.amounts if a.unit in ("pixels", "number") and not a.side), None)
    percent = next((a.value for a in clause.amounts if a.unit == "percent"), None)
    factor = next((a.value for a in clause.amounts if a.unit == "factor"), None)
    if pixels:
        inputs = {side: float(value) for side, value in pixels.items()}
    elif percent is not None:
        share = 100 + clause.direction * percent if clause.direction else percent
        inputs = {"width": float(round(width * share / 100))}
    elif factor is not None:
        inputs = {"width": float(round(width * factor))}
    elif loose is not None:
        inputs = {"width": float(loose)} if width >= height else {"height": float(loose)}
    elif clause.direction:
        inputs = {"width": float(round(width * (2.0 if clause.direction > 0 else 0.5)))}
    else:
        raise Declined(decline(clause, "it does not say the new size", "say e.g. '800 pixels wide' or 'half size'"))
    node = graph.add("RESIZE", "resize", image=image, **inputs)
    return f"@{node}.image", f"A new size ({', '.join(f'{k} {v:g}' for k, v in inputs.items())}): RESIZE."


def pad(graph: Graph, clause: Clause, image: str) -> Planned:
    percent = next((a.value for a in clause.amounts if a.unit == "percent"), None)
    widths = [0.08, 0.05, 0.12] if "thick" in clause.qualities else [0.03, 0.02, 0.05] if "thin" in clause.qualities \
        else [0.05, 0.03, 0.08]
    border = 0.0 if "border" not in clause.qualities else min(0.5, percent / 100) if percent is not None else (
        graph.choose("border width", widths))
    shape = "square" if "square" in clause.qualities else "same"
    node = graph.add("PAD", "pad", image=image, border=border, shape=shape, color=clause.value or "white")
    return f"@{node}.image", f"A {'square canvas' if shape == 'square' else 'border'} in {clause.value}: PAD."


def write(graph: Graph, clause: Clause, image: str) -> Planned:
    q = clause.qualities
    position = "tiled" if "tiled" in q else clause.place or ("center" if "watermark" in q else "bottom")
    position = {"left": "bottom-left", "right": "bottom-right"}.get(position, position)
    size = 0.2 if "big" in q else 0.05 if "small" in q else graph.choose("text size", [0.1, 0.08, 0.14])
    opacity = 0.35 if "faint" in q else 0.5 if "watermark" in q else 1.0
    colour = {"color": clause.colour} if clause.colour else {}
    if "replace" in q:  # new words in place of the old: the old text is erased first
        old = graph.reuse("RES", "seg_text", image=image, prompt="text")
        image = graph.erase(image, f"@{old}.mask")
    node = graph.add("TEXT", "text", image=image, prompt=clause.value, position=position, size=size,
                     opacity=opacity, **colour)
    return f"@{node}.image", f"The words {clause.value!r} go at the {position}: TEXT draws them."


def adjust(graph: Graph, clause: Clause, image: str) -> Planned:
    up, down, neutral = TONES[clause.attribute or "brightness"]
    target = up if clause.direction > 0 else down
    strength = graph.strength * graph.choose("adjust strength", [1.0, 0.6, 1.5])
    percent = next((a.value / 100 for a in clause.amounts if a.unit == "percent"), None)
    factor = next((a.value for a in clause.amounts if a.unit == "factor"), None)
    stops = next((a.value for a in clause.amounts if a.unit == "stops"), None)
    if stops is not None and clause.attribute in (None, "brightness"):  # "one stop darker": half the light
        value = round(2.0 ** (stops if clause.direction > 0 else -stops), 2)
    elif factor is not None and neutral:  # "cut the saturation in half", "double the contrast"
        value = round(factor, 2)
    elif percent is not None:  # "by 20%": a factor of 1.2 / 0.8, or that share of the full temperature shift
        value = round(neutral + (percent if clause.direction > 0 else -percent), 2)
    elif clause.direction < 0 and neutral:  # a factor lowered a lot shrinks geometrically and never reaches 0
        value = round(target ** strength, 2)
    else:
        value = round(neutral + (target - neutral) * strength, 2)
    if clause.attribute != "temperature":
        value = max(value, 0.05)
    where = region(graph, clause, image, main_subject=clause.scope == "except")
    node = graph.add("ADJUST", "adjust", image=image, **{clause.attribute or "brightness": value},
                     **_masked(where.mask))
    return f"@{node}.image", f"{clause.attribute} of {_where(where.found, where.mask)} to {value:g}: ADJUST."


def tint(graph: Graph, clause: Clause, image: str) -> Planned:
    colour = clause.value or ""
    where = region(graph, clause, image)
    if where.mask is None:
        if colour == "blue" or colour in _WARM:
            clause.attribute, clause.direction = "temperature", -1 if colour == "blue" else 1
            return adjust(graph, clause, image)
        raise Declined(decline(clause, f"the whole photo cannot be made {colour}er here",
                               "name the part to recolour, or say warmer or cooler"))
    node = graph.add("RCM", "recolor", image=image, mask=where.mask, prompt=colour)
    return f"@{node}.image", f"Towards {colour} in what {where.found}: RCM."


def recolour(graph: Graph, clause: Clause, image: str) -> Planned:
    colour = clause.value or ""
    _require(graph, clause, "RCM", colour, f"RCM cannot make {colour!r}", "its recolour brick uses")
    if any(t.words.lower() in ("them", "those", "these", "they") for t in clause.targets):
        raise Declined(decline(clause, "it does not say which things 'them' are", "name them, e.g. 'make her eyes "
                                                                                  "blue'"))
    where = region(graph, clause, image)
    if where.mask is None and colour in _CASTS:
        return tint(graph, clause, image)  # a blue or golden cast over the whole photo: its temperature
    if where.mask is None:
        raise Declined(decline(clause, "it names no part to recolour", "name it, e.g. 'make her coat red'"))
    shades = [colour, f"light {colour}", f"dark {colour}"] if colour in _PLAIN_COLOURS else [colour]
    shade = graph.choose("colour shade", shades)
    node = graph.add("RCM", "recolor", image=image, mask=where.mask, prompt=shade)
    things = ", ".join(named(t) for t in clause.targets)
    return f"@{node}.image", f"{_cap(things)} should become {shade}: {where.found}, RCM recolours it."


def remark(graph: Graph, clause: Clause, image: str) -> Planned:
    return image, f"{clause.text!r} asks for no edit."


def describe(graph: Graph, clause: Clause, image: str) -> Planned:
    return image, f"{clause.text!r} says what is wrong; the next clause says how to change it."


def unknown(graph: Graph, clause: Clause, image: str) -> Planned:
    if graph.can_run("EDIT"):
        node = graph.add("EDIT", "edit", image=image, prompt=clause.text)
        return f"@{node}.image", f"No specific brick fits {clause.text!r}: EDIT applies it to the whole image."
    raise Declined(decline(clause, "the rules planner does not understand this", "name an edit: brighter, more "
                           "contrast, a style, a new background, remove or recolour a named thing, add text"))


ACTIONS: dict[str, Callable[[Graph, Clause, str], Planned]] = {
    "undoable": undoable, "background": background, "greyscale": greyscale, "style": style, "remove": remove,
    "blur": blur, "hide": hide, "sharpen": sharpen, "denoise": denoise, "smooth": smooth, "crop": crop,
    "rotate": rotate, "flip": flip, "resize": resize, "pad": pad, "write": write, "adjust": adjust, "tint": tint,
    "recolour": recolour, "remark": remark, "statement": remark, "describe": describe, "unknown": unknown,
    "isolate": background, "keep": describe, "named": unknown,
}


def plan_clause(graph: Graph, clause: Clause, image: str) -> Planned:
    """The bricks for one clause, chained after ``image``."""
    if clause.action not in ACTIONS:
        raise NotCovered(f"no plan for the action {clause.action!r}")
    graph.strength = clause.strength
    return ACTIONS[clause.action](graph, clause, image)
