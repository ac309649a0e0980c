"""Pixel checks that the CPU edits are ones a customer accepts: strength words, no blown highlights, recolouring
that stays on the garment, watermarks, and the quality checks of the style, sharpen and denoise bricks
(docs/builder.md, "CPU edit quality")."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from legoedit_core.bricks.cpu.referring import face_boxes, find_skin, read_text
from legoedit_core.bricks.cpu.segment import as_mask, salient_objects
from legoedit_core.bricks.toolset import Toolset
from legoedit_core.data.images import read_image
from legoedit_core.executor import EditItem, Executor
from legoedit_core.judge import quality
from legoedit_core.planners.base import PlanRequest
from legoedit_core.planners.rules import RulesPlanner

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "images"


def edit(toolset: Toolset, image: np.ndarray, instruction: str) -> np.ndarray:
    """Plan with the rules planner and run the plan, as `legoedit edit` does."""
    plan = RulesPlanner(toolset).plan(PlanRequest("x", image, instruction))
    assert plan.ok, plan.error
    result = Executor(toolset).run_many([EditItem("x", image, plan.workflow, None, 7)])[0]
    assert result.status == "ok", result.error
    return result.image


def clipped(image: np.ndarray) -> np.ndarray:
    """Pixels with a channel at 255 or all channels at 0: detail lost to white or black."""
    return (image >= 255).any(axis=2) | (image <= 0).all(axis=2)


def bright_landscape() -> np.ndarray:
    """A sky that runs up to near-white (the case that blew out before), over darker ground, with texture."""
    rng = np.random.default_rng(3)
    y = np.linspace(0, 1, 240)[:, None, None]
    sky = np.array([200.0, 225.0, 252.0]) - y * np.array([60.0, 50.0, 30.0]) * 2
    ground = np.array([70.0, 110.0, 50.0]) * np.ones((240, 1, 3))
    image = np.where(y < 0.5, sky, ground) * np.ones((1, 320, 1)) + rng.normal(0, 4, (240, 320, 3))
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("photo", ["landscape", "rocket", "astronaut"])
@pytest.mark.parametrize(("instruction", "allowed"), [
    ("make it a bit brighter", 0.02), ("make it brighter", 0.03), ("more contrast", 0.03),
])
def test_brightening_and_contrast_clip_few_new_pixels(cpu_toolset, photo, instruction, allowed):
    image = bright_landscape() if photo == "landscape" else read_image(EXAMPLES / f"{photo}.jpg")
    edited = edit(cpu_toolset, image, instruction)
    newly = (clipped(edited) & ~clipped(image)).mean()
    assert newly <= allowed, f"{instruction!r} on {photo}: {newly:.1%} newly clipped"
    grey = lambda im: im.astype(np.float32).mean()  # noqa: E731
    assert grey(edited) != grey(image)


def test_a_bit_brighter_is_less_than_brighter(cpu_toolset):
    image = read_image(EXAMPLES / "rocket.jpg")
    means = [edit(cpu_toolset, image, text).astype(np.float32).mean()
             for text in ("make it a bit brighter", "make it brighter", "make it much brighter")]
    assert image.mean() < means[0] < means[1] < means[2]


def test_recolouring_a_jacket_keeps_face_skin_and_badges(cpu_toolset):
    image = read_image(EXAMPLES / "astronaut.jpg")
    edited = edit(cpu_toolset, image, "Change her jacket to burgundy")
    change = np.abs(edited.astype(np.float32) - image.astype(np.float32)).sum(axis=2)
    x0, y0, x1, y1 = face_boxes(image)[0]
    assert change[y0:y1, x0:x1].mean() < 1.0
    assert change[find_skin(image, 0)].mean() < 3.0
    badge = (slice(365, 405), slice(150, 190))  # the round mission patch on the chest, dark blue and white
    assert change[badge].mean() < 15.0
    suit = (slice(300, 330), slice(40, 110))  # orange sleeve: it is the jacket, so it changes, towards burgundy
    assert change[suit].mean() > 60.0
    red, green, blue = edited[suit].reshape(-1, 3).mean(axis=0)
    assert red > 1.5 * green and red > blue


def test_tiled_watermark_covers_the_image_at_its_opacity(cpu_toolset):
    image = np.zeros((200, 300, 3), np.uint8)
    edited = edit(cpu_toolset, image, "tiled watermark 'ACME' over the photo, semi transparent")
    inked = edited.max(axis=2) > 20
    quadrants = [inked[:100, :150], inked[:100, 150:], inked[100:, :150], inked[100:, 150:]]
    assert all(q.mean() > 0.01 for q in quadrants)
    assert edited.max() <= round(0.35 * 255) + 2  # white letters at 35% over black


def test_a_centred_watermark_sits_in_the_middle(cpu_toolset):
    image = np.zeros((200, 300, 3), np.uint8)
    inked = edit(cpu_toolset, image, "Add a SAMPLE watermark in the centre").max(axis=2) > 20
    rows, cols = np.nonzero(inked)
    assert abs(rows.mean() - 100) < 10 and abs(cols.mean() - 150) < 15


PHOTOS = {"portrait": "astronaut", "animal": "chelsea", "landscape": "rocket"}


@pytest.fixture(scope="module")
def photos() -> dict[str, np.ndarray]:
    return {kind: read_image(EXAMPLES / f"{name}.jpg") for kind, name in PHOTOS.items()}


def run_brick(toolset: Toolset, brick: str, **inputs) -> np.ndarray:
    result = toolset.backend(brick).run_batch([inputs], [0])[0]
    assert isinstance(result, dict), result
    return result["image"]


def noisy(image: np.ndarray, sigma: float) -> np.ndarray:
    rng = np.random.default_rng(0)
    return np.clip(np.rint(image + rng.normal(0, sigma, image.shape)), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("kind", PHOTOS)
@pytest.mark.parametrize("style", ["pencil sketch", "colour pencil", "cartoon", "watercolor", "oil painting",
                                   "stylize"])
def test_styles_keep_edges_and_faces_without_dark_blotches(cpu_toolset, photos, kind, style):
    source = photos[kind]
    styled = run_brick(cpu_toolset, "STYLE", image=source, prompt=style, mask=None)
    assert not np.array_equal(styled, source)
    assert quality.edge_preservation(source, styled) >= 0.6
    assert quality.new_dark_blobs(source, styled) <= 0.01
    if kind == "portrait":
        (x0, y0, x1, y1), = face_boxes(source)
        found = [box for box in face_boxes(styled) if box[0] < x1 and x0 < box[2] and box[1] < y1 and y0 < box[3]]
        assert found, f"{style}: the face is no longer recognisable"


@pytest.mark.parametrize("kind", PHOTOS)
def test_sharpen_crisps_edges_without_halos_or_grain(cpu_toolset, photos, kind):
    source = noisy(photos[kind], 6)  # a scan's grain
    sharp = run_brick(cpu_toolset, "SHARPEN", image=source, amount=1.0, mask=None)
    assert quality.edge_contrast_gain(source, sharp) >= 1.05
    assert quality.halo_fraction(source, sharp) <= 0.005
    assert quality.flat_noise_gain(source, sharp) <= 1.2


@pytest.mark.parametrize("kind", PHOTOS)
def test_denoise_removes_noise_and_keeps_texture(cpu_toolset, photos, kind):
    clean = photos[kind]
    grainy = noisy(clean, 12)
    denoised = run_brick(cpu_toolset, "SMOOTH", image=grainy, strength=0.4, mask=None)
    assert quality.psnr(clean, denoised) >= quality.psnr(clean, grainy) + 3.0
    assert quality.texture_kept(clean, denoised) >= 0.8


# ------------------------------------------------------------------------------------- what a strict customer sees
# Each check below failed on the CPU bricks before issue 29 and passes now (docs/bricks.md, "Measured choices").

STRICT = {"portrait": "astronaut", "animal": "chelsea", "product": "coffee", "landscape": "rocket"}


def strict_photo(kind: str) -> np.ndarray:
    return read_image(EXAMPLES / f"{STRICT[kind]}.jpg")


def lightness(image: np.ndarray) -> np.ndarray:
    """CIELAB lightness, 0-100."""
    return cv2.cvtColor(image.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)[:, :, 0]


def fine_detail(image: np.ndarray) -> float:
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32)
    return float(np.abs(grey - cv2.GaussianBlur(grey, (0, 0), 1.0)).mean())


def chroma(image: np.ndarray) -> float:
    lab = cv2.cvtColor(image.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)
    return float(np.hypot(lab[:, :, 1], lab[:, :, 2]).mean())


@pytest.mark.parametrize("kind", ["portrait", "animal", "landscape"])
def test_oil_painting_is_dabs_not_a_blur(cpu_toolset, kind):
    """Paint dabs keep crisp borders between them: at least twice the fine detail of a plain blur (sigma 2) of the
    photo, and strong edges at least as contrasty as that blur's (a blur loses both)."""
    source = strict_photo(kind)
    oil = run_brick(cpu_toolset, "STYLE", image=source, prompt="oil painting", mask=None)
    blur = cv2.GaussianBlur(source, (0, 0), 2.0)
    assert fine_detail(oil) >= 2.0 * fine_detail(blur)
    assert quality.edge_contrast_gain(source, oil) >= quality.edge_contrast_gain(source, blur)


