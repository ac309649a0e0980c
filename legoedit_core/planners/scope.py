"""What a clause covers, read by ``ClauseReader`` (which this class is the base of): its scope ("only the sky",
"everything except her"), what it keeps and how ("keep her crisp"), and whether it names a second change it would
leave unread (then it is declined, never half done)."""

from __future__ import annotations

from legoedit_core.planners.asides import AsideReader
from legoedit_core.planners.phrases import DETERMINERS, another_change, split_targets
from legoedit_core.planners.vocabulary import can_describe

_STRONG_VERBS = ("remove", "crop", "rotate", "flip", "resize", "pad")  # changes no other action stands for


class ScopeReader(AsideReader):
    """The scope-reading part of ``ClauseReader``."""

    def _second_change(self) -> bool:
        """Whether a change of another kind than the clause's action is named and left unread ("cut the box out
        onto white, ... 160px": the cut-out would be lost to the resize)."""
        action = self.clause.action
        if action in ("undoable", "remark", "unknown", "describe", "statement", "named", "keep"):
            return False
        if self._cuts_out() and action not in ("isolate", "background", "crop", "remove"):
            return True
        if action not in ("resize", "crop") and any(a.unit == "pixels" and a.value >= 100 for a in self.clause.amounts):
            return True  # "pad it to a square and export at 1000px": the size would be lost
        for k, tag in enumerate(self.tags):
            if tag is None or self.used[k] or tag.start != k:
                continue
            verb = tag.get("verbs")
            named = k and (self.words[k - 1] in DETERMINERS or any(b == k for _, b, _ in self.colours)) or any(
                a == tag.end for a, _, _ in self.colours)  # "the white strip": a noun; "clean white": a colour's
            if verb is not None and verb[1] in _STRONG_VERBS and verb[1] != action and not named:
                return True
            look = tag.has("styles") or tag.has("greyscale")
            if another_change(tag) and not (look and action in ("style", "greyscale") or action == "pad" and (
                    tag.has("canvas"))):
                return True
        return False

    def _scope(self) -> None:
        c = self.clause
        only_colour = self.found("scope", "only_colour")
        if only_colour and not self.found("scope", "except"):  # "make the cat the only thing in colour": all but
            self.used[only_colour[0].start :] = [True] * (len(self.part) - only_colour[0].start)  # the cat greys
            kept = [k for k in range(only_colour[0].start) if not self.used[k] and not (
                self.tags[k] is not None and (self.tags[k].has("verbs") or self.tags[k].has("copulas")))]
            c.scope, c.excluded = "except", split_targets(self, kept)
            for k in kept:
                self.used[k] = True
            return
        if only_colour:  # "grey except the kitty, so she's the only colourful thing": why, said after
            said = next((k for k in range(only_colour[0].start, -1, -1) if self.words[k] in (",", "so")), 0)
            self.used[said:] = [True] * (len(self.part) - said)
        changes = [t for t in self.found("verbs") if t.get("verbs")[1] != "keep"]  # type: ignore[index]
        kept = self.found("verbs", "keep") if changes or self.found("adjust") or self.found("greyscale") else []
        for tag in [*self.found("scope", "except"), *kept]:  # "leave her face and warm up everything else"
            limit = self.words[tag.end : tag.end + 1] in (["quite"], ["too"], ["entirely"], ["completely"],
                                                          ["fully"], ["totally"], ["all"], ["overly"], ["much"])
            if self.words[tag.start] == "but" and (tag.end - tag.start == 1 and not self._after_whole(
                    tag.start) or limit):
                self.use(tag)  # a conjunction ("darker, but only slightly", "but not quite all the way"), not an
                continue  # exception
            if self.words[tag.end : tag.end + 1] in (["it"], ["them"]):  # "... but keep it crisp": how it stays
                self.used[tag.start :] = [True] * (len(self.part) - tag.start)
                return
            self.use(tag)
            c.scope = "except"
            end = next((k for k in range(tag.end, len(self.part)) if self.words[k] in (",", "and") and
                        self._action_after(k) or self._acts(k) or self.words[k] == "," and self.vocab.phrase_at(
                            self.words, k + 1, "purpose") is not None), len(self.part))  # not "..., so she's ..."
            run = [k for k in range(tag.end, end) if not self.used[k]]
            for k in run:
                self.used[k] = True
            c.excluded = split_targets(self, run)
            if tag.has("verbs", "keep") or {"keep", "keeping", "leave", "leaving"} & set(self.words[
                    tag.start : tag.end]):  # "but keep her nice and crisp"
                self._how_it_is_kept(end)
            return
        for tag in self.found("scope", "only"):
            self.use(tag)
            if self.words[tag.start] != "just" or self.words[tag.end : tag.end + 1] not in (["a"], ["an"]):
                c.scope = "only"  # (not "just a plain sketch of the box, please": simply)

    def _how_it_is_kept(self, start: int) -> None:
        """The words after a kept thing that say how it stays ("keep her crisp", "keeping the edges clean") ask for
        no change of their own: they lose their meaning."""
        end = next((k for k in range(start, len(self.part)) if self.words[k] in (",", "and") and self._action_after(
            k)), len(self.part))
        if start < end and all(self.part[k].kind != "word" or self.words[k] == "and" or can_describe(self.words[k])
                               for k in range(start, end)):
            for k in range(start, end):
                self.used[k], self.tags[k] = True, None

    def _cuts_out(self) -> bool:
        """Whether the clause says "cut ... out" ("cut the astronaut out onto white")."""
        return "cut" in self.words and "out" in self.words[self.words.index("cut") + 1 :]

    def _after_whole(self, k: int) -> bool:
        return any(t is not None and t.has("scope", "whole") for t in self.tags[max(0, k - 3) : k])

    def _acts(self, k: int) -> bool:
        """Whether the token at ``k`` is part of an action's words ("... except the umbrella black and white")."""
        tag = self.tags[k]
        return tag is not None and any(tag.has(c) for c in ("verbs", "adjust", "greyscale", "styles", "comparatives",
                                                            "problems"))

    def _action_after(self, k: int) -> bool:
        return any(t is not None and t.has("verbs") for t in self.tags[k + 1 : k + 3])
