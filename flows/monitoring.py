"""What a run shows in the Prefect UI: a progress artifact, a summary table and a before/after gallery."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable
from itertools import islice
from typing import Any

from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)

from flows.throttle import Throttle
from legoedit_core.data.output import PartInfo
from legoedit_core.data.report import thumbnail_uri
from legoedit_core.data.storage import Storage

GALLERY_SIZE = 6
GALLERY_THUMBNAIL = 128


class Progress:
    """A progress artifact moved forward as shards finish: at most once every ``interval`` seconds, and when the
    last shard finishes (each update is a server round trip on the flow's thread; at shard size 25 one per shard
    cost the flow ~5% of its time)."""

    def __init__(self, total: int, already: int, interval: float = 2.0, key: str = "edit-catalogue-progress") -> None:
        self.total, self.done = max(total, 1), already
        self.updates = Throttle(interval, last=time.monotonic())  # the artifact is created just below
        self.artifact = create_progress_artifact(progress=self._percent(), key=key,
                                                 description=f"shards finished out of {total}")

    def _percent(self) -> float:
        return round(100.0 * self.done / self.total, 1)

    def advance(self) -> None:
        self.done += 1
        if self.updates.due(force=self.done >= self.total):
            update_progress_artifact(self.artifact, progress=self._percent())


def summary_table(parts: list[PartInfo]) -> dict[str, Any]:
    """Counts by status, seconds by brick, model loads and peak resident bytes over the finished shards; also
    published as a table artifact."""
    counts: Counter[str] = Counter()
    seconds: Counter[str] = Counter()
    loads: Counter[str] = Counter()
    for part in parts:
        counts.update(part.counts)
        seconds.update(part.brick_seconds)
        loads.update(part.model_loads)
    resident = max((part.resident_bytes for part in parts), default=0)
    rows = [{"kind": "status", "name": status, "value": n} for status, n in sorted(counts.items())]
    rows += [{"kind": "brick seconds", "name": brick, "value": round(s, 3)} for brick, s in sorted(seconds.items())]
    rows += [{"kind": "model loads", "name": model, "value": n} for model, n in sorted(loads.items())]
    if resident:
        rows.append({"kind": "model memory", "name": "peak resident bytes on one device", "value": resident})
    create_table_artifact(table=rows, key="edit-catalogue-summary",
                          description="rows by status, seconds by brick, model loads and resident bytes")
    return {"counts": dict(counts), "brick_seconds": dict(seconds), "model_loads": dict(loads),
            "resident_bytes": resident}


def gallery(rows: Iterable[dict[str, Any]], report_uri: str, storage_options: dict[str, Any] | None) -> None:
    """A markdown artifact with before/after thumbnails (inline images) of the first few ok rows, and a link to
    the HTML report (presigned on S3, ``file://`` on a local disk).

    ``rows`` may be a lazy iterable over the output: it is read only until ``GALLERY_SIZE`` ok rows are found.
    """
    link = Storage(report_uri, storage_options).url()
    lines = [f"Full report: [{report_uri}]({link})" if link else f"Full report: `{report_uri}`", "",
             "| id | instruction | before | after |", "|---|---|---|---|"]
    for row in islice((r for r in rows if r["status"] == "ok"), GALLERY_SIZE):
        cells = [f"![{label}]({uri})" if (uri := thumbnail_uri(row[column], GALLERY_THUMBNAIL)) else "see report"
                 for label, column in (("before", "source_image"), ("after", "edited_image"))]
        instruction = row["instruction"].replace("|", "\\|")
        lines.append(f"| {row['id']} | {instruction} | {cells[0]} | {cells[1]} |")
    create_markdown_artifact(markdown="\n".join(lines), key="edit-catalogue-gallery",
                             description="before / after examples")


def version_counts(version: dict[str, Any], report_url: str | None) -> None:
    """A markdown artifact with what the run's version changed (new / changed / unchanged / removed / failed: edited
    rows that are not ``ok``) and a link to that version's report."""
    counts = version["counts"]
    lines = [f"# Version {version['version']} of the output", "", "| rows | count |", "|---|---|"]
    lines += [f"| {kind} | {counts.get(kind, 0)} |" for kind in ("new", "changed", "unchanged", "removed", "failed")]
    if counts.get("retried"):
        lines.append(f"| retried | {counts['retried']} |")
    if report_url:
        lines += ["", f"[report of version {version['version']}]({report_url})"]
    create_markdown_artifact(markdown="\n".join(lines), key="edit-catalogue-version",
                             description=f"version {version['version']}: rows new, changed, unchanged, removed, failed")
