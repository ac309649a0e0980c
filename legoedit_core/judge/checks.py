"""Verifiable edit checks: per action family, a measurement of the edited pixels that needs no model (in the spirit
of ImageEdit-R1's verifiable rewards).

The family comes from the instruction (one clause; an instruction of several steps is not checked), the region from
the masks the plan produced or, when it produced none, the user's mask:

- black and white: ``desaturated``, mean saturation in the region (or the image) at most 0.05;
- brighter / darker: ``brighter`` / ``darker``, mean luminance up / down by at least 0.03 (0-1 scale);
  ``highlights_kept`` / ``shadows_kept``, at most 5% of the pixels newly clipped to white / black;
- background blur: ``background_blurred``, high-frequency energy outside the subject mask at most 0.6 of the
  source's; ``subject_kept``, mean change inside at most 0.03;
- remove: ``region_changed``, mean change inside the mask at least 0.05;
- recolour: ``hue_matches``, half the region's pixels within 20 degrees of the target hue (white, grey, black:
  saturation and value near the target's);
- background to a colour ("change the background to white"): ``background_matches``, the same colour test on the
  background (outside the subject mask, off the seam); ``subject_kept``, mean change inside at most 0.03;
- text added (quoted text): ``text_read``, OCR (RapidOCR) reads it in the edit; ``text_new``, not in the source.

Families with a partial region add ``rest_kept``: mean change outside the region at most 0.02.

A result's score is the fraction of its checks that pass; ``failed`` names those that did not. No check applies (None)
to other families, to instructions of several steps, to edits that changed the image's size, and to families that
need a region when there is none.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import cv2
import numpy as np

from legoedit_core.bricks.cpu.colors import parse_color

DESATURATED = 0.05
LUMA_MARGIN = 0.03
CLIPPED = 0.05
BLUR_RATIO = 0.6
KEPT = 0.03
REST_KEPT = 0.02
CHANGED = 0.05
HUE_TOLERANCE = 20.0
TEXT_MATCH = 0.8


@dataclass
class CheckResult:
    """The checks of one family on one edit: each check's pass/fail, the measured values, and the score (0-1)."""

    family: str
    checks: dict[str, bool]
    measured: dict[str, float] = field(default_factory=dict)

    @property
    def score(self) -> float:
        return sum(self.checks.values()) / len(self.checks)

    @property
    def passed(self) -> bool:
        return all(self.checks.values())

    @property
    def failed(self) -> list[str]:
        return [name for name, ok in self.checks.items() if not ok]

    def as_dict(self) -> dict[str, object]:
        return asdict(self) | {"score": self.score, "failed": self.failed}


@dataclass
class _Edit:
    source: np.ndarray
    edited: np.ndarray
    region: np.ndarray | None  # boolean, image-sized; None when neither the plan nor the user gave a mask

    @property
    def partial(self) -> bool:
        """Whether the region is a part of the image (not empty, not nearly all of it)."""
        return self.region is not None and 0.0 < self.region.mean() < 0.95

    def target(self) -> np.ndarray:
        """Where a family that can apply anywhere is measured: the region when it is partial, else everywhere."""
        return self.region if self.partial else np.ones(self.source.shape[:2], bool)


def _change(edit: _Edit, where: np.ndarray) -> float:
    """Mean absolute change of the pixels at ``where``, 0-1 (0 when ``where`` is empty)."""
    if not where.any():
        return 0.0
    return float(np.abs(edit.source.astype(np.int16) - edit.edited.astype(np.int16))[where].mean() / 255.0)


def _hsv(image: np.ndarray) -> np.ndarray:
    """HSV with hue in degrees (0-360) and saturation and value in 0-1."""
    hsv = cv2.cvtColor(image, cv2.COLOR_RGB2HSV_FULL).astype(np.float64)
    return hsv * np.array([360.0 / 256.0, 1 / 255.0, 1 / 255.0])


def _luma(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float64) / 255.0


def _detail(image: np.ndarray) -> np.ndarray:
    """High-frequency energy per pixel: the absolute Laplacian of the grey image."""
    return np.abs(cv2.Laplacian(_luma(image), cv2.CV_64F, ksize=3))


def _rest_kept(edit: _Edit, result: CheckResult) -> None:
    """Add ``rest_kept`` (outside the region almost unchanged) when the region is a part of the image."""
    if edit.partial:
        result.measured["change_outside"] = _change(edit, ~edit.region)
        result.checks["rest_kept"] = result.measured["change_outside"] <= REST_KEPT


