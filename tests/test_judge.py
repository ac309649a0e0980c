"""The judge: reading replies (well-formed, partly formed, garbage), model-free metrics, and the tiny VLM judge."""

from __future__ import annotations

import math

import numpy as np
import pytest
from tiny_vlm import save_tiny_vlm

from legoedit_core.executor import Executor
from legoedit_core.judge.judgement import Edit, judge_edits
from legoedit_core.judge.metrics import PSNR_CAP, edit_metrics
from legoedit_core.judge.scores import parse_scores
from legoedit_core.judge.vlm import JudgeError, JudgeRequest, VLMJudge
from legoedit_core.settings.judge import JudgeSettings
from legoedit_core.workflow import parse_workflow

WELL_FORMED = ('{"reasoning": "The dog is gone, a faint halo remains.", "fulfilment": 4, "quality": 2, '
               '"preservation": 3, "semantic_consistency": 8, "perceptual_quality": 6}')


def test_a_well_formed_reply_gives_every_score_and_both_totals():
    scores = parse_scores(WELL_FORMED)
    assert (scores.fulfilment, scores.quality, scores.preservation) == (4, 2, 3)
    assert scores.total == 9
    assert scores.overall == pytest.approx(math.sqrt(8 * 6))
    assert scores.reasoning == "The dog is gone, a faint halo remains."
    assert scores.error is None


def test_json_inside_prose_and_code_fences_is_found():
    scores = parse_scores(f"Here is my verdict:\n```json\n{WELL_FORMED}\n```\nThanks.")
    assert scores.total == 9 and scores.error is None


def test_name_value_lines_are_read_when_there_is_no_json():
    reply = ("Request fulfilment: 3\nImage quality: 3\nPreservation = 2\nSC: 7\nPQ: 9\n"
             "Overall the sky is orange as asked.")
    scores = parse_scores(reply)
    assert (scores.total, scores.semantic_consistency, scores.perceptual_quality) == (8, 7, 9)
    assert scores.error is None


def test_a_truncated_reply_keeps_what_it_has_and_names_what_is_missing():
    scores = parse_scores('{"reasoning": "ok", "fulfilment": 3, "quality": 2, "preserv')
    assert (scores.fulfilment, scores.quality) == (3, 2)
    assert scores.total is None and scores.overall is None  # never a total made from a guessed zero
    assert "preservation is missing" in scores.error
    assert "semantic_consistency is missing" in scores.error


def test_an_out_of_range_score_is_an_error_not_a_clamped_value():
    scores = parse_scores(WELL_FORMED.replace('"fulfilment": 4', '"fulfilment": 7'))
    assert scores.fulfilment is None and scores.total is None
    assert "fulfilment 7 is outside 0-4" in scores.error
    assert scores.overall == pytest.approx(math.sqrt(48))  # the VIEScore part is still complete


@pytest.mark.parametrize("reply", ["", "I cannot judge this image.", "{}", "\x00\x13 ~~ [[", '{"score": "great"}'])
def test_garbage_is_a_recorded_error_never_a_zero(reply):
    scores = parse_scores(reply)
    assert scores.total is None and scores.overall is None
    assert all(getattr(scores, name) is None for name in ("fulfilment", "quality", "preservation"))
    assert scores.error


def _square_mask(size: int, box: tuple[int, int, int, int]) -> np.ndarray:
    mask = np.zeros((size, size), np.uint8)
    x0, y0, x1, y1 = box
    mask[y0:y1, x0:x1] = 255
    return mask


def test_preservation_is_measured_outside_the_union_of_the_masks(astronaut):
    source = astronaut[:128, :128].copy()
    first, second = _square_mask(128, (0, 0, 32, 32)), _square_mask(128, (96, 96, 128, 128))
    edited = source.copy()
    edited[first > 0] = 0
    edited[second > 0] = 255
    metrics = edit_metrics(source, edited, [first, second])
    assert metrics.psnr_outside == PSNR_CAP and metrics.ssim_outside > 0.9
    assert metrics.edited_fraction == pytest.approx(2 * 32 * 32 / 128**2)
    expected = np.abs(source.astype(int) - edited.astype(int))[(first | second) > 0].mean() / 255
    assert metrics.change_inside == pytest.approx(expected)
    # the same change measured with only one mask known leaks outside it
    leaked = edit_metrics(source, edited, [first])
    assert leaked.psnr_outside < 40 and leaked.ssim_outside < metrics.ssim_outside


def test_a_size_change_is_reported_and_preservation_left_unmeasured(astronaut):
    metrics = edit_metrics(astronaut, astronaut[:100, :120].copy())
    assert not metrics.same_size and metrics.format_ok
    assert metrics.psnr_outside is None and "size changed" in metrics.notes[0]


@pytest.fixture(scope="module")
def tiny_vlm(tmp_path_factory):
    return str(save_tiny_vlm(tmp_path_factory.mktemp("judge_vlm")))


def test_the_tiny_vlm_judge_runs_through_transformers_end_to_end(tiny_vlm, astronaut):
    """Constrained decoding makes even a random-weight model reply with readable, in-range scores."""
    source = astronaut[:96, :96].copy()
    workflow = parse_workflow({"nodes": [{"id": "g", "tool": "GRAYSCALE", "inputs": {"image": "@input.image"}}],
                               "output": "@g.image"})
    result = Executor().run(workflow, source)
    judge = VLMJudge(JudgeSettings(engine="transformers", model=tiny_vlm, temperature=1.0, image_size=64,
                                   max_reasoning_chars=12))
    judgements = judge_edits([Edit(source, result, "make it black and white", seed=s) for s in range(3)], judge)
    for judgement in judgements:
        assert judgement.judge == f"judge/transformers:{tiny_vlm}"
        assert judgement.error is None, judgement.scores.raw
        assert 0 <= judgement.score <= 10 and 0 <= judgement.scores.overall <= 10
        assert judgement.metrics.same_size and judgement.metrics.psnr_outside < PSNR_CAP
    assert len({j.scores.raw for j in judgements}) > 1  # seeds sample different replies


def test_an_unconstrained_random_model_yields_judge_errors_not_scores(tiny_vlm, astronaut):
    judge = VLMJudge(JudgeSettings(engine="transformers", model=tiny_vlm, constrained=False, image_size=64,
                                   max_new_tokens=24, max_attempts=1))
    scores = judge.judge_batch([JudgeRequest(astronaut, astronaut, "do nothing")])[0]
    assert scores.total is None and scores.error
    with pytest.raises(JudgeError, match="judge/transformers"):
        judge(astronaut, astronaut, "do nothing")
