"""Reading an instruction as people write it: the words put right, then one clause at a time its intent and slots.

``normalise`` lower-cases, expands shorthands ("bg", "b/w", "pls"), corrects misspelt domain words against the
planner's vocabulary (difflib), and drops what carries no edit: politeness and question frames ("could you ...?"),
fillers ("pure", "nice", "please"), purpose clauses ("so she stands out", "for the product page"). ``read_clause``
then reads a clause into a ``Reading``: an intent with its slots (target, colour, text, position, strength, style),
written back as the canonical phrasing the rule families parse ("make the jacket burgundy"). Changes no brick here
can make (head pose, expressions, added objects, materials) are an ``Impossible`` reading with the reason.
"""

from __future__ import annotations

import difflib
import functools
import re
from dataclasses import dataclass, field

from legoedit_core.bricks.cpu.colors import parse_color

SHORTHANDS = {
    r"\bbg\b": "background", r"\bb\s*/\s*w\b": "black and white", r"\bb\s*&\s*w\b": "black and white",
    r"\bpl[sz]\b": "please", r"\bur\b": "your", r"\bpics?\b": "picture", r"\bimg\b": "image", r"\blil\b": "little",
    r"\bw/": "with ", r"->": " to ", r"\bcolors\b": "colours", r"\bcolor\b": "colour", r"\bgray\b": "grey",
    r"(?<=[a-z])-(?=[a-z])": " ", r"\bcentre\b": "center", r"\bblonde\b": "blond", r"\bwatercolor\b": "watercolour",
    r"\s&\s": " and ",
}


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Words the planner acts on, against which misspellings are corrected; and common words near them that are
# spelt right (so "back" is not read as "black").
VOCABULARY = _words("""
background backdrop blur blurry blurred remove erase delete brighter brighten brightness lighten darker darken
sharpen sharper crisper denoise noise grainy grain contrast saturation saturated vibrant vivid greyscale
grayscale monochrome black white burgundy jacket shirt sweater hoodie clothes outfit colour recolour watermark
caption text lettering writing letters crop square rotate mirror flip resize square border frame sketch pencil
cartoon watercolour painting vintage sepia portrait please purple orange yellow green brown violet magenta
turquoise exposure warmer cooler colder saturate desaturate transparent isolate horizontally vertically
clockwise
""")
COMMON = _words("""
back brand blank block track trace stack blue blues shirt short shot sharp share shape shade bright right
light night sight tight fight might brick bride broke brake crap drop crow grow grew grey great green greet
greed remote remain reduce rotate relate create curate rack lack black slack slick stick bring brings weather
whiten lighter sweeter vertical horizontal letter better matter batter
""")
POLITE = re.compile(
    r"^(?:(?:hey|hi|hello)\b(?: team| there)?\W*\s*)?(?:(?:please|kindly|ok|okay|so)\s+)*"
    r"(?:(?:can|could|would|will) (?:you|we|u)(?: please)?(?: just)?\s+|is it possible to\s+|i(?:'d| would) like "
    r"(?:you to\s+|to\s+)?|i (?:want|need) (?:you to\s+)?|we (?:want|need) (?:you to\s+)?|let's\s+|help me\s+|"
    r"(?:please|pls)\s+|just\s+|try to\s+)*")
FILLERS = re.compile(r"\b(?:please|kindly|thanks|thank you|nice(?:ly)?|pure|really|just|simply|entirely|maybe|"
                     r"for me|if possible|if you can|instead|overall|tightly|closely)\b")
PURPOSE = re.compile(r"\s+(?:so that|so|because|since|which|as it|as they|to make (?:it|her|him|them) stand out|"
                     r"to match|in order to)\b.*$")
_FOR_PURPOSE = re.compile(r"\s+for (?:the |a |an |our |my |your |this |that |his |her |their )?(?P<what>[^,]+)$")
# A trailing remark about the photo: ", the fur looks soft", ", it's for our shop", ", fix it".
REMARK = re.compile(r",\s*(?:(?:the|it|this|that|she|he|they|it's|its)\b[^,]*\b(?:looks?|is|are|seems?|feels?|'s|for)\b"
                    r"|fix it|thanks?|thank you|i (?:just|only) want|(?:and )?keep (?:only|just))[^,]*$")
