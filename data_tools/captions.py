"""Captions of synthetic videos from their parameters: "a figure with a striped green top and blue shorts in a
purple room". Every word is one token of the tiny tokenizer (data_tools/tokenizer.py)."""

import colorsys

from .materials import Material

HUES = ((0.04, "red"), (0.1, "orange"), (0.18, "yellow"), (0.45, "green"), (0.54, "teal"), (0.7, "blue"),
        (0.83, "purple"), (0.95, "pink"), (1.01, "red"))  # (upper hue bound, name)
GREYS = ("black", "grey", "white")
PATTERN_WORDS = {"solid": "", "stripes": "striped", "checks": "checked", "dots": "dotted"}
LEG_WORDS = ("shorts", "trousers")
CAPTION_WORDS = (*dict.fromkeys(name for _, name in HUES), "brown", *GREYS, *filter(None, PATTERN_WORDS.values()),
                 *LEG_WORDS, "a", "an", "figure", "with", "top", "and", "in", "room")


def colour_name(rgb: tuple[float, float, float]) -> str:
    """A basic colour name for an RGB colour in 0..255 (greys by value, dark oranges as brown, else by hue)."""
    hue, saturation, value = colorsys.rgb_to_hsv(*(c / 255.0 for c in rgb))
    if saturation < 0.2 or value < 0.15:
        return GREYS[0] if value < 0.3 else GREYS[1] if value < 0.75 else GREYS[2]
    name = next(name for bound, name in HUES if hue < bound)
    return "brown" if name in ("orange", "red", "yellow") and value < 0.55 else name


def material_words(material: Material) -> str:
    """A material as words: its pattern (none for solid) and its main colour's name."""
    return " ".join(filter(None, (PATTERN_WORDS[material.pattern], colour_name(material.colour))))


def article(words: str) -> str:
    """`words` with "a" or "an" before them."""
    return f"{'an' if words[0] in 'aeiou' else 'a'} {words}"


def caption(top: Material, bottom: Material, shorts: bool, wall: tuple[float, float, float]) -> str:
    """A video's caption from its figure's top and bottom, whether the bottom is shorts, and its room's wall colour."""
    legs = LEG_WORDS[0] if shorts else LEG_WORDS[1]
    return (f"a figure with {article(material_words(top) + ' top')} and {material_words(bottom)} {legs} "
            f"in {article(colour_name(wall))} room")
