"""Time and memory per optimisation step of the three training stages, image-conditioned, on the tiny test VLM.

Each stage runs in its own process (so peak memory is that stage's): the tiny random-weight Qwen2-VL of the tests,
LoRA r=4, two records whose prompts carry a 64 px photo (16 image tokens after the image processor's 56 px floor)
and the full Builder system prompt (byte-level tokenizer: about 5,000 tokens). Stage 3 judges with the same tiny VLM.
Printed: wall and process-CPU seconds per step (after a warm-up step; on a shared machine the CPU seconds are the
steadier figure), peak resident memory of the process (CPU) or peak allocated accelerator memory, and the prompt
length in tokens.

    python benchmarks/train_steps.py                 # CPU
    python benchmarks/train_steps.py --device cuda   # an accelerator
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))


def _prepare(folder: Path) -> None:
    from PIL import Image
    from skimage import data
    from tiny_vlm import save_tiny_vlm

    Image.fromarray(data.astronaut()).resize((64, 64)).save(folder / "photo.png")
    records = [{"instruction": "make it black and white", "image": "photo.png", "target": {"tools": ["GRAYSCALE"]}},
               {"instruction": "flip it horizontally", "image": "photo.png", "target": {"tools": ["FLIP"]}}]
    (folder / "data.jsonl").write_text("\n".join(json.dumps(r) for r in records) + "\n")
    save_tiny_vlm(folder / "vlm")


def _stage(folder: Path, stage: int, steps: int, device: str) -> dict[str, float]:
    import torch

    from legoedit_core.rl.train import TrainSettings, make_trainer
    from legoedit_core.settings.judge import JudgeSettings

    settings = TrainSettings(stage=stage, model=str(folder / "vlm"), data=str(folder / "data.jsonl"),
                             output_dir=str(folder / f"stage{stage}"), max_steps=steps, batch_size=2,
                             num_generations=2, max_completion_length=32, lora_r=4, max_length=12288, device=device)
    judge = JudgeSettings(engine="transformers", model=str(folder / "vlm"), image_size=64, max_reasoning_chars=8,
                          device=device) if stage == 3 else None
    trainer = make_trainer(settings, judge=judge)
    warm = make_trainer(settings.model_copy(update={"max_steps": 1}), judge=judge)
    warm.train()  # first-step costs (kernels, the judge's model load) stay out of the per-step figure
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    start, cpu = time.perf_counter(), time.process_time()
    trainer.train()
    seconds, cpu_seconds = (time.perf_counter() - start) / steps, (time.process_time() - cpu) / steps
    batch = next(iter(trainer.get_train_dataloader())) if stage == 1 else None
    tokens = int(batch["input_ids"].shape[1]) if batch is not None else None
    peak = torch.cuda.max_memory_allocated() / 2**20 if device == "cuda" else \
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"stage": stage, "seconds_per_step": seconds, "cpu_seconds_per_step": cpu_seconds, "peak_mib": peak,
            "tokens": tokens}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--stage", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.stage:
        print(json.dumps(_stage(Path(args.folder), args.stage, args.steps, args.device)))
        return
    with tempfile.TemporaryDirectory() as folder:
        _prepare(Path(folder))
        for stage in (1, 2, 3):
            out = subprocess.run([sys.executable, __file__, "--stage", str(stage), "--folder", folder, "--steps",
                                  str(args.steps), "--device", args.device], capture_output=True, text=True,
                                 check=True).stdout
            result = json.loads(out.strip().splitlines()[-1])
            memory = "peak GPU memory" if args.device == "cuda" else "peak RSS"
            tokens = f", {result['tokens']} tokens per example" if result["tokens"] else ""
            print(f"stage {stage}: {result['seconds_per_step']:.2f} s/step wall, "
                  f"{result['cpu_seconds_per_step']:.2f} CPU s/step, {memory} {result['peak_mib']:.0f} MiB{tokens}")


if __name__ == "__main__":
    main()
