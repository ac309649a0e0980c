"""The Executor: single items, waves across items, per-item failures, seeds and the node cache."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from legoedit_core.bricks.catalog import default_registry
from legoedit_core.bricks.cpu.common import edge_radius
from legoedit_core.bricks.spec import BrickError, BrickSpec, PerItemBackend, image
from legoedit_core.bricks.toolset import BackendMismatch, Toolset
from legoedit_core.cache import DiskCache, MemoryCache
from legoedit_core.config import Config
from legoedit_core.executor import EditItem, Executor, WaveRun, node_seed
from legoedit_core.settings.executor import ExecutorSettings
from legoedit_core.workflow import parse_workflow

WAVES = parse_workflow({
    "nodes": [
        {"id": "box", "tool": "BBOX", "inputs": {"mask": "@input.mask"}},
        {"id": "sharp", "tool": "SHARPEN", "inputs": {"image": "@input.image", "amount": 2}},
        {"id": "blur", "tool": "BLUR", "inputs": {"image": "@sharp.image", "mask": "@box.mask", "radius": 6}},
        {"id": "grey", "tool": "GRAYSCALE", "inputs": {"image": "@blur.image", "mask": "@input.mask"}},
        {"id": "unused", "tool": "FLIP", "inputs": {"image": "@input.image"}},
    ],
    "output": "@grey.image",
})


FLIP = parse_workflow({"nodes": [{"id": "f", "tool": "FLIP", "inputs": {"image": "@input.image"}}],
                       "output": "@f.image"})


def _mask(shape, box) -> np.ndarray:
    mask = np.zeros(shape[:2], np.uint8)
    x0, y0, x1, y1 = box
    mask[y0:y1, x0:x1] = 255
    return mask


class CallCounter:
    """Wraps the chosen backends of a toolset and records every batched call."""

    def __init__(self, toolset: Toolset, tools: list[str]) -> None:
        self.calls: list[tuple[str, int, list[int]]] = []
        for tool in tools:
            backend = toolset.backend(tool)
            original = backend.run_batch

            def counted(inputs, seeds, tool=tool, original=original):
                self.calls.append((tool, len(inputs), list(seeds)))
                return original(inputs, seeds)

            backend.run_batch = counted


@pytest.fixture
def toolset() -> Toolset:
    return Toolset()


def test_single_item_runs_only_what_the_output_needs_and_edits_inside_the_mask(coffee, toolset):
    mask = _mask(coffee.shape, (40, 30, 120, 100))
    result = Executor(toolset).run(WAVES, coffee, mask, seed=7)
    assert result.status == "ok", result.error
    assert [{t.node for t in result.trace if t.wave == w} for w in (1, 2, 3)] == [{"box", "sharp"}, {"blur"}, {"grey"}]
    assert all(t.backend and t.seconds >= 0 and not t.cache_hit for t in result.trace)
    band = np.ones((2 * edge_radius(mask.shape) + 1,) * 2, np.uint8)  # region edits refine the mask's edge
    inside = cv2.erode(mask, band) > 0
    grey = result.image[inside]
    assert np.all(grey[:, 0] == grey[:, 1]) and np.all(grey[:, 1] == grey[:, 2])
    # outside the blurred box, only SHARPEN (which runs on the whole image) has touched the pixels
    alone = parse_workflow({"nodes": [WAVES.node("sharp").model_dump()], "output": "@sharp.image"})
    sharpened = Executor(toolset).run(alone, coffee, seed=7).image
    box = result.values["box"]["mask"]  # masks are kept; intermediate images are let go once read
    near_box = cv2.dilate(box, band) > 0
    np.testing.assert_array_equal(result.image[~near_box], sharpened[~near_box])


def test_waves_make_one_batched_call_per_brick_group_and_a_corrupt_item_fails_alone(coffee, toolset):
    counter = CallCounter(toolset, ["BBOX", "SHARPEN", "BLUR", "GRAYSCALE", "FLIP"])
    items = [EditItem(f"item{i}", coffee, WAVES, _mask(coffee.shape, (10 + i, 10, 90, 80)), seed=i) for i in range(20)]
    items[5].mask = np.zeros(coffee.shape[:2], np.uint8)  # empty mask: refused before BBOX's call (and SHARPEN's)
    items[9].mask = np.full((10, 10), 255, np.uint8)  # wrong size: BLUR refuses its 10x10 box
    results = Executor(toolset).run_many(items)

    tools = [tool for tool, _, _ in counter.calls]
    assert sorted(tools[:2]) == ["BBOX", "SHARPEN"] and tools[2:] == ["BLUR", "GRAYSCALE"]
    sizes = {tool: size for tool, size, _ in counter.calls}
    assert sizes == {"BBOX": 19, "SHARPEN": 19, "BLUR": 18, "GRAYSCALE": 18}
    statuses = {r.id: r.status for r in results}
    assert [k for k, v in statuses.items() if v != "ok"] == ["item5", "item9"]
    assert results[5].failed_node == "box" and "node 'box' (BBOX)" in results[5].error and "empty" in results[5].error
    assert results[9].failed_node == "blur" and "is 10x10 but the image is" in results[9].error
    assert results[5].image is None and results[9].image is None
    assert {t.node: t.batch_size for t in results[0].trace if t.node in ("box", "sharp")} == {"box": 19, "sharp": 19}


def test_nodes_get_seeds_derived_from_item_seed_and_node_id(coffee, toolset):
    counter = CallCounter(toolset, ["SHARPEN"])
    items = [EditItem("a", coffee, WAVES, _mask(coffee.shape, (0, 0, 50, 50)), seed=3),
             EditItem("b", coffee, WAVES, _mask(coffee.shape, (0, 0, 50, 50)), seed=4)]
    Executor(toolset).run_many(items)
    [(_, _, seeds)] = counter.calls
    assert seeds == [node_seed(3, "sharp"), node_seed(4, "sharp")]
    assert node_seed(3, "sharp") != node_seed(3, "blur") and node_seed(3, "sharp") == node_seed(3, "sharp")


def test_a_backend_that_raises_is_a_fault_and_no_item_gets_a_result(coffee, toolset):
    def broken(inputs, seeds):
        raise RuntimeError("CUDA error: an illegal memory access was encountered")

    toolset.backend("GRAYSCALE").run_batch = broken
    items = [EditItem("grey", coffee, WAVES, _mask(coffee.shape, (0, 0, 40, 40))), EditItem("flip", coffee, FLIP)]
    with pytest.raises(RuntimeError, match="illegal memory access"):  # the task fails and is retried, no rows
        Executor(toolset).run_many(items)


def test_a_brick_that_refuses_its_inputs_fails_its_group_and_nothing_else(coffee, toolset):
    def refuses(inputs, seeds):
        raise BrickError("the mask is empty: nothing to edit")

    toolset.backend("GRAYSCALE").run_batch = refuses
    items = [EditItem("grey", coffee, WAVES, _mask(coffee.shape, (0, 0, 40, 40))), EditItem("flip", coffee, FLIP)]
    grey, flipped = Executor(toolset).run_many(items)
    assert grey.status == "failed" and grey.error == "node 'grey' (GRAYSCALE): the mask is empty: nothing to edit"
    assert flipped.status == "ok"
    np.testing.assert_array_equal(flipped.image, coffee[:, ::-1])


# A brick with a GPU model backend and a CPU one; whether "CUDA" is there is a switch of the test.
DENOISE = BrickSpec(name="DENOISE", family="edit", description="Removes noise.", inputs=(image(),),
                    outputs=(image("image", "the image without noise"),))


class GpuNet(PerItemBackend):
    brick, name, resource = "DENOISE", "gpu-net", "gpu"
    cuda = True

    @classmethod
    def missing(cls, settings):
        return None if cls.cuda else "needs device 'cuda', but torch sees no CUDA device"

    def run_one(self, inputs, seed):
        return {"image": inputs["image"]}


class Median(PerItemBackend):
    brick, name = "DENOISE", "median"

    def run_one(self, inputs, seed):
        return {"image": inputs["image"][::-1]}


@pytest.fixture
def denoise_registry(monkeypatch):
    registry = default_registry(plugins=False)
    registry.add_brick(DENOISE)
    registry.add_backend(GpuNet)
    registry.add_backend(Median)
    monkeypatch.setattr(GpuNet, "cuda", True)
    return registry


def _denoise_groups(registry, coffee) -> tuple[Config, WaveRun, list]:
    """The flow's side: on a machine with "CUDA", resolve the backends once and plan the first wave."""
    flow_toolset = Toolset(Config(profile="gpu"), registry)
    pinned = flow_toolset.pinned_config()
    assert pinned.brick("DENOISE").backend == "gpu-net"
    workflow = parse_workflow({"nodes": [{"id": "d", "tool": "DENOISE", "inputs": {"image": "@input.image"}}],
                               "output": "@d.image"})
    waves = Executor(Toolset(pinned, registry)).start([EditItem("a", coffee, workflow)])
    return pinned, waves, waves.next_groups()


