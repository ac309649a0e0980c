"""The action of one clause: what change it asks for (or that it asks for none), read from its verbs, looks,
tones, amounts and problems in a fixed order of precedence. ``ClauseReader`` builds on it (see ``reading.py``)."""

from __future__ import annotations

from legoedit_core.planners.phrases import DETERMINERS
from legoedit_core.planners.reading import Amount, colour_spans
from legoedit_core.planners.scope import ScopeReader
from legoedit_core.planners.undoable import SIZE_WORDS
from legoedit_core.planners.vocabulary import Tag, can_be_verb

_VERB_ACTIONS = ("remove", "blur", "hide", "sharpen", "denoise", "smooth", "crop", "rotate", "flip", "resize", "pad",
                 "isolate")
_STATES = ("dim", "dark", "dull", "murky")  # said of a photo, a complaint: "it's a bit dim"
_CASTS = {"orange": -1, "yellow": -1, "amber": -1, "blue": 1, "cyan": 1}  # a cast's colour: the temperature fix
ATTRIBUTE_NOUNS = {"brightness", "exposure", "light", "lighting", "contrast", "saturation", "vibrance", "colours",
                    "colors", "colour", "color", "warmth"}


class ActionReader(ScopeReader):
    """Reads a clause's action; the words it takes are marked ``used``, the rest are left for the targets."""

    def _action(self) -> str:
        c, verbs = self.clause, self.verbs()
        if self.words[0] == "like" or self.words[:2] == ["as", "if"] or self._how_it_stays() or self._why_only() or (
                self._context() or self._dated() or self._destined()):
            return "remark"  # "..., like a cutout for a sticker", "but keep it natural": why, or how it stays
        if self.words[0] in ("see", "notice", "spot") and self.words[1:2] and (
                self.words[1] in DETERMINERS) and not verbs:
            self.used[0] = True
            return "named"  # "see the woman in the flight suit? ...": the thing the next request is about
        if self._write():
            return "write"
        if self.found("background") and {"fine", "ok", "okay", "perfect"} & set(self.words) and not (
                verbs or self.colours or self._names_a_change()):
            return "statement"  # "the backdrop is fine": it needs nothing
        if self.found("scope", "only_colour") and not self.found("scope", "except"):
            return "greyscale"
        if self.negated and not verbs and not any(self.found(c) for c in ("adjust", "styles", "greyscale", "problems")):
            return "keep"  # "don't touch the sky": what the next change leaves out; "don't crop": a remark
        simile = self.words.index("like") if "like" in self.words[1:] else len(self.words)
        copulas = [t for t in self.found("copulas") if t.start < simile]
        past = copulas and self.words[copulas[0].start] in ("was", "were") and not self._wished()
        if not verbs and not self.found("problems") and past:
            return "remark"  # "the café was warm and cosy": how it was, not what to change
        if self.statement() and not (self._wished() or self._request_frame(self.words)) and self._absent() is None:
            problems = self.found("problems")
            loud = [s for s in self.colours if s[0] and self.words[s[0] - 1] in ("so", "too", "very", "really")
                    and s[2] not in ("grey", "gray", "white", "black")]  # "too grey" asks for more colour, not less
            if not problems and loud:  # "her coat is so red": too much of that colour; "everything looks really
                cast = loud[0][2] in _CASTS and not any(  # orange": a colour cast over the photo, its temperature
                    self._noun_at(k) or self.tags[k] is not None and self.tags[k].has("finder_words")
                    for k in range(loud[0][0]))
                c.attribute, c.direction = ("temperature", _CASTS[loud[0][2]]) if cast else ("saturation", -1)
                c.value = "implied"
                return "adjust"
            return self._problem(problems[0]) if problems else "statement"
        if (not verbs or verbs == ["remove"] and self.words[0] == "no") and self._denied_change():
            return "remark"  # "..., nothing plasticky": how it should not end up
        denied = self._denied_happening()
        if denied in ("mind", "care") or (denied or "already" in self.words and not verbs) and not (
                self._names_a_change()):
            return "remark"  # "the flag can't appear in print", "the backdrop already meets spec": no change asked
        undoable = self._undoable(verbs)
        if undoable:
            kind, tag = undoable
            spec = self.vocab.undoable(kind)
            c.reason, c.value = spec["reason"], spec["instead"]
            c.brick, c.condition = spec.get("brick"), " ".join(self.words[tag.start : tag.end])
            self.use(tag)
            return "undoable"
        if self.found("canvas", "square") and not {"crop"} & set(verbs) and not self.found("verbs", "blur"):
            return self._canvas()  # "make it square with a black background": a square canvas in black
        on_colour = not verbs and self._on_colour(directly=True)  # "the rocket on solid black"
        if (self.found("background") or "add" in verbs or on_colour) and self._background(verbs):
            return "background"
        for name in ("styles", "greyscale"):  # "a sepia-toned monochrome", "a black and white sketch": the look
            tags = self.found(name)
            if tags and not ("remove" in verbs and name == "styles"):
                for tag in [*tags, *self.found("greyscale")]:
                    self.use(tag)
                if name == "styles":
                    longest = max(tags, key=lambda t: t.end - t.start)
                    if self._colour_not_look(longest) or self._only_compared(longest):
                        break  # "could it be charcoal": a colour; "a blue cat like in a cartoon": blue
                    c.value = longest.get("styles")[1]  # type: ignore[index]
                    c.wording = " ".join(self.words[longest.start : longest.end])
                    self._use_look_words(longest.start)
                    after = self.words[longest.end : longest.end + 1]
                    described = after and self.tags[longest.end] is None and (after[0].endswith("ing") or after[
                        0] in ("that", "which", "you", "my", "our", "your", "people"))
                    if after == [","] or described:  # "an oil painting, the thick
                        self.used[longest.end :] = [True] * (len(self.part) - longest.end)  # kind", "an oil painting
                        # hanging in a museum", "that brown tint my grandma's photos have": the look
                    return "style"
                return "adjust" if self._nearly_grey() else "greyscale"
        if self._pad() and not {"crop", "rotate"} & set(verbs):
            return self._canvas()
        size = [t for t in self.found("undoable", "age") if self.words[t.start] in SIZE_WORDS]
        if size and (c.amounts or self.found("scope", "whole") or "resize" in verbs):
            c.direction = SIZE_WORDS[self.words[size[0].start]]
            for tag in [*size, *self.found("verbs")]:
                self.use(tag)
            return "resize"
        if self.found("problems", "denoise") and (not verbs or {"remove", "decrease", "change", "smooth"} & set(verbs)):
            for tag in [*self.found("problems"), *self.found("verbs")]:
                self.use(tag)
            c.value = None if verbs else "implied"  # "really grainy, can you clean it up": the fix it implies
            return "denoise"
        for tag in self.found("aspects"):
            c.amounts.append(Amount(float(self.vocab.data["aspects"][self.words[tag.start]]), "ratio"))
        if any(a.unit == "degrees" for a in c.amounts) and "crop" not in verbs:
            return "rotate"
        sized = {"pixels"} | (set() if self.found("adjust") else {"percent", "factor"})  # "brightness by 20%"
        if any(a.unit in sized or a.unit == "number" and a.side for a in c.amounts) and not set(verbs) & set(
                _VERB_ACTIONS):
            return "resize"
        changed = [t for t in self.found("adjust") if self.words[t.start] not in ATTRIBUTE_NOUNS]  # "keeps its
        # colour", "keep the lighting as it is": what stays
        if verbs and all(v == "keep" for v in verbs) and not (changed or self.found("comparatives")):
            for tag in self.found("verbs"):
                self.use(tag)
            return "keep"  # "keep the red, make the rest greyscale": what the next change leaves out
        verb_action = next((v for v in verbs if v in _VERB_ACTIONS), None)
        factor = next((a.value for a in c.amounts if a.unit == "factor"), None)
        if verb_action == "resize" and factor is not None and any(
                self.words[t.start] in ATTRIBUTE_NOUNS for t in self.found("adjust")):
            verb_action = None  # "halve the contrast": a tone by that factor, read below
            c.direction = 1 if factor > 1 else -1
        if verb_action == "remove" and any(self.words[t.start] in ATTRIBUTE_NOUNS for t in self.found("adjust")) and (
                not self.found("greyscale")):
            verb_action = None  # "drop the saturation": less of a tone, read by the tonal words below
        if verb_action is None and self.found("flip") and (not verbs or set(verbs) <= {"change", "add"}):
            verb_action = "flip"  # "make a mirror image of it", "side to side, please"
        split = next((w for w in ("get", "take") if w in self.words), None)
        if verb_action is None and split and {"out", "off"} & set(self.words[self.words.index(split) + 2 :]) and not (
                self.found("adjust")):  # (not "take most of the colour out": less of a tone)
            verb_action = "remove"  # "get the lamp out of the frame": a phrasal verb around its object
            self.used[self.words.index(split)] = True
        if "decrease" in verbs and self._cuts_out():
            verb_action = "isolate"  # "cut the astronaut out (onto white)"
            if self.colours:
                c.value = self.colours[-1][2]
                for k in range(self.colours[-1][0], self.colours[-1][1]):
                    self.used[k] = True
        if verb_action in ("blur", "smooth") and (self.found("finder_words", "same", "skin") or "soften" in self.words
                                                  and (self.found("not_subject", "surface") or self.found(
                                                      "finder_words", "same", "face"))):  # "soften the fur", "her
            # face": a retouch of its surface, not a blur
            verb_action = "smooth"
        if verb_action == "sharpen" and self.colours and {"sharper", "smarter"} & set(self.words):
            verb_action = None  # "her suit would look sharper in navy": smarter, in a colour
        if verb_action == "blur" and ("sharpen" in verbs or self.found("verbs", "decrease")):
            verb_action = "sharpen"  # "unblur", "less blurry"
        if verb_action is not None:
            for tag in self.found("verbs"):
                if tag.get("verbs")[1] in (verb_action, "change", "increase", "decrease", "keep"):  # type: ignore
                    self.use(tag)
            if verb_action == "crop":
                self._use_places_for(verb_action)
                if self.found("canvas", "square"):
                    c.amounts.append(Amount(1.0, "ratio"))
                    self.use(self.found("canvas", "square")[0])
            if verb_action == "flip":
                c.value = "vertical" if self.found("flip", "vertical") else "horizontal"
                for tag in self.found("flip"):
                    self.use(tag)
            return verb_action
        richer = next((s for s in self.colours if s[0] and self.words[s[0] - 1] in ("richer", "intense", "vivid")),
                      None)
        if richer is not None and not verbs or richer is not None and set(verbs) <= {"change", "increase"}:
            c.attribute, c.direction = "saturation", 1  # "make the sky a richer blue": more of the colour it has
            self.used[richer[0] - 1 : richer[1]] = [True] * (richer[1] - richer[0] + 1)
            for tag in self.found("verbs"):
                self.use(tag)
            return "adjust"
        shade = self._shade()
        if shade is not None:
            c.value = shade
            for k in range(len(self.part)):
                if self.tags[k] is not None and (self.tags[k].has("adjust") or self.tags[k].has("verbs")) or any(
                        a <= k < b for a, b, _ in self.colours):
                    self.used[k] = True
            return "recolour"
        if self._adjust(verbs):
            for tag in self.found("comparatives"):  # "cooler and bluer", "warmer, more golden": the same change
                if self.clause.attribute == "temperature":
                    self.use(tag)
            return "adjust"
        comparatives = self.found("comparatives")
        if comparatives:
            c.value = self.vocab.data["comparatives"][self.words[comparatives[-1].start]]
            c.direction = 1
            for tag in [*comparatives, *self.found("verbs")]:
                self.use(tag)
            return "tint"
        if not verbs and self.colours and self._thing_at(min(self.colours[-1][1], len(self.words) - 1)):
            return "named"  # "the red stripes on the left": a thing named, for the clause after ("make them navy")
        if self.colours and (verbs or self._linking() or self.colours[-1][0] > 0 or not self.found("verbs")):
            start, end, colour = self.colours[-1]
            c.value = colour
            while start and self.words[start - 1] in ("flat", "solid", "plain", "pure"):
                start -= 1  # "a flat mint colour": how the colour is, no thing
            for k in range(start, end):
                self.used[k] = True
            for tag in self.found("verbs"):
                self.use(tag)
            return "recolour"
        problems = self.found("problems")
        if problems:
            return self._problem(problems[0])
        aside = not verbs and all(t.kind in ("caps", "number", "punct") for t in self.part)  # "(GDPR)"
        if aside or self.found("remarks") or self.found("undoable", "vague") or not any(
                t.kind in ("word", "caps") and not (self.tags[k] and self.tags[k].has("filler"))
                for k, t in enumerate(self.part)):
            vague = self.found("undoable", "vague")
            if vague and (verbs or vague[0].end < len(self.words) and self.words[vague[0].end] in DETERMINERS | {
                    "some"}):  # "make it pop", "pop some sunglasses on her" (a thing put on: added)
                spec = self.vocab.undoable("add" if {"on", "onto"} & set(self.words[vague[0].end :]) else "vague")
                c.reason, c.value = spec["reason"], spec["instead"]
                return "undoable"
            return "remark"
        if verbs and set(verbs) <= {"increase", "decrease"} and all(  # "reduce it": which change, the clause
                t.kind == "punct" or self.tags[k] is not None and any(self.tags[k].has(c) for c in (
                    "pronouns", "verbs", "filler", "strength")) for k, t in enumerate(self.part)):  # before says
            spec = self.vocab.undoable("vague")
            c.reason, c.value = spec["reason"], spec["instead"]
            return "undoable"
        c.asks = self._asks()
        return "unknown"

    def _denied_happening(self) -> str | None:
        """The verb no edit has that the clause says must not happen, before any verb of editing ("brand rules
        don't allow pure white", "I don't mind if it ends up grainy"), or None."""
        first_verb = next((t.start for t in self.found("verbs")), len(self.words))
        return next((self.words[tag.end] for tag in self.found("negation") if tag.end < min(first_verb, len(
            self.words)) and (self.tags[tag.end] is None or self.tags[tag.end].meanings == (("filler",),)) and (
            can_be_verb(self.words[tag.end])) and not colour_spans(self.words[tag.end : tag.end + 1])), None)

    def _only_compared(self, look: Tag) -> bool:
        """Whether a look is named only in a comparison after a colour asked for ("a blue cat like in cartoons")."""
        like = next((k for k, w in enumerate(self.words) if w == "like" and k and self.words[k - 1] not in (
            "look", "looks", "it", "them")), None)
        return like is not None and like < look.start and any(start < like for start, _, _ in self.colours)

    def _names_a_change(self) -> bool:
        """Whether a word of the clause names a change, an amount or words to write (a colour alone may be what is
        denied: "the guide doesn't allow red")."""
        kinds = ("adjust", "styles", "greyscale", "comparatives", "problems", "canvas", "flip", "rotation")
        return bool(self.clause.amounts or any(self.found(k) for k in kinds)) or any(
            t.kind in ("quote", "caps") for t in self.part)

    def _linking(self) -> bool:
        return any(w in ("should", "be", "is", "are", "look", "looks", "in") for w in self.words)

    def _adjust(self, verbs: list[str]) -> bool:
        c = self.clause
        tags = [t for t in self.found("adjust") if not (t.has("verbs") and len(self.found("adjust")) > 1) and not any(
            a <= t.start < b or t.end == a for a, b, _ in self.colours)]  # "bright yellow", "a warm mustard" are
        # colours, not a brightness or a warmth
        tags.sort(key=lambda t: self.words[t.start] in ATTRIBUTE_NOUNS)  # "the colours made warmer": warmer says how
        if not tags:
            return False
        meaning = tags[0].get("adjust")
        assert meaning is not None
        c.attribute = meaning[1]
        c.direction = 1 if meaning[2] == "up" else -1
        noun = tags[0].has("filler") or self.words[tags[0].start] in ATTRIBUTE_NOUNS
        if noun and self.colours and "change" in verbs:
            return False
        if noun and len({"up", "down"} & set(self.words[tags[0].end :])) == 1:
            # "turn the brightness down", "tone the colours down by half"
            c.direction = 1 if "up" in self.words else -1
        elif noun and ("decrease" in verbs or "remove" in verbs):  # "drop the saturation", "lose some contrast"
            c.direction = -1
        elif noun and c.amounts and c.amounts[0].unit == "factor":
            c.direction = 1 if c.amounts[0].value > 1 else -1  # "double the saturation"
        elif noun and not ("increase" in verbs or "change" in verbs or self.clause.strength != 1.0 or any(
                a.unit == "percent" for a in c.amounts)):  # "brightness +15%"
            return False
        if self.words[tags[0].start] in _STATES and not verbs and any(
                t.has("copulas") and t.start < tags[0].start for t in self.found("copulas")):
            c.direction, c.value = -c.direction, "implied"  # "it's a bit dim": what it is, so the opposite
        for tag in [*tags, *self.found("verbs")]:
            self.use(tag)
        return True

    def _problem(self, tag: Tag) -> str:
        c = self.clause
        fix = tag.get("problems")[1]  # type: ignore[index]
        self.use(tag)
        c.direction = 1
        c.value = "implied"
        if fix == "background":  # "the clutter behind her is distracting": blur what is behind the subject
            c.targets = []  # the blur is planned from the implied value (planning.background); the thing said to
            said = [t.start for t in self.found("copulas")] + [k for k, w in enumerate(self.words) if w in (
                "keeps", "keep", "is")]  # distract is kept for an edit of "it" after ("the flag is distracting,
            for k in range(min([*said, tag.start]) if not self.verbs() else 0, len(self.part)):  # remove it")
                self.used[k] = True
        if " " in fix:
            c.attribute, way = fix.split()
            c.direction = 1 if way == "up" else -1
            return "adjust"
        return fix

    def _use_places_for(self, action: str) -> None:
        if action == "crop" and self.clause.amounts:
            return
        for tag in self.found("places", "center"):
            if action == "crop" and not self._other_target():
                self.clause.place = "center"
                self.use(tag)

    def _other_target(self) -> bool:
        return any(t is not None and (t.has("finder_words") or t.has("subject")) for t in self.tags) or any(
            self.tags[k] is None and self.part[k].kind == "word" for k in range(len(self.part)))
