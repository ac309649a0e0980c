"""Where a clause acts: its targets grounded in what this profile's finders can see.

What a finder can find is asked of the brick (``Toolset.backend_class("RES").understands(prompt)``), never copied
here: the classical CPU finder sees faces, people, skin, hair, clothes, sky, text, named colours and sides of the
frame; a model backend sees anything named. A thing no finder here sees is planned with what it can see when the
user's words say it (a colour: "the red apple" -> the red parts), with the salient object when the thing is plainly
the photo's main subject (a background swap, a crop to it, everything except it), or declined at planning time.
"""

from __future__ import annotations

from dataclasses import dataclass

import lemminflect

from legoedit_core.planners.graph import Declined, Graph, slug
from legoedit_core.planners.reading import Clause, Target, colour_spans
from legoedit_core.planners.vocabulary import vocabulary

_ARTICLES = ("the ", "a ", "an ")
_SCENE_EDITS = ("adjust", "greyscale", "style", "blur", "sharpen", "denoise", "smooth", "tint")  # of a whole region
_SCENERY = {"sky", "green"}  # what a finder finds that is the setting, never the main subject
_WHOLES = {"person", "people", "clothes"}  # what a finder finds that holds other things it finds (a face, hair)


@dataclass(frozen=True)
class Region:
    """A mask reference (None: the whole image) and how it was found, in plain words."""

    mask: str | None
    found: str


def named(target: Target) -> str:
    """The target in the user's words without a leading article ("the cup on the table" -> "cup on the table")."""
    words = target.words
    for article in _ARTICLES:
        if words.lower().startswith(article):
            return words[len(article) :]
    return words


def region(graph: Graph, clause: Clause, image: str, main_subject: bool = False) -> Region:
    """The region ``clause`` acts on: the whole image, its targets (several are united), or everything except its
    excluded targets. ``main_subject``: a single thing no finder sees may be the salient object."""
    targets = [_as_scene(t) if clause.action in _SCENE_EDITS else t for t in clause.targets if t.kind != "whole"]
    if clause.excluded and all(t.kind == "background" for t in targets):
        targets = []  # "brighten the ground, leave the sky": everything except the sky
    excluded = [t for t in clause.excluded if not (targets and t.kind == "background")]  # a named thing is not it
    if targets:  # "the fields but not the sky", "her but leave everything else": nothing inside what is changed
        excluded = [e for e in excluded if e.kind != "whole" and not all(_apart(graph, t, e) for t in targets)]
    if clause.scope == "except" and excluded:
        kept = unite(graph, clause, excluded, image, main_subject=True)
        if kept.mask is None:  # what is left out is the whole image: the change would touch nothing
            raise Declined(decline(clause, "it leaves out the whole image, so nothing would change",
                                   "name the part to leave as it is, e.g. 'everything except her face'"))
        chosen = unite(graph, clause, targets, image, main_subject) if targets else Region(None, "")
        if chosen.mask is None:
            return Region(graph.inverse(kept.mask, "except"), f"everything except what {kept.found}")
        # X except Y = not (not X or Y): the bricks have UNION and INVERSE
        outside = graph.add("INVERSE", "outside", mask=chosen.mask)
        either = graph.add("UNION", "outside_or_kept", mask=f"@{outside}.mask", other=kept.mask)
        inverse = graph.add("INVERSE", "except", mask=f"@{either}.mask")
        return Region(f"@{inverse}.mask", f"what {chosen.found}, except what {kept.found}")
    if not targets:
        return Region(None, "the whole image")
    return unite(graph, clause, targets, image, main_subject)


