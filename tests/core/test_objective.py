"""Tests for nst_core.objective: the weighted objective, style targets and the composed loss function.

The feature extractor is the tiny frozen conv stack of conftest.py (fixed seed), so every number here
can be recomputed from the loss functions directly.
"""

from __future__ import annotations

import pytest
import torch

from nst_core import (Objective, blend_grams, content_loss, gram_matrix, make_loss_fn, style_loss, style_targets,
                      total_variation)


def rand_image(*shape, seed=0):
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed))


@pytest.fixture
def extractor(tiny_extractor):
    return tiny_extractor(in_channels=3, seed=0)


@pytest.fixture
def case(extractor):
    content, style, signal = rand_image(1, 3, 8, 8, seed=1), rand_image(1, 3, 8, 8, seed=2), rand_image(1, 3, 8, 8, seed=3)
    content_layers, style_layers = ["relu2"], ["relu1", "relu2"]
    with torch.no_grad():
        content_targets = extractor(content, content_layers)
    grams = style_targets(extractor, [style], style_layers)
    return dict(content_targets=content_targets, grams=grams, signal=signal,
                features=extractor(signal, ["relu1", "relu2"]))


def test_terms_dict_keys_and_scalars(case):
    obj = Objective(case["content_targets"], case["grams"], tv_weight=1.0)
    terms = obj(case["features"], case["signal"])
    assert list(terms) == list(Objective.terms) == ["content", "style", "tv", "total"]
    for v in terms.values():
        assert v.shape == () and v.dtype == torch.float32


@pytest.mark.parametrize("cw, sw, tvw", [(1.0, 1.0, 0.5), (3.0, 1e3, 2.0), (0.0, 5.0, 1e-2)])
def test_weights_are_applied_and_terms_match_loss_functions(case, cw, sw, tvw):
    obj = Objective(case["content_targets"], case["grams"], content_weight=cw, style_weight=sw, tv_weight=tvw)
    terms = obj(case["features"], case["signal"])
    content = content_loss(case["features"]["relu2"], case["content_targets"]["relu2"])
    # Equal layer weights by default, normalised to sum to 1: the style term is the layer mean.
    style = style_loss(case["features"], case["grams"], {"relu1": 0.5, "relu2": 0.5})
    tv = total_variation(case["signal"])
    assert terms["content"].item() == pytest.approx(content.item(), rel=1e-6)
    assert terms["style"].item() == pytest.approx(style.item(), rel=1e-6)
    assert terms["tv"].item() == pytest.approx(tv.item(), rel=1e-6)
    assert terms["content"].item() > 0 and terms["style"].item() > 0 and terms["tv"].item() > 0
    expected = cw * terms["content"] + sw * terms["style"] + tvw * terms["tv"]
    assert terms["total"].item() == pytest.approx(expected.item(), rel=1e-6)


def test_zero_tv_weight_leaves_total_free_of_tv(case):
    obj = Objective(case["content_targets"], case["grams"], content_weight=2.0, style_weight=3.0, tv_weight=0.0)
    terms = obj(case["features"], case["signal"])
    assert terms["total"].item() == pytest.approx(2.0 * terms["content"].item() + 3.0 * terms["style"].item(), rel=1e-6)


def test_texture_objective_without_content_targets(case):
    obj = Objective({}, case["grams"], content_weight=10.0, style_weight=2.0)
    signal = case["signal"].clone().requires_grad_(True)
    terms = obj({k: v for k, v in case["features"].items()}, signal)
    assert terms["content"].item() == 0.0
    assert terms["total"].item() == pytest.approx(2.0 * terms["style"].item(), rel=1e-6)
    assert obj.layers == ["relu1", "relu2"]


def test_texture_objective_gradient_reaches_the_signal(extractor, case):
    obj = Objective({}, case["grams"], tv_weight=0.1)
    signal = case["signal"].clone().requires_grad_(True)
    total = make_loss_fn(extractor, obj)(signal)["total"]
    (grad,) = torch.autograd.grad(total, signal)
    assert torch.isfinite(grad).all() and grad.abs().sum() > 0


def test_objective_without_style_targets(case):
    obj = Objective(case["content_targets"], {}, style_weight=100.0)
    terms = obj(case["features"], case["signal"])
    assert terms["style"].item() == 0.0
    assert terms["total"].item() == pytest.approx(terms["content"].item(), rel=1e-6)


def test_layers_lists_content_first_without_duplicates(case):
    obj = Objective({"relu2": case["content_targets"]["relu2"], "conv1": torch.zeros(1, 4, 8, 8)}, case["grams"])
    assert obj.layers == ["relu2", "conv1", "relu1"]


