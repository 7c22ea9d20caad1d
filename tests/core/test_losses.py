"""Tests for nst_core.losses against naive loops, known values and autograd.

Each op gets the kornia-style set: output shape, bad arguments raise, a batch equals its items one by
one, gradients (``gradcheck`` in float64, plus an autograd-vs-reference check at fp32 tolerance).
"""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from helpers import assert_batch_equals_items
from nst_core import blend_grams, content_loss, gram_loss, gram_matrix, style_loss, total_variation

# The library accumulates in fp32; results agree with float64 references to fp32 round-off.
FP32 = dict(rtol=1e-5, atol=1e-6)



def randn(*shape, seed=0, dtype=torch.float32):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


# ---------------------------------------------------------------------------------------------
# Naive references (float64 Python loops)
# ---------------------------------------------------------------------------------------------

def naive_gram(features: torch.Tensor) -> torch.Tensor:
    f = features.double().reshape(features.shape[0], features.shape[1], -1)
    b, c, n = f.shape
    out = torch.zeros(b, c, c, dtype=torch.float64)
    for k in range(b):
        for i in range(c):
            for j in range(c):
                out[k, i, j] = sum(float(f[k, i, p]) * float(f[k, j, p]) for p in range(n))
    return out / (c * n)


def naive_content(features, target) -> float:
    f, t = features.double().flatten().tolist(), target.double().flatten().tolist()
    num = sum((a - b) ** 2 for a, b in zip(f, t)) / len(f)
    den = sum(b * b for b in t) / len(t)
    return num / den


def naive_gram_loss(gram, target) -> float:
    g = gram.double()
    t = target.double()
    if t.dim() == 2:
        t = t.unsqueeze(0)
    per_item = []
    for k in range(g.shape[0]):
        tk = t[0] if t.shape[0] == 1 else t[k]
        num = sum((float(g[k, i, j]) - float(tk[i, j])) ** 2 for i in range(g.shape[1]) for j in range(g.shape[2]))
        den = sum(float(tk[i, j]) ** 2 for i in range(g.shape[1]) for j in range(g.shape[2]))
        per_item.append(num / den)
    return sum(per_item) / len(per_item)


def naive_tv(x) -> float:
    """Sum over spatial dims of the mean squared neighbour difference along that dim (pure Python)."""
    x = x.double()
    total = 0.0
    for dim in range(2, x.dim()):
        n = x.shape[dim]
        if n < 2:
            continue
        diffs = []
        for idx in itertools.product(*(range(s) for s in x.shape)):
            if idx[dim] == n - 1:
                continue
            nxt = list(idx)
            nxt[dim] += 1
            diffs.append((float(x[tuple(nxt)]) - float(x[idx])) ** 2)
        total += sum(diffs) / len(diffs)
    return total


# ---------------------------------------------------------------------------------------------
# gram_matrix
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (2, 3, 7), (1, 4, 2, 3, 2), (3, 1, 6)])
def test_gram_matrix_shape_and_dtype(shape):
    g = gram_matrix(randn(*shape))
    assert g.shape == (shape[0], shape[1], shape[1])
    assert g.dtype == torch.float32


@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (2, 3, 7)])
def test_gram_matrix_equals_naive_triple_loop(shape, device, dtype):
    x = randn(*shape, seed=1).to(device, dtype)
    g = gram_matrix(x)
    # accumulated in fp32 at least: float32 stays float32, float64 stays float64
    assert g.device.type == device.type and g.dtype == dtype
    torch.testing.assert_close(g.double().cpu(), naive_gram(x.cpu()), **FP32)


def test_gram_matrix_is_symmetric_positive_semidefinite():
    g = gram_matrix(randn(2, 5, 6, 6, seed=2)).double()
    torch.testing.assert_close(g, g.transpose(1, 2))
    assert torch.linalg.eigvalsh(g).min() > -1e-6  # PSD up to fp32 round-off


@pytest.mark.parametrize("channels", [1, 3, 8])
@pytest.mark.parametrize("spatial", [(4, 5), (9,)])
def test_gram_matrix_of_all_ones_maps(channels, spatial):
    # Normalised by C*prod(spatial) (neural-style), each entry is prod(spatial)/(C*prod(spatial)) = 1/C:
    # all ones exactly when C == 1. (CONVENTIONS.md says "all ones"; that holds for a 1/prod(spatial) norm.)
    g = gram_matrix(torch.ones(2, channels, *spatial))
    assert torch.equal(g, torch.full((2, channels, channels), 1.0 / channels))
    if channels == 1:
        assert torch.equal(g, torch.ones(2, 1, 1))


