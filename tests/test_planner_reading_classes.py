"""Classes of wording the rules planner reads in general (issue 28, second pass): each test builds its own wordings,
none taken from an evaluation set, so a rule written for one sentence would not pass them."""

from __future__ import annotations

import numpy as np
import pytest

from legoedit_core.planners.base import PlanRequest
from legoedit_core.planners.reader import read
from legoedit_core.planners.rules import RulesPlanner
from legoedit_core.settings.planner import RulesSettings


def _plan(toolset, instruction, has_mask=False):
    image = np.zeros((100, 200, 3), np.uint8)
    return RulesPlanner(toolset, settings=RulesSettings()).plan(PlanRequest("x", image, instruction,
                                                                            has_mask=has_mask))


def _value(result, name):
    return next(n.inputs[name] for n in result.workflow.nodes if name in n.inputs)


@pytest.mark.parametrize(("instruction", "attribute", "low", "high"), [
    ("lift the exposure by 30%", "brightness", 1.29, 1.31),
    ("cut the contrast by 10 per cent", "contrast", 0.89, 0.91),
    ("saturation -25%", "saturation", 0.74, 0.76),
    ("vibrance +40%", "saturation", 1.39, 1.41),
])
def test_a_percent_on_a_tonal_word_sizes_the_change_and_never_resizes(cpu_toolset, instruction, attribute, low,
                                                                      high):
    result = _plan(cpu_toolset, instruction)
    assert result.ok and result.workflow.tools() == ["ADJUST"], result.error
    assert low <= _value(result, attribute) <= high


@pytest.mark.parametrize("instruction", ["far less contrast", "drop the saturation hugely", "dim it extremely"])
def test_a_strong_decrease_shrinks_the_factor_but_keeps_it_above_zero(cpu_toolset, instruction):
    result = _plan(cpu_toolset, instruction)
    assert result.ok, result.error
    value = next(v for n in result.workflow.nodes for k, v in n.inputs.items() if k in ("contrast", "saturation",
                                                                                          "brightness"))
    assert 0.1 < value < 0.7


@pytest.mark.parametrize("instruction", [
    "preserve the sky and brighten everything else",
    "leave her hair as is and cool down the rest",
    "do not touch her face, but sharpen the rest",
    "blur the sky & make the rest grey scale",
])
def test_what_is_kept_or_already_edited_is_left_out_of_the_rest(cpu_toolset, instruction):
    result = _plan(cpu_toolset, instruction)
    assert result.ok, result.error
    last = result.workflow.nodes[-1]
    inverse = next(n for n in result.workflow.nodes if n.tool == "INVERSE")
    assert last.inputs["mask"] == f"@{inverse.id}.mask"


def test_a_negated_verb_with_nothing_named_is_a_remark_not_an_exception(cpu_toolset):
    result = _plan(cpu_toolset, "don't crop it, just make it cooler")
    assert result.ok and result.workflow.tools() == ["ADJUST"], result.error


@pytest.mark.parametrize("instruction", ["warmer, but only a little", "brighter but just barely"])
def test_a_bare_but_before_a_hedge_is_a_conjunction(cpu_toolset, instruction):
    result = _plan(cpu_toolset, instruction)
    assert result.ok and result.workflow.tools() == ["ADJUST"], result.error


def test_desaturate_except_for_a_thing_keeps_its_object(cpu_toolset):
    result = _plan(cpu_toolset, "strip the colour from everything except for her hair")
    assert result.ok, result.error
    assert [n.tool for n in result.workflow.nodes][:2] == ["RES", "INVERSE"]


@pytest.mark.parametrize(("instruction", "words"), [
    ("type best wishes along the bottom", "best wishes"),
    ("write merry christmas at the top", "merry christmas"),
])
def test_the_unquoted_object_of_write_is_the_text(cpu_toolset, instruction, words):
    result = _plan(cpu_toolset, instruction)
    assert result.ok and result.workflow.tools() == ["TEXT"], result.error
    assert _value(result, "prompt") == words


