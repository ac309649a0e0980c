"""Peak memory of the ``edit_catalogue`` flow at two catalogue sizes: it must not grow with the catalogue.

Each size runs in a fresh process (peak RSS is per process: ``ru_maxrss``) against a temporary Prefect server
(Prefect's test harness), on a generated catalogue of cheap CPU edits, with the HTML report and the gallery on (they
read the parts back). The parent prints both peaks and their ratio; bounded memory means a ratio near 1.

    python benchmarks/pipeline_memory.py [--small 1000] [--large 10000] [--shard-size 64] [--width 256]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def child(items: int, shard_size: int, width: int, concurrent_shards: int) -> None:
    """Run one catalogue through the flow; print its peak RSS in MiB and the seconds it took."""
    from prefect.testing.utilities import prefect_test_harness

    from flows.edit_catalogue import edit_catalogue
    from legoedit_core.config import Config
    from legoedit_core.data.synthetic import write_catalogue

    with tempfile.TemporaryDirectory() as root, prefect_test_harness(server_startup_timeout=120):
        manifest = write_catalogue(f"{root}/in", items, size=(width, width * 3 // 4))
        started = time.perf_counter()
        config = Config.load(overrides=[f"pipeline.shard_size={shard_size}",
                                        f"pipeline.max_concurrent_shards={concurrent_shards}"])
        summary = edit_catalogue(manifest, f"{root}/out", config=config)
        seconds = time.perf_counter() - started
    assert sum(summary["counts"].values()) == items, summary["counts"]
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux
    print(f"RESULT {items} {peak_mib:.0f} {seconds:.1f}")


def measure(items: int, args: argparse.Namespace) -> tuple[float, float]:
    command = [sys.executable, __file__, "--child", str(items), "--shard-size", str(args.shard_size),
               "--width", str(args.width), "--concurrent-shards", str(args.concurrent_shards)]
    root = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
    done = subprocess.run(command, capture_output=True, text=True, cwd=root, env=env)
    line = next((line for line in done.stdout.splitlines() if line.startswith("RESULT")), None)
    if done.returncode != 0 or line is None:
        raise SystemExit(f"the run of {items} rows failed:\n{done.stderr[-3000:]}")
    _, _, peak, seconds = line.split()
    return float(peak), float(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", type=int, default=1000)
    parser.add_argument("--large", type=int, default=10000)
    parser.add_argument("--shard-size", type=int, default=64)
    parser.add_argument("--width", type=int, default=256, help="image width (height is 3/4 of it)")
    parser.add_argument("--concurrent-shards", type=int, default=4)
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.shard_size, args.width, args.concurrent_shards)
        return
    small, small_seconds = measure(args.small, args)
    print(f"{args.small} rows: peak RSS {small:.0f} MiB ({small_seconds:.0f} s)", flush=True)
    large, large_seconds = measure(args.large, args)
    print(f"{args.large} rows: peak RSS {large:.0f} MiB ({large_seconds:.0f} s)")
    print(f"peak RSS {args.large} / {args.small} rows = {large / small:.3f}")


if __name__ == "__main__":
    main()
