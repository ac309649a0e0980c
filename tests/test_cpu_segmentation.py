"""CPU segmentation backends (RES classical, SOS and MASK-SEG) on real photos and drawn images."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from legoedit_core.bricks.cpu import segment
from legoedit_core.bricks.cpu.referring import referent_words
from legoedit_core.bricks.spec import BrickError
from legoedit_core.bricks.toolset import Toolset
from legoedit_core.types import mask_to_bbox


def run(toolset: Toolset, brick: str, **inputs) -> np.ndarray:
    (result,) = toolset.backend(brick).run_batch([inputs], [7])
    if isinstance(result, BrickError):
        raise result
    mask = result["mask"]
    assert mask.dtype == np.uint8 and mask.shape == inputs["image"].shape[:2]
    assert set(np.unique(mask)) <= {0, 255}
    return mask > 0


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max(1, (a | b).sum()))


def centroid(mask: np.ndarray) -> tuple[float, float]:
    """(x, y) of the mask's centre of mass, as fractions of the width and height."""
    ys, xs = np.nonzero(mask)
    return xs.mean() / mask.shape[1], ys.mean() / mask.shape[0]


def at(mask: np.ndarray, x: float, y: float) -> bool:
    """The mask at a point given as fractions of the width and height."""
    return bool(mask[int(y * mask.shape[0]), int(x * mask.shape[1])])


def sky_scene() -> tuple[np.ndarray, np.ndarray]:
    """A blue gradient over the top half, random texture below; and the top half as the expected mask."""
    image = np.random.default_rng(0).integers(0, 256, (128, 128, 3), dtype=np.uint8)
    for y in range(64):
        image[y] = (40 + y, 110 + y, 230)
    expected = np.zeros((128, 128), bool)
    expected[:64] = True
    return image, expected


def red_square_scene() -> tuple[np.ndarray, np.ndarray]:
    image = np.random.default_rng(1).integers(100, 160, (128, 128, 3), dtype=np.uint8)
    image[30:80, 40:100] = (220, 20, 30)
    expected = np.zeros((128, 128), bool)
    expected[30:80, 40:100] = True
    return image, expected


# ---------------------------------------------------------------------------------------------------- SOS


def test_sos_finds_the_cat(cpu_toolset, chelsea):
    mask = run(cpu_toolset, "SOS", image=chelsea)
    assert 0.15 < mask.mean() < 0.8
    x, y = centroid(mask)
    assert 0.3 < x < 0.7 and 0.3 < y < 0.75
    assert at(mask, 0.4, 0.55)  # between the eyes
    assert not at(mask, 0.97, 0.6)  # the blurred room to the right


def test_sos_finds_the_cup(cpu_toolset, coffee):
    mask = run(cpu_toolset, "SOS", image=coffee)
    assert 0.15 < mask.mean() < 0.7
    assert at(mask, 0.45, 0.35)  # the coffee in the cup
    assert not (at(mask, 0.02, 0.95) or at(mask, 0.98, 0.05) or at(mask, 0.98, 0.95))  # table corners


def test_sos_reports_a_missing_model(monkeypatch):
    monkeypatch.setattr(segment, "u2netp_path", lambda: None)
    assert "u2netp.onnx" in segment.SalientObject.missing({})
    assert "u2netp.onnx" in Toolset().unavailable("SOS")


# ---------------------------------------------------------------------------------------------------- RES


def test_referent_words_drop_articles_and_plurals():
    assert referent_words("The red cars") == ["red", "car"]
    assert referent_words("all the people") == ["person"]
    assert referent_words("her dresses") == ["dress"]
    assert referent_words("the woman's hair") == ["woman", "hair"]


def test_res_face_is_a_box_in_the_upper_middle(cpu_toolset, astronaut):
    mask = run(cpu_toolset, "RES", image=astronaut, prompt="the face")
    x0, y0, x1, y1 = mask_to_bbox(mask)
    width, height = astronaut.shape[1], astronaut.shape[0]
    assert 0.25 * width <= x0 < x1 <= 0.65 * width
    assert 0.05 * height <= y0 < y1 <= 0.5 * height
    assert mask.sum() == (x1 - x0) * (y1 - y0)  # one filled box
    assert 0.02 < mask.mean() < 0.1


@pytest.mark.parametrize("prompt", ["astronaut", "the person"])
def test_res_person_covers_the_astronaut(cpu_toolset, astronaut, prompt):
    mask = run(cpu_toolset, "RES", image=astronaut, prompt=prompt)
    assert at(mask, 0.45, 0.2)  # face
    assert at(mask, 0.3, 0.75)  # orange suit
    assert at(mask, 0.45, 0.05)  # hair
    assert not at(mask, 0.6, 0.1)  # backdrop beside the head
    assert not at(mask, 0.95, 0.5)  # black backdrop on the right
    assert 0.3 < mask.mean() < 0.8


def test_res_hair_and_clothes_split_the_person(cpu_toolset, astronaut):
    face = run(cpu_toolset, "RES", image=astronaut, prompt="face")
    hair = run(cpu_toolset, "RES", image=astronaut, prompt="her hair")
    clothes = run(cpu_toolset, "RES", image=astronaut, prompt="the clothes")
    face_top, face_bottom = mask_to_bbox(face)[1], mask_to_bbox(face)[3]
    assert 0.01 < hair.mean() < 0.1 and 0.2 < clothes.mean() < 0.7
    assert centroid(hair)[1] * astronaut.shape[0] < (face_top + face_bottom) / 2
    assert at(hair, 0.45, 0.05)
    assert not np.any(clothes[:face_top])  # nothing above the face; of its box, only the corners by the chin
    assert (clothes & face).sum() < 0.05 * face.sum()
    assert at(clothes, 0.3, 0.75)
    assert not (hair & clothes).any()


