"""Benchmark evaluation on Prefect: run the pipeline over a benchmark, judge every edit, report per category.

Per shard: ``plan-shard`` (the Builder plans the shard in one batch), ``edit-shard`` (the executor's waves),
``judge-shard`` (one batched judge call plus the model-free metrics, then the Parquet part). The report is built
from the committed rows: ``report.md`` (per-category means, the judge's name, the run's config), ``scores.parquet``
(one record per item), and the same table and report as Prefect artifacts.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from flows.backends import pin_backends
from flows.bounded import Chain, commit_bounded
from flows.failures import fails_cleanly, shards_failed, submit
from legoedit_core.config import Config
from legoedit_core.data.benchmarks import open_benchmark
from legoedit_core.data.datasets import Shard
from legoedit_core.data.output import RunOutput, table_bytes
from legoedit_core.judge.report import category_means, markdown_report, score_records
from legoedit_core.pipeline.shard import versions
from legoedit_core.settings.judge import JudgeSettings
from tasks.edit import plan_shard, write_part
from tasks.judge import edit_shard, judge_results
from tasks.runtime import toolset_for

REPORT, SCORES = "report.md", "scores.parquet"


@flow(name="evaluate")
@fails_cleanly
def evaluate(benchmark: str, output: str, kind: str = "auto", config: Config | None = None,
             judge: JudgeSettings | None = None, language: str | None = "en", images: str | None = None,
             shard_size: int = 32, storage_options: dict[str, Any] | None = None,
             max_concurrent_shards: int = 4) -> dict[str, Any]:
    """Edit and judge every item of ``benchmark`` (see ``open_benchmark`` for ``kind``, ``language``, ``images``)
    into ``output``, at most ``max_concurrent_shards`` shards in flight; finished shards of an earlier run with
    the same output are skipped."""
    config, judge = pin_backends(config or Config()), judge or JudgeSettings()
    source = open_benchmark(benchmark, kind, language, images, storage_options)
    run_output = RunOutput(output, storage_options)
    run = {"benchmark": benchmark, "kind": kind, "dataset_fingerprint": source.fingerprint(),
           "shard_size": shard_size, "rows": len(source), "config": config.model_dump(mode="json"),
           "judge": judge.model_dump(mode="json"), "versions": versions(toolset_for(config))}
    pipeline = config.pipeline

    def chain(shard: Shard) -> Chain:
        prepared = submit(plan_shard, pipeline, f"plan shard {shard.index}", source, shard, config)
        results = submit(edit_shard, pipeline, f"edit shard {shard.index}", prepared[1], config)
        judgements = submit(judge_results, pipeline, f"judge shard {shard.index}", prepared[1], results[1], judge)
        written = submit(write_part, pipeline, f"write shard {shard.index}", output, storage_options, prepared[1],
                         results[1], config, False, False, judgements[1])
        return [prepared, results, judgements, written]

    with run_output.writing(run):
        finished = run_output.finished()
        shards = source.shards(shard_size)
        failures = commit_bounded([shard for shard in shards if shard.index not in finished], chain, run_output,
                                  max_concurrent_shards)
    if failures:
        raise shards_failed(failures, len(shards), output)

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