def test_a_worker_that_cannot_run_the_pinned_backend_fails_naming_brick_and_both_backends(coffee, denoise_registry):
    pinned, _, (group,) = _denoise_groups(denoise_registry, coffee)
    assert (group.tool, group.backend) == ("DENOISE", "gpu-net")
    GpuNet.cuda = False  # the worker has no GPU
    worker = Executor(Toolset(pinned, denoise_registry))
    with pytest.raises(BackendMismatch) as mismatch:
        worker.run_group(group)
    assert str(mismatch.value) == ("DENOISE: the run pinned backend 'gpu-net', but this worker cannot run it "
                                   "(DENOISE backend 'gpu-net': needs device 'cuda', but torch sees no CUDA device)")
    unpinned = Executor(Toolset(Config(profile="gpu"), denoise_registry))  # it would choose median on its own
    with pytest.raises(BackendMismatch, match="this worker cannot run it \\(it runs 'median'\\)"):
        unpinned.run_group(group)


def test_with_the_fallback_allowed_rows_record_the_backend_they_really_used(coffee, denoise_registry):
    pinned, waves, (group,) = _denoise_groups(denoise_registry, coffee)
    GpuNet.cuda = False
    allowed = pinned.model_copy(update={"executor": ExecutorSettings(allow_cpu_fallback=True)})
    waves.record(group, Executor(Toolset(allowed, denoise_registry)).run_group(group))
    assert waves.next_groups() == []
    (result,) = waves.results()
    assert result.status == "ok"
    np.testing.assert_array_equal(result.image, coffee[::-1])  # median ran, not gpu-net
    (node,) = result.trace
    assert node.backend == "median" and node.fallback.startswith("gpu-net -> median: DENOISE backend 'gpu-net'")


