"""Model-free checks of an edit: preservation outside the edited region, change inside it, size and format.

The edited region is the union of every mask the plan produced (``EditResult.masks()``); outside it the image
should be untouched, so PSNR and SSIM are measured there, and the mean absolute change is measured inside it.
When the plan changed the image's size (crop, resize), pixels no longer line up and only the size check is made.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from legoedit_core.types import size_of

PSNR_CAP = 100.0  # identical pixels have an infinite PSNR; reported as this many dB


@dataclass
class EditMetrics:
    """``None`` means not measurable here (see ``notes``), never a bad score."""

    same_size: bool
    format_ok: bool
    edited_fraction: float | None = None
    psnr_outside: float | None = None
    ssim_outside: float | None = None
    change_inside: float | None = None
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def edited_region(masks: Sequence[np.ndarray], size: tuple[int, int]) -> np.ndarray:
    """The union of the masks of image size ``(width, height)`` as a boolean array (masks of other sizes are
    skipped: they belong to a resized or cropped intermediate image)."""
    region = np.zeros((size[1], size[0]), bool)
    for mask in masks:
        if size_of(mask) == size:
            region |= np.asarray(mask) > 127
    return region


def edit_metrics(source: np.ndarray, edited: np.ndarray, masks: Sequence[np.ndarray] = ()) -> EditMetrics:
    """Preservation (PSNR / SSIM outside the union of ``masks``), change inside it (mean |difference| in 0-1),
    and the size / format checks of ``edited`` against ``source``."""
    format_ok = edited.ndim == 3 and edited.shape[2] == 3 and edited.dtype == np.uint8 and edited.size > 0
    if not format_ok:
        return EditMetrics(False, False, notes=[f"the edited image is not RGB uint8: shape {edited.shape}, "
                                                f"{edited.dtype}"])
    if edited.shape != source.shape:
        (sw, sh), (ew, eh) = size_of(source), size_of(edited)
        return EditMetrics(False, True, notes=[f"size changed from {sw}x{sh} to {ew}x{eh}: pixels do not line up, "
                                               "so preservation is not measured"])
    region = edited_region(masks, size_of(source))
    metrics = EditMetrics(True, True, edited_fraction=float(region.mean()))
    outside = ~region
    if outside.any():
        src, out = source[outside], edited[outside]
        metrics.psnr_outside = PSNR_CAP if np.array_equal(src, out) else \
            min(PSNR_CAP, float(peak_signal_noise_ratio(src, out, data_range=255)))
        if min(source.shape[:2]) >= 7:  # SSIM's smallest window
            _, ssim_map = structural_similarity(source, edited, channel_axis=2, data_range=255, full=True)
            metrics.ssim_outside = float(ssim_map[outside].mean())
    else:
        metrics.notes.append("the masks cover the whole image: nothing outside to preserve")
    if region.any():
        difference = np.abs(source.astype(np.int16) - edited.astype(np.int16))[region]
        metrics.change_inside = float(difference.mean() / 255.0)
    else:
        metrics.notes.append("the plan produced no mask: the whole image counts as outside the edit")
    return metrics
