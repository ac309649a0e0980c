"""The rules planner reads what people write: one typed reading per instruction, every clause planned or the whole
request declined naming it in the user's words, spelling against a real word list, targets grounded in what the
finder declares. Every wording here is written for this file (none is taken from an evaluation set)."""

from __future__ import annotations

import numpy as np
import pytest

from legoedit_core.planners.base import PlanRequest
from legoedit_core.planners.embeddings import Embeddings, NumpyMiniLM, bundled_model_path
from legoedit_core.planners.exemplars import ExemplarRanker
from legoedit_core.planners.reader import read
from legoedit_core.planners.reading import Amount
from legoedit_core.planners.rules import RulesPlanner
from legoedit_core.planners.vocabulary import spell
from legoedit_core.settings.planner import RulesSettings


def _plan(toolset, instruction, size=(200, 100), has_mask=False, **settings):
    image = np.zeros((size[1], size[0], 3), np.uint8)
    planner = RulesPlanner(toolset, settings=RulesSettings(**settings))
    return planner.plan(PlanRequest("x", image, instruction, has_mask=has_mask))


def _literals(result):
    return {k: v for n in result.workflow.nodes for k, v in n.inputs.items() if not str(v).startswith("@")}


def _source(workflow, node_id, port="mask"):
    """The node a port's reference comes from."""
    return workflow.node(workflow.node(node_id).inputs[port].split(".")[0][1:])


# ------------------------------------------------------------------------------------------------ scope / except


def test_everything_except_a_thing_edits_the_inverse_of_that_thing(cpu_toolset):
    result = _plan(cpu_toolset, "turn everything monochrome except her face")
    assert result.ok, result.error
    inverse = _source(result.workflow, "gray")
    assert inverse.tool == "INVERSE" and _source(result.workflow, inverse.id).inputs["prompt"] == "face"
    subject = _plan(cpu_toolset, "soften everything apart from the hedgehog")  # the photo's main subject: SOS
    assert subject.ok and subject.workflow.tools() == ["SOS", "INVERSE", "BLUR"]


def test_only_a_region_is_edited_when_only_it_is_named(cpu_toolset):
    result = _plan(cpu_toolset, "lift the brightness of only the sky a little")
    assert result.ok and result.workflow.tools() == ["RES", "ADJUST"]
    assert _source(result.workflow, "adjust").inputs["prompt"] == "sky"
    assert 1.0 < _literals(result)["brightness"] < 1.3


def test_a_thing_except_another_is_the_first_without_the_second(cpu_toolset):
    result = _plan(cpu_toolset, "pixelate every face apart from the person on the right")
    assert result.ok, result.error
    assert result.workflow.tools() == ["RES", "RES", "INVERSE", "UNION", "INVERSE", "BLUR"]
    assert [n.inputs["prompt"] for n in result.workflow.nodes if n.tool == "RES"] == ["person on the right", "face"]
    kept = _plan(cpu_toolset, "keep the yellow, turn everything else grey scale")
    assert kept.ok and kept.workflow.tools() == ["RES", "INVERSE", "GRAYSCALE"]


# ------------------------------------------------------------------------------------- region-relative colour


@pytest.mark.parametrize(("instruction", "tools", "literal"), [
    ("that sky is so washed out, can you make it bluer", ["RES", "RCM"], ("prompt", "blue")),
    ("her hair seems too dark, lighten it", ["RES", "ADJUST"], ("brightness", 1.3)),
])
def test_a_described_region_gets_the_change_in_the_direction_asked(cpu_toolset, instruction, tools, literal):
    result = _plan(cpu_toolset, instruction)
    assert result.ok, result.error
    assert result.workflow.tools() == tools
    assert _literals(result)[literal[0]] == literal[1]
    assert result.workflow.nodes[-1].inputs["mask"].startswith("@seg_")  # the region, not the whole photo


# ---------------------------------------------------------------------------------- compounds with an undoable