def unite(graph: Graph, clause: Clause, targets: list[Target], image: str, main_subject: bool) -> Region:
    """One mask for several targets (UNION of each one's mask). Parts named beside their subject ("the cup and
    saucer") are inside the subject's mask, so such a group is the subject alone."""
    subjects = [t for t in targets if t.kind == "thing" and taken_as_subject(graph, t)]
    if len(targets) > 1 and len(subjects) == 1 and all(t in subjects or _part(t) for t in targets):
        targets = subjects[:1]
    if len(targets) > 1 and not all(_part(t) for t in targets):
        targets = [t for t in targets if not _part(t)]  # "the red cup and saucer": the saucer comes with the cup
    found = [locate(graph, clause, t, image, len(targets) == 1, main_subject) for t in targets]
    if any(r.mask is None for r in found):
        return Region(None, "the whole image")
    masks = list(dict.fromkeys(r.mask for r in found))  # one thing named twice is one mask
    mask = masks[0]
    assert mask is not None
    for other in masks[1:]:
        mask = f"@{graph.add('UNION', 'both', mask=mask, other=other)}.mask"
    return Region(mask, "; ".join(dict.fromkeys(r.found for r in found)))


def locate(graph: Graph, clause: Clause, target: Target, image: str, single: bool = True,
           main_subject: bool = False) -> Region:
    """One target's mask: the user's mask, the salient object (the subject, or everything but it for the
    background), or what RES can find of it; Declined when nothing here can find it. A ``single`` thing no finder
    sees is the photo's main subject (the salient object) unless the vocabulary says it is the setting or a part
    of something, or the settings turn that off (then only where it is the ``main_subject`` of the edit)."""
    if target.kind == "whole":
        return Region(None, "the whole image")
    if target.kind == "marked":
        if not graph.has_mask:
            raise Declined(decline(clause, "no region was marked with this request",
                                   "draw a mask, or name the thing to edit"))
        return Region("@input.mask", "the region the user marked")
    if target.kind in ("subject", "background"):
        subject = graph.reuse("SOS", "subject", image=image)
        if target.kind == "subject":
            return Region(f"@{subject}.mask", "SOS finds the main subject")
        inverse = graph.add("INVERSE", "background", mask=f"@{subject}.mask")
        return Region(f"@{inverse}.mask", "SOS finds the subject and INVERSE takes everything behind it")
    thing = named(target)
    prompt = finder_prompt(graph, target)
    role = vocabulary().not_subject(target.head)
    options = ["RES"] if prompt is not None else []
    plural = role is None and target.head != _singular(target.head)  # one salient object is not several things
    alone = single and not (target.relation and role != "surface" or target.place or plural)  # "the fur on the cat"
    if prompt is None and role not in ("setting", "part") and alone and graph.can_run("SOS") and (
            main_subject or graph.settings.salient_as_named_subject):
        options.append("SOS")
    if not options:
        raise Declined(cannot_find(graph, clause, thing, role))
    if graph.choose(f"locate {thing}", options) == "RES":
        assert prompt is not None
        node = graph.reuse("RES", "seg_" + slug(prompt), image=image, prompt=prompt)
        how = f"RES finds {prompt}" if target.head in prompt else (
            f"RES finds {prompt!r}, the part of {thing!r} the finder here can see")
        return Region(f"@{node}.mask", how)
    node = graph.reuse("SOS", "subject", image=image)
    graph.note(node, f"approximation: {thing!r} is taken as the photo's main subject, the salient object; RES "
                     f"cannot find it on the {graph.profile} profile (planner.rules.salient_as_named_subject)")
    return Region(f"@{node}.mask", f"{thing} is taken as the photo's main subject: the salient object (SOS)")


def _singular(word: str) -> str:
    """The noun's singular form ("cows" -> "cow"); a word lemminflect does not know as a noun stays as it is."""
    lemmas = lemminflect.getAllLemmas(word).get("NOUN", (word,))
    return word if word in lemmas else lemmas[0]


def taken_as_subject(graph: Graph, target: Target) -> bool:
    """Whether a thing named is the photo's main subject: no finder sees it and it is no part of a thing or the
    setting ("the cat", "the box", never "the sky", "the saucer", "the towers")."""
    return finder_prompt(graph, target) is None and vocabulary().not_subject(target.head) in (None, "surface") and (
        not target.relation)


