"""FLOP counts of the image backbone and peak FLOPS of GPUs, for model FLOP utilisation (MFU).

What one optimization step of image style transfer computes, and what is counted here:

* **Counted** (:func:`vgg_step_flops`): every 3x3 convolution of the truncated VGG backbone up to the
  deepest layer the losses read, in the forward pass (``2 * Cin * Cout * 9 * H * W`` FLOPs per convolution,
  a multiply-add counted as 2 FLOPs), plus the backward pass to the *input* only. The weights are frozen, so
  autograd computes no weight gradients; the gradient of a convolution with respect to its input is a
  transposed convolution with the same kernel, ``2 * Cin * Cout * 9 * H * W`` FLOPs again. So one step is
  2x the forward convolution FLOPs. Every convolution up to the deepest layer lies on the path from the
  losses back to the image, conv1_1 included (the optimised signal is its input).
* **Not counted**: bias additions, ReLU, pooling and their backward passes, the preprocessing, the losses
  (Gram matrices: see :func:`gram_flops`, reported separately), total variation and the optimizer's update.
  Together these are a few percent of the convolutions at the default layers.

Peak FLOPS (:func:`peak_tflops`) are the vendors' published *dense* figures (datasheets list tensor-core
figures "with sparsity", twice the dense rate; halved here), per precision: ``fp32`` (CUDA cores, TF32
off), ``tf32`` and ``bf16`` (tensor cores).
"""

from __future__ import annotations

import re
from typing import Sequence

from nst_image.backbones import BLOCK_CHANNELS, VGG_BLOCKS, layer_names

KERNEL_AREA = 9  # 3x3 convolutions throughout VGG


def deepest_layer(arch: str, layers: Sequence[str]) -> str:
    """The layer of ``layers`` that comes last in ``arch``'s order (the network runs up to it)."""
    names = layer_names(arch)
    unknown = [n for n in layers if n not in names]
    if not layers or unknown:
        raise ValueError(f"need known {arch} layer names, got {list(layers)}")
    return names[max(names.index(n) for n in layers)]


def vgg_conv_shapes(height: int, width: int, *, arch: str = "vgg19", deepest: str = "relu5_1"
                    ) -> list[dict]:
    """Every convolution of ``arch`` up to and including the block of ``deepest``'s position, in order.

    height, width : input size in px. Each 2x2 max/avg pooling (stride 2) floors the size, as
    ``nn.MaxPool2d(2, 2)`` does. Returns ``[{"name", "in_channels", "out_channels", "height", "width",
    "flops"}]`` with ``flops`` = ``2 * Cin * Cout * 9 * H * W`` (forward only).
    """
    if height < 1 or width < 1:
        raise ValueError(f"height and width must be >= 1 px, got {height}x{width}")
    if arch not in VGG_BLOCKS:
        raise ValueError(f"unknown backbone {arch!r}; use vgg19 or vgg16")
    names = layer_names(arch)
    if deepest not in names:
        raise ValueError(f"unknown {arch} layer {deepest!r}")
    stop = names.index(deepest)
    convs, h, w, cin, block = [], height, width, 3, 0
    for name in names[: stop + 1]:
        if name.startswith("pool"):
            h, w = h // 2, w // 2
            block += 1
        elif name.startswith("conv"):
            cout = BLOCK_CHANNELS[block]
            convs.append({"name": name, "in_channels": cin, "out_channels": cout, "height": h, "width": w,
                          "flops": 2 * cin * cout * KERNEL_AREA * h * w})
            cin = cout
    return convs


def vgg_step_flops(height: int, width: int, *, arch: str = "vgg19", deepest: str = "relu5_1") -> dict:
    """FLOPs of one loss-and-gradient evaluation of the frozen backbone at ``height x width`` px.

    Returns ``{"forward": F, "backward_input": F, "per_step": 2 F, "convolutions": n}`` where F is the sum of
    the forward convolution FLOPs up to ``deepest`` (see the module docstring for what is and is not counted).
    """
    convs = vgg_conv_shapes(height, width, arch=arch, deepest=deepest)
    forward = sum(c["flops"] for c in convs)
    return {"forward": forward, "backward_input": forward, "per_step": 2 * forward, "convolutions": len(convs)}


def gram_flops(height: int, width: int, *, arch: str = "vgg19", style_layers: Sequence[str] = ()) -> int:
    """FLOPs of the style layers' Gram matrices per step, forward and backward (not in ``per_step``).

    A Gram matrix of ``(C, N)`` features (``N = H*W``) is a ``(C, N) @ (N, C)`` product, ``2 * C * C * N``
    FLOPs; its backward ``(dG + dG^T) F`` is another ``2 * C * C * N``. Only the channel counts and sizes of
    the layers named in ``style_layers`` are used.
    """
    names = layer_names(arch)
    total, h, w, block = 0, height, width, 0
    wanted = set(style_layers)
    for name in names:
        if name.startswith("pool"):
            h, w = h // 2, w // 2
            block += 1
        if name in wanted:
            # A pool layer's output has the channels of the block it closes.
            c = BLOCK_CHANNELS[block - 1] if name.startswith("pool") else BLOCK_CHANNELS[block]
            total += 4 * c * c * h * w
    return total


