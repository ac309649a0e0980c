"""The core's layer contract (pyproject's [tool.importlinter]) holds, and breaks on a new upward import."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("legoedit", "legoedit_core", "tasks", "flows")


def lint_imports(tree: Path) -> subprocess.CompletedProcess:
    lint = Path(sys.executable).with_name("lint-imports")
    return subprocess.run([str(lint), "--no-cache"], cwd=tree, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(tree)})


def copy_tree(target: Path) -> Path:
    shutil.copy(ROOT / "pyproject.toml", target)
    for package in PACKAGES:
        shutil.copytree(ROOT / package, target / package, ignore=shutil.ignore_patterns("__pycache__"))
    return target


def test_the_layers_hold_and_an_upward_import_breaks_them(tmp_path):
    tree = copy_tree(tmp_path)
    kept = lint_imports(tree)
    assert kept.returncode == 0, kept.stdout

    types = tree / "legoedit_core" / "types.py"
    types.write_text(types.read_text() + "\nfrom legoedit_core.executor import Executor  # noqa\n")
    broken = lint_imports(tree)
    assert broken.returncode != 0
    assert "Core layers: each imports only from the layers below it BROKEN" in broken.stdout
    assert "legoedit_core.types -> legoedit_core.executor" in broken.stdout
