"""``bash scripts/gpu-check.sh`` on a machine without a GPU says that it skipped and why, and exits 0; with
``--require-gpu`` it fails. Its ``pytest -m gpu`` tests are collected here and skipped; its checks' code paths run
here with the CPU standing in for cuda where they can."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def gpu_check(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(ROOT / "scripts" / "gpu-check.sh"), *args], capture_output=True, text=True,
                          timeout=120, env={"PATH": "/usr/bin:/bin", "PYTHON": sys.executable})


def test_gpu_check_skips_cleanly_without_a_gpu():
    run = gpu_check()
    assert run.returncode == 0, run.stderr[-2000:]
    (line,) = run.stdout.strip().splitlines()
    assert line.startswith("gpu-check: skipped: no CUDA device visible") and "torch" in line


def test_gpu_check_requiring_a_gpu_fails_without_one():
    run = gpu_check("--require-gpu")
    assert run.returncode == 1, run.stderr[-2000:]
    (line,) = run.stdout.strip().splitlines()
    assert line.startswith("gpu-check: FAILED: no CUDA device visible") and "torch" in line


def test_the_vllm_step_without_its_environment_skips_or_fails_as_asked(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    import gpu_check

    monkeypatch.setattr(gpu_check, "VLLM_PYTHON", tmp_path / "no-vllm" / "bin" / "python")
    ok, text = gpu_check.vllm_in_its_environment(required=False)
    assert ok and text.startswith("skipped: no vLLM environment") and "infra/vllm/serve.sh --setup" in text
    assert gpu_check.vllm_in_its_environment(required=True)[0] is False


def test_the_gpu_tier_is_collected_and_skipped_here():
    run = subprocess.run([sys.executable, "-m", "pytest", "-m", "gpu", "-q", "-p", "no:cacheprovider",
                          str(ROOT / "tests" / "test_gpu.py")], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert run.returncode == 0, run.stdout[-2000:]
    assert run.stdout.strip().splitlines()[-1].strip("= ").startswith("5 skipped")
    assert "needs a CUDA device" in run.stdout


def test_the_parity_checks_run_here_cpu_against_cpu(tmp_path, monkeypatch):
    """Only their code paths (no GPU here): the FLUX-Fill and VLM parity checks, their device swapped for the CPU,
    build their tiny models, run them through the bricks and the engine, and find no difference."""
    import tiny_models

    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    import gpu_check

    monkeypatch.setattr(gpu_check, "DEVICE", "cpu")
    ok, text = gpu_check.pipeline_parity(tmp_path, "FILL", "flux-fill", tiny_models.build_flux_fill)
    assert ok and text.startswith("max_abs_diff=0 levels")
    ok, text = gpu_check.vlm_parity(tmp_path)
    assert ok and "greedy_text_equal=True" in text
    ok, text = gpu_check.perception_parity(tmp_path)
    assert ok and text.count("=1.0000") == len(gpu_check.PERCEPTION), text
