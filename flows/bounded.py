"""A bounded number of shards in flight: each shard's task chain is submitted only when a slot frees up.

Unbounded submission would plan every shard at once and hold every shard's images in memory; on a GPU box it would
also queue every shard's model calls at once. ``edit_catalogue`` has its own scheduler (it fans out by brick);
``evaluate`` and ``rollouts`` chain whole-shard tasks, which this runs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from prefect import get_run_logger
from prefect.futures import PrefectFuture, as_completed

from legoedit_core.data.datasets import Shard
from legoedit_core.data.output import RunOutput


def commit_bounded(shards: Iterable[Shard], submit: Callable[[Shard], PrefectFuture], output: RunOutput,
                   limit: int) -> list[str]:
    """Submit ``submit(shard)`` for each shard with at most ``limit`` in flight, commit each part as it finishes;
    a failing shard is logged and left for a rerun. Returns the failures, one line each."""
    logger, failures = get_run_logger(), []
    waiting, in_flight = list(shards), {}
    while waiting or in_flight:
        while waiting and len(in_flight) < max(1, limit):
            shard = waiting.pop(0)
            in_flight[submit(shard)] = shard
        done = next(iter(as_completed(list(in_flight))))
        shard = in_flight.pop(done)
        try:
            info = done.result()
        except Exception as error:
            failures.append(f"shard {shard.index} (rows {shard.start}-{shard.stop - 1}): "
                            f"{type(error).__name__}: {error}")
            logger.error(failures[-1])
            continue
        output.commit(info)
        logger.info("shard %d committed: %s", info.shard, info.counts)
    return failures
