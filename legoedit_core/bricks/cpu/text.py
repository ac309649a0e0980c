"""CPU backend for TEXT: one line drawn with Pillow in the font Pillow itself ships (Aileron Regular, CC0).

``ImageFont.load_default(size)`` is that font, built into Pillow's FreeType support, so no font file has to be
found on the machine and every worker draws the same letters.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from legoedit_core.bricks.cpu.colors import parse_color
from legoedit_core.bricks.spec import BrickError, PerItemBackend

# Position -> (Pillow anchor, x as a fraction of the width, y as a fraction of the height), before the margin.
PLACES: dict[str, tuple[str, float, float]] = {
    "top": ("mt", 0.5, 0.0), "bottom": ("mb", 0.5, 1.0), "center": ("mm", 0.5, 0.5),
    "top-left": ("lt", 0.0, 0.0), "top-right": ("rt", 1.0, 0.0),
    "bottom-left": ("lb", 0.0, 1.0), "bottom-right": ("rb", 1.0, 1.0),
}
MARGIN = 0.04  # of the shorter side, between the text and the frame's edge
FIT = 0.92  # the widest a line may be, as a fraction of the image width


def font(size: int) -> ImageFont.FreeTypeFont:
    loaded = ImageFont.load_default(size=size)
    if not isinstance(loaded, ImageFont.FreeTypeFont):
        raise BrickError("drawing text needs Pillow built with FreeType (its bundled font is a FreeType font)")
    return loaded


def draw_text(image: np.ndarray, words: str, position: str, size: float, colour: tuple[int, int, int],
              opacity: float = 1.0) -> np.ndarray:
    """``image`` with ``words`` on one line at ``position`` (or repeated in staggered rows when ``tiled``), in
    ``colour`` with a dark or light outline, blended at ``opacity``."""
    height, width = image.shape[:2]
    pixels = max(8, round(size * height))
    letters = font(pixels)
    while pixels > 8 and letters.getlength(words) > FIT * width:
        pixels = max(8, int(pixels * FIT * width / letters.getlength(words)))
        letters = font(pixels)
    luminance = 0.299 * colour[0] + 0.587 * colour[1] + 0.114 * colour[2]
    outline = (0, 0, 0) if luminance > 128 else (255, 255, 255)
    layer = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    for x, y, anchor in _anchors(position, width, height, letters.getlength(words), pixels):
        draw.text((x, y), words, fill=(*colour, 255), font=letters, anchor=anchor,
                  stroke_width=max(1, pixels // 14), stroke_fill=(*outline, 255))
    alpha = np.asarray(layer)[:, :, 3:].astype(np.float32) / 255.0 * opacity
    painted = np.asarray(layer)[:, :, :3].astype(np.float32)
    return np.clip(np.rint(image * (1 - alpha) + painted * alpha), 0, 255).astype(np.uint8)


def _anchors(position: str, width: int, height: int, line: float, pixels: int) -> list[tuple[float, float, str]]:
    """Where each copy of the line goes: one place, or a staggered grid covering the image for ``tiled``."""
    if position == "tiled":
        step_x, step_y = line + 2 * pixels, 3 * pixels
        return [(x + (row % 2) * step_x / 2, y, "mm")
                for row, y in enumerate(np.arange(pixels, height, step_y))
                for x in np.arange(-step_x / 2, width + step_x, step_x)]
    anchor, fx, fy = PLACES[position]
    margin = MARGIN * min(height, width)
    x = fx * width + margin * (1 - 2 * fx) if anchor[0] != "m" else fx * width
    y = fy * height + margin * (1 - 2 * fy) if anchor[1] != "m" else fy * height
    return [(x, y, anchor)]


class PillowText(PerItemBackend):
    brick, name = "TEXT", "pillow"
    version = "2"  # opacity and tiling

    def describe_needs(self) -> str:
        return "Pillow's bundled font (Aileron Regular)"

    def run_one(self, inputs: dict[str, Any], seed: int) -> dict[str, Any]:
        words = inputs["prompt"].strip()
        if not words:
            raise BrickError("the text is empty: say what to write")
        colour = parse_color(inputs["color"])
        if colour is None:
            raise BrickError(f"{inputs['color']!r} is not a colour")
        return {"image": draw_text(inputs["image"], words, inputs["position"], inputs["size"], colour,
                                   float(inputs["opacity"]))}


BACKENDS = (PillowText,)
