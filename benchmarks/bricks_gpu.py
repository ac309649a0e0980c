"""GPU benchmark of the model bricks: cross-item batching versus one call per image, and model loads per wave.

Pipelines are FLUX.1-Fill-class and FLUX.1-Kontext-class, built from their published configs with random weights
(speed does not depend on weight values, so no download is needed). For each, images/s at batch 1, 2, 4 and 8
at 1024 px against the same pipeline called once per image; then a 64-item wave of INPAINT + FILL through the
Executor, counting how often the model runtime loaded a model.

``--resident`` instead loads every FLUX-Fill brick (INPAINT, FILL, CBG plain; RCM, STYLE, ENV, POSE each with its
own LoRA, as Lego-Edit ships them) and every VLM role (Builder, ADD-PRED, CAP-PRED, judge) through the model runtime,
runs each once, and prints as its last line ``resident_ratio=R``: the bytes the runtime holds over one FLUX base +
one VLM + the adapters. R near 1 means one copy per base; five copies of the base would give about 5.

    python benchmarks/bricks_gpu.py                    # full size, needs a CUDA GPU with ~60 GB
    python benchmarks/bricks_gpu.py --tiny             # the same code on tiny models, on the CPU (a smoke test)
    python benchmarks/bricks_gpu.py --tiny --resident  # one copy per base, on tiny saved models
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import tiny_models  # noqa: E402 (tiny saved models and in-memory tokenizers: no hub)
from tiny_models import clip_tokenizer, t5_tokenizer  # noqa: E402
from tiny_vlm import save_tiny_vlm  # noqa: E402

from legoedit_core.bricks.models import editor, fill  # noqa: E402
from legoedit_core.bricks.toolset import Toolset  # noqa: E402
from legoedit_core.config import Config  # noqa: E402
from legoedit_core.executor import EditItem, Executor  # noqa: E402
from legoedit_core.judge.vlm import JudgeRequest, VLMJudge  # noqa: E402
from legoedit_core.planners import PlannerSettings, PlanRequest, make_planner  # noqa: E402
from legoedit_core.runtime import ModelKey, ModelRuntime, estimate_bytes, from_pretrained  # noqa: E402
from legoedit_core.settings.judge import JudgeSettings  # noqa: E402
from legoedit_core.workflow import parse_workflow  # noqa: E402

# Published FLUX.1 shapes (transformer, CLIP-L, T5-XXL, 16-channel VAE) and the tiny test shapes.
PRESETS = {
    "full": {
        "transformer": {"patch_size": 1, "out_channels": 64, "num_layers": 19, "num_single_layers": 38,
                        "attention_head_dim": 128, "num_attention_heads": 24, "joint_attention_dim": 4096,
                        "pooled_projection_dim": 768, "guidance_embeds": True, "axes_dims_rope": (16, 56, 56)},
        "latent_channels": 16, "mask_channels": 64,
        "clip": {"hidden_size": 768, "intermediate_size": 3072, "num_attention_heads": 12, "num_hidden_layers": 12,
                 "projection_dim": 768, "vocab_size": 49408},
        "t5": {"vocab_size": 32128, "d_model": 4096, "d_ff": 10240, "d_kv": 64, "num_layers": 24, "num_heads": 64,
               "feed_forward_proj": "gated-gelu"},
        "vae": {"block_out_channels": (128, 256, 512, 512), "layers_per_block": 2, "norm_num_groups": 32},
        "side": 1024, "sequence": 512,
    },
    "tiny": {
        "transformer": {"patch_size": 1, "out_channels": 8, "num_layers": 1, "num_single_layers": 1,
                        "attention_head_dim": 16, "num_attention_heads": 2, "joint_attention_dim": 32,
                        "pooled_projection_dim": 32, "axes_dims_rope": (4, 4, 8)},
        "latent_channels": 2, "mask_channels": 4,
        "clip": {"hidden_size": 32, "intermediate_size": 37, "num_attention_heads": 4, "num_hidden_layers": 1,
                 "projection_dim": 32, "vocab_size": 1000},
        "t5": {"vocab_size": 128, "d_model": 32, "d_ff": 37, "d_kv": 8, "num_layers": 1, "num_heads": 4},
        "vae": {"block_out_channels": (4,), "layers_per_block": 1, "norm_num_groups": 1},
        "side": 64, "sequence": 16,
    },
}
KINDS = {"diffusers.FluxFillPipeline": "fill", "diffusers.FluxKontextPipeline": "kontext"}


def random_pipeline(key: ModelKey, preset: dict):
    """A pipeline of ``key.kind`` with random weights, built straight on the target device and dtype."""
    from diffusers import (
        AutoencoderKL,
        FlowMatchEulerDiscreteScheduler,
        FluxFillPipeline,
        FluxKontextPipeline,
        FluxTransformer2DModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel, T5Config, T5EncoderModel

    packed = preset["latent_channels"] * 4
    in_channels = packed * 2 + preset["mask_channels"] if KINDS[key.kind] == "fill" else packed
    blocks = len(preset["vae"]["block_out_channels"])
    previous = torch.get_default_dtype()
    torch.set_default_dtype(getattr(torch, key.dtype))
    try:
        with torch.device(key.device):
            components = {
                "transformer": FluxTransformer2DModel(in_channels=in_channels, **preset["transformer"]),
                "text_encoder": CLIPTextModel(CLIPTextConfig(max_position_embeddings=77, bos_token_id=512,
                                                             eos_token_id=513, pad_token_id=513, **preset["clip"])),
                "text_encoder_2": T5EncoderModel(T5Config(decoder_start_token_id=0, **preset["t5"])),
                "vae": AutoencoderKL(in_channels=3, out_channels=3, latent_channels=preset["latent_channels"],
                                     down_block_types=("DownEncoderBlock2D",) * blocks,
                                     up_block_types=("UpDecoderBlock2D",) * blocks, use_quant_conv=False,
                                     use_post_quant_conv=False, shift_factor=0.1159, scaling_factor=0.3611,
                                     **preset["vae"]),
            }
    finally:
        torch.set_default_dtype(previous)
    components |= {"tokenizer": clip_tokenizer(), "tokenizer_2": t5_tokenizer(),
                   "scheduler": FlowMatchEulerDiscreteScheduler()}
    if KINDS[key.kind] == "kontext":
        return FluxKontextPipeline(**components, image_encoder=None, feature_extractor=None)
    return FluxFillPipeline(**components)


def items(count: int, side: int) -> list[dict]:
    rng = np.random.default_rng(0)
    mask = np.zeros((side, side), np.uint8)
    mask[side // 4 : side // 2, side // 4 : side // 2] = 255
    return [{"image": rng.integers(0, 256, (side, side, 3), dtype=np.uint8), "mask": mask, "prompt": "a red ball"}
            for _ in range(count)]


def throughput(backend, batch: int, side: int, per_image: bool) -> float:
    """Images per second for ``2 * batch`` images, batched ``batch`` at a time or called once per image."""
    work = items(2 * batch, side)
    seeds = list(range(len(work)))
    backend.options["max_batch"] = batch
    _synchronize()
    started = time.perf_counter()
    if per_image:
        outputs = [backend.run_batch([item], [seed])[0] for item, seed in zip(work, seeds, strict=True)]
    else:
        outputs = backend.run_batch(work, seeds)
    _synchronize()
    failures = [o for o in outputs if not isinstance(o, dict)]
    if failures:
        raise RuntimeError(f"{len(failures)} items failed: {failures[0]}")
    return len(work) / (time.perf_counter() - started)


def _synchronize() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def wave_loads(settings: dict, runtime: ModelRuntime, side: int, count: int = 64) -> tuple[int, float]:
    """Model loads and seconds for a wave of ``count`` items, half INPAINT and half FILL on one Flux-Fill model."""
    toolset = Toolset(Config(profile="gpu", bricks={"INPAINT": settings, "FILL": settings}))
    for brick in ("INPAINT", "FILL"):
        toolset.backend(brick).runtime = runtime
    workflows = {
        tool: parse_workflow({"nodes": [{"id": "e", "tool": tool, "inputs": {
            "image": "@input.image", "mask": "@input.mask", **({"prompt": "a red ball"} if tool == "FILL" else {})}}],
            "output": "@e.image"}) for tool in ("INPAINT", "FILL")}
    wave = [EditItem(str(i), item["image"], workflows["FILL" if i % 2 else "INPAINT"], item["mask"], seed=i)
            for i, item in enumerate(items(count, side))]
    loads_before = runtime.loads()
    started = time.perf_counter()
    results = Executor(toolset).run_many(wave)
    seconds = time.perf_counter() - started
    assert all(r.status == "ok" for r in results), next(r.error for r in results if r.status != "ok")
    return runtime.loads() - loads_before, seconds


FILL_BRICKS = ("INPAINT", "FILL", "CBG")
LORA_BRICKS = ("RCM", "STYLE", "ENV", "POSE")


def resident_figures(root: Path, device: str = "cpu") -> tuple[int, int]:
    """Load every FLUX-Fill brick and every VLM role on tiny saved models on ``device`` (float32); the bytes the
    runtime holds, and the one-copy ideal (one FLUX base + one VLM + the adapters). The runtime stays the process's
    default, its models resident, so that a caller can measure the device's memory too."""
    base = tiny_models.build_flux_fill(root / "flux-fill")
    loras = {brick: tiny_models.build_flux_lora(base, root / f"lora-{brick}", seed=i)
             for i, brick in enumerate(LORA_BRICKS, start=1)}
    vlm = str(save_tiny_vlm(root / "vlm"))
    fast = {"device": device, "dtype": "float32", "steps": 1, "max_area": 64 * 64, "max_sequence_length": 16,
            "model": str(base)}
    bricks = {brick: {"backend": "flux-fill", "flux-fill": fast} for brick in FILL_BRICKS}
    bricks |= {brick: {"backend": "flux-fill", "flux-fill": {**fast, "lora": str(path)}}
               for brick, path in loras.items()}
    vlm_role = {"device": device, "dtype": "float32", "image_size": 64, "max_new_tokens": 16}
    bricks |= {brick: {"model": vlm, **vlm_role} for brick in ("ADD-PRED", "CAP-PRED")}
    runtime = ModelRuntime()
    ModelRuntime.set_default(runtime)
    toolset = Toolset(Config(profile="gpu", bricks=bricks))
    (item,) = items(1, 64)
    for brick in (*FILL_BRICKS, *LORA_BRICKS, "ADD-PRED", "CAP-PRED"):
        inputs = item | {"strength": 1.0} if brick == "INPAINT" else item
        toolset.backend(brick).run_batch([inputs], [0])
    make_planner(PlannerSettings(strategy="workflow", engine="transformers", model=vlm, max_attempts=1, examples=0,
                                 max_think_chars=16, **vlm_role), toolset
                 ).plan_batch([PlanRequest("a", item["image"], "make it black and white")])
    VLMJudge(JudgeSettings(engine="transformers", model=vlm, max_attempts=1, **vlm_role)
             ).judge_batch([JudgeRequest(item["image"], item["image"], "do nothing")])

    one_base = estimate_bytes(from_pretrained(ModelKey("diffusers.FluxFillPipeline", str(base))))
    one_vlm = estimate_bytes(from_pretrained(ModelKey("transformers.AutoModelForImageTextToText", vlm)))
    adapters = sum(file.stat().st_size for path in loras.values() for file in path.glob("*.safetensors"))
    stats = runtime.stats()
    for model in stats["models"]:
        print(f"{model['model']}: loads={model['loads']} calls={model['calls']} bytes={model['bytes']}"
              f" adapters={len(model['adapters'])} switches={model['adapter_switches']}")
    resident = sum(stats["resident_bytes"].values())
    print(f"resident={resident} one FLUX base={one_base} one VLM={one_vlm} adapters={adapters}")
    return resident, one_base + one_vlm + adapters


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiny", action="store_true", help="tiny models on the CPU (smoke test)")
    parser.add_argument("--steps", type=int, default=4, help="denoising steps per image (speed ratios hold per step)")
    parser.add_argument("--batches", default="1,2,4,8")
    parser.add_argument("--resident", action="store_true",
                        help="resident bytes of every FLUX-Fill brick and VLM role over one copy of each base")
    args = parser.parse_args()
    if args.resident:
        if not args.tiny:
            print("--resident builds tiny saved models (no full-size VLM config offline): add --tiny", file=sys.stderr)
            return 2
        with tempfile.TemporaryDirectory() as root:
            resident, ideal = resident_figures(Path(root))
        print(f"resident_ratio={resident / ideal:.3f}")
        return 0
    preset = PRESETS["tiny" if args.tiny else "full"]
    if not args.tiny and not torch.cuda.is_available():
        print("no CUDA device: run with --tiny for the CPU smoke test", file=sys.stderr)
        return 2
    device, dtype = ("cpu", "float32") if args.tiny else ("cuda", "bfloat16")
    side = preset["side"]
    runtime = ModelRuntime(pretrained=lambda key: random_pipeline(key, preset))
    # `download` skips the weight lookup: the loader above builds the models, nothing is fetched.
    options = {"model": "random-weights", "device": device, "dtype": dtype, "steps": args.steps,
               "max_area": side * side, "max_sequence_length": preset["sequence"], "download": True}
    print(f"device={device} dtype={dtype} size={side}px steps={args.steps}")
    flux_fill = next(b for b in fill.BACKENDS if (b.brick, b.name) == ("FILL", "flux-fill"))
    for label, backend_class in (("Flux-Fill", flux_fill), ("Kontext", editor.FluxKontext)):
        backend = backend_class({backend_class.name: options})
        backend.runtime = runtime
        throughput(backend, 1, side, per_image=True)  # warm-up: loads the model, compiles kernels
        for batch in (int(b) for b in args.batches.split(",")):
            batched = throughput(backend, batch, side, per_image=False)
            single = throughput(backend, batch, side, per_image=True)
            print(f"{label:9} batch={batch}: {batched:7.3f} img/s batched, {single:7.3f} img/s one call per image,"
                  f" ratio {batched / single:.2f}x")
        runtime.clear()
    loads, seconds = wave_loads({"flux-fill": options}, runtime, side)
    print(f"64-item wave (INPAINT + FILL on one Flux-Fill): {loads} model load(s), {seconds:.1f} s,"
          f" {64 / seconds:.3f} img/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
