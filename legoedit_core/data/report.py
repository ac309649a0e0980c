"""A self-contained HTML report of a run: counts, then one card per row with before/after thumbnails.

Thumbnails are inline JPEG data URIs, so the file can be mailed or opened from object storage with nothing else.
A few lines of inline script count the thumbnails that loaded and write ``data-loaded="N/M"`` on ``<body>``
(and ``data-broken`` with the ids of any that did not), which is what the browser test reads.
"""

from __future__ import annotations

import base64
import json
from collections import Counter
from collections.abc import Callable, Iterable
from html import escape
from typing import Any

import pyarrow as pa

from legoedit_core.data.images import ImageDecodeError, decode_image, encode_jpeg, thumbnail
from legoedit_core.data.output import PartInfo

THUMBNAIL = 192
STYLE = """
body{font:14px system-ui,sans-serif;margin:24px;background:#f6f6f4;color:#222}
h1{font-size:20px}.counts span{margin-right:16px}.grid{display:flex;flex-wrap:wrap;gap:12px}
.card{background:#fff;border-radius:8px;padding:10px;width:420px;box-shadow:0 1px 3px #0002}
.pair{display:flex;gap:6px}.pair figure{margin:0;width:200px;text-align:center;font-size:11px;color:#666}
.pair img{max-width:200px;max-height:200px}.missing{height:120px;display:flex;align-items:center;justify-content:center;
background:#eee;color:#999}.status{font-weight:600;padding:1px 6px;border-radius:4px}
.ok{background:#d7f5dd}.bad_input{background:#fde2c8}.invalid_plan{background:#f3d9fa}.failed{background:#fbd3d3}
.error{color:#a00;white-space:pre-wrap}.note{color:#8a5a00;white-space:pre-wrap}.fallback{color:#8a5a00}pre{font-size:11px;max-height:200px;overflow:auto;background:#f3f3f3;padding:6px}
"""
SCRIPT = """
(function(){
  var images = Array.prototype.slice.call(document.querySelectorAll('img.thumb'));
  var settled = 0, loaded = 0, broken = [];
  function done(){
    document.body.setAttribute('data-loaded', loaded + '/' + images.length);
    document.body.setAttribute('data-broken', broken.join(' '));
  }
  images.forEach(function(img){
    function settle(ok){ settled++; if(ok && img.naturalWidth > 0){loaded++;} else {broken.push(img.dataset.id);}
                         if(settled === images.length){done();} }
    if(img.complete){ settle(img.naturalWidth > 0); }
    else { img.addEventListener('load', function(){settle(true);});
           img.addEventListener('error', function(){settle(false);}); }
  });
  if(images.length === 0){ done(); }
})();
"""


def thumbnail_uri(struct: dict[str, Any] | None, size: int = THUMBNAIL) -> str | None:
    """An image struct's picture as a small inline JPEG (a ``data:`` URI), or None without readable bytes."""
    if not struct or not struct.get("bytes"):
        return None
    try:
        small = thumbnail(decode_image(struct["bytes"]), size)
    except ImageDecodeError:
        return None
    return "data:image/jpeg;base64," + base64.b64encode(encode_jpeg(small, quality=85)).decode()


def _figure(struct: dict[str, Any] | None, caption: str, row_id: str) -> str:
    uri = thumbnail_uri(struct)
    if uri is None:
        return f'<figure><div class="missing">no image</div>{caption}</figure>'
    return f'<figure><img class="thumb" data-id="{escape(row_id)}" src="{uri}" alt="{caption}">{caption}</figure>'


def _plan_summary(workflow: str | None) -> str:
    if not workflow:
        return ""
    nodes = json.loads(workflow).get("nodes", [])
    return " &rarr; ".join(escape(node["tool"]) for node in nodes)


def notes(row: dict[str, Any]) -> list[tuple[str, str]]:
    """(node, note) for each node of the row's trace that the planner annotated, e.g. an approximation."""
    return [(entry["node"], entry["note"]) for entry in row["trace"] or [] if entry.get("note")]


def _check_line(feedback: str | None) -> str:
    """The verifiable edit check of a judged row ("check (remove): 0.50, failed: rest_kept"), or ""."""
    check = json.loads(feedback).get("check") if feedback else None
    if not check:
        return ""
    failed = f", failed: {', '.join(check['failed'])}" if check["failed"] else ""
    return f"<p>check ({escape(check['family'])}): {check['score']:.2f}{escape(failed)}</p>"