@pytest.mark.parametrize("kind", ["portrait", "animal", "landscape"])
def test_watercolour_keeps_its_colour_and_is_not_a_blur(cpu_toolset, kind):
    """Washes are light and clean: the mean CIELAB chroma stays within 15% of the photo's (muddy grey lost a third),
    and the stylised areas carry their edges (more fine detail than a sigma 2 blur)."""
    source = strict_photo(kind)
    wash = run_brick(cpu_toolset, "STYLE", image=source, prompt="watercolour", mask=None)
    assert chroma(wash) >= 0.85 * chroma(source)
    assert fine_detail(wash) > fine_detail(cv2.GaussianBlur(source, (0, 0), 2.0))


@pytest.mark.parametrize("kind", ["portrait", "animal", "landscape"])
def test_sharpen_is_visible_at_full_size(cpu_toolset, kind):
    """Edge contrast up by at least 20% at amount 1 (what one sees at 100%), with no halos."""
    source = strict_photo(kind)
    sharp = run_brick(cpu_toolset, "SHARPEN", image=source, amount=1.0, mask=None)
    assert quality.edge_contrast_gain(source, sharp) >= 1.2
    assert quality.halo_fraction(source, sharp) <= 0.005


def too_dark(image: np.ndarray) -> np.ndarray:
    """The photo as an underexposed shot of it: gamma 1.8."""
    return np.rint(255.0 * (image.astype(np.float32) / 255.0) ** 1.8).astype(np.uint8)