CHATTER = re.compile(r"^(?:it'?s|it is|it feels|it looks|this is|that is|that's|they're|thanks?|thank you|hi|hey|"
                     r"hello|cheers|i just want|i only want|we only want|keep (?:only|just)|only keep|leave only|"
                     r"and keep (?:only|just))\b")

WHOLE_WORDS = r"(?:it|this|the (?:whole )?(?:image|photo|picture|shot|scene)|everything|the whole thing)"
STRENGTH_WORDS = {
    "slight": r"\b(?:a (?:little )?bit|a little|slightly|a tad|a touch|somewhat|a small amount|subtly|gently|"
              r"mildly|little|lightly|marginally|barely)\b",
    "strong": r"\b(?:a lot|much|very|significantly|way|strongly|heavily|dramatically|considerably|far|lots|"
              r"really|massively)\b",
}
STRENGTH = {"slight": 0.35, "normal": 1.0, "strong": 1.8}

# Subject nouns for things a person would change: the body parts that pose edits move, the looks that expression
# edits change, materials a recolour cannot give.
_BODY = r"(?:head|face|arm|arms|hand|hands|leg|legs|body|eyes?|gaze|shoulders?|neck|torso|chin)"
_SUBJECT_PRONOUN = r"(?:her|his|their|the (?:\w+'s |\w+ )?|its |my )"
IMPOSSIBLE: list[tuple[str, re.Pattern[str]]] = [
    ("a pose change (moving a head, a limb or a body)", re.compile(
        rf"\b(?:turn|rotate|tilt|move|raise|lift|lower|bend|cross|point|fold|twist|nod|shift)\b.*\b{_BODY}\b"
        rf"|\b(?:sit|stand|kneel|jump|dance|lie) (?:down|up)\b|\b(?:make|have|let) \S+(?: \S+)? "
        rf"(?:sit|stand|kneel|jump|wave|dance|walk|run)\b|\blook(?:ing)? (?:to|towards|at|"
        rf"away|left|right|up|down)\b|\bface (?:the camera|left|right|forward)\b")),
    ("an expression change", re.compile(
        r"\b(?:smile|smiling|frown|frowning|grin|laugh|wink|cry|crying|pout|angry|happy|sad|surprised|"
        r"expression|mouth open)\b|\b(?:open|close|shut)\b.*\beyes?\b")),
    ("adding something that is not in the photo", re.compile(
        r"^(?:add|insert|put|place|give|include|draw|paint in)\s+(?!(?:\w+ ){0,5}(?:border|frame|margin|padding|"
        r"text|words?|caption|title|label|watermark|headline|line|slogan|copyright|stamp|sign|background|backdrop)"
        r"\b)(?!['\"“‘A-Z])(?!(?:it|this|the (?:image|photo|picture)|them|me|us) )(?!more\b|some (?:more )?"
        r"(?:contrast|saturation|warmth|brightness|sharpness|blur)\b)")),
    ("a named artist's or studio's style (needs a generative model)", re.compile(
        r"\b(?:van gogh|picasso|monet|pixar|disney|ghibli|dali|rembrandt|warhol|simpsons)\b")),
    ("a material or texture change (leather, metal, wood ...)", re.compile(
        r"\b(?:leather|metal(?:lic)?|chrome|wood(?:en)?|marble|glass|velvet|denim|silk(?:y)?|plastic|stone|"
        r"concrete|fabric|furry|golden metal)\b")),
    ("a change of age, size or shape of the subject", re.compile(
        r"\b(?:younger|older|taller|shorter|thinner|slimmer|fatter|hairstyle|haircut|teeth|wrinkles?|makeup|"
        r"muscles?)\b|^(?!(?:make|scale|resize|get) (?:it|this|the (?:image|photo|picture))\b)(?!.*\d\s*(?:%|px|"
        r"pixels)).*\b(?:bigger|smaller|larger|wider)\b")),
    ("outpainting (showing more than the photo holds)", re.compile(r"\bshow more\b|\bzoom out\b|\bextend the\b")),
]


@dataclass
class Reading:
    """One clause read: ``text`` is the canonical phrasing (what the families parse), ``strength`` a multiplier."""

    text: str
    strength: float = 1.0
    slots: dict[str, str] = field(default_factory=dict)


class Impossible(ValueError):
    """A change no brick of this planner can make; the message says which kind."""


@functools.lru_cache(maxsize=4096)
def _correct(word: str) -> str:
    if len(word) < 4 or word in VOCABULARY or word in COMMON or not word.isalpha():
        return word
    close = difflib.get_close_matches(word, VOCABULARY, n=1, cutoff=0.87)
    return close[0] if close else word