def test_gram_matrix_batch_equals_items_one_by_one(device):
    assert_batch_equals_items(gram_matrix, randn(4, 3, 5, 6, seed=3).to(device), rtol=1e-6, atol=1e-7)


def test_gram_matrix_fp16_accumulates_in_fp32():
    # 300^2 * 1024 = 9.2e7 overflows fp16 (max 65504) if summed in half; fp32 gives 300^2 exactly.
    x = torch.full((1, 1, 32, 32), 300.0, dtype=torch.float16)
    g = gram_matrix(x)
    assert g.dtype == torch.float32
    assert torch.equal(g, torch.full((1, 1, 1), 90000.0))


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_gram_matrix_low_precision_equals_fp32_of_upcast_input(dtype):
    # The input is upcast before the product, so the result equals the fp32 Gram of the same values.
    x = randn(2, 4, 8, 8, seed=4).to(dtype)
    g = gram_matrix(x)
    assert g.dtype == torch.float32
    torch.testing.assert_close(g, gram_matrix(x.float()), rtol=1e-6, atol=1e-7)


def test_gram_matrix_bf16_sum_does_not_stall():
    # A bf16 running sum of 4096 ones stalls at 256 (8-bit mantissa); fp32 accumulation reaches 4096.
    g = gram_matrix(torch.ones(1, 1, 64, 64, dtype=torch.bfloat16))
    assert g.item() == 1.0


@pytest.mark.parametrize("shape", [(5,), (3, 4), ()])
def test_gram_matrix_bad_shape_raises(shape):
    with pytest.raises(ValueError, match="gram_matrix"):
        gram_matrix(torch.zeros(shape))


def test_gram_matrix_gradient_matches_closed_form():
    # d/dF sum(W * F F^T / n) = (W + W^T) F / n, n = C * prod(spatial).
    x = randn(2, 3, 4, 5, seed=5).requires_grad_(True)
    w = randn(2, 3, 3, seed=6)
    (grad,) = torch.autograd.grad((gram_matrix(x) * w).sum(), x)
    f = x.detach().double().reshape(2, 3, -1)
    expected = ((w.double() + w.double().transpose(1, 2)) @ f / (3 * 20)).reshape(x.shape)
    torch.testing.assert_close(grad.double(), expected, **FP32)


# ---------------------------------------------------------------------------------------------
# content_loss
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (1, 4, 9)])
def test_content_loss_equals_naive_loop(shape, device):
    f, t = randn(*shape, seed=1), randn(*shape, seed=2)
    out = content_loss(f.to(device), t.to(device))
    assert out.shape == () and out.dtype == torch.float32 and out.device.type == device.type
    assert out.item() == pytest.approx(naive_content(f, t), rel=1e-5)


def test_content_loss_known_values():
    t = randn(1, 3, 4, 4, seed=3)
    assert content_loss(t.clone(), t).item() == 0.0
    # ||2t - t||^2 / ||t||^2 = 1 and ||0 - t||^2 / ||t||^2 = 1.
    assert content_loss(2 * t, t).item() == pytest.approx(1.0, rel=1e-6)
    assert content_loss(torch.zeros_like(t), t).item() == pytest.approx(1.0, rel=1e-6)


@pytest.mark.parametrize("k", [1e-3, 7.0, 1e3])
def test_content_loss_is_invariant_to_activation_scale(k):
    f, t = randn(2, 3, 5, 5, seed=4), randn(2, 3, 5, 5, seed=5)
    assert content_loss(k * f, k * t).item() == pytest.approx(content_loss(f, t).item(), rel=1e-5)


def test_content_loss_low_precision_returns_fp32():
    f, t = randn(1, 2, 4, 4, seed=6), randn(1, 2, 4, 4, seed=7)
    out = content_loss(f.bfloat16(), t.bfloat16())
    assert out.dtype == torch.float32
    assert out.item() == pytest.approx(content_loss(f.bfloat16().float(), t.bfloat16().float()).item(), rel=1e-6)


