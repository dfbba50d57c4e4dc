"""The procedural painter: a :class:`Style` and a size (and a time, for video) to pixels.

Layers are painted back to front as alpha masks over a float image. Coordinates are in
image heights (``y`` in ``0..1`` from the top, ``x`` in ``0..width/height``) so circles stay
round at any aspect ratio. Every random choice comes from the style's ``variation`` seed.
"""

from __future__ import annotations

import numpy as np

from ._noise import Array, Noise1D, fbm2d, smoothstep
from ._prompt import Style

__all__ = ["render"]

_Colour = tuple[float, float, float]


def _c(colour: _Colour) -> Array:
    return np.asarray(colour, dtype=np.float32)


def _paint(img: Array, mask: Array, colour: Array) -> None:
    """Alpha-composite ``colour`` (RGB or a broadcastable colour field) over ``img``, in place."""
    img += (colour - img) * mask[..., None]


def _screen(img: Array, amount: Array, colour: Array) -> None:
    """Add light without blowing out: ``1 - (1 - img)(1 - light)``."""
    img += (1.0 - img) * (amount[..., None] * colour)


class _Canvas:
    """Pixel-centre coordinates of one frame, zoomed about the centre for slow camera moves."""

    def __init__(self, width: int, height: int, zoom: float = 1.0) -> None:
        self.width, self.height = width, height
        self.aspect = width / height
        cx, cy = self.aspect / 2, 0.5
        xs = (np.arange(width, dtype=np.float32) + 0.5) / height
        ys = (np.arange(height, dtype=np.float32) + 0.5) / height
        self.x = (cx + (xs - cx) / zoom)[None, :]
        self.y = (cy + (ys - cy) / zoom)[:, None]
        self.px = 1.0 / (height * zoom)  # one pixel, in scene units


def render(style: Style, width: int, height: int, t: float = 0.0) -> Array:
    """The scene as ``height x width x 3`` float32 in ``0..1`` (before mood grading).

    ``t`` is seconds into an animation: clouds drift, layers pan with parallax, the light sinks.
    """
    canvas = _Canvas(width, height, zoom=1.0 + 0.012 * t)
    rng = np.random.default_rng(style.variation)
    light = (style.light_x * canvas.aspect, style.light_y + 0.012 * t)
    els = style.elements

    img = _sky(canvas, style)
    if "stars" in els:
        _stars(img, canvas, style, np.random.default_rng(style.variation + 1), t)
    _lights(img, canvas, style, light, t)
    if "clouds" in els:
        _clouds(img, canvas, style, np.random.default_rng(style.variation + 2), light=light, t=t)
    if not els & {"water", "grid"}:
        _ground(img, canvas, style)
    if "mountains" in els:
        _mountains(img, canvas, style, Noise1D(rng), t)
    if "dunes" in els:
        _dunes(
            img, canvas, style, Noise1D(np.random.default_rng(style.variation + 3), octaves=2), t
        )
    if "city" in els:
        _city(img, canvas, style, np.random.default_rng(style.variation + 4), t)
    if "forest" in els:
        _forest(img, canvas, style, np.random.default_rng(style.variation + 5), t)
    if "grid" in els:
        _grid(img, canvas, style, t)
    elif "water" in els:
        _water(img, canvas, style, np.random.default_rng(style.variation + 6), light=light, t=t)
    return img


def _sky(canvas: _Canvas, style: Style) -> Array:
    pal = style.palette
    ys = canvas.y[:, 0]
    stops = np.array([0.0, style.horizon * 0.55, style.horizon, 1.0], dtype=np.float32)
    colours = np.stack([_c(pal.sky_top), _c(pal.sky_mid), _c(pal.horizon), _c(pal.horizon)])
    column = np.stack([np.interp(ys, stops, colours[:, k]) for k in range(3)], axis=1)
    img = np.empty((canvas.height, canvas.width, 3), dtype=np.float32)
    img[:] = column[:, None, :].astype(np.float32)
    return img


