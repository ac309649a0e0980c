"""Memory admitted before loading: the runtime sizes a model before it loads, evicts (really freeing) until it fits
the budget and the device's free memory less a reserve, and counts every kind of model. The device here is fake:
its models take and give back bytes as a CUDA device's would."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
import tiny_models
import torch
from safetensors.torch import save_file

from legoedit_core.runtime import ModelDoesNotFit, ModelKey, ModelRuntime, estimate_bytes, from_pretrained
from legoedit_core.runtime.sizing import safetensors_bytes, size_before_load

GPU = "cuda"


class FakeDevice:
    """A device of ``capacity`` bytes. Models allocate on it when loaded and give their bytes back when closed and
    collected (``release``), like tensors freed by the garbage collector and the CUDA cache."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.used = 0
        self.peak = 0
        self.closed: list[int] = []  # closed but not yet released: what the next release gives back
        self.events: list[str] = []
        self.lock = threading.Lock()

    def allocate(self, nbytes: int, name: str) -> None:
        with self.lock:
            self.used += nbytes
            self.peak = max(self.peak, self.used)
            self.events.append(f"load {name}")
            assert self.used <= self.capacity, "out of memory on the fake device"

    def free(self, device: str) -> int | None:
        return self.capacity - self.used if device == GPU else None

    def total(self, device: str) -> int | None:
        return self.capacity if device == GPU else None

    def release(self, device: str) -> None:
        with self.lock:
            self.used -= sum(self.closed)
            self.closed.clear()


class FakeModel:
    """A model without torch parameters (like an ONNX session or a vLLM engine) holding ``nbytes`` of ``device``."""

    def __init__(self, device: FakeDevice, nbytes: int, name: str) -> None:
        self.device, self.nbytes, self.name = device, nbytes, name
        device.allocate(nbytes, name)

    def close(self) -> None:
        self.device.events.append(f"close {self.name}")
        self.device.closed.append(self.nbytes)


def weights_dir(root: Path, name: str, floats: int) -> Path:
    """A model directory whose safetensors file holds ``floats`` float32 values."""
    directory = root / name
    directory.mkdir()
    save_file({"weight": torch.zeros(floats, dtype=torch.float32)}, str(directory / "model.safetensors"))
    return directory


def fake_runtime(device: FakeDevice, **options) -> ModelRuntime:
    """A runtime whose loader puts each model on the fake device with the bytes it was sized at beforehand."""
    def load(key: ModelKey) -> FakeModel:
        return FakeModel(device, size_before_load(key, device.capacity) or 0, Path(key.source).name)

    return ModelRuntime(pretrained=load, memory=device, **options)


def test_a_load_that_does_not_fit_the_budget_evicts_first_and_never_exceeds_it(tmp_path):
    device = FakeDevice(capacity=10_000)
    runtime = fake_runtime(device, budgets={GPU: 1000}, reserves={})
    keys = [ModelKey("vlm.fake", str(weights_dir(tmp_path, name, 100)), "float32", GPU) for name in "abc"]
    for key in keys:  # 400 bytes each: the third cannot join the first two under 1000
        runtime.shared(key)
    assert device.events == ["load a", "load b", "close a", "load c"]  # a went before c loaded
    assert device.peak <= 1000 and runtime.resident_bytes(GPU) == 800 == device.used
    assert runtime.evictions == 1


def test_a_load_that_does_not_fit_free_memory_less_the_reserve_evicts_first(tmp_path):
    device = FakeDevice(capacity=1100)
    runtime = fake_runtime(device, reserves={GPU: 150})  # no budget: the device's real free memory decides
    keys = [ModelKey("vlm.fake", str(weights_dir(tmp_path, name, 100)), "float32", GPU) for name in "abc"]
    runtime.shared(keys[0])
    runtime.shared(keys[1])
    device.allocate(100, "another process")  # free memory is what the driver reports, whoever holds the rest
    runtime.shared(keys[2])
    assert device.events[-2:] == ["close a", "load c"]  # 50 bytes free beyond the reserve: a had to go first
    assert runtime.loaded() == [keys[1], keys[2]]
    assert device.capacity - device.used >= 150  # the reserve is still free


