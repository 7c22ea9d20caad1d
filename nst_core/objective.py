"""The style transfer objective: targets computed once, losses evaluated on the device every step."""

from __future__ import annotations

from typing import Callable, Mapping, Protocol, Sequence

import torch
from torch import Tensor

from .losses import _acc, blend_grams, content_loss, gram_matrix, style_loss, total_variation


class FeatureExtractor(Protocol):
    """A frozen network: ``extractor(x, layers) -> {layer: activations}``, stopping at the deepest layer asked for."""

    def __call__(self, x: Tensor, layers: Sequence[str]) -> dict[str, Tensor]: ...


def style_targets(extractor: FeatureExtractor, styles: Sequence[Tensor], layers: Sequence[str],
                  blend_weights: Sequence[float] | None = None, *,
                  cache: "TargetCache | None" = None, tile: int | None = None) -> dict[str, Tensor]:
    """Gram targets of one or more style signals, blended by ``blend_weights``. Computed without gradients;
    with a :class:`TargetCache`, each style signal's Grams are computed once per extractor and layers; with
    ``tile``, tile by tile (:func:`nst_core.tiling.tiled_grams`: the same Grams in the memory of one tile)."""
    def grams_of(s: Tensor) -> dict[str, Tensor]:
        if tile is not None:
            from .tiling import tiled_grams

            return tiled_grams(extractor, s, layers, tile)
        with torch.no_grad():
            return {k: gram_matrix(v) for k, v in extractor(s, list(layers)).items()}

    grams = [cache.grams(extractor, s, layers, grams_of) if cache is not None else grams_of(s) for s in styles]
    return blend_grams(grams, blend_weights)


