"""CPU backend for STYLE: OpenCV's non-photorealistic filters, chosen from the prompt by keywords.

OpenCV's ``xphoto.oilPainting`` lives in the contrib build, which cannot be installed beside the headless wheel the
other packages pull in, so its algorithm (the most common lightness level in a neighbourhood) is written here with
``cv2.boxFilter``. See docs/bricks.md for what each style is measured against.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import cv2
import numpy as np

from legoedit_core.bricks.cpu.common import blend_along_edges, require_nonempty
from legoedit_core.bricks.spec import BrickError, PerItemBackend

Filter = Callable[[np.ndarray], np.ndarray]  # RGB uint8 -> RGB uint8


def _bgr(filter_bgr: Callable[[np.ndarray], np.ndarray]) -> Filter:
    """Wrap an OpenCV photo filter that works in BGR order as an RGB -> RGB filter."""
    return lambda rgb: cv2.cvtColor(filter_bgr(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)), cv2.COLOR_BGR2RGB)


def pencil(rgb: np.ndarray) -> np.ndarray:
    """A graphite sketch by colour dodge: the grey image divided by its blurred negative, so flat areas (a dark coat
    of fur as much as a white wall) turn to paper and only edges and texture draw as strokes; a light wash of the
    original tones keeps shapes readable."""
    grey = cv2.cvtColor(cv2.bilateralFilter(rgb, 7, 40, 7), cv2.COLOR_RGB2GRAY)
    sigma = max(2.0, min(rgb.shape[:2]) / 80)
    negative = cv2.GaussianBlur(255 - grey, (0, 0), sigma)
    dodge = cv2.divide(grey, 255 - negative, scale=256).astype(np.float32) / 255.0
    strokes = np.clip(dodge, 0, 1) ** 2.2  # darker, cleaner lines
    shade = 0.8 + 0.2 * grey.astype(np.float32) / 255.0
    sketch = np.clip(np.rint(strokes * shade * 255), 0, 255).astype(np.uint8)
    return cv2.cvtColor(sketch, cv2.COLOR_GRAY2RGB)


def colour_pencil(rgb: np.ndarray) -> np.ndarray:
    """The pencil strokes over a light wash of the photo's colours."""
    wash = 0.45 * 255 + 0.55 * cv2.bilateralFilter(rgb, 9, 60, 9).astype(np.float32)
    return np.clip(np.rint(pencil(rgb).astype(np.float32) / 255.0 * wash), 0, 255).astype(np.uint8)


stylize = _bgr(lambda bgr: cv2.stylization(bgr, sigma_s=60, sigma_r=0.45))


def cartoon(rgb: np.ndarray) -> np.ndarray:
    """Flat colour areas (edge-preserving smoothing, then the image's own 10 main colours by k-means) under thin
    ink lines where the smoothed image has real edges (Canny, specks dropped), so soft backgrounds stay clean."""
    smooth = cv2.edgePreservingFilter(rgb, flags=cv2.RECURS_FILTER, sigma_s=50, sigma_r=0.35)
    pixels = smooth.reshape(-1, 3).astype(np.float32)
    sample = pixels[:: max(1, len(pixels) // 20000)]
    cv2.setRNGSeed(0)
    criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 15, 1.0)
    _, _, centres = cv2.kmeans(sample, 10, None, criteria, 1, cv2.KMEANS_PP_CENTERS)
    nearest = np.argmin(((pixels[:, None, :] - centres[None]) ** 2).sum(-1), axis=1)
    flat = centres[nearest].reshape(rgb.shape)
    flat = 0.7 * flat + 0.3 * smooth.astype(np.float32)  # keep a little of the shading inside each area
    grey = cv2.medianBlur(cv2.cvtColor(smooth, cv2.COLOR_RGB2GRAY), 5)
    median = float(np.median(grey))
    edges = cv2.Canny(grey, 0.33 * median, 0.8 * median + 10)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(edges, connectivity=8)
    long_enough = np.zeros(count, bool)
    long_enough[1:] = stats[1:, cv2.CC_STAT_AREA] >= max(12, min(rgb.shape[:2]) // 25)
    lines = long_enough[labels].astype(np.float32)
    lines = cv2.GaussianBlur(lines, (0, 0), 0.7) * 0.75
    inked = flat * (1.0 - lines[:, :, None]) + 30.0 * lines[:, :, None]
    return np.clip(np.rint(inked), 0, 255).astype(np.uint8)


def watercolor(rgb: np.ndarray) -> np.ndarray:
    """Transparent washes on white paper: OpenCV's stylization flattens the photo into soft colour areas, which are
    then lightened towards the paper in CIELAB with their chroma kept (a wash is light, not grey), and the wash
    edges are darkened a little where pigment pools."""
    soft = stylize(rgb)
    lab = cv2.cvtColor(soft.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)
    rims = cv2.morphologyEx(lab[:, :, 0], cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8))
    lab[:, :, 0] = 22.0 + 0.78 * lab[:, :, 0] - 0.15 * np.clip(rims, 0.0, 40.0)
    lab[:, :, 1:] *= 1.15
    washed = cv2.cvtColor(lab, cv2.COLOR_Lab2RGB)
    return np.clip(np.rint(washed * 255.0), 0, 255).astype(np.uint8)


def oil(rgb: np.ndarray) -> np.ndarray:
    """Paint dabs: OpenCV-contrib's ``xphoto.oilPainting`` algorithm (each pixel takes the mean colour of the most
    common lightness level in its neighbourhood), written with ``cv2.boxFilter`` because the contrib wheel cannot be
    installed beside ``opencv-python-headless``; run on an edge-preserving smoothing of the photo, a little richer
    in colour. The result is flat dabs with crisp borders, not a blur."""
    smooth = cv2.edgePreservingFilter(rgb, flags=cv2.RECURS_FILTER, sigma_s=30, sigma_r=0.3).astype(np.float32)
    radius = max(2, round(min(rgb.shape[:2]) / 170))
    size = (2 * radius + 1, 2 * radius + 1)
    grey = cv2.cvtColor(smooth, cv2.COLOR_RGB2GRAY)
    levels = np.minimum((grey / 256.0 * OIL_LEVELS).astype(np.int32), OIL_LEVELS - 1)
    best_count = np.zeros(grey.shape, np.float32)
    painted = np.zeros_like(smooth)
    for level in range(OIL_LEVELS):
        member = (levels == level).astype(np.float32)
        count = cv2.boxFilter(member, -1, size, normalize=False)
        better = count > best_count
        if better.any():
            sums = cv2.boxFilter(smooth * member[:, :, None], -1, size, normalize=False)
            painted[better] = sums[better] / count[better][:, None]
            best_count = np.maximum(best_count, count)
    hsv = cv2.cvtColor(np.clip(painted, 0, 255).astype(np.uint8), cv2.COLOR_RGB2HSV).astype(np.float32)
    hsv[:, :, 1] = np.clip(hsv[:, :, 1] * 1.15, 0, 255)
    return cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB)


