"""``stylize_image``: image style transfer (Gatys et al. 2015) on the shared core.

The front end reads the pictures, plans one segment per scale (:func:`plan_image`), lets
:func:`nst_core.run_plan` run them, and turns the result back into a picture with its metrics and trace.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Literal, Sequence, Union

import torch
import torch.nn.functional as F
from torch import Tensor

from nst_core import (Checkpoint, InputError, InterruptedRun, Objective, OptimizeConfig, Plan, Result, Segment, Step,
                      StyleResult, TargetCache, available_memory_bytes, make_loss_fn, make_tiled_loss_fn, run_plan,
                      start_run, style_targets, tiled_features)
from nst_core.config import (ConfigError, Options, as_list, blend_weights_option, config_settings, device_option,
                             option, precision_option, threads_option, seed_option, validate)
from nst_core.device import human_bytes, require_memory
from nst_core.tiling import min_tile
from nst_core.result import trace_path

from .backbones import VGGFeatures, check_layers, deepest_layer, layer_names, min_side, vgg_geometry
from .color import luminance, match_mean_std, transfer_chroma
from .io import MIN_SIDE, load_image, read_metadata, resize_long_side, resize_to, save_image, to_pil
from .memory import (AUTO_MEMORY_FRACTION, HISTORY_LADDER, MemoryPlan, estimate_memory_bytes, long_side_shape,
                     plan_memory)
from .metrics import image_metrics
from .weights import build_extractor

__all__ = ["ImageStyleConfig", "ImageResult", "stylize_image", "plan_image", "scale_schedule",
           "estimate_memory_bytes", "auto_image_size", "trace_path"]

ImageInput = Union[str, os.PathLike, Tensor]
_VGG19_LAYERS = set(layer_names("vgg19"))


def _layer_rule(layers: tuple[str, ...]) -> str | None:
    bad = [n for n in layers if n not in _VGG19_LAYERS]
    return f"has unknown VGG layer(s) {', '.join(bad)}; names look like relu1_1 ... relu5_4" if bad else None


@dataclass(frozen=True)
class ImageStyleConfig(Options):
    """Every setting of an image style transfer run; the CLI's options, their help and defaults come from here.

    Sizes are in pixels of the long side; ``image_size="auto"`` takes the content's own size, reduced to
    the largest that the memory estimate fits on the device (:func:`auto_image_size`). Loss weights
    multiply relative losses (each layer's error divided by its target's energy), so they carry over
    between weight sources and image sizes. ``optimize`` holds the optimizer settings; a keyword such as
    ``iterations=100`` reaches it through :func:`stylize_image`.

    >>> ImageStyleConfig(image_size=256).optimize.steps
    500
    >>> ImageStyleConfig(image_size=8)
    Traceback (most recent call last):
    ...
    nst_core.errors.ConfigError: image_size must be a whole number >= 16, not 8
    """

    image_size: int | Literal["auto"] = option(
        512, kind="size", min=MIN_SIDE,
        help="Long side of the result in px, or auto: the content's own size, reduced to what fits the device.")
    style_scale: float = option(1.0, kind="float", min=0.0, min_open=True,
                                help="Style images are resized to this times the image size.")
    content_weight: float = option(1.0, kind="float", min=0.0, help="Weight of the content loss.")
    style_weight: float = option(10.0, kind="float", min=0.0, help="Weight of the style loss.")
    tv_weight: float = option(1.0, kind="float", min=0.0, help="Total-variation smoothing.")
    content_layers: tuple[str, ...] = option(("relu4_2",), kind="names", check=_layer_rule,
                                             help="Comma-separated VGG layer names.")
    style_layers: tuple[str, ...] = option(("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"), kind="names",
                                           check=_layer_rule, help="Comma-separated VGG layer names.")
    style_blend_weights: tuple[float, ...] | None = blend_weights_option("image")
    init: str = option("content", help="Start from: content, noise, or an image file.")
    original_colors: Literal["off", "chroma", "luminance"] = option(
        "off", choices=("off", "chroma", "luminance"),
        switches={"chroma": "--original-colors", "luminance": "--luminance-only"},
        help="Keep the content's colours: chroma (the result's luminance with the content's chroma) or "
             "luminance (transfer on luminance alone, Gatys et al. 2017).")
    scales: tuple[int, ...] | None = option(None, kind="ints", min=MIN_SIDE, optional=True,
                                            help="Coarse-to-fine long sides, e.g. 512,1024 (default: automatic).")
    tile: int | Literal["auto"] = option(
        "auto", kind="size", min=MIN_SIDE,
        help="Evaluate the loss in tiles of this many px (the same result in less memory), or auto: tile only "
             "the scales that would not fit untiled.")
    backbone: Literal["auto", "vgg19", "vgg16"] = option("auto", choices=("auto", "vgg19", "vgg16"),
                                                         help="VGG network.")
    weights: str = option("auto", help="auto, torchvision, vgg16-hed, random (tests only), or a weights file.")
    weights_layout: Literal["auto", "torchvision", "caffe"] = option(
        "auto", choices=("auto", "torchvision", "caffe"), help="For a weights file: its preprocessing.")
    pooling: Literal["max", "avg"] = option("max", choices=("max", "avg"), help="max or avg pooling.")
    optimize: OptimizeConfig = option(kind="nested", default_factory=OptimizeConfig, help="Optimizer settings.")
    save_every: int = option(0, kind="int", min=0, help="Write an intermediate image every N steps (0: never).")
    device: str = device_option()
    precision: str = precision_option()
    threads: int | None = threads_option()
    seed: int | None = seed_option()

    def __post_init__(self):
        validate(self)
        if not self.content_layers and not self.style_layers:
            raise ConfigError("content_layers and style_layers are both empty; give at least one layer",
                              "style_layers")
        if self.backbone == "vgg16":
            try:
                check_layers("vgg16", self.content_layers + self.style_layers)
            except ValueError as err:
                raise ConfigError(str(err), "style_layers") from None

    @property
    def layers(self) -> tuple[str, ...]:
        return self.content_layers + self.style_layers


@dataclass(kw_only=True)
class ImageResult(StyleResult):
    """Outcome of :func:`stylize_image`: ``image`` ``(3, H, W)`` RGB in [0, 1] on the CPU, plus the trace."""

    image: Tensor
    content_path: str | None = None

    def pil(self):
        return to_pil(self.image)

    def _write(self, path: Path, *, bit_depth: int = 8, metadata: bool = True) -> Path:
        """``bit_depth``: 8, or 16 (PNG, TIFF). ``metadata``: carry the content file's ICC profile (the pixels
        converted into it) and EXIF (orientation normal) into the result."""
        meta = read_metadata(self.content_path) if metadata and self.content_path else None
        return save_image(self.image, path, inputs=self.inputs, bit_depth=bit_depth, metadata=meta)


#: Up to this long side the automatic schedule is one scale: starting at half the size was measured to leave
#: the full-size stage nearly as long, so the coarse stage only added time (``benchmarks/multiscale.py``: 256,
#: 512 and 1024 px; at 1024 px 2405 s alone against 2602 s from 512 px, to within 1 % of the same loss).
SINGLE_SCALE_UP_TO = 1024


def scale_schedule(image_size: int, scales: Sequence[int] | None = None) -> list[int]:
    """Long-side sizes to optimize at, coarse to fine, ending at ``image_size``.

    Automatic: one scale up to :data:`SINGLE_SCALE_UP_TO` (1024 px); above, halve from ``image_size`` while the
    next size stays at least 1024 px (2048 -> [1024, 2048], 4096 -> [1024, 2048, 4096]). There the coarse scales
    are for the picture's large-scale structure (the network's receptive field covers a small part of a large
    picture), not for time; each finer scale starts from the upsampled result.

    >>> scale_schedule(1024), scale_schedule(4096)
    ([1024], [1024, 2048, 4096])
    """
    if scales:
        return sorted({int(s) for s in scales if int(s) < image_size}) + [image_size]
    out = [image_size]
    while out[0] // 2 >= SINGLE_SCALE_UP_TO:
        out.insert(0, out[0] // 2)
    return out


def _long_side_shape(image: Tensor | tuple[int, int], size: int) -> tuple[int, int]:
    """(H, W) of ``image`` resized so its long side is ``size`` (as :func:`resize_long_side` does)."""
    return long_side_shape(tuple(image.shape[-2:]) if isinstance(image, Tensor) else tuple(image), size)


def _history_options(cfg: ImageStyleConfig, shrink: bool) -> list[tuple[str, int]]:
    """The configured L-BFGS history, then (where ``shrink``) the smaller settings of :data:`HISTORY_LADDER`."""
    own = (cfg.optimize.history_precision, cfg.optimize.history_size)
    if not shrink or cfg.optimize.optimizer != "lbfgs":
        return [own]
    per_pixel = lambda hp, m: m * (2 if hp == "bf16" else 4)  # noqa: E731
    return [own] + [(hp, m) for hp, m in HISTORY_LADDER if per_pixel(hp, m) < per_pixel(*own)]


def _memory_plan(content_hw: tuple[int, int], style_hws: Sequence[tuple[int, int]], size: int,
                 cfg: ImageStyleConfig, *, arch: str, precision: str, have: int, shrink_history: bool,
                 with_styles: bool = True) -> MemoryPlan | None:
    """How a run at ``size`` fits in ``have`` bytes (tiles per scale, history), or None."""
    sizes = scale_schedule(size, cfg.scales)
    shapes = [long_side_shape(content_hw, s) for s in sizes]
    styles = [[long_side_shape(hw, max(MIN_SIDE, round(s * cfg.style_scale))) for hw in style_hws] if with_styles
              else [] for s in sizes]
    deepest = deepest_layer(arch, cfg.layers)
    return plan_memory(shapes, styles, tile=cfg.tile, have=have, arch=arch, deepest=deepest,
                       content_layers=cfg.content_layers, precision=precision, optimizer=cfg.optimize.optimizer,
                       history=_history_options(cfg, shrink_history))


def auto_image_size(content: Tensor, device: torch.device, cfg: ImageStyleConfig | None = None, *,
                    precision: str = "fp32", arch: str = "vgg19", have: int | None = None, styles: Sequence[tuple[int, int]] = ()) -> int:
    """What ``image_size="auto"`` picks: the content's own long side, run in tiles and with a smaller L-BFGS
    history (:data:`HISTORY_LADDER`) where that is what fits in 90 % of the device's free memory; only where
    even the smallest history and tiles would not fit, the largest long side (a multiple of 64 px) that does.
    ``styles``: the style pictures' (H, W), whose targets are computed at the same scale."""
    cfg = cfg or ImageStyleConfig()
    have = int(AUTO_MEMORY_FRACTION * (available_memory_bytes(device) if have is None else have))
    hw = (int(content.shape[-2]), int(content.shape[-1]))
    own = max(hw)
    fits = lambda n: _memory_plan(hw, styles, n, cfg, arch=arch, precision=precision, have=have,  # noqa: E731
                                  shrink_history=True) is not None
    if fits(own):
        return own
    lo, hi = MIN_SIDE, own
    while lo < hi:
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if fits(mid) else (lo, mid - 1)
    return max(MIN_SIDE, lo // 64 * 64 or lo)


def _load(item: ImageInput, what: str) -> tuple[Tensor, str | None]:
    """A picture given as a path or a ``(3, H, W)`` / ``(1, 3, H, W)`` RGB tensor in [0, 1]."""
    if isinstance(item, Tensor):
        x = item.detach().float().cpu()
        if x.dim() == 4 and x.shape[0] == 1:
            x = x[0]
        if x.dim() != 3 or x.shape[0] != 3:
            raise InputError(f"{what} tensor must be (3, H, W) RGB in [0, 1], got shape {tuple(item.shape)}")
        if min(x.shape[1:]) < MIN_SIDE:
            raise InputError(f"{what} image is {x.shape[2]}x{x.shape[1]} px; it needs at least {MIN_SIDE} px per side")
        if not bool(torch.isfinite(x).all()):
            raise InputError(f"{what} tensor has NaN or infinite values; give RGB values in [0, 1]")
        lo, hi = float(x.min()), float(x.max())
        if lo < -1e-3 or hi > 1 + 1e-3:
            hint = " (it looks like 0-255: divide by 255)" if hi > 1.5 else ""
            raise InputError(f"{what} tensor has values from {lo:g} to {hi:g}; give RGB values in [0, 1]{hint}")
        return x.clamp(0, 1), None
    if isinstance(item, (str, os.PathLike)):
        return load_image(item), os.fspath(item)
    hint = " (from a numpy array: torch.from_numpy(a).permute(2, 0, 1).float() / 255)" \
        if type(item).__name__ == "ndarray" else ""
    raise InputError(f"{what} must be a file path or a (3, H, W) torch tensor in [0, 1], "
                     f"not {type(item).__name__}{hint}")


def _style_list(styles) -> list:
    return as_list(styles, (str, os.PathLike, Tensor), what="styles", noun="path or a tensor")


@dataclass
class _Inputs:
    content: Tensor
    styles: list[Tensor]
    init: Tensor | None
    paths: dict = field(default_factory=dict)
    files: list[str] = field(default_factory=list)


def _read_inputs(content: ImageInput, styles, cfg: ImageStyleConfig) -> _Inputs:
    styles = _style_list(styles)
    if cfg.style_blend_weights is not None and len(cfg.style_blend_weights) != len(styles):
        raise ConfigError(f"{len(cfg.style_blend_weights)} style blend weights given for {len(styles)} style "
                          "images; give one weight per style image", "style_blend_weights")
    c, c_path = _load(content, "content")
    loaded = [_load(s, f"style {i + 1}") for i, s in enumerate(styles)]
    init, init_path = (None, None) if cfg.init in ("content", "noise") else _load(cfg.init, "init")
    files = [p for p in [c_path, *(p for _, p in loaded), init_path] if p]
    paths = {"content": c_path or "<tensor>", "styles": [p or "<tensor>" for _, p in loaded], "init": cfg.init}
    return _Inputs(c, [x for x, _ in loaded], init, paths, files)


def _check_sizes(inp: _Inputs, sizes: list[int], cfg: ImageStyleConfig, arch: str) -> None:
    """Refuse sizes the backbone cannot read: every pooling to the deepest layer must keep a pixel."""
    smallest = min_side(arch, cfg.layers)
    for size in sizes:
        h, w = _long_side_shape(inp.content, size)
        if min(h, w) < smallest:
            need = math.ceil(smallest * max(inp.content.shape[-2:]) / min(inp.content.shape[-2:]))
            param = "scales" if size != sizes[-1] else "image_size"
            raise ConfigError(f"{param} {size} px makes the content {w}x{h} px, but {arch} needs at least "
                              f"{smallest} px per side to reach {deepest_layer(arch, cfg.layers)}; use at least "
                              f"{need} px", param)
        s_size = max(MIN_SIDE, round(size * cfg.style_scale))
        for i, s in enumerate(inp.styles):
            sh, sw = _long_side_shape(s, s_size)
            if min(sh, sw) < smallest:
                raise ConfigError(f"style_scale {cfg.style_scale:g} makes style {i + 1} {sw}x{sh} px at image size "
                                  f"{size}, but {arch} needs at least {smallest} px per side; raise style_scale",
                                  "style_scale")


def _check_tile(cfg: ImageStyleConfig, arch: str) -> None:
    if cfg.tile == "auto":
        return
    deepest = deepest_layer(arch, cfg.layers)
    smallest = min_tile(vgg_geometry(arch, [deepest]))
    if cfg.tile < smallest:
        raise ConfigError(f"tile {cfg.tile} px is smaller than the receptive field of {deepest} in {arch} "
                          f"({smallest} px); use at least {smallest} px, or auto", "tile")


def _check_memory(inp: _Inputs, sizes: list[int], cfg: ImageStyleConfig, arch: str, precision: str,
                  device: torch.device, memory_limit: int | None, *, shrink_history: bool) -> MemoryPlan:
    """The tiles and history the run uses (:func:`plan_memory`), or a refusal that says what would fit."""
    have = available_memory_bytes(device) if memory_limit is None else memory_limit
    if shrink_history:  # image_size auto chose the size with a margin: keep to it
        have = int(AUTO_MEMORY_FRACTION * have)
    content_hw = tuple(inp.content.shape[-2:])
    style_hws = [tuple(s.shape[-2:]) for s in inp.styles]
    found = _memory_plan(content_hw, style_hws, sizes[-1], cfg, arch=arch, precision=precision, have=have,
                         shrink_history=shrink_history)
    if found is not None:
        return found
    h, w = _long_side_shape(inp.content, sizes[-1])
    deepest = deepest_layer(arch, cfg.layers)
    tile = cfg.tile if cfg.tile != "auto" else min_tile(vgg_geometry(arch, [deepest]))
    s_size = max(MIN_SIDE, round(sizes[-1] * cfg.style_scale))
    need = estimate_memory_bytes(h, w, arch=arch, deepest=deepest, history_size=cfg.optimize.history_size,
                                 precision=precision, optimizer=cfg.optimize.optimizer,
                                 history_precision=cfg.optimize.history_precision,
                                 tile=tile if tile < max(h, w) else None, content_layers=cfg.content_layers,
                                 style_shapes=[_long_side_shape(hw, s_size) for hw in style_hws])
    need = max(need, have + 1)  # what the smallest tiles need; the plan found that nothing fits
    if _memory_plan(content_hw, style_hws, sizes[-1], cfg, arch=arch, precision=precision, have=have,
                    shrink_history=shrink_history, with_styles=False) is not None:
        require_memory(need, device, have=have, param="style_scale",  # the style pictures are what does not fit
                       what=f"style_scale {cfg.style_scale:g} (style pictures of {s_size} px)",
                       advice="use a smaller style_scale")
    fit_fixed = _largest_fixed(content_hw, style_hws, cfg, arch, precision, have)
    advice = f"use image_size {fit_fixed} or less" if fit_fixed >= MIN_SIDE else "use a smaller image_size"
    if not shrink_history and cfg.optimize.optimizer == "lbfgs":
        fit_auto = auto_image_size(inp.content, device, cfg, precision=precision, arch=arch,
                                   have=int(have / AUTO_MEMORY_FRACTION), styles=style_hws)
        if fit_auto > fit_fixed:
            advice += f", or image_size auto ({fit_auto} px with a smaller L-BFGS history)"
    require_memory(need, device, have=have, param="image_size", what=f"image_size {sizes[-1]} ({w}x{h} px)",
                   advice=advice)
    raise AssertionError("require_memory refuses what does not fit")


def _largest_fixed(content_hw, style_hws, cfg: ImageStyleConfig, arch: str, precision: str, have: int) -> int:
    """The largest long side (multiple of 64 px) that fits with the configured history (tiles as configured)."""
    lo, hi = MIN_SIDE - 1, max(MIN_SIDE, 1 << 17)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        ok = _memory_plan(content_hw, style_hws, mid, cfg, arch=arch, precision=precision, have=have,
                          shrink_history=False) is not None
        lo, hi = (mid, hi) if ok else (lo, mid - 1)
    return lo // 64 * 64 if lo >= 64 else lo


def plan_image(inp: _Inputs, cfg: ImageStyleConfig, extractor: VGGFeatures, sizes: list[int], precision: str,
               device: torch.device, target_cache: TargetCache | None = None,
               tiles: Sequence[int | None] | None = None) -> Plan:
    """One segment per scale: targets at that scale, the previous scale's result upsampled as the start.
    ``tiles``: per scale, the tile size its loss is evaluated in (None: untiled)."""
    luminance_only = cfg.original_colors == "luminance"

    def segment(index: int, size: int) -> Segment:
        h, w = _long_side_shape(inp.content, size)
        tile = tiles[index] if tiles else None

        def prepare(previous: Tensor | None):
            c = resize_long_side(inp.content, size).unsqueeze(0).to(device)
            s_size = max(MIN_SIDE, round(size * cfg.style_scale))
            ss = [resize_long_side(s, s_size).unsqueeze(0).to(device) for s in inp.styles]
            transform = None
            if luminance_only:
                c = luminance(c)
                ss = [match_mean_std(luminance(s), c).expand(-1, 3, -1, -1) for s in ss]
                transform = lambda sig: sig.expand(-1, 3, -1, -1)  # noqa: E731
            content_feats = {}
            if cfg.content_layers:
                with torch.no_grad():
                    content_feats = extractor(c.expand(-1, 3, -1, -1), list(cfg.content_layers)) if tile is None \
                        else tiled_features(extractor, c.expand(-1, 3, -1, -1), cfg.content_layers, tile)
            grams = style_targets(extractor, ss, cfg.style_layers, cfg.style_blend_weights, cache=target_cache,
                                  tile=tile) if cfg.style_layers else {}
            objective = Objective(content_feats, grams, content_weight=cfg.content_weight,
                                  style_weight=cfg.style_weight, tv_weight=cfg.tv_weight)
            if previous is not None:
                x0 = F.interpolate(previous, size=(h, w), mode="bicubic", align_corners=False).clamp(0, 1)
            elif cfg.init == "content":
                x0 = c
            elif cfg.init == "noise":
                gen = torch.Generator().manual_seed(cfg.seed if cfg.seed is not None else 0)
                x0 = torch.rand(c.shape, generator=gen).to(device)
            else:
                img = resize_to(inp.init, (h, w)).unsqueeze(0).to(device)
                x0 = luminance(img) if luminance_only else img
            loss_fn = make_loss_fn(extractor, objective, transform) if tile is None \
                else make_tiled_loss_fn(extractor, objective, tile, transform)
            return x0, loss_fn

        label = f"scale {index + 1}/{len(sizes)} ({w}x{h} px)" if len(sizes) > 1 else f"{w}x{h} px"
        if tile is not None:
            label += f" in tiles of {tile} px"
        return Segment(label, prepare, info={"scale": index, "size": [w, h], "tile": tile},
                       project=lambda t: t.clamp(0, 1))

    return Plan([segment(i, s) for i, s in enumerate(sizes)], cfg.optimize, precision)


def _to_picture(signal: Tensor, inp: _Inputs, cfg: ImageStyleConfig) -> Tensor:
    """The optimized signal as the ``(3, H, W)`` picture on the CPU (colours put back where asked)."""
    img = signal.expand(-1, 3, -1, -1) if signal.shape[1] == 1 else signal
    if cfg.original_colors != "off":
        c = resize_to(inp.content, tuple(img.shape[-2:])).unsqueeze(0).to(img.device)
        img = transfer_chroma(img, c)
    return img[0].detach().float().cpu()


def stylize_image(content: ImageInput, styles: ImageInput | Sequence[ImageInput],
                  config: ImageStyleConfig | dict | None = None, *, extractor: VGGFeatures | None = None,
                  callbacks: Sequence[Callable[[Step], None]] = (),
                  on_image: Callable[[int, int, Tensor], None] | None = None,
                  log: Callable[[str], None] | None = None,
                  on_segment: Callable[[int, Result], None] | None = None, memory_limit: int | None = None,
                  checkpoint: str | os.PathLike | None = None, checkpoint_every: int = 0, resume: bool = False,
                  should_stop: Callable[[], bool] | None = None, target_cache: TargetCache | None = None,
                  **options) -> ImageResult:
    """Render ``content`` in the style of ``styles``.

    Parameters
    ----------
    content : path or Tensor (3, H, W) RGB in [0, 1]
    styles : one or a list of paths or tensors; blended by ``style_blend_weights``.
    config : ImageStyleConfig or a dict of its options, optional
        Any option can also be given as a keyword (``image_size=1024``, ``iterations=100``), which overrides it.
    extractor : VGGFeatures, optional
        A ready backbone; by default one is built from ``weights`` / ``backbone`` / ``pooling``.
    callbacks : called with a :class:`nst_core.Step` after every step of every scale.
    on_image : ``on_image(scale_index, step, image)`` every ``save_every`` steps (image (3, H, W), CPU).
    log : receives one-line messages (which weights were used, the scale schedule).
    on_segment : ``on_segment(scale_index, result)`` with each scale's :class:`nst_core.Result`.
    memory_limit : bytes the run may use in place of what the device reports free (the memory check and
        ``image_size="auto"`` use it; a size probe passes a huge value to try sizes the estimate refuses).
    checkpoint, checkpoint_every, resume : a checkpoint file, written every ``checkpoint_every`` steps (0: only
        on interruption) and removed at the end; ``resume=True`` continues from it (refused when it was made
        for other inputs or settings). See :func:`nst_core.run_plan`.
    should_stop : polled at every step; when it turns true the state is saved to ``checkpoint`` and
        :class:`nst_core.InterruptedRun` is raised, its ``partial`` the best picture so far (3, H, W).
    target_cache : a :class:`nst_core.TargetCache` shared by several runs: a style picture's Gram targets
        are computed once per size, layers and backbone (a batch worker keeps one).

    Returns
    -------
    ImageResult
    """
    cfg, device, precision = start_run(ImageStyleConfig, config, options, owner="stylize_image")
    say = log or (lambda _msg: None)
    inp = _read_inputs(content, styles, cfg)

    arch = extractor.arch if extractor is not None else ("vgg19" if cfg.backbone == "auto" else cfg.backbone)
    try:
        check_layers(arch, cfg.layers)
    except ValueError as err:
        raise ConfigError(str(err), "style_layers") from None
    image_size = cfg.image_size
    _check_tile(cfg, arch)
    if image_size == "auto":
        have = available_memory_bytes(device) if memory_limit is None else memory_limit
        image_size = auto_image_size(inp.content, device, cfg, precision=precision, arch=arch, have=have,
                                     styles=[tuple(s.shape[-2:]) for s in inp.styles])
        say(f"image_size auto: {image_size} px (the content is {max(inp.content.shape[-2:])} px; about "
            f"{human_bytes(AUTO_MEMORY_FRACTION * have)} of {device.type} memory to use)")
    sizes = scale_schedule(image_size, cfg.scales)
    _check_sizes(inp, sizes, cfg, arch)
    # before building the network (maybe a download): what fits, and how
    memory = _check_memory(inp, sizes, cfg, arch, precision, device, memory_limit,
                           shrink_history=cfg.image_size == "auto")
    if (memory.history_precision, memory.history_size) != (cfg.optimize.history_precision, cfg.optimize.history_size):
        cfg = cfg.replace(history_precision=memory.history_precision, history_size=memory.history_size)
    if any(t is not None for t in memory.tiles) or cfg.image_size == "auto":
        say(f"memory: {memory.describe(sizes)}")
    ck = Checkpoint.for_run(checkpoint, config_settings(cfg), [inp.content, *inp.styles, inp.init],
                            every=checkpoint_every, resume=resume)

    if extractor is None:
        extractor = build_extractor(cfg.weights, backbone=cfg.backbone, pooling=cfg.pooling,
                                    layout=cfg.weights_layout, log=say)
        if extractor.arch != arch:  # the weights decided the network (a VGG-16 file under backbone auto)
            _check_sizes(inp, sizes, cfg, extractor.arch)
            try:
                check_layers(extractor.arch, cfg.layers)
            except ValueError as err:
                raise ConfigError(str(err), "style_layers") from None
    say(f"backbone: {extractor.source}, {extractor.pooling} pooling")
    extractor = extractor.to(device)
    if device.type == "cuda" and not extractor.channels_last:
        extractor.use_channels_last()  # NHWC: the layout of cuDNN's tensor-core convolutions
    if len(sizes) > 1:
        say(f"multi-scale schedule: {' -> '.join(map(str, sizes))} px, {cfg.optimize.steps} steps each")

    cbs = list(callbacks)
    if on_image is not None and cfg.save_every > 0:
        def save_cb(step: Step) -> None:
            if step.index % cfg.save_every == 0 and step.index != step.total:
                on_image(step.segment, step.index, _to_picture(step.signal, inp, cfg))
        cbs.append(save_cb)
    try:
        out = run_plan(plan_image(inp, cfg, extractor, sizes, precision, device, target_cache, tiles=memory.tiles),
                       callbacks=cbs, log=say, on_result=on_segment, checkpoint=ck, should_stop=should_stop)
    except InterruptedRun as err:
        err.partial = _to_picture(err.partial, inp, cfg)
        raise

    result = _to_picture(out.carry, inp, cfg)
    final = out.runs[-1]["size"]
    c = resize_to(inp.content, (final[1], final[0])).unsqueeze(0).to(device)
    style = resize_long_side(inp.styles[0], max(MIN_SIDE, round(max(final) * cfg.style_scale))).to(device)
    metrics = image_metrics(extractor, result.to(device), c, style, cfg.style_layers or cfg.content_layers,
                            tile=memory.tiles[-1])
    trace = out.trace(modality="image", settings=config_settings(cfg), inputs=inp.paths,
                      extra={"backbone": extractor.arch, "weights_source": extractor.source, "scales": sizes,
                             "image_size": image_size, "tiles": list(memory.tiles),
                             "estimated_peak_bytes": memory.need, "metrics": metrics})
    return ImageResult(image=result, trace=trace, inputs=inp.files, content_path=inp.paths["content"]
                       if inp.paths["content"] != "<tensor>" else None)
