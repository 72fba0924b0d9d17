"""Top-down drawings of the tabletop objects, one function per kind of thing, with PIL.

Every visible attribute of an `ObjectState` changes the drawing: produce looks whole, peeled,
sliced, diced, mashed or torn; liquids fill a container to their level in their own colour;
lids cover what is inside; hot things steam; dirt, soap and water show as spots, bubbles and
drops; marks (sugar, butter, oil, salt, stirring) leave their trace. Colours come through a
per-scene `tint` so each episode's objects look slightly different (colour jitter).
"""
from __future__ import annotations

from collections.abc import Callable
from math import cos, sin

from PIL import ImageDraw

from training.tabletop.world import ObjectState

RGB = tuple[int, int, int]
Tint = Callable[[str, RGB], RGB]  # (object name, base colour) -> jittered colour

# produce: shape, half size (rx, ry), skin colour, flesh colour
PRODUCE: dict[str, tuple[str, float, float, RGB, RGB]] = {
    "tomato": ("round", 10, 10, (205, 35, 30), (235, 95, 70)),
    "cucumber": ("long", 17, 6, (35, 105, 40), (185, 220, 150)),
    "lettuce": ("leafy", 13, 12, (80, 165, 55), (165, 215, 110)),
    "bread": ("loaf", 15, 10, (175, 110, 50), (240, 215, 160)),
    "cheese": ("block", 10, 8, (240, 190, 40), (252, 225, 120)),
    "egg": ("round", 7, 9, (200, 140, 90), (255, 255, 248)),
    "potato": ("round", 11, 8, (140, 100, 55), (238, 220, 140)),
    "carrot": ("long", 16, 4, (240, 115, 20), (250, 170, 80)),
    "apple": ("round", 9, 9, (175, 20, 35), (245, 235, 185)),
    "banana": ("long", 16, 5, (240, 205, 40), (250, 242, 205)),
    "lemon": ("round", 9, 7, (250, 225, 35), (250, 245, 170)),
    "pasta": ("sticks", 14, 5, (230, 195, 100), (240, 215, 140)),
}
LIQUIDS: dict[str, RGB] = {
    "water": (120, 180, 235), "tea": (165, 85, 25), "coffee": (70, 40, 20), "milk": (248, 248, 240),
    "sugar": (252, 252, 252), "lemonade": (245, 238, 120),
}
DISTRACTORS = ("fork", "spoon", "knife", "napkin", "phone", "glass", "book", "coaster")


def _ell(d: ImageDraw.ImageDraw, x: float, y: float, rx: float, ry: float, fill, outline=None, width: int = 1):
    d.ellipse((x - rx, y - ry, x + rx, y + ry), fill=fill, outline=outline, width=width)


def _rect(d: ImageDraw.ImageDraw, x: float, y: float, rx: float, ry: float, fill, outline=None, radius: float = 0):
    d.rounded_rectangle((x - rx, y - ry, x + rx, y + ry), radius=radius, fill=fill, outline=outline)


def _mix(a: RGB, b: RGB, t: float) -> RGB:
    return tuple(int(a[i] * (1 - t) + b[i] * t) for i in range(3))  # type: ignore[return-value]


def _dots(d, x, y, r, colour, count, size=1.2, phase=0):
    """A deterministic scatter of small dots in a disc (seeds, sugar, salt, dirt...)."""
    for i in range(count):
        a = 2.399963 * (i + phase)  # golden angle: an even spread without randomness
        rr = r * ((i + 0.5) / count) ** 0.5
        _ell(d, x + rr * cos(a), y + rr * sin(a), size, size, colour)


def steam(d, x, y, s):
    for k in (-1, 0, 1):
        pts = [(x + k * 6 * s + 2.5 * s * sin(j * 1.3), y - 4 * s - j * 2.2 * s) for j in range(7)]
        d.line(pts, fill=(250, 250, 250), width=max(1, int(2 * s)))


def surface(d, x, y, r, obj: ObjectState, s):
    """How clean an object is: dirt spots, soap bubbles or water drops."""
    if obj.clean == "dirty":
        _dots(d, x, y, r * 0.8, (105, 70, 35), 7, 2.0 * s, phase=3)
    elif obj.clean == "soapy":
        for i in range(7):
            a = 0.9 * i
            _ell(d, x + r * 0.55 * cos(a), y + r * 0.55 * sin(a), 3.4 * s, 3.4 * s, (255, 255, 255), (200, 210, 220))
    elif obj.clean == "wet":
        _dots(d, x, y, r * 0.85, (150, 215, 255), 9, 1.5 * s, phase=1)