def _stars(img: Array, canvas: _Canvas, style: Style, rng: np.random.Generator, t: float) -> None:
    h, w = canvas.height, canvas.width
    count = max(8, (h * w) // 900)
    rows = rng.integers(0, max(1, int(h * style.horizon)), count)
    cols = rng.integers(0, w, count)
    bright = rng.uniform(0.25, 1.0, count).astype(np.float32) ** 3
    phase = rng.uniform(0, 2 * np.pi, count)
    bright *= (0.75 + 0.25 * np.sin(phase + 5.0 * t)).astype(np.float32)
    field = np.zeros((h, w), dtype=np.float32)
    np.add.at(field, (rows, cols), bright)
    # A one-pixel halo makes the bright ones read as stars, not dust.
    halo = field.copy()
    halo[1:] += 0.3 * field[:-1]
    halo[:-1] += 0.3 * field[1:]
    halo[:, 1:] += 0.3 * field[:, :-1]
    halo[:, :-1] += 0.3 * field[:, 1:]
    fade = smoothstep(style.horizon, style.horizon * 0.6, canvas.y)
    _screen(img, np.clip(halo, 0, 1) * fade, _c((1.0, 0.97, 0.92)))


def _lights(
    img: Array, canvas: _Canvas, style: Style, light: tuple[float, float], t: float
) -> None:
    pal = style.palette
    els = style.elements
    lx, ly = light
    dx, dy = canvas.x - lx, canvas.y - ly
    dist = np.sqrt(dx * dx + dy * dy)
    has_light = bool(els & {"sun", "moon"})
    if has_light or "circle" not in els:
        strength = 0.9 if "sun" in els else 0.45
        glow = 0.5 * np.exp(-(dist * dist) / (2 * 0.16**2)) + 0.25 * np.exp(-dist / 0.45)
        _screen(img, glow.astype(np.float32) * strength, _c(pal.light))
    above = smoothstep(style.horizon + canvas.px, style.horizon - canvas.px, canvas.y)
    if "sun" in els:
        radius = 0.085 if "grid" in els else 0.065
        disc = smoothstep(radius + canvas.px, radius - canvas.px, dist)
        colour: Array = _c(pal.light)
        if "grid" in els:
            # The retro sun: a vertical gradient cut by widening slots.
            v = np.clip((canvas.y - (ly - radius)) / (2 * radius), 0, 1)
            colour = (_c(pal.light) * (1 - v[..., None]) + _c(pal.horizon) * v[..., None]).astype(
                np.float32
            )
            slots = np.sin((canvas.y - ly) * 160.0 - 3.0 * t) < (v * 2.2 - 1.4)
            disc = disc * np.where(slots & (canvas.y > ly), 0.0, 1.0).astype(np.float32)
        _paint(img, disc * above, style.tint("sun", colour))
    if "moon" in els:
        mx, my = (lx, ly) if "sun" not in els else (canvas.aspect - lx, ly - 0.05)
        mdx, mdy = canvas.x - mx, canvas.y - my
        mdist = np.sqrt(mdx * mdx + mdy * mdy)
        radius = 0.055
        disc = smoothstep(radius + canvas.px, radius - canvas.px, mdist)
        sx, sy = mdx + 0.028, mdy - 0.012
        shadow = smoothstep(radius + canvas.px, radius - canvas.px, np.sqrt(sx * sx + sy * sy))
        mask = disc * (1.0 - 0.88 * shadow)
        if "sun" in els:
            halo = 0.3 * np.exp(-(mdist * mdist) / (2 * 0.08**2))
            _screen(img, halo.astype(np.float32), _c(pal.light))
        _paint(img, mask * above, style.tint("moon", _c(pal.light) * 0.96))
    if "circle" in els:
        cx, cy = canvas.aspect / 2, style.horizon * 0.55
        cdx, cdy = canvas.x - cx, canvas.y - cy
        cdist = np.sqrt(cdx * cdx + cdy * cdy)
        radius = 0.2
        ring = np.exp(-((cdist - radius) ** 2) / (2 * (0.006 + canvas.px) ** 2))
        outer = np.exp(-((cdist - radius * 1.25) ** 2) / (2 * (0.002 + canvas.px) ** 2))
        glow = np.exp(-((cdist - radius) ** 2) / (2 * 0.05**2))
        inside = smoothstep(radius, 0.0, cdist) * 0.35
        pulse = 0.85 + 0.15 * np.sin(2.0 * t)
        _screen(img, (inside * 0.5).astype(np.float32), _c(pal.light))
        ring_colour = style.tint("circle", _c(pal.light))
        glow_colour = style.tint("circle", _c(pal.accent))
        _screen(img, (glow * 0.55 * pulse).astype(np.float32), glow_colour)
        _paint(img, np.clip(ring + 0.6 * outer, 0, 1).astype(np.float32), ring_colour)


def _clouds(
    img: Array,
    canvas: _Canvas,
    style: Style,
    rng: np.random.Generator,
    *,
    light: tuple[float, float],
    t: float,
) -> None:
    pal = style.palette
    h, w = canvas.height, canvas.width
    stormy = "storm" in style.palette_names or style.mood.rain > 0
    noise = fbm2d(rng, w, h, cells=(5, 7), octaves=5)
    shift = round(t * 0.02 * h)
    if shift:
        noise = np.roll(noise, shift, axis=1)
    band = smoothstep(0.0, 0.25, canvas.y) * smoothstep(
        style.horizon, style.horizon * 0.55, canvas.y
    )
    cover = 0.42 if stormy else 0.52
    mask = smoothstep(cover, cover + 0.22, noise) * band * (0.95 if stormy else 0.8)
    lx, ly = light
    near_light = np.exp(-((canvas.x - lx) ** 2 + (canvas.y - ly) ** 2) / (2 * 0.3**2))
    base = (
        _c(pal.sky_mid) * 0.55 + _c(pal.far) * 0.45
        if stormy
        else _c(pal.horizon) * 0.7 + _c(pal.sky_mid) * 0.3
    )
    lit = _c(pal.light)
    shade = (noise - cover).clip(0, 1)[..., None] * 1.6  # thicker cloud reads darker underneath
    colour = base * (1.0 - 0.35 * shade) + lit * (near_light[..., None] * 0.55)
    _paint(img, mask.astype(np.float32), colour.astype(np.float32))


def _ground(img: Array, canvas: _Canvas, style: Style) -> None:
    pal = style.palette
    mask = smoothstep(style.horizon - canvas.px, style.horizon + canvas.px, canvas.y)
    v = np.clip((canvas.y - style.horizon) / (1.0 - style.horizon), 0, 1)
    colour = _c(pal.far) * (1 - v[..., None]) + _c(pal.near) * v[..., None]
    _paint(img, np.broadcast_to(mask, (canvas.height, canvas.width)).astype(np.float32), colour)


def _layer_mask(canvas: _Canvas, top: Array) -> Array:
    """1 below the ``top`` line (a function of x), antialiased over a pixel."""
    return np.clip((canvas.y - top) / canvas.px + 0.5, 0.0, 1.0).astype(np.float32)


def _mountains(img: Array, canvas: _Canvas, style: Style, noise: Noise1D, t: float) -> None:
    pal = style.palette
    layers = 3
    for i in range(layers):
        depth = i / (layers - 1)  # 0 far .. 1 near
        pan = t * (0.01 + 0.03 * depth)
        ridge = noise(canvas.x + pan + 7.3 * i, frequency=1.4 + 0.6 * i, ridged=True)
        height = (0.24 - 0.06 * i) * (0.45 + 0.55 * ridge)
        top = style.horizon + 0.03 * i - height
        haze = (1.0 - depth) * 0.65 + style.mood.haze * 0.3
        colour = _c(pal.far) * (1 - depth) + _c(pal.near) * depth
        colour = colour * (1 - haze) + _c(pal.horizon) * haze
        # Mist pools at the foot of each layer.
        below = canvas.y - top
        fog = smoothstep(0.0, 0.15, below) * smoothstep(0.45, 0.15, below) * (0.5 - 0.3 * depth)
        shaded = colour * (1 - fog[..., None]) + _c(pal.horizon) * fog[..., None]
        shaded = shaded * (1.0 - 0.35 * depth * smoothstep(0.1, 0.4, below))[..., None]
        if "snow" in style.palette_names or "snowy" in style.words:
            cap = smoothstep(0.03, 0.0, canvas.y - top) * smoothstep(0.5, 0.9, ridge)
            shaded = shaded * (1 - cap[..., None]) + _c((0.97, 0.98, 1.0)) * cap[..., None]
        _paint(img, _layer_mask(canvas, top), shaded.astype(np.float32))


def _dunes(img: Array, canvas: _Canvas, style: Style, noise: Noise1D, t: float) -> None:
    pal = style.palette
    for i in range(3):
        depth = i / 2
        x = canvas.x + t * (0.01 + 0.02 * depth) + 3.1 * i
        crest = noise(x, frequency=1.2 + 0.6 * i, ridged=True)
        top = style.horizon + 0.02 + 0.09 * i - (0.05 - 0.01 * i) * (crest + 1.0)
        slope = np.gradient(top[0])[None, :] / canvas.px
        lit = np.clip(0.5 - slope * 1.5, 0.0, 1.0)
        # The wind side catches the light only near the crest; lower down it is all sand.
        near_crest = np.exp(-(canvas.y - top) / 0.04)
        shade = (0.85 + (lit - 0.5) * 0.6 * near_crest)[..., None]
        base = _c(pal.far) * (1 - depth * 0.5) + _c(pal.near) * depth * 0.5
        colour = base * shade + _c(pal.light) * (0.1 * lit * near_crest)[..., None]
        haze = (1 - depth) * 0.35
        colour = colour * (1 - haze) + _c(pal.horizon) * haze
        _paint(img, _layer_mask(canvas, top), np.clip(colour, 0, 1).astype(np.float32))


def _city(img: Array, canvas: _Canvas, style: Style, rng: np.random.Generator, t: float) -> None:
    pal = style.palette
    night = style.palette_names[0] in ("night", "neon", "purple", "blue", "storm", "mono")
    base_line = style.horizon + (0.0 if "water" in style.elements else 0.06)
    for i, depth in enumerate((0.0, 1.0)):
        # Buildings along an infinite street: widths and heights from a repeating table.
        n = 96
        widths = rng.uniform(0.025, 0.07, n).astype(np.float32) * (1.0 + 0.4 * depth)
        heights = rng.uniform(0.05, 0.22, n).astype(np.float32) * (0.7 + 0.6 * depth)
        heights[rng.random(n) < 0.12] *= 1.8  # the odd tower
        edges = np.concatenate([[0.0], np.cumsum(widths)]).astype(np.float32)
        period = float(edges[-1])
        x = (canvas.x[0] + t * (0.008 + 0.025 * depth) + 1.7 * i) % period
        index = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, n - 1)
        top = (base_line - heights[index])[None, :]
        mask = _layer_mask(canvas, top)
        colour = _c(pal.far) * (1 - depth) * 0.8 + _c(pal.near) * (0.2 + 0.8 * depth)
        haze = (1 - depth) * 0.45 + style.mood.haze * 0.2
        colour = colour * (1 - haze) + _c(pal.horizon) * haze
        _paint(img, mask, colour)
        # Windows: a grid inside each building, lit by a per-cell coin toss.
        local_x = (x - edges[index])[None, :]
        cell_x = np.floor(local_x / 0.011).astype(np.int64)
        cell_y = np.floor((canvas.y - top) / 0.016).astype(np.int64)
        in_x = (local_x % 0.011) < 0.006
        in_y = ((canvas.y - top) % 0.016) < 0.009
        table = rng.random((64, 64)) < (0.3 if night else 0.1)
        lit = table[(cell_y + 7 * index[None, :]) % 64, (cell_x + 13 * index[None, :]) % 64]
        inside = (local_x > 0.004) & (local_x < (widths[index][None, :] - 0.004))
        below_top = canvas.y > top + 0.01
        windows = (in_x & in_y & lit & inside & below_top).astype(np.float32)
        windows *= mask * (0.35 + 0.65 * depth) * (1.0 if night else 0.45)
        _screen(img, windows, _c(pal.accent))


