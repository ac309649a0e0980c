"""Shared fixtures: real photos from scikit-image's bundled data (public domain / CC0), small for speed; tests marked
``gpu`` are skipped where torch sees no CUDA device."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from legoedit_core.bricks.toolset import Toolset
from legoedit_core.runtime import ModelRuntime


def _small(array: np.ndarray, width: int = 256) -> np.ndarray:
    picture = Image.fromarray(array).convert("RGB")
    height = round(picture.height * width / picture.width)
    return np.asarray(picture.resize((width, height), Image.Resampling.LANCZOS))


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    from skimage import data

    return _small(data.astronaut())


@pytest.fixture(scope="session")
def coffee() -> np.ndarray:
    from skimage import data

    return _small(data.coffee())


@pytest.fixture(scope="session")
def chelsea() -> np.ndarray:
    from skimage import data

    return _small(data.chelsea())


@pytest.fixture(scope="session")
def cpu_toolset() -> Toolset:
    return Toolset()


@pytest.fixture
def runtime():
    """A fresh process-wide model runtime for the test, so load counts start at zero."""
    fresh = ModelRuntime()
    previous = ModelRuntime.set_default(fresh)
    yield fresh
    ModelRuntime.set_default(previous)


def pytest_collection_modifyitems(config, items):
    """Skip the ``gpu`` tests without a CUDA device (they stay collected: ``pytest -m gpu`` lists them)."""
    gpu_tests = [item for item in items if item.get_closest_marker("gpu")]
    if not gpu_tests:
        return
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device (torch sees none); bash scripts/gpu-check.sh runs it on a GPU")
    for item in gpu_tests:
        item.add_marker(skip)
