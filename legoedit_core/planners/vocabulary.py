"""The planner's one vocabulary (``vocabulary.toml``) and the words of an instruction tagged with it.

``tokens`` splits an instruction into words, numbers, quoted text and punctuation, each with its place in the
instruction (so a decline can quote the user's own words). Misspelt words are put right against a real English word
list (pyspellchecker's frequency dictionary) and this vocabulary: only a token that is no word at all is corrected,
so "older" stays "older" and "blurr" becomes "blur". ``tag`` finds every vocabulary phrase in a run of words,
longest first.
"""

from __future__ import annotations

import difflib
import functools
import math
import re
import tomllib
from collections.abc import Collection
from dataclasses import dataclass
from importlib import resources
from typing import Any

import lemminflect

from legoedit_core.bricks.cpu.colors import colour_words

Meaning = tuple[str, ...]  # the path of a phrase in the vocabulary: ("verbs", "remove"), ("adjust", "contrast", "up")


@dataclass(frozen=True)
class Token:
    """One piece of the instruction: ``text`` as written (at ``start``:``end``), ``word`` as read (lower-case,
    shorthand expanded, misspelling put right); ``kind`` is word, number, quote, caps or punct."""

    text: str
    start: int
    end: int
    word: str
    kind: str


@dataclass(frozen=True)
class Tag:
    """A vocabulary phrase found over tokens ``start``..``end`` (exclusive) with every meaning it has."""

    start: int
    end: int
    meanings: tuple[Meaning, ...]

    def has(self, *path: str) -> bool:
        return any(m[: len(path)] == path for m in self.meanings)

    def get(self, *path: str) -> Meaning | None:
        return next((m for m in self.meanings if m[: len(path)] == path), None)


class Vocabulary:
    """The word classes of ``vocabulary.toml``: phrases -> meanings, plus the tables of values."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data
        self.shorthands: dict[str, str] = data["shorthands"]
        self.phrases: dict[tuple[str, ...], list[Meaning]] = {}
        self._walk(data, ())
        self.longest = max(len(p) for p in self.phrases)
        self.words = frozenset(w for phrase in self.phrases for w in phrase) | set(self.shorthands.values()) | (
            colour_words())  # the recolour brick's colour names are words to spell towards too

    def _walk(self, node: Any, path: tuple[str, ...]) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if path == () and key == "shorthands":
                    continue
                self._walk(value, (*path, key))
        elif isinstance(node, list):
            meaning = path[:-1] if path[-1] == "words" else path
            for phrase in node:
                self.phrases.setdefault(tuple(phrase.split()), []).append(meaning)
        elif isinstance(node, str | float | int) and path[0] in ("comparatives", "factors", "aspects"):
            self.phrases.setdefault(tuple(path[1].split()), []).append(path)

    def undoable(self, kind: str) -> dict[str, Any]:
        return self.data["undoable"][kind]

    def not_subject(self, head: str) -> str | None:
        """Why a named thing is not a photo's main subject: "setting", "part" or "surface" (None: it may be)."""
        meanings = self.phrases.get(tuple(head.split()), [])
        return next((m[1] for m in meanings if m[0] == "not_subject"), None)

    def phrase_at(self, words: list[str], i: int, cls: str) -> Tag | None:
        """The longest phrase of class ``cls`` starting at position ``i``, or None."""
        for length in range(min(self.longest, len(words) - i), 0, -1):
            meanings = [m for m in self.phrases.get(tuple(words[i : i + length]), []) if m[0] == cls]
            if meanings:
                return Tag(i, i + length, tuple(meanings))
        return None

    def tag(self, words: list[str]) -> list[Tag | None]:
        """For each position, the longest vocabulary phrase starting there (None where none does)."""
        found: list[Tag | None] = []
        for i in range(len(words)):
            tag = self._split_verb(words, i)
            for length in () if tag is not None else range(min(self.longest, len(words) - i), 0, -1):
                meanings = self.phrases.get(tuple(words[i : i + length]))
                if meanings:
                    tag = Tag(i, i + length, tuple(meanings))
                    break
            verbs = [] if tag is not None else [m for stem in _stems(words[i]) for m in self.phrases.get((stem,), ())
                                                if m[0] in ("verbs", "adjust")]
            if tag is not None and words[i] == "pad" and tag.end == i + 1 and (
                    words[i + 1 : i + 2] == [] or words[i + 1] not in _PADDED):
                tag = without_verbs(tag)  # "an empty pad", "the sky and pad behind it": the launch pad
            if tag is not None and tag.end == i + 1 and tag.has("verbs") and i and (words[i - 2 : i] == [
                    "nice", "and"] or words[i - 1] in ("very", "really", "quite", "crystal", "too")):
                tag = without_verbs(tag)  # "has to stay nice and clear", "was very clear that": how it is
            ends = i + 1 == len(words) or words[i + 1] in (".", "?", "!", ",", "over")
            if words[i] == "left" and i and (words[i - 1] in ("is", "are", "be", "was", "were", "gets", "stays") or (
                    ends and {"there's", "there", "only", "just", "still", "hint", "bit", "touch"} & set(words[:i]))):
                tag = None  # "only the backdrop is left", "just a hint of green left": what remains, no side
            if tag is not None and words[i] == "no" and i and words[i - 1] in _BEING and i + 1 < len(words) and (
                    colour_words() & {words[i + 1]} or any(m[0] in ("adjust", "problems") for m in self.phrases.get(
                        (words[i + 1],), ()))):
                tag = None  # "there is no blue in it", "there's no contrast": a tone missing, not a removal
            found.append(Tag(i, i + 1, (verbs[0],)) if verbs else tag)  # "needs removing", "cropped", "brightening"
        return _particles(words, found, self.phrases)

    def _split_verb(self, words: list[str], i: int) -> Tag | None:
        """A two-word verb split by its object pronoun ("tone it down", "turn them up"), over all three words."""
        if i + 2 >= len(words) or words[i + 1] not in ("it", "them", "this", "that"):
            return None
        meanings = self.phrases.get((words[i], words[i + 2]), [])
        return Tag(i, i + 3, tuple(meanings)) if any(m[0] == "verbs" for m in meanings) else None


