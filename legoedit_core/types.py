"""Port types and the value conventions that every brick shares.

Values travel between bricks as plain Python / numpy objects:

- ``Image``:  ``np.ndarray`` of shape (H, W, 3), dtype uint8, RGB.
- ``Mask``:   ``np.ndarray`` of shape (H, W), dtype uint8, 0 or 255.
- ``Text``:   ``str``.
- ``Number``: ``float`` (ints are accepted and widened).
- ``BBox``:   ``tuple[int, int, int, int]`` as (x0, y0, x1, y1) in pixels, x1/y1 exclusive.
"""

from __future__ import annotations

import math
from enum import StrEnum
from typing import Any

import numpy as np


class PortType(StrEnum):
    IMAGE = "Image"
    MASK = "Mask"
    TEXT = "Text"
    NUMBER = "Number"
    BBOX = "BBox"

    @property
    def literal_allowed(self) -> bool:
        """Image and Mask values only ever come from references, never from literals."""
        return self in (PortType.TEXT, PortType.NUMBER, PortType.BBOX)


BBox = tuple[int, int, int, int]


class ValueTypeError(TypeError):
    """A value does not have the shape or dtype its port type promises."""


def check_value(port_type: PortType, value: Any) -> Any:
    """Return ``value`` normalised to ``port_type``'s convention, or raise ValueTypeError."""
    if port_type is PortType.IMAGE:
        if not (isinstance(value, np.ndarray) and value.ndim == 3 and value.shape[2] == 3 and value.dtype == np.uint8):
            raise ValueTypeError(f"expected an RGB uint8 image (H, W, 3), got {_describe(value)}")
        return value
    if port_type is PortType.MASK:
        if not (isinstance(value, np.ndarray) and value.ndim == 2 and value.dtype == np.uint8):
            raise ValueTypeError(f"expected a uint8 mask (H, W), got {_describe(value)}")
        return value
    if port_type is PortType.TEXT:
        if not isinstance(value, str):
            raise ValueTypeError(f"expected text, got {_describe(value)}")
        return value
    if port_type is PortType.NUMBER:
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise ValueTypeError(f"expected a number, got {_describe(value)}")
        if not math.isfinite(value):
            raise ValueTypeError(f"expected a finite number, got {value}")
        return float(value)
    if port_type is PortType.BBOX:
        if not (isinstance(value, (list, tuple)) and len(value) == 4):
            raise ValueTypeError(f"expected a box [x0, y0, x1, y1], got {_describe(value)}")
        x0, y0, x1, y1 = (int(round(float(v))) for v in value)
        if x1 <= x0 or y1 <= y0:
            raise ValueTypeError(f"box {list(value)} is empty: need x0 < x1 and y0 < y1")
        return (x0, y0, x1, y1)
    raise ValueTypeError(f"unknown port type {port_type!r}")


def _describe(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return f"array shape={value.shape} dtype={value.dtype}"
    return type(value).__name__


def size_of(value: np.ndarray) -> tuple[int, int]:
    """(width, height) of an Image or Mask."""
    return int(value.shape[1]), int(value.shape[0])


def binarize(mask: np.ndarray) -> np.ndarray:
    """Any single-channel array -> a 0/255 uint8 mask."""
    return np.where(np.asarray(mask) > 127, 255, 0).astype(np.uint8)


def mask_to_bbox(mask: np.ndarray) -> BBox | None:
    """Tight bounding box of the non-zero pixels, or None for an empty mask."""
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return None
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def bbox_to_mask(box: BBox, width: int, height: int) -> np.ndarray:
    """A filled rectangle mask of the given size, clipped to the canvas."""
    x0, y0, x1, y1 = box
    mask = np.zeros((height, width), np.uint8)
    mask[max(0, y0) : min(height, y1), max(0, x0) : min(width, x1)] = 255
    return mask


def mask_to_image(mask: np.ndarray) -> np.ndarray:
    """A mask rendered as a grey RGB image (for viewing and for Image-typed outputs)."""
    return np.repeat(mask[:, :, None], 3, axis=2)
