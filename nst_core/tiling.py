"""Exact tiled evaluation of the style transfer objective: memory that grows with the tile, not the signal.

Every term of the objective is a sum over positions: a Gram matrix is ``sum_p f_p f_p^T``, the content
loss a sum of squared differences. So the signal can be cut into tiles, each read with a halo around it
as wide as the edge effects of the network reach (zero padding at a tile's border, which the untiled
network does not see there), and only the positions in the tile's core counted. With the halo and tile
borders aligned to the network's pooling, every counted activation equals the untiled one, and the loss
and its gradient are the untiled ones up to round-off.

One step, tiled, is two passes:

1. without gradients, every tile's Gram contributions are summed into the global Gram matrices;
2. the loss's derivative by each Gram matrix, ``dL/dG``, is then fixed, and each tile runs forward and
   backward on ``<dL/dG, G_tile> + content_tile``, whose gradient is the tile's share of the true one;
   the shares are added into one gradient the size of the signal.

What a network must declare is its :class:`LayerGeometry` per layer (``extractor.geometry(layers)``):
how many input samples one feature cell steps over (its stride) and how far an edge effect reaches
(its radius). The tiles work along every spatial dimension, so the same code serves 1-D and 2-D signals.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Callable, Iterator, Mapping, NamedTuple, Sequence

import torch
from torch import Tensor

from .losses import _EPS, _acc, total_variation

__all__ = ["LayerGeometry", "Tiling", "layer_geometry", "tile_geometry", "min_tile", "tiled_grams", "tiled_features",
           "make_tiled_loss_fn"]


class LayerGeometry(NamedTuple):
    """Where a layer's feature cells sit in the input.

    stride : input samples between neighbouring cells (the product of the poolings before the layer).
    radius : input samples from a border of the input within which the layer's values depend on what lies
        beyond that border (zero padding on the way), on either side; 0 for the input itself.
    """

    stride: int
    radius: int


def layer_geometry(modules: Sequence[tuple[str, int, int, int, int]]) -> dict[str, LayerGeometry]:
    """Geometry of each layer of a feed-forward chain, from each module's ``(name, kernel, stride, padding,
    dilation)`` along one spatial dimension (pointwise layers: kernel 1, stride 1, padding 0).

    An edge effect of ``b`` cells grows to ``ceil((b + reach) / stride)`` cells through a module whose
    kernel reaches ``reach = max(padding, (kernel - 1) * dilation + 1 - stride - padding)`` cells beyond its
    window's aligned start (zero padding read on the left, or a window running past the end on the right).

    >>> g = layer_geometry([("conv1", 3, 1, 1, 1), ("pool1", 2, 2, 0, 1), ("conv2", 3, 1, 1, 1)])
    >>> g["conv1"], g["pool1"], g["conv2"]
    (LayerGeometry(stride=1, radius=1), LayerGeometry(stride=2, radius=2), LayerGeometry(stride=2, radius=4))
    """
    out: dict[str, LayerGeometry] = {}
    stride, bad = 1, 0  # bad: cells at the current layer's resolution touched by an edge
    for name, kernel, step, padding, dilation in modules:
        span = (kernel - 1) * dilation + 1
        reach = max(padding, span - step - padding, 0)
        bad = -(-(bad + reach) // step)
        stride *= step
        out[name] = LayerGeometry(stride, bad * stride)
    return out


def tile_geometry(geometry: Mapping[str, LayerGeometry]) -> tuple[int, int]:
    """``(align, halo)`` for the layers in ``geometry``: tile borders fall on multiples of ``align`` (every
    layer's stride divides it) and each tile is read with ``halo`` samples on each side (the widest radius,
    rounded up to ``align``)."""
    if not geometry:
        raise ValueError("tiling needs at least one layer")
    align = math.lcm(*(g.stride for g in geometry.values()))
    radius = max(g.radius for g in geometry.values())
    return align, -(-radius // align) * align


def min_tile(geometry: Mapping[str, LayerGeometry]) -> int:
    """The smallest tile worth its halo: the receptive field of the deepest layer (two halos)."""
    align, halo = tile_geometry(geometry)
    return max(align, 2 * halo)


@dataclass(frozen=True)
class Tile:
    """One tile: ``core`` the positions it counts, ``window`` what it reads (core plus halo); slices per
    spatial dimension in the signal's samples."""

    core: tuple[slice, ...]
    window: tuple[slice, ...]