def without_verbs(tag: Tag, keep: Collection[str] = ()) -> Tag | None:
    """``tag`` with its verb meanings dropped (but those in ``keep``): where its word names a thing or says how one
    is; None when no meaning is left."""
    meanings = tuple(m for m in tag.meanings if m[0] != "verbs" or m[1] in keep)
    return Tag(tag.start, tag.end, meanings) if meanings else None


_BEING = ("is", "are", "was", "were", "there's", "it's", "there", "theres", "has", "have")


def _particles(words: list[str], found: list[Tag | None], phrases: dict[tuple[str, ...], list[Meaning]]
               ) -> list[Tag | None]:
    """A two-word verb split by a tone it changes ("pull the saturation back", "turn the contrast down"): the verb
    word carries the whole verb's meaning and its particle says nothing more."""
    for i in range(len(words) - 3):
        meanings = phrases.get((words[i], words[i + 3]), [])
        tone = found[i + 2] is not None and found[i + 2].has("adjust")  # type: ignore[union-attr]
        if words[i + 1] in ("the", "its", "her", "his", "that", "this") and tone and any(
                m[:2] in (("verbs", "increase"), ("verbs", "decrease")) for m in meanings):
            found[i] = Tag(i, i + 1, tuple(m for m in meanings if m[0] == "verbs"))  # not "cut the saturation
            # in half": "cut in" crops only said together
            found[i + 3] = Tag(i + 3, i + 4, (("filler",),))
    return found


_PADDED = ("it", "them", "this", "that", "the", "to", "out", "with", "a", "an", "by", "all", "each", "evenly", "round",
           "around", "into", "so", "up")  # what "pad" pads ("pad it", "pad to square"): else it is a launch pad


def _stems(word: str) -> list[str]:
    """The plain forms an inflected verb may have ("removing" remove, "cropped" crop, "blurred" blur)."""
    for ending in ("ing", "ed"):
        if word.endswith(ending) and len(word) > len(ending) + 2:
            stem = word[: -len(ending)]
            doubled = [stem[:-1]] if len(stem) > 2 and stem[-1] == stem[-2] else []
            return [stem, stem + "e", *doubled]
    return []


@functools.cache
def vocabulary() -> Vocabulary:
    """The vocabulary shipped with the package (read once)."""
    text = resources.files("legoedit_core.planners").joinpath("vocabulary.toml").read_text(encoding="utf-8")
    return Vocabulary(tomllib.loads(text))


@functools.cache
def _checker() -> Any:
    from spellchecker import SpellChecker

    return SpellChecker(distance=1)


