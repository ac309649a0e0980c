"""Shared fixtures: real photos from scikit-image's bundled data (public domain / CC0), small for speed; tests marked
``gpu`` are skipped where torch sees no CUDA device."""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import Coroutine
from typing import Any

import numpy as np
import prefect.testing.utilities as prefect_testing
import pytest
from PIL import Image

from legoedit_core.bricks.toolset import Toolset
from legoedit_core.runtime import ModelRuntime

_run_coro_as_sync = prefect_testing.run_coro_as_sync
HARNESS_DRAIN_SECONDS = 60


def _bounded_drain(coroutine: Coroutine[Any, Any, Any]) -> Any:
    """``prefect_test_harness`` drains Prefect's log and event workers on exit, with no time limit. In Prefect 3.8.8
    that wait sometimes never ends once a module has run flows on Dask (the events worker's drain future is never
    set, its thread idle): the module's teardown then hangs the whole run. The drain only flushes what a finished
    module's runs still send, so after ``HARNESS_DRAIN_SECONDS`` it is given up, with a warning."""

    async def bounded() -> Any:
        try:
            return await asyncio.wait_for(coroutine, HARNESS_DRAIN_SECONDS)
        except TimeoutError:
            warnings.warn("prefect_test_harness: draining its workers took over "
                          f"{HARNESS_DRAIN_SECONDS} s; given up", stacklevel=1)

    return _run_coro_as_sync(bounded())


prefect_testing.run_coro_as_sync = _bounded_drain  # the harness's only use of it is that drain


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