@pytest.mark.parametrize("kind", ["portrait", "animal", "landscape"])
@pytest.mark.parametrize(("instruction", "at_least"), [
    ("brighten this up a bit, it's too dark", 5.0), ("it's too dark", 12.0), ("make it a lot brighter", 20.0),
])
def test_strength_words_give_a_visible_change_without_clipping(cpu_toolset, kind, instruction, at_least):
    """docs/bricks.md's strength table: "a bit" moves the mean lightness by 5 L* or more, plain by 12, "a lot" by 20,
    and no more than 2% of the pixels newly clip."""
    source = too_dark(strict_photo(kind))
    edited = edit(cpu_toolset, source, instruction)
    assert float(lightness(edited).mean() - lightness(source).mean()) >= at_least
    assert (clipped(edited) & ~clipped(source)).mean() <= 0.02


@pytest.mark.parametrize("kind", ["portrait", "animal", "landscape"])
def test_a_bit_more_contrast_is_visible(cpu_toolset, kind):
    """The spread of the mid-tones' lightness (L* 15-85, where contrast shows) grows by 6% or more."""
    source = strict_photo(kind)
    edited = edit(cpu_toolset, source, "a bit more contrast")
    mid = (lightness(source) > 15) & (lightness(source) < 85)
    assert lightness(edited)[mid].std() >= 1.06 * lightness(source)[mid].std()
    assert (clipped(edited) & ~clipped(source)).mean() <= 0.02


