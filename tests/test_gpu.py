"""The GPU tier (``pytest -m gpu``, run by ``bash scripts/gpu-check.sh``): what only a CUDA device can show.

Collected everywhere, skipped where torch sees no CUDA device (tests/conftest.py). Every model is a tiny saved one
(``tiny_models`` / ``tiny_vlm``), loaded through the real ``from_pretrained``.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import tiny_models
from test_runtime import image_items
from tiny_vlm import save_tiny_vlm

from legoedit_core.bricks.models import editor, fill
from legoedit_core.planners import PlannerSettings
from legoedit_core.runtime import ModelKey, ModelRuntime, size_before_load
from legoedit_core.vlm.chat import Message, OutputFormat, shown_image
from legoedit_core.vlm.engines.hf import TransformersEngine

pytestmark = pytest.mark.gpu

FAST = {"steps": 2, "max_area": 64 * 64, "max_sequence_length": 16}
FLUX_FILL = next(b for b in fill.BACKENDS if (b.brick, b.name) == ("FILL", "flux-fill"))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("gpu_models")
    return {"flux-fill": tiny_models.build_flux_fill(root / "flux-fill"),
            "flux-kontext": tiny_models.build_flux_kontext(root / "flux-kontext"), "vlm": save_tiny_vlm(root / "vlm")}


@pytest.fixture
def float32_exact():
    """TF32 off for the test: float32 on the GPU is then float32, as on the CPU."""
    import torch

    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


@pytest.mark.parametrize("backend_class", [FLUX_FILL, editor.FluxKontext], ids=["flux-fill", "flux-kontext"])
def test_tiny_pipelines_on_cuda_match_cpu(tiny, backend_class, float32_exact):
    items = image_items(64, 48, seed=0)
    outputs = []
    for device in ("cpu", "cuda"):
        options = {**FAST, "device": device, "dtype": "float32", "generator_device": "cpu",
                   "model": str(tiny[backend_class.name])}
        backend = backend_class({backend_class.name: options})
        backend.runtime = ModelRuntime()
        outputs.append(backend.run_batch(items, [7])[0]["image"].astype(int))
    assert np.abs(outputs[0] - outputs[1]).max() <= 4  # the same noise (drawn on the CPU), float32 on both


def test_bfloat16_is_the_default_dtype_on_cuda(tiny):
    import torch

    backend = FLUX_FILL({"flux-fill": {**FAST, "device": "cuda", "model": str(tiny["flux-fill"])}})
    backend.runtime = ModelRuntime()
    (result,) = backend.run_batch(image_items(64, 48, seed=1), [1])
    assert result["image"].shape == (48, 64, 3)
    with backend.runtime.use(backend.model_key(backend.kind)) as pipe:
        assert pipe.transformer.dtype == torch.bfloat16 and pipe.transformer.device.type == "cuda"


def test_a_load_that_does_not_fit_evicts_first_and_frees_cuda_memory(tiny):
    import torch

    keys = [ModelKey(kind, str(tiny[name]), device="cuda") for kind, name in (
        ("diffusers.FluxFillPipeline", "flux-fill"), ("diffusers.FluxKontextPipeline", "flux-kontext"))]
    sizes = [size_before_load(key, None) for key in keys]
    budget = int(max(sizes) * 1.5)  # room for one of them, not both
    runtime = ModelRuntime(budgets={"cuda": budget})
    torch.cuda.synchronize()
    baseline = torch.cuda.memory_allocated()
    for key in keys:
        runtime.shared(key)
        torch.cuda.synchronize()
        assert torch.cuda.memory_allocated() - baseline <= budget * 1.05  # never past the budget
    assert runtime.loaded() == [keys[1]] and runtime.evictions == 1
    runtime.clear()
    torch.cuda.synchronize()
    assert torch.cuda.memory_allocated() - baseline <= 0.05 * max(sizes)  # the eviction really freed the memory


def test_the_vlm_engine_on_cuda_answers_in_format(tiny):
    settings = PlannerSettings(engine="transformers", model=str(tiny["vlm"]), device="cuda", max_new_tokens=16,
                               image_size=64)
    assert settings.dtype == "bfloat16"  # the dtype follows the device
    engine = TransformersEngine(settings, ModelRuntime())
    picture = shown_image(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8), 64)
    (answer,) = engine.generate([[Message("user", "caption", picture)]], OutputFormat(regex=r"(cat|dog) [a-z]{1,6}"),
                                [0])
    assert re.fullmatch(r"(cat|dog) [a-z]{1,6}", answer)
