"""Judge scores and the robust reading of a judge's reply.

Two rubrics are asked for in one reply:

- ImageEdit-R1: request fulfilment 0-4, image quality 0-3, preservation of what should not change 0-3; total 0-10.
- VIEScore: semantic consistency (SC) 0-10 and perceptual quality (PQ) 0-10; overall = sqrt(SC * PQ).

The reply should be a JSON object, but replies are read leniently: JSON inside code fences or prose, a truncated
object, or ``name: value`` lines all yield whatever scores they hold. A score that is missing or out of range is
never guessed: the total (or overall) it belongs to stays unset and the reason is recorded in ``errors``.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

# score name -> (maximum, the names a reply may use for it)
SCORES: dict[str, tuple[int, tuple[str, ...]]] = {
    "fulfilment": (4, ("fulfilment", "fulfillment", "request fulfilment", "request fulfillment",
                       "instruction following", "request_fulfilment", "request_fulfillment")),
    "quality": (3, ("quality", "image quality", "image_quality")),
    "preservation": (3, ("preservation", "consistency preservation", "preserve")),
    "semantic_consistency": (10, ("semantic_consistency", "semantic consistency", "sc")),
    "perceptual_quality": (10, ("perceptual_quality", "perceptual quality", "pq")),
}
RUBRIC = ("fulfilment", "quality", "preservation")
VIESCORE = ("semantic_consistency", "perceptual_quality")
_ALIASES = {alias: name for name, (_, aliases) in SCORES.items() for alias in aliases}
_NUMBER = r"(-?\d+(?:\.\d+)?)"
_LINE = re.compile(r"(?<![A-Za-z_])[\"']?(" + "|".join(sorted(map(re.escape, _ALIASES), key=len, reverse=True))
                   + r")[\"']?\s*(?:score)?\s*[:=]\s*" + _NUMBER, re.I)


@dataclass
class JudgeScores:
    """What one judge reply says about one edit. Unset scores are unknown, never zero."""

    fulfilment: float | None = None
    quality: float | None = None
    preservation: float | None = None
    semantic_consistency: float | None = None
    perceptual_quality: float | None = None
    reasoning: str = ""
    errors: list[str] = field(default_factory=list)
    raw: str = ""

    @property
    def total(self) -> float | None:
        """The ImageEdit-R1 total, 0-10: the three rubric scores added, or None if any is missing."""
        parts = [getattr(self, name) for name in RUBRIC]
        return None if None in parts else float(sum(parts))

    @property
    def overall(self) -> float | None:
        """The VIEScore overall, 0-10: the geometric mean of SC and PQ, or None if either is missing."""
        sc, pq = self.semantic_consistency, self.perceptual_quality
        return None if sc is None or pq is None else math.sqrt(sc * pq)

    @property
    def error(self) -> str | None:
        """Why the reply is not a complete score (None when it is)."""
        return "; ".join(self.errors) or None

    def as_dict(self) -> dict[str, Any]:
        scores = {name: getattr(self, name) for name in SCORES}
        return scores | {"total": self.total, "overall": self.overall, "reasoning": self.reasoning,
                         "error": self.error}


def _first_object(text: str) -> dict[str, Any] | None:
    """The first JSON object in ``text`` (code fences and surrounding prose are skipped), or None."""
    decoder = json.JSONDecoder()
    for start in (m.start() for m in re.finditer(r"\{", text)):
        try:
            value, _ = decoder.raw_decode(text[start:])
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict):
            return value
    return None


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str) and re.fullmatch(r"\s*" + _NUMBER + r"\s*(?:/\s*\d+)?\s*", value):
        return float(re.match(r"\s*" + _NUMBER, value).group(1))
    return None


def parse_scores(text: str) -> JudgeScores:
    """Read a judge reply; every score found is kept, and every one missing or invalid is named in ``errors``."""
    scores = JudgeScores(raw=text)
    found: dict[str, Any] = {}
    data = _first_object(text)
    if data is not None:
        for key, value in data.items():
            name = _ALIASES.get(str(key).strip().lower())
            if name is not None:
                found[name] = value
        reasoning = data.get("reasoning") or data.get("reason") or data.get("explanation")
        scores.reasoning = reasoning if isinstance(reasoning, str) else ""
    for alias, number in _LINE.findall(text):  # name: value lines, and whatever a broken JSON object still holds
        found.setdefault(_ALIASES[alias.lower()], number)
    if not found:
        scores.errors.append("no scores found in the reply")
        return scores
    for name, (maximum, _) in SCORES.items():
        if name not in found:
            scores.errors.append(f"{name} is missing")
            continue
        value = _number(found[name])
        if value is None:
            scores.errors.append(f"{name} is not a number: {found[name]!r}")
        elif not 0 <= value <= maximum:
            scores.errors.append(f"{name} {value:g} is outside 0-{maximum}")
        else:
            setattr(scores, name, value)
    return scores


REPEAT_CHUNK = 100


def reply_schema(max_reasoning_chars: int) -> dict[str, Any]:
    """The JSON Schema of a reply, for constrained decoding: bounded reasoning first, then integer scores."""
    # At most REPEAT_CHUNK characters per bounded repeat: xgrammar's compiler fails on one repeat of about 200 or
    # more ("Check failed: per_rule_fsm_hashes"), which made every constrained judge call raise.
    chunks = -(-max_reasoning_chars // REPEAT_CHUNK)
    pattern = f"^[A-Za-z0-9 ,.;:'()-]{{0,{max_reasoning_chars}}}$" if chunks <= 1 else \
        f"^([A-Za-z0-9 ,.;:'()-]{{0,{REPEAT_CHUNK}}}){{0,{chunks}}}$"  # up to chunks x REPEAT_CHUNK characters
    properties: dict[str, Any] = {"reasoning": {"type": "string", "pattern": pattern}}
    properties |= {name: {"type": "integer", "enum": list(range(maximum + 1))}
                   for name, (maximum, _) in SCORES.items()}
    return {"type": "object", "properties": properties, "required": list(properties), "additionalProperties": False}