@pytest.mark.parametrize(("instruction", "clause"), [
    ("write 'Hello' at the top and give the cat a crown", "give the cat a crown"),
    ("Brighten it a touch, then make the man frown", "make the man frown"),
    ("crop it square and turn the scene into winter", "turn the scene into winter"),
])
def test_a_request_with_an_undoable_clause_is_declined_whole_naming_it(cpu_toolset, instruction, clause):
    result = _plan(cpu_toolset, instruction)
    assert not result.ok and result.workflow is None
    assert f"cannot do {clause!r}" in result.error and "Instead:" in result.error


@pytest.mark.parametrize(("instruction", "tools"), [
    ("go black and white and add a thin grey border", ["GRAYSCALE", "PAD"]),
    ("boost contrast + sharpen", ["ADJUST", "SHARPEN"]),
    ("make her shirt teal and her coat navy", ["RES", "RCM", "RES", "RCM"]),
    ("background light grey & write 'SALE' at the top", ["SOS", "CBG", "TEXT"]),
    ("warm it up while keeping the sky as it is", ["RES", "INVERSE", "ADJUST"]),
])
def test_every_clause_of_a_compound_is_planned(cpu_toolset, instruction, tools):
    result = _plan(cpu_toolset, instruction)
    assert result.ok, result.error
    assert result.workflow.tools() == tools


def test_chatter_is_accounted_for_and_never_planned(cpu_toolset):
    result = _plan(cpu_toolset, "make it warmer, thanks so much!")
    assert result.ok and result.workflow.tools() == ["ADJUST"]
    assert "asks for no edit" in result.reasoning


# --------------------------------------------------------------------------------------------------- close styles


@pytest.mark.parametrize(("instruction", "prompt"), [
    ("a coloured pencil version", "colour pencil"),
    ("do it as a pencil drawing", "pencil sketch"),
    ("make it look like a watercolor", "watercolor"),
    ("an anime look please", "cartoon"),
])
def test_close_styles_stay_apart(cpu_toolset, instruction, prompt):
    result = _plan(cpu_toolset, instruction)
    assert result.ok and result.workflow.tools() == ["STYLE"]
    said = _literals(result)["prompt"]
    assert said == prompt or said.startswith(f"{prompt}, ")  # the brick's look first, then the user's own word


@pytest.mark.parametrize(("instruction", "literals"), [
    ("add a label that says Fresh Bread in the top right", {"prompt": "Fresh Bread", "position": "top-right"}),
    ("stamp COPY in blue across the bottom", {"prompt": "COPY", "color": "blue", "position": "bottom"}),
])
def test_words_to_write_are_kept_as_written(cpu_toolset, instruction, literals):
    result = _plan(cpu_toolset, instruction)
    assert result.ok and result.workflow.tools() == ["TEXT"], result.error
    assert literals.items() <= _literals(result).items()


def test_a_darker_shade_is_a_colour_not_a_tone(cpu_toolset):
    result = _plan(cpu_toolset, "give her coat a lighter green")
    assert result.ok and result.workflow.tools() == ["RES", "RCM"] and _literals(result)["prompt"] == "light green"


def test_colourising_is_declined_not_given_a_filter(cpu_toolset):
    result = _plan(cpu_toolset, "colourise my grandad's old portrait")
    assert not result.ok and "colourising" in result.error and "sepia" in result.error


# --------------------------------------------------------------------------------------------------------- spelling


def test_only_tokens_that_are_not_words_are_corrected():
    assert spell("older") == "older" and spell("colder") == "colder" and spell("wooden") == "wooden"
    assert spell("blurr") == "blur" and spell("backgrund") == "background" and spell("brigthen") == "brighten"


def test_a_real_word_keeps_its_meaning(cpu_toolset):
    older = _plan(cpu_toolset, "make the man look older")
    assert not older.ok and "age" in older.error  # not a colour-temperature change
    blurred = _plan(cpu_toolset, "blurr the backgrnd")
    assert blurred.ok and _literals(blurred)["prompt"] == "blur"


