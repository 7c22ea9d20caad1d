"""Tests for nst_image.backbones: layer naming against torchvision's VGG, and the frozen feature extractor.

torchvision's own VGG ``features`` (``torchvision.models.vgg.make_layers`` on its configs "E"/"D", exactly what
``vgg19()``/``vgg16()`` build, without the 120M-parameter classifier that takes seconds to initialise; nothing
is downloaded) is the reference for the layer order and, with the same random weights copied in, for the
activations.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.vgg import cfgs, make_layers

from nst_core import gram_matrix
from nst_image.backbones import (
    CAFFE_MEAN_BGR,
    TORCHVISION_MEAN,
    TORCHVISION_STD,
    VGGFeatures,
    check_layers,
    conv_names,
    layer_names,
    torchvision_index,
)

SIZE = 32  # 32x32 survives the five 2x2 poolings (pool5 is 1x1) and keeps every test fast.


def torchvision_features(arch: str, seed: int) -> nn.Sequential:
    """torchvision's VGG ``features`` with seeded random weights.

    Kaiming (fan_out) init as torchvision's VGG uses, so activations keep their scale down to block 5, but
    non-zero biases: torchvision zeroes them, which would hide a bias mapped to the wrong layer.
    """
    torch.manual_seed(seed)
    features = make_layers(cfgs[{"vgg19": "E", "vgg16": "D"}[arch]])
    for module in features:
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            nn.init.uniform_(module.bias, -0.1, 0.1)
    return features.eval()


@pytest.fixture(scope="module")
def tv_features() -> dict[str, nn.Sequential]:
    return {"vgg19": torchvision_features("vgg19", 0), "vgg16": torchvision_features("vgg16", 1)}


@pytest.fixture(scope="module")
def extractor19() -> VGGFeatures:
    torch.manual_seed(1)
    return VGGFeatures("vgg19")


def image(batch: int = 2, seed: int = 0) -> torch.Tensor:
    return torch.rand(batch, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(seed))


def named_from_torchvision(features: nn.Sequential, arch: str) -> dict[str, torch.Tensor]:
    index = torchvision_index(arch)
    return {f"{name}.{part}": getattr(features[index[name]], part).detach().clone()
            for name in conv_names(arch) for part in ("weight", "bias")}


def run_torchvision(features: nn.Sequential, x: torch.Tensor, upto: int) -> list[torch.Tensor]:
    """Every intermediate output of torchvision's features[0..upto]."""
    outs, h = [], x
    for module in features[: upto + 1]:
        h = module(h)
        outs.append(h)
    return outs


# --------------------------------------------------------------------------- layer names

@pytest.mark.parametrize("arch, convs", [("vgg19", 16), ("vgg16", 13)])
def test_layer_counts(arch, convs):
    names = layer_names(arch)
    assert sum(n.startswith("conv") for n in names) == convs
    assert sum(n.startswith("relu") for n in names) == convs
    assert sum(n.startswith("pool") for n in names) == 5
    assert len(names) == len(set(names)) == 2 * convs + 5
    assert conv_names(arch) == [n for n in names if n.startswith("conv")]


@pytest.mark.parametrize("arch", ["vgg19", "vgg16"])
def test_layer_order(arch):
    names = layer_names(arch)
    assert names[:7] == ["conv1_1", "relu1_1", "conv1_2", "relu1_2", "pool1", "conv2_1", "relu2_1"]
    assert names[-1] == "pool5"
    last = {"vgg19": "relu5_4", "vgg16": "relu5_3"}[arch]
    assert names[-2] == last
    # Every relu directly follows the conv of the same name.
    for i, name in enumerate(names):
        if name.startswith("relu"):
            assert names[i - 1] == "conv" + name[4:]


