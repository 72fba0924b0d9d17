"""Draws a tabletop state as a 224x224 RGB camera image, seen from above.

A `Scene` holds everything about an episode that does not depend on the state: the table
cloth, where the shelf, sink and stove are, where each object stands, which distractors lie
around, the colour jitter of each object, the lighting, the blur and the sensor noise level.
`render(state, scene, frame)` then draws the objects as the state says (moving with their
location, changing look with their attributes) and adds per-frame sensor noise. Everything is
deterministic from the scene seed and the frame number.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from training.tabletop import sprites
from training.tabletop.world import CONTAINERS, ObjectState, State

SIZE = 224
SHELF_H = 34
_COLS, _ROWS = 5, 4
_CELL_W, _CELL_H = SIZE / _COLS, (SIZE - SHELF_H - 2) / _ROWS
_SINK_OFFSETS = ((-18, -4), (18, 4), (0, 0), (-18, 10))
_IN_CONTAINER = ((0, 0), (-7, -4), (7, 4), (5, -7), (-5, 7))
_CONTENT_SCALE = 0.6
_TABLE_SCALE, _SHELF_SCALE, _SINK_SCALE = 1.2, 0.8, 0.9
# nuisance ranges (tuned so the domain is neither trivial nor hopeless: see bench/results/tabletop-baselines.md)
NUISANCE = {"gain": (0.7, 1.2), "gradient": (0.0, 0.35), "white_balance": 0.08, "blur": (0.3, 1.2),
            "noise": (2.0, 7.0), "jitter_px": 5.0, "tint": 18, "distractors": (2, 5), "food_distractors": (0, 2)}
_CLOTHS = ((200, 170, 120), (150, 110, 70), (225, 225, 215), (170, 190, 200), (200, 150, 150), (160, 185, 140),
           (120, 120, 130), (235, 215, 170))


@dataclass
class Scene:
    seed: int
    slots: dict[str, tuple[float, float]]  # table position of every object and food distractor
    shelf_x: dict[str, float]
    sink: tuple[float, float, float, float]
    stove: tuple[float, float]
    distractors: list[tuple[str, float, float, tuple[int, int, int], bool]]
    food_distractors: tuple[str, ...]
    tints: dict[str, np.ndarray]
    cloth: tuple[tuple[int, int, int], tuple[int, int, int], str]
    light: np.ndarray  # (H, W, 3) float32 gain
    blur: float
    noise: float
    _background: Image.Image | None = field(default=None, repr=False)

    def tint(self, name: str, colour) -> tuple[int, int, int]:
        delta = self.tints.get(name)
        if delta is None:
            return tuple(colour)
        return tuple(int(min(255, max(0, c + d))) for c, d in zip(colour, delta))

    @property
    def background(self) -> Image.Image:
        if self._background is None:
            self._background = _draw_background(self)
        return self._background


def make_scene(objects: set[str] | tuple[str, ...], seed: int) -> Scene:
    """Random layout and nuisance for an episode whose state holds `objects`."""
    rng = np.random.default_rng(seed)
    n = NUISANCE
    cells = [(c, r) for r in range(_ROWS) for c in range(_COLS)]
    sink_cell = (int(rng.integers(_COLS - 1)), int(rng.integers(_ROWS)))
    stove_cell = sink_cell
    while stove_cell in (sink_cell, (sink_cell[0] + 1, sink_cell[1])):
        stove_cell = cells[int(rng.integers(len(cells)))]
    free = [c for c in cells if c not in (sink_cell, (sink_cell[0] + 1, sink_cell[1]), stove_cell)]
    rng.shuffle(free)
    spare_food = sorted(set(sprites.PRODUCE) - set(objects))
    food = tuple(rng.choice(spare_food, size=int(rng.integers(n["food_distractors"][0], n["food_distractors"][1] + 1)),
                            replace=False))
    names = sorted(objects) + list(food)
    kinds = rng.choice(sprites.DISTRACTORS, size=int(rng.integers(n["distractors"][0], n["distractors"][1] + 1)))
    if len(names) + len(kinds) > len(free):
        raise ValueError(f"too many objects for the table: {len(names)} objects + {len(kinds)} distractors")

    def spot(cell) -> tuple[float, float]:
        j = n["jitter_px"]
        return ((cell[0] + 0.5) * _CELL_W + rng.uniform(-j, j), SHELF_H + 2 + (cell[1] + 0.5) * _CELL_H + rng.uniform(-j, j))

    slots = {name: spot(free[i]) for i, name in enumerate(names)}
    distractors = [(str(k), *spot(free[len(names) + i]), tuple(int(v) for v in rng.integers(40, 230, 3)), bool(rng.random() < 0.5))
                   for i, k in enumerate(kinds)]
    order = rng.permutation(len(names))
    shelf_x = {name: 16 + (SIZE - 32) * (order[i] + 0.5) / len(names) for i, name in enumerate(names)}
    sx, sy = sink_cell[0] * _CELL_W, SHELF_H + 2 + sink_cell[1] * _CELL_H
    sink = (sx + 3, sy + 3, sx + 2 * _CELL_W - 3, sy + _CELL_H - 3)
    stove = ((stove_cell[0] + 0.5) * _CELL_W, SHELF_H + 2 + (stove_cell[1] + 0.5) * _CELL_H)
    tints = {name: rng.integers(-n["tint"], n["tint"] + 1, 3) for name in names}
    base = _CLOTHS[int(rng.integers(len(_CLOTHS)))]
    second = tuple(int(v) for v in np.clip(np.array(base) + rng.integers(-45, 46, 3), 0, 255))
    cloth = (base, second, str(rng.choice(["plain", "wood", "check", "stripes"])))
    return Scene(seed, slots, shelf_x, sink, stove, distractors, food, tints, cloth, _light(rng),
                 float(rng.uniform(*n["blur"])), float(rng.uniform(*n["noise"])))


def _light(rng: np.random.Generator) -> np.ndarray:
    """Overall brightness, a directional gradient and a white balance, as a per-pixel gain."""
    n = NUISANCE
    angle = rng.uniform(0, 2 * np.pi)
    axis = np.arange(SIZE, dtype=np.float32) / SIZE - 0.5
    ramp = axis[None, :] * np.cos(angle) + axis[:, None] * np.sin(angle)
    gain = rng.uniform(*n["gain"]) * (1.0 + rng.uniform(*n["gradient"]) * ramp)
    balance = 1.0 + rng.uniform(-n["white_balance"], n["white_balance"], 3)
    return gain[..., None].astype(np.float32) * balance.astype(np.float32)


def _cloth(scene: Scene) -> np.ndarray:
    base, second, pattern = scene.cloth
    axis = np.arange(SIZE, dtype=np.float32)
    if pattern == "wood":
        t = 0.5 + 0.5 * np.sin(axis[:, None] * 0.35 + 2.5 * np.sin(axis[None, :] * 0.03 + scene.seed % 7))
    elif pattern == "check":
        t = ((axis[:, None] // 28 + axis[None, :] // 28) % 2) * 0.6
    elif pattern == "stripes":
        t = (((axis[:, None] + axis[None, :]) // 12) % 2) * 0.5
    else:
        t = np.zeros((SIZE, SIZE), np.float32)
    base_rgb = np.array(base, np.float32)
    img = base_rgb + t[..., None].astype(np.float32) * (np.array(second, np.float32) - base_rgb)
    shelf = 0.9 + 0.1 * np.sin(axis * 0.2)
    img[:SHELF_H] = shelf[None, :, None] * np.array((120, 80, 45), np.float32)
    img[SHELF_H - 3:SHELF_H] = (80, 50, 25)
    return img.astype(np.uint8)


def _draw_background(scene: Scene) -> Image.Image:
    img = Image.fromarray(_cloth(scene))
    d = ImageDraw.Draw(img)
    x0, y0, x1, y1 = scene.sink
    d.rounded_rectangle((x0, y0, x1, y1), radius=8, fill=(175, 180, 185), outline=(110, 115, 120), width=2)
    d.rounded_rectangle((x0 + 5, y0 + 5, x1 - 5, y1 - 5), radius=6, fill=(140, 150, 160))
    d.ellipse(((x0 + x1) / 2 - 3, (y0 + y1) / 2 - 3, (x0 + x1) / 2 + 3, (y0 + y1) / 2 + 3), fill=(60, 60, 65))
    d.rectangle((x1 - 16, y0 - 1, x1 - 10, y0 + 9), fill=(200, 200, 210))  # tap
    sx, sy = scene.stove
    d.rounded_rectangle((sx - 21, sy - 21, sx + 21, sy + 21), radius=4, fill=(45, 45, 50))
    for kind, x, y, colour, flip in scene.distractors:
        sprites.distractor(d, kind, x, y, colour, flip)
    return img


_WHOLE = ObjectState()


def _contents(state: State, where: str) -> list[str]:
    return sorted(name for name, obj in state.items() if obj.loc == where)


def _draw_object(d: ImageDraw.ImageDraw, state: State, name: str, x: float, y: float, s: float, scene: Scene) -> None:
    obj = state[name]
    if name in CONTAINERS:
        radius = sprites.container(d, name, obj, x, y, s, scene.tint)
        for i, inner in enumerate(_contents(state, name)):
            dx, dy = _IN_CONTAINER[i % len(_IN_CONTAINER)]
            _draw_object(d, state, inner, x + dx * s, y + dy * s, s * _CONTENT_SCALE, scene)
        sprites.marks(d, x, y, radius, obj, s)
    elif name in sprites.PRODUCE:
        sprites.produce(d, name, obj, x, y, s, scene.tint)
    else:
        sprites.small_thing(d, name, obj, x, y, s, scene.tint)


def draw_state(state: State, scene: Scene) -> Image.Image:
    """The clean drawing of a state (no blur, lighting or noise)."""
    img = scene.background.copy()
    d = ImageDraw.Draw(img)
    sx, sy = scene.stove
    hot = any(o.loc == "stove" and o.temp == "hot" for o in state.values())
    for r in (17, 11, 5):
        d.ellipse((sx - r, sy - r, sx + r, sy + r), outline=(235, 70, 20) if hot else (90, 90, 95), width=2)
    for name in scene.food_distractors:
        sprites.produce(d, name, _WHOLE, *scene.slots[name], _TABLE_SCALE, scene.tint)
    top = [n for n in state if state[n].loc in ("shelf", "table", "sink", "stove")]
    top.sort(key=lambda n: (n not in CONTAINERS, n))  # containers first: small things lie beside or on top
    sink_x, sink_y = (scene.sink[0] + scene.sink[2]) / 2, (scene.sink[1] + scene.sink[3]) / 2
    in_sink = _contents(state, "sink")
    for name in top:
        loc = state[name].loc
        if loc == "shelf":
            _draw_object(d, state, name, scene.shelf_x[name], SHELF_H / 2 - 1, _SHELF_SCALE, scene)
        elif loc == "sink":
            dx, dy = _SINK_OFFSETS[in_sink.index(name) % len(_SINK_OFFSETS)]
            _draw_object(d, state, name, sink_x + dx, sink_y + dy, _SINK_SCALE, scene)
        elif loc == "stove":
            _draw_object(d, state, name, sx, sy, _TABLE_SCALE, scene)
        else:
            _draw_object(d, state, name, *scene.slots[name], _TABLE_SCALE, scene)
    return img


def render(state: State, scene: Scene, frame: int = 0) -> np.ndarray:
    """The camera image of `state`: drawing, blur, lighting and per-frame sensor noise."""
    img = draw_state(state, scene).filter(ImageFilter.BoxBlur(scene.blur))
    rng = np.random.default_rng([scene.seed, frame])
    half_width = int(round(scene.noise * 3**0.5))  # uniform noise with standard deviation `scene.noise`
    noise = rng.integers(-half_width, half_width + 1, (SIZE, SIZE, 3), dtype=np.int16)
    out = np.asarray(img, dtype=np.float32) * scene.light + noise
    return np.clip(out, 0, 255).astype(np.uint8)
