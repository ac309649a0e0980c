"""CPU backends of the edit bricks FASTINPAINT, INPAINT, RCM, STYLE and CBG, on real photos."""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
import pytest

from legoedit_core.bricks.cpu.colors import parse_color
from legoedit_core.bricks.cpu.style import STYLES
from legoedit_core.bricks.spec import BrickError
from legoedit_core.bricks.toolset import Toolset
from legoedit_core.executor import Executor
from legoedit_core.workflow import parse_workflow

# The non-mask inputs of each region brick, for the tests they all share.
REGION_BRICKS: dict[str, dict[str, Any]] = {
    "FASTINPAINT": {},
    "INPAINT": {"strength": 1.0},
    "RCM": {"prompt": "red"},
    "STYLE": {"prompt": "cartoon"},
}
ALL_BRICKS: dict[str, dict[str, Any]] = {**REGION_BRICKS, "CBG": {"prompt": "blur"}}
# How far each backend may change pixels outside the mask at 256 px: the inpainting backends grow the hole
# (FASTINPAINT 2 px; INPAINT about 1% of the side); RCM and STYLE refine the mask's edge onto the object's outline
# within edge_radius (3 px at 256 px).
GROWTH = {"FASTINPAINT": 2, "INPAINT": 3, "RCM": 3, "STYLE": 3}


def run(toolset: Toolset, brick: str, seed: int = 0, **inputs: Any) -> dict[str, Any] | BrickError:
    return toolset.backend(brick).run_batch([inputs], [seed])[0]


def image_of(result: dict[str, Any] | BrickError) -> np.ndarray:
    assert isinstance(result, dict), f"expected an image, got the error {result}"
    image = result["image"]
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
    return image


def ellipse(shape: tuple[int, ...], center: tuple[int, int], axes: tuple[int, int]) -> np.ndarray:
    mask = np.zeros(shape[:2], np.uint8)
    cv2.ellipse(mask, center, axes, 0, 0, 360, 255, -1)
    return mask


def grown(mask: np.ndarray, pixels: int) -> np.ndarray:
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * pixels + 1, 2 * pixels + 1))
    return cv2.dilate(mask, kernel) > 0


def shrunk(mask: np.ndarray, pixels: int) -> np.ndarray:
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * pixels + 1, 2 * pixels + 1))
    return cv2.erode(mask, kernel) > 0


def mean_abs_diff(a: np.ndarray, b: np.ndarray, where: np.ndarray) -> float:
    return float(np.abs(a.astype(np.float32) - b.astype(np.float32))[where].mean())


