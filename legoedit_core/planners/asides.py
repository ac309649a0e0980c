"""The words of a clause that ask for nothing, read by ``ClauseReader`` (which this class is the base of): how a
thing should stay ("should stay soft"), what a problem does ("so grainy it hurts my eyes"), who said it ("my boss
says"), what a thing is said to be ("the sky looks bleak"), a comparison ("like an old newspaper"), and clauses that
only say why, how much or which thing."""

from __future__ import annotations

from legoedit_core.planners.phrases import LOOK_VERBS, PREPOSITIONS
from legoedit_core.planners.undoable import UndoableReader
from legoedit_core.planners.vocabulary import Tag, can_be_noun, can_be_verb, can_describe

_REPORTING = ("says", "said", "saying", "thinks", "thought", "reckons", "told", "mentioned", "complained", "complains",
              "admits", "admitted", "feels", "felt", "notes", "noted", "noticed", "mentions", "suggested", "suggests")
_STAYS = ("stay", "stays", "remain", "remains")
_WHERE = ("in", "on", "around", "across")
_SOMEONE = ("i", "we", "they", "he", "she", "i'm", "we're", "they're", "he's", "she's", "i've", "we've", "i'll",
            "we'll", "gonna", "doing", "i'd", "we'd", "she'd", "he'd", "they'd")
_NARRATED = ("make", "made", "do", "does", "did", "changed", "set", "get", "got", "took")  # "we've changed what
# the event is called", "I think it would make a charming card": verbs of a story, not of an edit
_DETERMINERS_OF_THINGS = ("this", "that", "the", "it", "her", "his", "its", "my", "our", "your")
_VAGUE_THINGS = ("bits", "spots", "patches", "areas", "parts", "stuff", "bit", "patch", "area", "part")
_DID = ("came", "sent", "went", "says", "wants", "asked")  # "client came back saying ..."
_ROLES = ("client", "clients", "boss", "customer", "customers", "marketplace", "editor", "team", "manager", "shop",
          "printer", "agency", "brand", "husband", "wife", "partner", "son", "daughter", "grandson", "granddaughter",
          "mum", "mom", "dad", "sister", "brother", "friend", "friends", "neighbour", "neighbor", "family", "kids")


