"""CPU backend for CBG: keep the foreground, put a colour, a gradient or a blur of the scene behind it.

The Image type has no alpha channel, so "transparent" / "remove the background" gives white: the usual stand-in
for a cut-out on a catalogue page.
"""

from __future__ import annotations

import re
from typing import Any

import cv2
import numpy as np

from legoedit_core.bricks.cpu.colors import RGB, parse_color
from legoedit_core.bricks.cpu.common import blend, edge_alpha, require_nonempty
from legoedit_core.bricks.cpu.segment import as_mask
from legoedit_core.bricks.spec import BrickError, PerItemBackend

BLUR_WORDS = ("blur", "bokeh", "defocus", "out of focus", "depth of field")
GRADIENT_WORDS = ("gradient", "fading", "fades into", "fade", "ombre", "shaded")  # "blue fading to white"
CUTOUT_WORDS = ("transparent", "remove", "no background", "cut out", "cutout", "delete")
WHITE: RGB = (255, 255, 255)


class CompositeBackground(PerItemBackend):
    brick, name = "CBG", "composite"
    version = "2"  # the matte follows the subject's outline (results differ from 1)

    @classmethod
    def understands(cls, prompt: str) -> bool:
        return background_kind(prompt) is not None

    def describe_needs(self) -> str:
        return "a colour, a gradient, white (cut-out) or a blur of the scene; a scene description needs a model"

    def run_one(self, inputs: dict[str, Any], seed: int) -> dict[str, Any]:
        image, foreground, prompt = inputs["image"], inputs["mask"] > 127, inputs["prompt"]
        require_nonempty(inputs["mask"], "foreground mask")
        background = new_background(image, foreground, prompt)
        return {"image": composite(image, background, foreground)}


def background_kind(prompt: str) -> str | None:
    """What a prompt asks of the CPU backend: blur, cutout, gradient or colour; None for anything else."""
    text = prompt.lower().strip()
    if any(word in text for word in BLUR_WORDS):
        return "blur"
    if any(word in text for word in CUTOUT_WORDS):
        return "cutout"
    if any(word in text for word in GRADIENT_WORDS):
        return "gradient"
    return "colour" if parse_color(text) is not None else None


def new_background(image: np.ndarray, foreground: np.ndarray, prompt: str) -> np.ndarray:
    """The full-size background that ``prompt`` asks for; BrickError when it needs a generative model."""
    kind = background_kind(prompt)
    height, width = foreground.shape
    if kind == "blur":
        return background_blur(image, foreground, sigma=max(3.0, 0.03 * max(height, width)))
    if kind == "cutout":
        return np.full_like(image, WHITE)
    if kind == "gradient":
        return gradient(prompt, height, width)
    colour = parse_color(prompt)
    if colour is None:
        raise BrickError(f"the CPU backend can use a colour, a gradient or blur; {prompt!r} needs a generative CBG "
                         "backend")
    return np.full_like(image, colour)


def gradient(prompt: str, height: int, width: int) -> np.ndarray:
    """A vertical gradient, top to bottom, from "gradient from X to Y" or "an X to Y gradient"."""
    text = re.sub(r"\b(?:gradient|from)\b", " ", prompt.lower())  # parse_color skips "a", "background", ...
    ends = [parse_color(part) for part in re.split(r"\s(?:to|into)\s", text)]
    if len(ends) != 2 or None in ends:
        raise BrickError(f"could not read two colours in the gradient {prompt!r}: write 'gradient from X to Y'")
    top, bottom = np.float32(ends[0]), np.float32(ends[1])
    weights = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None, None]
    column = np.rint((1 - weights) * top + weights * bottom).astype(np.uint8)
    return np.broadcast_to(column, (height, width, 3)).copy()


def background_blur(image: np.ndarray, foreground: np.ndarray, sigma: float) -> np.ndarray:
    """Blur the scene behind ``foreground`` without smearing the foreground into it.

    A normalised convolution: blur(image * w) / blur(w) with w = 0 on the (slightly grown) foreground, so each
    background pixel averages background pixels only and no halo of the subject's colours forms around it.
    """
    grown = cv2.dilate(foreground.astype(np.uint8), np.ones((5, 5), np.uint8))
    weight = 1.0 - grown.astype(np.float32)
    picture = image.astype(np.float32)
    numerator = cv2.GaussianBlur(picture * weight[:, :, None], (0, 0), sigma)
    denominator = cv2.GaussianBlur(weight, (0, 0), sigma)[:, :, None]
    plain = cv2.GaussianBlur(picture, (0, 0), sigma)  # only where no background is near: under the subject
    blurred = np.where(denominator > 1e-3, numerator / np.maximum(denominator, 1e-3), plain)
    return np.clip(np.rint(blurred), 0, 255).astype(np.uint8)


def composite(image: np.ndarray, background: np.ndarray, foreground: np.ndarray) -> np.ndarray:
    """``image`` over ``background`` through the foreground's ``edge_alpha``: the matte follows the subject's own
    outline (soft on hair and fur), so no rim of the old background and no cut through the subject is left."""
    return blend(background, image, edge_alpha(image, as_mask(foreground)))


BACKENDS = (CompositeBackground,)