def with_square(image: np.ndarray, colour: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    """``image`` with a flat square pasted in, and the square's mask."""
    pasted, mask = image.copy(), np.zeros(image.shape[:2], np.uint8)
    pasted[60:120, 150:210] = colour
    mask[60:120, 150:210] = 255
    return pasted, mask


# ------------------------------------------------------------------------------------------------ all region bricks


@pytest.mark.parametrize("brick", REGION_BRICKS)
def test_region_bricks_change_inside_and_keep_outside(cpu_toolset, astronaut, brick):
    mask = ellipse(astronaut.shape, (118, 70), (28, 36))
    out = image_of(run(cpu_toolset, brick, image=astronaut, mask=mask, **REGION_BRICKS[brick]))
    outside = ~grown(mask, GROWTH.get(brick, 0))
    assert np.array_equal(out[outside], astronaut[outside])
    assert mean_abs_diff(out, astronaut, mask > 0) > 10


@pytest.mark.parametrize("brick", ALL_BRICKS)
def test_same_seed_gives_identical_output(cpu_toolset, coffee, brick):
    mask = ellipse(coffee.shape, (125, 75), (60, 40))
    first = image_of(run(cpu_toolset, brick, seed=5, image=coffee, mask=mask, **ALL_BRICKS[brick]))
    second = image_of(run(cpu_toolset, brick, seed=5, image=coffee, mask=mask, **ALL_BRICKS[brick]))
    assert np.array_equal(first, second)


@pytest.mark.parametrize("brick", ALL_BRICKS)
def test_an_empty_mask_fails_only_its_own_item(cpu_toolset, chelsea, brick):
    mask = ellipse(chelsea.shape, (140, 100), (50, 40))
    empty = np.zeros_like(mask)
    items = [{"image": chelsea, "mask": m, **ALL_BRICKS[brick]} for m in (mask, empty, mask)]
    results = cpu_toolset.backend(brick).run_batch(items, [1, 2, 3])
    assert isinstance(results[1], BrickError) and "empty" in str(results[1])
    for result in (results[0], results[2]):
        assert not np.array_equal(image_of(result), chelsea)


# ------------------------------------------------------------------------------------------------ inpainting


@pytest.mark.parametrize("brick", ["FASTINPAINT", "INPAINT"])
def test_inpainting_a_pasted_square_matches_its_surroundings(cpu_toolset, chelsea, brick):
    pasted, mask = with_square(chelsea, (255, 0, 255))
    out = image_of(run(cpu_toolset, brick, image=pasted, mask=mask, **REGION_BRICKS[brick]))
    ring = grown(mask, 12) & ~grown(mask, 4)
    inside = mask > 0
    ring_mean = chelsea[ring].astype(np.float32).mean(axis=0)
    assert np.abs(pasted[inside].mean(axis=0) - ring_mean).max() > 100  # the test is not vacuous
    assert np.abs(out[inside].astype(np.float32).mean(axis=0) - ring_mean).max() < 20


def test_inpaint_strength_blends_input_and_fill(cpu_toolset, chelsea):
    pasted, mask = with_square(chelsea, (255, 0, 255))
    inside = grown(mask, 3)
    full, half, none = (image_of(run(cpu_toolset, "INPAINT", seed=3, image=pasted, mask=mask, strength=s))
                        for s in (1.0, 0.5, 0.0))
    assert np.array_equal(none, pasted)
    ratio = mean_abs_diff(half, pasted, inside) / mean_abs_diff(full, pasted, inside)
    assert 0.4 < ratio < 0.6


def test_inpaint_grain_comes_from_the_seed(cpu_toolset, chelsea):
    pasted, mask = with_square(chelsea, (0, 200, 0))
    one = image_of(run(cpu_toolset, "INPAINT", seed=1, image=pasted, mask=mask, strength=1.0))
    two = image_of(run(cpu_toolset, "INPAINT", seed=2, image=pasted, mask=mask, strength=1.0))
    assert not np.array_equal(one, two)
    assert np.array_equal(one[~grown(mask, GROWTH["INPAINT"])], two[~grown(mask, GROWTH["INPAINT"])])
    # the grain is fine texture, not a different fill: the two fills agree on average
    assert mean_abs_diff(one, two, mask > 0) < 12


def test_two_stage_remove_runs_through_the_executor(chelsea):
    pasted, mask = with_square(chelsea, (255, 0, 255))
    workflow = parse_workflow({
        "instruction": "remove the square",
        "nodes": [
            {"id": "rough", "tool": "FASTINPAINT", "inputs": {"image": "@input.image", "mask": "@input.mask"}},
            {"id": "clean", "tool": "INPAINT",
             "inputs": {"image": "@rough.image", "mask": "@input.mask", "strength": 0.6}},
        ],
        "output": "@clean.image",
    })
    result = Executor().run(workflow, pasted, mask=mask, seed=4)
    assert result.status == "ok", result.error
    ring_mean = chelsea[grown(mask, 12) & ~grown(mask, 4)].astype(np.float32).mean(axis=0)
    assert np.abs(result.image[mask > 0].astype(np.float32).mean(axis=0) - ring_mean).max() < 20


# ------------------------------------------------------------------------------------------------ recolouring


def lab_of(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(image.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)


def hue_of_mean(image: np.ndarray, where: np.ndarray) -> float:
    """Hue in degrees [0, 360) of the region's mean colour."""
    mean = image[where].astype(np.float32).mean(axis=0) / 255.0
    return float(cv2.cvtColor(mean.reshape(1, 1, 3), cv2.COLOR_RGB2HSV)[0, 0, 0])


def hue_distance(a: float, b: float) -> float:
    return min(abs(a - b), 360 - abs(a - b))


@pytest.mark.parametrize(("prompt", "hue"), [("red", 0), ("green", 120), ("dark blue", 240), ("purple", 300)])
def test_rcm_recolours_the_region_and_keeps_its_shading(cpu_toolset, chelsea, prompt, hue):
    mask = ellipse(chelsea.shape, (140, 100), (50, 40))
    out = image_of(run(cpu_toolset, "RCM", image=chelsea, mask=mask, prompt=prompt))
    region = shrunk(mask, 3)  # away from the feathered seam
    assert hue_distance(hue_of_mean(chelsea, region), hue) > 20  # the cat is not that colour already
    assert hue_distance(hue_of_mean(out, region), hue) < 15
    before, after = lab_of(chelsea)[..., 0][region], lab_of(out)[..., 0][region]
    assert np.corrcoef(before, after)[0, 1] > 0.9
    assert np.array_equal(out[mask == 0], chelsea[mask == 0])


def test_rcm_moves_lightness_to_the_target(cpu_toolset, astronaut):
    mask = ellipse(astronaut.shape, (120, 200), (40, 30))  # the orange suit (the patch on it keeps its colour)
    hsv = cv2.cvtColor(astronaut, cv2.COLOR_RGB2HSV)
    region = shrunk(mask, 3) & (hsv[..., 0] < 25) & (hsv[..., 1] > 100)
    light, dark = (lab_of(image_of(run(cpu_toolset, "RCM", image=astronaut, mask=mask, prompt=p)))[..., 0][region]
                   for p in ("light blue", "navy"))
    assert light.mean() > 70 > 30 > dark.mean()


@pytest.mark.parametrize("prompt", ["wood", "shiny metal", "make it look like marble"])
def test_rcm_refuses_materials(cpu_toolset, coffee, prompt):
    mask = ellipse(coffee.shape, (125, 75), (60, 40))
    result = run(cpu_toolset, "RCM", image=coffee, mask=mask, prompt=prompt)
    assert isinstance(result, BrickError)
    assert str(result) == f"the CPU backend recolours to named colours only; {prompt!r} is not a colour"


@pytest.mark.parametrize(("prompt", "rgb"), [
    ("red", (255, 0, 0)), ("Navy", (0, 0, 128)), ("a blue background", (0, 0, 255)), ("solid white", (255,) * 3),
    ("silver", (192, 192, 192)), ("#ff8800", (255, 136, 0)), ("sky blue", (135, 206, 235)),
])
def test_parse_color_reads_names(prompt, rgb):
    assert parse_color(prompt) == rgb


@pytest.mark.parametrize(("modified", "base", "lighter"), [
    ("light green", "green", True), ("light red", "red", True), ("pale pink", "pink", True),
    ("dark blue", "blue", False), ("dark orange", "orange", False), ("deep red", "red", False),
])
def test_parse_color_modifiers_change_lightness(modified, base, lighter):
    def lightness(prompt: str) -> float:
        colour = parse_color(prompt)
        assert colour is not None, prompt
        return float(lab_of(np.uint8([[colour]]))[0, 0, 0])

    assert (lightness(modified) > lightness(base)) == lighter


@pytest.mark.parametrize("prompt", ["golden", "scarlet", "copper red", "copper-red", "burgundy"])
def test_parse_color_knows_common_names_beyond_css(prompt):
    assert parse_color(prompt) is not None


@pytest.mark.parametrize("prompt", ["wood", "a beach", "", "the sky", "metallic"])
def test_parse_color_rejects_non_colours(prompt):
    assert parse_color(prompt) is None


# ------------------------------------------------------------------------------------------------ style


@pytest.mark.parametrize("style", [name for name, _, _ in STYLES])
def test_every_style_changes_the_image(cpu_toolset, chelsea, style):
    out = image_of(run(cpu_toolset, "STYLE", image=chelsea, prompt=f"in {style} style", mask=None))
    assert out.shape == chelsea.shape
    assert mean_abs_diff(out, chelsea, np.ones(chelsea.shape[:2], bool)) > 5


@pytest.mark.parametrize(("prompt", "same_as"), [
    ("a pencil drawing", "pencil sketch"), ("oil painting", "oil painting"), ("watercolour", "watercolor"),
    ("anime", "cartoon"), ("coloured pencil", "colour pencil"), ("stylised", "stylized painting"),
])
def test_style_keywords_pick_the_filter(cpu_toolset, astronaut, prompt, same_as):
    picked = image_of(run(cpu_toolset, "STYLE", image=astronaut, prompt=prompt, mask=None))
    named = image_of(run(cpu_toolset, "STYLE", image=astronaut, prompt=same_as, mask=None))
    assert np.array_equal(picked, named)


def test_styles_differ_from_each_other(cpu_toolset, coffee):
    outputs = [image_of(run(cpu_toolset, "STYLE", image=coffee, prompt=name, mask=None)) for name, _, _ in STYLES]
    for i, first in enumerate(outputs):
        for second in outputs[i + 1:]:
            assert not np.array_equal(first, second)


def test_unknown_style_lists_the_known_ones(cpu_toolset, coffee):
    result = run(cpu_toolset, "STYLE", image=coffee, prompt="cubism", mask=None)
    assert isinstance(result, BrickError)
    assert "'cubism'" in str(result)
    assert all(name in str(result) for name, _, _ in STYLES)


# ------------------------------------------------------------------------------------------------ background


def test_cbg_blur_keeps_the_foreground_and_blurs_the_background(cpu_toolset, chelsea):
    mask = ellipse(chelsea.shape, (140, 100), (60, 55))
    out = image_of(run(cpu_toolset, "CBG", image=chelsea, mask=mask, prompt="blurred background"))
    assert np.array_equal(out[shrunk(mask, 2)], chelsea[shrunk(mask, 2)])
    background = ~grown(mask, 3)
    assert mean_abs_diff(out, chelsea, background) > 3
    detail = cv2.Laplacian(cv2.cvtColor(out, cv2.COLOR_RGB2GRAY), cv2.CV_32F)
    original_detail = cv2.Laplacian(cv2.cvtColor(chelsea, cv2.COLOR_RGB2GRAY), cv2.CV_32F)
    assert np.abs(detail[background]).mean() < 0.3 * np.abs(original_detail[background]).mean()


def test_cbg_blur_leaves_no_halo_of_the_foreground(cpu_toolset, chelsea):
    subject, mask = chelsea.copy(), ellipse(chelsea.shape, (140, 100), (40, 40))
    subject[mask > 0] = (255, 0, 255)
    out = image_of(run(cpu_toolset, "CBG", image=subject, mask=mask, prompt="bokeh"))
    ring = grown(mask, 10) & ~grown(mask, 3)

    def magenta(image: np.ndarray) -> float:
        pixels = image[ring].astype(np.float32)
        return float((pixels[:, 0] + pixels[:, 2] - 2 * pixels[:, 1]).mean())

    naive = cv2.GaussianBlur(subject, (0, 0), 0.03 * 256)
    assert magenta(naive) > magenta(subject) + 40  # a plain blur would bleed the subject out
    assert magenta(out) < magenta(subject) + 10


@pytest.mark.parametrize(("prompt", "colour"), [
    ("white", (255, 255, 255)), ("a blue background", (0, 0, 255)), ("solid red", (255, 0, 0)),
    ("transparent", (255, 255, 255)), ("remove the background", (255, 255, 255)),
])
def test_cbg_colour_fills_the_background(cpu_toolset, coffee, prompt, colour):
    mask = ellipse(coffee.shape, (125, 75), (60, 40))
    out = image_of(run(cpu_toolset, "CBG", image=coffee, mask=mask, prompt=prompt))
    background = ~grown(mask, 2)
    assert (out[background] == colour).all()
    assert np.array_equal(out[shrunk(mask, 2)], coffee[shrunk(mask, 2)])


@pytest.mark.parametrize("prompt", ["a gradient from white to dark blue", "white to dark blue gradient background"])
def test_cbg_gradient_runs_top_to_bottom(cpu_toolset, coffee, prompt):
    mask = ellipse(coffee.shape, (125, 75), (30, 30))
    out = image_of(run(cpu_toolset, "CBG", image=coffee, mask=mask, prompt=prompt))
    assert np.array_equal(out[0, 0], [255, 255, 255])
    assert np.array_equal(out[-1, 0], parse_color("dark blue"))
    column = out[:, 0].astype(int).sum(axis=1)
    assert (np.diff(column) <= 0).all()  # darker all the way down


def test_cbg_gradient_without_two_colours_says_so(cpu_toolset, coffee):
    mask = ellipse(coffee.shape, (125, 75), (30, 30))
    result = run(cpu_toolset, "CBG", image=coffee, mask=mask, prompt="a sunset gradient")
    assert isinstance(result, BrickError) and "two colours" in str(result)


@pytest.mark.parametrize("prompt", ["a beach", "a snowy mountain at dusk"])
def test_cbg_scene_needs_a_generative_backend(cpu_toolset, coffee, prompt):
    mask = ellipse(coffee.shape, (125, 75), (60, 40))
    result = run(cpu_toolset, "CBG", image=coffee, mask=mask, prompt=prompt)
    assert isinstance(result, BrickError)
    assert str(result) == (f"the CPU backend can use a colour, a gradient or blur; {prompt!r} needs a generative CBG "
                           "backend")
