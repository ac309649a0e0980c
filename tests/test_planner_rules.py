"""The rules planner: actions to bricks, plain refusals, expert traces, and `legoedit edit` end to end on CPU."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from legoedit.cli import main
from legoedit_core.bricks.toolset import Toolset
from legoedit_core.data.images import read_image
from legoedit_core.planners import PlannerSettings, PlanRequest, make_planner
from legoedit_core.planners.reader import read
from legoedit_core.planners.rules import RulesPlanner, expert_traces
from legoedit_core.settings.planner import RulesSettings
from legoedit_core.workflow import validate

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _plan(toolset: Toolset, instruction: str, has_mask: bool = False):
    image = np.zeros((120, 160, 3), np.uint8)
    return RulesPlanner(toolset).plan(PlanRequest("x", image, instruction, has_mask=has_mask))


@pytest.mark.parametrize(("instruction", "tools", "literals"), [
    ("wipe the text off", ["RES", "INPAINT"], {"prompt": "text"}),
    ("make the backdrop out of focus", ["SOS", "CBG"], {"prompt": "blur"}),
    ("set the background to navy blue", ["SOS", "CBG"], {"prompt": "navy blue"}),
    ("convert the shot to black and white", ["GRAYSCALE"], {}),
    ("paint her hair red", ["RES", "RCM"], {"prompt": "red"}),
    ("lighten the picture", ["ADJUST"], {"brightness": 1.3}),
    ("crop around her face", ["RES", "BBOX", "CROP"], {"prompt": "face"}),
    ("redo it as a watercolour", ["STYLE"], {"prompt": "watercolor"}),
    ("rotate 90 degrees counterclockwise", ["ROTATE"], {"angle": 90.0}),
    ("flip it upside down", ["FLIP"], {"direction": "vertical"}),
    ("shrink it to 50%", ["RESIZE"], {"width": 80}),
    ("blur the faces", ["RES", "BLUR"], {"prompt": "face"}),
])
def test_actions_plan_with_cpu_bricks(cpu_toolset, instruction, tools, literals):
    result = _plan(cpu_toolset, instruction)
    assert result.ok, result.error
    assert result.workflow.tools() == tools
    given = {k: v for n in result.workflow.nodes for k, v in n.inputs.items() if not str(v).startswith("@")}
    assert literals.items() <= given.items()
    assert validate(result.workflow, cpu_toolset) == []
    assert result.reasoning and result.planner == "rules"


def test_clauses_chain_and_masks_union(cpu_toolset):
    clauses = read("Please erase the caption and tint the sky orange; then mirror it").clauses
    assert [(c.text, c.action) for c in clauses] == [("Please erase the caption", "remove"),
                                                     ("tint the sky orange", "recolour"), ("mirror it", "flip")]
    chained = _plan(cpu_toolset, "wipe the lettering, then turn the photo greyscale").workflow
    assert chained.tools() == ["RES", "INPAINT", "GRAYSCALE"]
    assert chained.node("gray").inputs["image"] == "@erase.image"
    both = _plan(cpu_toolset, "Change the colour of her coat and hair to scarlet").workflow
    assert both.tools() == ["RES", "RES", "UNION", "RCM"]
    assert [n.inputs.get("prompt") for n in both.nodes] == ["coat", "hair", None, "scarlet"]


def test_user_mask_is_used_for_the_marked_region(cpu_toolset):
    result = _plan(cpu_toolset, "delete the selected area", has_mask=True)
    assert result.workflow.tools() == ["INPAINT"]
    assert result.workflow.nodes[0].inputs["mask"] == "@input.mask"
    unmarked = _plan(cpu_toolset, "delete the selected area")
    assert not unmarked.ok and "no region was marked" in unmarked.error


def test_what_it_cannot_do_is_said_plainly(cpu_toolset):
    poem = _plan(cpu_toolset, "write a poem about the sea")
    assert not poem.ok and "cannot do 'write a poem about the sea'" in poem.error
    swap = _plan(cpu_toolset, "replace the man with a cat")  # remove-then-fill needs FILL, a model brick
    assert not swap.ok and "replacing one thing with another" in swap.error and "cpu profile" in swap.error


def test_feedback_rejects_a_rules_plan(cpu_toolset):
    planner = make_planner(PlannerSettings(feedback=["avoid SOS"]), cpu_toolset)
    result = planner.plan_batch([PlanRequest("x", np.zeros((64, 64, 3), np.uint8), "blur the background")])[0]
    assert not result.ok and 'breaks the feedback "avoid SOS"' in result.error


def test_expert_traces_are_valid_sft_examples(cpu_toolset):
    traces = expert_traces(["paint her hair red", "write a poem", "crop around her face"], cpu_toolset)
    assert [t["instruction"] for t in traces] == ["paint her hair red", "crop around her face"]
    for trace in traces:
        assert trace["text"].startswith(f"<think>{trace['reasoning']}</think>\n")
        assert json.loads(trace["text"].split("\n", 1)[1]) == trace["workflow"]


def test_res_vocabulary_falls_back_to_the_salient_subject_only_when_allowed(cpu_toolset):
    image = np.zeros((120, 160, 3), np.uint8)
    strict = RulesPlanner(cpu_toolset, settings=RulesSettings(salient_as_named_subject=False))
    declined = strict.plan(PlanRequest("x", image, "turn the cat into a pencil sketch"))
    assert "cannot locate 'cat' on the cpu profile" in declined.error
    cat = _plan(cpu_toolset, "paint the cat teal")
    assert cat.workflow.tools() == ["SOS", "RCM"] and "the salient object (SOS)" in cat.reasoning
    assert _plan(cpu_toolset, "paint her hair red").workflow.tools() == ["RES", "RCM"]


BUNDLED = [json.loads(line) for line in (EXAMPLES / "catalogue.jsonl").read_text().splitlines() if line.strip()]


@pytest.mark.parametrize("row", BUNDLED, ids=lambda r: r["id"])
def test_legoedit_edit_runs_each_bundled_example_on_cpu(row, tmp_path, capsys):
    out = tmp_path / "out.png"
    argv = ["edit", str(EXAMPLES / row["image"]), row["instruction"], "-o", str(out), "--show-plan",
            "--seed", str(row["seed"])]
    if "mask" in row:
        argv += ["--mask", str(EXAMPLES / row["mask"])]
    assert main(argv) == 0, capsys.readouterr().err
    printed = capsys.readouterr().out
    assert "<think>" in printed and '"nodes"' in printed
    source, edited = read_image(EXAMPLES / row["image"]), read_image(out)
    if edited.shape == source.shape:
        assert np.abs(edited.astype(int) - source.astype(int)).mean() > 0.5  # the edit changed the picture


def test_legoedit_edit_on_text_and_crop(tmp_path, capsys):
    from PIL import Image, ImageDraw, ImageFont

    picture = Image.new("RGB", (256, 128), (200, 220, 240))
    ImageDraw.Draw(picture).text((20, 40), "SALE 50% OFF", fill=(10, 10, 10), font=ImageFont.load_default(size=32))
    picture.save(tmp_path / "sign.png")
    assert main(["edit", str(tmp_path / "sign.png"), "wipe the text off", "-o", str(tmp_path / "clean.png")]) == 0
    clean = read_image(tmp_path / "clean.png")
    assert clean[40:80, 20:230].min() > 60  # the dark letters are gone
    astronaut = EXAMPLES / "images/astronaut.jpg"
    assert main(["edit", str(astronaut), "crop around her face", "-o", str(tmp_path / "face.png")]) == 0
    assert read_image(tmp_path / "face.png").shape[0] < read_image(astronaut).shape[0] / 2


def test_legoedit_plan_refuses_plainly(capsys):
    assert main(["plan", str(EXAMPLES / "images/rocket.jpg"), "write a poem"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: invalid_plan (rules): cannot do 'write a poem'") and err.count("\n") == 1
