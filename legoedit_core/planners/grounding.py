"""Where a clause acts: its targets grounded in what this profile's finders can see.

What a finder can find is asked of the brick (``Toolset.backend_class("RES").understands(prompt)``), never copied
here: the classical CPU finder sees faces, people, skin, hair, clothes, sky, text, named colours and sides of the
frame; a model backend sees anything named. A thing no finder here sees is planned with what it can see when the
user's words say it (a colour: "the red apple" -> the red parts), with the salient object when the thing is plainly
the photo's main subject (a background swap, a crop to it, everything except it), or declined at planning time.
"""

from __future__ import annotations

from dataclasses import dataclass

from legoedit_core.planners.graph import Declined, Graph, slug
from legoedit_core.planners.reading import Clause, Target, colour_spans
from legoedit_core.planners.vocabulary import vocabulary

_ARTICLES = ("the ", "a ", "an ")


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
    targets = [t for t in clause.targets if t.kind != "whole"]
    excluded = [t for t in clause.excluded if not (targets and t.kind == "background")]  # a named thing is not it
    if clause.scope == "except" and excluded:
        kept = unite(graph, clause, excluded, image, main_subject=True)
        if kept.mask is None:  # what is left out is the whole image: the change would touch nothing
            raise Declined(decline(clause, "it leaves out the whole image, so nothing would change",
                                   "name the part to leave as it is, e.g. 'everything except her face'"))
        chosen = unite(graph, clause, targets, image, main_subject) if targets else Region(None, "")
        if chosen.mask is None:
            inverse = graph.add("INVERSE", "except", mask=kept.mask)
            return Region(f"@{inverse}.mask", f"everything except what {kept.found}")
        # X except Y = not (not X or Y): the bricks have UNION and INVERSE
        outside = graph.add("INVERSE", "outside", mask=chosen.mask)
        either = graph.add("UNION", "outside_or_kept", mask=f"@{outside}.mask", other=kept.mask)
        inverse = graph.add("INVERSE", "except", mask=f"@{either}.mask")
        return Region(f"@{inverse}.mask", f"what {chosen.found}, except what {kept.found}")
    if not targets:
        return Region(None, "the whole image")
    return unite(graph, clause, targets, image, main_subject)


def unite(graph: Graph, clause: Clause, targets: list[Target], image: str, main_subject: bool) -> Region:
    """One mask for several targets (UNION of each one's mask)."""
    found = [locate(graph, clause, t, image, len(targets) == 1, main_subject) for t in targets]
    if any(r.mask is None for r in found):
        return Region(None, "the whole image")
    mask = found[0].mask
    assert mask is not None
    for other in found[1:]:
        mask = f"@{graph.add('UNION', 'both', mask=mask, other=other.mask)}.mask"
    return Region(mask, "; ".join(r.found for r in found))


def locate(graph: Graph, clause: Clause, target: Target, image: str, single: bool = True,
           main_subject: bool = False) -> Region:
    """One target's mask: the user's mask, the salient object (the subject, or everything but it for the
    background), or what RES can find of it; Declined when nothing here can find it. A ``single`` thing no finder
    sees is the salient object where it is the ``main_subject`` of the edit, or where the settings say so."""
    if target.kind == "whole":
        return Region(None, "the whole image")
    if target.kind == "marked":
        if not graph.has_mask:
            raise Declined(decline(clause, "no region was marked with this request",
                                   "draw a mask, or name the thing to edit"))
        return Region("@input.mask", "the region the user marked")
    if target.kind in ("subject", "background"):
        subject = graph.add("SOS", "subject", image=image)
        if target.kind == "subject":
            return Region(f"@{subject}.mask", "SOS finds the main subject")
        inverse = graph.add("INVERSE", "background", mask=f"@{subject}.mask")
        return Region(f"@{inverse}.mask", "SOS finds the subject and INVERSE takes everything behind it")
    thing = named(target)
    prompt = finder_prompt(graph, target)
    options = ["RES"] if prompt is not None else []
    salient = single and graph.can_run("SOS") and not target.relation
    main = salient and main_subject and prompt is None
    if main or salient and graph.settings.salient_as_named_subject:
        options.append("SOS")
    if not options:
        raise Declined(cannot_find(graph, clause, thing))
    if graph.choose(f"locate {thing}", options) == "RES":
        assert prompt is not None
        node = graph.add("RES", "seg_" + slug(prompt), image=image, prompt=prompt)
        how = f"RES finds {prompt}" if target.head in prompt else (
            f"RES finds {prompt!r}, the part of {thing!r} the finder here can see")
        return Region(f"@{node}.mask", how)
    node = graph.add("SOS", "subject", image=image)
    if not main:
        graph.note(node, f"approximation: the salient object stands in for {thing!r}, which RES cannot find on the "
                         f"{graph.profile} profile (planner.rules.salient_as_named_subject)")
        return Region(f"@{node}.mask", f"RES cannot find {thing} on the {graph.profile} profile, so as configured "
                                       "the salient object (SOS) stands in for it")
    return Region(f"@{node}.mask", f"{thing} is the photo's main subject here: SOS finds it")


def finder_prompt(graph: Graph, target: Target) -> str | None:
    """What to ask RES for: the finder's own word for a thing it knows by another name ("logo", "caption" ->
    "text"), else the target's words where the finder here sees them (its head word decides: "the coat"), else
    the finder's word for that kind of thing, else a colour the user named for it ("the red apple" -> "red");
    None when the finder sees none of them."""
    place = f" on the {target.place.replace('-', ' ')}" if target.place else ""
    place += f" '{target.name}'" if target.name else ""  # the words it carries: the finder keeps those lines
    relation = f" {target.relation}" if target.relation else ""
    words = " ".join([*target.modifiers, target.head])
    tag = vocabulary().tag(target.head.split())[0]
    tag = tag if tag is not None and tag.end == len(target.head.split()) else None
    same = tag.get("finder_words", "same") if tag is not None else None
    kind = tag.get("finder_words", "kinds") if tag is not None else None
    candidates = [f"{same[2]}{place}{relation}"] if same else []
    if graph.understands("RES", target.head) and graph.understands("RES", target.head + relation):
        candidates.append(f"{words}{place}{relation}")
    if kind:
        candidates.append(f"{kind[2]}{place}{relation}")
    colours = colour_spans(list(target.modifiers))
    candidates += [f"{colour}{place}{relation}" for _, _, colour in colours]
    return next((c for c in candidates if graph.understands("RES", c)), None)


def cannot_find(graph: Graph, clause: Clause, thing: str) -> str:
    """The decline for a thing no finder here sees, in the user's words, with what would work instead."""
    instead = f"its finder (RES) sees {graph.needs('RES')}"
    if graph.can_run("SOS"):
        instead += "; say 'the subject' to edit the main object, or set planner.rules.salient_as_named_subject"
    return decline(clause, f"cannot locate {thing!r} on the {graph.profile} profile", instead)


def decline(clause: Clause, why: str, instead: str) -> str:
    """One line: the clause as the user wrote it, why it cannot be done, and what can be done instead."""
    return f"cannot do {clause.text!r}: {why}. Instead: {instead}"