def _closeness(typed: str, word: str) -> float:
    """How likely a slip ``typed`` is for ``word`` (one edit apart): a letter typed twice ("blurr") 3, letters swapped
    ("nosie") or a letter left out ("spon") 2, a vowel for a vowel or a letter for one that sounds alike ("gradiant",
    "reduse") 1.5, another letter too many 1, another letter 0."""
    if len(word) == len(typed) and sorted(typed) == sorted(word):
        return 2
    if len(word) == len(typed) - 1:
        doubled = any(typed[i - 1] == typed[i] and typed[:i] + typed[i + 1 :] == word for i in range(1, len(typed)))
        return 3 if doubled else 1
    if len(word) == len(typed) + 1:
        return 2
    a, b = next((a, b) for a, b in zip(typed, word, strict=True) if a != b)
    alike = a in "aeiou" and b in "aeiou" or {a, b} in ({"s", "c"}, {"c", "k"}, {"s", "z"})
    return 1.5 if alike else 0


def can_be_noun(word: str, written: str = "") -> bool:
    """Whether ``word`` can name a thing: a noun in lemminflect's English lexicon, or a word it does not know that
    is ``written`` with a capital (a name). "crazy", "roughly", "about" and "ugh" cannot, so they are never taken for
    a thing to edit."""
    forms = lemminflect.getAllLemmas(word.removesuffix("'s").removesuffix("s'") or word)
    return "NOUN" in forms or "PROPN" in forms or not forms and written[:1].isupper()


def can_describe(word: str) -> bool:
    """Whether ``word`` can describe a thing or a change: an adjective, adverb or noun in lemminflect's lexicon
    ("shiny", "obviously", "glass"), or a word it does not know."""
    forms = lemminflect.getAllLemmas(word)
    return not forms or bool({"ADJ", "ADV", "NOUN"} & set(forms))


def can_be_adjective(word: str) -> bool:
    """Whether ``word`` is an adjective in lemminflect's English lexicon ("empty", "soft", "grey")."""
    return "ADJ" in lemminflect.getAllLemmas(word)


def can_be_verb(word: str) -> bool:
    """Whether ``word`` is a verb in lemminflect's English lexicon ("pop", "stick", "slap")."""
    return "VERB" in lemminflect.getAllLemmas(word)


def is_word(word: str) -> bool:
    """Whether ``word`` is in the vocabulary or the English word list."""
    return word in vocabulary().words or bool(_checker().known([word]))


@functools.lru_cache(maxsize=8192)
def spell(word: str) -> str:
    """``word`` if it is a word (in the English word list or the vocabulary), else its correction: a vocabulary word
    one edit away, else the most frequent English word one edit away, else a close vocabulary word; else as is."""
    vocab = vocabulary()
    if len(word) < 3 or not word.isalpha() or word in vocab.words:
        return word
    checker = _checker()
    if checker.known([word]):
        return word
    near = checker.edit_distance_1(word)
    candidates = sorted((near & vocab.words) | checker.known(near))
    if candidates:  # a noisy channel: how likely the slip ("nosie": noise, "spon": spoon) times how common the word
        # ("fase": face, not false; "doun": down, not don), a word of the vocabulary or a phrase of its own first
        return max(candidates, key=lambda w: _closeness(word, w) + 0.3 * math.log10(
            checker.word_usage_frequency(w) + 1e-9) + (w in vocab.words) + 0.5 * ((w,) in vocab.phrases))
    close = difflib.get_close_matches(word, sorted(w for w in vocab.words if len(w) > 3), n=1, cutoff=0.85)
    return close[0] if close else word


_PIECES = re.compile(
    r"(?P<quote>\"[^\"]+\"|“[^”]+”|‘[^’]+’|(?<![A-Za-z])'[^']+'(?![A-Za-z]))"
    r"|(?P<word>b/w|b&w|[^\W\d_]+(?:'[^\W\d_]+)?)"
    r"|(?P<money>[$€£¥]\s?\d+(?:[.,]\d+)?)"  # a price to write: "$19.99"
    r"|(?P<copyright>\([cC]\)|©)"  # a copyright line to write: "(c) Jo Lee 2024"
    r"|(?P<number>(?:(?<![\w.])[+-](?=\d))?\d+(?:\.\d+)?)"  # "+15%": a signed change
    r"|(?P<arrow>->)"
    r"|(?P<punct>[,;.!?:%°&+()]|(?<=\s)[-–—](?=\s))")


