"""``notebooks/explore_run.ipynb`` executed top to bottom by nbclient on a small run's output."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import nbformat
from flow_runs import edited_rows
from nbclient import NotebookClient
from prefect.testing.utilities import prefect_test_harness

from legoedit_core.data.output import RunOutput
from legoedit_core.data.synthetic import write_catalogue

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "explore_run.ipynb"


def small_run(root: Path) -> str:
    """A two-shard run of the edit flow (the notebook only reads the output)."""
    manifest = write_catalogue(str(root / "in"), 6, ["make it black and white", "sing a song", "flip it horizontally"])
    with prefect_test_harness(server_startup_timeout=180):
        edited_rows(manifest, str(root / "out"), shard_size=3)
    return RunOutput(str(root / "out")).uri


def test_notebook_runs_top_to_bottom(tmp_path, monkeypatch):
    monkeypatch.setenv("LEGOEDIT_RUN", small_run(tmp_path))
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(notebook, timeout=120, kernel_name="python3",
                   resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()

    def text(index: int) -> str:
        return "".join(output.get("text", "") + str(output.get("data", {}).get("text/plain", ""))
                       for output in notebook.cells[index].outputs)

    code = [i for i, cell in enumerate(notebook.cells) if cell.cell_type == "code"]
    assert "6 rows in version 1 of 1" in text(code[1]) and "shard size 3" in text(code[1])
    assert "ok              4" in text(code[2]) and "invalid_plan    2" in text(code[2])
    assert any("image/png" in output.get("data", {}) for output in notebook.cells[code[3]].outputs)
    assert "GRAYSCALE" in text(code[4]) and "FLIP" in text(code[4])
    assert "no judge scores in this run" in text(code[5])
    assert "2 rows not ok" in text(code[6]) and "cannot do" in text(code[6])


def test_notebook_runs_under_papermill_with_p_parameters(tmp_path):
    run = small_run(tmp_path)
    executed = tmp_path / "executed.ipynb"
    # LEGOEDIT_RUN names nothing: only the -p value can make the notebook find the run
    env = os.environ | {"LEGOEDIT_RUN": str(tmp_path / "not-a-run"), "PYTHONPATH": str(NOTEBOOK.parents[1])}
    done = subprocess.run([str(Path(sys.executable).with_name("papermill")), str(NOTEBOOK), str(executed),
                           "-p", "OUTPUT", run, "-p", "GRID_ROWS", "2", "-k", "python3", "--cwd", str(NOTEBOOK.parent)],
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    notebook = nbformat.read(executed, as_version=4)
    injected = [cell for cell in notebook.cells if "injected-parameters" in cell.metadata.get("tags", [])]
    assert len(injected) == 1 and f'OUTPUT = "{run}"' in injected[0].source and "GRID_ROWS = 2" in injected[0].source
    outputs = "".join(output.get("text", "") for cell in notebook.cells if cell.cell_type == "code"
                      for output in cell.outputs)
    assert "6 rows in version 1 of 1" in outputs