def test_content_loss_shape_mismatch_raises():
    with pytest.raises(ValueError, match="shapes differ"):
        content_loss(torch.zeros(1, 3, 4, 4), torch.zeros(1, 3, 4, 5))


def test_content_loss_gradient_matches_closed_form():
    # d/df mean((f-t)^2)/mean(t^2) = 2 (f - t) / (n * mean(t^2)).
    f = randn(1, 3, 4, 4, seed=8).requires_grad_(True)
    t = randn(1, 3, 4, 4, seed=9)
    (grad,) = torch.autograd.grad(content_loss(f, t), f)
    ft, tt = f.detach().double(), t.double()
    expected = 2 * (ft - tt) / (ft.numel() * tt.pow(2).mean())
    torch.testing.assert_close(grad.double(), expected, **FP32)


# ---------------------------------------------------------------------------------------------
# gram_loss
# ---------------------------------------------------------------------------------------------

def test_gram_loss_equals_naive_loop_with_batch_target():
    g, t = randn(3, 4, 4, seed=1), randn(3, 4, 4, seed=2)
    assert gram_loss(g, t).item() == pytest.approx(naive_gram_loss(g, t), rel=1e-5)


def test_gram_loss_target_broadcasts_over_batch_and_batch_is_mean_of_items():
    g, t = randn(3, 4, 4, seed=3), randn(4, 4, seed=4)
    out = gram_loss(g, t)
    assert out.shape == ()
    assert out.item() == pytest.approx(naive_gram_loss(g, t), rel=1e-5)
    assert gram_loss(g, t.unsqueeze(0)).item() == pytest.approx(out.item(), rel=1e-7)
    items = [gram_loss(g[i : i + 1], t).item() for i in range(3)]
    assert out.item() == pytest.approx(sum(items) / 3, rel=1e-6)


def test_gram_loss_known_values():
    t = gram_matrix(randn(1, 4, 5, 5, seed=5))
    assert gram_loss(t.clone(), t).item() == 0.0
    assert gram_loss(2 * t, t).item() == pytest.approx(1.0, rel=1e-6)
    assert gram_loss(torch.zeros_like(t), t).item() == pytest.approx(1.0, rel=1e-6)


def test_gram_loss_channel_mismatch_raises():
    # Not validated explicitly: broadcasting fails with RuntimeError rather than ValueError.
    with pytest.raises((ValueError, RuntimeError)):
        gram_loss(torch.zeros(1, 3, 3), torch.ones(4, 4))


# ---------------------------------------------------------------------------------------------
# style_loss
# ---------------------------------------------------------------------------------------------

def _style_case():
    feats = {"a": randn(1, 3, 6, 6, seed=1), "b": randn(1, 5, 3, 3, seed=2), "unused": randn(1, 2, 2, 2, seed=3)}
    targets = {"a": gram_matrix(randn(1, 3, 6, 6, seed=4)), "b": gram_matrix(randn(1, 5, 3, 3, seed=5))}
    return feats, targets


def test_style_loss_is_weighted_sum_of_layer_gram_losses_naive():
    feats, targets = _style_case()
    weights = {"a": 0.25, "b": 3.0}
    expected = sum(weights[k] * naive_gram_loss(naive_gram(feats[k]), targets[k]) for k in targets)
    assert style_loss(feats, targets, weights).item() == pytest.approx(expected, rel=1e-5)


def test_style_loss_default_weights_are_one_and_extra_feature_layers_ignored():
    feats, targets = _style_case()
    expected = sum(gram_loss(gram_matrix(feats[k]), targets[k]).item() for k in targets)
    assert style_loss(feats, targets).item() == pytest.approx(expected, rel=1e-6)


def test_style_loss_layer_weights_select_layers():
    feats, targets = _style_case()
    only_a = gram_loss(gram_matrix(feats["a"]), targets["a"]).item()
    assert only_a > 0
    assert style_loss(feats, targets, {"a": 2.0, "b": 0.0}).item() == pytest.approx(2 * only_a, rel=1e-6)


def test_style_loss_is_zero_for_the_style_itself():
    feats, _ = _style_case()
    targets = {k: gram_matrix(feats[k]) for k in ("a", "b")}
    assert style_loss(feats, targets).item() == 0.0


