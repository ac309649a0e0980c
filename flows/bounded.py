"""A bounded number of shards in flight: each shard's task chain is submitted only when a slot frees up.

Unbounded submission would plan every shard at once and hold every shard's images in memory; on a GPU box it would
also queue every shard's model calls at once. ``edit_catalogue`` has its own scheduler (it fans out by brick);
``evaluate`` and ``rollouts`` chain whole-shard tasks, which this runs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from prefect import get_run_logger
from prefect.futures import PrefectFuture, as_completed

from flows.failures import ShardFailure, first_failure, log_failure
from legoedit_core.data.datasets import Shard
from legoedit_core.data.output import RunOutput

# A shard's submitted tasks in order, each with its run name; the last one's result is the part to commit.
Chain = list[tuple[str, PrefectFuture]]


def commit_bounded(shards: Iterable[Shard], submit: Callable[[Shard], Chain], output: RunOutput,
                   limit: int) -> list[ShardFailure]:
    """Submit ``submit(shard)`` for each shard with at most ``limit`` in flight, commit each part as it finishes;
    a shard whose chain failed is logged (its first failed task and the cause) and left for a rerun."""
    logger, failures = get_run_logger(), []
    waiting, in_flight = list(shards), {}
    while waiting or in_flight:
        while waiting and len(in_flight) < max(1, limit):
            shard = waiting.pop(0)
            chain = submit(shard)
            in_flight[chain[-1][1]] = (shard, chain)
        done = next(iter(as_completed(list(in_flight))))
        shard, chain = in_flight.pop(done)
        failure = first_failure(shard, chain)
        if failure is not None:
            failures.append(failure)
            log_failure(failure)
            continue
        info = done.result()
        output.commit(info)
        logger.info("shard %d committed: %s", info.shard, info.counts)
    return failures
