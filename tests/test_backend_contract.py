"""The contract every registered backend meets, plugins included (in the spirit of diffusers' PipelineTesterMixin):

- **batch equals one at a time**: ``run_batch`` over three items gives each item what it gets alone;
- **seeds stable**: the same items and seeds give the same outputs again;
- **masks respected**: an edit with a mask leaves the pixels it was not asked to touch exactly as they were (outside
  the mask; inside it for CBG, whose mask is the foreground it keeps; a removal, INPAINT or FASTINPAINT, may take
  a margin of 1% of the longer side, at least 2 px, around its mask: the object's edge), and MASK-SEG stays inside
  its rough region;
- **thread-safe through the runtime**: three threads calling at once get what they get one after another;
- **out of memory is the executor's** (model backends): a device out-of-memory raised inside the model leaves
  ``run_batch`` unchanged after one model call (no backend halves on its own), and the one owner
  (``faults.run_fitting_memory``) turns it into ``MemoryExhausted`` once, after at most 2 log2(n) + 1 calls.

It runs over every backend of the registry (``legoedit bricks`` lists the bricks and backends of this registry):
CPU backends directly, model backends on the tiny random-weight models of ``tiny_models`` / ``tiny_vlm``, saved and
loaded through ``from_pretrained``. Images are 64 x 48 and pipelines take 2 steps, to keep the suite fast.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import tiny_models
from test_plugins import installed_plugin  # noqa: F401 (the fixture that installs a third-party brick)
from tiny_vlm import save_tiny_vlm

from legoedit_core.bricks.catalog import default_registry
from legoedit_core.bricks.cpu.common import edge_radius
from legoedit_core.bricks.spec import Backend, BrickError, BrickSpec
from legoedit_core.faults import MemoryExhausted, run_fitting_memory
from legoedit_core.types import PortType

WIDTH, HEIGHT = 64, 48
SEEDS = [11, 22, 33]
FAST = {"device": "cpu", "dtype": "float32", "steps": 2, "max_area": 64 * 64, "max_sequence_length": 16}
# Batching can move a pixel of a model's output by a level or two against the same item alone (docs/models.md).
MODEL_TOLERANCE = 4
# Tiny models per backend: settings key -> builder of a saved model directory.
TINY: dict[str, dict[str, str]] = {
    "flux-fill": {"model": "flux_fill"}, "sd-inpaint": {"model": "sd_inpaint"},
    "flux-kontext": {"model": "flux_kontext"}, "clipseg": {"model": "clipseg"},
    "grounded-sam": {"detector": "grounding_dino", "segmenter": "sam"}, "sam": {"segmenter": "sam"},
    "semantic": {"model": "segformer"}, "vlm": {"model": "vlm"},
}
NO_TINY_MODEL = {"qwen-image-edit": "its Qwen2-VL processor needs torchvision, which is not installed here"}
TEXT_VALUES = {"prompt": "a red cup", "color": "red", "direction": "horizontal"}
KEEPS_INSIDE = {"CBG"}  # the mask is the foreground the brick keeps
REMOVALS = {"INPAINT", "FASTINPAINT"}  # a removal may take the object's edge: a margin around its mask
# Region edits that blend through a matte refined onto the object's outline: the band of edge_radius on either side
# of the mask's edge is theirs to mix (docs/bricks.md, "Edge-true masks").
REFINES_EDGE = {"ADJUST", "BLUR", "CBG", "GRAYSCALE", "RCM", "SHARPEN", "SMOOTH", "STYLE"}


class TinyModels:
    """Tiny saved models, built on first use and shared by every test of the module."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.paths: dict[str, Path] = {}

    def __getitem__(self, name: str) -> Path:
        if name not in self.paths:
            directory = self.root / name
            self.paths[name] = (save_tiny_vlm(directory) if name == "vlm"
                                else getattr(tiny_models, f"build_{name}")(directory))
        return self.paths[name]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> TinyModels:
    return TinyModels(tmp_path_factory.mktemp("contract_models"))


