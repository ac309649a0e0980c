"""CPU seconds per catalogue row: the bricks of this checkout against a baseline checkout, in the same run.

Every row of ``examples/catalogue.jsonl`` is planned with the rules planner and run by the executor, as the edit
flow does per row, once untimed (models load, caches fill) and then ``--repeat`` times; each checkout runs in a
child process of its own (``PYTHONPATH`` set to it), the two alternating row by row so a busy machine slows both
alike. Prints each row's median CPU seconds for both and their ratio (this checkout over the baseline).

    python benchmarks/cpu_bricks.py --baseline /work/main [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CATALOGUE = ROOT / "examples" / "catalogue.jsonl"

# Runs in the child: time one catalogue row (CPU seconds of the process: the 2-core machine is shared).
CHILD = """
import json, sys, time
import legoedit_core
from legoedit_core.bricks.toolset import Toolset
from legoedit_core.data.images import read_image, read_mask
from legoedit_core.executor import EditItem, Executor
from legoedit_core.planners.base import PlanRequest
from legoedit_core.planners.rules import RulesPlanner

row, folder, repeat = json.loads(sys.argv[1]), sys.argv[2], int(sys.argv[3])
print(json.dumps(legoedit_core.__file__))
toolset = Toolset()
image = read_image(f"{folder}/{row['image']}")
mask = read_mask(f"{folder}/{row['mask']}") if row.get("mask") else None

def once():
    plan = RulesPlanner(toolset).plan(PlanRequest(row["id"], image, row["instruction"], mask is not None))
    if plan.ok:
        Executor(toolset).run_many([EditItem(row["id"], image, plan.workflow, mask, row["seed"])])

once()
times = []
for _ in range(repeat):
    start = time.process_time()
    once()
    times.append(time.process_time() - start)
print(json.dumps(times))
"""


def row_seconds(checkout: Path, row: dict, repeat: int) -> float:
    """The median CPU seconds of one row with the code of ``checkout``."""
    env = {**os.environ, "PYTHONPATH": str(checkout), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", CHILD, json.dumps(row), str(CATALOGUE.parent), str(repeat)],
                          env=env, cwd=checkout, capture_output=True, text=True, check=True)
    where, times = (json.loads(line) for line in done.stdout.strip().splitlines()[-2:])
    if not where.startswith(str(checkout.resolve())):
        raise RuntimeError(f"the child imported {where}, not the code of {checkout}")
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", type=Path, required=True, help="a checkout of the code to compare against")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    rows = [json.loads(line) for line in CATALOGUE.read_text().splitlines() if line.strip()]
    print(f"{'row':32} {'baseline s':>10} {'this s':>8} {'ratio':>6}")
    ratios = []
    for row in rows:
        old, new = row_seconds(args.baseline, row, args.repeat), row_seconds(ROOT, row, args.repeat)
        ratios.append(new / max(old, 1e-3))
        print(f"{row['id']:32} {old:10.3f} {new:8.3f} {ratios[-1]:6.2f}")
    print(f"largest ratio {max(ratios):.2f}, median {statistics.median(ratios):.2f}")


if __name__ == "__main__":
    main()
