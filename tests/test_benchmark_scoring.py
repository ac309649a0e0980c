"""How ``benchmarks/planner_understanding.py`` compares a row's expected literals with a plan's."""

from __future__ import annotations

import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "planner_understanding.py"
spec = importlib.util.spec_from_file_location("planner_understanding", SCRIPT)
scoring = importlib.util.module_from_spec(spec)
spec.loader.exec_module(scoring)


def test_a_place_written_with_a_space_is_the_bricks_hyphenated_choice():
    assert scoring.matches("bottom right", ["bottom-right"])
    assert scoring.matches("Top Left", ["top-left"])
    assert not scoring.matches("top left", ["top-right"])


def test_british_spellings_match_the_bricks_us_words():
    assert scoring.matches("watercolour", ["watercolor painting"])
    assert scoring.matches("centre", ["center"])
    assert scoring.matches("grey", ["dark gray"])
    assert not scoring.matches("navy", ["teal"])


def test_numbers_are_bounded_and_strings_never_match_numbers():
    assert scoring.matches([1.05, 1.3], [1.2])
    assert not scoring.matches([1.05, 1.3], [1.4, "1.2"])
    assert not scoring.matches("red", [0.5])