def registered() -> list[tuple[str, str]]:
    return [(brick.spec.name, name) for brick in default_registry() for name in brick.backends]


def make_backend(backend: type[Backend], tiny: TinyModels) -> Backend:
    """The backend with settings that make it run here: tiny models for model backends, nothing for the rest."""
    if backend.name in NO_TINY_MODEL:
        pytest.skip(f"{backend.brick}/{backend.name}: no tiny model ({NO_TINY_MODEL[backend.name]})")
    settings: dict[str, Any] = {}
    if backend.resource == "gpu":
        if backend.name not in TINY:
            pytest.skip(f"{backend.brick}/{backend.name}: a model backend without a tiny model recipe")
        sources = {key: str(tiny[builder]) for key, builder in TINY[backend.name].items()}
        settings = ({**sources, "image_size": 64, "max_new_tokens": 16} if backend.name == "vlm"
                    else {backend.name: {**FAST, **sources}})
    missing = backend.missing(settings)
    if missing:
        pytest.skip(f"{backend.brick}/{backend.name} cannot run here: {missing}")
    return backend(settings)


def items_for(spec: BrickSpec, count: int = 3) -> list[dict[str, Any]]:
    """``count`` different items of one size for ``spec``: every port filled (optional masks too, so that masked
    editing is exercised), the rest at their defaults as the executor passes them."""
    rng = np.random.default_rng(0)
    items = []
    for index in range(count):
        base = np.linspace(0, 255, WIDTH * HEIGHT * 3).reshape(HEIGHT, WIDTH, 3)
        image = np.clip(base + rng.normal(0, 30, base.shape), 0, 255).astype(np.uint8)
        mask = np.zeros((HEIGHT, WIDTH), np.uint8)
        mask[8 + 4 * index : 32, 12 : 40 + 4 * index] = 255
        values: dict[str, Any] = {}
        for port in spec.inputs:
            if port.type is PortType.IMAGE:
                values[port.name] = image if port.name == "image" else np.ascontiguousarray(image[::-1])
            elif port.type is PortType.MASK:
                values[port.name] = mask if port.name == "mask" else np.ascontiguousarray(mask.T[:HEIGHT, :WIDTH])
            elif port.type is PortType.BBOX:
                values[port.name] = (8, 8, 40, 32)
            elif port.default is not None:
                values[port.name] = port.default
            elif port.type is PortType.TEXT:
                values[port.name] = port.choices[0] if port.choices else TEXT_VALUES.get(port.name, "a red cup")
            else:
                low, high = port.minimum, port.maximum
                values[port.name] = (low + high) / 2 if low is not None and high is not None else 15.0
        items.append(values)
    return items


def same(a: Any, b: Any, tolerance: int) -> bool:
    """Two outputs (dicts of port values, or errors) agree: errors by message, arrays within ``tolerance``."""
    if isinstance(a, BrickError) or isinstance(b, BrickError):
        return type(a) is type(b) and str(a) == str(b)
    if a.keys() != b.keys():
        return False
    for port, left in a.items():
        right = b[port]
        if isinstance(left, np.ndarray):
            if left.shape != right.shape:
                return False
            difference = np.abs(left.astype(int) - right.astype(int))
            if difference.max(initial=0) > tolerance:
                return False
        elif left != right:
            return False
    return True


def check_contract(backend: Backend, spec: BrickSpec, tolerance: int) -> None:
    items = items_for(spec)
    alone = [backend.run_batch([item], [seed])[0] for item, seed in zip(items, SEEDS, strict=True)]
    batched = backend.run_batch(items, SEEDS)
    assert len(batched) == len(items)
    for index, (one, many) in enumerate(zip(alone, batched, strict=True)):
        assert same(one, many, tolerance), f"item {index}: batched {many!r} differs from alone {one!r}"
    again = backend.run_batch(items, SEEDS)
    assert all(same(a, b, 0) for a, b in zip(batched, again, strict=True)), "the same seeds gave other outputs"
    check_masks(spec, items, batched)
    threaded = run_threads([lambda i=i: backend.run_batch([items[i]], [SEEDS[i]])[0] for i in range(len(items))])
    for index, (one, concurrent) in enumerate(zip(alone, threaded, strict=True)):
        assert same(one, concurrent, tolerance), f"item {index}: a concurrent call gave {concurrent!r}"


