#!/usr/bin/env python
"""Generate the demo content and style images used by the examples.

Every picture is drawn procedurally with numpy + Pillow from fixed seeds, so
the output is identical on every run and no third-party (possibly
copyrighted) artwork or download is needed.  The generated images are
dedicated to the public domain (CC0 1.0); see ``LICENSE.txt`` next to them.

Usage::

    python examples/make_demo_inputs.py [--out DIR]

``DIR`` defaults to ``examples/inputs`` next to this script.  Other code can
load this file by path and call :func:`make_demo_inputs`::

    import importlib.util
    spec = importlib.util.spec_from_file_location("make_demo_inputs", path)
    mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
    paths = mod.make_demo_inputs(out_dir)   # {"content_landscape": Path(...), ...}

Images written:

* ``content_landscape.png`` (640x480) - sky with sun and clouds, fractal
  mountain ridges, a lake with a darker reflection, a house and trees.
* ``content_portrait.png`` (384x512) - still life: vase with flowers and fruit
  on a gingham table cloth (portrait aspect ratio).
* ``style_swirls.png`` (512x512) - thick short brush strokes following a
  swirling night-sky vector field in deep blues, cyan, yellow and white.
* ``style_mosaic.png`` (512x512) - stained-glass / cubist mosaic of Voronoi
  cells in warm reds, oranges and greens with dark lead lines.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

__all__ = [
    "make_demo_inputs",
    "make_landscape",
    "make_portrait",
    "make_swirls",
    "make_mosaic",
    "DEFAULT_OUT_DIR",
]

DEFAULT_OUT_DIR = Path(__file__).resolve().parent / "inputs"

LICENSE_TEXT = """\
Demo input images for the neural style transfer toolkit
=======================================================

The images in this directory

    content_landscape.png
    content_portrait.png
    style_swirls.png
    style_mosaic.png

are generated procedurally (numpy + Pillow, fixed random seeds, no external
artwork or downloads) by examples/make_demo_inputs.py in this repository.
Re-run that script to regenerate them bit-for-bit.

To the extent possible under law, the authors have dedicated all copyright
and related and neighboring rights to these images to the public domain
worldwide. They are distributed without any warranty.

