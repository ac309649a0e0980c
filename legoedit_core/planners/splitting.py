"""An instruction's tokens cut into clauses: at sentence ends, list markers, "then" / "also", and at "and", "but" or
a comma before another request (``split``). What each clause says is read by ``clause_reader``."""

from __future__ import annotations

from legoedit_core.planners.phrases import ABBREVIATIONS
from legoedit_core.planners.reading import colour_spans, tag_list
from legoedit_core.planners.vocabulary import Tag, Token, Vocabulary, can_be_verb, vocabulary

_DETERMINERS = {"a", "an", "the", "some", "her", "his", "their", "its", "my", "this", "that"}
_PRONOUNS = ("it", "this", "that", "he", "she", "they", "there", "which", "what")
_MODALS = ("should", "must", "needs", "has", "can", "will", "stays", "remains", "is", "looks")
_SUBJECTS = ("we", "i", "we're", "i'm", "we've", "i've", "we'd", "i'd", "they", "they're", "i'll", "we'll")
_INTERJECTIONS = {"lol", "haha", "hehe", "lmao", "tbh", "ngl", "btw", "xx"}  # end a clause, say nothing
_OWN_VERBS = ("remove", "blur", "hide", "sharpen", "denoise", "smooth", "crop", "rotate", "flip", "resize", "write",
              "pad", "isolate")  # verbs that name one change each ("make", "add", "more" name none of their own)
_SPLIT_WORDS = {"then", "also", "afterwards", "after", "finally", "plus"}
_EDIT_VERBS = ("remove", "change", "blur", "hide", "sharpen", "denoise", "smooth", "crop", "rotate", "flip", "resize",
               "write", "add", "replace", "pad", "isolate", "increase", "decrease", "fill")


def split(toks: list[Token]) -> list[list[Token]]:
    """The tokens of each clause: split at ; . ! ?, at "then" / "also", and at "and" or a comma before a verb."""
    toks = _without_asides(toks)
    vocab = vocabulary()
    words = [t.word for t in toks]
    tags = vocab.tag(words)
    covered = tag_list(words)  # an "and" inside a phrase ("black and white") ends nothing
    parts: list[list[Token]] = [[]]
    markers = _list_markers(toks)
    for i, token in enumerate(toks):
        if i in markers or token.word in _INTERJECTIONS:
            if parts[-1]:
                parts.append([])
        elif token.word == ":" and (_between_numbers(toks, i) or i + 1 < len(toks) and toks[i + 1].kind == "quote"
                                  or any(t is not None and t.has("text_overlay", "nouns") for t in tags[:i])):
            parts[-1].append(token)  # "16:9", "caption: 'Hello'", "caption: Hello"
        elif covered[i] is not None and covered[i].start < i < covered[i].end - 1:
            parts[-1].append(token)
        elif token.word in ("plus", "minus") and i + 1 < len(toks) and toks[i + 1].kind == "number":
            parts[-1].append(token)  # "plus 50 percent": a sign, not a second request
        elif token.word in _SPLIT_WORDS or parts[-1] and _ends_clause(toks, tags, i, parts[-1]):
            if parts[-1]:
                parts.append([])
        elif token.kind != "punct" or token.word in ",%°:&" or token.word == "." and i and (
                len(toks[i - 1].text) == 1 or toks[i - 1].text in ABBREVIATIONS):
            parts[-1].append(token)
    parts = [p[: max(k + 1 for k, t in enumerate(p) if t.word != ",")] for p in parts if any(
        t.kind != "punct" for t in p)]  # a comma left at a clause's end belongs to no clause
    return parts


def _list_markers(toks: list[Token]) -> set[int]:
    """The places of a numbered list's markers ("1) crop to the cup 2) warmer", "1. white background"): a number
    with a closing parenthesis that none opened, or a number and a full stop at the start or after a break."""
    markers: set[int] = set()
    depth = 0
    for i, token in enumerate(toks):
        depth += (token.word == "(") - (token.word == ")" and depth > 0)
        if token.kind != "number" or i + 2 >= len(toks) or toks[i + 2].kind == "punct":
            continue
        after_break = i == 0 or toks[i - 1].kind == "punct" and toks[i - 1].word != ","
        if toks[i + 1].word == ")" and depth == 0 or toks[i + 1].word == "." and after_break:
            markers |= {i, i + 1}
    return markers


