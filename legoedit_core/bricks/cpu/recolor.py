"""CPU backend for RCM: recolour a region to a named colour in CIELAB, keeping its shading and texture."""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from legoedit_core.bricks.cpu.colors import RGB, parse_color
from legoedit_core.bricks.cpu.common import blend_along_edges, require_nonempty
from legoedit_core.bricks.cpu.referring import boxes_mask, face_boxes, skin
from legoedit_core.bricks.cpu.segment import as_mask, cleanup
from legoedit_core.bricks.spec import BrickError, PerItemBackend


class LabRecolor(PerItemBackend):
    brick, name = "RCM", "lab"
    version = "3"  # edge_alpha matte instead of a feathered hard mask (results differ from 2)

    @classmethod
    def understands(cls, prompt: str) -> bool:
        return parse_color(prompt) is not None

    def describe_needs(self) -> str:
        return "named colours in CIELAB; materials (gold leaf, marble, ...) need a model"

    def run_one(self, inputs: dict[str, Any], seed: int) -> dict[str, Any]:
        image, region, prompt = inputs["image"], inputs["mask"], inputs["prompt"]
        target = parse_color(prompt)
        if target is None:
            raise BrickError(f"the CPU backend recolours to named colours only; {prompt!r} is not a colour")
        require_nonempty(region)
        named = named_thing(image, region > 127, seed)
        recoloured = recolor(image, named, target)
        return {"image": blend_along_edges(image, recoloured, as_mask(named))}


def named_thing(image: np.ndarray, region: np.ndarray, seed: int) -> np.ndarray:
    """The part of ``region`` that is the thing named: faces it only touches and the skin of the people found taken
    out (a region that is mostly a face or skin is about that), then only the pixels of the region's dominant colour
    (k-means in CIELAB, chroma distance), so a badge, a strap or a shirt under a jacket keep their colour. Falls
    back to the region when that would leave almost nothing."""
    faces = face_boxes(image)
    for face in faces:
        box = boxes_mask(image.shape, [_grow_box(face)])
        if (region & box).sum() < 0.5 * region.sum():
            region = region & ~box
    if faces:  # the skin of the people found (a model of their own skin colour), unless that is the region
        bare = region & ~skin(image, faces)
        region = bare if bare.sum() >= 0.5 * region.sum() else region
    if region.sum() < 50:
        return region
    lab = cv2.cvtColor(image, cv2.COLOR_RGB2Lab).astype(np.float32)
    samples = lab[region]
    features = np.column_stack([samples[:, 0] * 0.5, samples[:, 1], samples[:, 2]])
    cv2.setRNGSeed(seed % 2**31)
    criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 20, 0.5)
    _, labels, centres = cv2.kmeans(features, 3, None, criteria, 2, cv2.KMEANS_PP_CENTERS)
    dominant = np.bincount(labels.ravel(), minlength=3).argmax()
    chroma = samples[:, 1:] - centres[dominant, 1:]
    distance = np.hypot(chroma[:, 0], chroma[:, 1])
    spread = float(np.percentile(distance[labels.ravel() == dominant], 90))
    near = np.zeros(region.shape, bool)
    near[region] = distance <= max(30.0, 1.5 * spread)  # CIELAB chroma: skin vs an orange suit is ~45
    near = cleanup(near, radius=2)
    return near if near.sum() >= 0.2 * region.sum() else region


def _grow_box(box: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    x0, y0, x1, y1 = box
    dx, dy = (x1 - x0) // 5, (y1 - y0) // 5
    return x0 - dx, y0 - dy, x1 + dx, y1 + dy


def recolor(image: np.ndarray, region: np.ndarray, target: RGB) -> np.ndarray:
    """``image`` with the pixels of the boolean ``region`` moved to ``target``'s colour (the rest is unchanged).

    Lightness: the region's mean moves to the target's, its variation (shading, texture) is kept, compressed only
    as far as needed to stay inside [0, 100]. Colour: the target's a/b, scaled per pixel by the region's relative
    chroma (so highlights and shadows stay less saturated) and faded where the new lightness nears black or white,
    where strong chroma would fall out of gamut.
    """
    lab = cv2.cvtColor(image.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)
    target_l, target_a, target_b = cv2.cvtColor(np.float32([[target]]) / 255.0, cv2.COLOR_RGB2Lab)[0, 0]
    lightness, a, b = lab[region].T

    deviation = lightness - lightness.mean()
    headroom = min(target_l, 100.0 - target_l) + 10.0  # allow a little clipping at the extremes
    spread = float(np.percentile(np.abs(deviation), 98)) + 1e-6
    new_l = np.clip(target_l + deviation * min(1.0, headroom / spread), 0.0, 100.0)

    chroma = np.hypot(a, b)
    relative = np.clip(chroma / chroma.mean(), 0.5, 1.5) if chroma.mean() > 8.0 else 1.0  # grey regions: flat
    gamut = np.clip(np.minimum(new_l / max(target_l, 1.0), (100.0 - new_l) / max(100.0 - target_l, 1.0)), 0.0, 1.0)
    scale = relative * gamut

    lab[region] = np.stack([new_l, target_a * scale, target_b * scale], axis=1)
    rgb = cv2.cvtColor(lab, cv2.COLOR_Lab2RGB)
    return np.clip(np.rint(rgb * 255.0), 0, 255).astype(np.uint8)


BACKENDS = (LabRecolor,)
