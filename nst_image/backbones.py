"""VGG-16 / VGG-19 feature extractors with layer names like ``relu4_2``.

The extractor reads RGB images in [0, 1] and applies its weight source's preprocessing itself, so the
optimized signal, the learning rates and the total-variation weight mean the same for every source.
"""

from __future__ import annotations

from typing import Literal, Sequence

import torch
from torch import Tensor, nn

from nst_core.tiling import LayerGeometry, layer_geometry

#: Convolutions per block.
VGG_BLOCKS = {"vgg16": (2, 2, 3, 3, 3), "vgg19": (2, 2, 4, 4, 4)}
BLOCK_CHANNELS = (64, 128, 256, 512, 512)

#: ImageNet statistics of torchvision's weights (RGB, [0, 1] input, then normalised).
TORCHVISION_MEAN = (0.485, 0.456, 0.406)
TORCHVISION_STD = (0.229, 0.224, 0.225)
#: Caffe preprocessing: BGR, 0-255, minus the per-channel mean (BGR order).
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)

Preprocessing = Literal["torchvision", "caffe"]


def layer_names(arch: str) -> list[str]:
    """Names of every layer of ``arch`` in order: conv1_1, relu1_1, conv1_2, relu1_2, pool1, ..."""
    names = []
    for b, n in enumerate(VGG_BLOCKS[arch], start=1):
        for i in range(1, n + 1):
            names += [f"conv{b}_{i}", f"relu{b}_{i}"]
        names.append(f"pool{b}")
    return names


def conv_names(arch: str) -> list[str]:
    return [n for n in layer_names(arch) if n.startswith("conv")]


def torchvision_index(arch: str) -> dict[str, int]:
    """Map layer name to its index in torchvision's ``vgg.features`` Sequential."""
    return {name: i for i, name in enumerate(layer_names(arch))}


def check_layers(arch: str, layers: Sequence[str]) -> None:
    """Raise ValueError naming the valid layers when any of ``layers`` is unknown to ``arch``."""
    known = set(layer_names(arch))
    bad = [name for name in layers if name not in known]
    if bad:
        raise ValueError(f"unknown {arch} layer(s) {', '.join(bad)}; valid names look like relu1_1 ... "
                         f"relu{len(VGG_BLOCKS[arch])}_{VGG_BLOCKS[arch][-1]} (conv, relu or pool + block_index)")


def deepest_layer(arch: str, layers: Sequence[str]) -> str:
    """The layer of ``layers`` furthest into the network (where a forward pass may stop)."""
    names = layer_names(arch)
    return names[max(names.index(n) for n in layers)]


def min_side(arch: str, layers: Sequence[str]) -> int:
    """Smallest side in px the network can read up to the deepest of ``layers``: each 2x2 pooling on the
    way halves the map, which must keep at least one pixel (16 px to relu5_1, 8 px to relu4_2)."""
    names = layer_names(arch)
    pools = sum(1 for n in names[: names.index(deepest_layer(arch, layers))] if n.startswith("pool"))
    return 2 ** pools


def vgg_geometry(arch: str, layers: Sequence[str]) -> dict[str, LayerGeometry]:
    """Stride and edge-effect radius (px) of ``layers`` in a VGG (3x3 convolutions with padding 1, 2x2
    poolings), what :mod:`nst_core.tiling` needs; :meth:`VGGFeatures.geometry` reads the same from a network's
    modules. VGG-19 to relu5_1: stride 16, radius 80 px; VGG-16: 16 and 64.

    >>> vgg_geometry("vgg19", ["relu5_1"])
    {'relu5_1': LayerGeometry(stride=16, radius=80)}
    """
    check_layers(arch, list(layers))
    found = layer_geometry([(n, 3, 1, 1, 1) if n.startswith("conv") else (n, 2, 2, 0, 1) if n.startswith("pool")
                            else (n, 1, 1, 0, 1) for n in layer_names(arch)])
    return {name: found[name] for name in layers}


