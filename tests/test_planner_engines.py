"""Builder engines: a tiny random-weight Qwen2-VL / Qwen2.5-VL through transformers under constrained decoding,
vLLM request building without vLLM, and the VLM-backed ADD-PRED / CAP-PRED bricks."""

from __future__ import annotations

import re

import jsonschema
import numpy as np
import pytest
import xgrammar as xgr
from tiny_vlm import save_tiny_vlm

from legoedit_core.bricks import functions
from legoedit_core.bricks.cpu import functions as cpu_functions
from legoedit_core.bricks.registry import BrickRegistry
from legoedit_core.bricks.toolset import Toolset
from legoedit_core.bricks.vlm import VLMAddPred, VLMCapPred, box_schema
from legoedit_core.config import Config
from legoedit_core.planners import PlannerSettings, PlanRequest, make_planner
from legoedit_core.planners.parsing import extract_json, split_reasoning
from legoedit_core.planners.workflow_planner import workflow_format
from legoedit_core.vlm.chat import Message, OutputFormat, shown_image
from legoedit_core.vlm.engines import vllm as vllm_engine
from legoedit_core.vlm.engines.hf import TransformersEngine
from legoedit_core.vlm.grammar import build_grammar
from legoedit_core.workflow_schema import workflow_json_schema


@pytest.fixture(scope="module")
def small_toolset() -> Toolset:
    """Three function bricks with their CPU backends: a short prompt keeps the byte-level tiny model quick."""
    registry = BrickRegistry()
    for spec in (functions.FLIP, functions.GRAYSCALE, functions.BLUR):
        registry.add_brick(spec)
    for backend in cpu_functions.BACKENDS:
        if backend.brick in registry:
            registry.add_backend(backend)
    return Toolset(Config(), registry)


@pytest.fixture(scope="module", params=["qwen2_vl", "qwen2_5_vl"])
def tiny_model(request, tmp_path_factory) -> str:
    return str(save_tiny_vlm(tmp_path_factory.mktemp(request.param), kind=request.param))


def _images() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in [(96, 128), (128, 80), (64, 64)]]


def test_transformers_engine_writes_schema_valid_workflows(tiny_model, small_toolset):
    settings = PlannerSettings(strategy="workflow", engine="transformers", model=tiny_model, max_new_tokens=700,
                               max_attempts=1, max_think_chars=48, image_size=112, examples=1, temperature=1.0)
    planner = make_planner(settings, small_toolset)
    instructions = ["make it black and white", "flip it upside down", "blur the whole photo"]
    requests = [PlanRequest(f"r{i}", image, text, seed=i) for i, (image, text) in
                enumerate(zip(_images(), instructions, strict=True))]
    results = planner.plan_batch(requests)

    schema = workflow_json_schema(small_toolset.available_specs())
    assert planner.name == f"workflow/transformers:{tiny_model}"
    raws = []
    for result in results:
        (attempt,) = result.attempts
        reasoning, rest = split_reasoning(attempt.raw)
        assert attempt.raw.startswith("<think>") and len(reasoning) <= 48
        jsonschema.validate(extract_json(rest), schema)  # random weights, yet the plan parses and fits the schema
        assert attempt.workflow is not None and set(attempt.workflow.tools()) <= {"FLIP", "GRAYSCALE", "BLUR"}
        assert result.ok or result.error.startswith("no valid plan after 1 attempt(s)")  # semantics are the validator's
        raws.append(attempt.raw)
    assert len(set(raws)) == 3  # each item got its own answer (its own image, instruction and seed)


def test_transformers_engine_regex_format_and_box_brick(tiny_model):
    settings = PlannerSettings(engine="transformers", model=tiny_model, max_new_tokens=80, image_size=112)
    engine = TransformersEngine(settings)
    chats = [[Message("user", "caption", shown_image(image, 112))] for image in _images()[:2]]
    answers = engine.generate(chats, OutputFormat(regex=r"(cat|dog) [a-z]{1,8}"), [0, 1])
    assert all(re.fullmatch(r"(cat|dog) [a-z]{1,8}", a) for a in answers)

    add = VLMAddPred({"model": tiny_model, "image_size": 112})
    images = _images()[:2]
    outputs = add.run_batch([{"image": im, "prompt": "a hat"} for im in images], [0, 1])
    for image, output in zip(images, outputs, strict=True):
        if isinstance(output, dict):  # a random model may give an empty box: then a plain BrickError
            assert output["mask"].shape == image.shape[:2] and output["mask"].any()
        else:
            assert "box" in str(output)
    caption = VLMCapPred({"model": tiny_model, "image_size": 112, "max_new_tokens": 24})
    (out,) = caption.run_batch([{"image": images[0], "prompt": ""}], [0])
    assert isinstance(out, dict) and out["caption"] and "<" not in out["caption"]


