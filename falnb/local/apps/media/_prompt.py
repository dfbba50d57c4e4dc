"""From a prompt and a seed to a scene description: palette, elements, mood.

Words steer; the seed fills in whatever the prompt leaves open, so two seeds of one prompt
share the words' choices but differ in the rest. Hashing uses hashlib, never ``hash()``,
which is salted per process.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["PALETTES", "Mood", "Palette", "Style", "prompt_key", "rng_for", "style_for", "words"]


@dataclass(frozen=True)
class Palette:
    """Colours of a scene, as RGB in ``0..1``."""

    sky_top: tuple[float, float, float]
    sky_mid: tuple[float, float, float]
    horizon: tuple[float, float, float]
    light: tuple[float, float, float]  # sun / moon / glow
    far: tuple[float, float, float]  # distant layers
    near: tuple[float, float, float]  # foreground silhouettes
    accent: tuple[float, float, float]  # windows, grid lines, sparkles

    def mix(self, other: Palette, amount: float) -> Palette:
        def lerp(a: tuple[float, ...], b: tuple[float, ...]) -> tuple[float, float, float]:
            r, g, bl = (x + (y - x) * amount for x, y in zip(a, b, strict=True))
            return (r, g, bl)

        return Palette(*(lerp(getattr(self, name), getattr(other, name)) for name in _FIELDS))


_FIELDS = ("sky_top", "sky_mid", "horizon", "light", "far", "near", "accent")


def _rgb(*colours: tuple[int, int, int]) -> Palette:
    scaled = [(r / 255, g / 255, b / 255) for r, g, b in colours]
    return Palette(*scaled)


PALETTES: dict[str, Palette] = {
    "sunset": _rgb(
        (44, 26, 84),
        (190, 70, 110),
        (255, 165, 95),
        (255, 225, 160),
        (125, 60, 105),
        (38, 18, 48),
        (255, 130, 80),
    ),
    "night": _rgb(
        (4, 7, 24),
        (18, 28, 68),
        (62, 74, 132),
        (236, 238, 255),
        (30, 36, 74),
        (7, 9, 24),
        (255, 206, 120),
    ),
    "ocean": _rgb(
        (18, 74, 140),
        (70, 150, 205),
        (190, 228, 242),
        (255, 250, 232),
        (52, 118, 160),
        (10, 48, 86),
        (120, 225, 235),
    ),
    "forest": _rgb(
        (96, 150, 140),
        (172, 206, 176),
        (232, 236, 200),
        (255, 246, 210),
        (76, 124, 96),
        (14, 42, 30),
        (214, 226, 130),
    ),
    "golden": _rgb(
        (176, 96, 58),
        (238, 166, 88),
        (255, 224, 150),
        (255, 246, 205),
        (168, 98, 54),
        (62, 30, 18),
        (255, 208, 96),
    ),
    "desert": _rgb(
        (70, 134, 200),
        (160, 196, 226),
        (246, 218, 176),
        (255, 250, 236),
        (206, 140, 92),
        (140, 72, 42),
        (246, 186, 112),
    ),
    "snow": _rgb(
        (104, 138, 192),
        (182, 204, 232),
        (236, 242, 250),
        (255, 255, 255),
        (152, 174, 208),
        (82, 102, 144),
        (196, 230, 255),
    ),
    "neon": _rgb(
        (12, 4, 36),
        (86, 18, 118),
        (255, 64, 160),
        (255, 206, 86),
        (58, 10, 88),
        (9, 0, 24),
        (0, 236, 255),
    ),
    "autumn": _rgb(
        (98, 132, 176),
        (218, 168, 120),
        (250, 212, 152),
        (255, 240, 202),
        (178, 88, 40),
        (84, 36, 18),
        (232, 122, 44),
    ),
    "pastel": _rgb(
        (164, 184, 238),
        (238, 198, 228),
        (255, 232, 212),
        (255, 250, 242),
        (198, 168, 212),
        (146, 126, 180),
        (255, 188, 200),
    ),
    "storm": _rgb(
        (26, 30, 40),
        (66, 76, 92),
        (128, 138, 150),
        (220, 226, 236),
        (52, 58, 72),
        (16, 18, 26),
        (196, 210, 255),
    ),
    "red": _rgb(
        (58, 6, 18),
        (168, 30, 44),
        (255, 124, 92),
        (255, 222, 184),
        (110, 22, 34),
        (34, 4, 10),
        (255, 90, 64),
    ),
    "blue": _rgb(
        (8, 22, 78),
        (38, 88, 178),
        (150, 198, 248),
        (235, 245, 255),
        (40, 70, 140),
        (6, 16, 48),
        (110, 200, 255),
    ),
    "green": _rgb(
        (20, 70, 50),
        (80, 160, 110),
        (200, 236, 180),
        (248, 255, 220),
        (46, 110, 70),
        (8, 36, 22),
        (180, 250, 120),
    ),
    "purple": _rgb(
        (30, 10, 60),
        (110, 50, 160),
        (220, 150, 230),
        (255, 230, 250),
        (80, 40, 120),
        (20, 6, 40),
        (240, 120, 255),
    ),
    "pink": _rgb(
        (120, 50, 110),
        (236, 120, 170),
        (255, 200, 210),
        (255, 245, 240),
        (190, 90, 140),
        (80, 24, 60),
        (255, 150, 190),
    ),
    "orange": _rgb(
        (120, 40, 20),
        (236, 110, 40),
        (255, 196, 110),
        (255, 240, 200),
        (170, 70, 30),
        (60, 20, 8),
        (255, 160, 60),
    ),
    "teal": _rgb(
        (6, 56, 66),
        (30, 140, 150),
        (170, 232, 226),
        (240, 255, 250),
        (20, 96, 104),
        (4, 32, 38),
        (120, 255, 220),
    ),
    "mono": _rgb(
        (24, 24, 26),
        (96, 96, 100),
        (200, 200, 204),
        (250, 250, 250),
        (80, 80, 84),
        (12, 12, 14),
        (230, 230, 235),
    ),
}

# Words that pick a palette, by the palette they pick.
_PALETTE_WORDS: dict[str, tuple[str, ...]] = {
    "sunset": ("sunset", "dusk", "sunrise", "dawn", "twilight"),
    "night": ("night", "midnight", "nocturnal", "starry", "stars", "galaxy", "space"),
    "ocean": ("ocean", "sea", "beach", "tropical", "lagoon", "coast", "summer", "sky"),
    "forest": ("forest", "woods", "jungle", "meadow", "spring", "garden", "nature"),
    "golden": ("golden", "gold", "amber", "honey", "warm", "yellow"),
    "desert": ("desert", "dune", "dunes", "sand", "canyon", "savanna"),
    "snow": ("snow", "snowy", "winter", "ice", "icy", "frozen", "arctic", "white", "silver"),
    "neon": ("neon", "cyberpunk", "synthwave", "retro", "vaporwave", "cyber", "futuristic"),
    "autumn": ("autumn", "fall", "rust", "copper", "brown"),
    "pastel": ("pastel", "soft", "candy", "cotton", "lavender"),
    "storm": ("storm", "stormy", "thunder", "rain", "rainy", "gloomy", "grey", "gray"),
    "red": ("red", "crimson", "scarlet", "ruby", "fire", "lava", "blood"),
    "blue": ("blue", "azure", "cobalt", "sapphire", "navy", "cold"),
    "green": ("green", "emerald", "lime", "jade", "mint"),
    "purple": ("purple", "violet", "magenta", "indigo", "plum", "mystic", "magic"),
    "pink": ("pink", "rose", "blossom", "cherry", "romantic"),
    "orange": ("orange", "tangerine", "peach", "ember"),
    "teal": ("teal", "cyan", "turquoise", "aqua"),
    "mono": ("black", "monochrome", "noir", "charcoal"),
}
_WORD_TO_PALETTE = {w: name for name, ws in _PALETTE_WORDS.items() for w in ws}

# Scene elements, by the words that ask for them.
_ELEMENT_WORDS: dict[str, tuple[str, ...]] = {
    "sun": ("sun", "sunny", "sunset", "sunrise", "dawn", "solar", "daylight"),
    "moon": ("moon", "lunar", "moonlight", "moonlit", "crescent"),
    "circle": ("circle", "circles", "ring", "rings", "orb", "sphere", "planet", "portal"),
    "mountains": ("mountain", "mountains", "peak", "peaks", "alps", "hills", "hill", "valley"),
    "city": (
        "city",
        "skyline",
        "town",
        "buildings",
        "building",
        "tower",
        "towers",
        "skyscraper",
        "skyscrapers",
        "street",
        "urban",
        "downtown",
        "cyberpunk",
    ),
    "water": (
        "wave",
        "waves",
        "ocean",
        "sea",
        "lake",
        "water",
        "river",
        "beach",
        "coast",
        "lagoon",
        "reflection",
        "harbor",
    ),
    "grid": ("grid", "synthwave", "retro", "vaporwave", "tron", "digital", "grids"),
    "forest": ("forest", "trees", "tree", "woods", "pine", "pines", "jungle"),
    "stars": ("star", "stars", "starry", "galaxy", "space", "night", "cosmic", "milky"),
    "clouds": (
        "cloud",
        "clouds",
        "cloudy",
        "sky",
        "storm",
        "stormy",
        "fog",
        "foggy",
        "mist",
        "misty",
        "overcast",
    ),
    "dunes": ("desert", "dune", "dunes", "sand"),
}
_WORD_TO_ELEMENTS: dict[str, list[str]] = {}
for _name, _ws in _ELEMENT_WORDS.items():
    for _w in _ws:
        _WORD_TO_ELEMENTS.setdefault(_w, []).append(_name)


@dataclass(frozen=True)
class Mood:
    """Post-processing that carries a mood: contrast, saturation, softness, exposure."""

    contrast: float = 1.0
    saturation: float = 1.0
    blur: float = 0.0  # Gaussian radius as a fraction of image height
    bloom: float = 0.25  # how much light glows past its edges
    exposure: float = 1.0
    haze: float = 0.0  # lifts and greys the distance
    rain: float = 0.0
    grain: float = 0.015


_MOODS: dict[str, Mood] = {
    "calm": Mood(contrast=0.88, saturation=0.92, bloom=0.3, haze=0.15),
    "serene": Mood(contrast=0.88, saturation=0.92, bloom=0.3, haze=0.15),
    "peaceful": Mood(contrast=0.88, saturation=0.92, bloom=0.3, haze=0.15),
    "stormy": Mood(contrast=1.25, saturation=0.8, bloom=0.15, exposure=0.82, rain=0.6),
    "storm": Mood(contrast=1.25, saturation=0.8, bloom=0.15, exposure=0.82, rain=0.6),
    "rainy": Mood(contrast=1.1, saturation=0.85, bloom=0.2, exposure=0.9, rain=0.5),
    "dreamy": Mood(contrast=0.85, saturation=0.9, blur=0.003, bloom=0.45, haze=0.2),
    "ethereal": Mood(contrast=0.85, saturation=0.9, blur=0.003, bloom=0.45, haze=0.2),
    "misty": Mood(contrast=0.85, saturation=0.85, blur=0.002, bloom=0.4, haze=0.5),
    "foggy": Mood(contrast=0.85, saturation=0.85, blur=0.002, bloom=0.4, haze=0.5),
    "vibrant": Mood(contrast=1.1, saturation=1.3, bloom=0.35),
    "vivid": Mood(contrast=1.1, saturation=1.3, bloom=0.35),
    "dark": Mood(contrast=1.15, saturation=0.9, exposure=0.7),
    "moody": Mood(contrast=1.2, saturation=0.8, exposure=0.8),
    "bright": Mood(contrast=1.0, saturation=1.1, exposure=1.15, bloom=0.4),
}


@dataclass(frozen=True)
class Style:
    """Everything the scene renderer needs to know about one prompt and seed."""

    palette: Palette
    palette_names: tuple[str, ...]
    elements: frozenset[str]
    mood: Mood
    horizon: float  # fraction of the height, from the top
    light_x: float  # where the sun / moon sits, fractions of width and height
    light_y: float
    variation: int  # a seed for the renderer's own random choices
    words: tuple[str, ...] = field(default=())
    tints: dict[str, tuple[float, float, float]] = field(default_factory=dict)

    def tint(self, element: str, default: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        """The colour a prompt gave an element ("a red circle"), or ``default``."""
        colour = self.tints.get(element)
        return default if colour is None else np.asarray(colour, dtype=np.float32)


def words(prompt: str) -> tuple[str, ...]:
    return tuple(re.findall(r"[a-z]+", prompt.lower()))


def prompt_key(prompt: str) -> int:
    """A stable 64-bit number for the prompt (same across processes and machines)."""
    digest = hashlib.sha256(prompt.strip().lower().encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big")


def rng_for(seed: int, prompt: str, salt: int = 0) -> np.random.Generator:
    """The one random source of a generation: seed, prompt and a per-use salt."""
    return np.random.default_rng([seed, prompt_key(prompt), salt])


def style_for(prompt: str, seed: int) -> Style:
    """Read the prompt's palette, element and mood words; let the seed choose the rest."""
    tokens = words(prompt)
    rng = rng_for(seed, prompt, salt=1)

    palette_names = tuple(
        dict.fromkeys(_WORD_TO_PALETTE[w] for w in tokens if w in _WORD_TO_PALETTE)
    )
    if not palette_names:
        choices = sorted(p for p in PALETTES if p != "mono")
        palette_names = (choices[int(rng.integers(len(choices)))],)
    palette = PALETTES[palette_names[0]]
    if len(palette_names) > 1:
        # A second colour word tints the whole scene and lends its accent and light.
        second = PALETTES[palette_names[1]]
        palette = palette.mix(second, 0.3)
        palette = Palette(
            palette.sky_top,
            palette.sky_mid,
            palette.horizon,
            palette.light,
            palette.far,
            palette.near,
            second.accent,
        )

    elements = {e for w in tokens for e in _WORD_TO_ELEMENTS.get(w, ())}
    elements |= _fill_elements(elements, palette_names[0], rng)

    moods = [_MOODS[w] for w in tokens if w in _MOODS]
    mood = moods[0] if moods else Mood()

    horizon = float(rng.uniform(0.58, 0.7))

    light_x = float(rng.uniform(0.22, 0.78))
    low_light = palette_names[0] in ("sunset", "golden", "neon", "orange", "red")
    low_light = low_light and "city" not in elements  # a skyline would hide a low sun
    light_y = horizon - float(rng.uniform(0.06, 0.14) if low_light else rng.uniform(0.3, 0.42))
    if "grid" in elements:  # the retro sun sits centred on the horizon
        light_x, light_y = 0.5, horizon - 0.1
    return Style(
        palette=palette,
        palette_names=palette_names,
        elements=frozenset(elements),
        mood=mood,
        horizon=horizon,
        light_x=light_x,
        light_y=light_y,
        variation=int(rng.integers(2**31)),
        words=tokens,
        tints=_tints(tokens),
    )


