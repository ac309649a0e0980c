"""The judge: a VLM scoring edits against the ImageEdit-R1 and VIEScore rubrics, and model-free metrics."""

from legoedit_core.judge.judgement import Edit, Judgement, judge_edits, make_judge
from legoedit_core.judge.metrics import EditMetrics, edit_metrics
from legoedit_core.judge.scores import JudgeScores, parse_scores
from legoedit_core.judge.settings import JudgeSettings
from legoedit_core.judge.vlm import JudgeError, JudgeRequest, VLMJudge

__all__ = ["Edit", "EditMetrics", "JudgeError", "JudgeRequest", "JudgeScores", "JudgeSettings", "Judgement",
           "VLMJudge", "edit_metrics", "judge_edits", "make_judge", "parse_scores"]