def tonal_only(piece: list[Token]) -> bool:
    """Whether a clause is only a tonal word and its strength ("warmer", "a bit more contrast"), no verb or thing."""
    tags = vocabulary().tag([t.word for t in piece])
    return all(t.kind == "punct" or tag is not None and (tag.has("adjust") or tag.has("greyscale") or tag.has(
        "styles") or tag.has("strength") or tag.has("filler") or tag.has("verbs", "increase") or tag.has(
        "verbs", "decrease")) for t, tag in zip(piece, tags, strict=True))


def _between_numbers(toks: list[Token], i: int) -> bool:
    return 0 < i < len(toks) - 1 and toks[i - 1].kind == "number" and toks[i + 1].kind == "number"


def _ends_clause(toks: list[Token], tags: list[Tag | None], i: int, part: list[Token]) -> bool:
    """Whether the clause so far (``part``) ends at token ``i``: at ; . ! ? : ( ), at "then" / "also", at a comma
    before a statement ("..., it's too dark"), at "and", "but" or a comma before a verb."""
    token, vocab = toks[i], vocabulary()
    if token.word == "." and i and (len(toks[i - 1].text) == 1 and toks[i - 1].text.isupper() or toks[
            i - 1].text in ABBREVIATIONS):
        return False  # an initial or a title ("J. Reyes", "Dr. Collins")
    if token.word in "()":
        return False  # a parenthesis says more about its clause: "flip it (vertical)"
    if token.word == "!" and i and toks[i - 1].text[:1].isupper() and i + 1 < len(toks) and toks[
            i + 1].text[:1].islower() and _writes(part, titled=True):
        return False  # "put Happy Birthday Grandma! at the bottom": the words to write go on
    if token.kind == "punct" and token.word in ";.!?:-–—":
        return True
    if token.word not in ("and", ",", "but", "with"):
        return False
    if token.word == "and" and i and toks[i - 1].word in ("nice", "good", "lovely"):
        return False  # "nice and crisp": crisp, said warmly
    rest = toks[i + 1 : next((k for k in range(i + 1, len(toks)) if toks[k].word in (",", "and", ".", ";", "!", "?")),
                             len(toks))]  # the words up to the next break
    if token.word == "and" and _pairs(part, rest):
        return True  # "her hair should be blue, and her suit red": two thing-colour pairs, with or without a verb
    if token.word == "," and [r.word for r in rest[:2]] in ([m, p] for m in ("could", "can", "would", "will")
                                                             for p in ("it", "you", "we", "that", "they")):
        return True  # "her suit is too loud, could it be navy": the request after what is said
    if not _has_action(part, vocab):
        return False
    if token.word == "and" and _writes(rest) and not _writes(part):
        return True  # "greyscale, and tile 'MEMBERS ONLY' over it": words to write are a clause of their own
    if token.word == "and" and _words_to_write(rest) and not _words_to_write(part):
        return True  # "sepia and at the top the words 'Day One'": so are words to write without a verb
    if token.word in ("and", ",") and _canvas(rest, vocab) and not _canvas(part, vocab):
        return True  # "the word NEW top left and a square canvas": a canvas too
    first = tags[i + 1] if i + 1 < len(tags) else None
    then = tags[i + 2] if i + 2 < len(tags) else None
    if token.word == "," and toks[i + 1].word == "so" and then is not None and then.start == i + 2 and (
            then.has("verbs") or then.has("adjust")) and can_be_verb(toks[i + 2].word):
        return True  # "the dog should pop, so darken everything around it": the request it leads to
    if token.word == "," and vocab.phrase_at([t.word for t in toks], i + 1, "purpose") is not None:
        return False  # "remove the bottle, I just want the backdrop": why, not a second change
    if token.word == "," and (rest[:1] and rest[0].word in _SUBJECTS or _someone_does(rest)):
        return True  # "take off the patch, we can't use it", "..., the buyer wants options": a clause of its own
    if token.word == "," and i + 1 < len(toks) and toks[i + 1].word in ("not", "rather", "instead"):
        return False  # "red, not green": what it is now
    if token.word == "," and rest[:1] and rest[0].word in ("to", "by") and any(
            r.kind == "number" or tags[i + 1 + k] is not None and tags[i + 1 + k].has("factors")
            for k, r in enumerate(rest)):
        return False  # "knock the saturation down, to about a fifth": how much
    if token.word == "," and _writes(part) and not any(t is not None and t.has("verbs") for t in vocab.tag(
            [r.word for r in rest])) and (not rest or rest[0].kind == "caps" or rest[0].word == "in"):
        return False  # "put BUT FIRST, COFFEE at the top", "stamp 'SALE' across it, in red": the same words
    if token.word == "," and {"gradient", "shaded", "fading"} & {t.word for t in [*part, *rest]} and not any(
            tag is not None and tag.has("verbs") for tag in vocab.tag([t.word for t in rest])[:2]):
        return False  # "a gradient, black fading to grey": the gradient's colours
    if token.word == "," and (_has_action(rest, vocab) or first is not None and first.has("remarks")):
        return True
    if token.word == "with":  # "black and white with a bit more contrast": a second change, not "a navy colour"
        words = [p.word for p in part]
        nouns = {b for _, b, _ in colour_spans(words)} | {k + 1 for k, w in enumerate(words) if w in _DETERMINERS}
        verbs = [t for t in vocab.tag(words) if t is not None and t.has("verbs") and t.start not in nouns]
        if any(t is not None and t.has("canvas") for t in vocab.tag([r.word for r in rest])):
            return bool(_has_tonal(part, vocab) or verbs)  # "black and white with a thin white border"
        return _has_tonal(rest, vocab) and not colour_spans([t.word for t in rest]) and bool(
            _has_tonal(part, vocab) or verbs)  # not "that white strip with writing is too bright": a thing, described
    if token.word in ("and", ",") and _tonal_kinds(rest, vocab) - _tonal_kinds(part, vocab):
        return True  # "greyscale, more contrast", "blur it and warm up her skin": one change each
    if token.word in ("and", ",") and _change_kinds(part, vocab) and _change_kinds(rest, vocab) - _change_kinds(
            part, vocab) - {"change"}:
        return True  # "a little brighter + a bit of sharpening", "sharper, and 1200 wide"
    if token.word == "and" and _tonal_kinds(part, vocab) and any(
            t is not None and t.has("canvas") for t in vocab.tag([r.word for r in rest])):
        return True  # "more contrast and a black frame"
    ahead = next((k for k in range(i + 1, min(len(toks), i + 4)) if tags[k] is None or tags[k].meanings != (
        ("filler",),)), None)
    nxt = tags[ahead] if ahead is not None else None
    verb_next = nxt is not None and (any(nxt.has("verbs", v) for v in _EDIT_VERBS) or (
        (nxt.has("adjust") or nxt.has("greyscale")) and toks[nxt.start].word.endswith("en")))
    if token.word == "and" and nxt is not None and nxt.has("verbs", "keep") and nxt.start == i + 1:
        return True  # "wipe the cat out and keep only the blurred room": what stays is a clause of its own
    if token.word == "and" and i + 1 < len(toks) and toks[i + 1].word in ("sit", "stand", "set"):
        return True  # "recolour the box and sit it on a grey gradient": a placing of its own
    if token.word == "and" and _unknown_verb_next(toks, tags, i):
        return True  # "... and pop a hat on her": a change the vocabulary lacks is a clause of its own
    if token.word == "and" and i and tags[i - 1] is not None and tags[i - 1].has("problems") and (
            i + 2 >= len(toks) or toks[i + 2].kind == "punct"):
        return False  # "too cold and blue": one problem said two ways
    if token.word == "and" and i + 1 < len(toks) and toks[i + 1].kind in ("quote", "caps") and not _writes(part):
        return True  # "sky purple + 'T-minus 10' up top": words to write are a clause of their own
    if token.word == "and" and _second_object(toks, part, i):
        return True  # "add 'Hi' at the top and some steam": a second thing to add
    return verb_next or token.word in (",", "but") and _statement_next(tags, i) or token.word == "and" and _pairs(
        part, rest)