def test_models_without_torch_parameters_are_counted(tmp_path):
    device = FakeDevice(capacity=10_000)
    runtime = fake_runtime(device, reserves={})
    onnx = tmp_path / "u2netp.onnx"
    onnx.write_bytes(b"\0" * 1234)
    session = ModelKey("cpu.onnx", str(onnx), device=GPU)
    engine = ModelKey("vllm.LLM", "org/engine", "bfloat16", GPU, options=json.dumps({"gpu_memory_utilization": 0.5}))
    runtime.shared(session)
    runtime.shared(engine)
    sizes = {m["model"]: (m["bytes"], m["admitted_bytes"]) for m in runtime.stats()["models"]}
    assert sizes == {str(session): (1234, 1234), str(engine): (5000, 5000)}  # file size; vLLM's share of the GPU
    assert runtime.resident_bytes(GPU) == 6234 == device.used
    second = ModelKey("vllm.LLM", "org/other", "bfloat16", GPU, options=json.dumps({"gpu_memory_utilization": 0.5}))
    runtime.shared(second)  # 5000 more do not fit beside 6234 on 10000: the least recently used goes first
    assert device.events[-2:] == ["close u2netp.onnx", "load other"] and device.peak <= 10_000


def test_an_eviction_frees_exactly_what_it_counted(tmp_path):
    device = FakeDevice(capacity=10_000)
    runtime = fake_runtime(device, reserves={})
    key = ModelKey("vlm.fake", str(weights_dir(tmp_path, "a", 250)), "bfloat16", GPU)
    runtime.shared(key)
    counted = runtime.resident_bytes(GPU)
    assert counted == 500 == device.used  # 250 floats loaded as bfloat16
    runtime.clear()
    assert device.events[-1] == "close a"
    assert runtime.resident_bytes(GPU) == 0 == device.used  # closed, collected, handed back: all 500


def test_a_load_waits_for_a_model_in_use_then_evicts_it(tmp_path):
    device = FakeDevice(capacity=10_000)
    runtime = fake_runtime(device, budgets={GPU: 500}, reserves={})
    held = ModelKey("vlm.fake", str(weights_dir(tmp_path, "held", 100)), "float32", GPU)
    other = ModelKey("vlm.fake", str(weights_dir(tmp_path, "other", 100)), "float32", GPU)
    released = threading.Event()

    def hold() -> None:
        with runtime.use(held):
            released.wait(5)

    holder = threading.Thread(target=hold)
    holder.start()
    while not runtime.loaded():
        time.sleep(0.01)
    loader = threading.Thread(target=runtime.shared, args=(other,))
    loader.start()
    time.sleep(0.2)
    assert device.events == ["load held"]  # waiting: the model in use is never evicted
    released.set()
    holder.join()
    loader.join()
    assert device.events == ["load held", "close held", "load other"] and device.peak <= 500


def test_concurrent_loads_never_pass_the_budget_together(tmp_path):
    """Two threads admitted at once would each see room for one model: a load in progress holds its bytes."""
    device = FakeDevice(capacity=10_000)
    runtime = fake_runtime(device, budgets={GPU: 600}, reserves={})
    slow = runtime.pretrained
    runtime.pretrained = lambda key: (time.sleep(0.1), slow(key))[1]
    keys = [ModelKey("vlm.fake", str(weights_dir(tmp_path, name, 100)), "float32", GPU) for name in ("a", "b", "c")]
    threads = [threading.Thread(target=runtime.shared, args=(key,)) for key in keys]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert device.peak <= 600 and runtime.loads() == 3 and len(runtime.loaded()) == 1


