"""Tests for nst_audio.extractors: the random CNNs over (B, F, T) spectrograms and the image adapter.

Signals are synthesised here with NumPy and analysed with librosa; nothing is downloaded. Filter counts
are small except in one test of the default (4096-filter) size.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from helpers import assert_batch_equals_items
from nst_audio.extractors import (DEFAULT_IMAGE_SCALE, EXTRACTORS, MultiRandomCNN, RandomCNN, SpectrogramAsImage,
                                  make_extractor, soft_clamp, ulyanov_std)
from nst_core import gram_loss, gram_matrix, style_targets


@pytest.fixture(autouse=True)
def single_thread():
    """One intra-op thread, restored afterwards: with two, every small op ends in a thread barrier that
    makes these tests 10-100x slower whenever another process is busy on the same cores (gradcheck
    below: 10 s instead of 0.04 s)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def randn(*shape, seed=0, dtype=torch.float32):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def log_spec(wave: np.ndarray, *, n_fft: int, hop_length: int) -> torch.Tensor:
    """(1, F, T) log1p-magnitude spectrogram of a mono wave (librosa's STFT conventions: periodic Hann,
    centred with zero padding, unnormalised)."""
    x = torch.from_numpy(np.asarray(wave, dtype=np.float32))[None]
    spec = torch.stft(x, n_fft, hop_length, window=torch.hann_window(n_fft), center=True, pad_mode="constant",
                      return_complex=True)
    return torch.log1p(spec.abs())


# ---------------------------------------------------------------------------------------------
# RandomCNN
# ---------------------------------------------------------------------------------------------

def test_random_cnn_shapes_and_layers():
    net = RandomCNN(65, filters=16, kernel_size=11)
    x = randn(2, 65, 40).abs()
    out = net(x, ["conv1", "relu1"])
    assert list(out) == ["conv1", "relu1"]
    assert out["conv1"].shape == out["relu1"].shape == (2, 16, 40)
    torch.testing.assert_close(out["relu1"], torch.relu(out["conv1"]))
    torch.testing.assert_close(out["conv1"], net.conv(x))  # nn.Conv1d with padding="same"
    assert list(net(x, ["relu1"])) == ["relu1"]
    assert net.layer_names == ("conv1", "relu1")
    assert net.default_content_layers == net.default_style_layers == ("relu1",)
    # 'same' length for even kernels too
    assert RandomCNN(65, filters=4, kernel_size=4)(x, ["relu1"])["relu1"].shape == (2, 4, 40)


def test_random_cnn_default_size_is_ulyanovs():
    net = RandomCNN(129)
    assert (net.filters, net.kernel_size) == (4096, 11)
    assert net.conv.weight.shape == (4096, 129, 11)
    assert net(randn(1, 129, 20).abs(), ["relu1"])["relu1"].shape == (1, 4096, 20)


def test_random_cnn_batch_equals_items(device, dtype):
    net = RandomCNN(33, filters=8, kernel_size=5).to(device)
    x = randn(3, 33, 17).to(device, dtype)
    assert net(x, ["relu1"])["relu1"].dtype == dtype  # the weights follow the input's dtype
    assert_batch_equals_items(lambda t: net(t, ["conv1"])["conv1"], x)


def test_random_cnn_seeded_weights():
    rng_state = torch.get_rng_state()
    a, b, c = (RandomCNN(33, filters=8, seed=s) for s in (7, 7, 8))
    assert torch.equal(torch.get_rng_state(), rng_state), "weights must come from a private generator"
    assert torch.equal(a.conv.weight, b.conv.weight)
    assert not torch.allclose(a.conv.weight, c.conv.weight)


def test_random_cnn_is_frozen_and_passes_gradients():
    net = RandomCNN(17, filters=6, kernel_size=3)
    assert not net.training
    assert all(not p.requires_grad for p in net.parameters())
    x = randn(1, 17, 9).abs().requires_grad_()
    net(x, ["relu1"])["relu1"].pow(2).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert net.conv.weight.grad is None
    # float64 input: the float32 weights follow the input's dtype, so gradcheck works.
    x64 = randn(1, 17, 6, dtype=torch.float64).requires_grad_()
    assert torch.autograd.gradcheck(lambda t: net(t, ["conv1"])["conv1"], (x64,))


