"""How much memory an image run needs, and what makes a picture fit: tiles, a smaller L-BFGS history, a
smaller picture.

The estimate counts what a step holds at its peak: the activations the backward pass keeps (of the whole
picture, or of one tile with its halo), the transient gradient of the widest layer, the content targets,
the optimizer state (L-BFGS: ``2 * history_size`` copies of the picture, in the history's precision, plus
16 for the point, gradient, best result and a step's temporaries) and the weights. ``benchmarks/tiled_memory.py`` checks it against
measured peaks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Sequence

from nst_core.tiling import min_tile, tile_geometry

from .backbones import BLOCK_CHANNELS, activation_elements, layer_names, vgg_geometry

__all__ = ["AUTO_MEMORY_FRACTION", "HISTORY_LADDER", "MemoryPlan", "estimate_memory_bytes", "long_side_shape",
           "plan_memory", "tile_window"]

#: ``image_size="auto"`` and ``tile="auto"`` leave a tenth of the free memory as a margin.
AUTO_MEMORY_FRACTION = 0.9
WEIGHTS_BYTES = 80 * 2**20
#: What ``image_size="auto"`` gives up, in order, when the picture does not fit at its own size with the
#: configured L-BFGS history: ``(history_precision, history_size)``, from the measurement in
#: ``benchmarks/lbfgs_history.py`` (see the README): a bf16 history costs less than fewer pairs.
HISTORY_LADDER: tuple[tuple[str, int], ...] = (("bf16", 100), ("bf16", 50), ("bf16", 20), ("bf16", 10))
#: Auto tiles are at least this large where the memory allows, even at the cost of a shorter history: a smaller
#: tile repeats more of its halo (at 576 px a tile reads 1.6 times its own area), a shorter history costs little
#: (benchmarks/lbfgs_history.py: 20 pairs +0.3 % loss).
PREFERRED_MIN_TILE = 1024


def long_side_shape(image_hw: tuple[int, int], size: int) -> tuple[int, int]:
    """(H, W) of a ``image_hw`` picture resized so its long side is ``size`` (as ``resize_long_side`` does)."""
    h0, w0 = image_hw
    if h0 >= w0:
        return size, max(1, round(w0 * size / h0))
    return max(1, round(h0 * size / w0)), size


def _map_elements(height: int, width: int, arch: str, layer: str) -> int:
    """Elements of ``layer``'s feature map over a ``height x width`` picture."""
    names = layer_names(arch)
    pools = sum(1 for n in names[: names.index(layer) + 1] if n.startswith("pool"))  # a pool layer counts itself
    block = pools - 1 if layer.startswith("pool") else pools
    return BLOCK_CHANNELS[block] * max(height >> pools, 1) * max(width >> pools, 1)


