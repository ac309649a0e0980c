"""The rules planner reads instructions as people write them: slots survive rewording, strength words scale the
edit, exemplar ranking with the bundled MiniLM (in numpy, agreeing with transformers), and honest declines."""

from __future__ import annotations

import numpy as np
import pytest

from legoedit_core.planners.base import PlanRequest
from legoedit_core.planners.embeddings import Embeddings, NumpyMiniLM, bundled_model_path
from legoedit_core.planners.exemplars import ExemplarRanker
from legoedit_core.planners.reading import normalise, read_clause
from legoedit_core.planners.rules import RulesPlanner
from legoedit_core.settings.planner import RulesSettings


def _plan(toolset, instruction, size=(200, 100), has_mask=False, **settings):
    image = np.zeros((size[1], size[0], 3), np.uint8)
    planner = RulesPlanner(toolset, settings=RulesSettings(**settings))
    return planner.plan(PlanRequest("x", image, instruction, has_mask=has_mask))


def _literals(result):
    return {k: v for n in result.workflow.nodes for k, v in n.inputs.items() if not str(v).startswith("@")}


@pytest.mark.parametrize(("instruction", "tools", "literals"), [
    ("Blur the background so she stands out", ["SOS", "CBG"], {"prompt": "blur"}),
    ("Replace the background with pure white for the product page", ["SOS", "CBG"], {"prompt": "white"}),
    ("Remove the background and keep only the motorcycle", ["SOS", "CBG"], {"prompt": "white"}),
    ("Convert to black and white", ["GRAYSCALE"], {}),
    ("Add a SAMPLE watermark in the centre", ["TEXT"], {"prompt": "SAMPLE", "position": "center", "opacity": 0.5}),
    ("Change her jacket to burgundy", ["RES", "RCM"], {"prompt": "burgundy"}),
    ("pls make ur jaket burgandy, it's for the autumn range", ["RES", "RCM"], {"prompt": "burgundy"}),
    ("Her hair should be a copper red", ["RES", "RCM"], {"prompt": "copper red"}),
    ("she needs a grey background for the team page", ["SOS", "CBG"], {"prompt": "grey"}),
    ("what would it look like without the watermark?", ["RES", "INPAINT"], {"prompt": "text"}),
    ("can you hide her face?", ["RES", "BLUR"], {"prompt": "face"}),
    ("tiled watermark 'ACME' over the photo, semi transparent", ["TEXT"],
     {"prompt": "ACME", "position": "tiled", "opacity": 0.35}),
    ("erase what I selected", ["INPAINT"], {}),
])
def test_reworded_instructions_keep_their_slots(cpu_toolset, instruction, tools, literals):
    result = _plan(cpu_toolset, instruction, has_mask="selected" in instruction)
    assert result.ok, result.error
    assert result.workflow.tools() == tools
    assert literals.items() <= _literals(result).items()


@pytest.mark.parametrize(("instruction", "bbox"), [
    ("Crop to a square", [50, 0, 150, 100]),
    ("crop it to 16:9 please", [11, 0, 189, 100]),
    ("Crop to the centre", [30, 15, 170, 85]),
])
def test_crop_to_a_shape_crops_around_the_middle(cpu_toolset, instruction, bbox):
    result = _plan(cpu_toolset, instruction)
    assert result.ok, result.error
    assert result.workflow.tools() == ["CROP"]
    assert _literals(result)["bbox"] == bbox


def test_strength_words_scale_the_adjustment(cpu_toolset):
    brightness = [_literals(_plan(cpu_toolset, text))["brightness"]
                  for text in ("make it a bit brighter", "make it brighter", "make it much brighter")]
    assert 1.0 < brightness[0] < brightness[1] < brightness[2]
    sharpen = [_literals(_plan(cpu_toolset, text))["amount"] for text in ("sharpen slightly", "sharpen a lot")]
    assert sharpen[0] < 1.0 < sharpen[1]


@pytest.mark.parametrize(("instruction", "reason"), [
    ("Turn the player's head to the left", "pose"),
    ("rotate her head slightly to the right", "pose"),
    ("Make her smile", "expression"),
    ("add sunglasses", "adding something"),
    ("make her jacket look like leather", "material"),
    ("paint it like van gogh", "style"),
    ("make the astronaut wave", "pose"),
])
def test_impossible_changes_are_declined_with_the_reason(cpu_toolset, instruction, reason):
    result = _plan(cpu_toolset, instruction)
    assert not result.ok
    assert reason in result.error


def test_unlocatable_subjects_stay_declined_after_rewording(cpu_toolset):
    result = _plan(cpu_toolset, "Could you please make the cup a nice blue for the menu?")
    assert not result.ok and "cannot locate 'cup'" in result.error


