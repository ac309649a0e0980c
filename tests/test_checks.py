"""Verifiable edit checks on the bundled example photos: per family, the edit the real CPU bricks make passes, and a
no-op or a wrong edit fails with the failing check named. The judge and the checks use the user's mask when the plan
made none."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from legoedit_core.executor import Executor
from legoedit_core.judge.checks import edit_check
from legoedit_core.judge.judgement import Edit, judge_edits
from legoedit_core.judge.metrics import edited_region
from legoedit_core.workflow import parse_workflow

IMAGES = Path(__file__).resolve().parents[1] / "examples" / "images"


def _photo(name: str, width: int = 320) -> np.ndarray:
    picture = Image.open(IMAGES / name).convert("RGB")
    return np.asarray(picture.resize((width, round(picture.height * width / picture.width))))


def _node(node_id: str, tool: str, **inputs: object) -> dict[str, object]:
    return {"id": node_id, "tool": tool, "inputs": {"image": "@input.image", **inputs}}


def _edit(toolset, image: np.ndarray, nodes: list[dict], mask: np.ndarray | None = None):
    """Run a workflow with the CPU bricks; the output is the last node's image."""
    workflow = parse_workflow({"nodes": nodes, "output": f"@{nodes[-1]['id']}.image"})
    result = Executor(toolset).run(workflow, image, mask)
    assert result.status == "ok", result.error
    return result


def _new_background(toolset, image: np.ndarray, prompt: str):
    """SOS keeps the subject, CBG replaces what is behind it with ``prompt``."""
    return _edit(toolset, image, [_node("subject", "SOS"), _node("bg", "CBG", mask="@subject.mask", prompt=prompt)])


def _check(source: np.ndarray, result, instruction: str, mask: np.ndarray | None = None):
    return judge_edits([Edit(source, result, instruction, mask=mask)], None)[0].check


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return _photo("astronaut.jpg")


@pytest.fixture(scope="module")
def coffee() -> np.ndarray:
    return _photo("coffee.jpg")


@pytest.fixture(scope="module")
def shuttle_mask(astronaut) -> np.ndarray:
    mask = Image.open(IMAGES / "astronaut_shuttle_mask.png").convert("L")
    return np.asarray(mask.resize((astronaut.shape[1], astronaut.shape[0]), Image.Resampling.NEAREST))


def test_black_and_white(cpu_toolset, astronaut):
    instruction = "make it black and white"
    done = _check(astronaut, _edit(cpu_toolset, astronaut, [_node("gray", "GRAYSCALE")]), instruction)
    assert done.family == "black and white" and done.passed and done.score == 1.0
    assert edit_check(astronaut, astronaut, instruction).failed == ["desaturated"]  # no-op
    darker = _edit(cpu_toolset, astronaut, [_node("adj", "ADJUST", brightness=0.6)]).image
    assert edit_check(astronaut, darker, instruction).failed == ["desaturated"]  # wrong edit


def test_brighter(cpu_toolset):
    chelsea = _photo("chelsea.jpg")
    instruction = "brighten the photo"
    done = _check(chelsea, _edit(cpu_toolset, chelsea, [_node("adj", "ADJUST", brightness=1.3)]), instruction)
    assert done.family == "brighter" and done.passed
    assert edit_check(chelsea, chelsea, instruction).failed == ["brighter"]
    darker = _edit(cpu_toolset, chelsea, [_node("adj", "ADJUST", brightness=0.75)]).image
    wrong = edit_check(chelsea, darker, instruction)
    assert wrong.failed == ["brighter"] and wrong.measured["luminance_change"] < 0


def test_background_blur(cpu_toolset, coffee):
    instruction = "blur the background"
    done = _new_background(cpu_toolset, coffee, "blur")
    check = _check(coffee, done, instruction)
    assert check.family == "background blur" and check.passed, check.measured
    region = edited_region(done.masks(), (coffee.shape[1], coffee.shape[0]))
    assert edit_check(coffee, coffee, instruction, region).failed == ["background_blurred"]  # no-op
    everything = _edit(cpu_toolset, coffee, [_node("blur", "BLUR", radius=8)]).image  # the subject blurred too
    assert edit_check(coffee, everything, instruction, region).failed == ["subject_kept"]
    assert edit_check(coffee, done.image, instruction) is None  # no subject mask: nothing tells them apart


