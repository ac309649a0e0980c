"""Third-party bricks arrive through the ``legoedit.bricks`` entry-point group and behave like built-ins."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from legoedit_core.bricks.catalog import default_registry
from legoedit_core.bricks.render import catalog_text
from legoedit_core.bricks.toolset import Toolset
from legoedit_core.executor import Executor
from legoedit_core.workflow import parse_workflow

PLUGIN = '''
"""A third-party brick: sepia toning."""
import numpy as np


from legoedit_core.bricks.spec import BrickSpec, PerItemBackend, image, number

SEPIA = BrickSpec(
    name="SEPIA", family="function", description="Old-photo sepia toning.",
    inputs=(image(), number("amount", "0 keeps the photo, 1 is full sepia", default=1.0, minimum=0, maximum=1)),
    outputs=(image("image", "the toned image"),),
)


class Sepia(PerItemBackend):
    brick, name = "SEPIA", "numpy"

    def run_one(self, inputs, seed):
        rgb = inputs["image"].astype(np.float32)
        matrix = np.array([[0.393, 0.769, 0.189], [0.349, 0.686, 0.168], [0.272, 0.534, 0.131]], np.float32)
        toned = rgb @ matrix.T
        mixed = rgb + inputs["amount"] * (toned - rgb)
        return {"image": np.clip(mixed, 0, 255).astype(np.uint8)}


def register(registry):
    registry.add_brick(SEPIA)
    registry.add_backend(Sepia)


def broken(registry):
    raise RuntimeError("this plugin is broken")
'''


@pytest.fixture
def installed_plugin(tmp_path, monkeypatch) -> Path:
    """Install a distribution with two entry points (one working, one broken) on sys.path, as pip would."""
    (tmp_path / "legoedit_sepia.py").write_text(PLUGIN)
    dist_info = tmp_path / "legoedit_sepia-0.1.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: legoedit-sepia\nVersion: 0.1\n")
    (dist_info / "entry_points.txt").write_text(textwrap.dedent("""
        [legoedit.bricks]
        sepia = legoedit_sepia:register
        broken = legoedit_sepia:broken
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    return tmp_path


def test_plugin_brick_is_registered_offered_and_runs(installed_plugin, coffee, caplog):
    registry = default_registry()
    assert "SEPIA" in registry
    assert "broken failed to load" in caplog.text
    toolset = Toolset(registry=registry)
    assert "SEPIA(image: Image, amount: Number = 1.0 in [0, 1]) -> image: Image" in catalog_text(
        toolset.available_specs())
    workflow = parse_workflow({"nodes": [{"id": "old", "tool": "SEPIA", "inputs": {"image": "@input.image"}}],
                               "output": "@old.image"})
    result = Executor(toolset).run(workflow, coffee)
    assert result.status == "ok"
    red, green, blue = (result.image[..., c].astype(int).mean() for c in range(3))
    assert red > green > blue  # sepia is warm


def test_cli_lists_the_plugin_brick(installed_plugin):
    env = {**os.environ, "PYTHONPATH": f"{installed_plugin}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    listing = subprocess.run([sys.executable, "-m", "legoedit.cli", "bricks"], capture_output=True, text=True,
                             env=env, check=True).stdout
    assert any(line.startswith("SEPIA") and "numpy [cpu]" in line for line in listing.splitlines())


def test_without_plugins_the_registry_holds_only_built_ins(installed_plugin):
    assert "SEPIA" not in default_registry(plugins=False)