class Tiling:
    """A signal's spatial extent ``shape`` cut into tiles of ``tile`` samples (rounded down to the alignment)
    per dimension, for the layers in ``geometry``.

    >>> from nst_core.tiling import LayerGeometry
    >>> t = Tiling((100, 40), 32, {"a": LayerGeometry(stride=4, radius=6)})
    >>> len(t), t.align, t.halo, t.tiles[0].window
    (8, 4, 8, (slice(0, 40, None), slice(0, 40, None)))
    """

    def __init__(self, shape: Sequence[int], tile: int, geometry: Mapping[str, LayerGeometry]):
        self.shape = tuple(int(n) for n in shape)
        self.geometry = dict(geometry)
        self.align, self.halo = tile_geometry(self.geometry)
        self.tile = max(self.align, int(tile) // self.align * self.align)
        per_dim = []
        for n in self.shape:
            spans = []
            for a in range(0, n, self.tile):
                b = min(a + self.tile, n)
                spans.append((slice(a, b), slice(max(0, a - self.halo), min(n, b + self.halo))))
            per_dim.append(spans)
        self.tiles = [Tile(tuple(c for c, _ in combo), tuple(w for _, w in combo))
                      for combo in itertools.product(*per_dim)]

    def __len__(self) -> int:
        return len(self.tiles)

    def __iter__(self) -> Iterator[Tile]:
        return iter(self.tiles)

    def kept(self, tile: Tile, layer: str, local_shape: Sequence[int]) -> tuple[tuple[slice, ...], tuple[slice, ...]]:
        """``(local, global)``: which cells of ``layer``'s map over ``tile.window`` (spatial shape
        ``local_shape``) the tile counts, and where they sit in the untiled map."""
        s = self.geometry[layer].stride
        local, glob = [], []
        for core, window, n, length in zip(tile.core, tile.window, self.shape, local_shape):
            lo = (core.start - window.start) // s
            hi = (core.stop - window.start) // s if core.stop < n else length  # the last tile keeps the map's end
            local.append(slice(lo, hi))
            glob.append(slice(core.start // s, core.start // s + (hi - lo)))
        return tuple(local), tuple(glob)

    def window(self, signal: Tensor, tile: Tile) -> Tensor:
        return signal[(slice(None), slice(None)) + tile.window]


def _transformed(transform: Callable[[Tensor], Tensor] | None, x: Tensor) -> Tensor:
    return x if transform is None else transform(x)


def _flat(features: Tensor, where: tuple[slice, ...]) -> Tensor:
    """The cells ``where`` of ``(B, C, *spatial)`` maps as ``(B, C, N)`` in at least fp32."""
    f = features[(slice(None), slice(None)) + where]
    return _acc(f.reshape(f.shape[0], f.shape[1], -1))


def tiled_grams(extractor, signal: Tensor, layers: Sequence[str], tile: int, *,
                transform: Callable[[Tensor], Tensor] | None = None) -> dict[str, Tensor]:
    """Gram matrices ``(B, C, C)`` of ``extractor(signal)`` at ``layers`` (as :func:`nst_core.gram_matrix`),
    computed tile by tile without gradients."""
    sums, counts = _gram_sums(extractor, signal.detach(), list(layers), tile, transform)
    return {k: sums[k] / (sums[k].shape[-1] * counts[k]) for k in sums}


def _gram_sums(extractor, x: Tensor, layers: list[str], tile: int, transform) -> tuple[dict[str, Tensor], dict[str, int]]:
    tiling = Tiling(x.shape[2:], tile, extractor.geometry(layers))
    sums: dict[str, Tensor] = {}
    counts: dict[str, int] = dict.fromkeys(layers, 0)
    with torch.no_grad():
        for t in tiling:
            feats = extractor(_transformed(transform, tiling.window(x, t)), layers)
            for k in layers:
                local, _ = tiling.kept(t, k, feats[k].shape[2:])
                f = _flat(feats[k], local)
                with torch.autocast(device_type=f.device.type, enabled=False):
                    part = torch.bmm(f, f.transpose(1, 2))
                sums[k] = part if k not in sums else sums[k].add_(part)
                counts[k] += f.shape[-1]
    return sums, counts


def tiled_features(extractor, signal: Tensor, layers: Sequence[str], tile: int, *,
                   transform: Callable[[Tensor], Tensor] | None = None) -> dict[str, Tensor]:
    """``extractor(signal, layers)`` assembled tile by tile without gradients (each map built once, at its
    full size, in the dtype the network returns)."""
    x, layers = signal.detach(), list(layers)
    tiling = Tiling(x.shape[2:], tile, extractor.geometry(layers))
    out: dict[str, Tensor] = {}
    ends: dict[str, list[int]] = {k: [0] * len(tiling.shape) for k in layers}
    with torch.no_grad():
        for t in tiling:
            feats = extractor(_transformed(transform, tiling.window(x, t)), layers)
            for k in layers:
                local, glob = tiling.kept(t, k, feats[k].shape[2:])
                part = feats[k][(slice(None), slice(None)) + local]
                if k not in out:  # ceil(n / stride) bounds the map; the floors of the poolings may make it shorter
                    full = [-(-n // tiling.geometry[k].stride) for n in tiling.shape]
                    out[k] = part.new_zeros(part.shape[:2] + tuple(full))
                out[k][(slice(None), slice(None)) + glob] = part
                ends[k] = [max(e, g.stop) for e, g in zip(ends[k], glob)]
    return {k: v[(slice(None), slice(None)) + tuple(slice(0, e) for e in ends[k])] for k, v in out.items()}


class _TiledTerms(torch.autograd.Function):
    """The network part of the loss as one autograd node whose gradient was computed tile by tile."""

    @staticmethod
    def forward(ctx, signal: Tensor, evaluate: Callable[[Tensor], tuple[Tensor, Tensor]]) -> Tensor:
        value, grad = evaluate(signal.detach())
        ctx.save_for_backward(grad)
        return value

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        (grad,) = ctx.saved_tensors
        return grad_out * grad, None


def make_tiled_loss_fn(extractor, objective, tile: int,
                       transform: Callable[[Tensor], Tensor] | None = None) -> Callable[[Tensor], dict[str, Tensor]]:
    """:func:`nst_core.make_loss_fn` evaluated tile by tile: the same terms, and ``total``'s gradient by the
    signal equal to the untiled one up to round-off, with the network's activations held for one tile at a
    time. ``extractor`` must declare ``geometry(layers) -> {layer: LayerGeometry}``; ``transform`` (what the
    extractor reads, from the signal) must act on each position alone (e.g. repeating a channel).

    ``content`` and ``style`` come back detached; ``total`` carries the gradient.
    """
    layers = objective.layers
    style_layers = list(objective.style_grams)
    content_layers = list(objective.content_targets)
    geometry = extractor.geometry(layers)

    def evaluate(x: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        tiling = Tiling(x.shape[2:], tile, geometry)
        zero = x.new_zeros((), dtype=torch.float32)
        style = zero
        direction: dict[str, Tensor] = {}
        if style_layers:
            sums, counts = _gram_sums(extractor, x, style_layers, tile, transform)
            for k in style_layers:
                c = sums[k].shape[-1]
                scale = 1.0 / (c * counts[k])
                g = sums[k] * scale
                t = _acc(objective.style_grams[k])
                t = t.unsqueeze(0) if t.dim() == 2 else t
                energy = objective.style_energies[k] + _EPS
                w = objective.style_layer_weights[k]
                style = style + w * ((g - t).pow(2).sum(dim=(-2, -1)) / energy).mean()
                # d style / d G, scaled to act on the unnormalised sum of a tile's f f^T
                direction[k] = (objective.style_weight * w * 2.0 * scale / g.shape[0]) * (g - t) / energy[..., None, None]
        grad = torch.zeros_like(x)
        content = zero
        for t in tiling:
            xt = tiling.window(x, t).clone().requires_grad_(True)
            with torch.enable_grad():
                feats = extractor(_transformed(transform, xt), layers)
                part = zero
                tile_content = zero
                for k, d in direction.items():
                    local, _ = tiling.kept(t, k, feats[k].shape[2:])
                    f = _flat(feats[k], local)
                    with torch.autocast(device_type=f.device.type, enabled=False):
                        part = part + (torch.bmm(d, f) * f).sum()  # <dL/dG, f f^T>
                for k in content_layers:
                    local, glob = tiling.kept(t, k, feats[k].shape[2:])
                    target = objective.content_targets[k]
                    f = _flat(feats[k], local)
                    ref = _flat(target, glob)
                    term = (f - ref).pow(2).sum() / (target.numel() * (objective.content_energies[k] + _EPS))
                    tile_content = tile_content + objective.content_layer_weights[k] * term
                part = part + objective.content_weight * tile_content
            if part.requires_grad:
                (g,) = torch.autograd.grad(part, xt)
                grad[(slice(None), slice(None)) + t.window] += g
            content = content + tile_content.detach()
        network = objective.content_weight * content + objective.style_weight * style
        return network.detach(), grad, content, style.detach()

    def loss_fn(signal: Tensor) -> dict[str, Tensor]:
        held: dict[str, Tensor] = {}

        def run(x: Tensor) -> tuple[Tensor, Tensor]:
            network, grad, content, style = evaluate(x)
            held["content"], held["style"] = content, style
            return network, grad

        network = _TiledTerms.apply(signal, run)
        tv = total_variation(signal) if objective.tv_weight else signal.new_zeros((), dtype=torch.float32)
        total = network + objective.tv_weight * tv
        return {"content": held["content"], "style": held["style"], "tv": tv, "total": total}

    return loss_fn