OIL_LEVELS = 12  # lightness levels of the dab filter: fewer give broader dabs


def black_and_white(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)


SEPIA = np.float32([[0.393, 0.769, 0.189], [0.349, 0.686, 0.168], [0.272, 0.534, 0.131]])


def sepia(rgb: np.ndarray) -> np.ndarray:
    return np.clip(rgb.astype(np.float32) @ SEPIA.T, 0, 255).astype(np.uint8)


def vintage(rgb: np.ndarray) -> np.ndarray:
    """Half sepia, faded blacks and a vignette."""
    toned = 0.55 * sepia(rgb).astype(np.float32) + 0.45 * rgb.astype(np.float32)
    faded = 30 + toned * (200 / 255)
    height, width = rgb.shape[:2]
    y, x = np.linspace(-1, 1, height)[:, None], np.linspace(-1, 1, width)[None, :]
    vignette = 1.0 - 0.35 * np.clip(x**2 + y**2 - 0.3, 0, None)
    return np.clip(np.rint(faded * vignette[:, :, None]), 0, 255).astype(np.uint8)


# (name shown in errors, keywords, filter), checked in order: "colour pencil" before "pencil", "oil painting"
# and "watercolor painting" before the generic "painting".
STYLES: tuple[tuple[str, tuple[str, ...], Filter], ...] = (
    ("colour pencil", ("colour pencil", "color pencil", "coloured pencil", "colored pencil", "crayon"), colour_pencil),
    ("pencil sketch", ("pencil", "sketch", "drawing", "charcoal"), pencil),
    ("watercolor", ("watercolor", "watercolour", "aquarelle"), watercolor),
    ("oil painting", ("oil", "impasto"), oil),
    ("cartoon", ("cartoon", "comic", "anime", "manga", "cel shaded", "toon"), cartoon),
    ("stylized painting", ("styliz", "stylis", "painting", "painterly", "artistic"), stylize),
    ("black and white", ("black and white", "black & white", "b&w", "monochrome", "grayscale", "greyscale"),
     black_and_white),
    ("sepia", ("sepia",), sepia),
    ("vintage", ("vintage", "retro", "old photo", "film"), vintage),
)


def choose_style(prompt: str) -> Filter:
    """The filter whose keywords the prompt mentions first in STYLES' order; BrickError if none."""
    text = re.sub(r"\s+", " ", prompt.lower().replace("-", " "))
    for _, keywords, style in STYLES:
        if any(keyword in text for keyword in keywords):
            return style
    known = ", ".join(name for name, _, _ in STYLES)
    raise BrickError(f"the CPU backend knows these styles: {known}; {prompt!r} is none of them")


class NprStyle(PerItemBackend):
    brick, name = "STYLE", "opencv-npr"
    version = "3"  # dab oil, clean watercolour, edge_alpha mask edge (results differ from 2)

    @classmethod
    def understands(cls, prompt: str) -> bool:
        try:
            choose_style(prompt)
        except BrickError:
            return False
        return True

    def describe_needs(self) -> str:
        return "OpenCV filters for " + ", ".join(name for name, _, _ in STYLES)

    def run_one(self, inputs: dict[str, Any], seed: int) -> dict[str, Any]:
        image, region = inputs["image"], inputs["mask"]
        style = choose_style(inputs["prompt"])
        if region is not None:
            require_nonempty(region)
        return {"image": blend_along_edges(image, style(image), region)}


BACKENDS = (NprStyle,)
