"""Grounding honesty: the offline Builder declines what it cannot locate instead of editing a substitute.

The cases are the ones a new user tried on the bundled photos: each used to plan SOS -> edit and report ``ok``. By
default a single named thing no finder sees is taken as the photo's main subject (the salient object), noted in the
plan; a catalogue whose requests may name things absent from the photo sets ``salient_as_named_subject = false``
(``STRICT``), and then these are declined.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from flow_runs import edited_rows
from prefect.testing.utilities import prefect_test_harness

from legoedit_core.config import Config
from legoedit_core.data.images import read_image
from legoedit_core.data.report import render_report
from legoedit_core.executor import Executor
from legoedit_core.planners import PlannerSettings, PlanRequest, make_planner
from legoedit_core.planners.rules import RulesPlanner
from legoedit_core.settings.planner import RulesSettings

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SALIENT = RulesSettings(salient_as_named_subject=True)
STRICT = RulesSettings(salient_as_named_subject=False)

WRONG_EDITS = [  # (photo, instruction, what the refusal must name)
    ("coffee", "remove the dog", "'dog'"),
    ("coffee", "erase the cup on the table", "'cup on the table'"),
    ("coffee", "turn the statue teal", "'statue'"),
    ("coffee", "change the background to a beach at sunset", "'beach at sunset'"),
    ("chelsea", "erase the cat", "'cat'"),
]


@pytest.fixture(scope="module", autouse=True)
def prefect_server():
    with prefect_test_harness(server_startup_timeout=180):
        yield


def _request(photo: str, instruction: str) -> PlanRequest:
    return PlanRequest(photo, read_image(EXAMPLES / f"images/{photo}.jpg"), instruction)


@pytest.mark.parametrize(("photo", "instruction", "named"), WRONG_EDITS, ids=[c[1] for c in WRONG_EDITS])
def test_wrong_edit_cases_decline_naming_subject_and_profile(cpu_toolset, photo, instruction, named):
    planner = make_planner(PlannerSettings(rules=STRICT), cpu_toolset)
    result = planner.plan_batch([_request(photo, instruction)])[0]
    assert not result.ok and result.workflow is None
    assert named in result.error and "cpu profile" in result.error, result.error


def _catalogue(tmp_path: Path, rows: list[tuple[str, str]]) -> str:
    for photo in {photo for photo, _ in rows}:
        shutil.copy(EXAMPLES / f"images/{photo}.jpg", tmp_path / f"{photo}.jpg")
    lines = [json.dumps({"id": f"r{i}", "image": f"{photo}.jpg", "instruction": text, "seed": 1})
             for i, (photo, text) in enumerate(rows)]
    (tmp_path / "catalogue.jsonl").write_text("\n".join(lines) + "\n")
    return str(tmp_path / "catalogue.jsonl")


def _rows(manifest: str, settings: RulesSettings | None = None) -> list[dict]:
    config = Config.load()
    if settings is not None:
        config.planner = config.planner.model_copy(update={"rules": settings})
    return edited_rows(manifest, str(Path(manifest).parent / "out"), config).to_pylist()


def test_rows_of_wrong_edits_are_invalid_plan(tmp_path):
    rows = _rows(_catalogue(tmp_path, [(photo, text) for photo, text, _ in WRONG_EDITS]), STRICT)
    assert [row["status"] for row in rows] == ["invalid_plan"] * len(WRONG_EDITS)
    assert all(named in row["error"] for row, (_, _, named) in zip(rows, WRONG_EDITS, strict=True))
    assert all(row["edited_image"] is None for row in rows)


def test_salient_option_runs_and_the_trace_and_report_record_the_approximation(tmp_path):
    rows = _rows(_catalogue(tmp_path, [("coffee", "turn the statue teal"), ("chelsea", "erase the cat")]),
                 SALIENT)
    statue, cat = rows
    assert statue["status"] == "ok", statue["error"]
    noted = {entry["node"]: entry["note"] for entry in statue["trace"] if entry["note"]}
    assert list(noted) == ["subject"] and "'statue'" in noted["subject"]
    assert "approximation" in noted["subject"] and "salient_as_named_subject" in noted["subject"]
    assert "statue is taken as the photo's main subject: the salient object (SOS)" in statue["reasoning"]
    report = render_report(process_table(rows))
    assert "approximation: &#x27;statue&#x27; is taken as the photo&#x27;s main subject" in report
    assert "with planner notes (approximations): 2" in report
    # The cat fills most of the frame: classical INPAINT refuses rather than smear it into the background.
    assert cat["status"] == "failed" and cat["edited_image"] is None
    assert "covers 70% of the frame" in cat["error"] and "INPAINT" in cat["error"]  # SOS keeps thin parts (fur)


def process_table(rows: list[dict]):
    from legoedit_core.data.rows import rows_to_table

    return rows_to_table(rows)


def test_option_on_by_default_and_choices_are_recorded(cpu_toolset):
    assert RulesSettings().salient_as_named_subject
    salient = RulesPlanner(cpu_toolset).plan(_request("coffee", "remove the cup"))
    assert salient.ok and salient.workflow.tools() == ["SOS", "INPAINT"]
    assert salient.details["choices"][0] == {"key": "locate cup", "options": ("SOS",), "picked": "SOS"}
    assert salient.details["notes"]["subject"].startswith("approximation")
    assert salient.workflow.node("subject").note == salient.details["notes"]["subject"]
    located = RulesPlanner(cpu_toolset, settings=SALIENT).plan(_request("coffee", "blur the faces"))
    assert located.details["choices"][0] == {"key": "locate faces", "options": ("RES",), "picked": "RES"}
    assert located.details["notes"] == {} and located.workflow.tools() == ["RES", "BLUR"]
    both = RulesPlanner(cpu_toolset, settings=SALIENT).plan(_request("coffee", "remove the dog and the cat"))
    assert not both.ok and "'dog'" in both.error  # several subjects: no stand-in for any of them
    for setting in ("remove the flag", "make the saucer blue"):  # the setting, or a part of the subject
        declined = RulesPlanner(cpu_toolset).plan(_request("coffee", setting))
        assert not declined.ok and "not the photo's main subject" in declined.error, setting


def test_res_that_finds_nothing_fails_the_row_naming_the_subject(tmp_path):
    rows = _rows(_catalogue(tmp_path, [("coffee", "blur the faces"), ("coffee", "make the sky orange")]))
    for row, subject in zip(rows, ("face", "sky"), strict=True):
        assert row["status"] == "failed" and row["edited_image"] is None  # no pixel changed: nothing was written
        assert f"RES found no '{subject}' in this image" in row["error"], row["error"]
        assert [entry["tool"] for entry in row["trace"]] == ["RES"]  # the edit never ran


def test_classical_inpaint_refuses_most_of_the_frame_but_fills_a_hole(cpu_toolset, coffee):
    half = np.zeros(coffee.shape[:2], np.uint8)
    half[:, : coffee.shape[1] * 3 // 5] = 255
    hole = np.zeros_like(half)
    hole[40:80, 40:80] = 255
    for tool in ("INPAINT", "FASTINPAINT"):
        backend = cpu_toolset.backend(tool)
        inputs = {"image": coffee, "strength": 1.0}
        refused, filled = backend.run_batch([{**inputs, "mask": half}, {**inputs, "mask": hole}], [0, 0])
        assert "covers 60% of the frame" in str(refused) and "max_fraction" in str(refused)
        assert isinstance(filled, dict) and filled["image"].shape == coffee.shape


def test_an_empty_region_given_to_an_edit_fails_instead_of_changing_nothing(cpu_toolset, coffee):
    from legoedit_core.workflow import parse_workflow

    workflow = parse_workflow({"nodes": [{"id": "blur", "tool": "BLUR", "inputs": {
        "image": "@input.image", "mask": "@input.mask"}}], "output": "@blur.image"})
    empty = np.zeros(coffee.shape[:2], np.uint8)
    result = Executor(cpu_toolset).run(workflow, coffee, empty)
    assert result.status == "failed" and result.image is None
    assert result.error == "node 'blur' (BLUR): the mask is empty: nothing to edit"
