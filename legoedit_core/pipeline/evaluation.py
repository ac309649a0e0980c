"""Judging a shard of the pipeline: every edited row gets the judge's scores and the model-free metrics."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pyarrow as pa

from legoedit_core.bricks.toolset import Toolset
from legoedit_core.data.rows import rows_to_table
from legoedit_core.executor import EditResult
from legoedit_core.judge.judgement import Edit, Judgement, judge_edits
from legoedit_core.judge.vlm import VLMJudge
from legoedit_core.pipeline.shard import PreparedShard, build_rows


def judge_shard(prepared: PreparedShard, results: Sequence[EditResult], judge: VLMJudge | None
                ) -> list[Judgement | None]:
    """One judgement per edited item of the shard (in ``prepared.edit_items()`` order)."""
    _, positions = prepared.edit_items()
    edits = [Edit(prepared.rows[p].image, result, prepared.rows[p].row.instruction, prepared.rows[p].row.seed,
                  prepared.rows[p].mask) for p, result in zip(positions, results, strict=True)]
    return judge_edits(edits, judge)


def judged_table(prepared: PreparedShard, results: Sequence[EditResult], judgements: Sequence[Judgement | None],
                 toolset: Toolset) -> pa.Table:
    """The shard's output rows with the judge columns filled for every judged edit."""
    rows: list[dict[str, Any]] = build_rows(prepared, results, toolset).to_pylist()
    _, positions = prepared.edit_items()
    for position, judgement in zip(positions, judgements, strict=True):
        if judgement is not None:
            rows[position] |= {"judge_score": judgement.score, "judge_model": judgement.judge,
                               "judge_feedback": judgement.feedback()}
    return rows_to_table(rows)
