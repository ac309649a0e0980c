"""The one-command GPU check (``scripts/gpu-check.sh``, docs/models.md): what the first minutes on a GPU must show.

Prints, as its last lines, one named figure per line (``gpu-check: <name>=<value> ...``):

- ``fill_cuda_vs_cpu``, ``kontext_cuda_vs_cpu``: a tiny saved FLUX-Fill / Kontext pipeline run through its brick on
  cuda and on cpu (float32, TF32 off, the same CPU-drawn noise): the largest pixel difference, within tolerance;
- ``vlm_cuda_vs_cpu``: the tiny VLM's logits on cuda against cpu (largest difference), and whether the transformers
  engine's greedy answer with an image is the same text;
- ``resident_ratio_cuda``: CUDA memory allocated with every FLUX-Fill brick (four with their LoRA) and every VLM
  role loaded, over one FLUX base + one VLM + the adapters (1.0: one copy of each base);
- ``batch8_speedup``: FLUX-Fill-class pipeline (published widths, random weights, fewer layers) at 512 px, images/s
  batched 8 at a time over one call per image;
- ``admitted_vs_measured``: bytes the model runtime admitted before loading (safetensors headers) over the CUDA
  memory the loads really allocated;
- ``perception_cuda_vs_cpu``: RES (CLIPSeg, Grounding DINO + SAM), SOS (SegFormer) and MASK-SEG (SAM), tiny saved
  models through their bricks on cuda and on cpu: the share of mask pixels that agree (at least 99%);
- ``flow_on_cuda``: the edit flow (a temporary Prefect server) over 4 rows on the gpu profile, FLUX-Fill on cuda;
- ``out_of_memory_path``: FLUX-Fill on cuda under a memory cap (``torch.cuda.set_per_process_memory_fraction``) that
  leaves no room: the device's real out-of-memory error reaches the one owner (``faults.run_fitting_memory``),
  which halves down to one item and raises ``MemoryExhausted`` once; with the cap lifted the same batch runs;
- ``vllm``: ``benchmarks/vllm_check.py`` in the vLLM environment (``infra/vllm``; ``VLLM_PYTHON`` names another):
  a vLLM ``LLM`` on a tiny local model, one batched ``chat`` with a JSON schema and a LoRA request, the answers
  parsed, then evicted (GPU memory back within its margin);
- ``pytest_gpu``: the result of ``pytest -m gpu``.

Without a CUDA device it prints one line, ``gpu-check: skipped: <why>``, and exits 0; with ``--require-gpu`` it
prints ``gpu-check: FAILED: <why>`` and exits 1 (a GPU machine whose environment cannot reach its GPU fails), and
there a missing vLLM environment fails the ``vllm`` check too. Exit 1 when a check failed.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
VLLM_PYTHON = Path(os.environ.get("VLLM_PYTHON", ROOT / "infra" / "vllm" / ".venv" / "bin" / "python"))
MASK_AGREEMENT = 0.99  # thresholded masks: float32 on two devices may flip a boundary pixel
# Perception bricks and their tiny models: (brick, backend, settings key -> tiny_models builder)
PERCEPTION = (("RES", "clipseg", {"model": "build_clipseg"}),
              ("RES", "grounded-sam", {"detector": "build_grounding_dino", "segmenter": "build_sam"}),
              ("SOS", "semantic", {"model": "build_segformer"}), ("MASK-SEG", "sam", {"segmenter": "build_sam"}))

DEVICE = "cuda"
PIXEL_TOLERANCE = 4  # uint8 levels: float32 on two devices, same noise
LOGIT_TOLERANCE = 1e-3
FAST = {"dtype": "float32", "steps": 2, "max_area": 64 * 64, "max_sequence_length": 16, "generator_device": "cpu"}


def no_gpu_reason() -> str | None:
    """Why this machine cannot run the check, or None when it can."""
    try:
        import torch
    except ImportError:
        return "torch is not installed in this environment"
    if not torch.cuda.is_available():
        cuda = torch.version.cuda
        build = "a CPU-only build of torch" if cuda is None else f"torch built for CUDA {cuda}"
        return f"no CUDA device visible ({build}, torch {torch.__version__})"
    return None


def pipeline_parity(root: Path, brick: str, backend_name: str, builder: Callable[[Path], Path]) -> tuple[bool, str]:
    """Largest pixel difference of one brick on a tiny saved pipeline, cuda against cpu."""
    import numpy as np
    from bricks_gpu import items

    from legoedit_core.bricks.catalog import default_registry
    from legoedit_core.runtime import ModelRuntime

    path = builder(root / backend_name)
    backend_class = default_registry().get(brick).backends[backend_name]
    outputs = []
    for device in ("cpu", DEVICE):
        backend = backend_class({backend_name: {**FAST, "device": device, "model": str(path)}})
        backend.runtime = ModelRuntime()
        outputs.append([result["image"].astype(int) for result in backend.run_batch(items(2, 64), [3, 4])])
    difference = max(int(np.abs(a - b).max()) for a, b in zip(*outputs, strict=True))
    return difference <= PIXEL_TOLERANCE, f"max_abs_diff={difference} levels (tolerance {PIXEL_TOLERANCE})"


def vlm_parity(root: Path) -> tuple[bool, str]:
    """The tiny VLM's logits and the engine's greedy answer with an image, cuda against cpu."""
    import numpy as np
    import torch
    from tiny_vlm import save_tiny_vlm
    from transformers import AutoModelForImageTextToText

    from legoedit_core.runtime import ModelRuntime
    from legoedit_core.settings.planner import PlannerSettings
    from legoedit_core.vlm.chat import Message, OutputFormat, shown_image
    from legoedit_core.vlm.engines.hf import TransformersEngine

    path = save_tiny_vlm(root / "vlm")
    ids = torch.arange(3, 40).unsqueeze(0)
    logits = {}
    for device in ("cpu", DEVICE):
        model = AutoModelForImageTextToText.from_pretrained(path, dtype=torch.float32).to(device).eval()
        with torch.inference_mode():
            logits[device] = model(input_ids=ids.to(device)).logits.float().cpu()
    difference = float((logits["cpu"] - logits[DEVICE]).abs().max())
    picture = shown_image(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8), 64)
    chat = [Message("user", "caption", picture)]
    answers = [TransformersEngine(PlannerSettings(engine="transformers", model=str(path), device=device,
                                                  dtype="float32", max_new_tokens=16, image_size=64),
                                  ModelRuntime()).generate([chat], OutputFormat(regex=r"[a-z ]{1,12}"), [0])[0]
               for device in ("cpu", DEVICE)]
    return difference <= LOGIT_TOLERANCE, (f"max_logit_diff={difference:.2e} (tolerance {LOGIT_TOLERANCE:g}) "
                                           f"greedy_text_equal={answers[0] == answers[1]}")


def perception_parity(root: Path) -> tuple[bool, str]:
    """The share of mask pixels that agree between cpu and cuda, per perception backend (tiny saved models)."""
    import numpy as np
    import tiny_models
    from bricks_gpu import items

    from legoedit_core.bricks.catalog import default_registry
    from legoedit_core.runtime import ModelRuntime

    figures, ok = [], True
    for brick, name, builders in PERCEPTION:
        sources = {key: str(getattr(tiny_models, builder)(root / "perception" / builder))
                   for key, builder in builders.items()}
        backend_class = default_registry().get(brick).backends[name]
        masks = []
        for device in ("cpu", DEVICE):
            backend = backend_class({name: {**sources, "device": device, "dtype": "float32"}})
            backend.runtime = ModelRuntime()
            masks.append(np.stack([result["mask"] > 127 for result in backend.run_batch(items(2, 64), [0, 1])]))
        agreement = float((masks[0] == masks[1]).mean())
        ok &= agreement >= MASK_AGREEMENT
        figures.append(f"{brick}/{name}={agreement:.4f}")
    return ok, f"{' '.join(figures)} (share of mask pixels equal, at least {MASK_AGREEMENT})"


def flow_on_cuda(root: Path) -> tuple[bool, str]:
    """The edit flow over 4 rows on the gpu profile, its FLUX-Fill bricks on a tiny pipeline on cuda."""
    import pyarrow.parquet as pq
    import tiny_models
    from prefect.testing.utilities import prefect_test_harness

    from flows.edit_catalogue import edit_catalogue
    from legoedit_core.config import Config
    from legoedit_core.data.output import RunOutput
    from legoedit_core.data.synthetic import write_catalogue

    base = tiny_models.build_flux_fill(root / "flow-fill")
    fast = {**FAST, "model": str(base), "device": DEVICE}
    config = Config.load(overrides=['profile="gpu"', 'bricks.ENV.backend="flux-fill"',
                                    *(f"bricks.ENV.flux-fill.{k}={v!r}" for k, v in fast.items()),
                                    "pipeline.shard_size=2"])
    manifest = write_catalogue(str(root / "flow-in"), 4, ["make it look like a snowy winter day"], size=(64, 48))
    with prefect_test_harness(server_startup_timeout=180):
        summary = edit_catalogue(dataset=manifest, output=str(root / "flow-out"), config=config)
    statuses = pq.read_table(RunOutput(str(root / "flow-out")).current_files()).column("status").to_pylist()
    on_cuda = [model for model in summary["model_loads"] if DEVICE in model]
    return statuses == ["ok"] * 4 and bool(on_cuda), f"statuses={statuses} models_on_cuda={on_cuda}"


def out_of_memory_path(root: Path) -> tuple[bool, str]:
    """FLUX-Fill on cuda under a memory cap that leaves no room: the real CUDA out-of-memory error goes to the one
    owner, which halves down to one item and raises ``MemoryExhausted`` once; with the cap lifted the batch runs."""
    import tiny_models
    import torch
    from bricks_gpu import items

    from legoedit_core.bricks.catalog import default_registry
    from legoedit_core.faults import MemoryExhausted, run_fitting_memory
    from legoedit_core.runtime import ModelRuntime

    backend_class = default_registry().get("FILL").backends["flux-fill"]
    backend = backend_class({"flux-fill": {**FAST, "device": DEVICE,
                                           "model": str(tiny_models.build_flux_fill(root / "oom-fill"))}})
    backend.runtime = ModelRuntime()
    batch = items(4, 64)
    calls: list[int] = []

    def call(chunk: list[dict]) -> list:
        calls.append(len(chunk))
        return backend.run_batch(chunk, list(range(len(chunk))))

    call(batch[:1])  # loads the pipeline outside the cap
    calls.clear()
    torch.cuda.empty_cache()
    total = torch.cuda.get_device_properties(0).total_memory
    torch.cuda.set_per_process_memory_fraction((torch.cuda.memory_allocated() + 2**18) / total)
    try:
        run_fitting_memory(batch, call, "FILL")
        exhausted = "none raised"
    except MemoryExhausted as error:
        exhausted = f"MemoryExhausted from {type(error.__cause__).__name__}"
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0)
        torch.cuda.empty_cache()
    capped = list(calls)
    outputs = run_fitting_memory(batch, call, "FILL")
    backend.runtime.clear()
    ok = capped == [4, 2, 1] and exhausted == "MemoryExhausted from OutOfMemoryError" and len(outputs) == 4
    return ok, f"under the cap: calls={capped} then {exhausted}; cap lifted: {len(outputs)} of 4 items ran"


def vllm_in_its_environment(required: bool) -> tuple[bool, str]:
    """``benchmarks/vllm_check.py`` run by the vLLM environment's Python; its last line is the figure."""
    if not VLLM_PYTHON.exists():
        return not required, (f"skipped: no vLLM environment at {VLLM_PYTHON} (bash infra/vllm/serve.sh --setup "
                              "builds it from its lock; VLLM_PYTHON names another)")
    run = subprocess.run([str(VLLM_PYTHON), str(ROOT / "benchmarks" / "vllm_check.py")], cwd=ROOT,
                         capture_output=True, text=True, timeout=400, env={**os.environ, "PYTHONPATH": str(ROOT)})
    lines = [line for line in run.stdout.strip().splitlines() if line.strip()]
    return run.returncode == 0, lines[-1] if lines else run.stderr.strip()[-300:]