def _two_layer_content(case):
    feats = case["features"]
    targets = {"relu1": feats["relu1"].detach() * 0.5 + 0.1, "relu2": feats["relu2"].detach() * 2.0}
    la = content_loss(feats["relu1"], targets["relu1"]).item()
    lb = content_loss(feats["relu2"], targets["relu2"]).item()
    assert la > 0 and lb > 0 and abs(la - lb) > 1e-3  # so weighting is visible
    return targets, la, lb


def test_content_layer_weights_are_normalised(case):
    targets, la, lb = _two_layer_content(case)
    value = lambda w: Objective(targets, {}, content_layer_weights=w)(case["features"], case["signal"])["content"].item()
    assert value(None) == pytest.approx((la + lb) / 2, rel=1e-6)
    assert value({"relu1": 3.0, "relu2": 1.0}) == pytest.approx(0.75 * la + 0.25 * lb, rel=1e-6)
    assert value({"relu1": 6.0, "relu2": 2.0}) == pytest.approx(value({"relu1": 0.75, "relu2": 0.25}), rel=1e-6)
    # A layer left out of the mapping counts with weight 1.
    assert value({"relu1": 3.0}) == pytest.approx(0.75 * la + 0.25 * lb, rel=1e-6)


def test_style_layer_weights_are_normalised(case):
    obj = Objective({}, case["grams"], style_layer_weights={"relu1": 1.0, "relu2": 3.0})
    assert obj.style_layer_weights == pytest.approx({"relu1": 0.25, "relu2": 0.75})
    expected = style_loss(case["features"], case["grams"], {"relu1": 0.25, "relu2": 0.75}).item()
    assert obj(case["features"], case["signal"])["style"].item() == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("which", ["content", "style"])
def test_all_zero_layer_weights_raise(case, which):
    with pytest.raises(ValueError, match="zero"):
        if which == "content":
            Objective(case["content_targets"], {}, content_layer_weights={"relu2": 0.0})
        else:
            Objective({}, case["grams"], style_layer_weights={"relu1": 0.0, "relu2": 0.0})


def test_targets_are_detached_and_caller_tensors_untouched(case):
    target = case["content_targets"]["relu2"].clone().requires_grad_(True)
    before = target.detach().clone()
    obj = Objective({"relu2": target}, case["grams"])
    assert not obj.content_targets["relu2"].requires_grad
    obj(case["features"], case["signal"])
    assert torch.equal(target.detach(), before)


# ---------------------------------------------------------------------------------------------
# style_targets
# ---------------------------------------------------------------------------------------------