# -------------------------------------------------------------------------------------------------- amounts


@pytest.mark.parametrize(("instruction", "tool", "literals"), [
    ("tilt the picture 12 degrees anticlockwise", "ROTATE", {"angle": 12.0}),
    ("turn it 30° clockwise", "ROTATE", {"angle": -30.0}),
    ("halve its size", "RESIZE", {"width": 100.0}),
    ("make the picture twice as big", "RESIZE", {"width": 400.0}),
    ("scale it to 40 percent", "RESIZE", {"width": 80.0}),
    ("make it 640 px tall", "RESIZE", {"height": 640.0}),
])
def test_degrees_and_factors(cpu_toolset, instruction, tool, literals):
    result = _plan(cpu_toolset, instruction)
    assert result.ok, result.error
    assert result.workflow.tools() == [tool]
    assert literals.items() <= _literals(result).items()


def test_the_reading_is_typed():
    rotation, = read("spin it 45 degrees counter-clockwise").clauses
    assert rotation.action == "rotate" and rotation.amounts == [Amount(45.0, "degrees", "anticlockwise")]
    recolour, = read("paint the robins orange breast red").clauses
    target, = recolour.targets
    assert (recolour.action, recolour.value) == ("recolour", "red")
    assert (target.head, target.owner, target.modifiers) == ("breast", "robin", ("orange",))
    desaturate, = read("desaturate all of it apart from the kettle").clauses
    assert desaturate.scope == "except" and [t.head for t in desaturate.excluded] == ["kettle"]
    assert (desaturate.attribute, desaturate.direction) == ("saturation", -1)


def test_strength_words_scale_the_change(cpu_toolset):
    brightness = [_literals(_plan(cpu_toolset, text))["brightness"]
                  for text in ("a smidge lighter", "lighter", "lighter, a lot", "way way lighter")]
    assert 1.0 < brightness[0] < brightness[1] < brightness[2] <= brightness[3]


# ------------------------------------------------------------------------------------------- possessives, finder


@pytest.mark.parametrize(("instruction", "prompt"), [
    ("make the girls dress green", "dress"),
    ("recolour the woman's jacket yellow", "jacket"),
    ("paint the kittens white patch pink", "white"),  # the patch is found by the colour the user named
])
def test_possessives_with_and_without_apostrophe(cpu_toolset, instruction, prompt):
    result = _plan(cpu_toolset, instruction)
    assert result.ok, result.error
    assert result.workflow.nodes[0].inputs["prompt"] == prompt


def test_a_thing_the_finder_cannot_see_is_planned_by_what_it_can_or_declined(cpu_toolset):
    mug = _plan(cpu_toolset, "turn the red mug blue")
    assert mug.ok and mug.workflow.nodes[0].inputs["prompt"] == "red" and "'red mug'" in mug.reasoning
    teapot = _plan(cpu_toolset, "recolour the teapot purple")  # the photo's main subject, as far as it can tell
    assert teapot.ok and teapot.workflow.tools() == ["SOS", "RCM"] and "approximation" in teapot.workflow.nodes[0].note
    shelf = _plan(cpu_toolset, "recolour the shelf purple")  # the setting is never the salient object
    assert not shelf.ok and "cannot locate 'shelf' on the cpu profile" in shelf.error
    relation = _plan(cpu_toolset, "erase the vase next to the lamp")
    assert not relation.ok and "cannot locate" in relation.error
    logo = _plan(cpu_toolset, "get rid of the logo in the top left corner")
    assert logo.ok and logo.workflow.nodes[0].inputs["prompt"] == "text on the top left"


def test_text_named_by_its_words_is_asked_for_by_them(cpu_toolset):
    result = _plan(cpu_toolset, "erase the word CLOSED from the sign")
    assert result.ok and result.workflow.nodes[0].inputs["prompt"].startswith("text 'CLOSED'")