def test_remove_uses_the_users_mask_when_the_plan_has_none(cpu_toolset, astronaut, shuttle_mask):
    instruction = "remove the marked object"
    done = _edit(cpu_toolset, astronaut, [_node("erase", "INPAINT", mask="@input.mask")], shuttle_mask)
    assert done.masks() == []  # the plan made no mask of its own
    judgement = judge_edits([Edit(astronaut, done, instruction, mask=shuttle_mask)], None)[0]
    assert judgement.check.family == "remove" and judgement.check.passed, judgement.check.measured
    # the metrics measure preservation outside the user's mask, not over the whole image
    assert judgement.metrics.edited_fraction == pytest.approx((shuttle_mask > 127).mean())
    unmasked = judge_edits([Edit(astronaut, done, instruction)], None)[0]
    assert judgement.metrics.psnr_outside > 40 > unmasked.metrics.psnr_outside
    assert unmasked.check is None  # no mask at all: not checked
    noop = _edit(cpu_toolset, astronaut, [_node("adj", "ADJUST", brightness=1.0)], shuttle_mask)
    assert _check(astronaut, noop, instruction, shuttle_mask).failed == ["region_changed"]
    darker = _edit(cpu_toolset, astronaut, [_node("adj", "ADJUST", brightness=0.6)], shuttle_mask)  # everywhere
    assert _check(astronaut, darker, instruction, shuttle_mask).failed == ["rest_kept"]


def test_recolour(cpu_toolset, coffee):
    instruction = "make the cup blue"
    subject = _node("subject", "SOS")

    def recolour(colour: str):
        return _edit(cpu_toolset, coffee, [subject, _node("rc", "RCM", mask="@subject.mask", prompt=colour)])

    done = _check(coffee, recolour("blue"), instruction)
    assert done.family == "recolour" and done.passed, done.measured
    assert _check(coffee, recolour("red"), instruction).failed == ["hue_matches"]  # the wrong colour
    region = edited_region(recolour("blue").masks(), (coffee.shape[1], coffee.shape[0]))
    assert edit_check(coffee, coffee, instruction, region).failed == ["hue_matches"]  # no-op


def _with_text(image: np.ndarray, text: str) -> np.ndarray:
    picture = Image.fromarray(image)
    draw = ImageDraw.Draw(picture)
    font = ImageFont.load_default(size=40)
    draw.rectangle((10, 10, 300, 70), fill=(255, 255, 255))
    draw.text((20, 16), text, fill=(0, 0, 0), font=font)
    return np.asarray(picture)


def test_text_added(cpu_toolset, coffee):
    instruction = 'add the text "SALE 50% OFF"'
    done = edit_check(coffee, _with_text(coffee, "SALE 50% OFF"), instruction)
    assert done.family == "text added" and done.passed, done.measured
    written = _edit(cpu_toolset, coffee, [_node("text", "TEXT", prompt="SALE 50% OFF", position="top")])
    assert _check(coffee, written, instruction).passed  # the CPU TEXT brick's overlay reads back
    assert edit_check(coffee, coffee, instruction).failed == ["text_read"]  # no-op
    assert edit_check(coffee, _with_text(coffee, "OPEN TODAY"), instruction).failed == ["text_read"]  # wrong text


def test_no_check_where_none_applies(astronaut):
    assert edit_check(astronaut, astronaut, "turn it into a cartoon") is None  # no verifiable family
    assert edit_check(astronaut, astronaut, "make it black and white and then brighten it") is None  # two steps
    assert edit_check(astronaut, astronaut[:100], "make it black and white") is None  # size changed


def test_a_background_changed_to_a_colour_is_judged_on_the_background(cpu_toolset, coffee):
    """"change the background to white" (the demo's row): the background is measured, not the subject as a recolour."""
    instruction = "change the background to white"
    done = _new_background(cpu_toolset, coffee, "white")
    check = _check(coffee, done, instruction)
    assert check.family == "background colour" and check.passed, check.measured
    assert json.loads(json.dumps(check.as_dict()))["checks"] == {"background_matches": True, "subject_kept": True}
    region = edited_region(done.masks(), (coffee.shape[1], coffee.shape[0]))
    assert edit_check(coffee, coffee, instruction, region).failed == ["background_matches"]  # no-op
    black = _new_background(cpu_toolset, coffee, "black")
    assert _check(coffee, black, instruction).failed == ["background_matches"]  # the wrong colour
    assert edit_check(coffee, done.image, "replace the background with a beach", region) is None  # a scene
