"""``legoedit demo`` end to end, and its HTML report opened in headless Chromium (Debian's ``chromium``).

The test set-up installs Chromium: ``scripts/install-test-deps.sh``.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image
from prefect.testing.utilities import prefect_test_harness

from legoedit import cli
from legoedit_core.data.images import encode_png
from legoedit_core.data.output import RunOutput
from legoedit_core.data.report import render_report
from legoedit_core.data.rows import empty_row, image_struct, rows_to_table

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def chromium(page: Path, profile: Path, *arguments: str) -> str:
    """Run headless Chromium on a local page with a fresh profile; return its stdout."""
    binary = shutil.which("chromium")
    if binary is None:
        pytest.fail("chromium is not installed: run scripts/install-test-deps.sh")
    command = [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *arguments, page.as_uri()]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=True).stdout


def loaded_thumbnails(page: Path, profile: Path) -> tuple[int, int, str]:
    """(loaded, total, ids of broken ones) as the report's own script counted them in the browser."""
    dom = chromium(page, profile, "--virtual-time-budget=5000", "--dump-dom")
    body = re.search(r"<body[^>]*>", dom).group(0)
    loaded = re.search(r'data-loaded="(\d+)/(\d+)"', body)
    assert loaded, f"the report's script did not run: {body}"
    broken = re.search(r'data-broken="([^"]*)"', body).group(1)
    return int(loaded.group(1)), int(loaded.group(2)), broken


def test_the_report_script_notices_a_broken_thumbnail(tmp_path):
    picture = encode_png(np.full((40, 60, 3), 200, np.uint8))
    table = rows_to_table([
        empty_row("fine", "ok", instruction="flip <it>", source_image=image_struct(picture),
                  edited_image=image_struct(picture)),
        empty_row("bad", "bad_input", error="corrupt & unreadable", source_image=image_struct(picture)),
    ])
    html = render_report(table)
    assert "flip &lt;it&gt;" in html and "corrupt &amp; unreadable" in html
    page = tmp_path / "report.html"
    broken = 'data-id="bad" src="data:image/jpeg;base64,'
    page.write_text(html.replace(broken, broken + "AAAA"))  # a corrupt thumbnail the browser cannot decode
    assert loaded_thumbnails(page, tmp_path / "profile") == (2, 3, "bad")


def test_demo_writes_parquet_and_a_report_whose_thumbnails_all_load(capsys, tmp_path):
    demo_output = tmp_path / "run"
    with prefect_test_harness(server_startup_timeout=180):
        assert cli.main(["demo", "--output", str(demo_output)]) == 0
    printed = capsys.readouterr().out
    assert f"report:  {demo_output / 'report.html'}" in printed
    catalogue = [json.loads(line) for line in cli.DEMO_CATALOGUE.read_text().splitlines() if line.strip()]
    table = pq.read_table(RunOutput(str(demo_output)).current_files())
    assert sorted(table.column("id").to_pylist()) == sorted(row["id"] for row in catalogue)
    statuses = table.column("status").to_pylist()
    assert statuses.count("ok") >= len(catalogue) // 2, statuses
    with_images = len(catalogue) + statuses.count("ok")  # every source, plus every edited image

    loaded, total, broken = loaded_thumbnails(demo_output / "report.html", tmp_path / "profile")
    assert (loaded, total, broken) == (with_images, with_images, "")
    shot = tmp_path / "report.png"
    chromium(demo_output / "report.html", tmp_path / "profile2", f"--screenshot={shot}", "--window-size=1400,1800")
    pixels = np.asarray(Image.open(shot).convert("RGB"))
    assert pixels.shape[:2] == (1800, 1400) and pixels.std() > 10  # a real page, not a blank one


def test_the_report_shows_which_rows_fell_back_to_a_cpu_backend():
    picture = encode_png(np.full((40, 60, 3), 200, np.uint8))
    node = {"node": "erase", "tool": "INPAINT", "backend": "opencv", "seconds": 0.1, "cache_hit": False,
            "error": None, "wave": 1, "batch_size": 1, "models": [],
            "fallback": "flux-fill -> opencv: needs device 'cuda', but torch sees no CUDA device"}
    table = rows_to_table([
        empty_row("cpu", "ok", source_image=image_struct(picture), edited_image=image_struct(picture), trace=[node]),
        empty_row("gpu", "ok", source_image=image_struct(picture), edited_image=image_struct(picture),
                  trace=[node | {"backend": "flux-fill", "fallback": None}]),
    ])
    html = render_report(table)
    assert "1 row(s) ran a node on a CPU backend instead of the run's pinned GPU backend" in html
    assert html.count("erase: fell back flux-fill -&gt; opencv: needs device &#x27;cuda&#x27;") == 1