def _without_asides(toks: list[Token]) -> list[Token]:
    """The tokens without a parenthesis that is only a remark ("(sorry my english)", "(thanks!)")."""
    vocab, kept, i = vocabulary(), [], 0
    while i < len(toks):
        close = next((k for k in range(i + 1, len(toks)) if toks[k].word == ")"), None) if toks[i].word == "(" else None
        inside = vocab.tag([t.word for t in toks[i + 1 : close]]) if close is not None else []
        if close is not None and any(t is not None and t.has("remarks") for t in inside):
            i = close + 1
            continue
        kept.append(toks[i])
        i += 1
    return kept


def _someone_does(rest: list[Token]) -> bool:
    """Whether the words open with someone or something doing a thing: "the buyer wants", "my son thinks", "the
    printer complained" (a noun, then a verb in -s or -ed)."""
    words = [t.word for t in rest[:3]]
    k = 2 if words[:1] and words[0] in ("the", "my", "our", "their", "his", "her") else 1
    if words[:1] and words[0] in ("he", "she", "they") and len(words) > 1 and words[1] in _MODALS:
        return True  # "..., she should stay in colour"
    if len(words) <= k or rest[k - 1].kind != "word" or words[0] in _PRONOUNS and words[0] not in (
            "he", "she") or not words[k].endswith(("s", "ed")):
        return False
    return can_be_verb(words[k].removesuffix("s").removesuffix("e" if words[k].endswith("ed") else "")
                       ) or can_be_verb(words[k].removesuffix("d").removesuffix("ed"))