def _black_and_white(edit: _Edit, _: re.Match[str]) -> CheckResult:
    saturation = float(_hsv(edit.edited)[..., 1][edit.target()].mean())
    result = CheckResult("black and white", {"desaturated": saturation <= DESATURATED}, {"saturation": saturation})
    _rest_kept(edit, result)
    return result


def _luminance(direction: int) -> Callable[[_Edit, re.Match[str]], CheckResult]:
    name = "brighter" if direction > 0 else "darker"

    kept = "highlights_kept" if direction > 0 else "shadows_kept"

    def clipped(luma: np.ndarray) -> float:
        return float((luma >= 0.98).mean() if direction > 0 else (luma <= 0.02).mean())

    def check(edit: _Edit, _: re.Match[str]) -> CheckResult:
        where = edit.target()
        before, after = _luma(edit.source)[where], _luma(edit.edited)[where]
        delta, lost = float(after.mean() - before.mean()), clipped(after) - clipped(before)
        result = CheckResult(name, {name: delta * direction >= LUMA_MARGIN, kept: lost <= CLIPPED},
                             {"luminance_change": delta, "newly_clipped": lost})
        _rest_kept(edit, result)
        return result

    return check


def _background_blur(edit: _Edit, _: re.Match[str]) -> CheckResult | None:
    if not edit.partial:
        return None  # no subject mask: subject and background cannot be told apart
    background = cv2.erode((~edit.region).astype(np.uint8), np.ones((5, 5), np.uint8)) > 0  # off the seam
    if not background.any():
        return None
    before, after = float(_detail(edit.source)[background].mean()), float(_detail(edit.edited)[background].mean())
    ratio = after / before if before > 0 else 1.0
    kept = _change(edit, edit.region)
    return CheckResult("background blur", {"background_blurred": ratio <= BLUR_RATIO, "subject_kept": kept <= KEPT},
                       {"detail_ratio_outside": ratio, "change_inside": kept})


def _remove(edit: _Edit, _: re.Match[str]) -> CheckResult | None:
    if not edit.partial:
        return None  # nothing says where the removed thing was
    changed = _change(edit, edit.region)
    result = CheckResult("remove", {"region_changed": changed >= CHANGED}, {"change_inside": changed})
    _rest_kept(edit, result)
    return result


def _colour_matches(hsv: np.ndarray, colour: tuple[int, int, int]) -> tuple[bool, dict[str, float]]:
    """Whether pixels (HSV rows) have ``colour``: half of them within the hue tolerance, or for white, grey and black
    (no hue to match) low saturation and a value near the target's; with what was measured."""
    target = _hsv(np.array([[colour]], np.uint8))[0, 0]
    measured = {"target_hue": float(target[0])}
    if target[1] < 0.15:
        saturation, value = float(hsv[:, 1].mean()), float(hsv[:, 2].mean())
        measured |= {"saturation": saturation, "value": value, "target_value": float(target[2])}
        return bool(saturation <= 0.2 and abs(value - target[2]) <= 0.25), measured  # numpy's bool is not JSON's
    chromatic = hsv[hsv[:, 1] >= 0.15]
    distance = np.abs((chromatic[:, 0] - target[0] + 180.0) % 360.0 - 180.0)
    share = float((distance <= HUE_TOLERANCE).sum() / len(hsv))
    return bool(share >= 0.5), measured | {"share_on_hue": share}


def _recolour(edit: _Edit, match: re.Match[str]) -> CheckResult | None:
    colour = _colour_of(match.group("rest"))
    if colour is None:
        return None
    ok, measured = _colour_matches(_hsv(edit.edited)[edit.target()], colour)
    result = CheckResult("recolour", {"hue_matches": ok}, measured)
    _rest_kept(edit, result)
    return result


def _background_colour(edit: _Edit, match: re.Match[str]) -> CheckResult | None:
    colour = parse_color(match.group("colour"))
    if colour is None or not edit.partial:
        return None  # a scene, not a plain colour; or no subject mask to tell the background by
    background = cv2.erode((~edit.region).astype(np.uint8), np.ones((5, 5), np.uint8)) > 0  # off the seam
    if not background.any():
        return None
    ok, measured = _colour_matches(_hsv(edit.edited)[background], colour)
    kept = _change(edit, edit.region)
    return CheckResult("background colour", {"background_matches": ok, "subject_kept": kept <= KEPT},
                       measured | {"change_inside": kept})