def test_messages_quote_the_users_words(cpu_toolset):
    result = _plan(cpu_toolset, "Make The Wall Orange; then Add A Unicorn")
    assert not result.ok
    assert "cannot do 'Make The Wall Orange'" in result.error and "cannot do 'Add A Unicorn'" in result.error
    assert "Instead:" in result.error and "\n" not in result.error


# --------------------------------------------------------------------------------------------- exemplar ranking


def test_numpy_minilm_matches_transformers():
    phrases = ["take the backdrop away", "delete what is behind", "paint the hat teal"]
    ours = NumpyMiniLM(bundled_model_path()).embed(phrases)
    reference = Embeddings(encoder="transformers").embed(phrases)
    assert np.allclose((ours * reference).sum(1), 1.0, atol=1e-4)


def test_exemplar_ranking_reads_and_declines(cpu_toolset):
    ranker = ExemplarRanker(Embeddings(encoder="numpy"))
    stronger, vague = ranker.rank(["the blacks should be deeper", "make it look fabulous"])
    assert stronger.confident and stronger.reading == {"action": "adjust", "attribute": "contrast", "direction": 1}
    assert vague.confident and vague.reading is None
    planner = RulesPlanner(cpu_toolset, ranker=ranker)
    image = np.zeros((64, 64, 3), np.uint8)
    intense = planner.plan(PlanRequest("a", image, "the blacks should be deeper"))
    assert intense.ok and _literals(intense)["contrast"] > 1.0
    mushy = planner.plan(PlanRequest("m", image, "it looks kind of mushy"))  # a statement that reads as a wish
    assert mushy.ok and mushy.workflow.tools() == ["SHARPEN"]
    fabulous = planner.plan(PlanRequest("b", image, "make it look fabulous"))
    assert not fabulous.ok and "names no edit" in fabulous.error
    lexical = RulesPlanner(cpu_toolset, settings=RulesSettings(understanding="lexical"))
    assert not lexical.plan(PlanRequest("c", image, "the blacks should be deeper")).ok


def test_one_ranker_serves_concurrent_planners(cpu_toolset):
    from concurrent.futures import ThreadPoolExecutor

    ranker = ExemplarRanker(Embeddings(encoder="numpy"), cache_size=3)  # small: the cache is cleared under load
    planner = RulesPlanner(cpu_toolset, ranker=ranker)
    image = np.zeros((32, 32, 3), np.uint8)
    wordings = ["the blacks should be deeper", "make it look fabulous", "full of speckles",
                "give it a cold blue feel", "a sketchbook version", "nobody should be recognisable"] * 4
    alone = [RulesPlanner(cpu_toolset, ranker=ExemplarRanker(Embeddings(encoder="numpy"))).plan(
        PlanRequest(str(i), image, text)) for i, text in enumerate(wordings[:6])]
    with ThreadPoolExecutor(4) as pool:
        together = list(pool.map(lambda item: planner.plan(PlanRequest(str(item[0]), image, item[1])),
                                 enumerate(wordings)))
    for index, result in enumerate(together):
        expected = alone[index % 6]
        assert (result.ok, result.error) == (expected.ok, expected.error)
        assert result.workflow == expected.workflow


def test_the_classical_finder_keeps_the_side_of_the_frame_it_is_told():
    from legoedit_core.bricks.cpu.referring import in_place

    selected = np.zeros((40, 80), bool)
    selected[5:15, 5:15] = selected[25:35, 60:70] = True  # one blob top left, one bottom right
    assert in_place(selected, ["text", "bottom", "right"])[30, 65]
    assert not in_place(selected, ["text", "bottom", "right"])[10, 10]
    assert in_place(selected, ["person", "left"]).sum() == 100
    assert np.array_equal(in_place(selected, ["text"]), selected)