def resident_on_cuda(root: Path) -> str:
    import torch
    from bricks_gpu import resident_figures

    from legoedit_core.runtime import ModelRuntime

    previous = ModelRuntime.set_default(None)
    torch.cuda.synchronize()
    before = torch.cuda.memory_allocated()
    try:
        counted, ideal = resident_figures(root, device=DEVICE)
        torch.cuda.synchronize()
        allocated = torch.cuda.memory_allocated() - before
    finally:
        ModelRuntime.default().clear()
        ModelRuntime.set_default(previous)
    return f"{allocated / ideal:.3f} (allocated {allocated} B, runtime counted {counted} B, one copy each {ideal} B)"


def batch_speedup() -> str:
    from bricks_gpu import PRESETS, random_pipeline, throughput

    from legoedit_core.bricks.models import fill
    from legoedit_core.runtime import ModelRuntime

    preset = {**PRESETS["full"], "side": 512, "sequence": 128}
    preset["transformer"] = {**preset["transformer"], "num_layers": 2, "num_single_layers": 4}
    preset["t5"] = {**preset["t5"], "num_layers": 2}
    runtime = ModelRuntime(pretrained=lambda key: random_pipeline(key, preset))
    options = {"model": "random-weights", "device": DEVICE, "dtype": "bfloat16", "steps": 4, "max_area": 512 * 512,
               "max_sequence_length": 128, "download": True}
    backend_class = next(b for b in fill.BACKENDS if (b.brick, b.name) == ("FILL", "flux-fill"))
    backend = backend_class({"flux-fill": options})
    backend.runtime = runtime
    throughput(backend, 1, 512, per_image=True)  # warm-up: builds the pipeline, picks kernels
    batched = throughput(backend, 8, 512, per_image=False)
    single = throughput(backend, 8, 512, per_image=True)
    runtime.clear()
    return f"{batched / single:.2f}x ({batched:.2f} img/s batched 8, {single:.2f} img/s one call per image, 512 px)"