def _card(row: dict[str, Any]) -> str:
    status = row["status"]
    parts = [
        f'<div class="card"><div><b>{escape(row["id"])}</b> <span class="status {status}">{status}</span></div>',
        f'<p>{escape(row["instruction"] or "")}</p>',
        '<div class="pair">', _figure(row["source_image"], "before", row["id"]),
        _figure(row["edited_image"], "after", row["id"]), "</div>",
    ]
    if row["workflow"]:
        parts.append(f"<p>plan: {_plan_summary(row['workflow'])}</p>")
        parts.append(f"<details><summary>workflow</summary><pre>{escape(row['workflow'])}</pre></details>")
    if row["reasoning"]:
        parts.append(f"<details><summary>reasoning</summary><pre>{escape(row['reasoning'])}</pre></details>")
    if row["judge_score"] is not None:
        parts.append(f"<p>judge score: {row['judge_score']:.1f}</p>")
    for node, text in notes(row):
        parts.append(f'<p class="note">{escape(node)}: {escape(text)}</p>')
    parts.append(_check_line(row["judge_feedback"]))
    if row["error"]:
        parts.append(f'<p class="error">{escape(row["error"])}</p>')
    parts += [f'<p class="fallback">{escape(node["node"])}: fell back {escape(node["fallback"])}</p>'
              for node in _fallbacks(row)]
    parts.append("</div>")
    return "".join(parts)


def _models_line(loads: Counter[str], resident: int) -> str:
    """Loads per model and the peak resident bytes, from the traces (empty when no model ran)."""
    if not loads:
        return ""
    listed = ", ".join(f"{escape(model)}: {n} load(s)" for model, n in sorted(loads.items()))
    return f"<p class='models'>models: {listed}; peak resident {resident / 2**20:.1f} MiB</p>"


def _fallbacks(row: dict[str, Any]) -> list[dict[str, Any]]:
    """The nodes of a row that ran on a CPU backend instead of the run's pinned GPU backend."""
    return [node for node in row.get("trace") or [] if node.get("fallback")]


def render_report(parts: pa.Table | Callable[[], Iterable[pa.Table]], title: str = "legoedit run",
                  max_rows: int = 500) -> str:
    """The report as one HTML string. At most ``max_rows`` cards: the rows that are not ok first, then the rest.

    ``parts`` is a table, or a function that yields the output's parts one at a time (called twice: once for the
    rows that are not ok, once for the ok ones), so a report over a big output holds one part and at most
    ``max_rows`` cards in memory, never the whole table.
    """
    passes = (lambda: [parts]) if isinstance(parts, pa.Table) else parts
    counts: Counter[str] = Counter()
    loads: Counter[str] = Counter()
    resident = 0
    cards: list[str] = []
    annotated = 0
    fell_back = 0
    for wanted_ok in (False, True):
        for part in passes():
            statuses = part.column("status").to_pylist()
            if not wanted_ok:
                counts.update(statuses)
                info = PartInfo.of(0, "", part.select(["status", "trace"]))
                loads.update(info.model_loads)
                resident = max(resident, info.resident_bytes)
            for position, status in enumerate(statuses):
                if (status == "ok") != wanted_ok:
                    continue
                row = part.slice(position, 1).to_pylist()[0]
                annotated += bool(notes(row))
                fell_back += bool(_fallbacks(row))
                if len(cards) < max_rows:
                    cards.append(_card(row))
    total = sum(counts.values())
    count_line = "".join(f"<span>{escape(status)}: {n}</span>" for status, n in sorted(counts.items()))
    if annotated:
        count_line += f"<span class='note'>with planner notes (approximations): {annotated}</span>"
    count_line += _models_line(loads, resident)
    note = f"<p>showing {len(cards)} of {total} rows</p>" if len(cards) < total else ""
    if fell_back:
        note += (f"<p class='fallback'>{fell_back} row(s) ran a node on a CPU backend instead of the run's pinned "
                 "GPU backend (the config allowed it); each card says which</p>")
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(title)}</title><style>{STYLE}</style>"
        f"</head><body><h1>{escape(title)}</h1><div class='counts'>{count_line}</div>{note}"
        f"<div class='grid'>{''.join(cards)}</div><script>{SCRIPT}</script></body></html>"
    )
