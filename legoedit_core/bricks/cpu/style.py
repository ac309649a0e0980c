"""CPU backend for STYLE: OpenCV's non-photorealistic filters, chosen from the prompt by keywords.

OpenCV's ``xphoto.oilPainting`` lives in the contrib build, which the headless wheel does not include, so the oil
look is a quantised edge-preserving recipe here.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import cv2
import numpy as np

from legoedit_core.bricks.cpu.common import blend_in_mask, require_nonempty
from legoedit_core.bricks.spec import BrickError, PerItemBackend

Filter = Callable[[np.ndarray], np.ndarray]  # RGB uint8 -> RGB uint8


def _bgr(filter_bgr: Callable[[np.ndarray], np.ndarray]) -> Filter:
    """Wrap an OpenCV photo filter that works in BGR order as an RGB -> RGB filter."""
    return lambda rgb: cv2.cvtColor(filter_bgr(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)), cv2.COLOR_BGR2RGB)


def quantize(image: np.ndarray, levels: int) -> np.ndarray:
    """Posterise to ``levels`` values per channel, each at the middle of its bin."""
    step = 256 / levels
    return np.clip((np.floor(image / step) + 0.5) * step, 0, 255).astype(np.uint8)


def pencil(rgb: np.ndarray) -> np.ndarray:
    grey, _ = cv2.pencilSketch(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), sigma_s=60, sigma_r=0.07, shade_factor=0.05)
    return cv2.cvtColor(grey, cv2.COLOR_GRAY2RGB)


colour_pencil = _bgr(lambda bgr: cv2.pencilSketch(bgr, sigma_s=60, sigma_r=0.07, shade_factor=0.05)[1])
stylize = _bgr(lambda bgr: cv2.stylization(bgr, sigma_s=60, sigma_r=0.45))


def cartoon(rgb: np.ndarray) -> np.ndarray:
    """Flat colour areas (bilateral smoothing, posterised) under dark ink lines (adaptive threshold)."""
    smooth = rgb
    for _ in range(3):
        smooth = cv2.bilateralFilter(smooth, 7, 60, 7)
    grey = cv2.medianBlur(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), 5)
    block = max(3, min(rgb.shape[:2]) // 32) | 1
    lines = cv2.adaptiveThreshold(grey, 255, cv2.ADAPTIVE_THRESH_MEAN_C, cv2.THRESH_BINARY, block, 4)
    return cv2.bitwise_and(quantize(smooth, 6), cv2.cvtColor(lines, cv2.COLOR_GRAY2RGB))


def watercolor(rgb: np.ndarray) -> np.ndarray:
    """Soft stylisation in light washes, with pigment pooling (darker rims) along the wash edges."""
    soft = cv2.stylization(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), sigma_s=40, sigma_r=0.7)
    wash = cv2.cvtColor(soft, cv2.COLOR_BGR2RGB).astype(np.float32) * 0.8 + 255 * 0.2
    rims = cv2.morphologyEx(cv2.cvtColor(soft, cv2.COLOR_BGR2GRAY), cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8))
    wash *= 1.0 - 0.5 * (rims.astype(np.float32) / 255.0)[:, :, None]
    return np.clip(np.rint(wash), 0, 255).astype(np.uint8)


def oil(rgb: np.ndarray) -> np.ndarray:
    """Edge-preserving smoothing, posterised into paint patches, median-dabbed, with the brush detail lifted."""
    smooth = cv2.edgePreservingFilter(rgb, flags=cv2.RECURS_FILTER, sigma_s=40, sigma_r=0.4)
    dabs = cv2.medianBlur(quantize(smooth, 12), 5)
    return cv2.detailEnhance(dabs, sigma_s=8, sigma_r=0.2)


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
        return {"image": blend_in_mask(image, style(image), region, feather=1.5)}


BACKENDS = (NprStyle,)
