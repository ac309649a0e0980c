"""``bash scripts/gpu-check.sh`` on a machine without a GPU says that it skipped and why, and exits 0; its
``pytest -m gpu`` tests are collected here and skipped."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_gpu_check_skips_cleanly_without_a_gpu():
    run = subprocess.run(["bash", str(ROOT / "scripts" / "gpu-check.sh")], capture_output=True, text=True,
                         timeout=120, env={"PATH": "/usr/bin:/bin", "PYTHON": sys.executable})
    assert run.returncode == 0, run.stderr[-2000:]
    (line,) = run.stdout.strip().splitlines()
    assert line.startswith("gpu-check: skipped: no CUDA device visible") and "torch" in line


def test_the_gpu_tier_is_collected_and_skipped_here():
    run = subprocess.run([sys.executable, "-m", "pytest", "-m", "gpu", "-q", "-p", "no:cacheprovider",
                          str(ROOT / "tests" / "test_gpu.py")], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert run.returncode == 0, run.stdout[-2000:]
    assert run.stdout.strip().splitlines()[-1].strip("= ").startswith("5 skipped")
    assert "needs a CUDA device" in run.stdout