class TargetCache:
    """Style Gram targets kept between runs (a batch worker keeps one for all its jobs).

    The key is exact: a hash of the signal the extractor reads (so the style file's content, its size and
    every transform before the network are in it), the layers, and the extractor's identity: a hash of its
    structure and weights, computed once per extractor object. Two runs share an entry only when the network
    would see the same numbers. The least recently used entries go beyond ``max_items``.
    ``hits`` and ``misses`` count lookups.
    """

    def __init__(self, max_items: int = 32):
        from collections import OrderedDict

        self.max_items = max_items
        self.hits = 0
        self.misses = 0
        self._entries: "OrderedDict[tuple, dict[str, Tensor]]" = OrderedDict()
        self._tokens: dict[int, tuple[object, str]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def extractor_token(self, extractor: FeatureExtractor) -> str:
        """A hash of the extractor's class, structure and weights (once per object, kept while it is)."""
        import hashlib

        held = self._tokens.get(id(extractor))
        if held is not None and held[0] is extractor:
            return held[1]
        h = hashlib.sha1(type(extractor).__qualname__.encode())
        if isinstance(extractor, torch.nn.Module):
            h.update(repr(extractor).encode())
            for name, t in list(extractor.state_dict().items()):
                h.update(name.encode())
                h.update(_tensor_bytes(t))
        else:  # not a module: only this very object is known to compute the same features
            h.update(str(id(extractor)).encode())
        token = h.hexdigest()
        self._tokens[id(extractor)] = (extractor, token)  # the reference keeps the id from being reused
        return token

    def grams(self, extractor: FeatureExtractor, signal: Tensor, layers: Sequence[str],
              compute: Callable[[Tensor], dict[str, Tensor]]) -> dict[str, Tensor]:
        """``compute(signal)`` the first time this extractor, signal and layers are seen; then the stored result."""
        import hashlib

        key = (self.extractor_token(extractor), hashlib.sha1(_tensor_bytes(signal)).hexdigest(),
               tuple(signal.shape), str(signal.dtype), str(signal.device), tuple(layers))
        found = self._entries.get(key)
        if found is not None:
            self.hits += 1
            self._entries.move_to_end(key)
            return found
        self.misses += 1
        value = compute(signal)
        self._entries[key] = value
        while len(self._entries) > self.max_items:
            self._entries.popitem(last=False)
        return value


def _tensor_bytes(t: Tensor) -> bytes:
    t = t.detach()
    if t.dtype == torch.bfloat16:  # numpy has no bfloat16: hash its bits
        t = t.view(torch.int16)
    return t.cpu().contiguous().numpy().tobytes()


class Objective:
    """Weighted content, style and total-variation loss against fixed targets.

    Parameters
    ----------
    content_targets : dict[layer, Tensor]
        Activations of the content signal (detached). May be empty (texture synthesis).
    style_grams : dict[layer, Tensor (1, C, C)]
        Blended Gram targets.
    content_weight, style_weight, tv_weight : float
        Weights of the three terms. Layer losses are averaged within each term, so the weights do not
        depend on how many layers are used.
    content_layer_weights, style_layer_weights : dict[layer, float], optional
        Relative weights of layers inside a term (default equal).

    Calling it with the extractor's features and the signal returns a dict of scalar tensors
    ``{"content", "style", "tv", "total"}`` on the device; nothing is read back to the host.
    """

    terms = ("content", "style", "tv", "total")

    def __init__(self, content_targets: Mapping[str, Tensor], style_grams: Mapping[str, Tensor], *,
                 content_weight: float = 1.0, style_weight: float = 1.0, tv_weight: float = 0.0,
                 content_layer_weights: Mapping[str, float] | None = None,
                 style_layer_weights: Mapping[str, float] | None = None):
        self.content_targets = {k: v.detach() for k, v in content_targets.items()}
        self.style_grams = {k: v.detach() for k, v in style_grams.items()}
        self.content_weight = float(content_weight)
        self.style_weight = float(style_weight)
        self.tv_weight = float(tv_weight)
        self.content_layer_weights = _normalised(self.content_targets, content_layer_weights)
        self.style_layer_weights = _normalised(self.style_grams, style_layer_weights)
        # The targets are fixed for the run: their energies (the loss denominators) are computed once here.
        self.content_energies = {k: _acc(v).pow(2).mean() for k, v in self.content_targets.items()}
        self.style_energies = {k: _acc(v).pow(2).sum(dim=(-2, -1)) for k, v in self.style_grams.items()}

    @property
    def layers(self) -> list[str]:
        """Every layer the objective reads, content layers first."""
        seen = dict.fromkeys(list(self.content_targets) + list(self.style_grams))
        return list(seen)

    def __call__(self, features: Mapping[str, Tensor], signal: Tensor) -> dict[str, Tensor]:
        zero = signal.new_zeros((), dtype=torch.float32)
        content = zero
        for layer, target in self.content_targets.items():
            content = content + self.content_layer_weights[layer] * content_loss(
                features[layer], target, target_energy=self.content_energies[layer])
        style = (style_loss(features, self.style_grams, self.style_layer_weights, target_energies=self.style_energies)
                 if self.style_grams else zero)
        tv = total_variation(signal) if self.tv_weight else zero
        total = self.content_weight * content + self.style_weight * style + self.tv_weight * tv
        return {"content": content, "style": style, "tv": tv, "total": total}


def _normalised(targets: Mapping[str, Tensor], weights: Mapping[str, float] | None) -> dict[str, float]:
    if not targets:
        return {}
    raw = {k: (1.0 if weights is None else float(weights.get(k, 1.0))) for k in targets}
    s = sum(raw.values())
    if s <= 0:
        raise ValueError("layer weights must not all be zero")
    return {k: v / s for k, v in raw.items()}


def make_loss_fn(extractor: FeatureExtractor, objective: Objective,
                 transform: Callable[[Tensor], Tensor] | None = None) -> Callable[[Tensor], dict[str, Tensor]]:
    """Compose extractor and objective into ``loss_fn(signal) -> terms`` for :func:`nst_core.optimize`.

    ``transform`` maps the optimized signal to what the extractor reads (e.g. a luminance image
    repeated to three channels); by default the signal itself.
    """
    layers = objective.layers

    def loss_fn(signal: Tensor) -> dict[str, Tensor]:
        x = signal if transform is None else transform(signal)
        return objective(extractor(x, layers), signal)

    return loss_fn