def activation_elements(height: int, width: int, arch: str, deepest: str) -> tuple[int, int]:
    """(activations a backward pass keeps, widest single activation) of a pass to ``deepest`` over a
    ``height x width`` picture, in elements: every conv and ReLU output and every pooled map."""
    names = layer_names(arch)
    elems, widest, block = 0, 0, 0
    h, w = height, width
    for name in names[: names.index(deepest) + 1]:
        if name.startswith("pool"):
            h, w = max(h // 2, 1), max(w // 2, 1)
            block += 1
            elems += BLOCK_CHANNELS[block - 1] * h * w
            continue
        n = BLOCK_CHANNELS[block] * h * w
        elems += n
        widest = max(widest, n)
    return elems, widest


class VGGFeatures(nn.Module):
    """Frozen VGG feature extractor.

    Parameters
    ----------
    arch : ``vgg19`` or ``vgg16``
    pooling : ``max`` (as trained) or ``avg`` (Gatys et al. found average pooling gives smoother results)
    preprocessing : ``torchvision`` (RGB, ImageNet mean/std) or ``caffe`` (BGR, 0-255, mean subtracted)
    state_dict : dict[name, Tensor], optional
        Weights keyed ``conv1_1.weight``, ``conv1_1.bias``, ... (see :mod:`nst_image.weights`).
        Without it the weights stay at their random initialisation.
    source : str
        Human-readable description of where the weights came from.

    ``extractor(x, layers)`` takes ``(B, 3, H, W)`` RGB in [0, 1] and returns ``{layer: activations}``,
    running the network only up to the deepest layer asked for.
    """

    def __init__(self, arch: str = "vgg19", *, pooling: str = "max", preprocessing: Preprocessing = "torchvision",
                 state_dict: dict[str, Tensor] | None = None, source: str = "random initialisation"):
        super().__init__()
        if arch not in VGG_BLOCKS:
            raise ValueError(f"unknown backbone {arch!r}; use vgg19 or vgg16")
        if pooling not in ("max", "avg"):
            raise ValueError(f"unknown pooling {pooling!r}; use max or avg")
        if preprocessing not in ("torchvision", "caffe"):
            raise ValueError(f"unknown preprocessing {preprocessing!r}")
        self.arch, self.pooling, self.preprocessing, self.source = arch, pooling, preprocessing, source
        self.channels_last = False  # see use_channels_last
        self.names = layer_names(arch)
        modules: list[nn.Module] = []
        in_ch = 3
        for b, n in enumerate(VGG_BLOCKS[arch]):
            out = BLOCK_CHANNELS[b]
            for _ in range(n):
                modules += [nn.Conv2d(in_ch, out, 3, padding=1), nn.ReLU(inplace=False)]
                in_ch = out
            modules.append(nn.MaxPool2d(2, 2) if pooling == "max" else nn.AvgPool2d(2, 2))
        self.layers = nn.ModuleList(modules)
        if preprocessing == "torchvision":
            mean, scale = torch.tensor(TORCHVISION_MEAN), 1.0 / torch.tensor(TORCHVISION_STD)
        else:
            # preprocess() flips to BGR first, so the mean stays in BGR order.
            mean, scale = torch.tensor(CAFFE_MEAN_BGR) / 255.0, torch.full((3,), 255.0)
        self.register_buffer("mean", mean.view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", scale.view(1, 3, 1, 1), persistent=False)
        if state_dict is not None:
            self.load_named(state_dict)
        self.requires_grad_(False)
        self.eval()

    def load_named(self, state_dict: dict[str, Tensor]) -> None:
        """Copy ``conv{b}_{i}.weight/.bias`` tensors into the network (shapes checked by the caller)."""
        with torch.no_grad():
            for name, module in zip(self.names, self.layers):
                if isinstance(module, nn.Conv2d):
                    module.weight.copy_(state_dict[f"{name}.weight"])
                    module.bias.copy_(state_dict[f"{name}.bias"])

    def expected_shapes(self) -> dict[str, tuple[int, ...]]:
        shapes = {}
        for name, module in zip(self.names, self.layers):
            if isinstance(module, nn.Conv2d):
                shapes[f"{name}.weight"] = tuple(module.weight.shape)
                shapes[f"{name}.bias"] = tuple(module.bias.shape)
        return shapes

    def geometry(self, layers: Sequence[str]) -> dict[str, LayerGeometry]:
        """Stride and edge-effect radius (px) of each of ``layers``, from the network's own modules: what
        :mod:`nst_core.tiling` needs to cut a picture into tiles whose features equal the untiled ones.
        VGG-19 to relu5_1: stride 16, radius 80 px; VGG-16: 16 and 64."""
        check_layers(self.arch, list(layers))
        chain = []
        for name, module in zip(self.names, self.layers):
            if isinstance(module, nn.Conv2d):
                chain.append((name, module.kernel_size[0], module.stride[0], module.padding[0], module.dilation[0]))
            elif isinstance(module, (nn.MaxPool2d, nn.AvgPool2d)):
                k, st, p = (v if isinstance(v, int) else v[0] for v in (module.kernel_size, module.stride,
                                                                        module.padding))
                chain.append((name, k, st, p, 1))
            else:  # pointwise (ReLU)
                chain.append((name, 1, 1, 0, 1))
        found = layer_geometry(chain)
        return {name: found[name] for name in layers}

    def use_channels_last(self, on: bool = True) -> "VGGFeatures":
        """Run the convolutions on channels-last (NHWC) tensors, the layout cuDNN's tensor-core kernels use.

        The weights are converted once; the input is converted at every call and the features come out
        channels-last (the Gram matrix reads them without a copy). Same numbers, other memory order.
        """
        self.channels_last = on
        return self.to(memory_format=torch.channels_last if on else torch.contiguous_format)

    def preprocess(self, x: Tensor) -> Tensor:
        """RGB [0, 1] ``(B, 3, H, W)`` to the weights' input space."""
        if self.preprocessing == "caffe":
            x = x.flip(1)  # RGB -> BGR
        return (x - self.mean) * self.scale

    def forward(self, x: Tensor, layers: Sequence[str]) -> dict[str, Tensor]:
        wanted = set(layers)
        if not wanted:
            raise ValueError("ask for at least one layer")
        check_layers(self.arch, list(wanted))
        deepest = max(self.names.index(name) for name in wanted)
        out: dict[str, Tensor] = {}
        h = self.preprocess(x)
        if self.channels_last:
            h = h.contiguous(memory_format=torch.channels_last)
        for name, module in zip(self.names[: deepest + 1], self.layers):
            h = module(h)
            if name in wanted:
                out[name] = h
        return out
