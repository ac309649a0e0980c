"""What a clause asks that no classical brick does (a pose, an expression, a material, a new thing), read by
``ClauseReader`` (which this class is the base of): the kind of change and the words that ask for it."""

from __future__ import annotations

from legoedit_core.planners.phrases import shows_more
from legoedit_core.planners.values import ValueReader
from legoedit_core.planners.vocabulary import Tag, can_be_noun

_EDIT_NOUNS = {"boost", "lift", "bump", "nudge", "kick", "push", "tweak", "touch", "edit", "polish", "once", "refresh",
               "makeover", "cleanup", "clean", "go", "try", "look", "feel", "vibe", "glow", "tone", "finish",
               "treatment", "effect", "style", "bit", "little", "tad", "hint", "touchup", "retouch"}

_QUALITIES = {"difference", "detail", "details", "depth", "life", "punch", "definition", "texture", "separation",
              "light", "room", "space", "need", "reason", "problem", "issue", "change", "way", "point", "colour",
              "color", "focus", "sharpness", "warmth", "drama", "mood", "energy"}  # "there's no depth": a tone
SIZE_WORDS = {"bigger": 1, "larger": 1, "wider": 1, "smaller": -1, "narrower": -1}


class UndoableReader(ValueReader):
    """The undoable-change half of ``ClauseReader``."""

    def _value_position(self, tag: Tag) -> bool:
        """Whether the phrase is what something becomes (``ClauseReader`` knows the clause's shape)."""
        raise NotImplementedError

    def _undoable(self, verbs: list[str]) -> tuple[str, Tag] | None:
        problem = next((t.start for t in self.found("problems")), None)
        if problem is not None and not verbs and all(t.start > problem for t in self.found("undoable")):
            return None  # "I can barely make out her smile", "so grainy it looks like snow": what the problem does
        for kind in ("colourise", "artist", "expression", "outpaint", "generate", "retouch", "translate"):
            for tag in self.found("undoable", kind):
                if kind == "colourise" and ("keep" in verbs or set(self.words) & set(self.vocab.data["verbs"]["keep"])):
                    continue  # "keep the rest in colour": what stays as it is
                return kind, tag
        for tag in self.found("undoable", "pose"):
            if tag.has("undoable", "pose", "body"):
                moving = {"rotate", "change", "add"} & set(verbs) and not {"remove", "blur", "hide", "crop"} & set(
                    verbs)
                if moving and not self.colours:
                    return "pose", tag
                continue
            if not (tag.has("verbs") or tag.has("filler") or self._placed_on(tag)):
                return "pose", tag
        wider = shows_more(self.words)
        if wider is not None:
            return "outpaint", Tag(wider, wider + 1, (("undoable", "outpaint"),))
        for tag in self.found("undoable", "transform"):
            if self._value_position(tag):
                return "transform", tag
        made_of = "made" in self.words and "of" in self.words[self.words.index("made") :]  # "made of solid gold"
        for tag in self.found("undoable", "material"):
            editing = {"remove", "blur", "crop", "hide", "sharpen", "keep"} & set(verbs)  # "leave the wood": a thing
            if (self._value_position(tag) or made_of) and not editing:
                return "material", tag
        for tag in self.found("undoable", "age"):
            resizing = self.words[tag.start] in SIZE_WORDS and (
                self.clause.amounts or self.found("scope", "whole") or "resize" in verbs)
            if not resizing and not ({"crop"} & set(verbs)):
                return "age", tag
        if not ({"remove", "blur", "crop", "hide", "sharpen", "denoise"} & set(verbs)):
            for tag in self.found("undoable", "weather"):
                if tag.has("undoable", "weather") and not self.found("background"):
                    return "weather", tag
        pronoun_only = all(self.tags[k] is not None and (self.tags[k].has("pronouns") or self.tags[k].has("filler"))
                           or self.words[k] in ("colour", "color", "flat", "plain", "solid", "shade", "tone", "for",
                                                "with", "a", "an")
                           for k in range(len(self.part)) if self.part[k].kind == "word" and not (
                               self.tags[k] is not None and self.tags[k].has("verbs"))
                           and not any(a <= k < b for a, b, _ in self.colours))
        to_colour = any(start and self.words[start - 1] in ("to", "into", "for", "with") for start, _, _ in (
            self.colours))
        if "replace" in verbs and self.colours and (pronoun_only or to_colour and not self.found("background")):
            return None  # "... and replace it with blue", "swap her suit to royal blue": a colour, no new thing
        if "replace" in verbs and not self.found("background"):
            return "replace", self.found("verbs", "replace")[0]
        if "add" in verbs and not self._adds_known():
            return "add", self.found("verbs", "add")[0]
        absent = self._absent()
        if absent is not None:  # "there's no steam": a thing wished for that is not there
            return "add", Tag(absent, absent + 2, (("undoable", "add"),))
        given = self._given_thing()
        if given is not None:
            return "add", given
        if made_of and self.colours:  # "made of gold": a material, though gold is also a colour
            return "material", Tag(self.colours[-1][0], self.colours[-1][1], (("undoable", "material"),))
        return None

    def _absent(self) -> int | None:
        """Where "no" says a thing is missing ("there's no steam"), not a tone ("there is no blue in it"), or None."""
        def missing(k: int) -> bool:  # a thing, not a tone, a colour or a quality
            tag = self.tags[k]
            return can_be_noun(self.words[k]) and self.words[k] not in _QUALITIES and not any(
                a == k for a, _, _ in self.colours) and not (tag is not None and any(tag.has(c) for c in (
                    "adjust", "problems", "strength", "filler", "verbs")))

        return next((k for k in range(1, len(self.words) - 1) if self.words[k] == "no" and self.words[k - 1] in (
            "there's", "is", "are") and missing(k + 1)), None)

    def _placed_on(self, tag: Tag) -> bool:
        """ "sit the cup on a peach gradient", "the cat sitting on plain white": placed on a new background."""
        after = self.words[tag.end :]
        return bool({"on", "onto", "against", "front"} & set(after)) and bool(
            self.found("background") or self._on_colour() or {"gradient", "white", "black"} & set(after))

    def _denied_change(self) -> bool:
        """Whether a change no brick makes is named only to be denied ("nothing plasticky", "not plastic")."""
        def denies(k: int) -> bool:  # the vocabulary's negations, and "no" / "not" / "nothing" inside other phrases
            return self.words[k] in ("nothing", "no", "not") or self.tags[k] is not None and self.tags[k].has(
                "negation")
        return any(any(denies(k) for k in range(max(0, t.start - 2), t.start)) for t in self.found("undoable"))

    def _given_thing(self) -> Tag | None:
        """ "give him a little red bow tie": a thing given to someone is added (not "give it a blur", "give the sky
        a boost", where what is given is a change)."""
        give = next((k for k, w in enumerate(self.words) if w in ("give", "gives", "giving")), None)
        if give is None or self._adds_known():
            return None
        article = next((k for k in range(give + 2, min(give + 5, len(self.words))) if self.words[k] in (
            "a", "an", "some")), None)
        rest = [k for k in range(article + 1, len(self.words)) if self.part[k].kind == "word" and not (
            self.tags[k] is not None and (self.tags[k].has("strength") or self.tags[k].has("text_overlay")))
                ] if article else []  # "a little red bow tie": a bow tie
        if any(self.words[k] in _EDIT_NOUNS for k in rest):
            return None  # "give the sky a boost", "give it a once-over"
        things = [k for k in rest if self.tags[k] is None or self.tags[k].has("finder_words") or self.tags[
            k].has("not_subject")]
        if not rest or len(things) < len(rest) - sum(any(a <= k < b for a, b, _ in self.colours) for k in rest):
            return None
        return Tag(give, give + 1, (("undoable", "add"),))

    def _adds_known(self) -> bool:
        """Whether an "add"/"put" clause asks for something a brick draws: text, a border, a background, a tonal
        change, a blur ("add more contrast", "put it on white")."""
        on_colour = self._on_colour()
        return bool(self.found("canvas") or self.found("background") or self.found("adjust")
                    or self.found("verbs", "blur") or self.found("styles") or self.found("greyscale")
                    or self.found("verbs", "sharpen") or on_colour
                    or self.found("comparatives") or self.found("problems", "denoise")) or self._pad()

