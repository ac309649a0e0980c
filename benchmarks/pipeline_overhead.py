"""Prefect's overhead: the ``edit_catalogue`` flow's wall time over the same work done in a plain loop.

Both sides read the same generated catalogue (cheap CPU bricks, one or two waves), plan each shard with the
rules planner, run the executor's waves, and write and commit one Parquet part per shard (the flow's HTML report,
which the loop has no counterpart for, is off). The flow runs against a fresh local Prefect server on a temporary
SQLite database (Prefect's test harness), or with ``--api-url`` against a running server (e.g. one backed by
Postgres, as in infra/), warmed up by a one-item run that is not timed.

    python benchmarks/pipeline_overhead.py [--items 1000] [--shard-size 100] [--width 256] [--concurrent-shards 4]
                                           [--api-url http://127.0.0.1:4200/api]
"""

from __future__ import annotations

import argparse
import tempfile
import time

from prefect.settings import PREFECT_API_URL, temporary_settings
from prefect.testing.utilities import prefect_test_harness

from flows.edit_catalogue import edit_catalogue
from legoedit_core.bricks.toolset import Toolset
from legoedit_core.config import Config
from legoedit_core.data.datasets import open_dataset
from legoedit_core.data.output import RunOutput
from legoedit_core.data.synthetic import write_catalogue
from legoedit_core.executor import Executor
from legoedit_core.pipeline.shard import process_shard
from legoedit_core.planners import make_planner


def plain_loop(manifest: str, output: str, shard_size: int, config: Config) -> float:
    started = time.perf_counter()
    toolset = Toolset(config)
    planner, executor = make_planner(config.planner, toolset), Executor(toolset)
    dataset = open_dataset(manifest)
    run = RunOutput(output)
    for shard in dataset.shards(shard_size):
        run.commit(run.write_part(shard.index, process_shard(dataset, shard, planner, executor)))
    return time.perf_counter() - started


def flow(manifest: str, output: str, shard_size: int, config: Config, concurrent_shards: int) -> float:
    started = time.perf_counter()
    edit_catalogue(manifest, output, config=config, shard_size=shard_size, report=False,
                   max_concurrent_shards=concurrent_shards)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument("--shard-size", type=int, default=100)
    parser.add_argument("--width", type=int, default=256, help="image width (height is 3/4 of it)")
    parser.add_argument("--concurrent-shards", type=int, default=4, help="the flow's shards in flight at once")
    parser.add_argument("--api-url", help="a running Prefect server's API (default: a temporary SQLite server)")
    args = parser.parse_args()
    config = Config.load()
    server = (temporary_settings({PREFECT_API_URL: args.api_url}) if args.api_url
              else prefect_test_harness(server_startup_timeout=60))
    with tempfile.TemporaryDirectory() as root, server:
        manifest = write_catalogue(f"{root}/in", args.items, size=(args.width, args.width * 3 // 4))
        warm = time.perf_counter()
        edit_catalogue(write_catalogue(f"{root}/warm", 1), f"{root}/warm-out", config=config, shard_size=1)
        print(f"warm-up run, with server start if any (not timed below): {time.perf_counter() - warm:.1f} s")
        loop_seconds = plain_loop(manifest, f"{root}/loop", args.shard_size, config)
        flow_seconds = flow(manifest, f"{root}/flow", args.shard_size, config, args.concurrent_shards)
        rows = RunOutput(f"{root}/flow").read_table().num_rows
    assert rows == args.items, f"the flow wrote {rows} rows for {args.items} items"
    print(f"server: {args.api_url or 'temporary SQLite'}")
    print(f"{args.items} items of {args.width} px, shard size {args.shard_size}, {args.concurrent_shards} concurrent "
          f"shards: plain loop {loop_seconds:.2f} s, flow {flow_seconds:.2f} s")
    print(f"flow / plain loop = {flow_seconds / loop_seconds:.3f}")


if __name__ == "__main__":
    main()
