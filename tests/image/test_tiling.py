"""Tiled objective on the VGG backbones: geometry from each network, and loss and gradient equal to the untiled
ones within fp32 round-off (random and pretrained weights, max and avg pooling, VGG-16 and VGG-19, the default
layer sets, non-square pictures whose sides are not multiples of the tile)."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from nst_core import Objective, make_loss_fn, style_targets
from nst_core.tiling import Tiling, make_tiled_loss_fn, min_tile, tile_geometry, tiled_features, tiled_grams
from nst_image import ImageStyleConfig
from nst_image.backbones import VGGFeatures, layer_names
from nst_image.io import load_image, resize_to

from helpers import kaiming_vgg

DEFAULT = ImageStyleConfig()


def kaiming(arch: str, pooling: str, seed: int = 0) -> VGGFeatures:
    return kaiming_vgg(arch, pooling, seed)


def with_pooling(ex: VGGFeatures, pooling: str) -> VGGFeatures:
    out = copy.deepcopy(ex)
    out.layers = nn.ModuleList([nn.AvgPool2d(2, 2) if isinstance(m, nn.MaxPool2d) and pooling == "avg" else m
                                for m in out.layers])
    out.pooling = pooling
    return out


@pytest.mark.parametrize("arch,layers,expected", [
    ("vgg19", ["relu5_1"], (16, 80)), ("vgg16", ["relu5_1"], (16, 64)), ("vgg19", ["relu4_2"], (8, 40)),
    ("vgg19", ["relu1_1", "relu2_1", "relu3_1"], (4, 12)), ("vgg16", ["relu4_2"], (8, 40)),
])
def test_geometry_of_each_backbone(arch, layers, expected):
    assert tile_geometry(VGGFeatures(arch).geometry(layers)) == expected


def _pictures(h: int, w: int, demo_inputs=None, seed: int = 0):
    if demo_inputs is None:
        gen = torch.Generator().manual_seed(seed)
        return [torch.rand(1, 3, h, w, generator=gen) for _ in range(3)]
    c = resize_to(load_image(demo_inputs["content_landscape"]), (h, w)).unsqueeze(0)
    s = resize_to(load_image(demo_inputs["style_swirls"]), (h, w)).unsqueeze(0)
    x = (0.7 * c + 0.3 * s).clamp(0, 1)
    return [c, s, x]


def _check_equal(ex, content, style, x, *, content_layers, style_layers, tile, transform=None):
    read = (lambda t: t) if transform is None else transform
    with torch.no_grad():
        cf = ex(read(content), list(content_layers)) if content_layers else {}
    grams = style_targets(ex, [read(style)], list(style_layers)) if style_layers else {}
    objective = Objective(cf, grams, content_weight=DEFAULT.content_weight, style_weight=DEFAULT.style_weight,
                          tv_weight=DEFAULT.tv_weight)
    assert len(Tiling(x.shape[2:], tile, ex.geometry(objective.layers))) >= 4

    def run(fn):
        xx = x.clone().requires_grad_(True)
        terms = fn(xx)
        (g,) = torch.autograd.grad(terms["total"], xx)
        return {k: float(v.detach()) for k, v in terms.items()}, g

    ref_terms, ref_grad = run(make_loss_fn(ex, objective, transform))
    terms, grad = run(make_tiled_loss_fn(ex, objective, tile, transform))
    for k in ("content", "style", "tv", "total"):
        assert terms[k] == pytest.approx(ref_terms[k], rel=2e-5, abs=1e-9), k
    scale = float(ref_grad.abs().max())
    assert scale > 0
    assert float((grad - ref_grad).abs().max()) / scale < 1e-4
    assert float((grad - ref_grad).norm() / ref_grad.norm()) < 1e-5


@pytest.mark.parametrize("arch", ["vgg19", "vgg16"])
@pytest.mark.parametrize("pooling", ["max", "avg"])
def test_tiled_equals_untiled_random_weights(arch, pooling):
    ex = kaiming(arch, pooling)
    c, s, x = _pictures(150, 203, seed=1)  # non-square, neither side a multiple of the tile
    _check_equal(ex, c, s, x, content_layers=DEFAULT.content_layers, style_layers=DEFAULT.style_layers, tile=64)


@pytest.mark.parametrize("pooling", ["max", "avg"])
def test_tiled_equals_untiled_pretrained(hed_extractor, demo_inputs, pooling):
    ex = with_pooling(hed_extractor, pooling)
    c, s, x = _pictures(176, 131, demo_inputs)
    _check_equal(ex, c, s, x, content_layers=DEFAULT.content_layers, style_layers=DEFAULT.style_layers, tile=48)


@pytest.mark.parametrize("content_layers,style_layers", [
    ((), DEFAULT.style_layers),  # texture synthesis
    (DEFAULT.content_layers, ()),  # content only
    (("relu2_2",), ("relu1_1", "relu2_1", "relu3_1")),  # shallow: a small halo
])
def test_tiled_equals_untiled_other_layer_sets(content_layers, style_layers):
    ex = kaiming("vgg19", "max", seed=2)
    c, s, x = _pictures(97, 140, seed=3)
    _check_equal(ex, c, s, x, content_layers=content_layers, style_layers=style_layers, tile=32)


def test_tiled_equals_untiled_luminance_only():
    """The luminance run reads a one-channel signal repeated to three: the transform goes per tile."""
    ex = kaiming("vgg19", "avg", seed=4)
    c, s, x = (p.mean(dim=1, keepdim=True) for p in _pictures(120, 88, seed=5))
    _check_equal(ex, c, s, x, content_layers=DEFAULT.content_layers, style_layers=DEFAULT.style_layers, tile=32,
                 transform=lambda t: t.expand(-1, 3, -1, -1))


def test_tiled_targets_equal_the_untiled_ones():
    ex = kaiming("vgg16", "max", seed=6)
    x = torch.rand(1, 3, 133, 170, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        ref = ex(x, ["relu4_2", "relu1_1", "relu5_1"])
    grams = tiled_grams(ex, x, ["relu1_1", "relu5_1"], 48)
    for k in grams:
        want = style_targets(ex, [x], [k])[k]
        assert float((grams[k] - want).abs().max() / want.abs().max()) < 1e-5
    feats = tiled_features(ex, x, ["relu4_2"], 48)
    assert feats["relu4_2"].shape == ref["relu4_2"].shape
    assert float((feats["relu4_2"] - ref["relu4_2"]).abs().max() / ref["relu4_2"].abs().max()) < 1e-5


def test_min_tile_is_the_receptive_field():
    g = VGGFeatures("vgg19").geometry([n for n in layer_names("vgg19") if n == "relu5_1"])
    assert min_tile(g) == 160
