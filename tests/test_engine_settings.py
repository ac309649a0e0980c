"""Engine and model defaults come from the profile: one engine settings model for the Builder, the judge and the
VLM bricks; bfloat16 on cuda; the gpu profile complete with [planner], [judge] and [runtime]."""

from __future__ import annotations

from legoedit_core.bricks.models import editor, fill, segment
from legoedit_core.bricks.toolset import Toolset
from legoedit_core.bricks.vlm import vlm_settings
from legoedit_core.config import Config
from legoedit_core.settings.engine import EngineSettings
from legoedit_core.settings.judge import JudgeSettings
from legoedit_core.settings.planner import PlannerSettings


def test_planner_and_judge_share_one_engine_settings_model():
    for role in (PlannerSettings, JudgeSettings):
        assert issubclass(role, EngineSettings)
        assert set(EngineSettings.model_fields) <= set(role.model_fields)
    judge = JudgeSettings(engine="transformers", model="m", device="cuda")
    assert JudgeSettings.model_fields["image_size"].default == 512  # a role keeps its own defaults
    assert isinstance(judge, EngineSettings) and judge.dtype == "bfloat16"
    vllm = JudgeSettings(engine="vllm", model="org/vlm")  # vLLM runs on a GPU only: its device defaults to cuda
    assert (vllm.device, vllm.dtype) == ("cuda", "bfloat16")


def test_the_gpu_profile_puts_every_vlm_role_on_cuda_in_bfloat16():
    gpu = Config.load(overrides=['profile="gpu"', 'planner.engine="vllm"', 'planner.model="org/vlm"'])
    assert (gpu.planner.device, gpu.planner.dtype) == ("cuda", "bfloat16")
    assert (gpu.judge.device, gpu.judge.dtype) == ("cuda", "bfloat16")
    brick = vlm_settings(gpu.brick("ADD-PRED").backend_settings() | {"model": "org/vlm"}, 64)
    assert (brick.device, brick.dtype) == ("cuda", "bfloat16")
    assert gpu.runtime.reserve_gb == {"cuda": 2}
    cpu = Config.load()
    assert (cpu.planner.device, cpu.planner.dtype, cpu.judge.dtype) == ("cpu", "float32", "float32")
    chosen = Config.load(overrides=['profile="gpu"', 'planner.dtype="float16"'])
    assert chosen.planner.dtype == "float16"  # an explicit dtype stays


def test_model_backends_take_their_familys_dtype_on_cuda_and_float32_on_cpu():
    flux = next(b for b in fill.BACKENDS if b.name == "flux-fill")
    sd = next(b for b in fill.BACKENDS if b.name == "sd-inpaint")
    on = {"device": "cuda"}
    assert flux.resolve({flux.name: on})["dtype"] == "bfloat16"
    assert sd.resolve({sd.name: on})["dtype"] == "float16"
    assert editor.FluxKontext.resolve({"flux-kontext": on})["dtype"] == "bfloat16"
    assert segment.ClipSeg.resolve({"clipseg": on})["dtype"] == "float32"
    assert {b.resolve({})["dtype"] for b in (flux, sd, editor.FluxKontext, segment.ClipSeg)} == {"float32"}
    assert flux.resolve({"flux-fill": {"device": "cuda", "dtype": "float16"}})["dtype"] == "float16"


def test_the_toolset_applies_the_profiles_memory_reserve(runtime):
    Toolset(Config.load(overrides=['profile="gpu"', "runtime.memory_budget_gb={cuda = 70}"]))
    assert runtime.reserves["cuda"] == 2 * 2**30 and runtime.budgets["cuda"] == 70 * 2**30