def test_vlm_bricks_say_what_they_miss():
    assert "set bricks.ADD-PRED.model" in VLMAddPred.missing({})
    assert VLMCapPred.missing({"model": "some/vlm"}) is None
    assert "bad settings" in VLMCapPred.missing({"model": "m", "engine": "nope"})
    toolset = Toolset()
    assert "ADD-PRED" not in [s.name for s in toolset.available_specs()]


def test_box_schema_and_grammar_accept_only_boxes():
    tokenizer_info = xgr.TokenizerInfo([chr(c) for c in range(32, 127)])
    matcher = xgr.GrammarMatcher(xgr.GrammarCompiler(tokenizer_info).compile_grammar(
        build_grammar(OutputFormat(json_schema=box_schema(100)))))
    assert matcher.accept_string('{"box": [1, 2, 30, 40]}') and matcher.is_terminated() is False
    rejecting = xgr.GrammarMatcher(xgr.GrammarCompiler(tokenizer_info).compile_grammar(
        build_grammar(OutputFormat(json_schema=box_schema(100)))))
    assert not rejecting.accept_string('{"box": [1, 2, 300')


def test_vllm_request_building_without_vllm(cpu_toolset):
    settings = PlannerSettings(strategy="workflow", engine="vllm", model="Qwen/Qwen2.5-VL-7B-Instruct",
                               adapter="/ckpt/builder-lora", temperature=0.7, top_p=0.9, max_new_tokens=512,
                               engine_args={"gpu_memory_utilization": 0.8}, device="cuda")
    assert vllm_engine.llm_args(settings) == {  # the dtype follows the device: bfloat16 on cuda
        "model": "Qwen/Qwen2.5-VL-7B-Instruct", "dtype": "bfloat16", "limit_mm_per_prompt": {"image": 2},
        "enable_lora": True, "gpu_memory_utilization": 0.8}
    key = vllm_engine.VLLMEngine(settings).key
    assert (key.device, key.dtype) == ("cuda", "bfloat16")
    with pytest.raises(ValueError, match="first visible GPU"):
        vllm_engine.VLLMEngine(settings.model_copy(update={"device": "cpu"}))
    lora = vllm_engine.lora_args(settings)
    assert lora["lora_path"] == "/ckpt/builder-lora" and lora["lora_name"].startswith("lora_")
    judge_lora = vllm_engine.lora_args(settings.model_copy(update={"adapter": "/ckpt/judge-lora"}))
    assert judge_lora["lora_name"] != lora["lora_name"] and judge_lora["lora_int_id"] != lora["lora_int_id"]
    assert vllm_engine.lora_args(settings.model_copy(update={"adapter": None})) is None

    schema_only = OutputFormat(json_schema=workflow_json_schema(cpu_toolset.available_specs()))
    args = vllm_engine.sampling_args(settings, schema_only, seed=5)
    assert args == {"temperature": 0.7, "top_p": 0.9, "max_tokens": 512, "seed": 5,
                    "structured_outputs": {"json": schema_only.json_schema}}
    with_reasoning = workflow_format(cpu_toolset, settings)
    grammar = vllm_engine.sampling_args(settings, with_reasoning, seed=5)["structured_outputs"]["grammar"]
    assert grammar.startswith("root ::=") and '"<think>"' in grammar
    xgr.Grammar.from_ebnf(grammar)  # the EBNF vLLM receives parses back
    assert "structured_outputs" not in vllm_engine.sampling_args(settings, None, seed=0)

    image = np.full((600, 300, 3), 90, np.uint8)
    chat = [Message("system", "plan"), Message("user", "Instruction: flip it", shown_image(image, 448))]
    (conversation,) = [vllm_engine.openai_messages(chat)]
    assert conversation[0] == {"role": "system", "content": "plan"}
    parts = conversation[1]["content"]
    assert parts[0]["image_url"]["url"].startswith("data:image/png;base64,") and parts[1]["text"].endswith("flip it")


