"""Prefect's overhead: the ``edit_catalogue`` flow's wall time over the same work done in a plain loop.

Both sides read the same generated catalogue (cheap CPU bricks, one or two waves), plan each shard with the
rules planner, run the executor's waves, and write and commit one Parquet part per shard (the flow's HTML report,
which the loop has no counterpart for, is off). The flow runs against the temporary local Prefect server that
``legoedit run`` starts (``flows.server.temporary_server``, on a fresh SQLite database in a temporary PREFECT_HOME),
or with ``--api-url`` against a running server (e.g. one backed by Postgres, as in infra/), warmed up by a one-item
run that is not timed. ``--repeat`` times loop and flow that many times in turn on the same server and prints the
min and median ratio of wall times, and of CPU seconds (this process plus the temporary server's, with psutil): on a
shared machine the wall ratio moves with the load, the CPU ratio much less.

    python benchmarks/pipeline_overhead.py [--items 1000] [--shard-size 100] [--width 256] [--concurrent-shards 4]
                                           [--repeat 1] [--api-url http://127.0.0.1:4200/api]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from functools import partial
from typing import Any

from prefect.settings import PREFECT_API_URL, PREFECT_HOME, temporary_settings

from flows.edit_catalogue import edit_catalogue
from flows.server import temporary_server
from legoedit_core.bricks.toolset import Toolset
from legoedit_core.config import Config
from legoedit_core.data.datasets import open_dataset
from legoedit_core.data.output import RunOutput
from legoedit_core.data.synthetic import write_catalogue
from legoedit_core.executor import Executor
from legoedit_core.pipeline.shard import build_rows, prepare_shard
from legoedit_core.planners import make_planner


def plain_loop(manifest: str, output: str, shard_size: int, config: Config) -> None:
    """The baseline: the flow's own pieces, as its tasks call them, in a loop without Prefect (plan the shard, run
    the executor's waves, build and commit its part)."""
    toolset = Toolset(config)
    planner, executor = make_planner(config.planner, toolset), Executor(toolset)
    dataset = open_dataset(manifest)
    run = RunOutput(output)
    for shard in dataset.shards(shard_size):
        prepared = prepare_shard(dataset.read_rows(shard.start, shard.stop), shard, planner,
                                 dataset.reader(config.inputs), content_keys=config.executor.cache_dir is not None,
                                 memory_budget=config.pipeline.shard_memory())
        results = executor.run_many(prepared.edit_items()[0])
        run.commit(run.write_part(shard.index, build_rows(prepared, results, toolset)))


def flow(manifest: str, output: str, shard_size: int, config: Config, concurrent_shards: int) -> None:
    pipeline = config.pipeline.model_copy(update={"shard_size": shard_size, "max_concurrent_shards": concurrent_shards})
    edit_catalogue(manifest, output, config=config.model_copy(update={"pipeline": pipeline}), report=False)


@dataclass
class Timing:
    """Wall seconds, and CPU seconds of this process and of the temporary server (a share of a busy machine's
    cores moves the wall time; the CPU seconds hardly move)."""

    wall: float
    cpu: float
    server_cpu: float | None  # None: not counted (a server of its own, e.g. --api-url)

    def __str__(self) -> str:
        server = "" if self.server_cpu is None else f" + server {self.server_cpu:.2f} s"
        return f"{self.wall:.2f} s (CPU {self.cpu:.2f} s{server})"

    @property
    def cpu_total(self) -> float:
        return self.cpu + (self.server_cpu or 0.0)


def timed(work: Callable[[], None], server: Any) -> Timing:
    def server_cpu() -> float:
        return sum(server.cpu_times()[:2]) if server is not None else 0.0

    wall, cpu, served = time.perf_counter(), time.process_time(), server_cpu()
    work()
    return Timing(time.perf_counter() - wall, time.process_time() - cpu,
                  server_cpu() - served if server is not None else None)


def temporary_server_process() -> Any:
    """The temporary server's process (psutil), to count its CPU seconds; None if psutil is missing."""
    try:
        import psutil
    except ImportError:
        return None
    servers = [child for child in psutil.Process().children() if "uvicorn" in child.cmdline()]
    return servers[0] if servers else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument("--shard-size", type=int, default=100)
    parser.add_argument("--width", type=int, default=256, help="image width (height is 3/4 of it)")
    parser.add_argument("--concurrent-shards", type=int, default=4, help="the flow's shards in flight at once")
    parser.add_argument("--repeat", type=int, default=1, help="loop + flow pairs to time, one after another")
    parser.add_argument("--api-url", help="a running Prefect server's API (default: a temporary SQLite server)")
    args = parser.parse_args()
    config = Config.load()
    ratios = []
    with tempfile.TemporaryDirectory() as root, ExitStack() as server:
        if args.api_url:
            server.enter_context(temporary_settings({PREFECT_API_URL: args.api_url}))
        else:
            server.enter_context(temporary_settings({PREFECT_HOME: f"{root}/prefect"}))
            server.enter_context(temporary_server())
        manifest = write_catalogue(f"{root}/in", args.items, size=(args.width, args.width * 3 // 4))
        warm = time.perf_counter()
        warm_config = config.model_copy(update={"pipeline": config.pipeline.model_copy(update={"shard_size": 1})})
        edit_catalogue(write_catalogue(f"{root}/warm", 1), f"{root}/warm-out", config=warm_config)
        print(f"warm-up run, with server start if any (not timed below): {time.perf_counter() - warm:.1f} s")
        print(f"server: {args.api_url or 'temporary SQLite'}; {args.items} items of {args.width} px, shard size "
              f"{args.shard_size}, {args.concurrent_shards} concurrent shards")
        server_process = None if args.api_url else temporary_server_process()
        for run in range(args.repeat):
            loop = timed(partial(plain_loop, manifest, f"{root}/loop{run}", args.shard_size, config), server_process)
            flowed = timed(partial(flow, manifest, f"{root}/flow{run}", args.shard_size, config,
                                   args.concurrent_shards), server_process)
            rows = RunOutput(f"{root}/flow{run}").read_table().num_rows
            assert rows == args.items, f"the flow wrote {rows} rows for {args.items} items"
            ratios.append((flowed.wall / loop.wall, flowed.cpu_total / loop.cpu_total))
            print(f"run {run + 1}: plain loop {loop}, flow {flowed}, flow / plain loop = {ratios[-1][0]:.3f} "
                  f"(CPU {ratios[-1][1]:.3f})")
    walls, cpus = [wall for wall, _ in ratios], [cpu for _, cpu in ratios]
    print(f"flow / plain loop = {min(walls):.3f} (min), {statistics.median(walls):.3f} (median) of {len(walls)}; "
          f"CPU seconds (this process{'' if server_process is None else ' and the server'}): {min(cpus):.3f} (min), "
          f"{statistics.median(cpus):.3f} (median)")

if __name__ == "__main__":
    main()