def admitted_vs_measured(root: Path) -> str:
    """Load tiny saved models through the runtime on cuda: bytes admitted before each load over bytes allocated."""
    import tiny_models
    import torch
    from tiny_vlm import save_tiny_vlm

    from legoedit_core.runtime import ModelKey, ModelRuntime

    keys = [ModelKey("diffusers.FluxFillPipeline", str(tiny_models.build_flux_fill(root / "a-fill")), device=DEVICE),
            ModelKey("diffusers.FluxKontextPipeline", str(tiny_models.build_flux_kontext(root / "a-kontext")),
                     device=DEVICE),
            ModelKey("transformers.AutoModelForImageTextToText", str(save_tiny_vlm(root / "a-vlm")), device=DEVICE)]
    runtime = ModelRuntime()
    admitted = measured = 0
    for key in keys:
        torch.cuda.synchronize()
        before = torch.cuda.memory_allocated()
        runtime.shared(key)
        torch.cuda.synchronize()
        measured += torch.cuda.memory_allocated() - before
        admitted += next(m["admitted_bytes"] for m in runtime.stats()["models"] if m["model"] == str(key)) or 0
    runtime.clear()
    return f"{admitted / measured:.3f} (admitted {admitted} B before loading, allocated {measured} B, 3 models)"


