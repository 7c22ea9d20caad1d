"""Tiled evaluation of the objective: tiles that cover the signal once, halos computed from the network,
and loss and gradient equal to the untiled ones (float64, so round-off is not an excuse)."""

from __future__ import annotations

from typing import Sequence

import pytest
import torch
from torch import Tensor, nn

from nst_core import Objective, make_loss_fn, style_targets
from nst_core.tiling import (LayerGeometry, Tiling, layer_geometry, make_tiled_loss_fn, min_tile, tile_geometry,
                             tiled_features, tiled_grams)


class ChainExtractor(nn.Module):
    """conv(3, pad 1) -> relu -> avg pool 2 -> conv(5, pad 2) -> relu -> max pool 2 -> conv(3, pad 1), over one
    or two spatial dimensions, with its geometry declared from its own modules."""

    def __init__(self, dims: int = 2, channels: int = 3, seed: int = 0, dtype=torch.float64):
        super().__init__()
        conv = nn.Conv1d if dims == 1 else nn.Conv2d
        self.dims = dims
        self.names = ["c1", "r1", "p1", "c2", "r2", "p2", "c3"]
        self.mods = nn.ModuleList([conv(channels, 4, 3, padding=1), nn.ReLU(), nn.Identity(), conv(4, 5, 5, padding=2),
                                   nn.ReLU(), nn.Identity(), conv(5, 6, 3, padding=1)])  # Identity: pools, below
        g = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for m in self.mods:
                if isinstance(m, (nn.Conv1d, nn.Conv2d)):
                    m.weight.copy_(torch.randn(m.weight.shape, generator=g) / m.weight[0].numel() ** 0.5)
                    m.bias.copy_(0.1 * torch.randn(m.bias.shape, generator=g))
        self.to(dtype).requires_grad_(False)

    def forward(self, x: Tensor, layers: Sequence[str]) -> dict[str, Tensor]:  # type: ignore[override]
        deepest = max(self.names.index(k) for k in layers)
        pool_avg = nn.functional.avg_pool1d if self.dims == 1 else nn.functional.avg_pool2d
        pool_max = nn.functional.max_pool1d if self.dims == 1 else nn.functional.max_pool2d
        out, h = {}, x
        for i, (name, m) in enumerate(zip(self.names, self.mods)):
            h = pool_avg(h, 2) if name == "p1" else pool_max(h, 2) if name == "p2" else m(h)
            if name in layers:
                out[name] = h
            if i == deepest:
                break
        return out

    def geometry(self, layers: Sequence[str]) -> dict[str, LayerGeometry]:
        chain = [("c1", 3, 1, 1, 1), ("r1", 1, 1, 0, 1), ("p1", 2, 2, 0, 1), ("c2", 5, 1, 2, 1), ("r2", 1, 1, 0, 1),
                 ("p2", 2, 2, 0, 1), ("c3", 3, 1, 1, 1)]
        g = layer_geometry(chain)
        return {k: g[k] for k in layers}


def test_geometry_of_the_chain():
    g = ChainExtractor().geometry(["c1", "p1", "c2", "c3"])
    # c1: 1 cell; p1: ceil(1/2) = 1 cell at stride 2; c2: +2 cells = 3 (6 px); p2: 2 cells at 4 (8 px); c3: 3 (12 px)
    assert g == {"c1": (1, 1), "p1": (2, 2), "c2": (2, 6), "c3": (4, 12)}
    assert tile_geometry(g) == (4, 12) and min_tile(g) == 24


@pytest.mark.parametrize("shape,tile", [((100, 40), 32), ((17,), 8), ((64, 64), 64), ((33, 70), 20)])
def test_tiles_cover_every_position_once_and_windows_are_aligned(shape, tile):
    geo = {"a": LayerGeometry(stride=4, radius=6)}
    t = Tiling(shape, tile, geo)
    count = torch.zeros(shape, dtype=torch.int64)
    for item in t:
        count[item.core] += 1
        for core, window, n in zip(item.core, item.window, shape):
            assert window.start % t.align == 0 and core.start % t.align == 0
            assert window.start == max(0, core.start - t.halo) and window.stop == min(n, core.stop + t.halo)
    assert bool((count == 1).all())
    assert t.halo == 8 and t.tile == tile // 4 * 4


