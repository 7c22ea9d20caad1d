"""Loss functions of neural style transfer as pure functions on tensors.

Every function takes feature maps ``(B, C, *spatial)`` with any number of spatial dimensions, so one
implementation serves images ``(B, C, H, W)`` and spectrogram features ``(B, C, T)`` alike.
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import torch
from torch import Tensor

_EPS = 1e-12


def _acc(x: Tensor) -> Tensor:
    """Upcast to at least fp32 for accumulation (float64 stays float64, so gradcheck works)."""
    return x.to(torch.promote_types(x.dtype, torch.float32))


def gram_matrix(features: Tensor) -> Tensor:
    """Channel correlations of feature maps.

    Parameters
    ----------
    features : Tensor, shape (B, C, *spatial)
        Activations; any float dtype.

    Returns
    -------
    Tensor, shape (B, C, C), float32 (float64 for float64 input)
        ``F F^T / (C * prod(spatial))``, accumulated in at least fp32 whatever the input precision.
    """
    if features.dim() < 3:
        raise ValueError(f"gram_matrix expects (B, C, *spatial), got shape {tuple(features.shape)}")
    b, c = features.shape[:2]
    if features.dim() == 4 and not features.is_contiguous() and features.is_contiguous(memory_format=torch.channels_last):
        # Channels-last maps (what cuDNN's tensor-core convolutions like): (B, H*W, C) is a view, so
        # F = its transpose needs no copy; the matrix products take the strides as they are.
        f = _acc(features.permute(0, 2, 3, 1).reshape(b, -1, c).transpose(1, 2))
    else:
        f = _acc(features.reshape(b, c, -1))
    # Normalised by C*H*W as in neural-style; Gatys et al. put 1/(4 N^2 M^2) into the loss instead.
    return _Gram.apply(f, 1.0 / f[0].numel())


class _Gram(torch.autograd.Function):
    """``scale * F F^T`` with a symmetric backward ``scale * (dG + dG^T) F``.

    Autograd's own backward of ``bmm(F, F^T)`` computes two products and adds them; one product of
    the symmetrised gradient is about twice as fast on the widest (relu1_1) maps.
    """

    @staticmethod
    def forward(ctx, f: Tensor, scale: float) -> Tensor:
        ctx.save_for_backward(f)
        ctx.scale = scale
        # Autocast would run bmm in bf16; the Gram accumulates in the input's (>= fp32) precision.
        with torch.autocast(device_type=f.device.type, enabled=False):
            return torch.bmm(f, f.transpose(1, 2)).mul_(scale)

    @staticmethod
    def backward(ctx, grad: Tensor):
        (f,) = ctx.saved_tensors
        with torch.autocast(device_type=f.device.type, enabled=False):
            return torch.bmm(grad + grad.transpose(1, 2), f).mul_(ctx.scale), None


def content_loss(features: Tensor, target: Tensor, *, target_energy: Tensor | None = None) -> Tensor:
    """Relative squared error between feature maps.

    ``mean((features - target)^2) / mean(target^2)``: dividing by the target's energy makes the loss
    independent of the backbone's activation scale, so one content weight serves every weight source
    and layer. ``target_energy`` may pass ``mean(target^2)`` precomputed (it is fixed during a run).
    Returns a scalar fp32 tensor.
    """
    if features.shape != target.shape:
        raise ValueError(f"content_loss: shapes differ, {tuple(features.shape)} vs {tuple(target.shape)}")
    f, t = _acc(features), _acc(target)
    energy = t.pow(2).mean() if target_energy is None else target_energy
    return (f - t).pow(2).mean() / (energy + _EPS)


def gram_loss(gram: Tensor, target: Tensor, *, target_energy: Tensor | None = None) -> Tensor:
    """Relative squared Frobenius distance ``||gram - target||^2 / ||target||^2`` (scalar, fp32).

    ``target`` of shape (C, C) or (1, C, C) broadcasts over a batch of Gram matrices (B, C, C);
    the result is averaged over the batch. ``target_energy`` may pass ``||target||^2`` precomputed.
    """
    g, t = _acc(gram), _acc(target)
    if t.dim() == 2:
        t = t.unsqueeze(0)
    num = (g - t).pow(2).sum(dim=(-2, -1))
    energy = t.pow(2).sum(dim=(-2, -1)) if target_energy is None else target_energy
    return (num / (energy + _EPS)).mean()


def style_loss(features: Mapping[str, Tensor], targets: Mapping[str, Tensor],
               weights: Mapping[str, float] | None = None, *,
               target_energies: Mapping[str, Tensor] | None = None) -> Tensor:
    """Weighted sum over layers of :func:`gram_loss` between the Gram of ``features[layer]`` and ``targets[layer]``.

    ``weights`` maps layer name to weight (default 1 for each layer in ``targets``);
    ``target_energies`` optionally maps layer name to ``||targets[layer]||^2`` precomputed.
    """
    total = None
    for layer, target in targets.items():
        w = 1.0 if weights is None else weights[layer]
        energy = None if target_energies is None else target_energies[layer]
        term = w * gram_loss(gram_matrix(features[layer]), target, target_energy=energy)
        total = term if total is None else total + term
    if total is None:
        raise ValueError("style_loss needs at least one target layer")
    return total


def total_variation(signal: Tensor) -> Tensor:
    """Mean squared difference between neighbours along every spatial dimension of ``(B, C, *spatial)``.

    A constant signal has zero total variation. Returns a scalar fp32 tensor.
    """
    x = _acc(signal)
    total = x.new_zeros(())
    for dim in range(2, x.dim()):
        if x.shape[dim] > 1:
            total = total + torch.diff(x, dim=dim).pow(2).mean()
    return total


def blend_grams(grams: Sequence[Mapping[str, Tensor]], weights: Sequence[float] | None = None) -> dict[str, Tensor]:
    """Blend the Gram targets of several style inputs into one target per layer.

    Parameters
    ----------
    grams : sequence of dict[layer, Tensor (1, C, C)]
        One dict per style input, all with the same layers.
    weights : sequence of float, optional
        Non-negative blend weights, one per style input; normalised to sum to 1. Equal by default.
    """
    n = len(grams)
    if n == 0:
        raise ValueError("blend_grams needs at least one style input")
    if weights is None:
        weights = [1.0] * n
    if len(weights) != n:
        raise ValueError(f"{len(weights)} blend weights given for {n} style inputs")
    if not all(math.isfinite(w) and w >= 0 for w in weights) or max(weights) <= 0:
        raise ValueError("blend weights must be finite, non-negative and not all zero")
    # Divided by the largest first: the sum of weights near the float maximum (1e308, 1e308) would overflow.
    top = float(max(weights))
    weights = [float(w) / top for w in weights]
    total = sum(weights)
    return {layer: sum((w / total) * g[layer] for w, g in zip(weights, grams)) for layer in grams[0]}
