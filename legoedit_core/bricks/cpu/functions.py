"""CPU backends for the function bricks and the mask utilities (Pillow, numpy, OpenCV)."""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
from PIL import Image, ImageEnhance

from legoedit_core.bricks.cpu.colors import parse_color
from legoedit_core.bricks.cpu.common import blend_along_edges, blend_in_mask, require_nonempty
from legoedit_core.bricks.spec import BrickError, PerItemBackend
from legoedit_core.types import bbox_to_mask, mask_to_bbox, size_of


class Crop(PerItemBackend):
    brick, name = "CROP", "numpy"

    def run_one(self, inputs: dict[str, Any], seed: int) -> dict[str, Any]:
        image = inputs["image"]
        width, height = size_of(image)
        x0, y0, x1, y1 = inputs["bbox"]
        x0, y0, x1, y1 = max(0, x0), max(0, y0), min(width, x1), min(height, y1)
        if x1 <= x0 or y1 <= y0:
            raise BrickError(f"box {inputs['bbox']} lies outside the {width}x{height} image")
        return {"image": np.ascontiguousarray(image[y0:y1, x0:x1])}


class Blur(PerItemBackend):
    brick, name = "BLUR", "opencv"
    version = "2"  # the mask edge follows the object (edge_alpha)

    def run_one(self, inputs: dict[str, Any], seed: int) -> dict[str, Any]:
        blurred = cv2.GaussianBlur(inputs["image"], (0, 0), inputs["radius"] / 2)
        return {"image": blend_along_edges(inputs["image"], blurred, inputs["mask"])}


class Adjust(PerItemBackend):
    """Brightness and contrast as tone curves that keep black and white where they are (so highlights are not
    blown out and shadows not crushed), then saturation (Pillow) and white balance. The brightness and contrast
    factors have a response curve of their own (``tone_curve``, docs/bricks.md): "a bit" is still a visible change."""

    brick, name = "ADJUST", "tone-curve"
    version = "2"  # brightness moves the mean lightness by 60 ln(b) L* x room; contrast slope c**2 (differs from 1)

    def run_one(self, inputs: dict[str, Any], seed: int) -> dict[str, Any]:
        image, mask = inputs["image"], inputs["mask"]
        pixels = image[mask > 127] if mask is not None and np.any(mask > 127) else image.reshape(-1, 3)
        curve = tone_curve(inputs["brightness"], inputs["contrast"], pixels)
        picture = Image.fromarray(cv2.LUT(image, curve))
        picture = ImageEnhance.Color(picture).enhance(inputs["saturation"])
        adjusted = white_balance(np.asarray(picture), inputs["temperature"])
        return {"image": blend_along_edges(image, adjusted, mask)}


LIGHTNESS_PER_LOG = 60.0  # b moves a mid-grey photo's mean lightness by 60 ln(b) L*: 1.1 -> +5.7, 1.3 -> +16
CONTRAST_POWER = 2.0  # contrast c is a slope of c**2 at the mean: 1.1 -> 1.21, 1.3 -> 1.69