def tile_window(height: int, width: int, tile: int, arch: str, deepest: str) -> tuple[int, int]:
    """The largest piece a tile of ``tile`` px reads (its core plus a halo on both sides), within the picture."""
    align, halo = tile_geometry(vgg_geometry(arch, [deepest]))
    core = max(align, tile // align * align)
    return min(height, core + 2 * halo), min(width, core + 2 * halo)


def estimate_memory_bytes(height: int, width: int, *, arch: str = "vgg19", deepest: str = "relu5_1",
                          history_size: int = 100, precision: str = "fp32", optimizer: str = "lbfgs",
                          style_shapes: Sequence[tuple[int, int]] = (), tile: int | None = None,
                          history_precision: str = "fp32", content_layers: Sequence[str] = ()) -> int:
    """Rough peak memory in bytes of one optimization step at ``height x width``.

    ``tile``: evaluated in tiles of that many px (the activations of one tile and its halo instead of the whole
    picture's, plus the gradient the tiles add into). Or, if larger, the forward pass without gradients over the
    largest of ``style_shapes``, which computes the style targets (also tiled when ``tile`` is given).
    """
    act_bytes = 2 if precision == "bf16" else 4
    signal = 3 * height * width * 4
    history_bytes = 2 if history_precision == "bf16" else 4
    if optimizer == "lbfgs":
        # Besides the history: the point, its gradient, the best result, the previous point and gradient, and a
        # step's temporaries (the new pair, the three vectors its products read, the direction, the step, the
        # best-so-far update, total variation's differences): 16 copies at the peak (measured at 2048 and
        # 4096 px, where fewer left the estimate under the peak).
        state = 2 * history_size * 3 * height * width * history_bytes + 16 * signal
    else:
        state = 10 * signal
    content = sum(_map_elements(height, width, arch, k) for k in content_layers) * 4
    if tile is None:
        elems, widest = activation_elements(height, width, arch, deepest)
        extra = 0
    else:
        elems, widest = activation_elements(*tile_window(height, width, tile, arch, deepest), arch, deepest)
        extra = 2 * signal  # the gradient the tiles add into, and the window each reads
    step = elems * act_bytes + 3 * widest * 4 + state + content + extra + WEIGHTS_BYTES
    style = 0
    for sh, sw in style_shapes:  # without gradients only two maps live at once, plus the picture itself
        shape = (sh, sw) if tile is None else tile_window(sh, sw, tile, arch, deepest)
        _e, w_style = activation_elements(*shape, arch, deepest)
        style = max(style, 3 * w_style * 4 + 2 * 3 * sh * sw * 4 + WEIGHTS_BYTES)
    return int(max(step, style))


@dataclass(frozen=True)
class MemoryPlan:
    """What a run uses to fit: a tile per scale (None: untiled), the L-BFGS history, and the estimated peak."""

    tiles: tuple[int | None, ...]
    history_size: int
    history_precision: str
    need: int

    def describe(self, sizes: Sequence[int]) -> str:
        parts = [f"{s} px {'untiled' if t is None else f'in tiles of {t} px'}" for s, t in zip(sizes, self.tiles)]
        return (f"{', '.join(parts)}; L-BFGS history {self.history_size} pairs in {self.history_precision}"
                f" (about {self.need / 2**30:.1f} GiB at the peak)")


def _tile_candidates(height: int, width: int, arch: str, deepest: str, floor: int) -> list[int]:
    """Tile sizes to try, largest first: multiples of 64 px (or of the alignment) below the long side."""
    align, _ = tile_geometry(vgg_geometry(arch, [deepest]))
    unit = max(64, align)
    top = (max(height, width) - 1) // unit * unit
    return list(range(top, floor - 1, -unit))


def plan_memory(shapes: Sequence[tuple[int, int]], style_shapes: Sequence[Sequence[tuple[int, int]]], *,
                tile: int | Literal["auto"], have: int, arch: str, deepest: str, content_layers: Sequence[str],
                precision: str, optimizer: str, history: Sequence[tuple[str, int]]) -> MemoryPlan | None:
    """The first ``history`` setting ``(precision, size)`` with which every scale (``shapes``, coarse to fine,
    each with its style pictures' shapes) fits in ``have`` bytes, and each scale's tile: untiled where that
    fits (``tile="auto"``), else the largest tile that does, preferring tiles of at least 512 px over a
    longer history; with a fixed ``tile``, that tile wherever it is smaller than the picture. None if
    nothing fits."""
    floor = min_tile(vgg_geometry(arch, [deepest]))

    def need(hw, styles, t, hp, m):
        return estimate_memory_bytes(*hw, arch=arch, deepest=deepest, history_size=m, precision=precision,
                                     optimizer=optimizer, style_shapes=styles, tile=t, history_precision=hp,
                                     content_layers=content_layers)

    def fit_scale(hw, styles, hp, m, smallest):
        if tile != "auto":
            t = tile if tile < max(hw) else None
            n = need(hw, styles, t, hp, m)
            return (t, n) if n <= have else None
        n = need(hw, styles, None, hp, m)
        if n <= have:
            return None, n
        for t in _tile_candidates(*hw, arch, deepest, smallest):
            n = need(hw, styles, t, hp, m)
            if n <= have:
                return t, n
        return None

    for smallest in (max(floor, PREFERRED_MIN_TILE), floor):
        for hp, m in history:
            fits = [fit_scale(hw, st, hp, m, smallest) for hw, st in zip(shapes, style_shapes)]
            if all(f is not None for f in fits):
                return MemoryPlan(tuple(f[0] for f in fits), m, hp, max(f[1] for f in fits))
    return None