def test_res_person_without_a_person_is_an_empty_mask(cpu_toolset, coffee):
    assert not run(cpu_toolset, "RES", image=coffee, prompt="people").any()


def test_res_sky_selects_the_top(cpu_toolset):
    image, expected = sky_scene()
    assert iou(run(cpu_toolset, "RES", image=image, prompt="the sky"), expected) > 0.9


def test_res_text_finds_the_lettering(cpu_toolset):
    picture = Image.new("RGB", (256, 128), "white")
    draw = ImageDraw.Draw(picture)
    font = ImageFont.load_default(size=36)
    draw.text((12, 40), "SALE 50% OFF", fill="black", font=font)
    x0, y0, x1, y1 = draw.textbbox((12, 40), "SALE 50% OFF", font=font)
    ink = np.asarray(picture.convert("L")) < 128

    mask = run(cpu_toolset, "RES", image=np.asarray(picture), prompt="the text")
    assert (mask & ink).sum() > 0.98 * ink.sum()
    assert mask.sum() < 2 * (x1 - x0) * (y1 - y0)  # the lines' boxes with a margin, not the page


@pytest.mark.parametrize("prompt", ["red", "the red areas", "red car"])
def test_res_colour_finds_the_red_square(cpu_toolset, prompt):
    image, expected = red_square_scene()
    assert iou(run(cpu_toolset, "RES", image=image, prompt=prompt), expected) > 0.9


def test_res_colour_separates_colours(cpu_toolset):
    image, square = red_square_scene()
    assert iou(run(cpu_toolset, "RES", image=image, prompt="blue"), square) < 0.05


@pytest.mark.parametrize("prompt", ["unicorn", "the dog's face"])
def test_res_refuses_what_it_cannot_find(cpu_toolset, astronaut, prompt):
    with pytest.raises(BrickError) as error:
        run(cpu_toolset, "RES", image=astronaut, prompt=f" {prompt} ")
    assert str(error.value) == f"no CPU backend can find '{prompt}'"


def test_res_rejects_an_empty_prompt(cpu_toolset, astronaut):
    with pytest.raises(BrickError, match="prompt is empty"):
        run(cpu_toolset, "RES", image=astronaut, prompt="  ")


def test_res_batch_keeps_good_items_when_one_fails(cpu_toolset):
    sky, sky_expected = sky_scene()
    red, red_expected = red_square_scene()
    items = [{"image": sky, "prompt": "sky"}, {"image": red, "prompt": "Unicorn"}, {"image": red, "prompt": "red"}]
    first, second, third = cpu_toolset.backend("RES").run_batch(items, [1, 2, 3])
    assert iou(first["mask"] > 0, sky_expected) > 0.9
    assert isinstance(second, BrickError) and str(second) == "no CPU backend can find 'Unicorn'"
    assert iou(third["mask"] > 0, red_expected) > 0.9


# ---------------------------------------------------------------------------------------------------- MASK-SEG


def test_mask_seg_outlines_the_cup_inside_a_loose_box(cpu_toolset, coffee):
    box = np.zeros(coffee.shape[:2], np.uint8)
    box[10:160, 25:215] = 255
    mask = run(cpu_toolset, "MASK-SEG", image=coffee, mask=box)
    assert not (mask & (box == 0)).any()
    assert 0.3 * (box > 0).sum() < mask.sum() < 0.9 * (box > 0).sum()
    assert at(mask, 0.45, 0.35) and at(mask, 0.25, 0.75)  # the coffee and the saucer
    assert not at(mask, 0.12, 0.1) and not at(mask, 0.8, 0.9)  # table inside the box


def test_mask_seg_keeps_to_a_box_around_the_cat(cpu_toolset, chelsea):
    height, width = chelsea.shape[:2]
    box = np.zeros((height, width), np.uint8)
    box[5 : height - 5, 20 : width - 10] = 255
    mask = run(cpu_toolset, "MASK-SEG", image=chelsea, mask=box)
    assert not (mask & (box == 0)).any()
    assert 0.3 * (box > 0).sum() < mask.sum() < 0.95 * (box > 0).sum()
    assert at(mask, 0.4, 0.55)


def test_mask_seg_takes_a_63_bit_node_seed(cpu_toolset, coffee):
    box = np.zeros(coffee.shape[:2], np.uint8)
    box[10:160, 25:215] = 255
    (result,) = cpu_toolset.backend("MASK-SEG").run_batch([{"image": coffee, "mask": box}], [2**63 - 1])
    assert not isinstance(result, BrickError) and result["mask"].any()


def test_mask_seg_rejects_an_empty_region(cpu_toolset, coffee):
    with pytest.raises(BrickError, match="rough region is empty"):
        run(cpu_toolset, "MASK-SEG", image=coffee, mask=np.zeros(coffee.shape[:2], np.uint8))


# ---------------------------------------------------------------------------------------------------- determinism


@pytest.mark.parametrize(("brick", "prompt"), [("RES", "clothes"), ("SOS", None), ("MASK-SEG", None)])
def test_same_input_gives_the_same_mask(cpu_toolset, astronaut, brick, prompt):
    box = np.zeros(astronaut.shape[:2], np.uint8)
    box[150:, 130:] = 255
    extra = {"prompt": prompt} if brick == "RES" else {"mask": box} if brick == "MASK-SEG" else {}
    first = run(cpu_toolset, brick, image=astronaut, **extra)
    second = run(cpu_toolset, brick, image=astronaut, **extra)
    assert np.array_equal(first, second)