VLLM_MISSING = "vLLM is not installed here: it has its own environment (infra/vllm), which the GPU check uses"


def test_vllm_builds_the_engines_sampling_structured_output_and_lora_objects(cpu_toolset):
    pytest.importorskip("vllm", reason=VLLM_MISSING)
    settings = PlannerSettings(strategy="workflow", engine="vllm", model="m", adapter="/ckpt/builder-lora",
                               temperature=0.0, max_new_tokens=64, device="cuda")
    schema = OutputFormat(json_schema=workflow_json_schema(cpu_toolset.available_specs()))
    requests = [([{"role": "user", "content": "flip it"}], vllm_engine.sampling_args(settings, schema, seed=3)),
                ([{"role": "user", "content": "flip it"}], vllm_engine.sampling_args(settings, None, seed=4))]
    params, lora = vllm_engine.vllm_requests(requests, vllm_engine.lora_args(settings))
    assert params[0].structured_outputs.json == schema.json_schema and params[0].seed == 3
    assert params[1].structured_outputs is None and params[1].max_tokens == 64
    assert lora.lora_path == "/ckpt/builder-lora" and lora.lora_int_id == vllm_engine.lora_args(settings)["lora_int_id"]


class _EngineCore:
    def __init__(self) -> None:
        self.shut = 0

    def shutdown(self) -> None:
        self.shut += 1


def test_closing_a_vllm_engine_shuts_its_engine_core_down_or_says_it_cannot():
    core = _EngineCore()
    llm = type("LLM", (), {"llm_engine": type("LLMEngine", (), {"engine_core": core})()})()
    vllm_engine._Engine(llm).close()
    assert core.shut == 1
    with pytest.raises(RuntimeError, match=r"engine_core.shutdown\(\) is missing"):
        vllm_engine._Engine(type("LLM", (), {})()).close()


def test_an_engine_that_does_not_load_raises_instead_of_planning_invalid_plans(cpu_toolset):
    planner = make_planner(PlannerSettings(strategy="workflow", engine="vllm", model="m", max_attempts=1,
                                           device="cuda"),
                           cpu_toolset)
    with pytest.raises(ImportError, match=r"infra/vllm/serve.sh"):  # a fault: the task is retried
        planner.plan_batch([PlanRequest("x", np.zeros((32, 32, 3), np.uint8), "flip it")])


def test_a_model_family_without_a_chat_adapter_is_refused_before_its_weights_load(tmp_path):
    from transformers import Idefics3Config

    Idefics3Config().save_pretrained(tmp_path)  # a config only: the refusal must come before any weight is read
    engine = TransformersEngine(PlannerSettings(strategy="workflow", engine="transformers", model=str(tmp_path)))
    with pytest.raises(ValueError, match=r"no chat adapter for model type 'idefics3' "
                                         r"\(known: qwen2_vl, qwen2_5_vl, llava\)"):
        engine.generate([[Message("user", "hi")]], None, [0])


def test_a_second_model_family_answers_with_images_through_its_chat_adapter(tmp_path):
    """LLaVA expands ``<image>`` by vision patches, not Qwen's merged grid: the model checks the count itself."""
    from tiny_vlm import save_tiny_llava

    engine = TransformersEngine(PlannerSettings(strategy="workflow", engine="transformers", max_new_tokens=16,
                                                model=str(save_tiny_llava(tmp_path / "llava")), image_size=64))
    rng = np.random.default_rng(0)
    chats = [[Message("user", f"caption {i}", shown_image(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8), 64))]
             for i in range(2)]
    answers = engine.generate(chats, OutputFormat(regex=r"(cat|dog) [a-z]{1,6}"), [0, 1])
    assert all(re.fullmatch(r"(cat|dog) [a-z]{1,6}", answer) for answer in answers)