def tone_curve(brightness: float, contrast: float, pixels: np.ndarray) -> np.ndarray:
    """A 256-entry lookup table for RGB ``pixels`` (N, 3): brightness, then contrast, each monotonic with 0 -> 0
    and 255 -> 255.

    Brightness ``b`` is a ``lift`` curve whose ``g`` is found (bisection, within 1/4 to 4) so that the pixels' mean
    CIELAB lightness moves by ``LIGHTNESS_PER_LOG * ln(b)`` times the room left (``_gamma_for``): "a bit" is visible
    on a dark photo and a bright one alike. Contrast ``c`` > 1 mixes an end-normalised sigmoid around the pixels'
    mean into the identity so that the slope at the mean is ``c ** 2`` while the slope at black and white stays at
    least ``1 - w`` (the sigmoid's share), so shadows and highlights are compressed, not crushed; ``c`` < 1 pulls
    every value towards the mean by ``c ** 2``, which cannot clip.
    """
    sample = np.ascontiguousarray(pixels[:: max(1, len(pixels) // 4096)]).reshape(-1, 1, 3)
    x = np.linspace(0.0, 1.0, 256)
    if brightness != 1:
        x = lift(x, _gamma_for(sample, float(np.log(max(brightness, 1e-3)))))
    mean = float(np.mean(x[cv2.cvtColor(sample, cv2.COLOR_RGB2GRAY)]))
    pivot, slope = min(max(mean, 0.05), 0.95), contrast**CONTRAST_POWER
    if slope > 1:
        steep = max(slope, SIGMOID_SLOPE)
        gain = _sigmoid_gain(steep, pivot)
        low, high = _sigmoid(gain * (0.0 - pivot)), _sigmoid(gain * (1.0 - pivot))
        share = (slope - 1.0) / (steep - 1.0)
        x = x + share * ((_sigmoid(gain * (x - pivot)) - low) / (high - low) - x)
    else:
        x = pivot + (x - pivot) * slope
    return np.clip(np.rint(x * 255.0), 0, 255).astype(np.uint8)


SIGMOID_SLOPE = 3.0  # the contrast sigmoid's own slope at the mean; a gentler contrast takes a share of it


def lift(levels: np.ndarray, gamma: float) -> np.ndarray:
    """Brighten (``gamma`` > 1: ``x ** (1 / g)``) or darken (< 1: ``1 - (1 - x) ** g``) levels in [0, 1]. Each keeps
    0 and 1 and has a slope below 1 only at the end it moves towards, and a finite one there, so nothing that was
    not white or black is pushed into it."""
    return levels ** (1.0 / gamma) if gamma >= 1 else 1.0 - (1.0 - levels) ** gamma


def _gamma_for(sample: np.ndarray, log_brightness: float) -> float:
    """The ``g`` (1/4 to 4) for which ``lift(x, g)`` moves ``sample``'s mean CIELAB lightness ``L`` by
    ``LIGHTNESS_PER_LOG * log_brightness``, scaled by the room left (``(100 - L) / 50`` up, ``L / 50`` down, at least
    0.5): a dark photo is lifted more than one that is already bright, which would only wash out, but a bright one
    still visibly."""
    codes = sample.reshape(-1, 3)
    levels = np.linspace(0.0, 1.0, 256)

    def lightness(gamma: float) -> float:
        curve = np.rint(lift(levels, gamma) * 255.0).astype(np.intp)
        luminance = SRGB_TO_LINEAR[curve][codes] @ LUMINANCE
        root = np.where(luminance > 0.008856, np.cbrt(luminance), 7.787 * luminance + 16 / 116)
        return float(np.mean(116.0 * root - 16.0))

    start = lightness(1.0)
    room = max(0.5, (100.0 - start if log_brightness > 0 else start) / 50.0)
    target = start + LIGHTNESS_PER_LOG * log_brightness * room
    low, high = (0.0, np.log(4.0)) if log_brightness > 0 else (-np.log(4.0), 0.0)
    for _ in range(16):
        middle = (low + high) / 2
        low, high = (middle, high) if lightness(float(np.exp(middle))) < target else (low, middle)
    return float(np.exp((low + high) / 2))


_CODES = np.arange(256) / 255.0
SRGB_TO_LINEAR = np.where(_CODES <= 0.04045, _CODES / 12.92, ((_CODES + 0.055) / 1.055) ** 2.4)
LUMINANCE = np.array([0.2126, 0.7152, 0.0722])  # linear sRGB -> CIE Y


def _sigmoid(value: np.ndarray | float) -> np.ndarray | float:
    return 1.0 / (1.0 + np.exp(-value))


def _sigmoid_gain(slope: float, pivot: float) -> float:
    """The sigmoid gain whose end-normalised curve has ``slope`` at ``pivot`` (bisection: the slope grows with it)."""
    def slope_of(gain: float) -> float:
        return gain * 0.25 / (_sigmoid(gain * (1.0 - pivot)) - _sigmoid(-gain * pivot))

    low, high = 1e-3, 80.0
    for _ in range(50):
        middle = (low + high) / 2
        low, high = (middle, high) if slope_of(middle) < slope else (low, middle)
    return (low + high) / 2


LUMA = np.float32([0.299, 0.587, 0.114])  # Rec. 601 weights of R, G, B


def white_balance(image: np.ndarray, temperature: float) -> np.ndarray:
    """Warmer (``temperature`` > 0: red up, blue down) or cooler (< 0), as a white-balance shift: channel gains
    scaled so that a grey's luminance stays put. At 1 red gains 25% and blue loses 25%."""
    if temperature == 0:
        return image
    gains = np.float32([1 + 0.25 * temperature, 1 + 0.05 * temperature, 1 - 0.25 * temperature])
    gains /= float(gains @ LUMA)
    return np.clip(np.rint(image.astype(np.float32) * gains), 0, 255).astype(np.uint8)


class Smooth(PerItemBackend):
    """OpenCV's edge-preserving filter (the domain transform of Gastal and Oliveira): it averages along the image
    but not across strong edges, so texture and noise flatten while outlines stay sharp."""

    brick, name = "SMOOTH", "opencv-domain-transform"
    version = "2"  # the mask edge follows the object (edge_alpha)

    def run_one(self, inputs: dict[str, Any], seed: int) -> dict[str, Any]:
        image, strength = inputs["image"], float(inputs["strength"])
        if inputs["mask"] is not None:
            require_nonempty(inputs["mask"])
        if strength == 0:
            return {"image": image}
        scale = min(image.shape[:2]) / 512  # the spatial reach follows the image size
        smooth = cv2.edgePreservingFilter(image, flags=cv2.RECURS_FILTER, sigma_s=(10 + 40 * strength) * scale,
                                          sigma_r=0.1 + 0.3 * strength)
        return {"image": blend_along_edges(image, smooth, inputs["mask"])}


class Pad(PerItemBackend):
    brick, name = "PAD", "numpy"

    def run_one(self, inputs: dict[str, Any], seed: int) -> dict[str, Any]:
        image = inputs["image"]
        colour = parse_color(inputs["color"])
        if colour is None:
            raise BrickError(f"{inputs['color']!r} is not a colour")
        height, width = image.shape[:2]
        border = round(inputs["border"] * max(height, width))
        side = max(height, width) if inputs["shape"] == "square" else 0
        new_h, new_w = max(height, side) + 2 * border, max(width, side) + 2 * border
        canvas = np.empty((new_h, new_w, 3), np.uint8)
        canvas[:] = colour
        top, left = (new_h - height) // 2, (new_w - width) // 2
        canvas[top : top + height, left : left + width] = image
        return {"image": canvas}


class Grayscale(PerItemBackend):
    brick, name = "GRAYSCALE", "opencv"
    version = "2"  # the mask edge follows the object (edge_alpha)

    def run_one(self, inputs: dict[str, Any], seed: int) -> dict[str, Any]:
        grey = cv2.cvtColor(cv2.cvtColor(inputs["image"], cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
        return {"image": blend_along_edges(inputs["image"], grey, inputs["mask"])}


class Sharpen(PerItemBackend):
    """Unsharp masking of the lightness only, gated by the image's own noise level (detail below about twice the
    noise is left alone, so grain is not amplified) and clamped to each pixel's neighbourhood (so edges get no
    bright or dark rims)."""

    brick, name = "SHARPEN", "opencv-gated-usm"
    version = "2"  # visible at 100%: radius 2, gain 1.5; edge_alpha mask edge

    def run_one(self, inputs: dict[str, Any], seed: int) -> dict[str, Any]:
        image = inputs["image"]
        return {"image": blend_along_edges(image, sharpen(image, float(inputs["amount"])), inputs["mask"])}


SHARPEN_SIGMA = 2.0  # px: the unsharp mask's radius; 1.5 left the edges of a 512 px photo looking untouched
SHARPEN_GAIN = 1.5  # detail added at amount 1 (docs/bricks.md: edge contrast +20% or more, no halo past 6 levels)


def sharpen(image: np.ndarray, amount: float) -> np.ndarray:
    """``image`` with its lightness sharpened by ``amount`` (see ``Sharpen``)."""
    lab = cv2.cvtColor(image, cv2.COLOR_RGB2Lab).astype(np.float32)
    lightness = lab[:, :, 0]
    detail = lightness - cv2.GaussianBlur(lightness, (0, 0), SHARPEN_SIGMA)
    fine = lightness - cv2.GaussianBlur(lightness, (0, 0), 0.7)
    noise = 1.4826 * float(np.median(np.abs(fine - np.median(fine)))) + 0.5  # robust sigma of the finest band
    gate = np.clip((np.abs(detail) - 2.0 * noise) / (2.0 * noise), 0.0, 1.0)
    sharp = lightness + SHARPEN_GAIN * amount * detail * gate
    kernel = np.ones((3, 3), np.uint8)
    lab[:, :, 0] = np.clip(sharp, cv2.erode(lightness, kernel) - 6.0, cv2.dilate(lightness, kernel) + 6.0)
    return cv2.cvtColor(np.clip(lab, 0, 255).astype(np.uint8), cv2.COLOR_Lab2RGB)


class Flip(PerItemBackend):
    brick, name = "FLIP", "numpy"

    def run_one(self, inputs: dict[str, Any], seed: int) -> dict[str, Any]:
        axis = 1 if inputs["direction"] == "horizontal" else 0
        return {"image": np.ascontiguousarray(np.flip(inputs["image"], axis=axis))}


class Rotate(PerItemBackend):
    brick, name = "ROTATE", "pillow"

    def run_one(self, inputs: dict[str, Any], seed: int) -> dict[str, Any]:
        rotated = Image.fromarray(inputs["image"]).rotate(inputs["angle"], Image.Resampling.BICUBIC, expand=True)
        return {"image": np.asarray(rotated)}


class Resize(PerItemBackend):
    brick, name = "RESIZE", "pillow"

    def run_one(self, inputs: dict[str, Any], seed: int) -> dict[str, Any]:
        image = inputs["image"]
        width, height = size_of(image)
        target_w, target_h = int(inputs["width"]), int(inputs["height"])
        if target_w <= 0 and target_h <= 0:
            raise BrickError("RESIZE needs a width or a height above 0")
        if target_w <= 0:
            target_w = max(1, round(width * target_h / height))
        if target_h <= 0:
            target_h = max(1, round(height * target_w / width))
        resized = Image.fromarray(image).resize((target_w, target_h), Image.Resampling.LANCZOS)
        return {"image": np.asarray(resized)}


class BoundingBox(PerItemBackend):
    brick, name = "BBOX", "numpy"

    def run_one(self, inputs: dict[str, Any], seed: int) -> dict[str, Any]:
        box = mask_to_bbox(inputs["mask"] > 127)
        if box is None:
            raise BrickError("the mask is empty, so it has no bounding box")
        width, height = size_of(inputs["mask"])
        return {"bbox": box, "mask": bbox_to_mask(box, width, height)}


class Inverse(PerItemBackend):
    brick, name = "INVERSE", "numpy"

    def run_one(self, inputs: dict[str, Any], seed: int) -> dict[str, Any]:
        return {"mask": np.where(inputs["mask"] > 127, 0, 255).astype(np.uint8)}


class Union(PerItemBackend):
    brick, name = "UNION", "numpy"

    def run_one(self, inputs: dict[str, Any], seed: int) -> dict[str, Any]:
        first, second = inputs["mask"], inputs["other"]
        if first.shape != second.shape:
            raise BrickError(f"masks differ in size: {size_of(first)} and {size_of(second)}")
        return {"mask": np.where((first > 127) | (second > 127), 255, 0).astype(np.uint8)}


class Compose(PerItemBackend):
    brick, name = "COMPOSE", "pillow"

    def run_one(self, inputs: dict[str, Any], seed: int) -> dict[str, Any]:
        base, overlay, region = inputs["image"], inputs["overlay"], inputs["mask"]
        require_nonempty(region)
        x0, y0, x1, y1 = mask_to_bbox(region > 127)
        fitted = np.asarray(Image.fromarray(overlay).resize((x1 - x0, y1 - y0), Image.Resampling.LANCZOS))
        canvas = base.copy()
        canvas[y0:y1, x0:x1] = fitted
        return {"image": blend_in_mask(base, canvas, region)}


BACKENDS = (Crop, Blur, Adjust, Grayscale, Sharpen, Flip, Rotate, Resize, BoundingBox, Inverse, Union, Compose, Smooth,
            Pad)
