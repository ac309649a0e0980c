"""The evaluation report: per-category means of the judge's scores and the model-free metrics.

Scores are read back from output rows (``judge_feedback`` holds every score and metric as JSON, ``ground_truth``
the benchmark's category), so a report can be rebuilt from any finished run. Means are over the edits that were
judged; edits with no image and unreadable judge replies are counted in their own columns, never averaged as 0.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

import pyarrow as pa

SCORE_COLUMNS = ("total", "fulfilment", "quality", "preservation", "semantic_consistency", "perceptual_quality",
                 "overall")
METRIC_COLUMNS = ("psnr_outside", "ssim_outside", "change_inside", "check")
ALL = "all"


def score_records(table: pa.Table) -> list[dict[str, Any]]:
    """One flat record per output row: id, category, status, and every score and metric (None when unknown)."""
    records = []
    for row in table.to_pylist():
        truth = json.loads(row["ground_truth"]) if row["ground_truth"] else {}
        feedback = json.loads(row["judge_feedback"]) if row["judge_feedback"] else {}
        metrics = feedback.get("metrics", {}) | {"check": (feedback.get("check") or {}).get("score")}
        record = {"id": row["id"], "category": str(truth.get("category") or "uncategorised"),
                  "status": row["status"], "judge_error": feedback.get("error")}
        record |= {name: feedback.get(name) for name in SCORE_COLUMNS}
        record |= {name: metrics.get(name) for name in METRIC_COLUMNS}
        records.append(record)
    return records


def _mean(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None and math.isfinite(v)]
    return sum(present) / len(present) if present else None


def category_means(records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per category (sorted) and over all rows: counts, then the mean of every score and metric."""
    categories: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        categories.setdefault(record["category"], []).append(record)
    summary = []
    for name, members in [*sorted(categories.items()), (ALL, list(records))]:
        row: dict[str, Any] = {
            "category": name, "items": len(members),
            "edited": sum(1 for r in members if r["status"] == "ok"),
            "judged": sum(1 for r in members if r["total"] is not None),
            "judge_errors": sum(1 for r in members if r["status"] == "ok" and r["judge_error"]),
            "checked": sum(1 for r in members if r["check"] is not None),
        }
        row |= {column: _mean([r[column] for r in members]) for column in (*SCORE_COLUMNS, *METRIC_COLUMNS)}
        summary.append(row)
    return summary


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def markdown_report(summary: Sequence[dict[str, Any]], title: str, judge: str, config: dict[str, Any]) -> str:
    """The report as Markdown: what was run and judged by what, and the per-category table."""
    columns = list(summary[0]) if summary else ["category"]
    lines = [f"# {title}", "", f"- judge: `{judge}`",
             "- scores: ImageEdit-R1 total 0-10 (fulfilment 0-4, quality 0-3, preservation 0-3); VIEScore SC, PQ "
             "0-10, overall = sqrt(SC * PQ); means over judged edits",
             "- metrics: PSNR (dB) / SSIM outside the union of the plan's masks (or the user's mask), mean |change| "
             "inside it (0-1); check: the verifiable edit check's score (0-1) over the edits it applies to", "",
             "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell(row[c]) for c in columns) + " |" for row in summary]
    lines += ["", "## Config", "", "```json", json.dumps(config, indent=2, sort_keys=True), "```", ""]
    return "\n".join(lines)
