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
                      StyleResult, TargetCache, available_memory_bytes, make_loss_fn, run_plan, start_run,
                      style_targets)
from nst_core.config import (ConfigError, Options, as_list, blend_weights_option, config_settings, device_option,
                             option, precision_option, threads_option, seed_option, validate)
from nst_core.device import human_bytes, require_memory
from nst_core.result import trace_path

from .backbones import VGGFeatures, activation_elements, check_layers, deepest_layer, layer_names, min_side
from .color import luminance, match_mean_std, transfer_chroma
from .io import MIN_SIDE, load_image, resize_long_side, resize_to, save_image, to_pil
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

    def pil(self):
        return to_pil(self.image)

    def _write(self, path: Path, **options) -> Path:
        if options:
            raise TypeError(f"ImageResult.save takes no options besides trace=, got {', '.join(options)}")
        return save_image(self.image, path, inputs=self.inputs)


def scale_schedule(image_size: int, scales: Sequence[int] | None = None) -> list[int]:
    """Long-side sizes to optimize at, coarse to fine, ending at ``image_size``.

    Automatic: halve from ``image_size`` while the next size stays at least 384 px (so 512 -> [512],
    1024 -> [512, 1024], 2048 -> [512, 1024, 2048]); coarse scales settle the large-scale structure
    cheaply and each finer scale starts from the upsampled result.

    >>> scale_schedule(2048)
    [512, 1024, 2048]
    """
    if scales:
        return sorted({int(s) for s in scales if int(s) < image_size}) + [image_size]
    out = [image_size]
    while out[0] // 2 >= 384:
        out.insert(0, out[0] // 2)
    return out


def estimate_memory_bytes(height: int, width: int, *, arch: str = "vgg19", deepest: str = "relu5_1",
                          history_size: int = 100, precision: str = "fp32", optimizer: str = "lbfgs",
                          style_shapes: Sequence[tuple[int, int]] = ()) -> int:
    """Rough peak memory of one optimization step at ``height x width``.

    Counts the activations the backward pass keeps (conv and ReLU outputs up to ``deepest``, in the
    forward precision), the transient gradient of the widest layer, the optimizer state (L-BFGS:
    2 * history_size signal copies) and the weights; or, if larger, the forward pass (no gradients) over
    the largest of ``style_shapes``, which computes the style targets.
    """
    act_bytes = 2 if precision == "bf16" else 4
    elems, widest = activation_elements(height, width, arch, deepest)
    signal = 3 * height * width * 4
    state = (2 * history_size + 6) * signal if optimizer == "lbfgs" else 8 * signal
    weights = 80 * 2**20
    step = elems * act_bytes + 3 * widest * 4 + state + weights
    style = 0
    for sh, sw in style_shapes:  # without gradients only two maps live at once, plus the picture itself
        _e, w_style = activation_elements(sh, sw, arch, deepest)
        style = max(style, 3 * w_style * 4 + 2 * 3 * sh * sw * 4 + weights)
    return int(max(step, style))


def _long_side_shape(image: Tensor | tuple[int, int], size: int) -> tuple[int, int]:
    """(H, W) of ``image`` resized so its long side is ``size`` (as :func:`resize_long_side` does)."""
    h0, w0 = image.shape[-2:] if isinstance(image, Tensor) else image
    if h0 >= w0:
        return size, max(1, round(w0 * size / h0))
    return max(1, round(h0 * size / w0)), size


AUTO_MEMORY_FRACTION = 0.9  # --image-size auto leaves a tenth of the free memory as a margin


def auto_image_size(content: Tensor, device: torch.device, cfg: ImageStyleConfig | None = None, *,
                    precision: str = "fp32", arch: str = "vgg19", deepest: str = "relu5_1",
                    have: int | None = None) -> int:
    """What ``image_size="auto"`` picks: the content's own long side, or less where the memory estimate
    (:func:`estimate_memory_bytes`) says it would not fit in 90 % of the device's free memory."""
    cfg = cfg or ImageStyleConfig()
    have = int(AUTO_MEMORY_FRACTION * (available_memory_bytes(device) if have is None else have))
    fit = _largest_fitting(content, have, arch, deepest, cfg, precision)
    return max(MIN_SIDE, min(int(max(content.shape[-2:])), fit))


def _largest_fitting(content: Tensor, have: int, arch: str, deepest: str, cfg: ImageStyleConfig,
                     precision: str) -> int:
    """Largest long side (multiple of 64 px) whose estimated memory fits in ``have`` bytes."""
    lo, hi = MIN_SIDE, 1 << 17
    while lo < hi:
        mid = (lo + hi + 1) // 2
        h, w = _long_side_shape(content, mid)
        need = estimate_memory_bytes(h, w, arch=arch, deepest=deepest, history_size=cfg.optimize.history_size,
                                     precision=precision, optimizer=cfg.optimize.optimizer)
        lo, hi = (mid, hi) if need <= have else (lo, mid - 1)
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


def _check_memory(inp: _Inputs, sizes: list[int], cfg: ImageStyleConfig, arch: str, precision: str,
                  device: torch.device, memory_limit: int | None) -> None:
    h, w = _long_side_shape(inp.content, sizes[-1])
    s_size = max(MIN_SIDE, round(sizes[-1] * cfg.style_scale))
    style_shapes = [_long_side_shape(s, s_size) for s in inp.styles]
    deepest = deepest_layer(arch, cfg.layers)
    need = estimate_memory_bytes(h, w, arch=arch, deepest=deepest, history_size=cfg.optimize.history_size,
                                 precision=precision, optimizer=cfg.optimize.optimizer, style_shapes=style_shapes)
    have = available_memory_bytes(device) if memory_limit is None else memory_limit
    if need > have:
        step_only = estimate_memory_bytes(h, w, arch=arch, deepest=deepest, history_size=cfg.optimize.history_size,
                                          precision=precision, optimizer=cfg.optimize.optimizer)
        if step_only <= have:  # the style pictures are what does not fit
            require_memory(need, device, have=have, param="style_scale",
                           what=f"style_scale {cfg.style_scale:g} (style pictures of {s_size} px)",
                           advice="use a smaller style_scale")
        fit = _largest_fitting(inp.content, have, arch, deepest, cfg, precision)
        require_memory(need, device, have=have, param="image_size", what=f"image_size {sizes[-1]} ({w}x{h} px)",
                       advice=f"use image_size {fit} or less")


def plan_image(inp: _Inputs, cfg: ImageStyleConfig, extractor: VGGFeatures, sizes: list[int], precision: str,
               device: torch.device, target_cache: TargetCache | None = None) -> Plan:
    """One segment per scale: targets at that scale, the previous scale's result upsampled as the start."""
    luminance_only = cfg.original_colors == "luminance"

    def segment(index: int, size: int) -> Segment:
        h, w = _long_side_shape(inp.content, size)

        def prepare(previous: Tensor | None):
            c = resize_long_side(inp.content, size).unsqueeze(0).to(device)
            s_size = max(MIN_SIDE, round(size * cfg.style_scale))
            ss = [resize_long_side(s, s_size).unsqueeze(0).to(device) for s in inp.styles]
            transform = None
            if luminance_only:
                c = luminance(c)
                ss = [match_mean_std(luminance(s), c).expand(-1, 3, -1, -1) for s in ss]
                transform = lambda sig: sig.expand(-1, 3, -1, -1)  # noqa: E731
            with torch.no_grad():
                content_feats = extractor(c.expand(-1, 3, -1, -1), list(cfg.content_layers)) \
                    if cfg.content_layers else {}
            grams = style_targets(extractor, ss, cfg.style_layers, cfg.style_blend_weights, cache=target_cache) \
                if cfg.style_layers else {}
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
            return x0, make_loss_fn(extractor, objective, transform)

        label = f"scale {index + 1}/{len(sizes)} ({w}x{h} px)" if len(sizes) > 1 else f"{w}x{h} px"
        return Segment(label, prepare, info={"scale": index, "size": [w, h]}, project=lambda t: t.clamp(0, 1))

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
    if image_size == "auto":
        have = available_memory_bytes(device) if memory_limit is None else memory_limit
        image_size = auto_image_size(inp.content, device, cfg, precision=precision, arch=arch,
                                     deepest=deepest_layer(arch, cfg.layers), have=have)
        say(f"image_size auto: {image_size} px (the content is {max(inp.content.shape[-2:])} px; about "
            f"{human_bytes(AUTO_MEMORY_FRACTION * have)} of {device.type} memory to use)")
    sizes = scale_schedule(image_size, cfg.scales)
    _check_sizes(inp, sizes, cfg, arch)
    _check_memory(inp, sizes, cfg, arch, precision, device, memory_limit)  # before building (maybe a download)
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
        out = run_plan(plan_image(inp, cfg, extractor, sizes, precision, device, target_cache), callbacks=cbs, log=say,
                       on_result=on_segment, checkpoint=ck, should_stop=should_stop)
    except InterruptedRun as err:
        err.partial = _to_picture(err.partial, inp, cfg)
        raise

    result = _to_picture(out.carry, inp, cfg)
    final = out.runs[-1]["size"]
    c = resize_to(inp.content, (final[1], final[0])).unsqueeze(0).to(device)
    style = resize_long_side(inp.styles[0], max(MIN_SIDE, round(max(final) * cfg.style_scale))).to(device)
    metrics = image_metrics(extractor, result.to(device), c, style, cfg.style_layers or cfg.content_layers)
    trace = out.trace(modality="image", settings=config_settings(cfg), inputs=inp.paths,
                      extra={"backbone": extractor.arch, "weights_source": extractor.source, "scales": sizes,
                             "image_size": image_size, "metrics": metrics})
    return ImageResult(image=result, trace=trace, inputs=inp.files)