def test_normalise_keeps_quoted_and_capital_words():
    assert normalise("Add 'Summer Sale' to the backround pls") == "add 'Summer Sale' to the background please"
    assert normalise("stamp CONFIDENTIAL on it") == "stamp CONFIDENTIAL on it"
    assert read_clause("Could you blur out the background a little so the cup pops?").text == "blur the background"


def test_numpy_minilm_matches_transformers():
    phrases = ["remove the background", "delete the backdrop", "make the sky purple"]
    ours = NumpyMiniLM(bundled_model_path()).embed(phrases)
    reference = Embeddings(encoder="transformers").embed(phrases)
    assert np.allclose((ours * reference).sum(1), 1.0, atol=1e-4)
    assert ours[0] @ ours[1] > 0.6 > ours[0] @ ours[2]


def test_exemplar_ranking_understands_and_declines(cpu_toolset):
    ranker = ExemplarRanker(Embeddings(encoder="numpy"))
    pop, vague = ranker.rank(["make the colours really pop", "make it look better"])
    assert pop.confident and pop.canonical == "more saturated"
    assert vague.confident and vague.canonical is None
    planner = RulesPlanner(cpu_toolset, ranker=ranker)
    image = np.zeros((64, 64, 3), np.uint8)
    punch = planner.plan(PlanRequest("a", image, "needs more punch"))
    assert punch.ok and _literals(punch)["contrast"] > 1.0 and "reads like" in punch.reasoning
    better = planner.plan(PlanRequest("b", image, "make it look better"))
    assert not better.ok and "vague" in better.error
    lexical = RulesPlanner(cpu_toolset, settings=RulesSettings(understanding="lexical"))
    assert not lexical.plan(PlanRequest("c", image, "needs more punch")).ok


@pytest.mark.parametrize(("instruction", "tools", "literals"), [
    ("remove the watermark from the bottom right", ["RES", "INPAINT"], {"prompt": "text at the bottom right"}),
    ("could you do a black-and-white conversion?", ["GRAYSCALE"], {}),
    ("make it 20% smaller", ["RESIZE"], {"width": 160}),
    ("Increase saturation slightly", ["ADJUST"], {"saturation": 1.14}),
    ("give me a square version, cropped", ["CROP"], {"bbox": [50, 0, 150, 100]}),
])
def test_unseen_wordings(cpu_toolset, instruction, tools, literals):
    result = _plan(cpu_toolset, instruction)
    assert result.ok, result.error
    assert result.workflow.tools() == tools
    assert literals.items() <= _literals(result).items()


@pytest.mark.parametrize(("instruction", "declined"), [
    ("sharpen her eyes", "cannot locate 'eyes'"),  # not the whole image instead
    ("remove the dog behind her", "cannot locate"),  # a relation the classical finder cannot honour
    ("change the weather to sunny", "does not cover 'change the weather to sunny'"),  # not "sweater"
])
def test_targets_and_relations_are_not_dropped(cpu_toolset, instruction, declined):
    result = _plan(cpu_toolset, instruction)
    assert not result.ok and declined in result.error


def test_the_classical_finder_keeps_the_side_of_the_frame_it_is_told():
    from legoedit_core.bricks.cpu.referring import in_place

    selected = np.zeros((40, 80), bool)
    selected[5:15, 5:15] = selected[25:35, 60:70] = True  # one blob top left, one bottom right
    assert in_place(selected, ["text", "bottom", "right"])[30, 65]
    assert not in_place(selected, ["text", "bottom", "right"])[10, 10]
    assert in_place(selected, ["person", "left"]).sum() == 100
    assert np.array_equal(in_place(selected, ["text"]), selected)


def test_one_ranker_serves_concurrent_planners(cpu_toolset):
    from concurrent.futures import ThreadPoolExecutor

    ranker = ExemplarRanker(Embeddings(encoder="numpy"), cache_size=3)  # small: the cache is cleared under load
    planner = RulesPlanner(cpu_toolset, ranker=ranker)
    image = np.zeros((32, 32, 3), np.uint8)
    wordings = ["needs more punch", "make the colours really pop", "too grainy", "make it look better",
                "enhance the details", "cartoonify"] * 4
    alone = [RulesPlanner(cpu_toolset, ranker=ExemplarRanker(Embeddings(encoder="numpy"))).plan(
        PlanRequest(str(i), image, text)) for i, text in enumerate(wordings[:6])]
    with ThreadPoolExecutor(4) as pool:
        together = list(pool.map(lambda item: planner.plan(PlanRequest(str(item[0]), image, item[1])),
                                 enumerate(wordings)))
    for index, result in enumerate(together):
        expected = alone[index % 6]
        assert (result.ok, result.error) == (expected.ok, expected.error)
        assert result.workflow == expected.workflow