def _apart(graph: Graph, target: Target, left_out: Target) -> bool:
    """Whether ``left_out`` cannot lie inside ``target``: two different things a finder sees ("the grass", "the
    sky"), or a part of the setting beside a thing named."""
    if target.kind != "thing" or left_out.kind != "thing":
        return False
    if vocabulary().not_subject(left_out.head) == "setting":
        return True
    mine, theirs = finder_prompt(graph, target), finder_prompt(graph, left_out)
    if (mine is None) != (theirs is None) and (mine or theirs or "").split()[0] in _SCENERY:
        return True  # the sky is never part of the main subject, nor the main subject of the sky
    return mine is not None and theirs is not None and mine.split()[0] != theirs.split()[0] and not (
        {mine.split()[0], theirs.split()[0]} & _WHOLES)


def _as_scene(target: Target) -> Target:
    """A part of the setting no finder sees ("the table", "the ground") in a tonal edit is what lies behind the main
    subject: the background."""
    if target.kind != "thing" or vocabulary().not_subject(target.head) != "setting" or target.place:
        return target
    return Target(target.words, "background", "background")


def _part(target: Target) -> bool:
    return vocabulary().not_subject(target.head) == "part"


def finder_prompt(graph: Graph, target: Target) -> str | None:
    """What to ask RES for: the finder's own word for a thing it knows by another name ("logo", "caption" ->
    "text"), else the target's words where the finder here sees them (its head word decides: "the coat"), else
    the finder's word for that kind of thing, else a colour the user named for it ("the red apple" -> "red");
    None when the finder sees none of them."""
    place = f" on the {target.place.replace('-', ' ')}" if target.place else ""
    place += f" '{target.name}'" if target.name else ""  # the words it carries: the finder keeps those lines
    relation = f" {target.relation}" if target.relation and not _is_text(target) else ""  # text is found anywhere
    if target.head == "sky" and relation.split()[:1] in (["behind"], ["above"], ["over"]):
        relation = ""  # "the sky behind it", "the sky above the rocket": the sky is only ever there
    words = " ".join([*target.modifiers, target.head])
    tag = vocabulary().tag(target.head.split())[0]
    tag = tag if tag is not None and tag.end == len(target.head.split()) else None
    if tag is None or not tag.has("finder_words"):  # "the text strip": the finder's word among the modifiers
        tag = next((t for t in vocabulary().tag(list(target.modifiers)) if t is not None and t.has("finder_words")),
                   tag)
    same = tag.get("finder_words", "same") if tag is not None else None
    kind = tag.get("finder_words", "kinds") if tag is not None else None
    candidates = [f"{same[2]}{place}{relation}"] if same else []
    if graph.understands("RES", target.head) and graph.understands("RES", target.head + relation):
        candidates.append(f"{words}{place}{relation}")
    if kind:
        candidates.append(f"{kind[2]}{place}{relation}")
    colours = colour_spans(list(target.modifiers))
    candidates += [f"{colour}{place}{relation}" for _, _, colour in colours]
    if "behind" in relation.split() and (colours or colour_spans([target.head])):  # "the red stripes on the flag
        candidates += [f"{colour}{place}" for _, _, colour in colours or colour_spans([target.head])]  # behind
        # her": the red parts; where they are is said in words the finder cannot read
    return next((c for c in candidates if graph.understands("RES", c)), None)


def _is_text(target: Target) -> bool:
    tag = vocabulary().tag(target.head.split())[0]
    return tag is not None and tag.get("finder_words", "same") == ("finder_words", "same", "text")


def cannot_find(graph: Graph, clause: Clause, thing: str, role: str | None = None) -> str:
    """The decline for a thing no finder here sees, in the user's words, with what would work instead."""
    instead = f"its finder (RES) sees {graph.needs('RES')}"
    if graph.can_run("SOS"):
        instead += "; the salient object (SOS) stands only for the photo's main subject ('the subject')"
    why = {"setting": ", and it is part of the setting, not the photo's main subject",
           "part": ", and it is a part of something, not the photo's main subject"}.get(role or "", "")
    return decline(clause, f"cannot locate {thing!r} on the {graph.profile} profile{why}", instead)


def decline(clause: Clause, why: str, instead: str) -> str:
    """One line: the clause as the user wrote it, why it cannot be done, and what can be done instead."""
    return f"cannot do {clause.text!r}: {why}. Instead: {instead}"
