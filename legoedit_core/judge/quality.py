"""Measurable checks that a CPU look (style, sharpen, denoise) is one a photo editor would accept.

Each check compares the edited image with its source and returns a number; the thresholds a brick must meet are in
docs/builder.md ("CPU edit quality") and in tests/test_cpu_edit_quality.py.
"""

from __future__ import annotations

import cv2
import numpy as np


def _grey(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32)


def _gradient(grey: np.ndarray) -> np.ndarray:
    smooth = cv2.GaussianBlur(grey, (0, 0), 1.0)
    return np.hypot(cv2.Sobel(smooth, cv2.CV_32F, 1, 0), cv2.Sobel(smooth, cv2.CV_32F, 0, 1))


def edge_preservation(source: np.ndarray, edited: np.ndarray) -> float:
    """Correlation of the two images' gradient magnitudes at a coarse scale (sigma 2): 1 when the outlines are
    where they were, near 0 when they are lost or new ones appear."""
    coarse = [cv2.GaussianBlur(_gradient(_grey(image)), (0, 0), 2.0).ravel() for image in (source, edited)]
    return float(np.corrcoef(*coarse)[0, 1])


def new_dark_blobs(source: np.ndarray, edited: np.ndarray, dark: float = 50.0, was: float = 90.0) -> float:
    """The fraction of the image covered by dark patches (grey < ``dark``, at least 5x5 px) that were not dark in
    the source (grey >= ``was``): the black blotches a bad cartoon or sketch filter leaves."""
    new = ((_grey(edited) < dark) & (_grey(source) >= was)).astype(np.uint8)
    blobs = cv2.morphologyEx(new, cv2.MORPH_OPEN, np.ones((5, 5), np.uint8))
    return float(blobs.mean())


def halo_fraction(source: np.ndarray, edited: np.ndarray, slack: float = 12.0) -> float:
    """The fraction of pixels whose grey level overshoots the source's 5x5 neighbourhood (above its maximum or
    below its minimum) by more than ``slack``: the bright and dark rims along edges that over-sharpening makes."""
    grey, out = _grey(source), _grey(edited)
    kernel = np.ones((5, 5), np.uint8)
    high, low = cv2.dilate(grey, kernel), cv2.erode(grey, kernel)
    return float(((out > high + slack) | (out < low - slack)).mean())


def flat_noise_gain(source: np.ndarray, edited: np.ndarray) -> float:
    """How much the fine-grain variation grows in the flat parts of the image (the lowest-gradient half): above 1
    the edit amplifies noise there, 1 leaves it."""
    grey, out = _grey(source), _grey(edited)
    gradient = cv2.GaussianBlur(_gradient(grey), (0, 0), 3.0)
    flat = gradient <= np.median(gradient)

    def grain(image: np.ndarray) -> float:
        return float(np.std((image - cv2.GaussianBlur(image, (0, 0), 1.5))[flat]))

    return grain(out) / max(grain(grey), 1e-6)


def edge_contrast_gain(source: np.ndarray, edited: np.ndarray) -> float:
    """How much the gradient grows on the strongest tenth of the source's edges (above 1: crisper edges)."""
    before, after = _gradient(_grey(source)), _gradient(_grey(edited))
    edges = before >= np.percentile(before, 90)
    return float(after[edges].mean() / max(before[edges].mean(), 1e-6))


def psnr(reference: np.ndarray, image: np.ndarray) -> float:
    error = np.mean((reference.astype(np.float64) - image.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0**2 / max(error, 1e-12)))


def texture_kept(clean: np.ndarray, denoised: np.ndarray) -> float:
    """The fine detail (band-pass energy) left in the textured parts of the image, as a fraction of the clean
    image's there: 1 keeps fur and foliage, near 0 smears them."""
    grey, out = _grey(clean), _grey(denoised)
    gradient = cv2.GaussianBlur(_gradient(grey), (0, 0), 3.0)
    textured = gradient >= np.percentile(gradient, 60)

    def detail(image: np.ndarray) -> float:
        band = cv2.GaussianBlur(image, (0, 0), 0.8) - cv2.GaussianBlur(image, (0, 0), 3.0)
        return float(np.abs(band[textured]).mean())

    return detail(out) / max(detail(grey), 1e-6)