def test_random_cnn_weight_statistics_follow_ulyanov():
    n_freq, filters, k = 257, 512, 11
    net = RandomCNN(n_freq, filters=filters, kernel_size=k, seed=3)
    expected = math.sqrt(2) * math.sqrt(2 / ((n_freq + filters) * k))
    assert ulyanov_std(n_freq, filters, k) == pytest.approx(expected)
    w = net.conv.weight.double()
    # 1.4 M samples: measured std 0.021742 vs the formula's 0.021746 (0.02 %).
    assert w.std().item() == pytest.approx(expected, rel=0.01)
    assert abs(w.mean().item()) < 0.01 * expected
    assert torch.count_nonzero(net.conv.bias) == 0


def test_random_cnn_bad_inputs():
    net = RandomCNN(65, filters=4)
    with pytest.raises(ValueError, match=r"65.*64|64.*65"):
        net(randn(1, 64, 10), ["relu1"])
    with pytest.raises(ValueError, match="conv1.*relu1"):
        net(randn(1, 65, 10), ["relu2"])
    with pytest.raises(ValueError, match="at least one layer"):
        net(randn(1, 65, 10), [])
    with pytest.raises(ValueError, match=r"\(B, F, T\)"):
        net(randn(65, 10), ["relu1"])
    with pytest.raises(ValueError, match="filters"):
        RandomCNN(65, filters=0)


def test_random_cnn_works_with_the_core_objective():
    net = RandomCNN(33, filters=8)
    spec = randn(1, 33, 20).abs()
    grams = style_targets(net, [spec], net.default_style_layers)
    assert grams["relu1"].shape == (1, 8, 8)


# ---------------------------------------------------------------------------------------------
# MultiRandomCNN
# ---------------------------------------------------------------------------------------------

def test_multi_random_cnn_shapes_names_and_kernels():
    net = MultiRandomCNN(65, filters=40)  # default widths (3, 11, 31, 101), 10 filters per branch
    assert net.widths == (3, 11, 31, 101)
    assert net.layer_names == ("conv_w3", "relu_w3", "conv_w11", "relu_w11", "conv_w31", "relu_w31",
                               "conv_w101", "relu_w101")
    assert net.default_style_layers == ("relu_w3", "relu_w11", "relu_w31", "relu_w101")
    assert net.default_content_layers == ("relu_w11",)
    # wide branches: 11 taps dilated to span the width exactly
    assert net.kernels == {3: (10, 3, 1), 11: (10, 11, 1), 31: (10, 11, 3), 101: (10, 11, 10)}
    assert net.branches["w101"].dilation == (10,)
    x = randn(2, 65, 50).abs()
    out = net(x, net.layer_names)
    assert all(v.shape == (2, 10, 50) for v in out.values())
    assert list(net(x, ["relu_w31"])) == ["relu_w31"]
    assert all(not p.requires_grad for p in net.parameters()) and not net.training
    # default total is Ulyanov's 4096, split over the branches; an uneven split goes to the first ones
    assert sum(n for n, _, _ in MultiRandomCNN(9).kernels.values()) == 4096
    assert [n for n, _, _ in MultiRandomCNN(9, filters=10).kernels.values()] == [3, 3, 2, 2]


def test_multi_random_cnn_seeds_and_errors():
    a, b, c = (MultiRandomCNN(17, filters=8, widths=(3, 21), seed=s) for s in (1, 1, 2))
    assert torch.equal(a.branches["w21"].weight, b.branches["w21"].weight)
    assert not torch.allclose(a.branches["w21"].weight, c.branches["w21"].weight)
    with pytest.raises(ValueError, match="41 or 51"):
        MultiRandomCNN(17, widths=(3, 50))
    with pytest.raises(ValueError, match="distinct"):
        MultiRandomCNN(17, widths=(3, 3))
    with pytest.raises(ValueError, match="relu_w3"):
        a(randn(1, 17, 30), ["relu1"])
    with pytest.raises(ValueError, match="17"):
        a(randn(1, 16, 30), ["relu_w3"])


