"""``stylize_image``: image style transfer (Gatys et al. 2015) on the shared optimization core."""

from __future__ import annotations

import dataclasses
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Literal, Sequence, Union

import torch
import torch.nn.functional as F
from torch import Tensor

from nst_core import (InputError, Objective, OptimizeConfig, ResourceError, Step, available_memory_bytes,
                      device_description, make_loss_fn, optimize, resolve_device, resolve_precision,
                      run_trace, seed_everything, style_targets, write_trace)
from nst_core.device import PRECISIONS

from .backbones import BLOCK_CHANNELS, VGGFeatures, check_layers, layer_names
from .color import luminance, match_mean_std, transfer_chroma
from .io import MIN_SIDE, load_image, resize_long_side, resize_to, save_image, to_pil
from .metrics import image_metrics
from .weights import build_extractor

ImageInput = Union[str, os.PathLike, Tensor]
_OPT = OptimizeConfig()


@dataclass(frozen=True)
class ImageStyleConfig:
    """Every setting of an image style transfer run; the CLI's options and defaults come from here.

    Sizes are in pixels of the long side; ``image_size="auto"`` takes the content's own size, reduced
    to the largest that the memory estimate fits on the device (:func:`auto_image_size`). Loss weights
    multiply relative losses (each layer's error divided by its target's energy), so they carry over
    between weight sources and image sizes.
    """

    image_size: int | Literal["auto"] = 512
    style_scale: float = 1.0
    content_weight: float = 1.0
    style_weight: float = 10.0
    tv_weight: float = 1.0
    content_layers: tuple[str, ...] = ("relu4_2",)
    style_layers: tuple[str, ...] = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
    style_blend_weights: tuple[float, ...] | None = None
    init: str = "content"
    original_colors: Literal["off", "chroma", "luminance"] = "off"
    scales: tuple[int, ...] | None = None
    backbone: Literal["auto", "vgg19", "vgg16"] = "auto"
    weights: str = "auto"
    weights_layout: Literal["auto", "torchvision", "caffe"] = "auto"
    pooling: Literal["max", "avg"] = "max"
    iterations: int = _OPT.steps
    optimizer: Literal["lbfgs", "adam"] = _OPT.optimizer
    learning_rate: float | None = _OPT.learning_rate
    history_size: int = _OPT.history_size
    log_every: int = _OPT.log_every
    save_every: int = 0
    device: str = "auto"
    precision: str = "auto"
    seed: int | None = None

    def optimize_config(self, precision: str) -> OptimizeConfig:
        return OptimizeConfig(steps=self.iterations, optimizer=self.optimizer, learning_rate=self.learning_rate,
                              history_size=self.history_size, log_every=self.log_every, precision=precision)