def edge_alignment(image: np.ndarray, edited: np.ndarray, mask: np.ndarray) -> float:
    """How much the edit's own edges sit on the photo's edges, near the mask's outline: the photo's gradient
    weighted by the gradient of the change, over its plain mean in a band round the outline (1: no relation)."""
    def magnitude(values: np.ndarray) -> np.ndarray:
        return np.hypot(cv2.Sobel(values, cv2.CV_32F, 1, 0), cv2.Sobel(values, cv2.CV_32F, 0, 1))

    change = np.abs(edited.astype(np.float32) - image.astype(np.float32)).sum(axis=2)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (17, 17))
    band = (cv2.dilate(mask, kernel) > 0) & (cv2.erode(mask, kernel) == 0)
    weights = magnitude(change)[band]
    photo = magnitude(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32))[band]
    return float((weights * photo).sum() / max(weights.sum(), 1e-6) / photo.mean())


@pytest.mark.parametrize("kind", ["portrait", "animal", "product"])
@pytest.mark.parametrize("offset", [-4, 4])
def test_a_rough_mask_is_refined_to_the_object_outline(cpu_toolset, kind, offset):
    """A mask 4 px inside or outside the salient object (what a coarse segmentation gives): the greyscale edit's
    edge follows the photo's edges (alignment above 1) instead of the mask's (about 1 or below)."""
    source = strict_photo(kind)
    objects = as_mask(salient_objects(source))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * abs(offset) + 1,) * 2)
    rough = cv2.dilate(objects, kernel) if offset > 0 else cv2.erode(objects, kernel)
    edited = run_brick(cpu_toolset, "GRAYSCALE", image=source, mask=rough)
    assert edge_alignment(source, edited, rough) > 1.0


