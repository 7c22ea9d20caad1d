"""Feature extractors that read a log-magnitude spectrogram ``(B, F, T)``.

Each one is a frozen ``nn.Module`` following :class:`nst_core.FeatureExtractor`:
``extractor(x, layers) -> {layer: activations}``, computing only what was asked for.

* :class:`RandomCNN` -- Ulyanov & Lebedev (2016): one wide 1-D convolution over time with the
  frequency bins as input channels, random fixed weights, then ReLU.
* :class:`MultiRandomCNN` -- several such branches with different (dilated) kernel widths, so the
  Gram matrices also see longer-time structure such as rhythm.
* :class:`SpectrogramAsImage` -- shows the spectrogram to any 2-D image backbone (e.g. VGG-19, as
  compared by Grinstein et al., 2018). The backbone is passed in; this module never imports
  ``nst_image``.

:func:`make_extractor` builds one of them by name.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nst_core.registry import register_extractor

__all__ = ["EXTRACTORS", "DEFAULT_IMAGE_SCALE", "MultiRandomCNN", "RandomCNN", "SpectrogramAsImage",
           "make_extractor", "soft_clamp", "spectrogram_to_image", "ulyanov_std"]

#: Names accepted by :func:`make_extractor`.
EXTRACTORS = ("random-cnn", "multi-random-cnn", "vgg")

#: Default divisor that maps a log1p-magnitude spectrogram into an image's [0, 1] range. A full-scale
#: sine under a Hann-windowed STFT without normalisation peaks at |X| = n_fft / 4, i.e. log1p = 6.2 for
#: n_fft = 2048 and 6.9 for n_fft = 4096, so 8.0 keeps typical music below 1 with some headroom.
DEFAULT_IMAGE_SCALE = 8.0


def ulyanov_std(in_channels: int, filters: int, kernel_size: int) -> float:
    """Standard deviation of the random weights in Ulyanov & Lebedev's audio style transfer.

    ``sqrt(2) * sqrt(2 / ((in_channels + filters) * kernel_size))``: a Glorot-style fan average with a
    ReLU gain of sqrt(2), as in github.com/DmitryUlyanov/neural-style-audio-tf (``std = np.sqrt(2) *
    np.sqrt(2.0 / ((N_CHANNELS + N_FILTERS) * 11))``), with zero bias.
    """
    return math.sqrt(2.0) * math.sqrt(2.0 / ((in_channels + filters) * kernel_size))


def _check_layers(layers: Sequence[str], valid: Sequence[str], owner: str) -> list[str]:
    if isinstance(layers, str):
        layers = [layers]
    layers = list(dict.fromkeys(layers))
    if not layers:
        raise ValueError(f"{owner}: ask for at least one layer; valid names are {', '.join(valid)}")
    bad = [name for name in layers if name not in valid]
    if bad:
        raise ValueError(f"{owner}: unknown layer(s) {', '.join(map(repr, bad))}; valid names are {', '.join(valid)}")
    return layers


def _check_spectrogram(x: Tensor, n_freq: int, owner: str) -> None:
    if not isinstance(x, Tensor) or x.dim() != 3:
        shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f"{owner} expects a (B, F, T) spectrogram, got {shape}")
    if x.shape[1] != n_freq:
        raise ValueError(f"{owner} was built for {n_freq} frequency bins but the input has {x.shape[1]} "
                         f"(shape {tuple(x.shape)}); build it with n_freq={x.shape[1]} or use the same n_fft")


def _random_conv(n_freq: int, filters: int, taps: int, dilation: int, generator: torch.Generator) -> nn.Conv1d:
    # skip_init: nn.Conv1d's own Kaiming init would draw from (and advance) the global RNG.
    conv = nn.utils.skip_init(nn.Conv1d, n_freq, filters, taps, dilation=dilation, padding="same")
    with torch.no_grad():
        std = ulyanov_std(n_freq, filters, taps)
        conv.weight.copy_(torch.randn(conv.weight.shape, generator=generator) * std)
        conv.bias.zero_()
    return conv


def _conv(conv: nn.Conv1d, x: Tensor) -> Tensor:
    """The convolution with 'same' length T, for odd and even spans alike (the extra frame of an even
    span padded on the right, as PyTorch's ``padding="same"`` does, without its even-kernel warning)."""
    # The weights follow the input's dtype, so float64 gradcheck and half inputs work on a float32 module.
    w, b = conv.weight, conv.bias
    if w.dtype != x.dtype:
        w, b = w.to(x.dtype), b.to(x.dtype)
    total = conv.dilation[0] * (conv.kernel_size[0] - 1)
    left = total // 2
    if total - left != left:
        x = F.pad(x, (left, total - left))
        left = 0
    return F.conv1d(x, w, b, padding=left, dilation=conv.dilation)


class RandomCNN(nn.Module):
    """Ulyanov & Lebedev's shallow, wide random network for audio style transfer.

    ``Conv1d(n_freq -> filters, kernel_size, 'same' padding)`` then ReLU. The frequency bins are the
    input channels, so the filters see the whole spectrum of ``kernel_size`` neighbouring frames; the
    Gram matrix of the ReLU output is the style. The weights are drawn once from ``seed`` with a
    private ``torch.Generator`` (the global RNG is untouched) and frozen.

    Parameters
    ----------
    n_freq : int
        Frequency bins F of the input (``n_fft // 2 + 1``).
    filters : int
        Output channels (default 4096, as in Ulyanov & Lebedev). Weights take ``4 * n_freq * filters *
        kernel_size`` bytes: 185 MB for F = 1025 with the defaults.
    kernel_size : int
        Frames per filter (default 11).
    seed : int
        Seed of the random weights.

    ``forward(x, layers)`` takes ``(B, F, T)`` and returns the requested ones of ``conv1`` and
    ``relu1``, each ``(B, filters, T)``.
    """

    layer_names = ("conv1", "relu1")
    default_content_layers = ("relu1",)
    default_style_layers = ("relu1",)

    def __init__(self, n_freq: int, *, filters: int = 4096, kernel_size: int = 11, seed: int = 0):
        super().__init__()
        for name, value in (("n_freq", n_freq), ("filters", filters), ("kernel_size", kernel_size)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"RandomCNN: {name} must be a positive integer, got {value!r}")
        self.n_freq, self.filters, self.kernel_size, self.seed = n_freq, filters, kernel_size, int(seed)
        generator = torch.Generator().manual_seed(self.seed)
        self.conv = _random_conv(n_freq, filters, kernel_size, 1, generator)
        self.requires_grad_(False)
        self.eval()

    def forward(self, x: Tensor, layers: Sequence[str]) -> dict[str, Tensor]:  # type: ignore[override]
        layers = _check_layers(layers, self.layer_names, "RandomCNN")
        _check_spectrogram(x, self.n_freq, "RandomCNN")
        h = _conv(self.conv, x)
        out = {"conv1": h} if "conv1" in layers else {}
        if "relu1" in layers:
            out["relu1"] = torch.relu(h)
        return out

    @property
    def description(self) -> str:
        return (f"random CNN (Ulyanov & Lebedev 2016): Conv1d {self.n_freq} -> {self.filters}, "
                f"kernel {self.kernel_size}, seed {self.seed}")

    @property
    def spec(self) -> dict:
        """Everything that defines this extractor, for the trace."""
        return {"name": "random-cnn", "n_freq": self.n_freq, "filters": self.filters,
                "kernel_size": self.kernel_size, "seed": self.seed}

    def activation_bytes(self, n_freq: int, frames: int, value_bytes: int = 4) -> int:
        """Bytes one step keeps for ``frames`` frames: the conv and ReLU outputs and the ReLU's gradient."""
        return 3 * self.filters * frames * value_bytes

    def extra_repr(self) -> str:
        return f"n_freq={self.n_freq}, filters={self.filters}, kernel_size={self.kernel_size}, seed={self.seed}"


class MultiRandomCNN(nn.Module):
    """Parallel random Conv1d + ReLU branches of different widths over time.

    A single 11-frame filter (0.26 s at 22.05 kHz with a 512-sample hop) sees timbre and short texture;
    a pulse every half second is invisible to it. The wider branches make the Gram matrices depend on
    rhythm and longer gestures as well.

    Parameters
    ----------
    n_freq : int
        Frequency bins F of the input.
    widths : sequence of int
        Time span of each branch in frames (default ``(3, 11, 31, 101)``: 101 frames are 2.3 s at a
        512-sample hop and 22.05 kHz). A width up to ``kernel_size`` is a dense kernel; a wider one has
        ``kernel_size`` taps dilated to span exactly ``width`` frames, which keeps its cost that of a
        dense ``kernel_size`` kernel; ``width - 1`` must then be a multiple of ``kernel_size - 1``.
    filters : int
        Filters of all branches together (default 4096, Ulyanov & Lebedev's single layer), split evenly
        (1024 each by default; the first ``filters % len(widths)`` branches get one more). With the
        default widths the cost is 36 / 44 of one 4096-filter, 11-tap layer.
    kernel_size : int
        Most taps of one kernel (default 11, Ulyanov's width).
    seed : int
        Seed of the random weights; all branches come from one private generator, in order of
        ``widths``. Each branch is initialised with :func:`ulyanov_std` for its own filters and taps.

    Layers are ``conv_w{width}`` and ``relu_w{width}``, each ``(B, filters_of_branch, T)``. By default
    every ReLU branch is a style layer and ``relu_w11`` (Ulyanov's width; else the branch closest to
    it) is the content layer.
    """

    def __init__(self, n_freq: int, *, widths: Sequence[int] = (3, 11, 31, 101), filters: int = 4096,
                 kernel_size: int = 11, seed: int = 0):
        super().__init__()
        for name, value in (("n_freq", n_freq), ("filters", filters), ("kernel_size", kernel_size)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"MultiRandomCNN: {name} must be a positive integer, got {value!r}")
        widths = tuple(widths)
        if not widths or not all(isinstance(w, int) and w >= 1 for w in widths) or len(set(widths)) != len(widths):
            raise ValueError(f"MultiRandomCNN: widths must be distinct positive integers, got {widths!r}")
        if filters < len(widths):
            raise ValueError(f"MultiRandomCNN: {filters} filters cannot be split over {len(widths)} branches")
        self.n_freq, self.filters, self.kernel_size, self.seed = n_freq, filters, kernel_size, int(seed)
        self.widths = widths
        #: Per width: (filters, taps, dilation) of its branch.
        self.kernels: dict[int, tuple[int, int, int]] = {}
        for i, w in enumerate(widths):
            n = filters // len(widths) + (i < filters % len(widths))
            if w <= kernel_size:
                self.kernels[w] = (n, w, 1)
            elif kernel_size >= 2 and (w - 1) % (kernel_size - 1) == 0:
                self.kernels[w] = (n, kernel_size, (w - 1) // (kernel_size - 1))
            else:
                step = max(kernel_size - 1, 1)
                lower, upper = 1 + step * ((w - 1) // step), 1 + step * ((w - 1) // step + 1)
                raise ValueError(f"MultiRandomCNN: width {w} cannot be spanned exactly by {kernel_size} dilated "
                                 f"taps; use width {lower} or {upper}, or a kernel_size with (width - 1) a "
                                 f"multiple of (kernel_size - 1)")
        generator = torch.Generator().manual_seed(self.seed)
        self.branches = nn.ModuleDict({
            f"w{w}": _random_conv(n_freq, n, taps, dilation, generator)
            for w, (n, taps, dilation) in self.kernels.items()})
        self.layer_names = tuple(name for w in widths for name in (f"conv_w{w}", f"relu_w{w}"))
        self.default_style_layers = tuple(f"relu_w{w}" for w in widths)
        content_width = min(widths, key=lambda w: (abs(w - 11), w))
        self.default_content_layers = (f"relu_w{content_width}",)
        self.requires_grad_(False)
        self.eval()

    @property
    def description(self) -> str:
        branches = ", ".join(f"w{w}: {n}x{taps}" + (f" dil {d}" if d > 1 else "")
                             for w, (n, taps, d) in self.kernels.items())
        return f"multi-width random CNN over {self.n_freq} bins ({branches}), seed {self.seed}"

    @property
    def spec(self) -> dict:
        return {"name": "multi-random-cnn", "n_freq": self.n_freq, "widths": list(self.widths),
                "filters": self.filters, "kernel_size": self.kernel_size, "seed": self.seed}

    def activation_bytes(self, n_freq: int, frames: int, value_bytes: int = 4) -> int:
        return 3 * self.filters * frames * value_bytes

    def forward(self, x: Tensor, layers: Sequence[str]) -> dict[str, Tensor]:  # type: ignore[override]
        layers = _check_layers(layers, self.layer_names, "MultiRandomCNN")
        _check_spectrogram(x, self.n_freq, "MultiRandomCNN")
        out: dict[str, Tensor] = {}
        for w in self.widths:  # branches are parallel: run only those asked for
            conv_name, relu_name = f"conv_w{w}", f"relu_w{w}"
            if conv_name not in layers and relu_name not in layers:
                continue
            h = _conv(self.branches[f"w{w}"], x)
            if conv_name in layers:
                out[conv_name] = h
            if relu_name in layers:
                out[relu_name] = torch.relu(h)
        return {name: out[name] for name in layers}

    def extra_repr(self) -> str:
        return (f"n_freq={self.n_freq}, widths={self.widths}, filters={self.filters}, "
                f"kernel_size={self.kernel_size}, seed={self.seed}")


def soft_clamp(x: Tensor, *, sharpness: float = 20.0) -> Tensor:
    """Smooth clamp into [0, 1] (the open interval in exact arithmetic): ``softplus(s x) / s - softplus(s (x - 1)) / s`` with ``s = sharpness``.

    Close to ``clamp(x, 0, 1)`` (off by at most ``log(2) / sharpness`` = 0.035 at the corners) but with
    a non-zero gradient everywhere, so spectrogram bins above the image range still get pulled by the
    loss instead of being stuck behind a hard clamp.
    """
    return F.softplus(x, beta=sharpness) - F.softplus(x - 1.0, beta=sharpness)


def spectrogram_to_image(x: Tensor, *, scale: float = DEFAULT_IMAGE_SCALE) -> Tensor:
    """A log-magnitude spectrogram ``(B, F, T)`` as an RGB image ``(B, 3, F, T)`` in [0, 1].

    Divided by ``scale``, :func:`soft_clamp`-ed, flipped so that frequency bin 0 is the bottom row (as a
    spectrogram is drawn) and repeated to three grey channels.
    """
    if x.dim() != 3:
        raise ValueError(f"spectrogram_to_image expects (B, F, T), got {tuple(x.shape)}")
    grey = soft_clamp(x / scale).flip(1)
    return grey.unsqueeze(1).expand(-1, 3, -1, -1)


class SpectrogramAsImage(nn.Module):
    """Adapter that lets a 2-D image backbone read a log-magnitude spectrogram.

    Parameters
    ----------
    backbone : object
        ``backbone(x, layers) -> {layer: Tensor}`` with ``x`` an RGB image ``(B, 3, H, W)`` in [0, 1],
        e.g. the project's VGG feature extractor (passed in, never imported here).
    scale : float, optional
        The spectrogram is divided by it before the soft clamp into [0, 1] (default
        :data:`DEFAULT_IMAGE_SCALE` = 8.0, the order of a full-scale log1p-magnitude). A caller can pass
        the content spectrogram's maximum instead, so the content fills the image's range.

    ``forward(x, layers)`` takes ``(B, F, T)`` (or ``(B, 1, F, T)``), turns it into ``(B, 3, F, T)``
    with :func:`spectrogram_to_image` and returns ``backbone(image, layers)``. Low frequencies are the
    image's bottom rows. With max pooling the backbone needs F and T of at least ``2 ** pools``.
    """

    default_content_layers: tuple[str, ...] = ("relu4_2",)
    default_style_layers: tuple[str, ...] = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")

    def __init__(self, backbone: Any, *, scale: float | None = None, spec: dict | None = None,
                 memory: Any = None):
        super().__init__()
        if not callable(backbone):
            raise ValueError(f"SpectrogramAsImage needs a callable backbone(x, layers), got {type(backbone).__name__}")
        scale = DEFAULT_IMAGE_SCALE if scale is None else float(scale)
        if not (math.isfinite(scale) and scale > 0):
            raise ValueError(f"SpectrogramAsImage: scale must be finite and positive, got {scale!r}")
        self.backbone = backbone  # registered as a submodule when it is one, so .to(device) moves it
        self.scale = scale
        self._spec = dict(spec or {"name": "vgg", "backbone": type(backbone).__name__})
        self._spec["scale"] = scale
        self._memory = memory
        for attr in ("default_content_layers", "default_style_layers"):
            if hasattr(backbone, attr):
                setattr(self, attr, tuple(getattr(backbone, attr)))
        self.eval()

    @property
    def layer_names(self) -> tuple[str, ...] | None:
        """The backbone's layer names (its ``layer_names`` or ``names``), or None when it has neither."""
        for attr in ("layer_names", "names"):
            names = getattr(self.backbone, attr, None)
            if names is not None and not callable(names):
                return tuple(names)
        return None

    def to_image(self, x: Tensor) -> Tensor:
        """The ``(B, 3, F, T)`` image the backbone sees."""
        if x.dim() == 4 and x.shape[1] == 1:
            x = x[:, 0]
        if x.dim() != 3:
            raise ValueError(f"SpectrogramAsImage expects a (B, F, T) or (B, 1, F, T) spectrogram, got {tuple(x.shape)}")
        return spectrogram_to_image(x, scale=self.scale)

    @property
    def description(self) -> str:
        inner = getattr(self.backbone, "description", None) or getattr(self.backbone, "source", None)
        name = type(self.backbone).__name__ + (f" ({inner})" if isinstance(inner, str) else "")
        return f"spectrogram as image (log1p / {self.scale:g}, low frequencies at the bottom) read by {name}"

    @property
    def spec(self) -> dict:
        return dict(self._spec)

    def activation_bytes(self, n_freq: int, frames: int, value_bytes: int = 4) -> int:
        """The backbone's activations over an ``n_freq x frames`` picture (``memory(h, w, value_bytes)``, given
        by whoever built this adapter); without it, a VGG-like guess of 64 channels per pixel at full size
        doubled by each halving, which errs high."""
        if self._memory is not None:
            return int(self._memory(n_freq, frames, value_bytes))
        return 3 * 64 * n_freq * frames * value_bytes * 4

    def forward(self, x: Tensor, layers: Sequence[str]) -> dict[str, Tensor]:  # type: ignore[override]
        return self.backbone(self.to_image(x), layers)

    def extra_repr(self) -> str:
        return f"scale={self.scale}"


def _build_random(config: Any, *, n_freq: int, log: Any = None) -> nn.Module:
    return RandomCNN(n_freq, filters=config.filters, kernel_size=config.kernel_size, seed=config.extractor_seed)


def _build_multi(config: Any, *, n_freq: int, log: Any = None) -> nn.Module:
    return MultiRandomCNN(n_freq, filters=config.filters, kernel_size=config.kernel_size, seed=config.extractor_seed)


register_extractor("audio", "random-cnn", _build_random)
register_extractor("audio", "multi-random-cnn", _build_multi)


def make_extractor(name: str, n_freq: int, *, seed: int = 0, backbone: Any = None, **kw: Any) -> nn.Module:
    """Build an audio feature extractor by name.

    Parameters
    ----------
    name : ``random-cnn``, ``multi-random-cnn`` or ``vgg``
    n_freq : int
        Frequency bins F of the spectrogram (unused by ``vgg``, which reads any size).
    seed : int
        Seed of the random weights (random networks only).
    backbone : object, optional
        The 2-D image backbone for ``vgg`` (required there, refused elsewhere).
    **kw
        Passed to the class: ``filters``, ``kernel_size`` (:class:`RandomCNN`; the same two, plus
        ``widths``, for :class:`MultiRandomCNN`, where ``filters`` is the total over its branches);
        ``scale`` (:class:`SpectrogramAsImage`).
    """
    if name == "vgg":
        if backbone is None:
            raise ValueError("the 'vgg' audio extractor needs an image backbone: pass backbone=<a 2-D feature "
                             "extractor such as nst_image's VGG>")
        return SpectrogramAsImage(backbone, **kw)
    if name in ("random-cnn", "multi-random-cnn"):
        if backbone is not None:
            raise ValueError(f"the {name!r} extractor has its own random weights and takes no backbone; "
                             f"use name='vgg' to read the spectrogram with an image backbone")
        cls = RandomCNN if name == "random-cnn" else MultiRandomCNN
        return cls(n_freq, seed=seed, **kw)
    raise ValueError(f"unknown audio extractor {name!r}; choose one of {', '.join(EXTRACTORS)}")