@pytest.mark.parametrize("arch", ["vgg19", "vgg16"])
def test_torchvision_index_lands_on_matching_modules(arch, tv_features):
    features = tv_features[arch]
    index = torchvision_index(arch)
    assert len(index) == len(features)
    kinds = {"conv": nn.Conv2d, "relu": nn.ReLU, "pool": nn.MaxPool2d}
    for name, i in index.items():
        assert isinstance(features[i], kinds[name[:4]]), (name, i, features[i])


def test_torchvision_index_known_values():
    index19, index16 = torchvision_index("vgg19"), torchvision_index("vgg16")
    # Counted by hand from torchvision's cfg "E" (vgg19) and "D" (vgg16).
    assert index19["relu4_2"] == 22
    assert index19["conv5_1"] == 28
    assert index19["relu5_1"] == 29
    assert index19["pool5"] == 36
    assert index16["relu4_2"] == 20
    assert index16["pool5"] == 30


def test_conv_channels_match_torchvision(tv_features):
    ours = VGGFeatures("vgg19")
    tv = tv_features["vgg19"]
    index = torchvision_index("vgg19")
    for name, module in zip(ours.names, ours.layers):
        if name.startswith("conv"):
            assert module.weight.shape == tv[index[name]].weight.shape, name


# --------------------------------------------------------------------------- extractor

def test_returns_exactly_requested_layers_with_shapes(extractor19):
    x = image()
    wanted = ["relu3_1", "conv1_1", "pool5", "relu2_2"]
    out = extractor19(x, wanted)
    assert set(out) == set(wanted)
    assert out["conv1_1"].shape == (2, 64, 32, 32)
    assert out["relu2_2"].shape == (2, 128, 16, 16)
    assert out["relu3_1"].shape == (2, 256, 8, 8)
    assert out["pool5"].shape == (2, 512, 1, 1)
    assert all(t.dtype == x.dtype for t in out.values())


def test_duplicate_layers_requested_once(extractor19):
    out = extractor19(image(1), ["relu1_1", "relu1_1"])
    assert list(out) == ["relu1_1"]


@pytest.mark.parametrize("deepest", ["relu2_1", "conv1_1", "pool3"])
def test_stops_at_deepest_requested_layer(extractor19, deepest):
    called: list[int] = []
    handles = [m.register_forward_hook(lambda mod, inp, out, i=i: called.append(i))
               for i, m in enumerate(extractor19.layers)]
    try:
        extractor19(image(1), ["conv1_1", deepest])
    finally:
        for h in handles:
            h.remove()
    last = extractor19.names.index(deepest)
    assert called == list(range(last + 1))


def test_frozen_but_gradients_reach_input(extractor19):
    assert not any(p.requires_grad for p in extractor19.parameters())
    assert not extractor19.training
    x = image(1).requires_grad_(True)
    out = extractor19(x, ["relu3_1", "relu1_1"])
    (out["relu3_1"].square().mean() + out["relu1_1"].mean()).backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    assert all(p.grad is None for p in extractor19.parameters())


def test_does_not_modify_input(extractor19):
    x = image(1)
    before = x.clone()
    extractor19(x, ["relu2_1"])
    assert torch.equal(x, before)


def test_batch_equals_items(extractor19):
    x = image(3)
    batch = extractor19(x, ["relu2_1", "relu4_1"])
    for i in range(3):
        single = extractor19(x[i: i + 1], ["relu2_1", "relu4_1"])
        for name in batch:
            torch.testing.assert_close(batch[name][i: i + 1], single[name], atol=1e-5, rtol=1e-5)


def test_avg_pooling_variant():
    ext = VGGFeatures("vgg19", pooling="avg")
    pools = [m for n, m in zip(ext.names, ext.layers) if n.startswith("pool")]
    assert len(pools) == 5 and all(isinstance(m, nn.AvgPool2d) for m in pools)
    assert not any(isinstance(m, nn.MaxPool2d) for m in ext.layers)
    out = ext(image(1), ["relu1_2", "pool1"])
    torch.testing.assert_close(out["pool1"], F.avg_pool2d(out["relu1_2"], 2, 2))
    max_ext = VGGFeatures("vgg19")
    assert sum(isinstance(m, nn.MaxPool2d) for m in max_ext.layers) == 5