def with_words(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``image`` with "SALE" drawn at the top left and "OPEN" at the bottom right, and the mask of SALE's ink."""
    picture = Image.fromarray(image)
    draw = ImageDraw.Draw(picture)
    font = ImageFont.load_default(size=max(24, image.shape[0] // 8))
    draw.text((20, 20), "SALE", fill="white", font=font, stroke_width=2, stroke_fill="black")
    width, height = picture.size
    draw.text((width - 20, height - 20), "OPEN", fill="white", font=font, stroke_width=2, stroke_fill="black",
              anchor="rb")
    sale = np.zeros(image.shape[:2], np.uint8)
    ImageDraw.Draw(Image.fromarray(sale)).text((20, 20), "SALE", fill=255, font=font, stroke_width=2)
    box = ImageDraw.Draw(picture).textbbox((20, 20), "SALE", font=font, stroke_width=2)
    sale[box[1] : box[3], box[0] : box[2]] = 255
    return np.asarray(picture), sale


@pytest.mark.parametrize("kind", ["animal", "product", "landscape"])
def test_removing_named_text_removes_only_that_text(cpu_toolset, kind):
    """OCR reads no SALE after "remove the word SALE", still reads OPEN, and the fill where SALE was is close to
    the photo under it (no smudge)."""
    clean = strict_photo(kind)
    lettered, sale_box = with_words(clean)
    assert {"SALE", "OPEN"} <= {word for line in read_text(lettered) for word in line.split()}
    edited = edit(cpu_toolset, lettered, "remove the word SALE")
    words = {word for line in read_text(edited) for word in line.split()}
    assert "SALE" not in words and "OPEN" in words
    where = sale_box > 0
    error = np.abs(edited.astype(np.float32) - clean.astype(np.float32))[where].mean()
    assert error < 0.5 * np.abs(lettered.astype(np.float32) - clean.astype(np.float32))[where].mean()


# A thin part of each photo's subject, drawn on the photo where such parts grow: (from, to) in pixels, width, colour.
THIN_PARTS = {
    "portrait": ((225, 22), (215, -1), 2, (60, 45, 30)),  # a hairpin rising from the top of the hair
    "product": ((250, 22), (262, -1), 3, (240, 240, 240)),  # a stirrer standing up out of the cup
    "landscape": ((257, 104), (257, 40), 2, (235, 235, 235)),  # an antenna on the rocket's nose
}


def with_thin_part(kind: str) -> tuple[np.ndarray, np.ndarray]:
    """The photo with its thin part drawn on, and the part's pixels."""
    start, end, width, colour = THIN_PARTS[kind]
    image = strict_photo(kind).copy()
    cv2.line(image, start, end, colour, width)
    part = np.zeros(image.shape[:2], np.uint8)
    cv2.line(part, start, end, 255, width)
    return image, part > 0


@pytest.mark.parametrize("kind", list(THIN_PARTS))
def test_a_cut_out_keeps_thin_parts(cpu_toolset, kind):
    """"An apple loses its stem": the salient object's mask covers at least 90% of a thin part (2-3 px wide) joined
    to the subject, and a new background (SOS then CBG) leaves at least 90% of the part's pixels as they were
    (before issue 29: 1-57% of the part kept)."""
    image, part = with_thin_part(kind)
    subject = as_mask(salient_objects(image))
    assert (subject[part] > 0).mean() >= 0.9
    composed = run_brick(cpu_toolset, "CBG", image=image, mask=subject, prompt="a magenta background")
    kept = np.abs(composed.astype(np.int16) - image.astype(np.int16)).max(axis=2) <= 24
    assert kept[part].mean() >= 0.9


# A second thing of the named colour, pasted into each photo away from the named one: (the named thing's pixels to
# copy, where the copy goes: y0, y1, x0, x1), with the referent and the new colour.
SAME_COLOUR = {
    "portrait": ("orange sleeve", "blue", (300, 330, 40, 110), (20, 50, 300, 370)),  # an orange card on the wall
    "product": ("red cup", "blue", (150, 200, 170, 215), (10, 60, 420, 465)),  # a second red cup's side, on the table
    "landscape": ("grey rocket", "red", (110, 300, 250, 264), (110, 300, 420, 434)),  # a second rocket, on the sky
}


def recolour(toolset: Toolset, image: np.ndarray, referent: str, colour: str) -> np.ndarray:
    """What the planner emits for "make the <referent> <colour>": RES finds the referent, RCM recolours it."""
    mask = toolset.backend("RES").run_batch([{"image": image, "prompt": referent}], [0])[0]
    assert isinstance(mask, dict), mask
    return run_brick(toolset, "RCM", image=image, mask=mask["mask"], prompt=colour)


@pytest.mark.parametrize("kind", list(SAME_COLOUR))
def test_recolouring_a_named_thing_leaves_other_things_of_its_colour(cpu_toolset, kind):
    """"Recolouring the red paint on the bike also blackens a red box on the shelf": a copy of the named thing's
    pixels pasted elsewhere in the photo keeps its colour (mean change under 3 levels) while the named thing takes
    the new colour (mean change over 60), and skin keeps its own. Before issue 29 the copy was recoloured too (cup,
    rocket) or the named thing was missed (sleeve)."""
    referent, colour, (y0, y1, x0, x1), (v0, v1, u0, u1) = SAME_COLOUR[kind]
    image = strict_photo(kind).copy()
    image[v0:v1, u0:u1] = image[y0:y1, x0:x1]
    edited = recolour(cpu_toolset, image, referent, colour)
    change = np.abs(edited.astype(np.float32) - image.astype(np.float32)).sum(axis=2)
    assert change[v0:v1, u0:u1].mean() < 3.0, "the other thing of that colour was recoloured"
    assert change[y0:y1, x0:x1].mean() > 60.0, "the named thing was not recoloured"
    if face_boxes(image):
        assert change[find_skin(image, 0)].mean() < 3.0, "faces and skin were recoloured"