def test_invalid_plans_and_missing_user_mask_are_reported_per_item(coffee, toolset):
    unknown = parse_workflow({"nodes": [{"id": "s", "tool": "SPARKLE", "inputs": {}}], "output": "@s.image"})
    results = Executor(toolset).run_many([EditItem("bad", coffee, unknown), EditItem("nomask", coffee, WAVES)])
    assert results[0].status == "invalid_plan" and "unknown tool 'SPARKLE'" in results[0].error
    assert results[1].status == "failed" and "uses @input.mask but this item has no mask" in results[1].error


@pytest.mark.parametrize("make_cache", [lambda tmp: MemoryCache(), lambda tmp: DiskCache(tmp / "cache")])
def test_node_cache_skips_recomputation_and_gives_identical_results(coffee, toolset, tmp_path, make_cache):
    cache = make_cache(tmp_path)
    mask = _mask(coffee.shape, (20, 20, 100, 90))
    first = Executor(toolset, cache=cache).run(WAVES, coffee, mask, seed=1)
    counter = CallCounter(toolset, ["BBOX", "SHARPEN", "BLUR", "GRAYSCALE"])
    second = Executor(toolset, cache=cache).run(WAVES, coffee, mask, seed=1)
    assert counter.calls == []
    assert all(t.cache_hit for t in second.trace)
    np.testing.assert_array_equal(first.image, second.image)
    assert second.values["box"]["bbox"] == first.values["box"]["bbox"]
    third = Executor(toolset, cache=cache).run(WAVES, coffee, mask, seed=2)  # another seed is another key
    assert [t for t in third.trace if t.cache_hit] == []


def test_a_cyclic_graph_is_an_invalid_plan_and_the_other_items_run(coffee, toolset):
    cyclic = parse_workflow({
        "nodes": [
            {"id": "a", "tool": "GRAYSCALE", "inputs": {"image": "@b.image"}},
            {"id": "b", "tool": "FLIP", "inputs": {"image": "@a.image"}},
        ],
        "output": "@b.image",
    })
    flip = parse_workflow({"nodes": [{"id": "f", "tool": "FLIP", "inputs": {"image": "@input.image"}}],
                           "output": "@f.image"})
    looped, flipped = Executor(toolset).run_many([EditItem("loop", coffee, cyclic), EditItem("ok", coffee, flip)])
    assert looped.status == "invalid_plan" and "cycle: " in looped.error and looped.image is None
    assert flipped.status == "ok"
