"""Understanding by example: a clause no reader or family recognises is ranked against exemplar phrasings of each
intent with the bundled sentence-embedding model (all-MiniLM-L6-v2, offline on CPU).

Each intent has a canonical clause that the rule families parse ("more saturated") and the ways people say it
("make the colours pop"). Intents with no canonical clause are the changes this planner declines (pose,
expressions, added objects, weather, vague wishes): a clause nearest to one of those is declined with that reason,
never approximated. A clause whose best match is below ``threshold``, or not ``margin`` ahead of the best
different intent, is not understood.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

# intent -> (canonical clause, or None for a change to decline, with the reason; phrasings)
EXEMPLARS: dict[str, tuple[str | None, tuple[str, ...]]] = {
    "brighter": ("brighter", (
        "brighten it", "increase the exposure", "lift the shadows", "it is too dark", "more light", "lighter please",
        "raise the brightness", "open up the shadows", "expose it brighter")),
    "darker": ("darker", (
        "darken it", "reduce the exposure", "it is too bright", "less light", "lower the brightness",
        "tone down the highlights", "underexpose it")),
    "more contrast": ("more contrast", (
        "more punch", "punchier", "bump up the contrast", "deeper blacks and brighter whites", "it looks flat",
        "increase contrast", "crank the contrast")),
    "less contrast": ("less contrast", (
        "it looks harsh", "flatten the contrast", "softer contrast", "lower the contrast", "less punchy")),
    "more saturated": ("more saturated", (
        "make the colours pop", "more vibrant colours", "boost the colours", "richer colours",
        "the colours look dull", "more saturation", "juicier colours", "more colourful")),
    "less saturated": ("less saturated", (
        "tone down the saturation", "mute the colours", "less saturation", "the colours are too strong",
        "calmer colours", "subdued colours")),
    "warmer": ("warmer", ("warm it up", "it looks too cold", "too blue", "warmer tones", "cosier colours")),
    "cooler": ("cooler", ("cool it down", "it looks too warm", "too yellow", "too orange", "cooler tones")),
    "sharpen": ("sharpen", (
        "enhance the details", "make it crisper", "more detail", "it looks soft", "bring out the detail",
        "clearer details", "make the edges crisp", "sharpness up")),
    "denoise": ("denoise", (
        "too grainy", "it is noisy", "remove the grain", "clean up the noise", "less grain", "noise reduction",
        "reduce the speckles")),
    "black and white": ("make it black and white", (
        "black and white", "monochrome version", "no colour at all", "greyscale", "drain all the colour")),
    "pencil sketch": ("turn it into a pencil sketch", (
        "make it look hand drawn", "a line drawing of it", "sketch it", "turn it into a drawing", "graphite drawing")),
    "cartoon": ("turn it into a cartoon", ("cartoonify", "comic book look", "toon it", "make it animated",
                                           "cel shaded look")),
    "watercolour": ("turn it into a watercolour painting", ("watercolour effect", "paint it in watercolours",
                                                            "aquarelle look")),
    "oil painting": ("turn it into an oil painting", ("oil paint look", "painted on canvas", "impasto effect")),
    "vintage": ("give it a vintage look", ("retro look", "old photo look", "seventies film look", "faded film")),
    "remove text": ("remove the text", (
        "without the text", "clean the writing off", "get rid of the watermark", "no words on it",
        "wipe the lettering", "remove the caption")),
    "blur faces": ("blur the faces", (
        "hide the faces", "anonymise the people", "make the faces unrecognisable", "pixelate the faces",
        "protect their identity")),
    "blur background": ("blur the background", ("portrait mode", "bokeh behind the subject",
                                                 "shallow depth of field", "soften what is behind her")),
    "remove background": ("remove the background", ("cut it out", "isolate the product", "knock out the backdrop",
                                                     "clipping path")),
    "flip": ("flip it horizontally", ("mirror it", "reverse left and right", "flop the image")),
    # changes no brick here can make: declined with the reason
    "a vague wish with no edit named": (None, (
        "make it better", "improve it", "fix it", "make it nicer", "make it look good", "enhance it",
        "make it pretty", "make it professional", "make it pop", "do your magic", "make it awesome")),
    "a pose change": (None, ("turn her head", "raise his arm", "make him sit", "change the pose", "look at the camera",
                             "make her stand up straight", "tilt the head")),
    "an expression change": (None, ("make her smile", "look happier", "close his eyes", "make him laugh",
                                    "a serious face")),
    "adding something that is not in the photo": (None, (
        "add a hat", "put a dog next to her", "add some birds", "include a coffee cup", "insert a tree",
        "add a moon in the sky", "give him a beard")),
    "a weather, season or time-of-day change": (None, (
        "make it snowy", "turn it into night", "golden hour lighting", "make it rain", "sunset mood",
        "autumn leaves", "foggy morning")),
    "a change of the subject's shape, size or age": (None, (
        "make her younger", "make him taller", "make the car bigger", "slim her down", "change the hairstyle")),
}


VERBATIM = 0.95


class Embedder(Protocol):
    def embed(self, texts: Sequence[str]) -> np.ndarray: ...


@dataclass(frozen=True)
class Match:
    """The nearest intent to a clause: its canonical clause (None: a change to decline), the exemplar it was
    nearest, the cosine similarity, and whether it clears the threshold and margin."""

    intent: str
    canonical: str | None
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
        self.phrasings = [(intent, phrase) for intent, (_, phrases) in EXEMPLARS.items() for phrase in phrases]
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
        return Match(intent, EXEMPLARS[intent][0], phrase, best, confident)
