"""Recipes shared by the CPU backends: blending an edit through a mask, with edges refined to the object."""

from __future__ import annotations

import cv2
import numpy as np

from legoedit_core.bricks.spec import BrickError

GUIDE_EPS = 2e-3  # the guided filter's regulariser (image in [0, 1]): edges with less local variance are smoothed


def guided_filter(guide: np.ndarray, source: np.ndarray, radius: int, eps: float = GUIDE_EPS) -> np.ndarray:
    """He, Sun and Tang's guided filter with a colour guide (what OpenCV-contrib's ``ximgproc.guidedFilter``
    computes; the contrib wheel cannot be installed beside ``opencv-python-headless``, see docs/bricks.md).

    ``guide`` is float32 (H, W, 3) in [0, 1], ``source`` float32 (H, W). The output follows ``source`` in flat areas
    and the guide's edges where the guide has them: a mask filtered this way snaps to the object's outline.
    """
    size = (2 * radius + 1, 2 * radius + 1)

    def mean(values: np.ndarray) -> np.ndarray:
        return cv2.boxFilter(values, -1, size, borderType=cv2.BORDER_REFLECT)

    mean_i, mean_p = mean(guide), mean(source)
    cov_ip = mean(guide * source[:, :, None]) - mean_i * mean_p[:, :, None]
    outer = np.einsum("hwi,hwj->hwij", guide, guide).reshape(*guide.shape[:2], 9)
    sigma = mean(outer).reshape(*guide.shape[:2], 3, 3) - np.einsum("hwi,hwj->hwij", mean_i, mean_i)
    sigma += eps * np.eye(3, dtype=np.float32)
    a = np.linalg.solve(sigma, cov_ip[:, :, :, None])[:, :, :, 0]
    b = mean_p - np.einsum("hwi,hwi->hw", a, mean_i)
    return np.einsum("hwi,hwi->hw", mean(a), guide) + mean(b)


def edge_radius(shape: tuple[int, ...]) -> int:
    """How far (px) a mask's edge may move to meet the object's outline: about 1/80 of the shorter side (6 px at
    512), as far as a coarse segmentation is commonly off."""
    return max(2, round(min(shape[:2]) / 80))


def edge_alpha(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """A soft alpha matte (float32 (H, W) in [0, 1]) for ``mask`` that follows ``image``'s own edges.

    The binary mask is guided-filtered by the image, on a crop around the mask, and the result is used only in a
    band of ``edge_radius`` on either side of the mask's edge: deeper inside it is 1, farther outside 0. So a
    mask that stops short of (or spills over) an outline, or cuts straight across a flat area, becomes a matte
    whose edge lies on the outline, soft where the outline is soft (hair, fur) and with no step across flat areas.
    """
    hard = mask > 127
    alpha = hard.astype(np.float32)
    if not hard.any() or hard.all():
        return alpha
    radius = edge_radius(mask.shape)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    band = cv2.dilate(hard.astype(np.uint8), kernel) > cv2.erode(hard.astype(np.uint8), kernel)
    ys, xs = np.nonzero(band)
    pad = 3 * radius
    y0, y1 = max(0, ys.min() - pad), min(mask.shape[0], ys.max() + 1 + pad)
    x0, x1 = max(0, xs.min() - pad), min(mask.shape[1], xs.max() + 1 + pad)
    guide = image[y0:y1, x0:x1].astype(np.float32) / 255.0
    filtered = guided_filter(guide, alpha[y0:y1, x0:x1], radius)
    crop = alpha[y0:y1, x0:x1]
    crop[band[y0:y1, x0:x1]] = np.clip(filtered, 0.0, 1.0)[band[y0:y1, x0:x1]]
    return alpha


def blend(original: np.ndarray, edited: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """``edited`` where ``alpha`` (float (H, W) in [0, 1]) is 1, ``original`` where it is 0, mixed between."""
    weight = alpha[:, :, None]
    out = original.astype(np.float32) * (1 - weight) + edited.astype(np.float32) * weight
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def blend_along_edges(original: np.ndarray, edited: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    """``edited`` inside ``mask`` and ``original`` outside it, through the mask's ``edge_alpha`` (the object's own
    outline, soft where it is soft); everywhere ``edited`` when there is no mask."""
    if mask is None:
        return edited
    return blend(original, edited, edge_alpha(original, mask))


def blend_in_mask(
    original: np.ndarray, edited: np.ndarray, mask: np.ndarray | None, feather: float = 0.0
) -> np.ndarray:
    """``edited`` inside ``mask`` and ``original`` outside it (everywhere ``edited`` when there is no mask), for
    masks that are holes or boxes rather than objects (inpainting, pasting).

    ``feather`` > 0 softens the seam with a Gaussian of that sigma, *inside* the mask only, so pixels outside the
    mask are exactly the original.
    """
    if mask is None:
        return edited
    alpha = (mask > 127).astype(np.float32)
    if feather > 0:
        soft = cv2.GaussianBlur(alpha, (0, 0), feather)
        alpha = np.minimum(alpha, soft * 2.0).clip(0, 1) * alpha
    return blend(original, edited, alpha)


def require_nonempty(mask: np.ndarray, what: str = "mask") -> None:
    """Raise a BrickError for an empty mask, which would make a region edit silently do nothing."""
    if not np.any(mask > 127):
        raise BrickError(f"the {what} is empty: nothing to edit")
