"""Benchmark evaluation on Prefect: run the pipeline over a benchmark, judge every edit, report per category.

Per shard: ``plan-shard`` (the Builder plans the shard in one batch), ``edit-shard`` (the executor's waves),
``judge-shard`` (one batched call of the config's judge plus the model-free metrics), ``write-part``; the shards
are scheduled by ``flows/scheduler.py`` like every flow's. The report is built from the committed rows:
``report.md`` (per-category means, the judge's name, the run's config), ``scores.parquet`` (one record per item),
and the same table and report as Prefect artifacts.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from flows.backends import pin_backends
from flows.failures import fails_cleanly
from flows.runners import make_task_runner
from flows.scheduler import Chain, Step, run_every_shard
from flows.start import checked_start
from legoedit_core.config import Config
from legoedit_core.data.benchmarks import open_benchmark
from legoedit_core.data.output import RunOutput, table_bytes
from legoedit_core.judge.report import category_means, markdown_report, score_records
from legoedit_core.pipeline.shard import versions
from tasks.edit import plan_shard, write_part
from tasks.judge import edit_shard, judge_results, verify_shard
from tasks.runtime import toolset_for

REPORT, SCORES = "report.md", "scores.parquet"


@flow(name="evaluate", task_runner=make_task_runner("threads"))
@fails_cleanly
@checked_start(dataset=None)
def evaluate(benchmark: str, output: str, kind: str = "auto", config: Config | None = None,
             language: str | None = "en", images: str | None = None,
             storage_options: dict[str, Any] | None = None) -> dict[str, Any]:
    """Edit and judge every item of ``benchmark`` (see ``open_benchmark`` for ``kind``, ``language``, ``images``)
    into ``output`` with ``config.judge``, shards as ``config.pipeline`` says; finished shards of an earlier run
    with the same output are skipped."""
    config = pin_backends(config or Config())
    pipeline, judge = config.pipeline, config.judge
    source = open_benchmark(benchmark, kind, language, images, storage_options)
    run_output = RunOutput(output, storage_options)
    run = {"benchmark": benchmark, "kind": kind, "dataset_fingerprint": source.fingerprint(),
           "shard_size": pipeline.shard_size, "rows": len(source), "config": config.model_dump(mode="json"),
           "versions": versions(toolset_for(config))}
    # planner.verify_rounds > 0: the verify rounds run their edits, and the kept ones are the rows' results
    verify = [Step("prepared", verify_shard, lambda run: (run.values["prepared"], config))
              ] if config.planner.verify_rounds > 0 else []
    steps = Chain([
        Step("prepared", plan_shard, lambda run: (source, run.shard, config)),
        *verify,
        Step("results", edit_shard, lambda run: (run.values["prepared"], config)),
        Step("judgements", judge_results, lambda run: (run.values["prepared"], run.values["results"], judge)),
        Step("part", write_part, lambda run: (output, storage_options, run.values["prepared"], run.values["results"],
                                              config, pipeline.write_images, run.values["judgements"], None,
                                              run_output.lease.fence() if run_output.lease else None)),
    ])
    run_every_shard(run_output, run, source, pipeline, steps, "evaluate-progress")

    records = score_records(run_output.read_table())
    summary = category_means(records)
    report = markdown_report(summary, f"legoedit evaluation: {benchmark}", judge.name, run)
    run_output.storage.write_bytes(report.encode(), REPORT)
    run_output.storage.write_bytes(table_bytes(pa.Table.from_pylist(records)), SCORES)
    create_table_artifact(table=summary, key="evaluation-by-category", description=f"judge: {judge.name}")
    create_markdown_artifact(markdown=report, key="evaluation-report", description=benchmark)
    get_run_logger().info("evaluation done: %d items, report at %s", len(records), run_output.storage.uri(REPORT))
    return {"output": output, "report": run_output.storage.uri(REPORT), "scores": run_output.storage.uri(SCORES),
            "summary": summary}
