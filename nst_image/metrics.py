"""Image result metrics: how much style was taken on, how much structure of the content was kept.

All inputs are ``(3, H, W)`` or ``(1, 3, H, W)`` RGB tensors in [0, 1]. Images of different sizes are
compared after resizing the second to the first's size.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from nst_core import gram_matrix, tiled_grams

from .color import luminance
from .io import resize_to


def _batch(x: Tensor, name: str) -> Tensor:
    if x.dim() == 3:
        x = x.unsqueeze(0)
    if x.dim() != 4 or x.shape[:2] != (1, 3):
        raise ValueError(f"{name} must be an RGB image (3, H, W) or (1, 3, H, W), got {tuple(x.shape)}")
    return x.float()


def _same_size(a: Tensor, b: Tensor) -> Tensor:
    if a.shape[-2:] == b.shape[-2:]:
        return b
    return resize_to(b[0], tuple(a.shape[-2:])).unsqueeze(0)


def _gaussian_window(size: int, sigma: float) -> Tensor:
    x = torch.arange(size, dtype=torch.float32) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    return g / g.sum()


def luminance_ssim(image: Tensor, reference: Tensor, *, window: int = 11, sigma: float = 1.5) -> float:
    """Mean SSIM (Wang et al. 2004) of the two images' luminance, with a Gaussian window.

    1 means identical structure; an unrelated image scores near 0. ``reference`` is resized to
    ``image``'s size when they differ. Images smaller than the window use a smaller window.
    """
    a, b = _batch(image, "image"), _batch(reference, "reference")
    b = _same_size(a, b)
    x, y = luminance(a), luminance(b)
    size = min(window, x.shape[-1], x.shape[-2])
    size -= (size + 1) % 2  # odd
    g = _gaussian_window(size, sigma * size / window)
    g2 = (g[:, None] * g[None, :])[None, None]

    def blur(t: Tensor) -> Tensor:
        return F.conv2d(t, g2)

    mx, my = blur(x), blur(y)
    sxx = blur(x * x) - mx**2
    syy = blur(y * y) - my**2
    sxy = blur(x * y) - mx * my
    c1, c2 = 0.01**2, 0.03**2
    ssim = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx**2 + my**2 + c1) * (sxx + syy + c2))
    return float(ssim.mean())


@torch.no_grad()
def style_gram_distance(extractor, image: Tensor, style: Tensor, layers: Sequence[str], *,
                        tile: int | None = None) -> float:
    """Relative Gram-matrix distance of ``image`` to ``style`` under ``extractor``, averaged over ``layers``.

    Per layer ``||G(image) - G(style)||^2 / ||G(style)||^2``: 0 when the feature statistics match,
    about 1 or more for unrelated images. The style image is read at its own size (Gram matrices do
    not depend on it). ``extractor`` maps ``(1, 3, H, W)`` RGB in [0, 1] to named features, as
    :class:`nst_image.VGGFeatures` does. ``tile``: computed tile by tile (the same Grams in the memory of one
    tile, :func:`nst_core.tiled_grams`).
    """
    a, s = _batch(image, "image"), _batch(style, "style")
    param = next(iter(extractor.parameters()), None)
    device = param.device if param is not None else torch.device("cpu")
    if tile is None:
        fa = {k: gram_matrix(v.float()) for k, v in extractor(a.to(device), list(layers)).items()}
        fs = {k: gram_matrix(v.float()) for k, v in extractor(s.to(device), list(layers)).items()}
    else:
        fa = tiled_grams(extractor, a.to(device), list(layers), tile)
        fs = tiled_grams(extractor, s.to(device), list(layers), tile)
    total = 0.0
    for name in layers:
        ga, gs = fa[name], fs[name]
        total += float(((ga - gs) ** 2).sum() / (gs**2).sum().clamp_min(1e-30))
    return total / max(len(layers), 1)


def image_metrics(extractor, result: Tensor, content: Tensor, style: Tensor, layers: Sequence[str], *,
                  tile: int | None = None) -> dict:
    """The metrics stored in an image run's trace (``tile``: the Gram matrices computed tile by tile).

    ``style``: Gram distance to the style of the result and, for scale, of the content.
    ``content``: luminance SSIM against the content of the result and, for scale, of the style image.
    """
    return {
        "style": {
            "gram_distance_result": style_gram_distance(extractor, result, style, layers, tile=tile),
            "gram_distance_content": style_gram_distance(extractor, content, style, layers, tile=tile),
        },
        "content": {
            "ssim_luminance_result": luminance_ssim(result, content),
            "ssim_luminance_style": luminance_ssim(content, style),
        },
    }