def normalise(instruction: str) -> str:
    """The instruction lower-cased, shorthands expanded, misspellings of domain words corrected; quoted words and
    words in capitals are kept as written (they may be text to draw)."""
    pieces = re.split(r"(\"[^\"]*\"|'[^']*'|“[^”]*”|‘[^’]*’|\b[A-Z][A-Z0-9]+(?:\s+[A-Z][A-Z0-9]+)*\b)", instruction)
    out = []
    for index, piece in enumerate(pieces):
        if index % 2:
            out.append(piece)
            continue
        text = piece.lower()
        for pattern, replacement in SHORTHANDS.items():
            text = re.sub(pattern, replacement, text)
        text = re.sub(r"[a-z]+", lambda m: _correct(m.group(0)), text)
        out.append(text)
    return re.sub(r"\s+", " ", "".join(out)).strip()


def strip_frames(clause: str) -> str:
    """The clause without politeness, question frames, fillers and trailing purpose clauses."""
    text = clause.strip(" ,.!?:;-")
    text = REMARK.sub("", POLITE.sub("", text))
    text = re.sub(r"\b(?:what|the (?:part|area|region|object|thing)) (?:i|we|you) (?:selected|marked|masked|drew|"
                  r"highlighted)\b", "the selected area", text)
    text = FILLERS.sub(" ", text)
    text = PURPOSE.sub("", text)
    purpose = _FOR_PURPOSE.search(text)
    if purpose and parse_color(purpose.group("what")) is None and not re.match(r"(?:swap|exchange|trade)\b", text) \
            and not re.search(r"['\"“‘]", purpose.group("what")):
        text = text[: purpose.start()]
    return re.sub(r"\s+", " ", text).strip(" ,.!?:;-")


def is_chatter(clause: str) -> bool:
    """A clause that carries no edit of its own: "it's for our shop", "thanks", "I just want the cup"."""
    return bool(CHATTER.match(clause)) or not clause


def impossible(clause: str) -> str | None:
    """Why no brick here can do ``clause`` (pose, expression, adding objects, materials ...), or None."""
    for reason, pattern in IMPOSSIBLE:
        if pattern.search(clause):
            return reason
    return None


def strength_of(clause: str) -> tuple[float, str]:
    """(multiplier, the clause without its strength words): "a bit brighter" -> (0.35, "brighter")."""
    for name in ("slight", "strong"):
        if re.search(STRENGTH_WORDS[name], clause):
            rest = re.sub(STRENGTH_WORDS[name], " ", clause)
            return STRENGTH[name], re.sub(r"\s+", " ", rest).strip()
    return STRENGTH["normal"], clause


# ------------------------------------------------------------------------------------------------ intent readers
# Each reader looks for one intent's cue and, when it finds it, returns the canonical clause with its slots filled
# in from wherever in the sentence they were written; None lets the next reader try.

TEXT_NOUNS = (r"(?:text|watermark|caption|captions|writing|words|lettering|letters|logo text|subtitles|label|"
              r"date stamp|timestamp|time stamp)")
_SIDE = re.compile(r"\b(?:(?:at|in|on|from|along) (?:the )?)?((?:top|bottom|upper|lower)(?:[- ](?:left|right))?"
                   r"|left|right)(?: (?:corner|edge|side|half))?\b")
COLOUR_FILLERS = frozenset({"soft", "nice", "plain", "solid", "pure", "bright", "a", "an", "the", "deeper", "rich",
                            "to", "in", "into", "of", "and", "with", "on", "make", "paint", "colour", "background"})
_POSITIONS = {"top left": "top-left", "upper left": "top-left", "top right": "top-right", "upper right": "top-right",
              "bottom left": "bottom-left", "lower left": "bottom-left", "bottom right": "bottom-right",
              "lower right": "bottom-right", "top": "top", "bottom": "bottom", "center": "center", "middle": "center"}


def colour_in(text: str) -> tuple[str, int] | None:
    """(the longest run of words in ``text`` that names a colour, where it starts) or None."""
    words = list(re.finditer(r"[a-z#0-9]+", text))
    best: tuple[str, int] | None = None
    for i in range(len(words)):
        for j in range(i + 1, min(len(words), i + 3) + 1):
            span = " ".join(w.group(0) for w in words[i:j])
            if span.split()[0] in COLOUR_FILLERS or span.split()[-1] in COLOUR_FILLERS:
                continue
            if parse_color(span) is not None and (best is None or len(span) > len(best[0])):
                best = (span, words[i].start())
    return best