def test_two_thing_colour_pairs_split_without_a_verb(cpu_toolset):
    reading = read("the jacket should be white, and her hair should be green")
    assert [(c.action, c.value) for c in reading.clauses] == [("recolour", "white"), ("recolour", "green")]
    assert reading.clauses[0].text == "the jacket should be white"  # no comma left on the clause's words
    result = _plan(cpu_toolset, "the jacket should be white, and her hair should be green")
    assert result.ok and result.workflow.tools() == ["RES", "RCM", "RES", "RCM"], result.error


@pytest.mark.parametrize(("instruction", "tools"), [
    ("the watermark has to go", ["RES", "INPAINT"]),
    ("inpaint the region I drew", ["INPAINT"]),
    ("a wee bit darker tbh", ["ADJUST"]),
    ("sharpen only her face and nothing else", ["RES", "SHARPEN"]),
    ("Step 1: mirror it. Step 2: add a grey border", ["FLIP", "PAD"]),
])
def test_everyday_wordings_of_known_edits(cpu_toolset, instruction, tools):
    result = _plan(cpu_toolset, instruction, has_mask="drew" in instruction)
    assert result.ok, result.error
    got = ["INPAINT" if t == "FASTINPAINT" else t for t in result.workflow.tools()]
    assert got == tools


def test_removing_what_no_finder_sees_is_still_declined_in_the_users_words(cpu_toolset):
    result = _plan(cpu_toolset, "the curtains have to go")
    assert not result.ok and "'the curtains have to go'" in result.error


@pytest.mark.parametrize("instruction", ["the signature in the lower left wants removing", "I'd like the words erased",
                                         "the writing should be wiped"])
def test_an_inflected_verb_is_read_as_its_plain_form(cpu_toolset, instruction):
    result = _plan(cpu_toolset, instruction)
    assert result.ok, result.error
    assert result.workflow.tools()[0] == "RES" and result.workflow.tools()[1] in ("INPAINT", "FASTINPAINT")


def test_the_words_after_a_text_noun_and_colon_are_the_text(cpu_toolset):
    result = _plan(cpu_toolset, "headline: grand opening, top")
    assert result.ok and result.workflow.tools() == ["TEXT"], result.error
    assert _value(result, "prompt") == "grand opening" and _value(result, "position") == "top"
    assert _plan(cpu_toolset, "crop it to 4:3").workflow.tools() == ["CROP"]  # a ratio's colon is no text


def test_a_bare_more_or_less_of_it_takes_its_change_from_the_description_before(cpu_toolset):
    result = _plan(cpu_toolset, "there is heaps of noise in this, lower it")
    assert result.ok and result.workflow.tools() == ["SMOOTH"], result.error
    alone = _plan(cpu_toolset, "lower it please")  # with nothing described, it names no change: declined
    assert not alone.ok and "'lower it please'" in alone.error


@pytest.mark.parametrize("instruction", ["soften everything apart from the picture",
                                         "grey out all of it but leave the image alone"])
def test_leaving_out_the_whole_image_is_declined_in_the_users_words(cpu_toolset, instruction):
    result = _plan(cpu_toolset, instruction)
    assert not result.ok and result.error.startswith(f"cannot do {instruction!r}")
    assert "leaves out the whole image" in result.error


def test_no_combination_of_verbs_scopes_and_targets_makes_the_planner_raise(cpu_toolset):
    """Every wording ends in a plan or a decline: an exception would fail the whole shard, not this row."""
    import itertools

    verbs = ["blur", "sharpen", "make grey", "brighten", "remove", "turn blue", "crop to"]
    scopes = ["", "everything except", "only", "all but", "the rest apart from"]
    targets = ["it", "the photo", "her face", "the sky", "the text", "the cup", "the marked area", "the background"]
    planner = RulesPlanner(cpu_toolset, settings=RulesSettings())
    image = np.zeros((64, 96, 3), np.uint8)
    for verb, scope, target in itertools.product(verbs, scopes, targets):
        instruction = " ".join(part for part in (verb, scope, target) if part)
        result = planner.plan(PlanRequest("x", image, instruction))
        assert result.ok or result.error, instruction