# Capitals that are a term, not words to write ("high ISO noise", "the US flag", "make it HDR").
_ACRONYMS = {"OK", "TV", "ISO", "EV", "HDR", "RGB", "DPI", "PPI", "JPG", "JPEG", "PNG", "US", "USA", "UK", "ID", "BG",
             "A4", "A3", "A5"}
_STRESSED = {"so", "too", "very", "really", "not", "only", "just", "all", "way", "much", "more", "less", "no"}


def _emphasis(text: str, instruction: str, start: int) -> bool:
    """Whether a word in capitals is only stressed ("SO orange", "blur it HEAVILY"): an intensifier or hedge of the
    vocabulary standing alone, not words to write ("SALE", "OPEN DAY")."""
    meanings = vocabulary().phrases.get((text.lower(),), [])
    before, after = instruction[:start].split()[-1:], instruction[start + len(text) :].split()[:1]
    alone = not any(w.isupper() and len(w) > 1 for w in before + after)
    return alone and (text.lower() in _STRESSED or any(m[0] == "strength" for m in meanings))


def tokens(instruction: str) -> list[Token]:
    """The instruction as tokens, words read (lower-case, shorthand expanded, misspelling put right)."""
    vocab = vocabulary()
    found = []
    for match in _PIECES.finditer(instruction):
        kind, text = match.lastgroup or "punct", match.group(0)
        word = text.lower()
        if kind == "arrow":
            kind, word = "word", "to"
        elif text in ("&", "+"):
            kind, word = "word", "and"
        elif kind == "quote":
            word = text[1:-1]
        elif kind == "money":
            kind = "caps"  # words to write, as written
        elif kind == "copyright":
            kind, word = "word", "©"
        elif kind == "word":
            if text.isupper() and len(text) > 1 and text not in _ACRONYMS and not _emphasis(text, instruction,
                                                                                               match.start()):
                kind = "caps"
            word = word.replace("’", "'")
            word = vocab.shorthands.get(word, word)
            if kind == "word" and "'" not in word:
                word = vocab.shorthands.get(spell(word), spell(word))  # "sute" -> "suite" -> "suit"
        if kind == "word" and found and found[-1].word == word and (word, word) not in vocab.phrases:
            continue  # "a tiny tiny bit", "really really dark": said twice for stress, read once
        found.append(Token(text, match.start(), match.end(), word, kind))
    return _counted(_uncontracted(found))


_STATED = ("too", "so", "very", "really", "quite", "a", "kind", "kinda", "looking", "gone", "getting", "way", "far",
           "blown", "washed", "faded", "overexposed", "underexposed", "such", "rather", "pretty", "almost", "totally",
           "completely", "still", "not", "all")


def _uncontracted(found: list[Token]) -> list[Token]:
    """ "the cup's too red": a noun's "'s" before how it is, read as "is" (a possessive stays one word)."""
    out: list[Token] = []
    for k, t in enumerate(found):
        after = found[k + 1].word if k + 1 < len(found) else ""
        stated = after in _STATED or not can_be_noun(after) and can_describe(after)  # "too red", "blown out"
        if t.kind == "word" and t.word.endswith("'s") and len(t.word) > 3 and stated and t.word not in (
                "it's", "that's", "there's", "what's", "he's", "she's"):
            out += [Token(t.text[:-2], t.start, t.end - 2, t.word[:-2], "word"), Token("is", t.end - 2, t.end, "is",
                                                                                      "word")]
        elif t.word == "its" and stated:
            out.append(Token(t.text, t.start, t.end, "it's", "word"))  # "its blurry": it is, the apostrophe left out
        else:
            out.append(t)
    return out


_NUMBER_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
                 "ten": 10, "fifteen": 15, "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60,
                 "ninety": 90}


def _counted(found: list[Token]) -> list[Token]:
    """Number words before a unit read as numbers ("three degrees", "twenty percent"); "this one" stays a word."""
    phrases = vocabulary().phrases
    counted = [t.word in _NUMBER_WORDS and k + 1 < len(found) and any(
        m[0] == "units" for m in phrases.get((found[k + 1].word,), ())) for k, t in enumerate(found)]
    return [Token(t.text, t.start, t.end, str(_NUMBER_WORDS[t.word]), "number") if number else t
            for t, number in zip(found, counted, strict=True)]