def test_style_loss_errors():
    feats, targets = _style_case()
    with pytest.raises(ValueError, match="at least one"):
        style_loss(feats, {})
    with pytest.raises(KeyError):
        style_loss({"a": feats["a"]}, targets)  # features lack layer "b"
    with pytest.raises(KeyError):
        style_loss(feats, targets, {"a": 1.0})  # weights lack layer "b"


# ---------------------------------------------------------------------------------------------
# total_variation
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(2, 3, 5, 6), (2, 3, 7), (1, 2, 3, 4, 2)])
def test_total_variation_of_constant_is_zero(shape):
    out = total_variation(torch.full(shape, 0.37))
    assert out.shape == () and out.dtype == torch.float32
    assert out.item() == 0.0


@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (2, 2, 6), (1, 1, 1, 5), (1, 2, 3, 2, 2)])
def test_total_variation_equals_naive_loop(shape, device, dtype):
    x = randn(*shape, seed=1).to(device, dtype)
    assert total_variation(x).item() == pytest.approx(naive_tv(x.cpu()), rel=1e-5)


def test_total_variation_known_values():
    # Ramp along W with slope a: every W-difference is a, H-differences are 0 -> a^2.
    a = 0.5
    ramp = (a * torch.arange(6.0)).expand(1, 2, 4, 6)
    assert total_variation(ramp).item() == pytest.approx(a * a, rel=1e-6)
    # +-1 checkerboard: every neighbour difference is 2 in both dims -> 4 + 4.
    i, j = torch.meshgrid(torch.arange(4), torch.arange(5), indexing="ij")
    board = ((-1.0) ** (i + j)).expand(1, 1, 4, 5)
    assert total_variation(board).item() == pytest.approx(8.0, rel=1e-6)


def test_total_variation_batch_is_mean_of_items(device):
    assert_batch_equals_items(total_variation, randn(3, 2, 5, 5, seed=2).to(device))


def test_total_variation_gradient_matches_reference():
    x = randn(1, 2, 4, 5, seed=3).requires_grad_(True)
    (grad,) = torch.autograd.grad(total_variation(x), x)
    x64 = x.detach().double().requires_grad_(True)
    ref = sum(torch.diff(x64, dim=d).pow(2).mean() for d in (2, 3))
    (expected,) = torch.autograd.grad(ref, x64)
    torch.testing.assert_close(grad.double(), expected, **FP32)


# ---------------------------------------------------------------------------------------------
# gradcheck in float64 (CONVENTIONS.md) -- fails today because of the fp32 cast
# ---------------------------------------------------------------------------------------------

def _gradcheck_cases():
    t4 = randn(1, 2, 3, 4, seed=11, dtype=torch.float64)
    gt = gram_matrix(randn(1, 2, 3, 4, seed=12)).double()
    return {
        "gram_matrix": (gram_matrix, ()),
        "content_loss": (lambda x: content_loss(x, t4), ()),
        "gram_loss": (lambda x: gram_loss(gram_matrix(x), gt), ()),
        "style_loss": (lambda x: style_loss({"l": x}, {"l": gt}, {"l": 0.5}), ()),
        "total_variation": (total_variation, ()),
    }


@pytest.mark.parametrize("name", ["gram_matrix", "content_loss", "gram_loss", "style_loss", "total_variation"])
def test_gradcheck_float64(name):
    fn, _ = _gradcheck_cases()[name]
    x = randn(1, 2, 3, 4, seed=13, dtype=torch.float64).requires_grad_(True)
    assert torch.autograd.gradcheck(fn, (x,), eps=1e-6, atol=1e-5, rtol=1e-3)


# ---------------------------------------------------------------------------------------------
# blend_grams
# ---------------------------------------------------------------------------------------------

def _grams(n, seed=0):
    return [{"a": gram_matrix(randn(1, 3, 4, 4, seed=seed + i)), "b": gram_matrix(randn(1, 2, 5, seed=seed + 10 + i))}
            for i in range(n)]


def test_blend_grams_weights_are_normalised():
    g = _grams(2)
    small, large = blend_grams(g, [0.7, 0.3]), blend_grams(g, [7, 3])
    assert set(small) == {"a", "b"}
    for k in small:
        torch.testing.assert_close(small[k], large[k], rtol=1e-6, atol=0)
        torch.testing.assert_close(small[k], 0.7 * g[0][k] + 0.3 * g[1][k], rtol=1e-6, atol=1e-8)