def _colour_of(rest: str) -> tuple[int, int, int] | None:
    """The colour a recolouring clause ends with ("the sky orange", "the car to dark blue"), or None."""
    words = rest.split()
    for start in range(1, len(words)):
        head, tail = " ".join(words[:start]), re.sub(r"^(?:to|into|in|a|an)\s+", "", " ".join(words[start:]))
        if re.search(r"\b(?:background|backdrop)\b", head):
            return None  # a background change, not a recolouring
        if (colour := parse_color(tail)) is not None:
            return colour
    return None


def _normalised(text: str) -> str:
    return re.sub(r"[^0-9a-z]+", "", text.lower())


def _reads(lines: list[str], wanted: str) -> float:
    """How well OCR'd ``lines`` contain ``wanted``: 1 when it is a substring (letters and digits only), else the best
    similarity of a line or of all lines together."""
    wanted = _normalised(wanted)
    candidates = [_normalised(line) for line in lines] + [_normalised("".join(lines))]
    if any(wanted and wanted in candidate for candidate in candidates):
        return 1.0
    return max((difflib.SequenceMatcher(None, wanted, c).ratio() for c in candidates if c), default=0.0)


def _text_added(edit: _Edit, match: re.Match[str]) -> CheckResult:
    from legoedit_core.bricks.cpu.referring import read_text

    wanted = match.group("text")
    after, before = _reads(read_text(edit.edited), wanted), _reads(read_text(edit.source), wanted)
    return CheckResult("text added", {"text_read": after >= TEXT_MATCH, "text_new": before < TEXT_MATCH},
                       {"read_in_edit": after, "read_in_source": before})


Check = Callable[[_Edit, re.Match[str]], CheckResult | None]
# In order: the first family whose pattern matches the clause is checked.
FAMILIES: list[tuple[re.Pattern[str], Check]] = [
    (re.compile(r"\b(?:add|write|put|insert|place|overlay|print)\b.*?[\"“'‘](?P<text>[^\"”'’]+)[\"”'’]"),
     _text_added),
    (re.compile(r"black[- ]and[- ]white|\bb&w\b|gr[ae]y\s*scale|monochrome|colou?rless"
                r"|\b(?:remove|drop)\s+(?:the\s+|all\s+)?colou?rs?\b"), _black_and_white),
    (re.compile(r"\bblur\s+(?:out\s+)?(?:the\s+)?(?:background|backdrop)\b|\bdefocus\s+(?:the\s+)?background\b"
                r"|\b(?:background|backdrop)\s+(?:blurry|blurred|out of focus)\b|\bbokeh\b"), _background_blur),
    (re.compile(r"\b(?:brighten|brighter|lighten|lighter|more light|too dark|increase (?:the )?brightness)\b"),
     _luminance(1)),
    (re.compile(r"\b(?:darken|darker|dimmer|too bright|reduce (?:the )?brightness|decrease (?:the )?brightness)\b"),
     _luminance(-1)),
    (re.compile(r"^(?:remove|erase|delete|get rid of|take out|take away|eliminate)\s+"
                r"(?!(?:the\s+)?(?:background|backdrop)\b)"), _remove),
    (re.compile(r"^(?:make|turn|paint|colou?r|change|replace|set|swap)\s+(?:the\s+)?(?:background|backdrop)\s+"
                r"(?:to|into|with|for|in)?\s*(?:an?\s+)?(?:plain\s+|solid\s+)?(?P<colour>.+?)(?:\s+one)?$"),
     _background_colour),
    (re.compile(r"^(?:make|turn|paint|colou?r|change|recolou?r|dye)\s+(?P<rest>.+)$"), _recolour),
]
_STEPS = re.compile(r"\s*(?:;|\. |,? and then |, then | then |, also | and also )\s*"
                    r"|,?\s+and\s+(?=(?:make|turn|remove|erase|delete|change|replace|add|blur|crop|brighten|darken|"
                    r"sharpen|flip|rotate|resize|paint|colou?r|recolou?r)\b)")


def edit_check(source: np.ndarray, edited: np.ndarray, instruction: str,
               region: np.ndarray | None = None) -> CheckResult | None:
    """The verifiable check of an edit, or None where none applies (see the module docstring).

    ``region`` is a boolean image-sized mask: the plan's masks, or the user's mask when the plan made none.
    """
    if edited.shape != source.shape:
        return None
    text = re.sub(r"^(?:please|can you|could you)\s+", "", instruction.strip().lower().rstrip(".!"))
    if len([step for step in _STEPS.split(text) if step and step.strip(" ,")]) != 1:
        return None
    if region is not None and region.shape != source.shape[:2]:
        region = None
    for pattern, check in FAMILIES:
        if (match := pattern.search(text)) is not None:
            return check(_Edit(source, edited, region), match)
    return None
