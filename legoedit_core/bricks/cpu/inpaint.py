"""CPU backends for object removal: OpenCV's classical inpainting (FASTINPAINT, INPAINT)."""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from legoedit_core.bricks.cpu.common import blend_in_mask, require_nonempty
from legoedit_core.bricks.spec import BrickError, PerItemBackend

MAX_FRACTION = 0.5  # default largest share of the frame a classical fill may cover (setting ``max_fraction``)
COARSE_SIDE = 128  # large holes are first filled on an image about this size, where they are small
GRAIN_SIGMA = 1.5  # the scale (px) below which surrounding detail counts as grain


def grow(mask: np.ndarray, radius: int) -> np.ndarray:
    """``mask`` (0/255) dilated by ``radius`` pixels with a round kernel."""
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    return cv2.dilate(np.where(mask > 127, 255, 0).astype(np.uint8), kernel)


class ClassicalFill(PerItemBackend):
    """What the classical fills share: they refuse an empty hole and one covering most of the frame."""

    setting_keys = frozenset({"max_fraction"})

    def fillable(self, hole: np.ndarray) -> None:
        """Raise a BrickError unless ``hole`` is non-empty and small enough to fill from its surroundings."""
        require_nonempty(hole)
        limit = float(self.settings.get("max_fraction", MAX_FRACTION))
        covered = float(np.mean(hole > 127))
        if covered > limit:
            raise BrickError(f"the mask covers {covered:.0%} of the frame: {self.brick}'s {self.name} backend fills a "
                             f"hole from its surroundings and refuses one over {limit:.0%} (setting max_fraction); "
                             "a generative INPAINT backend (gpu profile) or a tighter mask is needed")


class FastInpaint(ClassicalFill):
    brick, name = "FASTINPAINT", "opencv-telea"

    def run_one(self, inputs: dict[str, Any], seed: int) -> dict[str, Any]:
        image, hole = inputs["image"], inputs["mask"]
        self.fillable(hole)
        hole = grow(hole, 2)
        filled = cv2.inpaint(image, hole, 3, cv2.INPAINT_TELEA)
        return {"image": blend_in_mask(image, filled, hole)}


class Inpaint(ClassicalFill):
    """Navier-Stokes fill at a coarse scale for large holes, refined at full scale, plus seeded grain.

    Pixels outside the dilated mask are the input, exactly.
    """

    brick, name = "INPAINT", "opencv"

    def run_one(self, inputs: dict[str, Any], seed: int) -> dict[str, Any]:
        image, hole, strength = inputs["image"], inputs["mask"], float(inputs["strength"])
        self.fillable(hole)
        height, width = hole.shape
        margin = max(2, round(max(height, width) / 100))
        hole = grow(hole, margin)
        filled = _multiscale_fill(image, hole, margin)
        filled = _add_grain(filled, image, hole, margin, np.random.default_rng(seed))
        mixed = cv2.addWeighted(image, 1.0 - strength, filled, strength, 0.0)
        return {"image": blend_in_mask(image, mixed, hole, feather=margin / 2)}


def _multiscale_fill(image: np.ndarray, hole: np.ndarray, margin: int) -> np.ndarray:
    """Fill ``hole``: coarse Navier-Stokes first when it is wide, then a full-scale pass on its rim.

    ``cv2.inpaint`` smears a wide hole and costs time per hole pixel; at a coarse scale the same hole is narrow.
    The full-scale pass then re-inpaints only a band along the hole's edge, using both the real surroundings and
    the coarse fill inside as known pixels, so the seam has full-resolution detail.
    """
    height, width = hole.shape
    depth = cv2.distanceTransform(hole, cv2.DIST_L2, 5).max()  # half the hole's narrowest width
    scale = min(1.0, COARSE_SIDE / max(height, width))
    if depth * scale < 4 or scale == 1.0:
        return cv2.inpaint(image, hole, 5, cv2.INPAINT_NS)
    small_size = (max(1, round(width * scale)), max(1, round(height * scale)))
    small = cv2.resize(image, small_size, interpolation=cv2.INTER_AREA)
    small_hole = cv2.resize(hole, small_size, interpolation=cv2.INTER_AREA)  # any pixel the hole touches
    coarse = cv2.inpaint(small, np.where(small_hole > 0, 255, 0).astype(np.uint8), 5, cv2.INPAINT_NS)
    base = np.where(hole[:, :, None] > 0, cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC), image)
    core = cv2.erode(hole, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (4 * margin + 1, 4 * margin + 1)))
    rim = cv2.subtract(hole, core)
    return cv2.inpaint(base, rim, 3, cv2.INPAINT_TELEA)


def _add_grain(filled: np.ndarray, image: np.ndarray, hole: np.ndarray, margin: int,
               rng: np.random.Generator) -> np.ndarray:
    """Add seeded noise inside ``hole`` with the fine-grain std of the ring around it, so the fill is not plastic."""
    ring = cv2.subtract(grow(hole, 3 * margin), hole) > 0
    if not ring.any():
        return filled
    picture = image.astype(np.float32)
    detail = picture - cv2.GaussianBlur(picture, (0, 0), GRAIN_SIGMA)
    around = detail[ring]
    # Median absolute deviation, not std: edges crossing the ring are outliers, not grain.
    grain_std = 1.4826 * np.median(np.abs(around - np.median(around, axis=0)), axis=0)
    noise = cv2.GaussianBlur(rng.standard_normal(hole.shape, dtype=np.float32), (0, 0), 1.0)
    noise /= max(float(noise.std()), 1e-6)
    # One noise field for all channels: real grain is mostly in luminance, so it stays colour-neutral.
    grain = noise[:, :, None] * grain_std[None, None, :]
    out = filled.astype(np.float32) + np.where(hole[:, :, None] > 0, grain, 0.0)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


BACKENDS = (FastInpaint, Inpaint)