def marks(d, x, y, r, obj: ObjectState, s):
    """What was put on an object (butter, oil, salt) or done to it (stirred: a spoon is left in
    it). Drawn last, over anything lying in a container."""
    if "butter" in obj.marks:
        _ell(d, x, y, r * 0.6, r * 0.35, (255, 225, 90), (220, 180, 40))
    if "oil" in obj.marks:
        _ell(d, x - r * 0.15, y + r * 0.1, r * 0.6, r * 0.45, None, (240, 195, 20), width=max(2, int(3 * s)))
        _dots(d, x, y, r * 0.5, (250, 210, 40), 4, 1.8 * s, phase=7)
    if "salt" in obj.marks:
        _dots(d, x, y, r * 0.7, (35, 35, 35), 12, 1.5 * s, phase=5)
    if "stirred" in obj.marks:
        d.line((x - r * 0.2, y + r * 0.2, x + r * 1.3, y - r * 1.0), fill=(200, 200, 215), width=max(2, int(3 * s)))
        _ell(d, x - r * 0.25, y + r * 0.25, 3.5 * s, 2.5 * s, (210, 210, 225), (120, 120, 130))


def produce(d, name: str, obj: ObjectState, x, y, s, tint: Tint):
    shape, rx, ry, skin, flesh = PRODUCE[name]
    skin, flesh = tint(name, skin), tint(name, flesh)
    if obj.temp == "hot" and name in ("bread", "potato", "pasta"):
        skin, flesh = _mix(skin, (120, 65, 20), 0.45), _mix(flesh, (170, 110, 40), 0.45)
    rx, ry = rx * s, ry * s
    form = obj.form
    if form in ("whole", "peeled"):
        colour = skin if form == "whole" else flesh
        if shape == "block":
            _rect(d, x, y, rx, ry, colour, tuple(c // 2 for c in colour), radius=2)
            if form == "whole":
                _dots(d, x, y, rx * 0.7, _mix(colour, (160, 120, 20), 0.5), 4, 1.6 * s)
        elif shape == "loaf":
            _rect(d, x, y, rx, ry, colour, (110, 60, 20), radius=5 * s)
            for k in (-1, 0, 1):
                d.line((x + k * 6 * s - 2 * s, y - ry * 0.7, x + k * 6 * s + 2 * s, y + ry * 0.7), fill=(120, 70, 25), width=1)
        elif shape == "sticks":
            for k in range(-3, 4):
                d.line((x - rx, y + k * 1.4 * s, x + rx, y + k * 1.4 * s), fill=colour, width=max(1, int(1.3 * s)))
            if obj.temp == "hot":
                for k in range(-3, 4):
                    d.arc((x + k * 3 * s - 4 * s, y - 6 * s, x + k * 3 * s + 4 * s, y + 6 * s), 0, 270, fill=flesh)
        elif shape == "leafy":
            for i in range(5):
                a = 1.256 * i
                _ell(d, x + rx * 0.45 * cos(a), y + ry * 0.45 * sin(a), rx * 0.6, ry * 0.6, colour, _mix(colour, (0, 60, 0), 0.4))
            d.line((x - rx * 0.6, y, x + rx * 0.6, y), fill=(230, 245, 200), width=1)
        else:
            _ell(d, x, y, rx, ry, colour, _mix(colour, (0, 0, 0), 0.35))
            if shape == "long" and form == "whole":
                d.line((x - rx * 0.7, y, x + rx * 0.7, y), fill=_mix(colour, (255, 255, 255), 0.35), width=1)
            if form == "whole":
                _ell(d, x - rx * 0.35, y - ry * 0.35, rx * 0.25, ry * 0.2, _mix(colour, (255, 255, 255), 0.6))
            if name in ("apple", "tomato") and form == "whole":
                d.line((x, y - ry * 0.2, x + 2 * s, y - ry), fill=(70, 110, 30), width=max(1, int(2 * s)))
            if form == "peeled":
                _ell(d, x + rx * 0.25, y - ry * 0.25, rx * 0.2, ry * 0.2, _mix(colour, (255, 255, 255), 0.7))
    elif form == "sliced":
        n = 2 if name == "lemon" else 3
        for k in range(n):
            cx = x + (k - (n - 1) / 2) * max(rx, ry) * 0.75
            if shape in ("loaf", "block"):
                _rect(d, cx, y, ry * 0.55, ry, flesh, skin, radius=1)
            else:
                r = min(max(rx, ry) * 0.6, 9 * s)
                _ell(d, cx, y, r, r, skin)
                _ell(d, cx, y, r * 0.78, r * 0.78, flesh)
                _dots(d, cx, y, r * 0.5, _mix(flesh, skin, 0.6), 3, 0.8 * s, phase=k)
    elif form == "diced":
        c = 3.3 * s
        for i in range(3):
            for j in range(3):
                _rect(d, x + (i - 1) * 2.6 * c, y + (j - 1) * 2.6 * c, c, c, flesh, _mix(flesh, skin, 0.8))
    elif form == "mashed":
        flesh = _mix(flesh, (255, 245, 200), 0.5)
        _ell(d, x, y, rx * 1.3, ry * 1.3, flesh, _mix(flesh, (120, 90, 40), 0.3))
        for k in range(3):
            d.arc((x - rx * (0.3 + 0.2 * k), y - ry * (0.3 + 0.2 * k), x + rx * (0.3 + 0.2 * k), y + ry * (0.3 + 0.2 * k)),
                  40 * k, 40 * k + 200, fill=_mix(flesh, (150, 120, 60), 0.4))
    elif form == "torn":
        for i in range(6):
            a = 1.047 * i + 0.3
            px, py = x + rx * 0.7 * cos(a), y + ry * 0.7 * sin(a)
            d.polygon([(px - 4 * s, py - 2 * s), (px + 1 * s, py - 5 * s), (px + 5 * s, py + 1 * s), (px - 1 * s, py + 4 * s)],
                      fill=skin if i % 2 else flesh, outline=_mix(skin, (0, 50, 0), 0.4))
    elif form == "cracked":
        d.polygon([(x - 11 * s, y - 3 * s), (x - 5 * s, y - 10 * s), (x + 6 * s, y - 9 * s), (x + 12 * s, y),
                   (x + 6 * s, y + 10 * s), (x - 6 * s, y + 9 * s)], fill=(252, 252, 245), outline=(215, 170, 110))
        if "flipped" in obj.marks:
            _ell(d, x, y, 6.5 * s, 6.5 * s, (215, 165, 100), (170, 110, 50))
        else:
            _ell(d, x, y, 4.5 * s, 4.5 * s, (250, 175, 20), (220, 140, 10))
    elif form == "squeezed":
        for k in (-1, 1):
            _ell(d, x + k * rx * 0.55, y, rx * 0.55, ry * 0.75, _mix(flesh, (200, 190, 120), 0.4), skin)
            _ell(d, x + k * rx * 0.55, y, rx * 0.2, ry * 0.25, (200, 180, 90))
    surface(d, x, y, max(rx, ry), obj, s)
    marks(d, x, y, max(rx, ry), obj, s)
    if obj.temp == "hot":
        steam(d, x, y - ry, s)


def _liquid(d, x, y, r, obj: ObjectState, s):
    if obj.level <= 0 or not obj.fill:
        return
    colour = LIQUIDS[obj.fill]
    if "milk" in obj.marks:
        colour = _mix(colour, (250, 245, 235), 0.5)
    rr = r * (0.55 if obj.level == 1 else 0.92)
    _ell(d, x, y, rr, rr, colour)
    if obj.fill == "water" and obj.temp == "hot":
        _dots(d, x, y, rr * 0.8, (235, 245, 255), 6, 1.3 * s, phase=2)
    if "sugar" in obj.marks:
        _dots(d, x, y, rr * 0.7, (255, 255, 255), 6, 1.0 * s, phase=4)


def container(d, name: str, obj: ObjectState, x, y, s, tint: Tint) -> float:
    """Draw a container (without its contents) and return the radius its contents fit in."""
    if name == "cup":
        _rect(d, x + 12 * s, y, 4 * s, 2.5 * s, tint(name, (230, 230, 235)))
        _ell(d, x, y, 11 * s, 11 * s, tint(name, (235, 235, 240)), (150, 150, 160))
        _ell(d, x, y, 8.5 * s, 8.5 * s, tint(name, (205, 205, 215)))
        inner = 8.5 * s
        if "coffee" in obj.marks and obj.level == 0:
            _ell(d, x, y, 3 * s, 3 * s, (90, 55, 30))
    elif name == "plate":
        _ell(d, x, y, 19 * s, 19 * s, tint(name, (245, 245, 245)), (170, 170, 175))
        _ell(d, x, y, 13 * s, 13 * s, None, (215, 215, 220))
        inner = 13 * s
    elif name == "bowl":
        _ell(d, x, y, 18 * s, 18 * s, tint(name, (60, 100, 185)), (30, 50, 110))
        _ell(d, x, y, 14 * s, 14 * s, tint(name, (140, 170, 225)))
        inner = 14 * s
    elif name == "pot":
        for k in (-1, 1):
            _rect(d, x + k * 20 * s, y, 4 * s, 3 * s, (60, 60, 60))
        _ell(d, x, y, 18 * s, 18 * s, tint(name, (150, 155, 160)), (80, 80, 85), width=2)
        _ell(d, x, y, 15 * s, 15 * s, tint(name, (95, 100, 105)))
        inner = 15 * s
    elif name == "pan":
        d.line((x + 14 * s, y + 6 * s, x + 30 * s, y + 14 * s), fill=(40, 30, 25), width=max(1, int(5 * s)))
        _ell(d, x, y, 16 * s, 16 * s, (35, 35, 38), (200, 60, 30) if obj.temp == "hot" else (70, 70, 75), width=2)
        inner = 13 * s
    elif name == "kettle":
        d.polygon([(x - 12 * s, y - 4 * s), (x - 20 * s, y - 9 * s), (x - 12 * s, y + 2 * s)], fill=(120, 125, 130))
        _rect(d, x, y, 12 * s, 11 * s, tint(name, (185, 190, 200)), (90, 90, 95), radius=5 * s)
        _ell(d, x, y - 1 * s, 5 * s, 5 * s, (150, 155, 165), (90, 90, 95))
        _rect(d, x, y + 13 * s, 10 * s, 2.5 * s, (70, 70, 75))  # water gauge
        if obj.level:
            _rect(d, x - 10 * s + 5 * s * obj.level, y + 13 * s, 5 * s * obj.level, 2 * s, LIQUIDS["water"])
        _ell(d, x + 8 * s, y - 7 * s, 2 * s, 2 * s, (255, 40, 20) if obj.temp == "hot" else (60, 60, 60))
        inner = 0.0
    elif name == "jug":
        d.polygon([(x - 12 * s, y - 3 * s), (x - 18 * s, y), (x - 12 * s, y + 3 * s)], fill=(200, 205, 210))
        _rect(d, x + 14 * s, y, 3 * s, 6 * s, (190, 195, 200))
        _ell(d, x, y, 13 * s, 13 * s, tint(name, (215, 225, 230)), (140, 150, 160), width=2)
        inner = 11 * s
        if "juice" in obj.marks and obj.level == 0:
            _ell(d, x, y, 4 * s, 4 * s, LIQUIDS["lemonade"])
    elif name == "jar":
        _ell(d, x, y, 9 * s, 9 * s, tint(name, (120, 80, 50)), (60, 40, 20), width=2)
        inner = 7 * s
        if obj.lid == "open":
            _ell(d, x, y, 7 * s, 7 * s, (230, 220, 200))
            _ell(d, x, y, 3 * s * obj.level, 3 * s * obj.level, (75, 45, 25))
        else:
            _ell(d, x, y, 8 * s, 8 * s, (200, 40, 40), (120, 20, 20))
            _ell(d, x, y, 2 * s, 2 * s, (240, 240, 240))
    elif name == "milk":
        _rect(d, x, y, 9 * s, 12 * s, tint(name, (245, 245, 250)), (120, 140, 190), radius=2)
        _rect(d, x - 5 * s, y + 1 * s, 2 * s, 9 * s, (210, 215, 230))
        _rect(d, x - 5 * s, y + 10 * s - 4.5 * s * obj.level, 2 * s, 4.5 * s * obj.level, (40, 90, 200))
        if obj.lid == "open":
            _ell(d, x + 3 * s, y - 6 * s, 3 * s, 3 * s, (40, 40, 40))
            _ell(d, x + 12 * s, y - 10 * s, 3 * s, 3 * s, (30, 80, 200))
        else:
            _ell(d, x + 3 * s, y - 6 * s, 3.5 * s, 3.5 * s, (30, 80, 200))
        inner = 0.0
    elif name == "sugar":
        _ell(d, x, y, 10 * s, 10 * s, tint(name, (205, 150, 110)), (140, 90, 60))
        _ell(d, x, y, 3.8 * s * obj.level + 1, 3.8 * s * obj.level + 1, (252, 252, 252))
        inner = 0.0
    else:
        raise ValueError(f"{name!r} is not a container")
    if name not in ("jar", "sugar", "milk"):
        _liquid(d, x, y, inner, obj, s)
    if name in ("cup", "plate", "bowl", "pot", "pan", "jug"):
        surface(d, x, y, inner, obj, s)  # marks come after the contents: see renderer
    if obj.temp == "hot" and name != "pan":
        steam(d, x, y - 12 * s, s)
    elif obj.temp == "hot":
        steam(d, x, y - 8 * s, s)
    return inner


def small_thing(d, name: str, obj: ObjectState, x, y, s, tint: Tint):
    """Tea bag and the props (butter dish, oil bottle, salt shaker)."""
    if name == "teabag":
        colour = (150, 90, 40) if obj.clean == "dirty" else tint(name, (225, 200, 150))
        d.line((x, y, x + 9 * s, y - 7 * s), fill=(240, 240, 240), width=1)
        _rect(d, x, y, 5 * s, 6 * s, colour, (120, 90, 60))
        _rect(d, x + 9 * s, y - 7 * s, 2.5 * s, 2 * s, (220, 40, 40))
    elif name == "butter":
        _ell(d, x, y, 12 * s, 8 * s, (235, 235, 240), (150, 150, 160))
        _rect(d, x, y, 7 * s, 4 * s, tint(name, (250, 225, 100)))
    elif name == "oil":
        _ell(d, x, y, 7 * s, 7 * s, tint(name, (190, 180, 50)), (90, 90, 20))
        _ell(d, x, y, 2.5 * s, 2.5 * s, (40, 60, 20))
    elif name == "salt":
        _ell(d, x, y, 5 * s, 5 * s, tint(name, (235, 235, 235)), (120, 120, 120))
        _dots(d, x, y, 3 * s, (80, 80, 80), 4, 0.7 * s)
    else:
        raise ValueError(f"unknown small object {name!r}")


def distractor(d, kind: str, x, y, colour: RGB, angle_flip: bool):
    """Clutter that never changes: it is there to be ignored."""
    sx = -1 if angle_flip else 1
    if kind == "fork":
        d.line((x - 14 * sx, y + 8, x + 8 * sx, y - 6), fill=(180, 180, 190), width=3)
        for k in (-2, 0, 2):
            d.line((x + 8 * sx, y - 6 + k, x + 14 * sx, y - 10 + k), fill=(180, 180, 190), width=1)
    elif kind == "spoon":
        d.line((x - 14 * sx, y + 8, x + 6 * sx, y - 4), fill=(175, 175, 185), width=3)
        _ell(d, x + 10 * sx, y - 7, 5, 3.5, (190, 190, 200))
    elif kind == "knife":
        d.line((x - 14 * sx, y + 8, x - 3 * sx, y + 1), fill=(40, 30, 30), width=4)
        d.line((x - 3 * sx, y + 1, x + 14 * sx, y - 9), fill=(200, 200, 210), width=3)
    elif kind == "napkin":
        _rect(d, x, y, 13, 13, colour, _mix(colour, (0, 0, 0), 0.3))
        d.line((x - 13, y - 13, x + 13, y + 13), fill=_mix(colour, (0, 0, 0), 0.2), width=1)
    elif kind == "phone":
        _rect(d, x, y, 7, 13, (25, 25, 30), (90, 90, 100), radius=3)
        _rect(d, x, y, 5, 10, _mix(colour, (20, 20, 40), 0.6))
    elif kind == "glass":
        _ell(d, x, y, 9, 9, _mix(colour, (230, 240, 245), 0.85), (170, 190, 200), width=2)
    elif kind == "book":
        _rect(d, x, y, 15, 11, colour, _mix(colour, (0, 0, 0), 0.4), radius=1)
        d.line((x - 15, y - 8, x + 15, y - 8), fill=(240, 240, 230), width=1)
    elif kind == "coaster":
        _ell(d, x, y, 10, 10, _mix(colour, (150, 110, 70), 0.6), (90, 60, 40))
    else:
        raise ValueError(f"unknown distractor {kind!r}")