_TINTABLE = {
    "circle": "circle",
    "ring": "circle",
    "orb": "circle",
    "sphere": "circle",
    "planet": "circle",
    "portal": "circle",
    "sun": "sun",
    "moon": "moon",
    "grid": "grid",
}
_SKIP = {"a", "an", "the", "big", "small", "giant", "glowing", "bright", "huge", "tiny"}


def _tints(tokens: tuple[str, ...]) -> dict[str, tuple[float, float, float]]:
    """Colour words right before an element name colour that element: "a red glowing circle"."""
    tints: dict[str, tuple[float, float, float]] = {}
    for index, token in enumerate(tokens):
        element = _TINTABLE.get(token)
        if element is None:
            continue
        back = index - 1
        while back >= 0 and tokens[back] in _SKIP:
            back -= 1
        if back >= 0 and tokens[back] in _COLOUR_TINTS:
            tints[element] = _COLOUR_TINTS[tokens[back]]
    return tints


_COLOUR_TINTS: dict[str, tuple[float, float, float]] = {
    "red": (1.0, 0.25, 0.2),
    "crimson": (0.9, 0.1, 0.2),
    "orange": (1.0, 0.55, 0.15),
    "yellow": (1.0, 0.9, 0.3),
    "golden": (1.0, 0.8, 0.35),
    "gold": (1.0, 0.8, 0.35),
    "green": (0.35, 1.0, 0.45),
    "blue": (0.3, 0.55, 1.0),
    "cyan": (0.2, 0.95, 1.0),
    "teal": (0.2, 0.85, 0.8),
    "purple": (0.7, 0.35, 1.0),
    "violet": (0.7, 0.35, 1.0),
    "pink": (1.0, 0.45, 0.75),
    "magenta": (1.0, 0.25, 0.85),
    "white": (1.0, 1.0, 1.0),
    "silver": (0.85, 0.88, 0.95),
}


def _fill_elements(chosen: set[str], palette: str, rng: np.random.Generator) -> set[str]:
    """Complete a scene the prompt only half describes: a light, a ground, sometimes more."""
    extra: set[str] = set()
    if not chosen & {"sun", "moon", "circle"}:
        nightish = palette in ("night", "purple", "neon", "blue")
        if "clouds" not in chosen or rng.random() < 0.5:
            extra.add("moon" if nightish else "sun")
    if palette == "night" and "clouds" not in chosen:
        extra.add("stars")
    grounds = {"mountains", "city", "water", "grid", "forest", "dunes"}
    if not chosen & grounds:
        options = ["mountains", "water", "forest", "mountains"]
        if palette == "neon":
            options = ["grid", "city"]
        elif palette == "desert":
            options = ["dunes"]
        first = options[int(rng.integers(len(options)))]
        extra.add(first)
        if first == "mountains" and rng.random() < 0.5:
            extra.add("water")
    elif "city" in chosen and "water" not in chosen and rng.random() < 0.4:
        extra.add("water")  # a waterfront: the skyline doubles in the water
    if "clouds" not in chosen and palette not in ("night", "neon") and rng.random() < 0.6:
        extra.add("clouds")
    return extra
