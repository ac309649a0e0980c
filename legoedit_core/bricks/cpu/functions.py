"""CPU backends for the function bricks and the mask utilities (Pillow, numpy, OpenCV)."""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
from PIL import Image, ImageEnhance

from legoedit_core.bricks.cpu.common import blend_in_mask, require_nonempty
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

    def run_one(self, inputs: dict[str, Any], seed: int) -> dict[str, Any]:
        blurred = cv2.GaussianBlur(inputs["image"], (0, 0), inputs["radius"] / 2)
        return {"image": blend_in_mask(inputs["image"], blurred, inputs["mask"])}


class Adjust(PerItemBackend):
    brick, name = "ADJUST", "pillow"

    def run_one(self, inputs: dict[str, Any], seed: int) -> dict[str, Any]:
        picture = Image.fromarray(inputs["image"])
        picture = ImageEnhance.Brightness(picture).enhance(inputs["brightness"])
        picture = ImageEnhance.Contrast(picture).enhance(inputs["contrast"])
        picture = ImageEnhance.Color(picture).enhance(inputs["saturation"])
        return {"image": blend_in_mask(inputs["image"], np.asarray(picture), inputs["mask"])}


class Grayscale(PerItemBackend):
    brick, name = "GRAYSCALE", "opencv"

    def run_one(self, inputs: dict[str, Any], seed: int) -> dict[str, Any]:
        grey = cv2.cvtColor(cv2.cvtColor(inputs["image"], cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
        return {"image": blend_in_mask(inputs["image"], grey, inputs["mask"])}


class Sharpen(PerItemBackend):
    brick, name = "SHARPEN", "opencv"

    def run_one(self, inputs: dict[str, Any], seed: int) -> dict[str, Any]:
        image = inputs["image"]
        soft = cv2.GaussianBlur(image, (0, 0), 2.0)
        sharp = cv2.addWeighted(image, 1 + inputs["amount"], soft, -inputs["amount"], 0)
        return {"image": blend_in_mask(image, sharp, inputs["mask"])}


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


BACKENDS = (Crop, Blur, Adjust, Grayscale, Sharpen, Flip, Rotate, Resize, BoundingBox, Inverse, Union, Compose)
