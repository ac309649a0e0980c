"""Reading one clause's tokens into a ``Clause``: the action, the targets left once the action's words are taken,
the scope, the value, the amounts and the strength (see ``reading.py``)."""

from __future__ import annotations

from dataclasses import replace

from legoedit_core.planners.actions import ATTRIBUTE_NOUNS, ActionReader
from legoedit_core.planners.phrases import (
    DETERMINERS,
    fine_detail,
    inside,
    read_amounts,
    shows_more,
    split_targets,
    without_purpose,
)
from legoedit_core.planners.reading import Clause, colour_spans, tag_list
from legoedit_core.planners.vocabulary import Tag, Token, can_be_adjective, can_be_noun, vocabulary, without_verbs

# word classes that can be part of a target's words (everything else is the action's)
_VALUE_LEADS = {"into", "to", "like", "of", "made", "as", "look", "with", "in"}

_NOUN_ACTIONS = ("blur", "sharpen", "crop", "flip", "rotate", "resize", "denoise", "smooth")  # "give it a blur"


def _as_noun(tag: Tag) -> Tag | None:
    """A phrase after a determiner names a thing, not an action ("the strip", "the pad"): its verb meanings go."""
    if tag.start != tag.end - 1:
        return tag
    return without_verbs(tag, keep=_NOUN_ACTIONS)


def _names_after(word: str, tag: Tag | None) -> bool:
    """Whether a word names a thing a describing word before it is said of ("gradient", "glow")."""
    return tag is None and can_be_noun(word) and not can_be_adjective(word) or tag is not None and (
        tag.has("background_kinds"))


