"""Colour names -> RGB, for the CPU backends that take a colour from a prompt (RCM, CBG).

A name is a CSS colour (``PIL.ImageColor``: "red", "navy", "skyblue", "#ff8800"), one of a few common names CSS
lacks ("golden", "scarlet", "copper red", ...), either of them after an optional modifier ("dark blue",
"light green", "pale pink"), or a shade named before its colour ("mustard yellow": mustard). Filler words ("a",
"colour", "background", "solid", ...) are ignored.
"""

from __future__ import annotations

import re

from PIL import ImageColor

RGB = tuple[int, int, int]

# Common colour names that CSS does not define (or defines differently from everyday use).
EXTRA_COLORS: dict[str, RGB] = {
    "golden": (212, 175, 55),
    "scarlet": (255, 36, 0),
    "copper": (184, 115, 51),
    "copper red": (203, 109, 81),
    "burgundy": (128, 0, 32),
    "blond": (240, 220, 150),
    "cream": (255, 253, 208),
    "mustard": (225, 173, 1),
    "rust": (183, 65, 14),
    "emerald": (80, 200, 120),
    "ruby": (224, 17, 95),
    "charcoal": (54, 69, 79),
    "mint": (152, 255, 152),
    "lilac": (200, 162, 200),
    "mauve": (224, 176, 255),
    "peach": (255, 218, 185),
    "bronze": (205, 127, 50),
    "sky blue": (135, 206, 235),
    "navy blue": (0, 0, 128),
    "off white": (250, 249, 246),
    "cobalt": (0, 71, 171),
    "cobalt blue": (0, 71, 171),
    "royal blue": (65, 105, 225),
    "forest green": (34, 139, 34),
    "baby blue": (137, 207, 240),
    "hot pink": (255, 105, 180),
    "auburn": (165, 42, 42),
    "sage": (156, 175, 136),
    "slate": (112, 128, 144),
    "taupe": (72, 60, 50),
    "bottle green": (0, 106, 78),
    "racing green": (0, 66, 37),
    "sage green": (156, 175, 136),
    "emerald green": (80, 200, 120),
    "signal red": (165, 32, 25),
    "brick red": (203, 65, 84),
    "cherry red": (210, 4, 45),
    "pillar box red": (226, 37, 43),
    "fire engine red": (206, 32, 41),
    "burnt orange": (204, 85, 0),
    "duck egg blue": (195, 221, 222),
    "petrol blue": (0, 94, 112),
    "electric blue": (125, 249, 255),
    "dusty pink": (220, 174, 170),
    "dusky pink": (204, 143, 143),
    "lemon yellow": (255, 244, 79),
    "butter yellow": (255, 241, 161),
}

# Modifier -> (towards white, towards black): "light red" mixes 45% white into red.
MODIFIERS: dict[str, tuple[float, float]] = {
    "light": (0.45, 0.0),
    "pale": (0.6, 0.0),
    "pastel": (0.55, 0.0),
    "dark": (0.0, 0.45),
    "deep": (0.0, 0.3),
    "mid": (0.0, 0.15),
    "medium": (0.0, 0.15),
}

# Basic colour terms: "the red green" is two colours (the old and the new), never a shade of green.
BASIC = frozenset({"red", "orange", "yellow", "green", "blue", "purple", "pink", "brown", "black", "white", "grey",
                   "gray"})

FILLER = frozenset({"a", "an", "the", "color", "colour", "colored", "coloured", "background", "backdrop", "solid",
                    "plain", "flat", "shade", "of", "in", "to", "paint", "it", "make", "uniform"})


def colour_words() -> frozenset[str]:
    """Every single word that names a colour here (CSS names and the extra ones): for spelling them."""
    names = {*ImageColor.colormap, *EXTRA_COLORS, *MODIFIERS}
    return frozenset(word for name in names for word in name.split())


def parse_color(prompt: str) -> RGB | None:
    """The RGB colour that ``prompt`` names, or None if it does not name a colour."""
    words = [w for w in re.findall(r"#[0-9a-f]{3,8}|[a-z]+", prompt.lower()) if w not in FILLER]
    exact = _lookup(words)  # also catches CSS names with a modifier built in: "darkblue", "lightgreen"
    if exact is None and len(words) == 2 and words[0] not in BASIC and _lookup(words[1:]) is not None:
        exact = _lookup(words[:1])  # a shade of a colour: "mustard yellow", "olive green" (the shade is named first)
    if exact is not None or len(words) < 2 or words[0] not in MODIFIERS:
        return exact
    base = _lookup(words[1:])
    if base is None:
        return None
    white, black = MODIFIERS[words[0]]
    return tuple(round(c + (255 - c) * white - c * black) for c in base)  # type: ignore[return-value]


def _lookup(words: list[str]) -> RGB | None:
    if not words:
        return None
    phrase = " ".join(words)
    if phrase in EXTRA_COLORS:
        return EXTRA_COLORS[phrase]
    try:
        return ImageColor.getrgb("".join(words))[:3]  # type: ignore[return-value]
    except ValueError:
        return None