def check_out_of_memory(backend: Backend, spec: BrickSpec, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every ``torch.nn.Linear`` raises the CUDA allocator's error: ``run_batch`` raises it after one model call, and
    the one owner raises ``MemoryExhausted`` once (the batch of three: whole, then its first half of one item)."""
    import torch

    raised: list[int] = []

    def exhausted(self, x):
        raised.append(x.shape[0])
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    items = items_for(spec)
    monkeypatch.setattr(torch.nn.Linear, "forward", exhausted)
    with pytest.raises(torch.OutOfMemoryError):
        backend.run_batch(items, SEEDS)
    assert len(raised) == 1, f"the backend ran its model {len(raised)} times after out of memory (it must not retry)"
    calls: list[int] = []
    with pytest.raises(MemoryExhausted) as exhausted_error:
        run_fitting_memory(items, lambda chunk: calls.append(len(chunk)) or backend.run_batch(
            chunk, SEEDS[:len(chunk)]), spec.name)
    assert calls == [3, 1] and exhausted_error.value.done == {}
    monkeypatch.undo()


def check_masks(spec: BrickSpec, items: list[dict[str, Any]], outputs: list[Any]) -> None:
    """Pixels the mask does not give to the brick are returned exactly; MASK-SEG stays inside its region."""
    if spec.input("mask") is None:
        return
    for item, output in zip(items, outputs, strict=True):
        if isinstance(output, BrickError):
            continue
        region = item["mask"] > 127
        if "image" in output and spec.input("image") is not None:
            band = edge_radius(region.shape) if spec.name in REFINES_EDGE else 0
            given = grown(region, max(2, round(max(WIDTH, HEIGHT) / 100))) if spec.name in REMOVALS else region
            given = grown(given, band) if band else given
            kept = ~grown(~region, band) if spec.name in KEEPS_INSIDE else ~given
            assert np.array_equal(output["image"][kept], item["image"][kept]), \
                f"{spec.name} changed pixels its mask does not give it"
        elif spec.name == "MASK-SEG":
            assert not np.any(output["mask"][~region]), "MASK-SEG went outside its rough region"


def grown(region: np.ndarray, radius: int) -> np.ndarray:
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    return cv2.dilate(region.astype(np.uint8), kernel) > 0


def run_threads(jobs: list) -> list:
    barrier = threading.Barrier(len(jobs))
    results: list = [None] * len(jobs)
    errors: list[BaseException] = []

    def run(index: int) -> None:
        barrier.wait()
        try:
            results[index] = jobs[index]()
        except BaseException as error:  # reported in the test's thread
            errors.append(error)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(jobs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return results


@pytest.mark.parametrize(("brick", "name"), registered(), ids=lambda value: value)
def test_every_registered_backend_meets_the_contract(brick, name, tiny, runtime, monkeypatch):
    registry = default_registry()
    backend_class = registry.get(brick).backends[name]
    backend = make_backend(backend_class, tiny)
    tolerance = MODEL_TOLERANCE if backend_class.resource == "gpu" else 0
    check_contract(backend, registry.get(brick).spec, tolerance)
    if backend_class.resource == "gpu":
        check_out_of_memory(backend, registry.get(brick).spec, monkeypatch)


def test_an_installed_plugin_backend_meets_the_contract(installed_plugin, runtime):  # noqa: F811
    registry = default_registry()
    sepia = registry.get("SEPIA")
    assert sepia is not None  # the third-party brick arrived through its entry point
    for backend_class in sepia.backends.values():
        check_contract(make_backend(backend_class, TinyModels(installed_plugin)), sepia.spec, 0)