def test_blend_grams_default_is_mean():
    g = _grams(3)
    out = blend_grams(g)
    for k in out:
        torch.testing.assert_close(out[k], (g[0][k] + g[1][k] + g[2][k]) / 3, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("weights", [None, [1.0], [5.0]])
def test_blend_grams_single_input_is_identity(weights):
    g = _grams(1)
    before = {k: v.clone() for k, v in g[0].items()}
    out = blend_grams(g, weights)
    for k in g[0]:
        torch.testing.assert_close(out[k], before[k], rtol=1e-7, atol=0)
        assert torch.equal(g[0][k], before[k])  # inputs untouched


def test_blend_grams_zero_weight_drops_an_input():
    g = _grams(2)
    out = blend_grams(g, [0.0, 2.0])
    for k in out:
        torch.testing.assert_close(out[k], g[1][k], rtol=1e-7, atol=0)


@pytest.mark.parametrize("weights", [[1.0], [1.0, 2.0, 3.0], [1.0, -0.5], [0.0, 0.0]])
def test_blend_grams_bad_weights_raise(weights):
    with pytest.raises(ValueError):
        blend_grams(_grams(2), weights)


def test_blend_grams_no_inputs_raises():
    with pytest.raises(ValueError, match="at least one"):
        blend_grams([])


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_blend_grams_non_finite_weight_raises(bad):
    with pytest.raises(ValueError):
        blend_grams(_grams(2), [1.0, bad])


# ---------------------------------------------------------------------------------------------
# Devices that exist
# ---------------------------------------------------------------------------------------------

DEVICES = [
    "cpu",
    pytest.param("cuda", marks=[pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]),
]


@pytest.mark.parametrize("device", DEVICES)
def test_losses_on_device_match_float64_reference(device):
    from nst_core import precision_context

    f = randn(2, 3, 6, 5, seed=21).to(device)
    t = randn(2, 3, 6, 5, seed=22).to(device)
    with precision_context("fp32", torch.device(device)):  # TF32 off: full fp32 products on CUDA too
        g = gram_matrix(f)
        values = [content_loss(f, t), gram_loss(g, gram_matrix(t)), total_variation(f)]
    assert g.device.type == device and all(v.device.type == device for v in values)
    torch.testing.assert_close(g.cpu().double(), naive_gram(f.cpu()), **FP32)
    expected = [naive_content(f.cpu(), t.cpu()), naive_gram_loss(naive_gram(f.cpu()), naive_gram(t.cpu())), naive_tv(f.cpu())]
    for v, e in zip(values, expected):
        assert v.item() == pytest.approx(e, rel=1e-5)


def test_gram_accumulates_in_fp32_under_bf16_autocast():
    """Autocast would run a plain bmm in bf16 (relative error ~1e-2); the Gram must stay fp32-exact."""
    x = torch.randn(2, 8, 300, generator=torch.Generator().manual_seed(0))
    ref = gram_matrix(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        g = gram_matrix(x)
    assert g.dtype == torch.float32
    torch.testing.assert_close(g, ref, rtol=1e-5, atol=1e-6)


def test_gram_matrix_reads_channels_last_maps_without_changing_the_result():
    gen = torch.Generator().manual_seed(4)
    x = torch.randn(2, 8, 6, 5, generator=gen, dtype=torch.float64)
    y = x.contiguous(memory_format=torch.channels_last).requires_grad_(True)
    x.requires_grad_(True)
    assert not y.is_contiguous() and y.is_contiguous(memory_format=torch.channels_last)
    gx, gy = gram_matrix(x), gram_matrix(y)
    torch.testing.assert_close(gy, gx, rtol=1e-12, atol=1e-12)
    w = torch.randn(gx.shape, generator=gen, dtype=torch.float64)
    (dx,) = torch.autograd.grad((gx * w).sum(), x)
    (dy,) = torch.autograd.grad((gy * w).sum(), y)
    torch.testing.assert_close(dy, dx, rtol=1e-12, atol=1e-12)
    assert torch.autograd.gradcheck(lambda t: gram_matrix(t.contiguous(memory_format=torch.channels_last)),
                                    (x[:1, :3, :3, :2].detach().clone().requires_grad_(True),))