def _background(clause: str) -> str | None:
    behind = re.search(r"\b(?:everything|what'?s|what is|the (?:area|space|scene)|all) behind\b"
                       r"|^(?:blur|defocus|soften)\s+behind\b", clause)  # not "the dog behind her"
    isolate = re.match(r"(?:isolate|cut out|extract)\b", clause)
    if not (re.search(r"\b(?:background|backdrop)\b", clause) or behind or isolate or "transparent" in clause):
        return None
    if re.search(rf"\b{TEXT_NOUNS}\b", clause):
        return None  # "remove the text in the background" is about the text
    if re.search(r"\b(?:blur\w*|bokeh|defocus\w*|out of focus|soft focus)\b", clause):
        return "blur the background"
    if "gradient" in clause:
        return "change the background to " + clause[clause.index("gradient"):]
    colour = colour_in(re.sub(r"\b(?:background|backdrop)\b", " ", clause))
    if colour:
        return f"change the background to {colour[0]}"
    if re.search(r"\b(?:remove|delete|erase|get rid of|cut out|transparent|isolate|extract|drop|no)\b", clause):
        return "remove the background"
    new = re.search(r"\b(?:background|backdrop)\b\s*(?:to|with|into|for|as|on|should be|is|be|of)\s+(?P<what>.+)$",
                    clause)
    return f"change the background to {new.group('what')}" if new else None


def _black_and_white(clause: str) -> str | None:
    cue = re.search(r"black and white|\bgr[ae]y ?scale\b|\bmonochrome\b|\bcolou?rless\b|"
                    r"\bdesaturate(?: (?:it|this|the \w+))? (?:completely|fully|entirely|totally)\b|"
                    r"^(?:remove|drop|strip|take out) (?:all )?(?:the )?colou?rs?\b|^no colou?rs?\b", clause)
    if not cue:
        return None
    before = clause[: cue.start()]
    target = re.sub(r"^(?:make|turn|convert|render|change|put|have|get|set|do|give me|create|produce)\b\s*", "",
                    before.strip())
    target = re.sub(r"\b(?:to|into|in|a|an|version of|the version)\s*$", "", target).strip()
    if not target or re.fullmatch(WHOLE_WORDS, target) or target in ("a", "version", "a version", "this", "photo"):
        return "make it black and white"
    return f"make {target} black and white"


def _remove_text(clause: str) -> str | None:
    if not re.search(rf"\b{TEXT_NOUNS}\b", clause):
        return None
    if re.search(r"\b(?:remove|erase|delete|get rid of|clean|take (?:off|out|away)|without|strip|no|lose|drop)\b",
                 clause):
        side = _SIDE.search(clause)
        return f"remove the text at the {side.group(1).replace('-', ' ')}" if side else "remove the text"
    return None


def _faces_hidden(clause: str) -> str | None:
    if re.search(r"\b(?:hide|pixelate|obscure|anonymi[sz]e|censor|blur|mask|cover)\b", clause) and \
            re.search(r"\b(?:faces?|people|persons?|identit\w+|everyone|pedestrians)\b", clause):
        return "blur her face" if re.search(r"\b(?:her|his|the) face\b", clause) else "blur the faces"
    return None


def _crop_shape(clause: str) -> str | None:
    if not re.search(r"\bcrop\w*\b", clause) or re.search(r"\b(?:pad\w*|don'?t crop|without cropping)\b", clause):
        return None
    ratio = re.search(r"\b(\d{1,2})\s*[:x/]\s*(\d{1,2})\b", clause)
    if ratio:
        return f"crop to aspect {ratio.group(1)}:{ratio.group(2)}"
    if re.search(r"\bsquare\b", clause):
        return "crop to aspect 1:1"
    if re.search(r"\bwidescreen\b", clause):
        return "crop to aspect 16:9"
    if re.search(r"\b(?:center|middle)\b", clause):
        return "crop to aspect center"
    return None