def _forest(img: Array, canvas: _Canvas, style: Style, rng: np.random.Generator, t: float) -> None:
    pal = style.palette
    base_line = style.horizon + (0.0 if "water" in style.elements else 0.05)
    for i, depth in enumerate((0.0, 0.5, 1.0)):
        n = 220
        period = 4.0
        centres = np.sort(rng.uniform(0, period, n)).astype(np.float32)
        tall = rng.uniform(0.05, 0.1, n).astype(np.float32) * (1 + 1.2 * depth)
        half = tall * rng.uniform(0.22, 0.3, n).astype(np.float32)
        x = (canvas.x[0] + t * (0.01 + 0.04 * depth) + 0.9 * i) % period
        # Distance to every tree, wrapped so the row repeats seamlessly.
        d = np.abs(x[None, :] - centres[:, None])
        d = np.minimum(d, period - d)
        across = np.clip(d / half[:, None], 0.0, 1.0)
        profile = tall[:, None] * (1.0 - across)
        # Boughs: each tier of a pine steps in, except along its trunk line.
        tier = tall[:, None] / 5.0
        profile -= 0.6 * tier * np.mod(profile, tier) / tier * across
        profile = np.maximum(np.max(profile, axis=0), 0.012 + 0.01 * depth)
        top = (base_line + 0.05 * depth - profile)[None, :]
        colour = _c(pal.far) * (1 - depth) + _c(pal.near) * depth
        haze = (1 - depth) * 0.55 + style.mood.haze * 0.2
        colour = colour * (1 - haze) + _c(pal.horizon) * haze
        _paint(img, _layer_mask(canvas, top), colour * (1.0 - 0.35 * depth))


