"""The fixed costs a user pays whatever the catalogue's size: the temporary Prefect server's start, ``legoedit run``
of a one-row catalogue end to end (a fresh process: imports, preflight, server, flow, report), and a second
``bash scripts/demo.sh`` (setup up to date, every row of the demo already edited: a new version with nothing to do).

Each command runs in a fresh process with a fresh PREFECT_HOME (a new SQLite database, as on a fresh clone) and
``PYTHONPATH`` at this checkout. ``demo.sh`` runs from a scratch copy of ``scripts/`` and ``pyproject.toml`` beside
a ``.venv`` of links to this one's interpreter and commands, so its setup stamp is written there and the shared
environment is never reinstalled; its first run, untimed, installs nothing either (the stamp is written first).
The ratios compare each cost with the server's start, measured in the same run.

    python benchmarks/fixed_costs.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _environment(home: Path) -> dict[str, str]:
    environment = {key: value for key, value in os.environ.items() if not key.startswith("PREFECT_")}
    return environment | {"PREFECT_HOME": str(home), "PYTHONPATH": str(REPO)}


def _timed(command: list[str], environment: dict[str, str], cwd: Path) -> float:
    start = time.perf_counter()
    done = subprocess.run(command, env=environment, cwd=cwd, capture_output=True, text=True, timeout=900)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    return seconds


def server_start(scratch: Path) -> float:
    """Seconds from asking for a temporary server to its answering /health (in a fresh process, imports excluded)."""
    probe = ("import time; from flows.server import temporary_server\n"
             "start = time.perf_counter()\n"
             "with temporary_server(): print(time.perf_counter() - start)\n")
    done = subprocess.run([sys.executable, "-c", probe], env=_environment(scratch / f"home-{time.time_ns()}"),
                          cwd=scratch, capture_output=True, text=True, timeout=300, check=True)
    return float(done.stdout.strip().splitlines()[-1])


def one_row_run(scratch: Path) -> float:
    from legoedit_core.data.synthetic import write_catalogue

    catalogue = write_catalogue(str(scratch / f"in-{time.time_ns()}"), 1, ["make it black and white"])
    return _timed([sys.executable, "-m", "legoedit.cli", "run", catalogue, str(scratch / f"out-{time.time_ns()}")],
                  _environment(scratch / f"home-{time.time_ns()}"), scratch)


def demo_checkout(scratch: Path) -> Path:
    """A scratch copy of what ``scripts/demo.sh`` runs from, with its setup stamp already up to date."""
    root = scratch / "checkout"
    shutil.copytree(REPO / "scripts", root / "scripts")
    shutil.copy(REPO / "pyproject.toml", root / "pyproject.toml")
    bin_folder = root / ".venv" / "bin"
    bin_folder.mkdir(parents=True)
    for name in ("python", "legoedit"):
        (bin_folder / name).symlink_to(Path(sys.executable).with_name(name))
    digest = hashlib.sha256((root / "pyproject.toml").read_bytes()).hexdigest()
    (root / ".venv" / ".legoedit-setup").write_text(f"{digest} extras=\n")
    return root


def demo_rerun(root: Path, home: Path) -> float:
    return _timed(["bash", "scripts/demo.sh"], _environment(home), root)


def _summary(name: str, seconds: list[float], baseline: float) -> str:
    low, median = min(seconds), statistics.median(seconds)
    return f"{name:<34} min {low:6.2f} s  median {median:6.2f} s  x{median / baseline:5.2f} of the server's start"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="legoedit-fixed-costs-") as folder:
        scratch = Path(folder)
        root = demo_checkout(scratch)
        demo_home = scratch / "demo-home"
        demo_rerun(root, demo_home)  # the first demo: edits every row (not timed)
        costs: dict[str, Callable[[], float]] = {
            "temporary server start": lambda: server_start(scratch),
            "legoedit run, 1 row, end to end": lambda: one_row_run(scratch),
            "bash scripts/demo.sh, again": lambda: demo_rerun(root, demo_home),
        }
        measured: dict[str, list[float]] = {name: [] for name in costs}
        for _ in range(args.repeat):  # in turn, so that the machine's load falls on each alike
            for name, cost in costs.items():
                measured[name].append(cost())
    baseline = statistics.median(measured["temporary server start"])
    print(f"fixed costs ({args.repeat} run(s) each, 2 CPU cores shared):")
    for name, seconds in measured.items():
        print(_summary(name, seconds, baseline))


if __name__ == "__main__":
    main()