class AsideReader(UndoableReader):
    """The aside-reading part of ``ClauseReader``: it marks the tokens that name no thing as ``used``."""

    def _set_aside(self) -> None:
        """Mark every word that says something other than what to edit, so it never becomes a target."""
        for start, end in (self._where_it_goes(), self._how_it_stays_words(), self._what_the_problem_does(),
                           self._who_said_it(),
                           self._what_it_is_said_to_be(), self._comparison(), self._where_it_is_seen(),
                           self._what_caused_it(), self._when_it_shows()):
            for k in range(start, end):
                self.used[k] = True

    def _where_it_goes(self) -> tuple[int, int]:
        """Where the photo goes, said first ("for the museum's feed, warm it up"): the words up to the comma."""
        comma = self.words.index(",") if "," in self.words else None
        if self.words[0] != "for" or comma is None or not any(t.end <= comma for t in self.found("destinations")):
            return 0, 0
        return (0, comma + 1) if not any(t.start < comma for t in self.found("verbs")) else (0, 0)

    def _how_it_stays_words(self) -> tuple[int, int]:
        """How a thing should stay ("the sky should stay soft", "keep it natural"): the words after the verb."""
        stays = next((t.end + (self.words[t.end - 1] not in _STAYS) for t in self.found("verbs", "keep") if self.words[
            t.end - 1] in _STAYS or t.end < len(self.words) and self.words[t.end] in ("it", "them")), None)
        return (stays, len(self.part)) if stays is not None else (0, 0)

    def _what_the_problem_does(self) -> tuple[int, int]:
        """After a problem only where it is counts ("noise in the sky"): "so grainy it hurts my eyes" or "grainy from
        my old phone" name no thing."""
        problem = next((t.end for t in self.found("problems")), None)
        if problem is None:
            return 0, 0
        told = next((k for k in range(problem, len(self.words)) if self.words[k] in ("it", "that", "this")), None)
        while problem < len(self.words) and self.words[problem] in _VAGUE_THINGS:
            problem += 1  # "blotchy bits in the sky": where they are
        after = self.words[problem : problem + 1]
        where = after and after[0] in _WHERE or after == ["from"] and self._found_after(problem)
        if told is not None:
            return told, len(self.part)
        return (0, 0) if where else (problem, len(self.part))

    def _where_it_is_seen(self) -> tuple[int, int]:
        """Where a statement's thing is seen, said first ("on the projector this comes out murky", "next to the
        other shots the sky looks pale"): the words before the thing's own determiner."""
        if self.words[0] not in (*PREPOSITIONS, "under", "next", "beside", "against", "when", "compared"):
            return 0, 0
        copula = next((t.start for t in self.found("copulas")), None)
        said = [k for k in range(1, copula or 0) if self.words[k] in _DETERMINERS_OF_THINGS]
        return (0, said[-1]) if said else (0, 0)

    def _what_caused_it(self) -> tuple[int, int]:
        """What made a problem ("the flash made it look harsh"): the words up to "made it", which name no thing."""
        made = next((k for k in range(1, len(self.words) - 1) if self.words[k] in ("made", "makes", "making") and (
            self.words[k + 1] in ("it", "them", "her", "him", "everything"))), None)
        return (0, made + 1) if made is not None and self.clause.value == "implied" else (0, 0)

    def _when_it_shows(self) -> tuple[int, int]:
        """When a problem shows ("blotchy when printed", "grainy when zoomed in"): no thing to edit."""
        when = next((k for k, w in enumerate(self.words) if w == "when" and k), None)
        return (when, len(self.part)) if when is not None and self.clause.value == "implied" else (0, 0)

    def _who_said_it(self) -> tuple[int, int]:
        """Who said it ("my boss says it is too dark") is no thing to edit."""
        reported = max((k for k, w in enumerate(self.words) if w in _REPORTING), default=None)
        return (0, reported + 1) if reported is not None else (0, 0)

    def _what_it_is_said_to_be(self) -> tuple[int, int]:
        """What a thing is said to be ("the sky looks bleak"): the words after the verb of being."""
        copula = next((t.start for t in self.found("copulas") if not self.words[t.start].startswith("there")), None)
        return (copula, len(self.part)) if self.clause.value == "implied" and copula is not None else (0, 0)

    def _comparison(self) -> tuple[int, int]:
        """A comparison ("sepia, like an old newspaper") is no thing; "I'd like" and words to write are kept."""
        simile = next((k for k, w in enumerate(self.words) if w == "like" and (
            k == 0 or not {"i'd", "i", "would", "we'd", "we"} & set(self.words[max(0, k - 2) : k]) and self.words[
                k - 1] not in LOOK_VERBS and not self.words[k - 1].startswith("there"))), None)  # not "I'd only
        # like", "there's like a logo"
        return (simile, len(self.part)) if self.clause.action != "write" and simile is not None else (0, 0)

    def _wished(self) -> bool:
        """Whether a clause wishes a colour or a place on one ("the cup would look nicer in lavender", "if the cat
        were powder blue", "the rocket would look smarter against flat black"): a request, not how it is."""
        copula = next((t.start for t in self.found("copulas")), len(self.words))
        conditional = {"would", "could", "should", "might"} & set(self.words[:copula]) or "if" in self.words[
            :copula] and self.words[copula : copula + 1] == ["were"]
        return bool(conditional) and any(start > copula for start, _, _ in self.colours)

    def _context(self) -> bool:
        """A clause about the photo's use or who asked, not about the photo: "it's for the spring campaign", "we are
        printing it for the office", "the client will hate it", "do it anyway". It starts with someone other than
        the editor doing something, and no word of it names an edit."""
        words = [w for w in self.words if w not in ("and", "but", "so", "lol", "tbh", "honestly", "anyway")]
        said = words[words.index(",") + 1 :] if words[:1] in (["hi"], ["hello"], ["hey"]) and "," in words else words
        if said[:2] in (["it's", "for"], ["this", "is"], ["it", "is"]) and "for" in said[1:3]:
            return True  # what it is for ("hi there, this is for the newsletter")
        if words[:3] in (["do", "it", "anyway"], ["can", "we", "do"], ["can", "you", "do"], ["go", "for", "it"]):
            return True  # the request before, said again
        if self._request_frame(words) or self._wished():
            return False  # "I want the cat sharp", "we'd love it brighter": a request in other words
        told = words[2:3] and words[2].endswith(("s", "ed")) and any(
            can_be_verb(words[2].removesuffix(end)) for end in ("s", "es"))  # "my son thinks", "the listing goes"
        owner = words[:2] and words[0] in ("the", "our", "my") and (words[1] in _ROLES or self.tags[1] is None and (
            words[1] in self.words[1:2] and told))  # "my grandson thinks", "the email keeps bouncing it back",
        # never "the rocket I mean"
        did = words[1:2] and self.tags[0] is None and not can_be_verb(words[0]) and (words[1] in _DID or words[
            1].endswith("ed") and can_be_verb(words[1].removesuffix("d")) or can_be_verb(words[1].removesuffix("ed")))
        here = words[-1:] == ["here"] and len(words) <= 3  # "catalogue team here"
        starts = words[:1] and (words[0] in _SOMEONE or words[0] in _ROLES or owner or did or here)  # "supplier
        # switched the colourway", "legal flagged the badge"
        later = words[:1] and words[0].endswith("'ll") or words[1:2] == ["will"] or "later" in words
        if starts and later:
            return True  # "we'll set our own type over it later": what the user will do, not the edit
        narrated = 1 if did else 2 if owner and told else None  # the story's own verb ("switched", "keeps")
        edits = ("verbs", "adjust", "styles", "greyscale", "problems", "comparatives", "canvas", "background",
                 "undoable", "factors", ("text_overlay", "nouns"))
        return bool(starts) and not self.colours and not any(
            tag is not None and any(tag.has(*([e] if isinstance(e, str) else e)) for e in edits) and not (
                tag.has("remarks") or tag.has("filler") or self.words[k] in _NARRATED or k == narrated)
            for k, tag in enumerate(self.tags)) and not any(t.kind in ("quote", "caps", "number") and not (
                owner and k == 1) for k, t in enumerate(self.part))  # "our CMS keeps timing out": a name

    def _dated(self) -> bool:
        """A sentence about when things happen ("the promo starts Monday", "the campaign worked well last month")
        that does not open with a request or a verb of editing, nor says what is wrong, tells the story around the
        edit."""
        words = [w for w in self.words if w not in ("and", "but", "so", "also", "then", "please", "just")]
        opens = self.tags[self.words.index(words[0])] if words else None
        complaint = self.found("problems") or self.found("copulas") and self.found("adjust")  # "the shot from
        # last week is too dark" is about the photo
        told = any(t.text.islower() and can_be_verb(t.word) for t in self.part)  # not "Open Day 14 June": words
        # to write
        return bool(self.found("dates")) and told and not complaint and not self._request_frame(words) and not (
            opens is not None and opens.has("verbs") or words and can_be_verb(words[0]) and not can_be_noun(words[0]))

    def _destined(self) -> bool:
        """A clause led by where the photo goes ("for the museum's feed", "for an archive-style post") or saying
        something of it ("the template breaks with anything larger", "our readers respond better to drawings"),
        with no request, colour or words to write of its own: the story around the edit."""
        first_verb = next((t.start for t in self.found("verbs")), len(self.words))
        led = [t for t in self.found("destinations") if t.start < min(first_verb, 5)]
        ours = self.words[0] == "our" and not {"should", "must", "needs", "could", "would", "can"} & set(
            self.words)  # "our company colour is navy": what the brand is, no request
        if not led or self.colours and not ours or any(t.kind in ("quote", "caps") for t in self.part):
            return False
        if self.words[0] == "for":
            return first_verb == len(self.words)  # "for the kids' page" (not "for the sky, make it bluer")
        complaint = self.found("problems") or any(self.words[t.start] not in ("colour", "color", "colours", "colors")
                                                  for t in self.found("adjust")) or self.found("styles") or self.found(
            "canvas") or self.found("greyscale") or any(
            self.words[t.start] not in ("larger", "bigger", "smaller") for t in self.found("undoable"))
        return self.words[0] in ("the", "our", "my", "their", "its") and not (
            complaint or self._request_frame(self.words) or self.verbs() and self.verbs() != ["change"])

    @staticmethod
    def _request_frame(words: list[str]) -> bool:
        """Whether the words open as a request: "I want", "we'd love", "I'd rather", "could", "please"."""
        asking = ("want", "wants", "need", "needs", "wish", "prefer", "would", "could", "can", "please")
        mine = words[:1] and words[0] in ("i", "we", "i'd", "we'd", "i'm", "we're", "i've", "we've", "i'll", "we'll")
        return bool(mine and any(w in asking for w in words[:3]) or words[:2] and words[0] in ("i'd", "we'd") and words[
            1] in ("like", "love", "prefer", "want", "rather") or words[:1] and words[0] in ("can", "could", "would"))

    def _asks(self) -> bool:
        """Whether a word of the clause is the vocabulary's for an edit, a thing, a place or a value. A clause with
        none ("client wants options", "the listing goes live tonight") read as nothing is an aside beside an edit."""
        quiet = (("filler",), ("remarks",), ("pronouns",), ("copulas",), ("purpose",), ("scope", "whole"),
                 ("text_overlay", "said"), ("destinations",))  # "it", "the photo", "says": words of any sentence
        return bool(self.verbs() or self.colours or self._request_frame(self.words)) or any(
            t.kind in ("quote", "caps", "number") for t in self.part) or any(
            tag is not None and not all(any(m[: len(q)] == q for q in quiet) for m in tag.meanings)
            for tag in self.tags)

    def _colour_not_look(self, tag: Tag) -> bool:
        """Whether a look's word is a colour here ("make it charcoal", not "a charcoal drawing" or "charcoal
        style"): it names a colour and no word of the clause names a look."""
        looks = ("style", "look", "effect", "drawing", "sketch", "painting", "filter", "drawn", "version")
        return any(a <= tag.start and tag.end <= b for a, b, _ in self.colours) and not set(self.words) & set(looks)

    def _stated_about(self) -> list[int]:
        """The words naming what a statement is about: before its verb of being ("the cup is fine"), or after
        "there's" ("there's a logo near the nose")."""
        copula = next((t for t in self.found("copulas")), None)
        if copula is None:
            return [k for k in range(len(self.part)) if not self.used[k]]
        there = self.words[copula.start].startswith("there")
        span = range(copula.end, len(self.part)) if there else range(copula.start)
        return [k for k in span if not self.used[k]]

    def _was_colour(self, start: int) -> int | None:
        """Where the words saying a colour is the one a thing has now begin ("not", "instead of", "rather than",
        "from" before it, a few descriptive words between), or None."""
        for k in range(start - 1, max(-1, start - 4), -1):
            if self.words[k] in ("not", "from") or self.words[k - 1 : k + 1] in (["instead", "of"], ["rather", "than"]):
                return k - (self.words[k] in ("of", "than"))
            if self.words[k] in ("to", "and", ",") or self.tags[k] is not None and self.tags[k].has("verbs"):
                return None
        return None

    def _found_after(self, k: int) -> bool:
        """Whether a thing a finder sees is named after position ``k`` ("from the sky", not "from my old phone")."""
        return any(t is not None and (t.has("finder_words") or t.has("background")) for t in self.tags[k + 1 :])

    def _why_only(self) -> bool:
        """A clause that only says why or how much: it starts with a purpose ("I just want the empty backdrop") and
        names no change, or is only strength and filler ("really subtle")."""
        asks = any(self.found(c) for c in ("adjust", "styles", "greyscale", "comparatives", "canvas", "problems")
                   ) or bool(self.colours) or any(t.kind in ("quote", "caps") for t in self.part)
        lead = self.vocab.phrase_at(self.words, 0, "purpose")
        if lead is None and self.words[0] in ("we", "i", "they"):
            lead = self.vocab.phrase_at(self.words, 1, "purpose")  # "we only want the bare table"
        starts = lead is not None and not (self.verbs() or asks)
        same = self.words[0] == "same" and not self.verbs()  # "same shape and light": what stays
        return starts or same or all(self.part[k].kind != "word" or self.tags[k] is not None and (
            self.tags[k].has("strength") or self.tags[k].has("filler")) for k in range(len(self.part)))

    def _only_names(self) -> bool:
        """Whether every word is filler, scope or part of a thing named (no verb, nothing asked)."""
        stated = any(w in ("should", "be", "is", "are", "must", "needs") or w.endswith("er") and w not in (
            "her", "over", "other", "rather", "either", "after", "under", "never", "ever") for w in self.words)
        return not self.verbs() and not stated and all(
            self.part[k].kind != "word" or self.tags[k] is None and (can_be_noun(self.words[k]) or can_describe(
                self.words[k])) or self.tags[k] is not None and any(self.tags[k].has(c) for c in (
                    "filler", "scope", "finder_words", "subject", "not_subject", "places", "pronouns", "remarks",
                    "background", "relations", "destinations"))  # "the sky behind it", "the sky above the lighthouse"
            for k in range(len(self.part)))

    def _how_it_stays(self) -> bool:
        """Whether the clause only says how the edit should stay ("keep it natural", "but keep them subtle")."""
        keep = next((t for t in self.tags if t is not None and (t.has("verbs", "keep") or t.has("scope", "except"))
                     and self.words[t.end - 1] == "keep"), None)
        if keep is None or keep.end >= len(self.words) or self.words[keep.end] not in ("it", "them", "things"):
            return False
        if any(self.part[k].kind == "word" and not (self.tags[k] is not None and self.tags[k].has("filler"))
               for k in range(keep.start)):
            return False  # "denoise it but keep it sharp": a change comes first
        rest = [k for k in range(keep.end + 1, len(self.part)) if self.part[k].kind == "word"]
        return all(self.tags[k] is None and can_describe(self.words[k]) or self.tags[k] is not None and (
            self.tags[k].has("filler") or self.tags[k].has("strength")) for k in rest)

    def _use_look_words(self, end: int) -> None:
        """The words describing a look just before it are the look's ("that old faded vintage look")."""
        k = end - 1
        while k >= 0 and self.words[k] not in ("the", "a", "an", "that", "this"):
            tag = self.tags[k]
            coloured = any(a <= k < b for a, b, _ in self.colours)  # "that old brownish sepia"
            described = tag is None or tag.meanings == (("background_kinds",),)  # "a plain pencil sketch"
            if not (described and can_describe(self.words[k]) or tag is not None and tag.has("adjust") or coloured):
                break
            self.used[k] = True
            k -= 1