def _text_overlay(clause: str) -> tuple[str, dict[str, str]] | None:
    if re.search(r"\b(?:remove|erase|delete|get rid of|clean|without|no|blur|hide)\b", clause):
        return None
    words = re.search(r"\"([^\"]+)\"|'([^']+)'|“([^”]+)”|‘([^’]+)’", clause)
    text = next((g for g in words.groups() if g), None) if words else None
    if text is None:
        capitals = re.search(r"\b[A-Z][A-Z0-9%!&$]+(?:\s+[A-Z0-9][A-Z0-9%!&$]*)*\b", clause)
        text = capitals.group(0) if capitals and capitals.group(0) not in ("I", "ID") else None
    noun = re.search(r"\b(?:watermark|caption|label|title|headline|stamp|copyright|text|words|write|slogan)\b",
                     clause)
    if text is None or not (noun or re.match(r"(?:add|put|place|write|print|stamp|overlay|label)\b", clause)):
        return None
    slots = {"text": text}
    rest = clause.replace(text, " ")
    place = re.search(r"\b(top|bottom|upper|lower)[- ](left|right)\b|\b(top|bottom|center|middle)\b", rest)
    if place:
        slots["position"] = _POSITIONS[" ".join(g for g in place.groups() if g)]
    if re.search(r"\b(?:tiled?|tiling|repeat\w*|all over|across the (?:whole|entire)|pattern)\b", rest):
        slots["position"] = "tiled"
    if re.search(r"\b(?:semi[- ]?transparent|translucent|faint|subtle|see[- ]through)\b", rest):
        slots["opacity"] = "0.35"
    elif "watermark" in rest:
        slots["opacity"] = "0.5"
    if re.search(r"\b(?:big|large|huge|bold)\b", rest):
        slots["size"] = "0.2"
    elif re.search(r"\b(?:small|tiny|discreet)\b", rest):
        slots["size"] = "0.05"
    return f"write '{text}'", slots


def _recolour(clause: str) -> str | None:
    if re.search(rf"\b(?:background|backdrop|border|frame|{TEXT_NOUNS})\b", clause):
        return None
    if re.match(r"(?:remove|erase|delete|blur|crop|add|sharpen|rotate|flip|mirror|resize|write|put|place|insert|"
                r"get rid of|whiten|brighten|darken)\b", clause):
        return None  # another edit that happens to name a colour ("remove red eye")
    found = colour_in(clause)
    if found is None:
        return None
    colour, start = found
    target = clause[:start]
    target = re.sub(r"^(?:can|could|should|would|will|may|let)\s+", "", target.strip())
    target = re.sub(r"^(?:make|turn|change|paint|colou?r|recolou?r|dye|set|tint|have|get|give)\b\s*", "", target)
    target = re.sub(r"\b(?:the )?colou?r of\s+", "", target)
    target = re.sub(r"'s colou?r\b", "", target)
    for _ in range(6):  # "sky should look more dramatic, like a" -> "sky"
        target = _LINKING_TAIL.sub("", target).strip(" ,")
    if not target or re.fullmatch(WHOLE_WORDS, target) or len(target.split()) > 4:
        return None
    return f"make {target} {colour}"


_LINKING_TAIL = re.compile(r"(?:[\s,]+|^)(?:should|to|be|in|into|look|looks|more|like|a|an|as|is|are|dramatic|"
                           r"deeper|colou?r(?:ed)?|with|some|kind of|shade of)$")
def _padding(clause: str) -> str | None:
    if not (re.search(r"\bpad\w*\b", clause) and "square" in clause):
        return None
    colour = colour_in(clause)
    return f"pad to a {colour[0] if colour else 'white'} square canvas"


READERS = (_padding, _background, _black_and_white, _remove_text, _faces_hidden, _crop_shape, _recolour)


def read_clause(clause: str) -> Reading:
    """The clause's intent and slots as a canonical clause; Impossible for a change no brick here can make."""
    original = strip_frames(clause)
    strength, text = strength_of(original)
    lowered = text.lower()
    if not (re.search(r"\b(?:background|backdrop)\b", lowered) and lowered.startswith(("add", "put", "place"))):
        reason = impossible(lowered)
        if reason is not None and not _text_overlay(text):
            raise Impossible(f"{original!r} asks for {reason}, which no brick of the rules planner can do on this "
                             "profile; it needs a generative model (planner.strategy=workflow with EDIT)")
    overlay = _text_overlay(text)
    if overlay is not None:
        canonical, slots = overlay
        return Reading(canonical, strength, slots)
    for reader in READERS:
        canonical = reader(text)
        if canonical is not None:
            return Reading(canonical, strength)
    return Reading(text, strength)
