"""The values a clause names besides its action: the words to write and how, a canvas, a new background, a
shade of a colour. Read by ``ClauseReader`` (which this class is the base of) from the clause's tokens."""

from __future__ import annotations

from legoedit_core.planners.phrases import ABBREVIATIONS, DETERMINERS, PREPOSITIONS, Words, another_change
from legoedit_core.planners.reading import Clause, Target
from legoedit_core.planners.vocabulary import can_be_adjective, can_be_noun

_GROUNDS = ("background", "backdrop", "gradient", "wall", "colour", "color", "fade", "ground", "surface", "paper",
            "sweep", "board", "card", "tone", "shade")  # what a plain colour to stand on is called

class ValueReader(Words):
    """The value-reading half of ``ClauseReader``: it sets ``clause`` fields and marks the tokens it takes."""

    clause: Clause
    colours: list[tuple[int, int, str]]

    def verbs(self) -> list[str]:
        """The clause's verbs that are not negated (``ClauseReader`` knows which)."""
        raise NotImplementedError

    def _write(self) -> bool:
        c = self.clause
        quoted = [k for k, t in enumerate(self.part) if t.kind == "quote" and not (  # "a 'before' picture": a label
            k + 1 < len(self.part) and self.part[k + 1].kind == "word" and (self.tags[k + 1] is None and can_be_noun(
                self.words[k + 1]) or self.words[k + 1] in ("picture", "photo", "pic", "shot", "image", "version")))]
        caps = [k for k, t in enumerate(self.part) if t.kind == "caps"]
        verbs = self.verbs()
        if not caps and "add" in verbs and self.found("places") and self._placed_words() is None:  # "put 1999 in
            # the bottom left" (but "add est. 1999 top left" as written)
            caps = [k for k, t in enumerate(self.part) if t.kind == "number" and not (
                k + 1 < len(self.part) and self.tags[k + 1] is not None and self.tags[k + 1].has("units"))]
        nouns = self.found("text_overlay", "nouns")
        placed_words = "add" in verbs and bool(self.found("places"))  # "put Monday Mood in the top left"
        said = self._said() if nouns or "write" in verbs or placed_words else []
        if any(v in verbs for v in ("remove", "blur", "hide")) or not (quoted or caps or said) or self.found(
                "undoable", "translate"):
            return False
        named = quoted or caps
        placed_caps = caps and not verbs and self.found("places") and not (caps[-1] + 1 < len(self.part) and (
            self._noun_at(caps[-1] + 1)))  # "SALE on the top middle" (not "NASA logo on the left": a name)
        if not (quoted or nouns or "write" in verbs or placed_caps or (named or said) and (
                "add" in verbs or self.found("text_overlay", "tiled"))):
            return False  # "put SALE 30% in the corner": words in capitals are the text
        wished = quoted and self.words[quoted[0] - 1] in ("say", "read")  # "could it say 'Hi'"
        if not ({"write", "add", "change", "replace"} & set(verbs) or nouns or wished or named and (
                not verbs and self.found("places") or self.found("text_overlay", "tiled"))):
            return False  # "'ACME' bottom left, tiny": quoted words and a place, or "could it say 'Hi'", ask to
            # write them (not "her tag says 'J. Reyes'": what it says now)
        if said and not quoted:
            c.value = self.instruction[self.part[said[0]].start : self.part[said[-1]].end]
            picked = said
        elif quoted:
            c.value = self.part[quoted[0]].word
            picked = [quoted[0] - 1, quoted[0]] if wished else quoted[:1]
        else:
            run = [caps[0]]
            while run[0] > 0 and (self.part[run[0] - 1].kind == "number" or self.part[run[0] - 1].word == "%"):
                run.insert(0, run[0] - 1)  # "20% OFF": the number before the capitals is written too
            while run[-1] + 1 < len(self.part) and (self.part[run[-1] + 1].kind in ("caps", "number")
                                                    or self.part[run[-1] + 1].word in ("%", ",") and run[-1] + 2 < len(
                                                        self.part) and self.part[run[-1] + 2].kind == "caps"
                                                    or self.part[run[-1] + 1].word == "%"):
                run.append(run[-1] + 1)  # "SALE 30% OFF", "BUT FIRST, COFFEE"
            c.value = self.instruction[self.part[run[0]].start : self.part[run[-1]].end]
            picked = run
        for k in range(len(self.part)):
            tag = self.tags[k]
            if k in picked or tag is not None and not (tag.has("finder_words") or another_change(tag)):
                self.used[k] = True  # a look, a square canvas or a change no brick makes is left to be seen
        places = self.found("places")
        if places:
            c.place = places[-1].get("places")[1]  # type: ignore[index]
        colours = [span for span in self.colours if not any(span[0] <= k < span[1] for k in picked)]
        if colours:
            c.colour = colours[-1][2]
        for quality in ("faint", "tiled", "big", "small"):
            if self.found("text_overlay", quality) or quality == "small" and {"little", "tiny"} & set(self.words):
                c.qualities.add(quality)  # "a little caption": small
        if "watermark" in self.words:
            c.qualities.add("watermark")
        swaps = "replace" in verbs or {"change", "swap", "switch"} & set(self.words)  # not "let the word go in"
        if swaps and (nouns or self.found("finder_words", "same", "text")):
            c.qualities.add("replace")  # "swap the sign's words for 'OPEN'": the old text goes first
        return True

    def _free_word(self, k: int) -> bool:
        """Whether the word at ``k`` can start words to write: not an article and no term but filler."""
        tag = self.tags[k]
        never = ("a", "an", "the", "some", "this", "it", "me", "us", "something", "going", "will", "needs", "should",
                 *PREPOSITIONS)  # not "the type is going over it": how the words are, not words to write
        return self.words[k] not in never and (tag is None or not any(tag.has(c) for c in (
            "text_overlay", "places", "verbs", "pronouns", "canvas", "copulas")))
        # "write happy birthday mum": words the vocabulary knows may be words to write

    def _names_words(self, k: int) -> bool:
        """Whether position ``k`` is a noun for words to write directly after a verb of adding ("add the words")."""
        return self.words[k] in ("words", "word", "text", "caption", "line", "message") and any(
            self.tags[j] is not None and self.tags[j].has("verbs", "add") for j in range(max(0, k - 3), k))

    def _placed_words(self) -> int | None:
        """Where words put at a place begin, unquoted ("put grumpy at the bottom", "add est. 2019 top right"): after
        a verb of adding, no article, only words that name no thing, change or place, up to the place."""
        add = next((t for t in self.found("verbs", "add")), None)
        place = next((t for t in self.found("places") if add is not None and t.start > add.end), None)
        if add is None or place is None:
            return None
        run = [k for k in range(add.end, place.start) if self.words[k] not in ("at", "in", "on", "across", "along",
                                                                              "the", "to")]
        free = all(self.part[k].kind == "number" or self.part[k].word == "." or self.tags[k] is None and not (
            self.colours and any(a <= k < b for a, b, _ in self.colours)) for k in run)
        return add.end - 1 if run and free and self._free_word(add.end) and self.words[add.end] not in (
            "some", "my", "our", "his", "her", "its", "their") else None

    def _said(self) -> list[int]:
        """The positions of words to write given after "saying" / "that says" / "reading", up to a place or an
        opacity, size or colour word ("a caption saying Happy Birthday at the bottom")."""
        cues = self.vocab.data["text_overlay"]
        cue = next((k - 1 for k, w in enumerate(self.words) if w == "©"), None)  # "(c) Jo Lee": the line itself
        if cue is None:
            cue = next((k for k, w in enumerate(self.words) if w in cues["said"] and (w == ":" or any(
                t is not None and (t.has("text_overlay", "nouns") or t.has("verbs", "write")) for t in self.tags[:k]))),
                       None)  # "a sign saying OPEN", not "my boss says it is too dark"
        if cue is None and not any(t.kind in ("quote", "caps") for t in self.part):
            captioned = [k + 1 for k in range(len(self.words) - 2) if self.words[k : k + 2] in (
                ["caption", "it"], ["caption", "this"]) and self._free_word(k + 2)]  # "caption it monday mood"
            cue = next((k for k, w in enumerate(self.words) if (w in cues["say_verbs"] or self._names_words(k))
                        and k + 1 < len(self.part) and self._free_word(k + 1)), captioned[0] if captioned else None)
            # "write hello at the top", "add the words welcome home"
        if cue is None:
            cue = self._placed_words()  # "put grumpy at the bottom"
        if cue is None and ({"write", "add"} & set(self.verbs()) or self.found("text_overlay", "nouns")):  # "write
            # her name Jo Lee at the top", "watermark it with Bean There"
            titled = [k for k, t in enumerate(self.part) if k and t.kind == "word" and t.text[:1].isupper() and not (
                t.text in ("I", "A") or t.text[:2] == "I'")]  # "when I print it A4": no name ("T-minus 10" is)
            cue = titled[0] - 1 if titled else None
        if cue is None:
            return []
        said = []
        for k in range(cue + 1, len(self.part)):
            tag = self.tags[k]
            initial = self.part[k].word == "." and (len(self.part[k - 1].text) == 1 and self.part[
                k - 1].text.isupper() or self.part[k - 1].text in ABBREVIATIONS)
            if self.words[k] == "in" and any(start == k + 1 for start, _, _ in self.colours):
                break  # "Welcome Home in yellow": the colour it is written in
            if self.part[k].kind == "punct" and not initial or tag is not None and tag.start == k and (
                    tag.has("places") or tag.has("text_overlay")) and k > cue + 1 and self.words[k] != "©":
                break
            said.append(k)
        while said and self.words[said[-1]] in ("the", "to", *PREPOSITIONS):
            said.pop()
        return said

    def _pad(self) -> bool:
        words = self.words
        canvas = [t for t in self.found("canvas") if not (t.start > 1 and words[t.start - 1] == "the" and words[
            t.start - 2] in ("of", "in", "from", "out", "across", "over", "throughout"))]  # "out of the frame",
        # "across the frame": the photo's edge or all of it, not a border
        return bool(canvas or self.found("verbs", "pad"))

    def _canvas(self) -> str:
        """A square canvas or a border (PAD), in a colour."""
        c = self.clause
        c.qualities |= {quality for quality in ("square", "border") if self.found("canvas", quality)}
        if self.found("verbs", "pad") and not c.qualities:
            c.qualities.add("square")
        c.qualities |= {width for width in ("thick", "thin") if width in self.words}
        c.value = self.colours[-1][2] if self.colours else "white"
        for k in range(len(self.part)):
            self.used[k] = True
        return "pad"

    def _background(self, verbs: list[str]) -> bool:
        """A background edit (CBG): removed, blurred, a colour, a gradient, or a described new background."""
        c = self.clause
        if ("add" in verbs or not verbs and self._on_colour(directly=True)) and self._on_colour():  # "put it on
            # red", "the rocket on solid black"
            c.value = self._gradient() or self.colours[-1][2]
            c.targets = [Target("the subject", "subject", "subject")]
            for k in range(len(self.part)):
                self.used[k] = True
            return True
        if set(verbs) == {"keep"}:
            return False  # "the background stays as it is": what is left alone
        behind = [t for t in self.found("background") if not (t.start and (self._noun_at(t.start - 1) and self.words[
            t.start] in ("behind", "around", "round") or self.words[
            t.start - 1] in ("from", "of") or self.tags[t.start - 1] is not None and (self.tags[t.start - 1].has(
                "finder_words") or self.colours and (self.tags[t.start - 1].has("not_subject") or self.tags[
                t.start - 1].has("scope", "whole")))))]  # "the model (from)
        # behind her", "the sky behind it", "the red bits in the flag behind her" are no background
        if not behind:
            return False
        in_colour = [t for t in self.found("adjust") if any(a <= t.start <= b or t.end == a for a, b, _ in
                                                                self.colours)]  # "navy colour", "a lighter blue"
        tonal = [t for t in self.found("adjust") if t not in in_colour] or any(
            self.found(*c) for c in (("greyscale",), ("styles",), ("verbs", "sharpen"), ("comparatives",))) or (
            self.found("problems") and not self.colours)
        if tonal and not self.found("verbs", "blur"):
            return False
        for tag in self.found("background"):
            self.use(tag)
        for tag in self.found("verbs"):
            self.use(tag)
        if self.found("verbs", "blur"):
            c.value = "blur"
        elif self._gradient():
            c.value = self._gradient()
        elif self.colours:
            c.value = self.colours[-1][2]
        elif {"remove", "isolate"} & set(verbs) or "transparent" in self.words or "cutout" in self.words:
            c.value = "white"
        else:
            rest = [k for k in range(len(self.part)) if not self.used[k] and self.part[k].kind == "word"
                    and not (self.tags[k] and self.tags[k].has("filler"))]
            if not rest:
                return False
            c.value = self.instruction[self.part[rest[0]].start : self.part[rest[-1]].end]
        for k in range(len(self.part)):
            self.used[k] = True
        subject = [k for k, t in enumerate(self.tags) if t is not None and t.has("subject")]
        c.targets = [Target("the subject", "subject", "subject")] if subject else []
        return True

    def _on_colour(self, directly: bool = False) -> bool:
        """Whether the clause puts something on a colour ("put it on red"), not a coloured thing on ("a red hat on
        her")."""
        ons = [k for k, w in enumerate(self.words) if w in ("on", "onto", "against") or w == "of" and self.words[
            k - 2 : k] == ["in", "front"]]  # "the cat in front of a soft peach fade"
        plain = [(start, end) for start, end, _ in self.colours if not (end < len(self.words) and self._noun_at(
            end) and self.words[end] not in _GROUNDS)]  # not "a red Martian landscape": a scene
        if directly:  # "on solid black", "standing on its own against flat black", not "on the banner in red"
            return any(start > on and all(w in ("a", "an", "solid", "plain", "pure", "flat") or can_be_adjective(
                w) and not can_be_noun(w) for w in self.words[on + 1 : start])
                for start, _ in plain for on in ons)  # "on a soft peach gradient"
        return any(start > min(ons) for start, _ in plain) if ons else False

    def _noun_at(self, k: int) -> bool:
        """Whether the word at ``k`` names a thing: a noun the vocabulary does not know, not a colour."""
        return self.tags[k] is None and can_be_noun(self.words[k], self.part[k].text) and not any(
            a <= k < b for a, b, _ in self.colours)

    def _nearly_grey(self) -> bool:
        """ "almost black and white but not quite", "desaturate it a lot, not fully bw": most of the colour out, as
        a strong saturation cut, not greyscale."""
        words = " ".join(self.words)
        if not any(w in words for w in ("almost", "nearly", "not fully", "not quite", "not completely",
                                        "not totally", "not entirely")):
            return False
        c = self.clause
        c.attribute, c.direction, c.value = "saturation", -1, "implied"
        c.strength = max(c.strength, float(self.vocab.data["strength"]["strong"]["factor"]))
        return True

    def _thing_at(self, k: int) -> bool:
        """Whether the word at ``k`` names a thing: a noun the vocabulary does not know, or, after a determiner
        ("her round blue patch"), one a finder sees ("teal suit" alone asks for a teal suit)."""
        tag = self.tags[k]
        return self._noun_at(k) or self.words[0] in DETERMINERS - {"a", "an"} and tag is not None and any(
            tag.has(c) for c in ("finder_words", "subject", "not_subject"))

    def _gradient(self) -> str | None:
        """A gradient background in the user's words ("a gradient from light blue to white"), or None."""
        marks = [k for k, w in enumerate(self.words) if w in ("gradient", "fading", "fade", "fades", "ombre", "shaded")]
        if not marks or len(self.colours) < (1 if self.words[marks[0]] == "gradient" else 2):
            return None  # "a blue gradient", "dark blue at the top fading to light blue"
        k = marks[0]
        start = min([k, *(a for a, _, _ in self.colours)])
        end = max([k + 1, *(b for _, b, _ in self.colours)])
        return " ".join(self.words[start:end])

    def _shade(self) -> str | None:
        """A lighter or darker shade of a named colour ("a darker blue" -> "dark blue"), or None."""
        for start, _, colour in self.colours:
            before = [k for k in range(max(0, start - 2), start) if self.words[k] not in ("a", "an", "the")]
            shade = {"darker": "dark", "deeper": "dark", "lighter": "light", "paler": "pale", "brighter": "light"}
            if before and self.words[before[-1]] in shade:
                return f"{shade[self.words[before[-1]]]} {colour}"
        return None