def _water(
    img: Array,
    canvas: _Canvas,
    style: Style,
    rng: np.random.Generator,
    *,
    light: tuple[float, float],
    t: float,
) -> None:
    pal = style.palette
    h, w = canvas.height, canvas.width
    ys = canvas.y[:, 0]
    horizon_row = int(np.searchsorted(ys, style.horizon))
    if horizon_row >= h:
        return
    rows = np.arange(horizon_row, h)
    depth = (ys[rows] - style.horizon)[:, None]  # scene units below the horizon
    # Ripples: noise stretched flat, scrolled towards the viewer over time.
    ripple = fbm2d(rng, w, h - horizon_row, cells=(3, 24), octaves=3)
    shift = int(t * 0.04 * h)
    if shift:
        ripple = np.roll(ripple, shift, axis=0)
    ripple -= 0.5
    # Mirror the scene about the horizon, displaced more the nearer the water is.
    offset = ripple * (depth * 1.8 + 0.004) / canvas.px
    src_rows = np.clip(2 * horizon_row - rows - 1, 0, h - 1)
    src_cols = np.clip((np.arange(w)[None, :] + offset * 0.25).astype(np.int64), 0, w - 1)
    reflection = img[src_rows[:, None], src_cols]
    tint = _c(pal.far) * 0.35 + _c(pal.near) * 0.65
    mix = np.clip(0.15 + depth * 1.4, 0.0, 0.8)
    water = reflection * (1 - mix[..., None]) * 0.9 + tint * mix[..., None]
    crest = smoothstep(0.08, 0.25, ripple) * np.clip(0.7 - depth, 0, 1)
    water += (crest * 0.12)[..., None] * _c(pal.accent)
    if style.elements & {"sun", "moon"}:
        lx, _ = light
        width = 0.02 + depth * 0.35
        column = np.exp(-(((canvas.x - lx) / width) ** 2)) * smoothstep(0.02, 0.2, ripple)
        water += (column * 0.8)[..., None] * _c(pal.light)
    blend = smoothstep(0.0, canvas.px * 2, depth)
    img[horizon_row:] += (np.clip(water, 0, 1) - img[horizon_row:]) * blend[..., None]