def scale_schedule(image_size: int, scales: Sequence[int] | None = None) -> list[int]:
    """Long-side sizes to optimize at, coarse to fine, ending at ``image_size``.

    Automatic: halve from ``image_size`` while the next size stays at least 384 px (so 512 -> [512],
    1024 -> [512, 1024], 2048 -> [512, 1024, 2048]); coarse scales settle the large-scale structure
    cheaply and each finer scale starts from the upsampled result.
    """
    if scales:
        out = sorted({int(s) for s in scales if int(s) < image_size}) + [image_size]
        return out
    out = [image_size]
    while out[0] // 2 >= 384:
        out.insert(0, out[0] // 2)
    return out


def estimate_memory_bytes(height: int, width: int, *, arch: str = "vgg19", deepest: str = "relu5_1",
                          history_size: int = _OPT.history_size, precision: str = "fp32",
                          optimizer: str = "lbfgs") -> int:
    """Rough peak memory of one optimization step at ``height x width``.

    Counts the activations the backward pass keeps (conv and ReLU outputs up to ``deepest``, in the
    forward precision), the transient gradient of the widest layer, the optimizer state
    (L-BFGS: 2 * history_size signal copies) and the weights.
    """
    act_bytes = 2 if precision == "bf16" else 4
    names = layer_names(arch)
    stop = names.index(deepest)
    elems, widest = 0, 0
    h, w = height, width
    block = 0
    for name in names[: stop + 1]:
        if name.startswith("pool"):
            h, w = max(h // 2, 1), max(w // 2, 1)
            block += 1
            elems += BLOCK_CHANNELS[block - 1] * h * w
            continue
        n = BLOCK_CHANNELS[block] * h * w
        elems += n
        widest = max(widest, n)
    signal = 3 * height * width * 4
    state = (2 * history_size + 6) * signal if optimizer == "lbfgs" else 8 * signal
    weights = 80 * 2**20
    return int(elems * act_bytes + 3 * widest * 4 + state + weights)


def _human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if n < 1024 or unit == "PB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f} PB"


@dataclass
class ImageResult:
    """Outcome of :func:`stylize_image`.

    image : ``(3, H, W)`` RGB in [0, 1] on the CPU. trace : the run's trace document (settings,
    per-step losses per scale, timings, device, precision, peak memory). inputs : the input paths,
    which :meth:`save` refuses to overwrite.
    """

    image: Tensor
    trace: dict
    inputs: list[str] = field(default_factory=list)

    @property
    def losses(self) -> dict[str, float]:
        """Final loss terms of the last scale."""
        last = self.trace["runs"][-1]["trace"]
        return {k: v[-1] for k, v in last.items() if v}

    @property
    def seconds(self) -> float:
        return float(self.trace["seconds"])

    def pil(self):
        return to_pil(self.image)

    def save(self, path: str | os.PathLike, *, trace: bool = True) -> Path:
        """Write the image (format by extension) and, unless ``trace=False``, ``<stem>.trace.json`` beside it."""
        out = save_image(self.image, path, inputs=self.inputs)
        if trace:
            self.trace["output"] = str(out)
            write_trace(trace_path(out), self.trace)
        return out


def trace_path(output: str | os.PathLike) -> Path:
    p = Path(output)
    return p.with_name(p.stem + ".trace.json")


def _load(item: ImageInput, what: str) -> tuple[Tensor, str | None]:
    if isinstance(item, Tensor):
        x = item.detach().float().cpu()
        if x.dim() == 4 and x.shape[0] == 1:
            x = x[0]
        if x.dim() != 3 or x.shape[0] != 3:
            raise InputError(f"{what} tensor must be (3, H, W) RGB in [0, 1], got shape {tuple(item.shape)}")
        if min(x.shape[1:]) < MIN_SIDE:
            raise InputError(f"{what} image is {x.shape[2]}x{x.shape[1]} px; it needs at least {MIN_SIDE} px per side")
        return x.clamp(0, 1), None
    return load_image(item), os.fspath(item)


def _validate(cfg: ImageStyleConfig, n_styles: int) -> None:
    if n_styles < 1:
        raise InputError("give at least one style image")
    if cfg.style_blend_weights is not None:
        if len(cfg.style_blend_weights) != n_styles:
            raise InputError(f"{len(cfg.style_blend_weights)} style blend weights given for {n_styles} style "
                             "images; give one weight per style image")
        if not all(math.isfinite(w) and w >= 0 for w in cfg.style_blend_weights) or sum(cfg.style_blend_weights) <= 0:
            raise InputError("style blend weights must be finite, non-negative and not all zero")
    if cfg.image_size != "auto" and (isinstance(cfg.image_size, bool) or not isinstance(cfg.image_size, int)):
        raise InputError(f"--image-size must be a whole number of px or auto, not {cfg.image_size!r}")
    if cfg.image_size != "auto" and cfg.image_size < MIN_SIDE:
        raise InputError(f"--image-size {cfg.image_size} is too small; use at least {MIN_SIDE} px")
    if cfg.scales and any(s < MIN_SIDE for s in cfg.scales):
        raise InputError(f"every scale must be at least {MIN_SIDE} px")
    if not cfg.style_scale > 0:
        raise InputError("--style-scale must be positive")
    for name in ("content_weight", "style_weight", "tv_weight"):
        if getattr(cfg, name) < 0 or not math.isfinite(getattr(cfg, name)):
            raise InputError(f"--{name.replace('_', '-')} must be a finite non-negative number")
    if cfg.original_colors not in ("off", "chroma", "luminance"):
        raise InputError("original colours must be off, chroma or luminance")
    if cfg.precision not in PRECISIONS:
        raise InputError(f"unknown precision {cfg.precision!r}; use one of {', '.join(PRECISIONS)}")
    if not cfg.content_layers and not cfg.style_layers:
        raise InputError("give at least one content or style layer")
    try:
        cfg.optimize_config("fp32")
    except ValueError as err:
        raise InputError(str(err)) from None


def stylize_image(content: ImageInput, styles: ImageInput | Sequence[ImageInput],
                  config: ImageStyleConfig | None = None, *, extractor: VGGFeatures | None = None,
                  callbacks: Sequence[Callable[[Step], None]] = (),
                  on_image: Callable[[int, int, Tensor], None] | None = None,
                  log: Callable[[str], None] | None = None, **options) -> ImageResult:
    """Render ``content`` in the style of ``styles``.

    Parameters
    ----------
    content : path or Tensor (3, H, W) RGB in [0, 1]
    styles : one or a list of paths or tensors; blended by ``style_blend_weights``.
    config : ImageStyleConfig, optional
        Settings; any field can also be given as a keyword (``image_size=1024``), which overrides it.
    extractor : VGGFeatures, optional
        A ready backbone; by default one is built from ``config.weights`` / ``backbone`` / ``pooling``.
    callbacks : called with a :class:`nst_core.Step` after every step of every scale.
    on_image : ``on_image(scale_index, step, image)`` every ``save_every`` steps (image (3, H, W), CPU).
    log : receives one-line messages (which weights were used, the scale schedule).

    Returns
    -------
    ImageResult
    """
    try:
        cfg = dataclasses.replace(config or ImageStyleConfig(), **options)
    except TypeError as err:
        raise TypeError(f"stylize_image: {err}") from None
    if isinstance(styles, (str, os.PathLike, Tensor)):
        styles = [styles]
    styles = list(styles)
    _validate(cfg, len(styles))
    device = resolve_device(cfg.device)
    precision = resolve_precision(cfg.precision, device)
    say = log or (lambda _msg: None)

    t_setup = time.perf_counter()
    content_img, content_path = _load(content, "content")
    loaded = [_load(s, f"style {i + 1}") for i, s in enumerate(styles)]
    style_imgs = [x for x, _ in loaded]
    init_img = None
    inputs = [p for p in [content_path] + [p for _, p in loaded] if p]
    if cfg.init not in ("content", "noise"):
        init_img, init_path = _load(cfg.init, "init")
        inputs.append(init_path)

    # Check memory before building the backbone, which may mean a download.
    arch = extractor.arch if extractor is not None else ("vgg19" if cfg.backbone == "auto" else cfg.backbone)
    try:
        check_layers(arch, list(cfg.content_layers) + list(cfg.style_layers))
    except ValueError as err:
        raise InputError(str(err)) from None
    names = layer_names(arch)
    deepest = names[max(names.index(n) for n in (*cfg.content_layers, *cfg.style_layers))]
    image_size = cfg.image_size
    if image_size == "auto":
        image_size = auto_image_size(content_img, device, cfg, precision=precision, arch=arch, deepest=deepest)
        say(f"--image-size auto: {image_size} px (the content is {max(content_img.shape[-2:])} px; "
            f"about {_human(AUTO_MEMORY_FRACTION * available_memory_bytes(device))} of {device.type} memory to use)")
    sizes = scale_schedule(image_size, cfg.scales)
    h_final, w_final = _long_side_shape(content_img, sizes[-1])
    need = estimate_memory_bytes(h_final, w_final, arch=arch, deepest=deepest, history_size=cfg.history_size,
                                 precision=precision, optimizer=cfg.optimizer)
    have = available_memory_bytes(device)
    if need > have:
        fit = _largest_fitting(content_img, have, arch, deepest, cfg, precision)
        raise ResourceError(f"--image-size {sizes[-1]} ({w_final}x{h_final} px) would need about {_human(need)} "
                            f"on {device.type} but about {_human(have)} is available; use --image-size {fit} or less")

    seed_everything(cfg.seed)  # before building: random test weights depend on it too
    if extractor is None:
        extractor = build_extractor(cfg.weights, backbone=cfg.backbone, pooling=cfg.pooling,
                                    layout=cfg.weights_layout, log=say)
    try:
        check_layers(extractor.arch, list(cfg.content_layers) + list(cfg.style_layers))
    except ValueError as err:
        raise InputError(str(err)) from None
    say(f"backbone: {extractor.source}, {extractor.pooling} pooling")
    extractor = extractor.to(device)
    if device.type == "cuda" and not extractor.channels_last:
        extractor.use_channels_last()  # NHWC: the layout of cuDNN's tensor-core convolutions
    if len(sizes) > 1:
        say(f"multi-scale schedule: {' -> '.join(str(s) for s in sizes)} px, {cfg.iterations} steps each")
    setup_seconds = time.perf_counter() - t_setup

    runs: list[dict] = []
    result: Tensor | None = None
    current = None
    for scale_index, size in enumerate(sizes):
        c = resize_long_side(content_img, size).unsqueeze(0).to(device)
        h, w = c.shape[-2:]
        s_size = max(MIN_SIDE, round(size * cfg.style_scale))
        ss = [resize_long_side(s, s_size).unsqueeze(0).to(device) for s in style_imgs]
        if cfg.original_colors == "luminance":
            c_sig = luminance(c)
            ss = [match_mean_std(luminance(s), c_sig).expand(-1, 3, -1, -1) for s in ss]
            transform = (lambda sig: sig.expand(-1, 3, -1, -1))
        else:
            c_sig, transform = c, None

        with torch.no_grad():
            content_feats = extractor(c_sig if transform is None else transform(c_sig), list(cfg.content_layers)) \
                if cfg.content_layers else {}
        grams = style_targets(extractor, ss, cfg.style_layers, cfg.style_blend_weights) if cfg.style_layers else {}
        objective = Objective(content_feats, grams, content_weight=cfg.content_weight,
                              style_weight=cfg.style_weight, tv_weight=cfg.tv_weight)
        loss_fn = make_loss_fn(extractor, objective, transform)

        if current is not None:
            x0 = F.interpolate(current, size=(h, w), mode="bicubic", align_corners=False).clamp(0, 1)
        elif cfg.init == "content":
            x0 = c_sig
        elif cfg.init == "noise":
            gen = torch.Generator().manual_seed(cfg.seed if cfg.seed is not None else 0)
            x0 = torch.rand(c_sig.shape, generator=gen).to(device)
        else:
            img = resize_to(init_img, (h, w)).unsqueeze(0).to(device)
            x0 = luminance(img) if cfg.original_colors == "luminance" else img

        def finish(sig: Tensor, c=c) -> Tensor:
            img = sig.expand(-1, 3, -1, -1) if sig.shape[1] == 1 else sig
            if cfg.original_colors != "off":
                img = transfer_chroma(img, c)
            return img[0].detach().float().cpu()

        cbs = list(callbacks)
        if on_image is not None and cfg.save_every > 0:
            def save_cb(step: Step, si=scale_index, finish=finish):
                if step.index % cfg.save_every == 0 and step.index != step.total:
                    on_image(si, step.index, finish(step.signal))
            cbs.append(save_cb)

        res = optimize(x0, loss_fn, cfg.optimize_config(precision), project=lambda t: t.clamp(0, 1), callbacks=cbs)
        current = res.signal
        run = res.summary()
        run.update(scale=scale_index, size=[int(w), int(h)])
        runs.append(run)
        result = finish(current)
        if res.stopped:
            say(f"scale {size} px: {res.stopped}")
            break

    assert result is not None
    final_style = resize_long_side(style_imgs[0], max(MIN_SIDE, round(size * cfg.style_scale)))
    metrics = image_metrics(extractor, result.to(device), c, final_style.to(device),
                            cfg.style_layers or ImageStyleConfig.style_layers)
    settings = dataclasses.asdict(cfg)
    trace = run_trace(
        modality="image",
        settings=settings,
        runs=runs,
        inputs={"content": content_path or "<tensor>", "styles": [p or "<tensor>" for _, p in loaded],
                "init": cfg.init},
        extra={"device": device_description(device), "precision": precision, "backbone": extractor.arch,
               "weights_source": extractor.source, "scales": sizes, "setup_seconds": setup_seconds,
               "stopped": runs[-1].get("stopped"), "metrics": metrics, "image_size": image_size},
    )
    return ImageResult(image=result, trace=trace, inputs=inputs)


AUTO_MEMORY_FRACTION = 0.9  # --image-size auto leaves a tenth of the free memory as a margin


def auto_image_size(content: Tensor, device: torch.device, cfg: ImageStyleConfig | None = None, *,
                    precision: str = "fp32", arch: str = "vgg19", deepest: str = "relu5_1") -> int:
    """What ``--image-size auto`` picks: the content's own long side, or less where the memory estimate
    (:func:`estimate_memory_bytes`) says it would not fit in 90 % of the device's free memory."""
    cfg = cfg or ImageStyleConfig()
    have = int(AUTO_MEMORY_FRACTION * available_memory_bytes(device))
    fit = _largest_fitting(content, have, arch, deepest, cfg, precision)
    return max(MIN_SIDE, min(int(max(content.shape[-2:])), fit))


def _long_side_shape(image: Tensor, size: int) -> tuple[int, int]:
    """(H, W) of ``image`` resized so its long side is ``size`` (as :func:`resize_long_side` does)."""
    h0, w0 = image.shape[-2:]
    if h0 >= w0:
        return size, max(1, round(w0 * size / h0))
    return max(1, round(h0 * size / w0)), size


def _largest_fitting(content: Tensor, have: int, arch: str, deepest: str, cfg: ImageStyleConfig,
                     precision: str) -> int:
    """Largest long side (multiple of 64 px) whose estimated memory fits in ``have`` bytes."""
    lo, hi = MIN_SIDE, 1 << 17
    while lo < hi:
        mid = (lo + hi + 1) // 2
        h, w = _long_side_shape(content, mid)
        need = estimate_memory_bytes(h, w, arch=arch, deepest=deepest, history_size=cfg.history_size,
                                     precision=precision, optimizer=cfg.optimizer)
        lo, hi = (mid, hi) if need <= have else (lo, mid - 1)
    return max(MIN_SIDE, lo // 64 * 64 or lo)