class ClauseReader(ActionReader):
    """Reads one clause; every token is either the action's (``used``) or part of a target."""

    def __init__(self, instruction: str, part: list[Token]) -> None:
        self.vocab = vocabulary()
        self.instruction = instruction
        self.clause = Clause(text=instruction[part[0].start : part[-1].end].strip(" ,"), action="unknown")
        self.part = without_purpose(part, tag_list([t.word for t in part]))
        self.words = [t.word for t in self.part]
        tags = tag_list(self.words)
        self.tags = [_as_noun(tag) if tag is not None and k and (self.words[k - 1] in DETERMINERS or tags[k - 1]
                                                                   is not None and tags[k - 1].has("finder_words")
                                                                   and can_be_noun(self.words[k])
                                                                   and not tag.has("verbs", "change")
                                                                   and not tag.has("verbs", "keep")
                                                                   or colour_spans(self.words[k - 1 : k]) and tag.has(
                                                                       "verbs", "remove"))
                     else tag for k, tag in enumerate(tags)]  # "the text strip", "the white strip", not "those
        # words go black"
        for k, tag in enumerate(self.tags[:-1]):
            if tag is not None and tag.has("verbs", "keep") and self.words[k + 1].endswith("ing") and self.tags[
                    k + 1] is None:
                self.tags[k] = None  # "I keep finding my eye wanders": goes on doing, keeps nothing
            if tag is not None and tag.has("problems") and not tag.has("problems", "background") and k and (
                    self.words[k - 1] in DETERMINERS and _names_after(self.words[k + 1], self.tags[k + 1])):
                self.tags[k] = None  # "a soft gradient": what the new thing is like, no problem of the photo
            if tag is not None and (tag.has("factors") or self.words[k] in ATTRIBUTE_NOUNS) and instruction[
                    part[k].end : part[k].end + 1] == "-":
                self.tags[k] = None  # "a double-page spread", "colour-neutral": a word of a compound
            if self.words[k] == "right" and tag is not None and tag.has("places") and self.words[k + 1] in (
                    "in", "into", "up", "down", "away", "now", "through", "over", "off", "round", "around") and not (
                    k and self.words[k - 1] in ("the", "to", "top", "bottom", "far", "lower", "upper")):
                self.tags[k] = Tag(k, k + 1, (("filler",),))  # "crop right in on her face": how close, no side
            if self.words[k] == "take" and tag is not None and tag.end == k + 1 and not {
                    "out", "off", "away", "down"} & set(self.words[k + 1 :]):
                self.tags[k] = None  # "take the tabby and brighten its fur": takes nothing away
            if tag is not None and tag.has("verbs") and k and self.words[k - 1] in ("there's", "is", "are") and (
                    k > 1 and self.words[k - 2] == "there" or self.words[k - 1] == "there's"):
                self.tags[k] = without_verbs(tag)  # "there is watermark at the bottom": a thing, not a verb
            if tag is not None and tag.has("verbs") and tag.end == k + 1 and k and self.words[k + 1] in (
                    "is", "looks", "seems", "feels") and (self.words[k - 1] in DETERMINERS or self.words[
                    k - 1].endswith("'s") or self.tags[k - 1] is None):
                self.tags[k] = without_verbs(tag)  # "the box's colour is too murky": a noun
            if self.words[k : k + 2] == ["has", "to"]:
                self.tags[k] = None  # "the backdrop has to be white": a request, not what it has
        self.used = [t.kind == "punct" and t.word not in "," for t in self.part]
        self.negated = self._negated()
        self.colours = [s for s in colour_spans(self.words) if not inside(self.tags[s[0]], s)
                        and all(self.part[k].kind == "word" for k in range(s[0], s[1]))]
        was = [(s, self._was_colour(s[0])) for s in self.colours if len(self.colours) > 1]
        for (_, end, _), marker in was:  # "red, not green", "teal instead of that dull red": its colour now
            if marker is not None:
                self.used[marker:end] = [True] * (end - marker)
        self.colours = [s for s, marker in was if marker is None] if was else self.colours

    # ------------------------------------------------------------------------------------------------ helpers

    def verbs(self) -> list[str]:
        return [t.get("verbs")[1] for t in self.found("verbs") if t.start not in self.negated  # type: ignore
                and not self._said_to_be(t) and self.words[t.start - 1 : t.start] not in (["when"], ["once"])]
        # "grainy when zoomed": when it shows, no zoom

    def _said_to_be(self, tag: Tag) -> bool:
        """Whether a verb's word only says what a thing is ("the dog looks blurry"), after a verb of being and no
        verb of change ("make the background blurry" asks)."""
        before = self.tags[: tag.start]
        if self.words[tag.start - 1 : tag.start] in (["getting"], ["being"], ["gets"]) and (any(
                t is not None and t.has("copulas") for t in before[-2:]) or self.words[tag.start - 1] == "gets"):
            return True  # "the crema is getting lost": what happens to it
        said = self.words[tag.start]
        if (said in ("getting", "gets", "got") or said.endswith(("ed", "en", "ing"))) and (
                before[-1:] and before[-1] is not None and before[-1].has("copulas")):
            return True  # "it is getting dark", "her name is written on it", "the towers are disappearing": what it
            # becomes, has or does
        return " ".join(self.words[tag.start : tag.end]) in ("blurry", "blurred", "out of focus", "soft") and any(
            t is not None and t.has("copulas") for t in before) and not any(
            t is not None and t.has("verbs", "change") for t in before)

    def _negated(self) -> set[int]:
        """Positions of verbs negated by the word before them ("don't crop", "without cropping")."""
        negated: set[int] = set()
        for tag in [t for t in self.tags if t is not None and t.has("negation")]:
            after = self.tags[tag.end] if tag.end < len(self.tags) else None
            if after is not None and after.has("verbs"):
                negated.add(after.start)
                negated.add(tag.start)
                for k in range(tag.start, after.end):
                    self.used[k] = True
        return negated

    def statement(self) -> bool:
        """A clause that states rather than asks: a copula and no verb ("it's too dark", "the fur looks soft")."""
        acts = any(self.found(c) for c in ("styles", "greyscale", "comparatives")) or any(
            self.words[t.start] not in ATTRIBUTE_NOUNS for t in self.found("adjust")) or any(
            self.found("undoable", "outpaint")) or shows_more(self.words) is not None  # "wider so there's more lawn"
        return bool(self.found("copulas")) and not self.verbs() and not acts

    def last_content(self) -> int:
        """The index of the last token that is not filler or punctuation."""
        for k in range(len(self.part) - 1, -1, -1):
            tag = self.tags[k]
            if self.part[k].kind != "punct" and not (tag is not None and tag.meanings == (("filler",),)):
                return k
        return -1

    # ------------------------------------------------------------------------------------------------ reading

    def read(self) -> Clause:
        c = self.clause
        self._strength()
        read_amounts(self, c)
        self._scope()
        c.action = self._action()
        for tag in self.found("verbs"):
            if tag.get("verbs")[1] in ("change", "increase", "decrease", "keep", "add", c.action):  # type: ignore[index]
                self.use(tag)
        for tag in self.found("aspects"):
            self.use(tag)
        self._set_aside()
        if c.action == "statement":  # "its saucer is such an ugly red": the saucer, which is red now
            said = [s[2] for s in self.colours if s[0] >= max(self._stated_about(), default=0)]
            c.targets = [replace(t, modifiers=(*t.modifiers, *said[:1])) for t in split_targets(
                self, self._stated_about())]
        elif c.action not in ("undoable", "remark", "unknown"):
            c.targets = split_targets(self, [k for k in range(len(self.part)) if not self.used[k]])
        elif c.action == "unknown" and self._only_names():
            c.action = "named"  # "just the hair, obviously": things named, for the clause before or after
            c.targets = split_targets(self, [k for k in range(len(self.part)) if not self.used[k]])
        if c.action in ("recolour", "tint") and c.value in ("grey", "gray") and all(
                t.kind == "whole" for t in c.targets):
            c.action, c.value = "greyscale", None  # "make everything else grey": no colour, not a grey paint
        if c.action == "keep" and all(t.kind == "whole" for t in c.targets):
            c.action = "remark"  # keeping nothing named asks for nothing
        if c.excluded and all(fine_detail(t) for t in c.excluded):
            c.excluded, c.scope = [], "whole" if c.scope == "except" else c.scope  # "but keep the edges crisp": how
        if self._second_change():
            c.action = "unknown"  # two changes read as one: declined in the user's words, never half done
        return c

    def _strength(self) -> None:
        data = self.vocab.data["strength"]
        found = self.found("strength")
        levels = ["slight" if self._limited(tag) else tag.get("strength")[1] for tag in found  # type: ignore[index]
                  if not any(other.start == tag.end for other in found)]  # "really barely noticeable": barely
        for tag in found:
            self.use(tag)
        if levels:  # "a little, but really noticeable": the strongest word says how much
            self.clause.strength = max(float(data[lv]["factor"]) for lv in levels if lv != "slight" or len(
                set(levels)) == 1)

    def _limited(self, tag: Tag) -> bool:
        """Whether a strength word is a limit ("not too much", "nothing too heavy", "not much at all"): keep it
        slight."""
        return any(self.words[k] == "nothing" or self.vocab.phrase_at(self.words, k, "negation") is not None and (
            self.words[k + 1] != "quite") for k in range(max(0, tag.start - 3), tag.start))  # "not quite all the
        # way": nearly all

    def _value_position(self, tag: Tag) -> bool:
        """Whether the phrase is what something becomes (last content word, or after into / to / like / of)."""
        lead = self.words[tag.start - 1] if tag.start > 0 else ""
        return tag.end - 1 >= self.last_content() or lead in _VALUE_LEADS

