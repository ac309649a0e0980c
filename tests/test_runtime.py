"""The model runtime: one owner per loaded model, exclusive use, merged calls, one base for many adapters, one VLM
for every role, a memory budget that never evicts a model in use."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import tiny_models
from tiny_vlm import save_tiny_vlm

from legoedit_core.bricks.models import editor, fill
from legoedit_core.bricks.toolset import Toolset
from legoedit_core.bricks.vlm import VLMAddPred, VLMCapPred
from legoedit_core.config import Config
from legoedit_core.judge.vlm import JudgeRequest, VLMJudge
from legoedit_core.planners import PlannerSettings, PlanRequest, make_planner
from legoedit_core.runtime import ModelKey, ModelRuntime
from legoedit_core.settings.judge import JudgeSettings
from legoedit_core.vlm.chat import Message, OutputFormat, shown_image
from legoedit_core.vlm.engines.hf import TransformersEngine

FAST = {"device": "cpu", "dtype": "float32", "steps": 2, "max_area": 64 * 64, "max_sequence_length": 16}
FLUX_FILL = next(b for b in fill.BACKENDS if b.brick == "FILL" and b.name == "flux-fill")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("runtime_models")
    paths = {"flux-fill": tiny_models.build_flux_fill(root / "flux-fill"),
             "flux-kontext": tiny_models.build_flux_kontext(root / "flux-kontext"),
             "vlm": save_tiny_vlm(root / "vlm")}
    for seed in (1, 2, 3):
        paths[f"lora{seed}"] = tiny_models.build_flux_lora(paths["flux-fill"], root / f"lora{seed}", seed=seed)
    return paths


def run_threads(jobs: list) -> list:
    """Run every job on its own thread, released together; their results in job order."""
    barrier = threading.Barrier(len(jobs))
    results: list = [None] * len(jobs)

    def run(index: int) -> None:
        barrier.wait()
        results[index] = jobs[index]()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(jobs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def image_items(width: int, height: int, seed: int, prompt: str = "a red ball") -> list[dict]:
    rng = np.random.default_rng(seed)
    mask = np.zeros((height, width), np.uint8)
    mask[height // 4 : height // 2, width // 4 : width // 2] = 255
    return [{"image": rng.integers(0, 256, (height, width, 3), dtype=np.uint8), "mask": mask, "prompt": prompt}]


# ------------------------------------------------------------------------------------------ the runtime on its own


class Recorder:
    """A fake model that notes how many callers are inside it at once and which batches it got."""

    def __init__(self) -> None:
        self.inside = 0
        self.most_inside = 0
        self.batches: list[list[int]] = []
        self.lock = threading.Lock()

    def __call__(self, items: list[int]) -> list[int]:
        with self.lock:
            self.inside += 1
            self.most_inside = max(self.most_inside, self.inside)
        time.sleep(0.05)
        self.batches.append(list(items))
        with self.lock:
            self.inside -= 1
        return [item * 10 for item in items]


def test_one_caller_at_a_time_and_waiting_callers_are_merged_into_one_batch():
    model = Recorder()
    runtime = ModelRuntime(pretrained=lambda key: model, measure=lambda m: 1)
    key = ModelKey("fake.Recorder", "r")
    outputs = run_threads([lambda i=i: runtime.call(key, lambda m, items: m(items), [i, i + 100], merge="same")
                           for i in range(6)])
    assert outputs == [[i * 10, (i + 100) * 10] for i in range(6)]  # every caller gets exactly its own outputs
    assert model.most_inside == 1
    assert len(model.batches) < 6  # callers that waited together were served by one call
    stats = runtime.stats()["models"][0]
    assert stats["loads"] == 1 and stats["merged_calls"] >= 1


def test_calls_without_a_merge_key_run_alone_and_an_error_reaches_only_its_callers():
    model = Recorder()
    runtime = ModelRuntime(pretrained=lambda key: model, measure=lambda m: 1)
    key = ModelKey("fake.Recorder", "r")

    def work(m, items):
        if items == [3]:
            raise ValueError("bad batch")
        return m(items)

    outputs = run_threads([lambda i=i: _outcome(lambda: runtime.call(key, work, [i])) for i in range(5)])
    assert outputs == [[0], [10], [20], "ValueError: bad batch", [40]]
    assert sorted(map(len, model.batches)) == [1, 1, 1, 1] and model.most_inside == 1


def _outcome(call):
    try:
        return call()
    except Exception as error:
        return f"{type(error).__name__}: {error}"


def test_budget_evicts_least_recently_used_but_never_a_model_in_use():
    runtime = ModelRuntime(budgets={"cpu": 2}, pretrained=lambda key: key.source, measure=lambda m: 1)
    a, b, c = (ModelKey("fake.M", name) for name in "abc")
    with runtime.use(a):
        runtime.shared(b)
        runtime.shared(c)  # three resident would exceed 2: b (idle, least recent) goes, a is in use and stays
        assert set(runtime.loaded()) == {a, c}
    assert runtime.evictions == 1
    runtime.shared(b)  # a's use ended after c's: c is now the least recently used
    assert set(runtime.loaded()) == {a, b} and runtime.loads() == 4
    assert runtime.stats()["resident_bytes"] == {"cpu": 2}


def test_recording_collects_the_uses_of_this_thread():
    runtime = ModelRuntime(pretrained=lambda key: key.source, measure=lambda m: 5)
    key = ModelKey("fake.M", "a")
    with ModelRuntime.recording() as uses:
        runtime.call(key, lambda m, items: items, [1])
        runtime.call(key, lambda m, items: items, [2])
    assert [(u.model, u.loaded, u.merged, u.resident_bytes) for u in uses] == [
        (str(key), True, 1, 5), (str(key), False, 1, 5)]


# --------------------------------------------------------------------------- real tiny models, many threads at once


def test_four_threads_on_shared_pipelines_and_vlm_get_the_outputs_of_sequential_calls(tiny, runtime):
    """Four shards reaching FILL, EDIT and the VLM at once: exclusive use keeps each result exactly as alone."""
    fill_backend = FLUX_FILL({"flux-fill": {**FAST, "model": str(tiny["flux-fill"])}})
    kontext = editor.FluxKontext({"flux-kontext": {**FAST, "model": str(tiny["flux-kontext"])}})
    engine = TransformersEngine(PlannerSettings(engine="transformers", model=str(tiny["vlm"]), max_new_tokens=16,
                                                image_size=64))
    sizes = [(64, 48), (48, 64), (32, 64), (64, 32)]  # one size per shard: batch mates never share a denoising call
    rng = np.random.default_rng(0)
    pictures = [rng.integers(0, 256, (64, 64, 3), dtype=np.uint8) for _ in range(4)]
    fmt = OutputFormat(regex=r"(cat|dog) [a-z]{1,6}")

    def shard(index: int):
        width, height = sizes[index]
        items = image_items(width, height, seed=index)
        chat = [Message("user", "caption", shown_image(pictures[index], 64))]
        return (fill_backend.run_batch(items, [index])[0]["image"],
                kontext.run_batch(items, [index])[0]["image"],
                engine.generate([chat], fmt, [index])[0])

    together = run_threads([lambda i=i: shard(i) for i in range(4)])
    one_by_one = [shard(i) for i in range(4)]
    for (fill_a, edit_a, text_a), (fill_b, edit_b, text_b) in zip(together, one_by_one, strict=True):
        assert np.array_equal(fill_a, fill_b) and np.array_equal(edit_a, edit_b) and text_a == text_b
    stats = {m["model"].split("(")[0]: m for m in runtime.stats()["models"]}
    assert all(m["loads"] == 1 for m in stats.values())
    assert sum(m["merged_calls"] for m in stats.values()) >= 1  # waiting shards were served together


def test_three_lora_adapters_share_one_base_and_each_matches_a_pipeline_with_only_that_adapter(tiny, runtime):
    def backend(lora: str | None):
        options = {**FAST, "model": str(tiny["flux-fill"])} | ({"lora": str(tiny[lora])} if lora else {})
        return FLUX_FILL({"flux-fill": options})

    items = image_items(64, 48, seed=5)
    shared = {lora: backend(lora).run_batch(items, [9])[0]["image"] for lora in ("lora1", "lora2", "lora3", None)}
    assert runtime.loads() == 1 and len(runtime.loaded()) == 1  # one base resident for every adapter
    (model,) = runtime.stats()["models"]
    assert len(model["adapters"]) == 3 and model["adapter_switches"] == 3
    assert len({image.tobytes() for image in shared.values()}) == 4  # every adapter changes the output

    for lora in ("lora1", "lora2", "lora3"):
        alone = ModelRuntime()  # a fresh pipeline that only ever sees this one adapter
        single = backend(lora)
        single.runtime = alone
        assert np.array_equal(single.run_batch(items, [9])[0]["image"], shared[lora]), lora


def test_builder_add_pred_cap_pred_and_judge_on_one_vlm_load_it_once(tiny, runtime, coffee):
    vlm = str(tiny["vlm"])
    image = coffee[:64, :64].copy()
    toolset = Toolset(Config(profile="gpu", bricks={"ADD-PRED": {"model": vlm, "image_size": 64},
                                                    "CAP-PRED": {"model": vlm, "image_size": 64}}))
    builder = make_planner(PlannerSettings(strategy="workflow", engine="transformers", model=vlm, max_attempts=1,
                                           examples=0, image_size=64, max_new_tokens=24, max_think_chars=16), toolset)
    builder.plan_batch([PlanRequest("a", image, "make it black and white")])
    toolset.backend("ADD-PRED").run_batch([{"image": image, "prompt": "a hat"}], [0])
    toolset.backend("CAP-PRED").run_batch([{"image": image, "prompt": ""}], [0])
    judge = VLMJudge(JudgeSettings(engine="transformers", model=vlm, image_size=64, max_new_tokens=24,
                                   max_attempts=1, max_reasoning_chars=4))
    judge.judge_batch([JudgeRequest(image, image, "do nothing")])
    assert isinstance(toolset.backend("ADD-PRED"), VLMAddPred) and isinstance(toolset.backend("CAP-PRED"), VLMCapPred)
    (model,) = runtime.stats()["models"]
    assert model["loads"] == 1 and model["calls"] >= 4


def test_resident_benchmark_holds_one_copy_of_each_base():
    """``benchmarks/bricks_gpu.py --tiny --resident``: every FLUX-Fill brick and VLM role, about one copy each."""
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "bricks_gpu.py"
    run = subprocess.run([sys.executable, str(script), "--tiny", "--resident"], capture_output=True, text=True,
                         timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    last = run.stdout.strip().splitlines()[-1]
    assert last.startswith("resident_ratio=")
    assert 0.9 <= float(last.split("=")[1]) <= 1.1  # five copies of the base would be about 4