def test_style_targets_single_style_is_its_grams(extractor):
    style = rand_image(1, 3, 8, 8, seed=4)
    out = style_targets(extractor, [style], ("relu1", "relu2"))
    assert set(out) == {"relu1", "relu2"}
    feats = extractor(style, ["relu1", "relu2"])
    for k in out:
        assert not out[k].requires_grad
        assert out[k].shape == (1, feats[k].shape[1], feats[k].shape[1])
        torch.testing.assert_close(out[k], gram_matrix(feats[k]), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("weights", [None, [0.7, 0.3], [7, 3]])
def test_style_targets_blend_as_blend_grams(extractor, weights):
    styles = [rand_image(1, 3, 8, 8, seed=5), rand_image(1, 3, 12, 10, seed=6)]
    layers = ["conv1", "relu2"]
    out = style_targets(extractor, styles, layers, weights)
    per_style = [{k: gram_matrix(v) for k, v in extractor(s, layers).items()} for s in styles]
    expected = blend_grams(per_style, weights)
    assert set(out) == set(layers)
    for k in layers:
        torch.testing.assert_close(out[k], expected[k], rtol=1e-6, atol=1e-8)
    # The blend really mixes: it differs from either style alone.
    assert not torch.allclose(out["relu2"], per_style[0]["relu2"])
    assert extractor.calls[0] == layers


def test_style_targets_bad_blend_weights_raise(extractor):
    with pytest.raises(ValueError):
        style_targets(extractor, [rand_image(1, 3, 8, 8)], ["relu1"], [1.0, 1.0])


# ---------------------------------------------------------------------------------------------
# make_loss_fn
# ---------------------------------------------------------------------------------------------

def test_make_loss_fn_equals_objective_on_extracted_features(extractor, case):
    obj = Objective(case["content_targets"], case["grams"], tv_weight=0.3)
    loss_fn = make_loss_fn(extractor, obj)
    terms = loss_fn(case["signal"])
    expected = obj(extractor(case["signal"], obj.layers), case["signal"])
    for k in Objective.terms:
        assert terms[k].item() == pytest.approx(expected[k].item(), rel=1e-6)
    assert extractor.calls[-1] == obj.layers


def test_make_loss_fn_with_transform(tiny_extractor):
    # A one-channel (luminance) signal repeated to three channels for the extractor; TV reads the signal.
    extractor = tiny_extractor(in_channels=3, seed=1)
    gray = rand_image(1, 1, 8, 8, seed=7)
    to_rgb = lambda x: x.repeat(1, 3, 1, 1)
    grams = style_targets(extractor, [rand_image(1, 3, 8, 8, seed=8)], ["relu1"])
    obj = Objective({}, grams, tv_weight=1.0)
    seen = []

    def transform(x):
        seen.append(x.shape)
        return to_rgb(x)

    terms = make_loss_fn(extractor, obj, transform=transform)(gray)
    assert seen == [(1, 1, 8, 8)]
    expected_style = style_loss(extractor(to_rgb(gray), ["relu1"]), grams, {"relu1": 1.0}).item()
    assert terms["style"].item() == pytest.approx(expected_style, rel=1e-6)
    assert terms["tv"].item() == pytest.approx(total_variation(gray).item(), rel=1e-6)
    with pytest.raises(RuntimeError):  # without the transform the 1-channel signal cannot enter the conv
        make_loss_fn(extractor, obj)(gray)


def test_precomputed_target_energies_give_the_same_losses():
    """The Objective computes target energies once; the losses equal the plain functions' values."""
    g = torch.Generator().manual_seed(0)
    feats = {"a": torch.rand(1, 4, 6, 5, generator=g), "b": torch.rand(1, 3, 7, generator=g)}
    content = {"a": torch.rand(1, 4, 6, 5, generator=g)}
    grams = {"b": gram_matrix(torch.rand(1, 3, 7, generator=g))}
    terms = Objective(content, grams)(feats, torch.zeros(1, 3, 4, 4))
    torch.testing.assert_close(terms["content"], content_loss(feats["a"], content["a"]))
    torch.testing.assert_close(terms["style"], style_loss(feats, grams))


def test_target_cache_computes_each_style_once_and_returns_the_same_targets(tiny_extractor):
    from nst_core import TargetCache

    ex = tiny_extractor(in_channels=3, seed=0)
    styles = [rand_image(1, 3, 8, 8, seed=5), rand_image(1, 3, 12, 10, seed=6)]
    cache = TargetCache()
    plain = style_targets(ex, styles, ["relu1", "relu2"], [0.7, 0.3])
    first = style_targets(ex, styles, ["relu1", "relu2"], [0.7, 0.3], cache=cache)
    calls = len(ex.calls)
    again = style_targets(ex, styles, ["relu1", "relu2"], [0.3, 0.7], cache=cache)  # other blend, same Grams
    assert (cache.hits, cache.misses) == (2, 2) and len(ex.calls) == calls  # no forward pass the second time
    for k in plain:
        torch.testing.assert_close(first[k], plain[k], rtol=0, atol=0)
    expected = style_targets(ex, styles, ["relu1", "relu2"], [0.3, 0.7])
    for k in expected:
        torch.testing.assert_close(again[k], expected[k], rtol=0, atol=0)


def test_target_cache_keys_are_exact(tiny_extractor):
    """Another picture, size, layer set or network (even an equal-looking one with other weights) is a miss;
    an equal network built again (the same weights) is a hit."""
    from nst_core import TargetCache

    cache = TargetCache()
    ex = tiny_extractor(in_channels=3, seed=0)
    style = rand_image(1, 3, 8, 8, seed=5)
    style_targets(ex, [style], ["relu1"], cache=cache)
    style_targets(ex, [rand_image(1, 3, 8, 8, seed=7)], ["relu1"], cache=cache)
    style_targets(ex, [rand_image(1, 3, 10, 8, seed=5)], ["relu1"], cache=cache)
    style_targets(ex, [style], ["relu1", "relu2"], cache=cache)
    style_targets(tiny_extractor(in_channels=3, seed=1), [style], ["relu1"], cache=cache)
    assert (cache.hits, cache.misses) == (0, 5)
    style_targets(tiny_extractor(in_channels=3, seed=0), [style], ["relu1"], cache=cache)
    assert cache.hits == 1
    small = TargetCache(max_items=2)
    for seed in range(3):
        style_targets(ex, [rand_image(1, 3, 8, 8, seed=seed)], ["relu1"], cache=small)
    assert len(small) == 2
