"""Understanding by example: a clause the vocabulary does not cover is ranked against exemplar phrasings of each
intent with the bundled sentence-embedding model (all-MiniLM-L6-v2, offline on CPU).

Each intent is a partial reading (the ``Clause`` fields it sets: action, attribute, direction, value) and ways
people say it. Intents with no reading are changes this planner declines (pose, expressions, added objects,
weather, vague wishes), with what the profile can do instead. A clause whose best match is below ``threshold``, or
not ``margin`` ahead of the best different intent, is not understood. The phrasings are written for this file;
none is taken from an evaluation set (docs/builder.md, "Evaluation").
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

Intent = tuple[dict[str, Any] | None, str, tuple[str, ...]]  # (reading, or None: decline; instead; phrasings)


def _tone(attribute: str, direction: int) -> dict[str, Any]:
    return {"action": "adjust", "attribute": attribute, "direction": direction}


EXEMPLARS: dict[str, Intent] = {
    "brighter": (_tone("brightness", 1), "", (
        "let more light in", "it is too murky", "open up the dark areas", "the shadows are too deep",
        "give it more exposure", "it is hard to see anything")),
    "darker": (_tone("brightness", -1), "", (
        "it is blinding", "take the exposure down", "the highlights are too hot", "make it moodier and dimmer")),
    "more contrast": (_tone("contrast", 1), "", (
        "it needs more depth between lights and darks", "deepen the blacks", "it looks grey and lifeless",
        "give it more bite", "stronger contrast")),
    "less contrast": (_tone("contrast", -1), "", (
        "the shadows are too crushed", "soften the tonal range", "it is too contrasty", "calmer tones")),
    "more saturated": (_tone("saturation", 1), "", (
        "the colours need to be stronger", "intensify the colours", "turn up the colour", "colours look tired",
        "bolder colours", "more colour intensity")),
    "less saturated": (_tone("saturation", -1), "", (
        "the colours are screaming", "pull the colour back", "quieter colours", "less colour intensity")),
    "warmer": (_tone("temperature", 1), "", ("give it a golden glow", "it feels icy", "sunnier tones",
                                             "a cosy warm feel")),
    "cooler": (_tone("temperature", -1), "", ("give it a cold blue feel", "it feels too hot", "icy tones",
                                              "a wintry cool cast")),
    "sharpen": ({"action": "sharpen"}, "", (
        "bring out fine texture", "it is a little mushy", "make the details pop out", "more clarity",
        "crisper edges please")),
    "denoise": ({"action": "denoise"}, "", (
        "get rid of the speckles", "it is full of grain", "clean up the sensor noise", "smooth out the noise")),
    "black and white": ({"action": "greyscale"}, "", ("drain every colour", "shades of grey only",
                                                      "like an old newspaper photo")),
    "pencil sketch": ({"action": "style", "value": "pencil sketch"}, "", (
        "like an artist drew it with graphite", "a sketchbook version")),
    "cartoon": ({"action": "style", "value": "cartoon"}, "", ("like a kids' animation", "toonish look")),
    "blur faces": ({"action": "hide"}, "", (
        "nobody should be recognisable", "keep their identities private", "faces must not be identifiable")),
    # what the photo is for or who asked: context, no edit (the edit is in another clause)
    "context": ({"action": "remark"}, "", (
        "we are printing it for the office wall", "it is going on the front of the card", "the client wants to see "
        "options", "I need a clean copy for the template", "it goes in the sidebar of the page", "our shop only "
        "accepts square pictures", "do it anyway", "can you do that for me", "it is for a talk next week",
        "we are not allowed to show names", "my boss asked for this", "it will hang in the hallway")),
    # changes no brick here makes: declined with the reason
    "a wish that names no edit": (None, "name the change: brighter, more contrast, a style, a new background", (
        "make it look amazing", "spruce it up", "make it more appealing", "give it some wow", "polish it",
        "make it look expensive", "jazz it up", "work your magic on it")),
    "a pose change": (None, "rotate or flip the whole photo", (
        "have him wave", "get her to look over her shoulder", "make the dog lie down", "straighten his posture")),
    "an expression change": (None, "adjust the tone, blur or smooth the face", (
        "make him look cheerful", "give her a grin", "make the baby giggle")),
    "adding something that is not in the photo": (None, "add text, a border or a new plain background", (
        "give her sunglasses", "there should be a boat on the lake", "stick a party hat on him",
        "have a balloon floating above")),
    "a weather, season or time-of-day change": (None, "make it warmer, cooler, brighter or darker", (
        "as if it were midnight", "make it look like a blizzard", "a scorching summer afternoon")),
}


VERBATIM = 0.95


class Embedder(Protocol):
    def embed(self, texts: Sequence[str]) -> np.ndarray: ...


@dataclass(frozen=True)
class Match:
    """The nearest intent to a clause: its reading (None: a change to decline, with what to do ``instead``), the
    exemplar it was nearest, the cosine similarity, and whether it clears the threshold and margin."""

    intent: str
    reading: dict[str, Any] | None
    instead: str
    exemplar: str
    similarity: float
    confident: bool


class ExemplarRanker:
    """Ranks clauses against ``EXEMPLARS`` with an embedding model (lazily embedded, remembered per clause).

    One ranker serves every thread that plans with its planner (the flow's task threads): its lock makes the
    exemplars be embedded once and keeps the remembered matches consistent."""

    def __init__(self, embedder: Embedder, threshold: float = 0.62, margin: float = 0.04,
                 cache_size: int = 10_000) -> None:
        self.embedder = embedder
        self.threshold, self.margin = threshold, margin
        self.phrasings = [(intent, phrase) for intent, (_, _, phrases) in EXEMPLARS.items() for phrase in phrases]
        self._vectors: np.ndarray | None = None
        self._cache: dict[str, Match] = {}
        self.cache_size = cache_size
        self._lock = threading.Lock()

    @property
    def remembered(self) -> int:
        """How many distinct clauses have been ranked (and are remembered)."""
        return len(self._cache)

    def rank(self, clauses: Sequence[str]) -> list[Match]:
        """The nearest intent of each clause (one embedding call for the clauses not seen before)."""
        with self._lock:
            if self._vectors is None:
                self._vectors = self.embedder.embed([phrase for _, phrase in self.phrasings])
            new = [c for c in dict.fromkeys(clauses) if c not in self._cache]
            if new:
                similarities = self.embedder.embed(new) @ self._vectors.T
                if len(self._cache) + len(new) > self.cache_size:
                    self._cache.clear()
                for clause, row in zip(new, similarities, strict=True):
                    self._cache[clause] = self._match(row)
            return [self._cache[c] for c in clauses]

    def _match(self, row: np.ndarray) -> Match:
        order = np.argsort(-row)
        intent, phrase = self.phrasings[order[0]]
        rival = next((float(row[i]) for i in order[1:] if self.phrasings[i][0] != intent), -1.0)
        best = float(row[order[0]])
        # a near-verbatim match stands even beside a close rival ("more saturation" / "less saturation")
        confident = best >= self.threshold and (best - rival >= self.margin or best >= VERBATIM)
        reading, instead, _ = EXEMPLARS[intent]
        return Match(intent, reading, instead, phrase, best, confident)
