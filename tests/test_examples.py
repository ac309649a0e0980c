"""Every bundled example runs through ``legoedit run-workflow`` and changes its image only where it edits."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from legoedit.cli import main
from legoedit_core.bricks.cpu.common import edge_radius
from legoedit_core.bricks.toolset import Toolset
from legoedit_core.data.images import read_image, read_mask
from legoedit_core.executor import Executor
from legoedit_core.workflow import parse_workflow

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SHUTTLE_MASK = "images/astronaut_shuttle_mask.png"

# workflow file -> (image, user mask, node whose mask is the edited region, True when the edit is *outside* it)
CASES = {
    "astronaut_blur_face.json": ("astronaut.jpg", None, "face", False),
    "astronaut_remove_shuttle.json": ("astronaut.jpg", SHUTTLE_MASK, None, False),
    "astronaut_remove_shuttle.pipeline.json": ("astronaut.jpg", SHUTTLE_MASK, None, False),
    "chelsea_pencil_cat.json": ("chelsea.jpg", None, "cat", False),
    "coffee_blur_background.json": ("coffee.jpg", None, "cup", True),
    "coffee_blue_cup.json": ("coffee.jpg", None, "cup", False),
    "rocket_purple_sky.json": ("rocket.jpg", None, "sky", False),
}


def test_every_example_workflow_is_covered():
    assert sorted(CASES) == sorted(p.name for p in (EXAMPLES / "workflows").glob("*.json"))


def _grow(mask: np.ndarray, pixels: int) -> np.ndarray:
    return cv2.dilate(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * pixels + 1, 2 * pixels + 1)))


@pytest.mark.parametrize("name", sorted(CASES))
def test_example_edits_only_its_region(name, tmp_path):
    image_name, mask_name, region_node, edits_outside = CASES[name]
    image_path, workflow_path = EXAMPLES / "images" / image_name, EXAMPLES / "workflows" / name
    output, trace = tmp_path / "out.png", tmp_path / "trace.json"
    argv = [str(image_path), str(workflow_path), "-o", str(output), "--trace", str(trace), "--seed", "3"]
    if mask_name:
        argv += ["--mask", str(EXAMPLES / mask_name)]
    assert main(["run-workflow", *argv]) == 0
    assert json.loads(trace.read_text())["status"] == "ok"

    source = read_image(image_path)
    edited = read_image(output)
    assert edited.shape == source.shape
    user_mask = read_mask(EXAMPLES / mask_name) if mask_name else None
    result = Executor(Toolset()).run(parse_workflow(workflow_path.read_text()), source, user_mask, seed=3)
    np.testing.assert_array_equal(result.image, edited)  # the CLI wrote exactly what the executor made

    region = result.values[region_node]["mask"] if region_node else user_mask
    if edits_outside:
        region = 255 - region
    assert 0.005 < (region > 0).mean() < 0.95, "the example's region should be a real part of the image"
    # removal grows its mask a little to cover the object's rim; every other brick stays inside the mask's edge band,
    # where it refines the mask onto the object's outline (edge_radius)
    untouched = _grow(region, 24 if region_node is None else edge_radius(region.shape)) == 0
    difference = np.abs(edited.astype(int) - source.astype(int)).max(axis=2)
    assert difference[untouched].mean() < 0.5 and np.percentile(difference[untouched], 99.5) <= 2
    assert difference[region > 0].mean() > 8