CC0 1.0 Universal (CC0 1.0) Public Domain Dedication
https://creativecommons.org/publicdomain/zero/1.0/
"""


# ---------------------------------------------------------------------------
# Small numeric helpers
# ---------------------------------------------------------------------------


def _smoothstep(e0: float, e1: float, x: np.ndarray) -> np.ndarray:
    t = np.clip((x - e0) / (e1 - e0), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def _lerp(a, b, t):
    """Blend colours a -> b; ``t`` broadcasts against the last (RGB) axis."""
    a = np.asarray(a, dtype=np.float32)
    b = np.asarray(b, dtype=np.float32)
    t = np.asarray(t, dtype=np.float32)
    if t.ndim and t.shape[-1] not in (1, 3):
        t = t[..., None]
    return a + (b - a) * t


def _fbm2d(h: int, w: int, rng: np.random.Generator, octaves: int = 5,
           base_cells: int = 4, persistence: float = 0.5) -> np.ndarray:
    """Fractal value noise in [0, 1], shape (h, w), via bicubic upsampling."""
    out = np.zeros((h, w), dtype=np.float32)
    amp, total = 1.0, 0.0
    big = max(h, w)
    for o in range(octaves):
        cells = base_cells * (2 ** o)
        ch = max(2, int(round(cells * h / big)) + 1)
        cw = max(2, int(round(cells * w / big)) + 1)
        small = rng.random((ch, cw), dtype=np.float32)
        layer = np.asarray(
            Image.fromarray(small, mode="F").resize((w, h), Image.BICUBIC),
            dtype=np.float32,
        )
        out += amp * layer
        total += amp
        amp *= persistence
    out /= total
    lo, hi = float(out.min()), float(out.max())
    return (out - lo) / max(hi - lo, 1e-6)


def _fbm1d(n: int, rng: np.random.Generator, octaves: int = 6,
           base_cells: int = 3, persistence: float = 0.55) -> np.ndarray:
    """Fractal 1-D noise in roughly [-1, 1] (piecewise-linear octaves give
    sharp, mountain-like ridges)."""
    xs = np.linspace(0.0, 1.0, n)
    out = np.zeros(n)
    amp, total = 1.0, 0.0
    for o in range(octaves):
        cells = base_cells * (2 ** o)
        knots = rng.uniform(-1.0, 1.0, cells + 1)
        out += amp * np.interp(xs, np.linspace(0.0, 1.0, cells + 1), knots)
        total += amp
        amp *= persistence
    return out / total


def _to_image(arr: np.ndarray) -> Image.Image:
    return Image.fromarray(np.clip(arr + 0.5, 0, 255).astype(np.uint8), "RGB")


def _blur_mask(mask: np.ndarray, radius: float) -> np.ndarray:
    img = Image.fromarray(np.clip(mask * 255.0, 0, 255).astype(np.uint8), "L")
    return np.asarray(img.filter(ImageFilter.GaussianBlur(radius)),
                      dtype=np.float32) / 255.0


def _grain(arr: np.ndarray, rng: np.random.Generator, amount: float) -> np.ndarray:
    """Add mild luminance + chroma film grain."""
    h, w = arr.shape[:2]
    lum = rng.normal(0.0, amount, (h, w, 1)).astype(np.float32)
    chroma = rng.normal(0.0, amount * 0.35, (h, w, 3)).astype(np.float32)
    return arr + lum + chroma


# ---------------------------------------------------------------------------
# 1. Landscape (content)
# ---------------------------------------------------------------------------


def make_landscape(width: int = 640, height: int = 480, seed: int = 1234) -> Image.Image:
    """Lake landscape with sun, clouds, mountains, a house and trees."""
    rng = np.random.default_rng(seed)
    S = 2  # supersampling factor; everything is drawn at 2x then reduced
    W, H = width * S, height * S
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    water_y = int(0.60 * H)  # far shore / waterline

    # --- sky ---------------------------------------------------------------
    t = yy / water_y
    sky = _lerp((38, 86, 168), (112, 162, 214), _smoothstep(0.0, 0.6, t))
    sky = _lerp(sky, (238, 214, 178), _smoothstep(0.45, 1.0, t) ** 1.5)
    sun_x, sun_y, sun_r = 0.73 * W, 0.20 * H, 0.038 * H
    d = np.hypot(xx - sun_x, yy - sun_y)
    glow = np.exp(-d / (0.16 * H)) * 0.55 + np.exp(-d / (0.05 * H)) * 0.35
    sky = _lerp(sky, (255, 236, 190), np.clip(glow, 0, 1))
    sky = _lerp(sky, (255, 250, 228), _smoothstep(sun_r + 1.5 * S, sun_r - 1.5 * S, d))
    # soft cumulus clouds in a band
    cn = _fbm2d(H, W, rng, octaves=6, base_cells=5)
    band = np.exp(-((yy - 0.16 * H) / (0.10 * H)) ** 2) + 0.7 * np.exp(
        -((yy - 0.34 * H) / (0.06 * H)) ** 2)
    cloud = _smoothstep(0.50, 0.78, cn * (0.55 + 0.6 * band))
    cloud_shade = _smoothstep(0.4, 1.0, _fbm2d(H, W, rng, octaves=4, base_cells=8))
    cloud_col = _lerp((250, 248, 244), (186, 190, 206), cloud_shade[..., None] * 0.8)
    img = _lerp(sky, cloud_col, cloud * 0.9)

    # --- mountain / hill layers -------------------------------------------
    x1 = np.arange(W)
    tex = _fbm2d(H, W, rng, octaves=6, base_cells=16)

    def layer(ridge, top_col, base_col, tex_amt, haze):
        nonlocal img
        ridge = ridge[None, :]
        mask = _smoothstep(-0.8 * S, 0.8 * S, yy - ridge) * (yy < water_y + 2)
        depth = np.clip((yy - ridge) / np.maximum(water_y - ridge, 1.0), 0, 1)
        col = _lerp(top_col, base_col, depth[..., None])
        col = col * (1.0 - tex_amt + 2 * tex_amt * tex[..., None])
        col = _lerp(col, (205, 205, 212), haze * depth[..., None])
        img = _lerp(img, col, mask[..., None])
        return mask

    # far snowy mountains
    far = water_y - (0.17 * H + 0.16 * H * _fbm1d(W, rng, octaves=7, base_cells=3))
    far_mask = layer(far, (106, 120, 150), (146, 160, 182), 0.12, 0.40)
    # snow caps: near the highest parts of the far ridge, fading with depth
    snow_line = water_y - 0.235 * H
    snow_noise = _fbm2d(H, W, rng, octaves=5, base_cells=24)
    gully = _fbm2d(H // 2, W, rng, octaves=5, base_cells=24)
    gully = np.asarray(Image.fromarray(gully, "F").resize((W, H), Image.BICUBIC))
    snow = far_mask * _smoothstep(snow_line + 0.025 * H, snow_line - 0.025 * H,
                                  yy + 0.06 * H * (snow_noise + gully - 1.0))
    img = _lerp(img, _lerp((240, 242, 250), (182, 192, 216), snow_noise[..., None]),
                snow[..., None] * 0.95)
    # light/shadow faces: treat the range as a surface whose cross-section
    # is the ridge line smoothed more and more further below the crest, so
    # faces fan out diagonally from the peaks; slopes facing the sun (right)
    # are lit, the others shaded, and gullies break the faces up
    widths = [4 * S * 2 ** k for k in range(7)]
    padded = np.pad(far, 600, mode="edge")
    slopes = []
    for wk in widths:
        sm = np.convolve(padded, np.hanning(2 * wk + 1) / np.hanning(2 * wk + 1).sum(), "same")
        g = np.gradient(sm)[600:-600]
        slopes.append(g / (g.std() + 1e-6))
    slopes = np.stack(slopes)
    below = np.maximum(yy - far[None, :], 0)
    kidx = np.clip(np.round(np.log2((4 * S + 1.2 * below) / (4 * S))), 0, len(widths) - 1)
    lit = np.tanh(slopes[kidx.astype(np.int32), xx.astype(np.int32)] * 0.9)
    fall = np.exp(-below / (0.12 * H))
    shade = 1.0 + 0.17 * lit * (0.3 + fall) + 0.08 * (gully - 0.5)
    img = np.where(far_mask[..., None] > 0, img * shade[..., None], img)
    # mid hills (blue-green, forested)
    mid = water_y - (0.075 * H + 0.06 * H * _fbm1d(W, rng, octaves=7, base_cells=4))
    layer(mid, (64, 104, 92), (88, 120, 104), 0.22, 0.15)
    # near hills (greener), lower on the left
    near = water_y - (0.03 * H + 0.035 * H * _fbm1d(W, rng, octaves=6, base_cells=5)
                      + 0.02 * H * (1 - x1 / W))
    layer(near, (58, 104, 50), (74, 118, 58), 0.28, 0.0)

    # small conifers on the far shore (drawn before the reflection is made)
    pil = _to_image(img)
    dr = ImageDraw.Draw(pil)
    xs = np.sort(rng.uniform(0, W, 90))
    for x in xs:
        h_ = rng.uniform(0.018, 0.04) * H
        w_ = h_ * rng.uniform(0.30, 0.42)
        base = water_y + rng.uniform(-1, 1) * S
        g = int(rng.uniform(34, 56))
        dr.polygon([(x, base - h_), (x - w_, base), (x + w_, base)],
                   fill=(g - 10, g + 22, g - 8))
    img = np.asarray(pil, dtype=np.float32)

    # --- lake with darker reflection ----------------------------------------
    shore = (0.80 * H + 0.025 * H * _fbm1d(W, rng, octaves=5, base_cells=3)
             + 0.03 * H * np.sin(np.linspace(0, math.pi, W)))
    lake = (yy >= water_y) & (yy < shore[None, :])
    ripple = (2.2 * S * np.sin(yy * 0.9 / S + 3.0 * np.sin(xx * 0.013 / S))
              * (yy - water_y) / (0.2 * H))
    src_y = np.clip(2 * water_y - yy + ripple, 0, water_y - 1).astype(np.int32)
    src_x = np.clip(xx + 0.6 * ripple, 0, W - 1).astype(np.int32)
    refl = img[src_y, src_x]
    depth = np.clip((yy - water_y) / (0.2 * H), 0, 1)[..., None]
    water = _lerp(refl * 0.62 + np.array([8, 18, 30], np.float32),
                  np.array([40, 66, 92], np.float32), depth * 0.55)
    streak = _fbm2d(H, W // 8, rng, octaves=3, base_cells=40)
    streak = np.asarray(Image.fromarray(streak, "F").resize((W, H), Image.BILINEAR))
    water = water * (0.92 + 0.16 * streak[..., None])
    # a thin bright line at the waterline
    water = _lerp(water, (210, 214, 220), _smoothstep(2.5 * S, 0, yy - water_y)[..., None] * 0.5)
    img = np.where(lake[..., None], water, img)

    # --- foreground meadow -------------------------------------------------
    grass_tex = _fbm2d(H, W // 6, rng, octaves=4, base_cells=60)
    grass_tex = np.asarray(Image.fromarray(grass_tex, "F").resize((W, H), Image.BILINEAR))
    blotch = _fbm2d(H, W, rng, octaves=4, base_cells=6)
    gdepth = np.clip((yy - shore[None, :]) / (H - shore.min()), 0, 1)
    meadow = _lerp((122, 150, 64), (64, 112, 40), blotch[..., None])
    meadow = _lerp(meadow, (46, 84, 30), gdepth[..., None] * 0.6)
    meadow = meadow * (0.82 + 0.36 * grass_tex[..., None])
    # sandy shoreline strip
    sand = _smoothstep(4 * S, 0, yy - shore[None, :])
    meadow = _lerp(meadow, (176, 160, 120), sand[..., None] * 0.8)
    land = yy >= shore[None, :]
    img = np.where(land[..., None], meadow, img)

    # --- house and trees (vector drawing) -----------------------------------
    pil = _to_image(img)
    # shadows first (soft, to the lower left, sun is upper right)
    shadow = Image.new("L", (W, H), 0)
    sd = ImageDraw.Draw(shadow)

    hx, hy = 0.50 * W, 0.905 * H        # house front-left bottom corner
    fw, sw, wh = 0.11 * W, 0.17 * W, 0.12 * H   # front width, side width, wall height
    skew = 0.035 * H                    # side wall recedes upward
    roof_h = 0.09 * H
    sd.polygon([(hx - 0.06 * W, hy + 0.01 * H), (hx + fw + sw - 0.05 * W, hy - skew + 0.012 * H),
                (hx + fw + sw, hy - skew), (hx + fw, hy), (hx, hy)], fill=150)

    trees = [  # (kind, x, base_y, height)
        ("pine", 0.06, 0.99, 0.34), ("pine", 0.14, 0.95, 0.27),
        ("round", 0.25, 0.965, 0.24), ("pine", 0.34, 0.90, 0.18),
        ("pine", 0.41, 0.885, 0.14), ("round", 0.90, 0.90, 0.20),
        ("pine", 0.97, 0.93, 0.26),
    ]
    for kind, tx, ty, th in trees:
        x, y, h_ = tx * W, ty * H, th * H
        sd.ellipse([x - 0.55 * h_, y - 0.04 * h_, x + 0.05 * h_, y + 0.06 * h_], fill=140)
    shadow = shadow.filter(ImageFilter.GaussianBlur(4 * S))
    sh = np.asarray(shadow, dtype=np.float32)[..., None] / 255.0
    arr = np.asarray(pil, dtype=np.float32) * (1.0 - 0.45 * sh)
    pil = _to_image(arr)
    dr = ImageDraw.Draw(pil)

    # house: front gable wall, side wall, roof, chimney, door, windows
    front_top = hy - wh
    apex = (hx + fw / 2, front_top - roof_h)
    side = [(hx + fw, hy), (hx + fw + sw, hy - skew), (hx + fw + sw, hy - skew - wh), (hx + fw, front_top)]
    dr.polygon(side, fill=(196, 178, 146))
    dr.polygon([(hx, hy), (hx + fw, hy), (hx + fw, front_top), apex, (hx, front_top)],
               fill=(238, 226, 198))
    # chimney behind the roof
    cx0 = hx + fw + 0.62 * sw
    cy_roof = front_top - roof_h - skew * 0.62 - 0.004 * H
    dr.rectangle([cx0, cy_roof - 0.05 * H, cx0 + 0.018 * W, cy_roof + 0.02 * H], fill=(120, 62, 48))
    roof = [apex, (apex[0] + sw, apex[1] - skew), (hx + fw + sw + 0.012 * W, hy - skew - wh + 0.012 * H),
            (hx + fw + 0.012 * W, front_top + 0.012 * H)]
    dr.polygon(roof, fill=(156, 52, 38))
    # roof tile lines
    for k in range(1, 6):
        f = k / 6
        p0 = (apex[0] + (hx + fw + 0.012 * W - apex[0]) * f, apex[1] + (front_top + 0.012 * H - apex[1]) * f)
        dr.line([p0, (p0[0] + sw, p0[1] - skew)], fill=(124, 40, 30), width=S)
    # gable eave (dark edge)
    dr.line([(hx - 0.008 * W, front_top + 0.010 * H), apex, (hx + fw + 0.012 * W, front_top + 0.012 * H)],
            fill=(96, 34, 26), width=3 * S)

    def side_pt(u, v):  # u along side wall (0..1), v up the wall (0..1)
        return (hx + fw + u * sw, hy - u * skew - v * wh)

    def side_quad(u0, u1, v0, v1):
        return [side_pt(u0, v0), side_pt(u1, v0), side_pt(u1, v1), side_pt(u0, v1)]

    # door on the side wall
    dr.polygon(side_quad(0.42, 0.58, 0.0, 0.62), fill=(92, 56, 34))
    door_knob = side_pt(0.55, 0.30)
    dr.ellipse([door_knob[0] - S, door_knob[1] - S, door_knob[0] + S, door_knob[1] + S], fill=(220, 190, 90))
    # windows on the side wall
    for u0 in (0.12, 0.74):
        dr.polygon(side_quad(u0, u0 + 0.16, 0.38, 0.75), fill=(250, 250, 250))
        dr.polygon(side_quad(u0 + 0.01, u0 + 0.15, 0.41, 0.72), fill=(92, 128, 160))
        a, b = side_pt(u0 + 0.08, 0.38), side_pt(u0 + 0.08, 0.75)
        dr.line([a, b], fill=(250, 250, 250), width=S)
        a, b = side_pt(u0, 0.565), side_pt(u0 + 0.16, 0.565)
        dr.line([a, b], fill=(250, 250, 250), width=S)
    # window on the front gable wall + small attic window
    wx0, wy0 = hx + 0.30 * fw, hy - 0.70 * wh
    ww, whh = 0.40 * fw, 0.38 * wh
    dr.rectangle([wx0 - S, wy0 - S, wx0 + ww + S, wy0 + whh + S], fill=(250, 250, 250))
    dr.rectangle([wx0 + S, wy0 + S, wx0 + ww - S, wy0 + whh - S], fill=(96, 134, 166))
    dr.line([(wx0 + ww / 2, wy0), (wx0 + ww / 2, wy0 + whh)], fill=(250, 250, 250), width=S)
    dr.line([(wx0, wy0 + whh / 2), (wx0 + ww, wy0 + whh / 2)], fill=(250, 250, 250), width=S)
    ax, ay = apex[0], front_top - 0.45 * roof_h
    dr.ellipse([ax - 0.012 * W, ay - 0.012 * W, ax + 0.012 * W, ay + 0.012 * W], fill=(250, 250, 250))
    dr.ellipse([ax - 0.009 * W, ay - 0.009 * W, ax + 0.009 * W, ay + 0.009 * W], fill=(96, 134, 166))
    # base line / foundation
    dr.line([(hx, hy), (hx + fw, hy), (hx + fw + sw, hy - skew)], fill=(110, 100, 86), width=2 * S)
    # a path from the door towards the viewer
    d0, d1 = side_pt(0.42, 0), side_pt(0.58, 0)
    dr.polygon([d0, d1, (d1[0] - 0.02 * W, H), (d0[0] - 0.09 * W, H)], fill=(170, 150, 112))

    # trees
    for kind, tx, ty, th in trees:
        x, y, h_ = tx * W, ty * H, th * H
        trunk_w = 0.045 * h_
        dr.rectangle([x - trunk_w, y - 0.28 * h_, x + trunk_w, y], fill=(88, 62, 40))
        if kind == "pine":
            tiers = 5
            for k in range(tiers):
                f = k / tiers
                top = y - h_ + f * 0.62 * h_
                bot = top + 0.42 * h_
                half = (0.16 + 0.28 * f) * h_ * 0.9
                g = 36 + 6 * k
                dr.polygon([(x, top), (x - half, bot), (x + half, bot)], fill=(g - 12, g + 40, g - 6))
                # lit right edge
                dr.polygon([(x, top), (x + half, bot), (x + half * 0.45, bot)], fill=(g + 8, g + 66, g + 6))
        else:
            cx, cy, r = x, y - 0.62 * h_, 0.30 * h_
            blobs = [(cx + rng.uniform(-0.65, 0.65) * r, cy + rng.uniform(-0.6, 0.5) * r,
                      r * rng.uniform(0.45, 0.65)) for _ in range(14)]
            blobs.sort(key=lambda b: b[0] - b[1])  # lit (upper right) blobs last
            for bx, by, br in blobs:
                lit = np.clip(0.5 + 0.7 * ((bx - cx) - (by - cy)) / (2 * r), 0, 1)
                col = tuple(int(v) for v in _lerp((40, 84, 32), (112, 160, 60), lit))
                dr.ellipse([bx - br, by - br, bx + br, by + br], fill=col)

    # a couple of birds in the sky
    for bx, by, bs in ((0.30, 0.14, 0.018), (0.34, 0.11, 0.013), (0.37, 0.155, 0.011)):
        x, y, s = bx * W, by * H, bs * W
        dr.line([(x - s, y - 0.4 * s), (x, y), (x + s, y - 0.4 * s)], fill=(40, 44, 58), width=S + 1)

    img = pil.resize((width, height), Image.LANCZOS)
    arr = np.asarray(img, dtype=np.float32)
    # mild vignette and fine grain so the picture is not flat
    gy, gx = np.mgrid[0:height, 0:width].astype(np.float32)
    r2 = ((gx - width / 2) / (width / 2)) ** 2 + ((gy - height / 2) / (height / 2)) ** 2
    arr = arr * (1.0 - 0.10 * np.clip(r2 - 0.3, 0, None))[..., None]
    arr = _grain(arr, rng, 2.2)
    return _to_image(arr)


# ---------------------------------------------------------------------------
# 2. Swirling night sky of brush strokes (style)
# ---------------------------------------------------------------------------


def make_swirls(size: int = 512, seed: int = 2024) -> Image.Image:
    """Thick, short, oriented brush strokes following swirling vortices."""
    rng = np.random.default_rng(seed)
    S = 2
    N = size * S

    def horizon(x):  # in unit coords, y of the hill line
        return 0.74 + 0.05 * np.sin(x * 5.0 + 0.6) + 0.025 * np.sin(x * 13.0 + 2.0)

    vortices = [  # cx, cy, strength, radius (unit coords); sign = direction
        (0.42, 0.36, 1.0, 0.17), (0.66, 0.27, -0.8, 0.10),
        (0.20, 0.48, -0.6, 0.10), (0.80, 0.52, 0.6, 0.10),
    ]
    stars = [  # cx, cy, radius
        (0.10, 0.12, 0.045), (0.30, 0.10, 0.035), (0.56, 0.12, 0.04),
        (0.93, 0.33, 0.035), (0.62, 0.52, 0.04), (0.30, 0.58, 0.032), (0.47, 0.62, 0.03),
    ]
    moon = (0.86, 0.13, 0.075)

    def cypress_halfwidth(x, y):
        # flame-shaped dark tree on the left, from y=0.18 to the bottom
        t = np.clip((y - 0.16) / 0.84, 0, 1)
        cx = 0.14 + 0.02 * np.sin(y * 14.0)
        hw = 0.085 * t ** 0.6 * (1 + 0.25 * np.sin(y * 40.0)) * (y > 0.16)
        return np.abs(x - cx) - hw

    def field(x, y):
        vx = 1.0 + 0.0 * x
        vy = 0.35 * np.sin(x * 9.0 + y * 4.0)
        for cx, cy, s, r in vortices:
            dx, dy = x - cx, y - cy
            d = np.hypot(dx, dy) + 1e-6
            k = s * 2.2 * np.exp(-((d / (1.6 * r)) ** 2)) * np.minimum(1.0, d / (0.25 * r)) / d
            vx = vx - k * dy
            vy = vy + k * dx
        for cx, cy, r in stars + [moon]:
            dx, dy = x - cx, y - cy
            d = np.hypot(dx, dy) + 1e-6
            k = 3.0 * np.exp(-((d / (1.8 * r)) ** 2)) / d
            vx = vx - k * dy
            vy = vy + k * dx
        return vx, vy

    deep = np.array([(18, 34, 92), (26, 52, 128), (34, 70, 150), (16, 28, 70)], np.float32)
    light = np.array([(70, 140, 200), (110, 190, 220), (160, 214, 230), (60, 110, 180)], np.float32)
    glow = np.array([(250, 226, 90), (255, 244, 170), (240, 200, 60), (255, 255, 230)], np.float32)

    def colour(x, y):
        j = rng.integers(0, 4)
        # night sky base
        band = 0.5 + 0.5 * math.sin(y * 38.0 + 4.0 * math.sin(x * 6.0))
        c = deep[j] if rng.random() > 0.35 * band else light[j] * 0.8
        for cx, cy, s, r in vortices:
            d = math.hypot(x - cx, y - cy)
            w = math.exp(-((d / (1.3 * r)) ** 2))
            ring = 0.5 + 0.5 * math.sin(d / r * 15.0 + (cx * 10))
            if rng.random() < w * (0.3 + 0.7 * ring):
                c = light[j] if rng.random() > 0.25 else np.array((230, 240, 235), np.float32)
        for cx, cy, r in stars + [moon]:
            d = math.hypot(x - cx, y - cy)
            if d < r * 0.55:
                c = glow[j if d > 0.25 * r else 1]
            elif d < 1.6 * r:
                ring = 0.5 + 0.5 * math.cos((d / r) * 9.0)
                if rng.random() < 0.8 * ring:
                    c = glow[rng.integers(0, 4)] if rng.random() < 0.6 else light[2] * 1.1
        if cypress_halfwidth(x, y) < 0:
            c = np.array([(24, 40, 30), (40, 56, 34), (14, 22, 26), (60, 62, 40)][j], np.float32)
        elif y > horizon(x):
            c = np.array([(24, 42, 66), (40, 72, 84), (22, 32, 52), (56, 86, 110)][j], np.float32)
        return np.clip(c * rng.uniform(0.88, 1.12) + rng.normal(0, 6, 3), 0, 255)

    def direction(x, y):
        if cypress_halfwidth(x, y) < 0:
            return 0.25 * math.sin(y * 30.0), -1.0
        if y > horizon(x):
            dy = (horizon(x + 1e-3) - horizon(x)) / 1e-3 * (1 - (y - horizon(x)) * 2)
            return 1.0, float(dy) + 0.2 * math.sin(y * 50)
        vx, vy = field(x, y)
        return float(vx), float(vy)

    canvas = Image.new("RGB", (N, N), (20, 36, 90))
    dr = ImageDraw.Draw(canvas)

    def stroke(x, y, length, width):
        pts = [(x, y)]
        px, py = x, y
        steps = 4
        for _ in range(steps):
            vx, vy = direction(px, py)
            n = math.hypot(vx, vy) + 1e-9
            px += vx / n * length / steps
            py += vy / n * length / steps
            pts.append((px, py))
        c = colour(x + (px - x) / 2, y + (py - y) / 2)
        P = [(u * N, v * N) for u, v in pts]
        dark = tuple(int(v) for v in c * 0.62)
        base = tuple(int(v) for v in c)
        hi = tuple(int(v) for v in np.clip(c * 1.18 + 28, 0, 255))
        w = int(width * N)
        dr.line(P, fill=dark, width=w + 2 * S, joint="curve")
        dr.line(P, fill=base, width=w, joint="curve")
        # a thin highlight ridge, offset perpendicular, for an impasto look
        ox, oy = -(P[-1][1] - P[0][1]), P[-1][0] - P[0][0]
        on = math.hypot(ox, oy) + 1e-9
        off = 0.22 * w
        Q = [(a + ox / on * off, b + oy / on * off) for a, b in P[1:-1]]
        if len(Q) >= 2:
            dr.line(Q, fill=hi, width=max(1, w // 4))

    # pass 1: coverage with larger strokes on a jittered grid (random order)
    g = 46
    cells = [(i, j) for i in range(g) for j in range(g)]
    order = rng.permutation(len(cells))
    for k in order:
        i, j = cells[k]
        x = (i + rng.random()) / g
        y = (j + rng.random()) / g
        stroke(x, y, rng.uniform(0.030, 0.050), rng.uniform(0.010, 0.014))
    # pass 2: finer detail strokes on top
    for _ in range(4200):
        x, y = rng.random(), rng.random()
        stroke(x, y, rng.uniform(0.018, 0.034), rng.uniform(0.006, 0.010))

    img = canvas.resize((size, size), Image.LANCZOS)
    arr = np.asarray(img, dtype=np.float32)
    # canvas weave texture
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    weave = np.sin(xx * 1.9) * np.sin(yy * 1.9)
    arr = arr * (1.0 + 0.02 * weave[..., None])
    arr = _grain(arr, rng, 0.4)
    return _to_image(arr)


# ---------------------------------------------------------------------------
# 3. Stained-glass / cubist mosaic (style)
# ---------------------------------------------------------------------------


def make_mosaic(size: int = 512, seed: int = 777) -> Image.Image:
    """Voronoi mosaic with warm palette, faceted shading and dark lead lines."""
    rng = np.random.default_rng(seed)
    n = size
    # jittered-grid seed points give irregular but not degenerate cells
    g = 12
    pts = np.array([((i + rng.uniform(0.1, 0.9)) / g * n, (j + rng.uniform(0.1, 0.9)) / g * n)
                    for i in range(g) for j in range(g)], np.float32)
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float32)
    d1 = np.full((n, n), np.inf, np.float32)
    d2 = np.full((n, n), np.inf, np.float32)
    i1 = np.zeros((n, n), np.int32)
    i2 = np.zeros((n, n), np.int32)
    for k, (px, py) in enumerate(pts):
        d = (xx - px) ** 2 + (yy - py) ** 2
        better = d < d1
        second = ~better & (d < d2)
        d2 = np.where(better, d1, np.where(second, d, d2))
        i2 = np.where(better, i1, np.where(second, k, i2))
        d1 = np.where(better, d, d1)
        i1 = np.where(better, k, i1)
    # exact distance to the bisector between the two nearest seeds
    sep = np.linalg.norm(pts[i1] - pts[i2], axis=-1)
    edge = (d2 - d1) / (2.0 * np.maximum(sep, 1e-3))

    # underlying composition chooses each cell's palette: a sun disc, warm
    # diagonal bands and a green lower-left field
    palette_sun = np.array([(246, 190, 48), (240, 150, 40), (252, 214, 96)], np.float32)
    palette_red = np.array([(178, 38, 32), (206, 70, 36), (146, 28, 40), (226, 104, 44)], np.float32)
    palette_org = np.array([(232, 128, 40), (214, 98, 30), (244, 160, 70)], np.float32)
    palette_grn = np.array([(58, 112, 52), (94, 140, 58), (36, 86, 60), (140, 156, 64)], np.float32)
    cols = np.zeros((len(pts), 3), np.float32)
    for k, (px, py) in enumerate(pts):
        u, v = px / n, py / n
        ds = math.hypot(u - 0.66, v - 0.30)
        band = math.sin((u + 1.3 * v) * 9.0)
        if ds < 0.17:
            pal = palette_sun
        elif v > 0.55 + 0.25 * math.sin(u * 4.0) and u < 0.75:
            pal = palette_grn
        elif band > 0.2:
            pal = palette_red
        elif band > -0.5:
            pal = palette_org
        else:
            pal = palette_grn if rng.random() < 0.5 else palette_red
        if rng.random() < 0.12:  # occasional contrasting piece
            pal = [palette_grn, palette_org, palette_red][rng.integers(0, 3)]
        cols[k] = pal[rng.integers(0, len(pal))] * rng.uniform(0.9, 1.08)

    img = cols[i1]
    # faceted shading: each cell gets its own linear light gradient
    ang = rng.uniform(0, 2 * math.pi, len(pts)).astype(np.float32)
    gx, gy = np.cos(ang)[i1], np.sin(ang)[i1]
    rel = ((xx - pts[i1, 0]) * gx + (yy - pts[i1, 1]) * gy) / (n / g)
    img = img * np.clip(1.0 + 0.28 * rel, 0.65, 1.3)[..., None]
    # a few long straight cubist cuts: darken one side, draw a lead line
    cut_dist = np.full((n, n), np.inf, np.float32)
    for k in range(4):
        a = math.pi * (k / 4 + rng.uniform(-0.06, 0.06))
        cx, cy = rng.uniform(0.3, 0.7) * n, rng.uniform(0.3, 0.7) * n
        sd = (xx - cx) * math.sin(a) - (yy - cy) * math.cos(a)
        img = img * np.where(sd > 0, 0.86, 1.0)[..., None]
        cut_dist = np.minimum(cut_dist, np.abs(sd))
    # glass texture: mottling + fine streaks
    mott = _fbm2d(n, n, rng, octaves=5, base_cells=24)
    img = img * (0.88 + 0.24 * mott[..., None])
    # inner glow near cell centres (light shining through)
    centre = np.exp(-d1 / (0.35 * (n / g)) ** 2)
    img = _lerp(img, np.minimum(img * 1.35 + 20, 255), centre[..., None] * 0.35)
    # lead lines (anti-aliased)
    lead_w = 2.6
    lead = np.maximum(_smoothstep(lead_w + 1.0, lead_w - 0.5, edge),
                      _smoothstep(lead_w - 0.2, lead_w - 1.5, cut_dist))
    lead_col = np.array((34, 24, 20), np.float32) * (0.8 + 0.4 * mott[..., None])
    img = _lerp(img, lead_col, lead[..., None])
    # frame
    border = np.minimum(np.minimum(xx, yy), np.minimum(n - 1 - xx, n - 1 - yy))
    img = _lerp(img, (30, 22, 18), _smoothstep(7.0, 5.0, border)[..., None])
    img = _grain(img, rng, 1.6)
    return _to_image(img)


# ---------------------------------------------------------------------------
# 4. Still life, portrait orientation (content)
# ---------------------------------------------------------------------------


def make_portrait(width: int = 384, height: int = 512, seed: int = 99) -> Image.Image:
    """Vase with flowers, fruit on a gingham table cloth (portrait aspect)."""
    rng = np.random.default_rng(seed)
    S = 2
    W, H = width * S, height * S
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    light = np.array([-0.55, -0.6, 0.58], np.float32)
    light /= np.linalg.norm(light)

    # --- wall --------------------------------------------------------------
    table_y = 0.60 * H       # back edge of the table
    front_y = 0.86 * H       # front edge of the table top
    wtex = _fbm2d(H, W, rng, octaves=6, base_cells=6)
    wall = _lerp((120, 106, 78), (170, 150, 110), wtex[..., None])
    spot = np.exp(-(((xx - 0.35 * W) / (0.6 * W)) ** 2 + ((yy - 0.3 * H) / (0.6 * H)) ** 2))
    wall = wall * (0.55 + 0.55 * spot[..., None])
    img = wall

    # --- table cloth (gingham in perspective) --------------------------------
    vy = 0.18 * H    # vanishing line of the table plane
    cx0 = 0.5 * W
    zd = np.maximum(yy - vy, 1.0)
    u = (xx - cx0) / zd * 7.0
    v = 1.6 * H * 7.0 / zd
    u_on = (np.floor(u) % 2).astype(np.float32)
    v_on = (np.floor(v) % 2).astype(np.float32)
    red, white = np.array((186, 40, 44), np.float32), np.array((236, 228, 214), np.float32)
    gingham = _lerp(white, red, (0.5 * (u_on + v_on))[..., None])
    top_shade = 0.75 + 0.3 * _smoothstep(table_y, front_y, yy)
    cloth_tex = _fbm2d(H, W, rng, octaves=4, base_cells=30)
    top = gingham * (top_shade * (0.94 + 0.1 * cloth_tex))[..., None]
    img = np.where((yy >= table_y)[..., None], top, img)
    # hanging front of the cloth: flat checks with folds
    # keep the vertical stripes continuous with the top's front edge
    fu = (np.floor((xx - cx0) / (front_y - vy) * 7.0) % 2).astype(np.float32)
    fv = (np.floor((yy - front_y) / (0.06 * H)) % 2).astype(np.float32)
    hang = _lerp(white, red, (0.5 * (fu + fv))[..., None])
    folds = 0.82 + 0.14 * np.sin(xx / W * 2 * math.pi * 5.0 + 1.0) ** 2
    hang = hang * (folds * 0.78)[..., None]
    img = np.where((yy >= front_y)[..., None], hang, img)
    # front edge highlight
    img = _lerp(img, (250, 246, 236), _smoothstep(2.5 * S, 0, np.abs(yy - front_y))[..., None] * 0.5)

    # --- objects: vase profile, fruit spheres --------------------------------
    vx, v_top, v_bot = 0.40 * W, 0.22 * H, 0.72 * H

    def vase_halfwidth(y):
        t = np.clip((y - v_top) / (v_bot - v_top), 0, 1)
        neck = 0.045 * W + 0.02 * W * np.exp(-((t / 0.05) ** 2))   # lip flare
        belly = 0.15 * W * np.exp(-(((t - 0.68) / 0.26) ** 2))
        foot = 0.075 * W * _smoothstep(0.88, 1.0, t)
        return np.maximum(neck + belly * _smoothstep(0.12, 0.5, t), foot + 0.06 * W * (t > 0.9))

    fruits = [  # x, y (centre), radius, colour, squash(y/x), kind
        (0.70 * W, 0.685 * H, 0.085 * W, (200, 36, 30), 0.95, "apple"),
        (0.58 * W, 0.760 * H, 0.078 * W, (236, 132, 24), 1.0, "orange"),
        (0.82 * W, 0.775 * H, 0.060 * W, (232, 204, 46), 0.78, "lemon"),
        (0.20 * W, 0.790 * H, 0.070 * W, (120, 170, 50), 1.0, "apple"),
    ]
    grapes = []
    for _ in range(16):
        a = rng.uniform(0, 2 * math.pi)
        r = rng.uniform(0, 1) ** 0.6 * 0.07 * W
        grapes.append((0.14 * W + r * math.cos(a) * 1.3, 0.69 * H + r * math.sin(a) * 0.7,
                       0.026 * W, (96, 40, 110), 1.0, "grape"))

    # soft shadows on the table, cast to the lower right
    sh_img = Image.new("L", (W, H), 0)
    sd = ImageDraw.Draw(sh_img)
    bw = float(vase_halfwidth(np.array(0.6 * H)))
    sd.ellipse([vx - bw * 0.9, v_bot - 0.03 * H, vx + bw * 2.6, v_bot + 0.035 * H], fill=170)
    for fx, fy, fr, _, sq, _ in fruits + grapes:
        sd.ellipse([fx - fr * 0.8, fy + fr * sq * 0.55, fx + fr * 1.8, fy + fr * sq * 1.15], fill=170)
    shadow = np.asarray(sh_img.filter(ImageFilter.GaussianBlur(6 * S)), np.float32) / 255.0
    shadow *= (yy >= table_y)
    img = img * (1.0 - 0.55 * shadow)[..., None]

    # flowers (behind vase mouth): stems then heads
    pil = _to_image(img)
    dr = ImageDraw.Draw(pil)
    heads = [(0.27 * W, 0.10 * H, (230, 70, 60)), (0.43 * W, 0.06 * H, (245, 200, 60)),
             (0.56 * W, 0.12 * H, (240, 240, 235)), (0.35 * W, 0.16 * H, (200, 90, 160))]
    for hx_, hy_, _ in heads:
        dr.line([(vx, v_top + 0.03 * H), ((vx + hx_) / 2 + 0.02 * W, (v_top + hy_) / 2), (hx_, hy_)],
                fill=(60, 110, 50), width=3 * S, joint="curve")
    for hx_, hy_, col in heads:
        pr = 0.045 * W
        for k in range(8):
            a = k / 8 * 2 * math.pi + 0.3
            px_, py_ = hx_ + math.cos(a) * pr * 0.8, hy_ + math.sin(a) * pr * 0.8
            shade = tuple(int(c * (0.85 + 0.15 * math.cos(a + 2.3))) for c in col)
            dr.ellipse([px_ - pr * 0.55, py_ - pr * 0.55, px_ + pr * 0.55, py_ + pr * 0.55], fill=shade,
                       outline=tuple(int(c * 0.7) for c in col))
        dr.ellipse([hx_ - pr * 0.42, hy_ - pr * 0.42, hx_ + pr * 0.42, hy_ + pr * 0.42], fill=(120, 70, 30))
    # leaves on the stems, as pointed lens shapes
    for lx, ly, ang in ((0.33 * W, 0.16 * H, -2.6), (0.47 * W, 0.17 * H, -0.5),
                        (0.38 * W, 0.105 * H, -1.9)):
        ln, lw = 0.085 * W, 0.022 * W
        ca, sa = math.cos(ang), math.sin(ang)
        poly = []
        for k in range(17):
            f = k / 16
            side = math.sin(math.pi * f) * lw
            poly.append((f * ln, side))
        poly += [(f * ln, -math.sin(math.pi * f) * lw) for f in np.linspace(1, 0, 17)]
        pts_ = [(lx + a * ca - b * sa, ly + a * sa + b * ca) for a, b in poly]
        dr.polygon(pts_, fill=(66, 122, 52))
        dr.line([(lx, ly), (lx + ln * ca, ly + ln * sa)], fill=(96, 150, 70), width=S)
    img = np.asarray(pil, dtype=np.float32)

    # vase body (surface of revolution, Lambert + Phong shading)
    hw = vase_halfwidth(yy)
    inside = (yy >= v_top) & (yy <= v_bot) & (np.abs(xx - vx) <= hw)
    nx = np.clip((xx - vx) / np.maximum(hw, 1.0), -1, 1)
    nz = np.sqrt(np.clip(1 - nx ** 2, 0, 1))
    # slope of the profile tilts the normal up/down
    dh = np.gradient(hw, axis=0)
    ny = -dh
    nrm = np.stack([nx, ny, nz], -1)
    nrm = nrm / np.linalg.norm(nrm, axis=-1, keepdims=True)
    diff = np.clip(nrm @ light, 0, 1)
    refl_z = 2 * diff * nrm[..., 2] - light[2]
    spec = np.clip(refl_z, 0, 1) ** 40
    t = np.clip((yy - v_top) / (v_bot - v_top), 0, 1)
    vase_col = np.where(((t > 0.48) & (t < 0.54))[..., None] | ((t > 0.60) & (t < 0.62))[..., None],
                        np.array((232, 222, 190), np.float32), np.array((38, 84, 150), np.float32))
    # painted wave pattern on the belly
    wave = (np.abs(t - 0.42 - 0.02 * np.sin(nx * 12)) < 0.012)
    vase_col = np.where(wave[..., None], np.array((232, 222, 190), np.float32), vase_col)
    shaded = vase_col * (0.22 + 0.9 * diff)[..., None] + 255 * 0.9 * spec[..., None]
    shaded = shaded + np.array((30, 20, 10), np.float32) * (1 - diff)[..., None] * (t > 0.7)[..., None]
    edge_aa = _smoothstep(0.0, 1.5 * S, hw - np.abs(xx - vx))
    img = np.where(inside[..., None], _lerp(img, shaded, edge_aa[..., None]), img)
    # dark mouth ellipse
    mouth = ((xx - vx) / (0.062 * W)) ** 2 + ((yy - v_top) / (0.012 * H)) ** 2
    img = _lerp(img, (22, 24, 34), _smoothstep(1.1, 0.9, mouth)[..., None])

    # fruit spheres (sorted back to front)
    for fx, fy, fr, col, sq, kind in sorted(grapes + fruits, key=lambda f: f[1]):
        dx = (xx - fx) / fr
        dy = (yy - fy) / (fr * sq)
        r2 = dx * dx + dy * dy
        m = r2 < 1.0
        if not m.any():
            continue
        nz_ = np.sqrt(np.clip(1 - r2, 0, 1))
        n3 = np.stack([dx, dy, nz_], -1)
        diff = np.clip(n3 @ light, 0, 1)
        rz = 2 * diff * nz_ - light[2]
        spec = np.clip(rz, 0, 1) ** (60 if kind != "orange" else 14)
        base = np.array(col, np.float32)
        if kind == "apple" and col[0] > 150:  # red apple with yellow streaks
            streak = 0.5 + 0.5 * np.sin(np.arctan2(dy, dx) * 9 + 3 * dx)
            base = _lerp(base, (220, 150, 50), (streak * 0.25 * (dy > 0))[..., None])
        if kind == "orange":
            base = base * (0.93 + 0.07 * cloth_tex[..., None])
        bounce = np.clip(dy, 0, 1) * 0.18  # reflected light from the cloth
        shaded = base * (0.18 + 0.95 * diff + bounce)[..., None] + 255 * (0.75 * spec)[..., None]
        aa = _smoothstep(1.0, 1.0 - 3.0 / fr, np.sqrt(r2))
        img = _lerp(img, shaded, (aa * m)[..., None])
        if kind == "apple":  # stem
            pil = _to_image(img)
            ImageDraw.Draw(pil).line([(fx, fy - fr * sq * 0.85), (fx + 0.15 * fr, fy - fr * sq * 1.25)],
                                     fill=(80, 52, 30), width=3 * S)
            img = np.asarray(pil, dtype=np.float32)

    img = np.asarray(_to_image(img).resize((width, height), Image.LANCZOS), dtype=np.float32)
    img = _grain(img, rng, 2.0)
    return _to_image(img)


# ---------------------------------------------------------------------------
# Driver
# ---------------------------------------------------------------------------

_MAKERS = {
    "content_landscape": make_landscape,
    "content_portrait": make_portrait,
    "style_swirls": make_swirls,
    "style_mosaic": make_mosaic,
}


def make_demo_inputs(out_dir: str | Path | None = None) -> dict[str, Path]:
    """Write the four demo PNGs and ``LICENSE.txt`` into ``out_dir``.

    Returns a mapping from image name (file stem, e.g. ``"content_landscape"``)
    to the written PNG path.  The licence file is written alongside but is not
    part of the returned mapping.
    """
    out = Path(out_dir) if out_dir is not None else DEFAULT_OUT_DIR
    out.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    for name, maker in _MAKERS.items():
        path = out / f"{name}.png"
        maker().save(path, format="PNG", optimize=True)
        paths[name] = path
    (out / "LICENSE.txt").write_text(LICENSE_TEXT, encoding="utf-8")
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT_DIR,
                        help=f"output directory (default: {DEFAULT_OUT_DIR})")
    args = parser.parse_args(argv)
    paths = make_demo_inputs(args.out)
    for name, path in paths.items():
        with Image.open(path) as im:
            size = im.size
        print(f"{path}  {size[0]}x{size[1]}  {path.stat().st_size / 1024:.0f} KB")
    print(args.out / "LICENSE.txt")
    return 0


if __name__ == "__main__":
    sys.exit(main())