def test_multi_random_cnn_long_branch_hears_rhythm():
    """A 440 Hz tone gated on for half of every 0.1 s vs half of every 0.5 s (same energy, same
    spectrum): the long, dilated branch's Gram changes more than the short one's, while for a pitch
    change with the same rhythm it is the other way round.

    Measured (2 s, 1024 filters in all, seed 0): relative Gram distance for the rhythm change
    w3 0.25, w11 0.28, w31 0.60, w101 0.66, so w101 / w3 = 2.6 and w31 / w3 = 2.4 (seeds 1-5: w101 / w3
    2.5, 2.0, 2.8, 2.5, 2.9); for the pitch change 440 -> 523 Hz w3 1.21, w101 0.88, w101 / w3 = 0.72
    (seeds 1-5: 0.75, 1.01, 0.70, 0.84, 0.56).
    """
    sr, n_fft, hop = 16000, 512, 128  # 125 frames per second: the w101 branch spans 0.8 s, w3 24 ms
    t = np.arange(2 * sr) / sr

    def gated(freq, period):
        env = ((t % period) / period < 0.5).astype(float)
        ramp = np.hanning(2 * int(0.005 * sr) + 1)  # 5 ms ramps: no clicks that a short filter would hear
        env = np.convolve(env, ramp / ramp.sum(), mode="same")
        return log_spec(np.sin(2 * np.pi * freq * t) * env, n_fft=n_fft, hop_length=hop)

    net = MultiRandomCNN(n_fft // 2 + 1, filters=1024, seed=0)
    with torch.no_grad():
        feats = {name: net(x, net.default_style_layers)
                 for name, x in [("fast", gated(440, 0.1)), ("slow", gated(440, 0.5)), ("high", gated(523.25, 0.5))]}

    def distances(a, b):
        return {w: gram_loss(gram_matrix(feats[a][f"relu_w{w}"]), gram_matrix(feats[b][f"relu_w{w}"])).item()
                for w in net.widths}

    rhythm, pitch = distances("fast", "slow"), distances("slow", "high")
    assert rhythm[101] > 2.0 * rhythm[3], rhythm
    assert rhythm[31] > 1.5 * rhythm[3], rhythm
    assert rhythm[101] / rhythm[3] > 2.0 * pitch[101] / pitch[3], (rhythm, pitch)


# ---------------------------------------------------------------------------------------------
# SpectrogramAsImage
# ---------------------------------------------------------------------------------------------

class TinyImageBackbone(nn.Module):
    """A fake 2-D backbone: ``conv1_1 -> relu1_1 -> pool1 -> conv2_1 -> relu2_1`` on RGB [0, 1] images.

    Records the last image it saw so the tests can look at what the adapter feeds it.
    """

    names = ["conv1_1", "relu1_1", "pool1", "conv2_1", "relu2_1"]

    def __init__(self):
        super().__init__()
        with torch.random.fork_rng():  # seeded default init without touching the global RNG
            torch.manual_seed(0)
            self.ops = nn.ModuleList([nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AvgPool2d(2),
                                      nn.Conv2d(4, 5, 3, padding=1), nn.ReLU()])
        self.requires_grad_(False)
        self.seen: torch.Tensor | None = None

    def forward(self, x, layers):
        self.seen = x
        out, h = {}, x
        deepest = max(self.names.index(n) for n in layers)
        for name, op in zip(self.names[:deepest + 1], self.ops):
            h = op(h)
            if name in layers:
                out[name] = h
        return out


def test_spectrogram_as_image_feeds_an_rgb_image_with_low_frequencies_at_the_bottom():
    backbone = TinyImageBackbone()
    adapter = SpectrogramAsImage(backbone)
    assert adapter.scale == DEFAULT_IMAGE_SCALE
    x = torch.zeros(2, 16, 12)
    x[:, 0] = 6.0  # loud lowest bin, as log1p of a full-scale tone
    x[:, 5] = 20.0  # far above the scale: softly clamped, not wrapped or clipped to NaN
    out = adapter(x, ["relu1_1", "relu2_1"])
    img = backbone.seen
    assert img.shape == (2, 3, 16, 12)
    assert out["relu1_1"].shape == (2, 4, 16, 12) and out["relu2_1"].shape == (2, 5, 8, 6)
    assert img.min() >= 0 and img.max() <= 1
    assert torch.equal(img[:, 0], img[:, 1]) and torch.equal(img[:, 0], img[:, 2])  # grey
    rows = img[0, 0, :, 0]
    assert rows.argmax() == 15 - 5 and rows[15] == pytest.approx(6.0 / DEFAULT_IMAGE_SCALE, abs=0.01)
    assert rows[:10].max() < 0.04  # silence stays near black (soft clamp offset log(2)/20 = 0.035)
    assert adapter.layer_names == tuple(TinyImageBackbone.names)
    assert adapter.default_style_layers == ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
    assert adapter.default_content_layers == ("relu4_2",)
    # (B, 1, F, T) is read the same way
    torch.testing.assert_close(adapter(x[:, None], ["relu1_1"])["relu1_1"], out["relu1_1"])


def test_spectrogram_as_image_scale_and_gradients():
    backbone = TinyImageBackbone()
    x = torch.full((1, 8, 8), 2.0)
    SpectrogramAsImage(backbone, scale=4.0)(x, ["relu1_1"])
    assert backbone.seen.mean().item() == pytest.approx(0.5, abs=0.01)
    # bins above the range still get a gradient (hard clamping would stop them)
    x = torch.full((1, 8, 8), 12.0, requires_grad=True)
    SpectrogramAsImage(backbone)(x, ["relu2_1"])["relu2_1"].sum().backward()
    assert x.grad.abs().min() > 0
    for bad in (0.0, -1.0, float("inf")):
        with pytest.raises(ValueError, match="scale"):
            SpectrogramAsImage(backbone, scale=bad)
    with pytest.raises(ValueError, match="B, F, T"):
        SpectrogramAsImage(backbone)(torch.zeros(8, 8), ["relu1_1"])
    z = torch.linspace(-1, 2, 31)
    assert soft_clamp(z).min() >= 0 and soft_clamp(z).max() <= 1
    torch.testing.assert_close(soft_clamp(z), z.clamp(0, 1), atol=0.035, rtol=0)


# ---------------------------------------------------------------------------------------------
# make_extractor
# ---------------------------------------------------------------------------------------------

def test_make_extractor_names_and_errors():
    assert EXTRACTORS == ("random-cnn", "multi-random-cnn", "vgg")
    r = make_extractor("random-cnn", 33, seed=5, filters=8, kernel_size=5)
    assert isinstance(r, RandomCNN) and (r.n_freq, r.filters, r.kernel_size, r.seed) == (33, 8, 5, 5)
    torch.testing.assert_close(r.conv.weight, RandomCNN(33, filters=8, kernel_size=5, seed=5).conv.weight)
    m = make_extractor("multi-random-cnn", 33, filters=8, kernel_size=11)
    assert isinstance(m, MultiRandomCNN) and m.filters == 8
    backbone = TinyImageBackbone()
    v = make_extractor("vgg", 33, backbone=backbone, scale=5.0)
    assert isinstance(v, SpectrogramAsImage) and v.backbone is backbone and v.scale == 5.0
    with pytest.raises(ValueError, match="backbone"):
        make_extractor("vgg", 33)
    with pytest.raises(ValueError, match="takes no backbone"):
        make_extractor("random-cnn", 33, backbone=backbone)
    with pytest.raises(ValueError, match="random-cnn, multi-random-cnn, vgg"):
        make_extractor("resnet", 33)
    assert "4096" in make_extractor("random-cnn", 9).description
