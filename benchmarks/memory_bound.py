"""Peak memory of hostile-sized work under an address-space limit (``ulimit -v``): it must stay bounded.

A child process, limited to ``--limit-kb`` of address space (RLIMIT_AS, what ``ulimit -v`` sets), runs:

1. the ``edit_catalogue`` flow (Prefect's test harness) over ``--rows`` rows that all name one 8192x8192 PNG
   (about 250 KB on disk, 201 MB decoded), plus one 4x8192 image asked to be "resized to 8192 pixels wide";
2. a 63-output workflow that fans one 128x96 image out to RESIZE 4096x4096 outputs, through the executor.

It prints the flow's row counts, the fan-out's status and the peak RSS (``ru_maxrss``); the parent prints
``peak RSS <MiB> MiB (bound <MiB> MiB)``. The bound is what the memory budget admits: each shard in flight holds at
most its share (``pipeline.memory_budget_bytes / pipeline.max_concurrent_shards``; a shard whose images do not fit
is edited a slice at a time), so the shards in flight hold at most ``min(shards, max_concurrent_shards)`` shares;
plus a fixed allowance for the interpreter, its libraries and Prefect (``BASELINE_MIB``).

Every setting is the pipeline's default unless given:

    python benchmarks/memory_bound.py [--rows 48] [--shard-size N] [--concurrent-shards N] [--budget-mib N]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BASELINE_MIB = 1536  # the interpreter, numpy / Pillow / OpenCV / onnxruntime, Prefect's client, threads


def big_png() -> bytes:
    """An 8192x8192 PNG that compresses well (stripes), like a scanned page or a flat product shot."""
    import numpy as np

    from legoedit_core.data.images import encode_png

    image = np.full((8192, 8192, 3), 240, np.uint8)
    image[::64] = 30
    image[:, ::97, 1] = 90
    return encode_png(image)


def fan_out_workflow(outputs: int = 63) -> dict:
    nodes = [{"id": f"r{i}", "tool": "RESIZE", "inputs": {"image": "@input.image", "width": 4096, "height": 4096}}
             for i in range(outputs)]
    return {"instruction": "fan out", "nodes": nodes, "output": [f"@r{i}.image" for i in range(outputs)]}


def settings(shard_size: int | None, concurrent_shards: int | None, budget_mib: int | None) -> list[str]:
    """Config overrides for the settings given (the others keep the pipeline's defaults)."""
    given = {"shard_size": shard_size, "max_concurrent_shards": concurrent_shards,
             "memory_budget_bytes": budget_mib * 2**20 if budget_mib else None}
    return [f"pipeline.{name}={value}" for name, value in given.items() if value is not None]


def bound_mib(rows: int, overrides: list[str]) -> float:
    """Peak RSS the budget admits for ``rows`` rows (plus the tall one) under ``overrides``."""
    from legoedit_core.config import Config

    pipeline = Config.load(overrides=overrides).pipeline
    shards = -(-(rows + 1) // pipeline.shard_size)
    return min(shards, pipeline.max_concurrent_shards) * pipeline.shard_memory() / 2**20 + BASELINE_MIB


def child(rows: int, overrides: list[str]) -> None:
    import numpy as np
    from prefect.testing.utilities import prefect_test_harness

    from flows.edit_catalogue import edit_catalogue
    from legoedit_core.bricks.toolset import Toolset
    from legoedit_core.config import Config
    from legoedit_core.data.images import encode_png
    from legoedit_core.data.output import RunOutput
    from legoedit_core.data.synthetic import synthetic_image
    from legoedit_core.executor import Executor
    from legoedit_core.workflow import parse_workflow

    config = Config.load(overrides=overrides)
    with tempfile.TemporaryDirectory() as root:
        folder = Path(root, "in")
        folder.mkdir()
        (folder / "big.png").write_bytes(big_png())
        (folder / "tall.png").write_bytes(encode_png(np.full((8192, 4, 3), 128, np.uint8)))
        lines = [{"id": f"big-{i:03d}", "image": "big.png", "instruction": "make it black and white"}
                 for i in range(rows)]
        lines.append({"id": "tall", "image": "tall.png", "instruction": "resize it to 8192 pixels wide"})
        (folder / "catalogue.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
        started = time.perf_counter()
        with prefect_test_harness(server_startup_timeout=180):
            summary = edit_catalogue(str(folder / "catalogue.jsonl"), f"{root}/out", config=config, report=False)
        rows_out = RunOutput(f"{root}/out").read_table().select(["id", "status", "error"]).to_pylist()
        seconds = time.perf_counter() - started
    toolset = Toolset(config)
    fan = Executor(toolset).run(parse_workflow(fan_out_workflow()), synthetic_image(0, 128, 96))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("RESULT " + json.dumps({"counts": summary["counts"], "rows": {r["id"]: [r["status"], r["error"]]
                                                                        for r in rows_out},
                                  "fan_out": [fan.status, fan.error], "peak_mib": peak, "seconds": seconds}))


def run_limited(rows: int, overrides: list[str], limit_kb: int) -> dict:
    """Run ``child`` under an address-space limit; its RESULT as a dict."""
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit_kb * 1024, limit_kb * 1024))

    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    done = subprocess.run([sys.executable, __file__, "--child", "--rows", str(rows),
                           *(f"--set={override}" for override in overrides)],
                          env=env, capture_output=True, text=True, preexec_fn=limit, timeout=3600)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"the child failed ({done.returncode}): {done.stderr[-4000:]}")
    return json.loads(lines[-1].removeprefix("RESULT "))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=48)
    parser.add_argument("--shard-size", type=int, help="default: pipeline.shard_size")
    parser.add_argument("--concurrent-shards", type=int, help="default: pipeline.max_concurrent_shards")
    parser.add_argument("--budget-mib", type=int, help="default: pipeline.memory_budget_bytes")
    parser.add_argument("--limit-kb", type=int, default=8_000_000)
    parser.add_argument("--child", action="store_true")
    parser.add_argument("--set", action="append", default=[], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.rows, args.set)
        return
    overrides = settings(args.shard_size, args.concurrent_shards, args.budget_mib)
    result = run_limited(args.rows, overrides, args.limit_kb)
    print(f"{args.rows} rows of 8192x8192, settings {overrides or 'the defaults'}, ulimit -v {args.limit_kb}: "
          f"{result['counts']} in {result['seconds']:.0f} s")
    print(f"tall image resized to 8192 wide: {result['rows']['tall']}")
    print(f"63-output RESIZE 4096 fan-out: {result['fan_out']}")
    print(f"peak RSS {result['peak_mib']:.0f} MiB (bound {bound_mib(args.rows, overrides):.0f} MiB)")


if __name__ == "__main__":
    main()
