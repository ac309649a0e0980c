"""Recipes shared by the CPU backends."""

from __future__ import annotations

import cv2
import numpy as np

from legoedit_core.bricks.spec import BrickError


def blend_in_mask(
    original: np.ndarray, edited: np.ndarray, mask: np.ndarray | None, feather: float = 0.0
) -> np.ndarray:
    """``edited`` inside ``mask`` and ``original`` outside it (everywhere ``edited`` when there is no mask).

    ``feather`` > 0 softens the seam with a Gaussian of that sigma, *inside* the mask only, so pixels outside the
    mask are exactly the original.
    """
    if mask is None:
        return edited
    alpha = (mask > 127).astype(np.float32)
    if feather > 0:
        soft = cv2.GaussianBlur(alpha, (0, 0), feather)
        alpha = np.minimum(alpha, soft * 2.0).clip(0, 1) * alpha
    alpha = alpha[:, :, None]
    out = original.astype(np.float32) * (1 - alpha) + edited.astype(np.float32) * alpha
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def require_nonempty(mask: np.ndarray, what: str = "mask") -> None:
    """Raise a BrickError for an empty mask, which would make a region edit silently do nothing."""
    if not np.any(mask > 127):
        raise BrickError(f"the {what} is empty: nothing to edit")
