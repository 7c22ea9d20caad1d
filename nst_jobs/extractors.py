"""An image backbone reading spectrograms: the ``vgg`` audio extractor.

``nst_audio`` never imports ``nst_image``; this module, which may import both, builds the composition and
is registered as the audio extractor ``vgg`` through the ``nst.extractors`` entry point (pyproject.toml),
so ``stylize_audio(..., extractor="vgg", weights="vgg16-hed")`` finds it by name.
"""

from __future__ import annotations

from typing import Any, Callable

from nst_audio.extractors import SpectrogramAsImage
from nst_image.backbones import VGGFeatures, activation_elements
from nst_image.weights import build_extractor

__all__ = ["spectrogram_vgg", "build_spectrogram_vgg"]


def spectrogram_vgg(backbone: VGGFeatures, *, weights: str = "auto") -> SpectrogramAsImage:
    """Wrap a VGG backbone so it reads ``(B, F, T)`` spectrograms as ``F x T`` grey pictures.

    The adapter's ``spec`` records the network, its weights setting, pooling and source; its memory per
    step is the backbone's activations over the ``F x T`` picture (to relu5_1, the deepest default layer).
    """
    def memory(height: int, width: int, value_bytes: int) -> int:
        elems, widest = activation_elements(height, width, backbone.arch, "relu5_1")
        return elems * value_bytes + 3 * widest * 4 + 3 * height * width * 4

    spec = {"name": "vgg", "backbone": backbone.arch, "weights": weights, "pooling": backbone.pooling,
            "source": backbone.source}
    return SpectrogramAsImage(backbone, spec=spec, memory=memory)


def build_spectrogram_vgg(config: Any, *, n_freq: int, log: Callable[[str], None] | None = None) -> SpectrogramAsImage:
    """Registry builder: the backbone chosen by an audio config's ``backbone``, ``weights``, ``weights_layout``
    and ``pooling`` (``n_freq`` is not needed: a convolutional backbone reads any height)."""
    backbone = build_extractor(config.weights, backbone=config.backbone, pooling=config.pooling,
                               layout=config.weights_layout, log=log)
    if log is not None:
        log(f"backbone: {backbone.source}, {backbone.pooling} pooling")
    return spectrogram_vgg(backbone, weights=config.weights)