def _objective(ex, content: Tensor, style: Tensor, content_layers, style_layers, tv=0.5):
    with torch.no_grad():
        cf = ex(content, content_layers) if content_layers else {}
    grams = style_targets(ex, [style], style_layers) if style_layers else {}
    return Objective(cf, grams, content_weight=2.0, style_weight=30.0, tv_weight=tv)


def _loss_and_grad(loss_fn, x: Tensor) -> tuple[dict[str, float], Tensor]:
    x = x.clone().requires_grad_(True)
    terms = loss_fn(x)
    (g,) = torch.autograd.grad(terms["total"], x)
    return {k: float(v.detach()) for k, v in terms.items()}, g


@pytest.mark.parametrize("dims,shape,tile", [(2, (61, 90), 24), (2, (48, 48), 16), (1, (203,), 40)])
@pytest.mark.parametrize("layers", [(["c3"], ["c1", "c2", "c3"]), ([], ["c1", "p1"]), (["c2"], [])])
def test_tiled_loss_and_gradient_equal_the_untiled(dims, shape, tile, layers):
    ex = ChainExtractor(dims=dims)
    gen = torch.Generator().manual_seed(1)
    content, style, x = (torch.rand((1, 3) + shape, generator=gen, dtype=torch.float64) for _ in range(3))
    objective = _objective(ex, content, style, *layers)
    ref_terms, ref_grad = _loss_and_grad(make_loss_fn(ex, objective), x)
    tiled = make_tiled_loss_fn(ex, objective, tile)
    assert len(Tiling(shape, tile, ex.geometry(objective.layers))) > 2  # really tiled
    terms, grad = _loss_and_grad(tiled, x)
    for k in ref_terms:
        assert terms[k] == pytest.approx(ref_terms[k], rel=1e-10, abs=1e-14), k
    assert ref_grad.abs().max() > 0
    assert float((grad - ref_grad).abs().max() / ref_grad.abs().max()) < 1e-10


def test_a_narrower_halo_breaks_equality():
    """The computed halo is needed: one alignment step less and the Gram matrices differ."""
    ex = ChainExtractor()
    x = torch.rand(1, 3, 64, 64, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    ref = {k: v for k, v in style_targets(ex, [x], ["c3"]).items()}
    assert float((tiled_grams(ex, x, ["c3"], 16)["c3"] - ref["c3"]).abs().max()) < 1e-12

    class Narrow(ChainExtractor):
        def geometry(self, layers):
            return {k: LayerGeometry(g.stride, g.radius - 4) for k, g in super().geometry(layers).items()}

    narrow = Narrow()
    assert tile_geometry(narrow.geometry(["c3"]))[1] == 8
    assert float((tiled_grams(narrow, x, ["c3"], 16)["c3"] - ref["c3"]).abs().max()) > 1e-6


def test_tiled_features_equal_the_untiled_maps():
    ex = ChainExtractor()
    x = torch.rand(1, 3, 53, 75, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    ref = ex(x, ["c1", "c2", "c3"])
    got = tiled_features(ex, x, ["c1", "c2", "c3"], 16)
    for k in ref:
        assert got[k].shape == ref[k].shape
        assert torch.allclose(got[k], ref[k], rtol=0, atol=1e-12)


def test_tiled_step_is_optimizable():
    """The loop takes the tiled loss as it is: a few L-BFGS steps give the untiled run's iterates."""
    from nst_core import OptimizeConfig, optimize

    ex = ChainExtractor(dtype=torch.float32)
    gen = torch.Generator().manual_seed(4)
    content, style = torch.rand(1, 3, 40, 56, generator=gen), torch.rand(1, 3, 40, 56, generator=gen)
    objective = _objective(ex, content, style, ["c3"], ["c1", "c2", "c3"])
    cfg = OptimizeConfig(steps=8, tolerance=0, log_every=4)
    a = optimize(content, make_loss_fn(ex, objective), cfg)
    b = optimize(content, make_tiled_loss_fn(ex, objective, 16), cfg)
    assert b.trace["total"][-1] < 0.7 * b.trace["total"][0]
    assert b.trace["total"] == pytest.approx(a.trace["total"], rel=1e-4)
    assert float((a.signal - b.signal).abs().max()) < 1e-3
