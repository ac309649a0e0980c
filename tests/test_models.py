"""Model backends on tiny random-weight models, loaded through the model runtime's real ``from_pretrained``."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import tiny_models
import torch

from legoedit_core.bricks.models import editor, fill, segment
from legoedit_core.bricks.models.base import ModelBackend
from legoedit_core.bricks.models.batching import Job, run_grouped
from legoedit_core.bricks.spec import BrickError
from legoedit_core.bricks.toolset import Toolset
from legoedit_core.config import Config
from legoedit_core.executor import EditItem, Executor
from legoedit_core.faults import MemoryExhausted, run_fitting_memory
from legoedit_core.runtime import ModelKey, ModelRuntime, from_pretrained
from legoedit_core.workflow import parse_workflow

SIZES = [(64, 48), (60, 44), (40, 64)]  # the first two share a 16-px size bucket, the third does not
FAST = {"device": "cpu", "dtype": "float32", "steps": 2, "max_area": 64 * 64, "max_sequence_length": 16}


@pytest.fixture(scope="session")
def tiny(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("tiny_models")
    builders = {"flux-fill": tiny_models.build_flux_fill, "flux-kontext": tiny_models.build_flux_kontext,
                "sd-inpaint": tiny_models.build_sd_inpaint, "clipseg": tiny_models.build_clipseg,
                "grounding-dino": tiny_models.build_grounding_dino, "sam": tiny_models.build_sam,
                "segformer": tiny_models.build_segformer}
    paths = {name: build(root / name) for name, build in builders.items()}
    paths["flux-lora"] = tiny_models.build_flux_lora(paths["flux-fill"], root / "flux-lora")
    return paths


def make_items(prompt: str = "a red ball", sizes=SIZES, **extra) -> list[dict]:
    rng = np.random.default_rng(0)
    items = []
    for width, height in sizes:
        mask = np.zeros((height, width), np.uint8)
        mask[height // 4 : height // 2, width // 4 : width // 2] = 255
        items.append({"image": rng.integers(0, 256, (height, width, 3), dtype=np.uint8), "mask": mask,
                      "prompt": prompt, **extra})
    return items


def settings_for(backend: type[ModelBackend], tiny: dict[str, Path]) -> dict:
    sources = {"detector": tiny["grounding-dino"], "segmenter": tiny["sam"]}
    by_name = {"clipseg": tiny["clipseg"], "semantic": tiny["segformer"]}
    own = {key: str(by_name.get(backend.name) or tiny.get(backend.name) or sources[key]) for key in backend.sources}
    return {backend.name: {**FAST, **own}}


def brick_inputs(backend: type[ModelBackend]) -> list[dict]:
    items = make_items()
    if backend.brick == "INPAINT":
        items = [{**item, "strength": 1.0} for item in items]
    return items


FLUX = {b.brick: b for b in fill.BACKENDS if b.name == "flux-fill"}
GENERATORS = fill.BACKENDS + editor.BACKENDS[:1]  # Qwen-Image-Edit needs torchvision (see docs/models.md)


@pytest.mark.parametrize("backend", GENERATORS + segment.BACKENDS, ids=lambda b: f"{b.brick}-{b.name}")
def test_backend_runs_a_batch_of_three_sizes(backend, tiny, runtime):
    instance = backend(settings_for(backend, tiny))
    items = brick_inputs(backend)
    outputs = instance.run_batch(items, [1, 2, 3])
    port = "mask" if backend.brick in ("RES", "SOS", "MASK-SEG") else "image"
    for item, output in zip(items, outputs, strict=True):
        assert isinstance(output, dict), output
        assert output[port].shape[:2] == item["image"].shape[:2]
        assert output[port].dtype == np.uint8
    assert runtime.loads() >= 1


@pytest.mark.parametrize("backend", [FLUX["INPAINT"], FLUX["CBG"], FLUX["RCM"]],
                         ids=lambda b: b.brick)
def test_pixels_outside_the_edited_region_are_the_original(backend, tiny, runtime):
    items = brick_inputs(backend)
    outputs = backend(settings_for(backend, tiny)).run_batch(items, [1, 2, 3])
    for item, output in zip(items, outputs, strict=True):
        kept = item["mask"] > 127 if backend.brick == "CBG" else item["mask"] == 0
        assert np.array_equal(output["image"][kept], item["image"][kept])
        assert not np.array_equal(output["image"][~kept], item["image"][~kept])


def test_same_seed_same_pixels_and_another_seed_differs(tiny, runtime):
    backend = FLUX["FILL"](settings_for(FLUX["FILL"], tiny))
    items = make_items()
    first = backend.run_batch(items, [7, 8, 9])
    again = backend.run_batch(items, [7, 8, 9])
    other = backend.run_batch(items, [70, 80, 90])
    for a, b, c in zip(first, again, other, strict=True):
        assert np.array_equal(a["image"], b["image"])
        assert not np.array_equal(a["image"], c["image"])
    assert runtime.loads() == 1


def test_an_items_result_does_not_depend_on_its_batch(tiny, runtime):
    backend = editor.FluxKontext(settings_for(editor.FluxKontext, tiny))
    items = make_items(sizes=[(64, 48)] * 3)
    together = backend.run_batch(items, [1, 2, 3])
    alone = backend.run_batch(items[1:2], [2])
    assert np.abs(together[1]["image"].astype(int) - alone[0]["image"].astype(int)).max() <= 2


def test_bad_item_gets_an_error_and_the_rest_run(tiny, runtime):
    items = make_items()
    items[1]["mask"][:] = 0
    outputs = FLUX["FILL"](settings_for(FLUX["FILL"], tiny)).run_batch(items, [1, 2, 3])
    assert isinstance(outputs[1], BrickError) and "empty" in str(outputs[1])
    assert isinstance(outputs[0], dict) and isinstance(outputs[2], dict)


def test_size_groups_make_one_call_each():
    calls = []

    def call(jobs, generators):
        calls.append([j.args["n"] for j in jobs])
        return [torch.randn(1, generator=g).item() for g in generators]

    jobs = [Job((64, 48), seed, {"n": n}) for n, seed in enumerate([5, 6, 7])] + [Job((48, 64), 5, {"n": 3})]
    outputs = run_grouped(jobs, call, "cpu")
    assert calls == [[0, 1, 2], [3]]
    assert outputs[0] == outputs[3]  # same seed, same noise, whatever the group


class OutOfMemoryOnce:
    """A real pipeline whose first ``times`` calls raise the framework's out-of-memory error (-1: every call);
    records batch sizes."""

    def __init__(self, pipe, times: int = 1) -> None:
        self.pipe, self.batches, self.times = pipe, [], times

    def __call__(self, **kwargs):
        self.batches.append(len(kwargs["prompt"]))
        if self.times < 0 or len(self.batches) <= self.times:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return self.pipe(**kwargs)


def test_out_of_memory_raises_out_of_the_backend_and_the_one_owner_halves_it(tiny):
    flaky = ModelRuntime(pretrained=lambda key: OutOfMemoryOnce(from_pretrained(key)))
    backend = FLUX["FILL"](settings_for(FLUX["FILL"], tiny))
    backend.runtime = flaky
    items = make_items(sizes=[(64, 48)] * 4)
    outputs = run_fitting_memory(items, lambda chunk: backend.run_batch(chunk, [1, 2, 3, 4][:len(chunk)]), "FILL")
    with flaky.use(backend.model_key(backend.kind)) as pipe:
        assert pipe.batches == [4, 2, 2]  # the backend raised once; the owner ran the halves
    assert all(isinstance(o, dict) and o["image"].shape == (48, 64, 3) for o in outputs)


def test_out_of_memory_for_one_item_is_memory_exhausted_after_halving_down_to_one(tiny):
    failing = ModelRuntime(pretrained=lambda key: OutOfMemoryOnce(from_pretrained(key), times=-1))
    backend = FLUX["FILL"](settings_for(FLUX["FILL"], tiny))
    backend.runtime = failing
    with pytest.raises(torch.OutOfMemoryError):  # the backend itself never halves
        backend.run_batch(make_items(sizes=[(64, 48)] * 4), [1, 2, 3, 4])
    with pytest.raises(MemoryExhausted):  # a fault of the machinery: no item is marked failed
        run_fitting_memory(make_items(sizes=[(64, 48)] * 4), lambda chunk: backend.run_batch(chunk, [1] * len(chunk)),
                           "FILL")
    with failing.use(backend.model_key(backend.kind)) as pipe:
        assert pipe.batches == [4, 4, 2, 1]


def test_lora_adapter_loads_from_its_path_and_changes_the_output(tiny, runtime):
    base = FLUX["FILL"](settings_for(FLUX["FILL"], tiny))
    settings = settings_for(FLUX["FILL"], tiny)
    settings["flux-fill"]["lora"] = str(tiny["flux-lora"])
    adapted = FLUX["FILL"](settings)
    items = make_items(sizes=[(64, 48)])
    plain, with_lora = base.run_batch(items, [1])[0], adapted.run_batch(items, [1])[0]
    assert [a.path for a in adapted.adapters()] == [str(tiny["flux-lora"])]
    assert runtime.loads() == 1  # one base: the adapter is activated on it, not loaded as a second copy
    assert not np.array_equal(plain["image"], with_lora["image"])
    again = base.run_batch(items, [1])[0]  # the adapter is disabled again for the plain brick
    assert np.array_equal(plain["image"], again["image"])


def test_runtime_loads_once_when_many_threads_ask(tiny, runtime):
    key = ModelKey("transformers.SegformerForSemanticSegmentation", str(tiny["segformer"]))
    models = []
    threads = [threading.Thread(target=lambda: models.append(runtime.shared(key))) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert runtime.loads() == 1 and len(models) == 8 and all(m is models[0] for m in models)


def wave_workflow(tool: str):
    inputs = {"image": "@input.image", "mask": "@input.mask"}
    inputs |= {"strength": 1.0} if tool == "INPAINT" else {"prompt": "a red ball"}
    return parse_workflow({"instruction": tool, "nodes": [{"id": "edit", "tool": tool, "inputs": inputs}],
                           "output": "@edit.image"})


def test_a_wave_across_two_bricks_loads_their_shared_model_once_then_evicts_it(tiny, runtime):
    shared = {"flux-fill": {**FAST, "model": str(tiny["flux-fill"])}}
    edit = {"flux-kontext": {**FAST, "model": str(tiny["flux-kontext"])}}
    toolset = Toolset(Config(profile="gpu", bricks={"INPAINT": shared, "FILL": shared, "EDIT": edit}))
    executor = Executor(toolset)
    items = [EditItem(f"item{i}", item["image"], wave_workflow("INPAINT" if i % 2 else "FILL"), item["mask"], seed=i)
             for i, item in enumerate(make_items(sizes=[(64, 48), (48, 64)] * 5))]
    results = executor.run_many(items)
    assert [r.status for r in results] == ["ok"] * 10
    assert {t.backend for r in results for t in r.trace} == {"flux-fill"}
    assert {t.batch_size for r in results for t in r.trace} == {5}
    assert runtime.loads() == 1
    runtime.set_budget("cpu", runtime.resident_bytes("cpu"))  # room for one pipeline only
    edit_item = EditItem("edit", items[0].image, parse_workflow({"nodes": [
        {"id": "e", "tool": "EDIT", "inputs": {"image": "@input.image", "prompt": "make it blue"}}],
        "output": "@e.image"}))
    assert executor.run_many([edit_item])[0].status == "ok"
    assert [k.kind for k in runtime.loaded()] == ["diffusers.FluxKontextPipeline"] and runtime.evictions == 1
    executor.run_many(items[:2])
    assert runtime.loads() == 3


def test_gpu_profile_without_weights_says_which_model_and_where():
    toolset = Toolset(Config.load(overrides=['profile="gpu"']))
    reasons = " ".join(toolset.passed_over("INPAINT"))
    assert "black-forest-labs/FLUX.1-Fill-dev" in reasons and "hub cache" in reasons
    assert toolset.backend_class("INPAINT").resource == "cpu"  # fell back to the CPU backend
    assert "FLUX.1-Kontext-dev" in (toolset.unavailable("EDIT") or "")


def test_profile_defaults_lie_under_user_overrides(tmp_path):
    config = Config.load(overrides=['profile="gpu"', "bricks.INPAINT.flux-fill.steps=4"])
    settings = config.brick("INPAINT").backend_settings()["flux-fill"]
    assert settings["steps"] == 4 and settings["model"] == "black-forest-labs/FLUX.1-Fill-dev"
    assert Config.load().bricks == {}


def test_missing_says_what_is_absent(tiny):
    assert "needs" in FLUX["FILL"].missing({}) and "bricks.FILL.flux-fill.model" in FLUX["FILL"].missing({})
    assert "does not exist" in FLUX["FILL"].missing({"model": "/no/such/dir"})
    assert FLUX["FILL"].missing({"model": str(tiny["flux-fill"])}) is None

    class NeedsAbsentPackage(FLUX["FILL"]):  # type: ignore[misc, valid-type]
        packages = ("no_such_package_here",)

    assert "no_such_package_here" in NeedsAbsentPackage.missing({"model": str(tiny["flux-fill"])})
    needs = FLUX["FILL"]({"model": str(tiny["flux-fill"])}).describe_needs()
    assert str(tiny["flux-fill"]) in needs and "local path" in needs


def test_the_cpu_profile_never_imports_torch():
    code = ("import sys; from legoedit_core.bricks.toolset import Toolset; Toolset().available_specs(); "
            "print(sorted(m for m in ('torch', 'diffusers', 'transformers') if m in sys.modules))")
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert output.strip() == "[]"