@pytest.mark.parametrize("arch, bad", [("vgg19", "relu6_1"), ("vgg19", "relu_4_2"), ("vgg16", "relu5_4"),
                                       ("vgg16", "conv3_4")])
def test_unknown_layer_raises_naming_valid_names(arch, bad):
    ext = VGGFeatures(arch)
    with pytest.raises(ValueError) as info:
        ext(image(1), ["relu1_1", bad])
    message = str(info.value)
    assert bad in message
    assert "relu1_1" in message
    last = {"vgg19": "relu5_4", "vgg16": "relu5_3"}[arch]
    assert last in message
    with pytest.raises(ValueError):
        check_layers(arch, [bad])
    check_layers(arch, layer_names(arch))  # every real name passes


@pytest.mark.parametrize("kwargs", [{"arch": "vgg11"}, {"pooling": "min"}, {"preprocessing": "bgr"}])
def test_bad_constructor_arguments(kwargs):
    with pytest.raises(ValueError):
        VGGFeatures(**kwargs)


@pytest.mark.parametrize("arch", ["vgg19", "vgg16"])
def test_matches_torchvision_with_same_weights(arch, tv_features):
    features = tv_features[arch]
    ext = VGGFeatures(arch, state_dict=named_from_torchvision(features, arch))
    assert not any(p.requires_grad for p in ext.parameters())
    x = image(2, seed=3)
    layers = ["relu1_1", "pool2", "relu3_1", "relu4_2"]
    index = torchvision_index(arch)
    mean = torch.tensor(TORCHVISION_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(TORCHVISION_STD).view(1, 3, 1, 1)
    with torch.no_grad():
        out = ext(x, layers)
        ref = run_torchvision(features, (x - mean) / std, max(index[n] for n in layers))
    for name in layers:
        torch.testing.assert_close(out[name], ref[index[name]], atol=1e-5, rtol=1e-5)


def test_torchvision_preprocess():
    ext = VGGFeatures("vgg16")
    x = image(1)
    expected = (x - torch.tensor(TORCHVISION_MEAN).view(1, 3, 1, 1)) / torch.tensor(TORCHVISION_STD).view(1, 3, 1, 1)
    torch.testing.assert_close(ext.preprocess(x), expected)


def test_caffe_preprocess_is_bgr_255_minus_bgr_mean():
    ext = VGGFeatures("vgg16", preprocessing="caffe")
    x = image(1)
    expected = x.flip(1) * 255.0 - torch.tensor(CAFFE_MEAN_BGR).view(1, 3, 1, 1)
    torch.testing.assert_close(ext.preprocess(x), expected, atol=1e-3, rtol=1e-5)


def test_channels_last_backbone_gives_the_same_features_and_gradient():
    torch.manual_seed(0)
    ext = VGGFeatures("vgg16")
    x = torch.rand(1, 3, 40, 56, requires_grad=True)
    layers = ["relu1_1", "relu2_1", "relu3_1", "relu4_2"]

    def run():
        feats = ext(x, layers)
        loss = sum(gram_matrix(f).square().sum() + f.square().mean() for f in feats.values())
        (g,) = torch.autograd.grad(loss, x)
        return feats, loss.detach(), g

    f0, l0, g0 = run()
    ext.use_channels_last()
    f1, l1, g1 = run()
    assert f1["relu1_1"].is_contiguous(memory_format=torch.channels_last) and not f1["relu1_1"].is_contiguous()
    assert ext.layers[0].weight.is_contiguous(memory_format=torch.channels_last)
    for name in layers:
        torch.testing.assert_close(f1[name], f0[name], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(l1, l0, rtol=1e-5, atol=0)
    torch.testing.assert_close(g1, g0, rtol=1e-4, atol=1e-4 * float(g0.abs().max()))
    ext.use_channels_last(False)
    assert not ext.channels_last and ext.layers[0].weight.is_contiguous()