# --------------------------------------------------------------------------- peak FLOPS

#: Dense peak TFLOPS by GPU (regular expression on ``torch.cuda.get_device_name``), first match wins.
#: fp32: CUDA cores (no tensor cores). tf32, bf16: tensor cores, dense, i.e. half the datasheets' "with
#: sparsity" figures. Sources:
#: * H100 SXM5 / PCIe: NVIDIA H100 Tensor Core GPU Architecture whitepaper (2022), table 2 (dense):
#:   SXM5 fp32 66.9, tf32 494.7, bf16 989.4; PCIe fp32 51.2, tf32 378.0, bf16 756.0. The H100 datasheet rounds
#:   them to 67 / 989* / 1979* (SXM) and 51 / 756* / 1513* (PCIe), * = with sparsity.
#: * H100 NVL, H200 NVL: NVIDIA H100 and H200 datasheets, NVL columns: fp32 60, tf32 835*, bf16 1671*.
#: * H200 SXM (and GH200): same GH100 compute and clocks as H100 SXM (H200 datasheet: 67 / 989* / 1979*).
#: * A100 (SXM4 and PCIe, 40 and 80 GB): A100 datasheet: fp32 19.5, tf32 156, bf16 312 (dense).
#: * L40S: L40S datasheet: fp32 91.6, tf32 366*, bf16 733* (dense 183 / 362.05).
#: * L4: L4 datasheet: fp32 30.3, tf32 120*, bf16 242* (dense 60 / 121).
#: * A10: A10 datasheet: fp32 31.2, tf32 62.5 (125*), bf16 125 (250*).
#: Names it does not list (consumer cards, A10G, V100, T4, Blackwell) get no MFU rather than a guess.
PEAK_TFLOPS: list[tuple[str, str, dict[str, float]]] = [
    (r"H100.*NVL", "H100 NVL", {"fp32": 60.0, "tf32": 417.5, "bf16": 835.5}),
    (r"H100.*PCIe", "H100 PCIe", {"fp32": 51.2, "tf32": 378.0, "bf16": 756.0}),
    (r"H200.*NVL", "H200 NVL", {"fp32": 60.0, "tf32": 417.5, "bf16": 835.5}),
    (r"H100|H200", "H100/H200 SXM", {"fp32": 66.9, "tf32": 494.7, "bf16": 989.4}),
    (r"A100", "A100", {"fp32": 19.5, "tf32": 156.0, "bf16": 312.0}),
    (r"L40S", "L40S", {"fp32": 91.6, "tf32": 183.0, "bf16": 362.05}),
    (r"\bL4\b", "L4", {"fp32": 30.3, "tf32": 60.0, "bf16": 121.0}),
    (r"\bA10\b", "A10", {"fp32": 31.2, "tf32": 62.5, "bf16": 125.0}),
]


def peak_tflops(device_name: str | None, precision: str) -> tuple[float | None, str]:
    """Dense peak TFLOPS of a device for a precision, and where it came from (or why there is none).

    device_name : ``torch.cuda.get_device_name()`` for a GPU; ``None`` or ``"cpu"`` for a CPU.
    precision : ``fp32``, ``tf32`` or ``bf16`` (as resolved by ``nst_core.resolve_precision``).

    Returns ``(tflops, source)`` or ``(None, reason)``.
    """
    if not device_name or device_name.lower().startswith("cpu"):
        return None, "no peak FLOPS for a CPU: MFU is reported for the GPUs in benchmarks/flops.py only"
    for pattern, label, peaks in PEAK_TFLOPS:
        if re.search(pattern, device_name):
            if precision not in peaks:
                return None, f"no {precision!r} peak listed for {label} (have {', '.join(peaks)})"
            kind = "CUDA cores" if precision == "fp32" else "tensor cores, dense"
            return peaks[precision], f"{label} {precision} ({kind}), vendor figure, see benchmarks/flops.py"
    return None, f"no peak FLOPS listed for GPU {device_name!r} in benchmarks/flops.py"


def utilisation(flops_per_step: float, seconds_per_step: float, device_name: str | None,
                precision: str) -> dict:
    """``achieved_tflops``, ``peak_tflops``, ``mfu`` (achieved / peak, a fraction) and ``peak_source`` (or
    ``mfu_unavailable``, the reason ``mfu`` is None)."""
    achieved = flops_per_step / seconds_per_step / 1e12 if seconds_per_step > 0 else None
    peak, source = peak_tflops(device_name, precision)
    out = {"achieved_tflops": achieved, "peak_tflops": peak, "mfu": None}
    if peak is None or achieved is None:
        out["mfu_unavailable"] = source if peak is None else "seconds_per_step is not positive"
    else:
        out["mfu"] = achieved / peak
        out["peak_source"] = source
    return out