def pytest_gpu() -> tuple[bool, str]:
    run = subprocess.run([sys.executable, "-m", "pytest", "-m", "gpu", "-q", "-p", "no:cacheprovider", "tests"],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    lines = [line for line in run.stdout.strip().splitlines() if line.strip()]
    summary = lines[-1].strip("= ") if lines else run.stderr.strip()[-200:]
    return run.returncode == 0, summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="The GPU path in one command (docs/models.md).")
    parser.add_argument("--require-gpu", action="store_true",
                        help="fail (exit 1) instead of skipping when this environment cannot run on CUDA")
    args = parser.parse_args(argv)
    reason = no_gpu_reason()
    if reason:
        print(f"gpu-check: {'FAILED' if args.require_gpu else 'skipped'}: {reason}")
        return 1 if args.require_gpu else 0
    import torch

    torch.backends.cuda.matmul.allow_tf32 = False  # parity is checked in true float32
    torch.backends.cudnn.allow_tf32 = False
    started = time.perf_counter()
    figures: list[str] = []
    failed = False

    def record(name: str, check: Callable[[], str | tuple[bool, str]]) -> None:
        nonlocal failed
        try:
            result = check()
            ok, text = result if isinstance(result, tuple) else (True, result)
        except Exception as error:  # one check's failure must not hide the others' figures
            ok, text = False, f"ERROR {type(error).__name__}: {str(error)[:300]}"
        failed |= not ok
        line = f"gpu-check: {name}={text}" + ("" if ok else "  FAILED")
        figures.append(line)
        print(line, flush=True)

    import tiny_models

    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        for name, brick, backend, builder in (
                ("fill_cuda_vs_cpu", "FILL", "flux-fill", tiny_models.build_flux_fill),
                ("kontext_cuda_vs_cpu", "EDIT", "flux-kontext", tiny_models.build_flux_kontext)):
            record(name, lambda b=brick, n=backend, f=builder: pipeline_parity(root, b, n, f))
        record("vlm_cuda_vs_cpu", lambda: vlm_parity(root))
        record("resident_ratio_cuda", lambda: resident_on_cuda(root / "resident"))
        record("admitted_vs_measured", lambda: admitted_vs_measured(root))
        record("perception_cuda_vs_cpu", lambda: perception_parity(root))
        record("out_of_memory_path", lambda: out_of_memory_path(root))
        record("flow_on_cuda", lambda: flow_on_cuda(root))
    record("vllm", lambda: vllm_in_its_environment(args.require_gpu))
    record("batch8_speedup", batch_speedup)
    record("pytest_gpu", pytest_gpu)
    print(f"gpu-check: {torch.cuda.get_device_name()} in {time.perf_counter() - started:.0f} s")
    print("\n".join(figures))  # the figures again, together, as the last lines
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