def _words_to_write(part: list[Token]) -> bool:
    return any(t.kind in ("quote", "caps") for t in part)


def _canvas(part: list[Token], vocab: Vocabulary) -> bool:
    return any(t is not None and t.has("canvas", "square") for t in vocab.tag([t.word for t in part]))


def _writes(part: list[Token], titled: bool = False) -> bool:
    """Whether a clause so far asks to write words: a verb of writing or adding, and words quoted or in capitals
    (or, ``titled``, capitalised)."""
    return any(t.kind in ("quote", "caps") or titled and t.text[:1].isupper() for t in part[1:]) and any(
        t.word in ("write", "put", "add", "stamp", "type", "print", "caption", "label", "place", "tile", "overlay",
                   "watermark", "slap", "stick", "pop", "set") for t in part)


def _unknown_verb_next(toks: list[Token], tags: list[Tag | None], i: int) -> bool:
    """Whether a verb the vocabulary lacks follows position ``i``, then a determiner ("pop a hat on her")."""
    tag = tags[i + 1] if i + 1 < len(tags) else None
    if i + 2 >= len(toks) or toks[i + 1].kind != "word" or tag is not None and not tag.has("undoable", "vague"):
        return False
    return can_be_verb(toks[i + 1].word) and (toks[i + 2].word in _DETERMINERS or toks[i + 2].kind in ("quote", "caps"))


def _second_object(toks: list[Token], part: list[Token], i: int) -> bool:
    """Whether "and" after words to add starts a second thing to add ("some steam", "a hat"), not more words."""
    adds = any(t.word in ("add", "put", "insert", "include") for t in part)
    written = any(t.kind in ("quote", "caps") for t in part)
    return adds and written and i + 1 < len(toks) and toks[i + 1].word in ("some", "a", "an") and not any(
        t.kind in ("quote", "caps") for t in toks[i + 1 :])


