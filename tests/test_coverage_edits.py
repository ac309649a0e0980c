"""Edits the offline Builder now covers on CPU: colour temperature, text overlay, skin smoothing, denoise, canvas.

Each is planned from a plain instruction by the rules planner and run by the executor on a bundled photo.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from legoedit_core.bricks.cpu.common import edge_radius
from legoedit_core.bricks.cpu.referring import face_boxes
from legoedit_core.data.images import read_image
from legoedit_core.executor import EditResult, Executor
from legoedit_core.planners.base import PlanRequest
from legoedit_core.planners.rules import RulesPlanner

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def edit(toolset, photo: str | np.ndarray, instruction: str) -> tuple[EditResult, np.ndarray]:
    image = read_image(EXAMPLES / f"images/{photo}.jpg") if isinstance(photo, str) else photo
    plan = RulesPlanner(toolset).plan(PlanRequest("x", image, instruction))
    assert plan.ok, plan.error
    result = Executor(toolset).run(plan.workflow, image, seed=3)
    assert result.status == "ok", result.error
    return result, image


def warmth(image: np.ndarray) -> float:
    """Mean red minus mean blue."""
    return float(image[:, :, 0].astype(np.float32).mean() - image[:, :, 2].astype(np.float32).mean())


def luma(image: np.ndarray) -> float:
    return float(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).mean())


@pytest.mark.parametrize(("instruction", "direction"), [
    ("make it warmer", 1), ("give the photo warmer tones", 1), ("make it much warmer", 1),
    ("make it cooler", -1), ("cool it down a bit", -1),
])
def test_warmer_and_cooler(cpu_toolset, instruction, direction):
    result, source = edit(cpu_toolset, "coffee", instruction)
    assert result.trace[0].tool == "ADJUST"
    shift = warmth(result.image) - warmth(source)
    least = 3 if "a bit" in instruction else 8  # "a bit" is about a third of the plain change
    assert direction * shift > least, shift  # red and blue move apart (or together) by several levels
    assert abs(luma(result.image) - luma(source)) < 0.04 * luma(source)  # white balance, not brightness


def test_much_warmer_is_warmer_than_warmer(cpu_toolset):
    warmer, _ = edit(cpu_toolset, "rocket", "make it warmer")
    much, _ = edit(cpu_toolset, "rocket", "make it much warmer")
    assert warmth(much.image) > warmth(warmer.image)


@pytest.fixture(scope="module")
def ocr():
    from rapidocr import RapidOCR

    return RapidOCR(params={"Global.log_level": "error"})


def read_text(ocr, image: np.ndarray) -> list[tuple[str, np.ndarray]]:
    """(text, box corners) of each line the bundled PP-OCR reads."""
    found = ocr(image)
    return list(zip(found.txts or (), found.boxes if found.boxes is not None else (), strict=True))


@pytest.mark.parametrize(("photo", "instruction", "words", "corner"), [
    ("coffee", "add the words HELLO at the top", "HELLO", (0.5, 0.0)),
    ("rocket", "write 'Summer Sale' in the bottom right corner", "Summer Sale", (1.0, 1.0)),
    ("astronaut", 'put the caption "NASA 1999" at the bottom', "NASA 1999", (0.5, 1.0)),
])
def test_text_overlay_is_read_back_by_ocr_where_asked(cpu_toolset, ocr, photo, instruction, words, corner):
    result, source = edit(cpu_toolset, photo, instruction)
    assert result.trace[-1].tool == "TEXT"
    lines = read_text(ocr, result.image)
    matching = [box for text, box in lines if text.replace(" ", "") == words.replace(" ", "")]
    assert matching, f"OCR read {[text for text, _ in lines]}"
    height, width = source.shape[:2]
    centre = np.asarray(matching[0]).mean(axis=0) / (width, height)
    assert np.abs(centre - corner).max() < 0.3, centre  # the line sits where the instruction put it
    changed = np.abs(result.image.astype(int) - source.astype(int)).max(axis=2) > 0
    assert changed.mean() < 0.1  # only the letters changed


def detail(image: np.ndarray) -> np.ndarray:
    """Fine texture: the grey image minus its Gaussian blur."""
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32)
    return grey - cv2.GaussianBlur(grey, (0, 0), 2.0)


def test_skin_smoothing_flattens_the_face_and_leaves_the_rest(cpu_toolset):
    result, source = edit(cpu_toolset, "astronaut", "smooth the skin of the woman")
    assert [t.tool for t in result.trace] == ["RES", "SMOOTH"]
    skin = result.values["seg_skin"]["mask"] > 127
    [(x0, y0, x1, y1)] = face_boxes(source)
    face = np.zeros_like(skin)
    face[y0:y1, x0:x1] = True
    assert (face & skin).sum() > 0.5 * face.sum()  # most of the face box is skin
    inside = face & cv2.erode(skin.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)  # off eyes and lips
    before, after = detail(source)[inside].var(), detail(result.image)[inside].var()
    assert after < 0.7 * before, (before, after)
    # outside the skin (and the band where the mask's edge is refined onto the outline) not one pixel changed
    near = cv2.dilate(skin.astype(np.uint8), np.ones((2 * edge_radius(skin.shape) + 1,) * 2, np.uint8)) > 0
    assert np.array_equal(result.image[~near], source[~near])


def test_skin_smoothing_without_a_face_fails_the_item(cpu_toolset):
    image = read_image(EXAMPLES / "images/coffee.jpg")
    plan = RulesPlanner(cpu_toolset).plan(PlanRequest("x", image, "smooth the skin"))
    result = Executor(cpu_toolset).run(plan.workflow, image)
    assert result.status == "failed" and "RES found no 'skin' in this image" in result.error


def test_denoise_removes_grain_and_keeps_edges(cpu_toolset):
    clean = read_image(EXAMPLES / "images/rocket.jpg")
    rng = np.random.default_rng(0)
    noisy = np.clip(clean + rng.normal(0, 12, clean.shape), 0, 255).astype(np.uint8)
    result, _ = edit(cpu_toolset, noisy, "reduce the noise")
    assert result.trace[0].tool == "SMOOTH"
    error_before = np.abs(noisy.astype(int) - clean).mean()
    error_after = np.abs(result.image.astype(int) - clean).mean()
    assert error_after < 0.7 * error_before, (error_before, error_after)


def test_square_canvas_and_border(cpu_toolset):
    square, source = edit(cpu_toolset, "coffee", "make it square")
    height, width = source.shape[:2]
    assert square.image.shape == (width, width, 3)
    top = (width - height) // 2
    assert np.array_equal(square.image[top : top + height], source)
    assert (square.image[:top] == 255).all() and (square.image[top + height :] == 255).all()
    framed, _ = edit(cpu_toolset, "coffee", "add a thin navy blue border")
    border = round(0.03 * width)  # "thin": 3% of the side (a plain border is 5%, a thick one 8%)
    assert framed.image.shape == (height + 2 * border, width + 2 * border, 3)
    assert (framed.image[:border] == (0, 0, 128)).all()
    assert np.array_equal(framed.image[border:-border, border:-border], source)


def test_new_bricks_reach_the_catalogue_schema_and_listing(cpu_toolset, capsys):
    from legoedit.cli import main
    from legoedit_core.bricks.render import catalog_text
    from legoedit_core.workflow_schema import workflow_json_schema

    specs = cpu_toolset.available_specs()
    catalogue = catalog_text(specs)
    schema = workflow_json_schema(specs)
    tools = {node["properties"]["tool"]["const"] for node in schema["properties"]["nodes"]["items"]["anyOf"]}
    assert {"TEXT", "SMOOTH", "PAD"} <= tools
    assert "- TEXT(image: Image, prompt: Text, position: Text = 'bottom'" in catalogue
    assert "temperature: Number = 0.0 in [-1, 1]" in catalogue
    assert main(["bricks"]) == 0
    listing = capsys.readouterr().out
    assert "Pillow's bundled font (Aileron Regular)" in listing and "opencv-domain-transform" in listing