def _grid(img: Array, canvas: _Canvas, style: Style, t: float) -> None:
    pal = style.palette
    h = style.horizon
    depth = np.maximum(canvas.y - h, canvas.px)  # distance below the horizon
    ground = smoothstep(h - canvas.px, h + canvas.px, canvas.y)
    v = np.clip(depth / (1 - h), 0, 1)
    floor = _c(pal.near) * (0.6 + 0.4 * v[..., None]) + _c(pal.sky_mid) * (
        0.25 * (1 - v[..., None])
    )
    _paint(img, np.broadcast_to(ground, img.shape[:2]).astype(np.float32), floor.astype(np.float32))
    z = 0.12 / depth  # perspective depth of each row
    rows_coord = z * 3.0 + t * 1.2
    cols_coord = (canvas.x - canvas.aspect / 2) * z * 6.0
    # Line width in pixels: distance to the nearest line divided by the coordinate's rate.
    drow = 0.36 / (depth * depth) * canvas.px
    dcol = z * 6.0 * canvas.px
    frow = np.abs(rows_coord - np.round(rows_coord)) / drow
    fcol = np.abs(cols_coord - np.round(cols_coord)) / dcol
    lines = np.maximum(np.exp(-(frow**2)), np.exp(-(fcol**2)))
    fade = smoothstep(0.0, 0.12, depth) * ground
    glow_line = np.exp(-(((canvas.y - h) / 0.01) ** 2)) * 0.8
    _screen(img, np.clip(lines * fade, 0, 1).astype(np.float32), style.tint("grid", _c(pal.accent)))
    _screen(img, np.broadcast_to(glow_line, img.shape[:2]).astype(np.float32), _c(pal.horizon))