def _pairs(part: list[Token], rest: list[Token]) -> bool:
    """Whether "and" joins two (thing, colour) pairs under one verb: "make her hair blonde and her jacket black"."""
    def colour_last(words: list[str]) -> bool:
        spans = colour_spans(words)
        return bool(spans) and spans[-1][1] == len(words) and spans[-1][0] > 0
    rest_words = [t.word for t in rest if t.kind == "word"]
    rest_words = [w for w in rest_words if w not in ("the", "a", "an", "her", "his", "their", "its", "my")]
    return colour_last([t.word for t in part if t.kind == "word"]) and colour_last(rest_words)


def _tonal_kinds(part: list[Token], vocab: Vocabulary) -> set[str]:
    """The tonal changes a run of tokens names: each adjusted attribute, greyscale, a style."""
    kinds: set[str] = set()
    for tag in vocab.tag([t.word for t in part]):
        if tag is not None and tag.has("adjust"):
            kinds.add(tag.get("adjust")[1])  # type: ignore[index]
        elif tag is not None and (tag.has("greyscale") or tag.has("styles")):
            kinds.add("look")
        elif tag is not None and tag.has("problems") and (" " in tag.get("problems")[1] or tag.has(  # type: ignore
                "problems", "denoise")):
            kinds.add(tag.get("problems")[1].split()[0])  # type: ignore[index]  # "murky and flat": two fixes
    return kinds


def _change_kinds(part: list[Token], vocab: Vocabulary) -> set[str]:
    """The kinds of change a run of tokens names: its tonal changes and looks, edit verbs, a rotation, a flip, a
    canvas, a size in pixels."""
    kinds = _tonal_kinds(part, vocab)
    words = [t.word for t in part]
    tags = vocab.tag(words)
    for tag in tags:
        verb = tag.get("verbs") if tag is not None else None
        before = tags[tag.start - 1] if tag is not None and tag.start else None
        denied = tag is not None and tag.start and (words[tag.start - 1] in ("no", "not") or (
            before is not None and before.has("negation")))  # "don't crop": no change of its own
        if verb is not None and verb[1] in _OWN_VERBS and not denied:
            kinds.add(verb[1])
        if tag is not None and (tag.has("canvas", "square") or tag.has("canvas", "border")):
            kinds.add("canvas")
    if any(t.kind == "number" for t in part) and any(w in ("px", "pixels", "wide", "tall", "high") for w in words):
        kinds.add("size")
    if any(tag is not None and tag.has("factors") for tag in tags) and {"as", "the"} & set(words) and {
            "big", "large", "small", "size", "wide", "tall"} & set(words):
        kinds.add("size")  # "and half as big", "and half the size"
    return kinds


def _has_tonal(part: list[Token], vocab: Vocabulary) -> bool:
    tags = vocab.tag([t.word for t in part])
    return any(t is not None and (t.has("adjust") or t.has("styles") or t.has("greyscale")) for t in tags)


def _statement_next(tags: list[Tag | None], i: int) -> bool:
    """Whether the words after position ``i`` state something ("it's too dark", "the fur looks soft")."""
    ahead = [t for t in tags[i + 1 : i + 5] if t is not None]
    return any(t.has("copulas") or t.has("problems") for t in ahead)


def _has_action(part: list[Token], vocab) -> bool:
    tags = vocab.tag([t.word for t in part])
    if any(t.kind == "number" for t in part) and any(t is not None and (t.has("rotation") or t.has(
            "units", "pixels")) for t in tags):
        return True  # "90 clockwise", "800px wide"
    acts = ("verbs", "adjust", "styles", "greyscale", "problems", "comparatives", "canvas", "background", "factors",
            "undoable")
    words = [t.word for t in part]
    return any(t is not None and any(t.has(a) for a in acts) for t in tags) or any(
        t.kind in ("quote", "caps") for t in part) or bool(colour_spans(words))  # "the sky deeper blue, and ..."