def test_a_model_larger_than_everything_it_could_get_is_a_fault(tmp_path):
    device = FakeDevice(capacity=10_000)
    runtime = fake_runtime(device, budgets={GPU: 300}, reserves={})
    key = ModelKey("vlm.fake", str(weights_dir(tmp_path, "big", 100)), "float32", GPU)
    with pytest.raises(ModelDoesNotFit, match="needs"):
        runtime.shared(key)
    assert device.used == 0  # refused before loading


def test_a_model_waiting_on_its_own_thread_is_refused_not_deadlocked(tmp_path):
    device = FakeDevice(capacity=10_000)
    runtime = fake_runtime(device, budgets={GPU: 500}, reserves={})
    first = ModelKey("vlm.fake", str(weights_dir(tmp_path, "first", 100)), "float32", GPU)
    second = ModelKey("vlm.fake", str(weights_dir(tmp_path, "second", 100)), "float32", GPU)
    with runtime.use(first), pytest.raises(ModelDoesNotFit):
        runtime.shared(second)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_sizes_before_loading_match_what_the_loaded_pipeline_measures(tmp_path, dtype):
    """The safetensors headers of a saved FLUX-Fill pipeline give the bytes that loading it really takes."""
    path = tiny_models.build_flux_fill(tmp_path / "flux-fill")
    key = ModelKey("diffusers.FluxFillPipeline", str(path), dtype)
    sized, measured = size_before_load(key, None), estimate_bytes(from_pretrained(key))
    assert abs(sized - measured) <= 0.01 * measured  # only buffers that are not saved (CLIP's position ids) differ
    assert size_before_load(ModelKey("transformers.AutoProcessor", str(path)), None) == 0  # no device memory
    offloaded = size_before_load(ModelKey(key.kind, str(path), dtype, cpu_offload=True), None)
    largest = max(safetensors_bytes(f, dtype) for f in path.rglob("*.safetensors"))
    assert offloaded == largest  # offloaded, one component at a time is on the device


def test_a_vllm_engine_is_admitted_at_its_share_and_eviction_stops_its_engine_core():
    """The vLLM engine's own figure (gpu_memory_utilization of the GPU) is admitted before it starts; evicting it
    shuts its engine core down, the process that holds the memory."""
    from types import SimpleNamespace

    from legoedit_core.settings.planner import PlannerSettings
    from legoedit_core.vlm.engines import vllm as vllm_engine

    device = FakeDevice(capacity=10_000)
    runtime = ModelRuntime(memory=device, reserves={})
    settings = PlannerSettings(engine="vllm", model="org/vlm", device="cuda",
                               engine_args={"gpu_memory_utilization": 0.4})
    key = vllm_engine.VLLMEngine(settings).key

    def start(key: ModelKey):  # what vllm.LLM would claim: its share of the whole GPU
        share = json.loads(key.options)["gpu_memory_utilization"]
        device.allocate(int(share * device.capacity), "engine core")
        core = SimpleNamespace(shutdown=lambda: device.closed.append(int(share * device.capacity)))
        return vllm_engine._Engine(SimpleNamespace(llm_engine=SimpleNamespace(engine_core=core)))

    runtime.call(key, lambda engine, items: items, [1], loader=start)
    assert runtime.resident_bytes(GPU) == 4000 == device.used
    runtime.clear()
    assert device.used == 0 and runtime.resident_bytes(GPU) == 0


def test_the_cpu_profiles_onnx_session_is_counted_at_its_file_size(runtime, coffee):
    """A real model without torch parameters: U^2-Net's ONNX session, sized from its file before it loads."""
    from legoedit_core.bricks.cpu.segment import saliency, u2netp_path

    saliency(coffee)
    (model,) = runtime.stats()["models"]
    assert model["model"].startswith("cpu.u2netp")
    assert model["bytes"] == model["admitted_bytes"] == u2netp_path().stat().st_size > 4_000_000
    assert runtime.resident_bytes("cpu") == model["bytes"]
