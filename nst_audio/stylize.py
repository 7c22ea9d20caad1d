"""``stylize_audio``: timbre and texture transfer on log-magnitude spectrograms (Ulyanov & Lebedev 2016;
Grinstein et al. 2018), run by the same objective and optimization loop as images."""

from __future__ import annotations

import dataclasses
import math
import numbers
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Literal, Sequence, Union

import torch
from torch import Tensor

from nst_core import (InputError, Objective, OptimizeConfig, Step, available_memory_bytes, device_description,
                      make_loss_fn, optimize, resolve_device, resolve_precision, run_trace, seed_everything,
                      style_targets, write_trace)
from nst_core.device import PRECISIONS, synchronize

from .io import DEFAULT_SAMPLE_RATE, AudioClip, is_silent, load_audio, save_audio
from .spectral import griffin_lim, log_magnitude, magnitude_from_log, mel_filterbank, mel_to_linear, stft

AudioInput = Union[str, os.PathLike, AudioClip]
_OPT = OptimizeConfig()
MODES = ("transfer", "texture", "style-from-content")
CHANNEL_MODES = ("mono", "stereo", "mid-side")


@dataclass(frozen=True)
class AudioStyleConfig:
    """Every setting of an audio style transfer run; the CLI's options and defaults come from here.

    mode : ``transfer`` (content and style losses, from the content), ``texture`` (style only, from
        noise, no content needed), ``style-from-content`` (style loss only, starting from the content:
        Grinstein et al.'s best setting).
    extractor : ``random-cnn`` (Ulyanov: one wide Conv1d over time, frequency bins as channels),
        ``multi-random-cnn`` (several kernel widths, for rhythm too), or ``vgg`` (an image backbone
        reading the spectrogram; pass it as ``extractor=`` to :func:`stylize_audio`).
    n_mels : optional mel front end: the signal is log(1 + mel magnitude) with this many bands
        (Slaney mel scale), turned back into a linear magnitude by non-negative least squares before
        Griffin-Lim. ``None`` (default) optimizes the linear-frequency log-magnitude.
    chunk_seconds : content longer than this is stylized in overlapping chunks of this length
        (``chunk_overlap_seconds`` cross-faded), with style statistics from the whole style clip.
    """

    mode: Literal["transfer", "texture", "style-from-content"] = "transfer"
    sample_rate: int = DEFAULT_SAMPLE_RATE
    n_fft: int = 2048
    hop_length: int = 512
    window: str = "hann"
    n_mels: int | None = None
    extractor: Literal["random-cnn", "multi-random-cnn", "vgg"] = "random-cnn"
    filters: int = 4096
    kernel_size: int = 11
    extractor_seed: int = 0
    content_weight: float = 1.0
    style_weight: float = 10.0
    content_layers: tuple[str, ...] | None = None
    style_layers: tuple[str, ...] | None = None
    style_blend_weights: tuple[float, ...] | None = None
    init: Literal["auto", "content", "noise"] = "auto"
    duration: float | None = None
    channels: Literal["mono", "stereo", "mid-side"] = "mono"
    griffin_lim_iters: int = 200
    griffin_lim_momentum: float = 0.99
    chunk_seconds: float = 30.0
    chunk_overlap_seconds: float = 2.0
    iterations: int = 300
    optimizer: Literal["lbfgs", "adam"] = _OPT.optimizer
    learning_rate: float | None = _OPT.learning_rate
    history_size: int = _OPT.history_size
    max_step: float | None = 1.0
    log_every: int = _OPT.log_every
    device: str = "auto"
    precision: str = "auto"
    seed: int | None = None

    def optimize_config(self, precision: str) -> OptimizeConfig:
        # max_step 1.0: no log-magnitude bin changes by more than a factor e in one L-BFGS step.
        return OptimizeConfig(steps=self.iterations, optimizer=self.optimizer, learning_rate=self.learning_rate,
                              history_size=self.history_size, log_every=self.log_every, precision=precision,
                              max_step=self.max_step)


@dataclass
class AudioResult:
    """Outcome of :func:`stylize_audio`.

    samples : ``(C, N)`` float32 waveform in [-1, 1] on the CPU. sample_rate : Hz.
    spectrograms : log-magnitude ``(F, T)`` of the content (mono mix, absent in texture mode), the
    (first) style and the result, for figures. trace : settings, per-step losses per chunk and channel,
    timings, device, precision, peak memory and ``metrics``. inputs : paths :meth:`save` will not overwrite.
    """

    samples: Tensor
    sample_rate: int
    spectrograms: dict[str, Tensor]
    trace: dict
    inputs: list[str] = field(default_factory=list)

    @property
    def metrics(self) -> dict:
        return self.trace.get("metrics", {})

    @property
    def duration(self) -> float:
        return self.samples.shape[-1] / self.sample_rate

    def save(self, path: str | os.PathLike, *, subtype: str = "PCM_16", trace: bool = True) -> Path:
        """Write the audio (WAV or FLAC by extension) and, unless ``trace=False``, ``<stem>.trace.json``."""
        out = save_audio(self.samples, path, self.sample_rate, subtype=subtype, inputs=self.inputs)
        if trace:
            self.trace["output"] = str(out)
            write_trace(trace_path(out), self.trace)
        return out

    def save_spectrogram(self, path: str | os.PathLike) -> Path:
        """Write a figure of the content, style and result spectrograms (format by extension, e.g. PNG)."""
        from .figures import save_spectrogram_figure

        return save_spectrogram_figure(self.spectrograms, path, sample_rate=self.sample_rate,
                                       hop_length=self.trace["settings"]["hop_length"], inputs=self.inputs)


def trace_path(output: str | os.PathLike) -> Path:
    p = Path(output)
    return p.with_name(p.stem + ".trace.json")


MAX_DURATION_SECONDS = 3 * 3600.0


def _validate(cfg: AudioStyleConfig, has_content: bool, n_styles: int) -> None:
    if cfg.mode not in MODES:
        raise InputError(f"unknown mode {cfg.mode!r}; use one of {', '.join(MODES)}")
    if cfg.channels not in CHANNEL_MODES:
        raise InputError(f"unknown channel mode {cfg.channels!r}; use one of {', '.join(CHANNEL_MODES)}")
    if n_styles < 1:
        raise InputError("give at least one style clip")
    if cfg.mode != "texture" and not has_content:
        raise InputError(f"mode {cfg.mode} needs a content clip; give one, or use --texture for style only")
    if cfg.style_blend_weights is not None and len(cfg.style_blend_weights) != n_styles:
        raise InputError(f"{len(cfg.style_blend_weights)} style blend weights given for {n_styles} style clips; "
                         "give one weight per style clip")
    if cfg.style_blend_weights is not None and (
            not all(math.isfinite(w) and w >= 0 for w in cfg.style_blend_weights) or sum(cfg.style_blend_weights) <= 0):
        raise InputError("style blend weights must be finite, non-negative and not all zero")
    if cfg.duration is not None:
        if not (math.isfinite(cfg.duration) and 0 < cfg.duration <= MAX_DURATION_SECONDS):
            raise InputError(f"--duration {cfg.duration:g} s is out of range; use a length between 0 and "
                             f"{MAX_DURATION_SECONDS:g} seconds")
        if has_content:
            raise InputError("--duration is for texture synthesis; with a content clip the output is as long as it")
    elif not has_content:
        raise InputError("texture synthesis needs --duration (seconds of output)")
    if cfg.n_fft < 16 or cfg.hop_length < 1 or cfg.hop_length > cfg.n_fft:
        raise InputError("--n-fft must be at least 16 and --hop between 1 and --n-fft")
    if cfg.sample_rate < 1000 or cfg.sample_rate > 384000:
        raise InputError(f"--sample-rate {cfg.sample_rate} Hz is out of range (1000 to 384000)")
    if cfg.duration is not None and int(round(cfg.duration * cfg.sample_rate)) < cfg.n_fft:
        raise InputError(f"--duration {cfg.duration:g} s is shorter than one FFT frame "
                         f"({cfg.n_fft / cfg.sample_rate:.3f} s)")
    if cfg.griffin_lim_iters < 0 or not 0 <= cfg.griffin_lim_momentum < 1:
        raise InputError("--griffin-lim-iters must be >= 0 and the momentum in [0, 1)")
    if not cfg.chunk_seconds > 2 * cfg.chunk_overlap_seconds >= 0:
        raise InputError("--chunk-seconds must exceed twice the chunk overlap")
    if cfg.precision not in PRECISIONS:
        raise InputError(f"unknown precision {cfg.precision!r}; use one of {', '.join(PRECISIONS)}")
    for name in ("content_weight", "style_weight"):
        v = getattr(cfg, name)
        if not (math.isfinite(v) and v >= 0):
            raise InputError(f"--{name.replace('_', '-')} must be a finite non-negative number")
    try:
        cfg.optimize_config("fp32")
    except ValueError as err:
        raise InputError(str(err)) from None


def _load(item: AudioInput, what: str, cfg: AudioStyleConfig, *, mono: bool) -> AudioClip:
    if isinstance(item, AudioClip):
        clip = item
        # The checks load_audio makes on a file, for a clip given in memory.
        if not (isinstance(clip.samples, Tensor) and clip.samples.dim() == 2 and clip.samples.shape[0] >= 1
                and clip.samples.is_floating_point()):
            shape = tuple(clip.samples.shape) if isinstance(clip.samples, Tensor) else type(clip.samples).__name__
            raise InputError(f"{what} clip must hold a (channels, samples) floating-point tensor, got {shape}")
        if not bool(torch.isfinite(clip.samples).all()):
            raise InputError(f"{what} clip has NaN or infinite samples; give finite samples in [-1, 1]")
        if isinstance(clip.sample_rate, bool) or not isinstance(clip.sample_rate, numbers.Integral) \
                or clip.sample_rate < 1:
            raise InputError(f"{what} clip has sample rate {clip.sample_rate!r}; give a positive whole number of Hz")
        if clip.sample_rate != cfg.sample_rate:
            import torchaudio.functional as AF

            clip = AudioClip(AF.resample(clip.samples, clip.sample_rate, cfg.sample_rate), cfg.sample_rate, clip.path)
        if mono:
            clip = clip.mono()
        if clip.samples.shape[-1] < cfg.n_fft:
            raise InputError(f"{what} clip has {clip.samples.shape[-1]} samples, fewer than one FFT frame "
                             f"({cfg.n_fft}); give a longer clip or a smaller --n-fft")
        return clip
    return load_audio(item, sample_rate=cfg.sample_rate, mono=mono, min_samples=cfg.n_fft)


def chunk_bounds(frames: int, chunk: int, overlap: int) -> list[tuple[int, int]]:
    """Frame ranges ``[start, end)`` of overlapping chunks covering ``frames`` (one chunk if it fits)."""
    if frames <= chunk:
        return [(0, frames)]
    step = chunk - overlap
    starts = list(range(0, frames - chunk, step)) + [frames - chunk]
    return [(s, s + chunk) for s in sorted(set(starts))]


def crossfade_chunks(chunks: Sequence[Tensor], bounds: Sequence[tuple[int, int]], frames: int) -> Tensor:
    """Join ``(F, T_i)`` chunks placed at ``bounds`` with linear cross-fades where they overlap."""
    f = chunks[0].shape[0]
    out = chunks[0].new_zeros(f, frames)
    weight = chunks[0].new_zeros(frames)
    for i, (chunk, (s, e)) in enumerate(zip(chunks, bounds)):
        w = chunk.new_ones(e - s)
        if i > 0:
            ov = bounds[i - 1][1] - s
            if ov > 0:
                w[:ov] = torch.linspace(0, 1, ov + 2, device=w.device, dtype=w.dtype)[1:-1]
        if i + 1 < len(bounds):
            ov = e - bounds[i + 1][0]
            if ov > 0:
                w[-ov:] = torch.minimum(w[-ov:], torch.linspace(1, 0, ov + 2, device=w.device, dtype=w.dtype)[1:-1])
        out[:, s:e] += chunk * w
        weight[s:e] += w
    return out / weight.clamp_min(1e-8)


def _split_channels(samples: Tensor, mode: str) -> tuple[list[Tensor], list[str]]:
    if mode == "mono" or samples.shape[0] == 1:
        return [samples.mean(0)], ["mono"]
    if samples.shape[0] != 2:
        raise InputError(f"--stereo needs a 1- or 2-channel content clip, this one has {samples.shape[0]}")
    left, right = samples[0], samples[1]
    if mode == "stereo":
        return [left, right], ["left", "right"]
    return [(left + right) / 2, (left - right) / 2], ["mid", "side"]


def _join_channels(waves: list[Tensor], names: list[str]) -> Tensor:
    if names == ["mid", "side"]:
        mid, side = waves
        return torch.stack([mid + side, mid - side])
    return torch.stack(waves)


def stylize_audio(content: AudioInput | None, styles: AudioInput | Sequence[AudioInput],
                  config: AudioStyleConfig | None = None, *, extractor=None,
                  callbacks: Sequence[Callable[[Step], None]] = (), log: Callable[[str], None] | None = None,
                  **options) -> AudioResult:
    """Give ``content`` the timbre and texture of ``styles``, or synthesize a texture (``content=None``).

    Parameters
    ----------
    content : path or AudioClip, or None for texture synthesis (``mode="texture"``, ``duration=`` seconds)
    styles : one or a list of paths or clips; several are blended by ``style_blend_weights``.
    config : AudioStyleConfig, optional; any field may also be given as a keyword, which overrides it.
    extractor : a FeatureExtractor over ``(B, F, T)`` spectrograms, optional. By default one is built from
        ``config.extractor``; ``vgg`` needs one passed in (``SpectrogramAsImage(image_backbone)``).
    callbacks : called with a :class:`nst_core.Step` after every step of every chunk and channel.
    log : receives one-line messages (extractor, chunking, estimated time and memory).

    Returns
    -------
    AudioResult
    """
    from .extractors import make_extractor
    from . import metrics as M

    try:
        cfg = dataclasses.replace(config or AudioStyleConfig(), **options)
    except TypeError as err:
        raise TypeError(f"stylize_audio: {err}") from None
    if isinstance(styles, (str, os.PathLike, AudioClip)):
        styles = [styles]
    styles = list(styles)
    if content is None and "mode" not in options and (config is None or config.mode == "transfer"):
        cfg = dataclasses.replace(cfg, mode="texture")
    _validate(cfg, content is not None, len(styles))
    device = resolve_device(cfg.device)
    precision = resolve_precision(cfg.precision, device)
    say = log or (lambda _msg: None)
    seed_everything(cfg.seed)
    t_setup = time.perf_counter()

    style_clips = [_load(s, f"style {i + 1}", cfg, mono=True) for i, s in enumerate(styles)]
    for i, clip in enumerate(style_clips):
        if is_silent(clip.samples):
            raise InputError(f"style clip {clip.path or i + 1} is silent (peak below -60 dBFS); it has no timbre "
                             "to transfer, give an audible clip")
    content_clip = _load(content, "content", cfg, mono=cfg.channels == "mono") if content is not None else None
    if content_clip is not None and cfg.mode != "texture" and is_silent(content_clip.samples):
        # Starting from silence the random CNN's ReLUs give no gradient, so the result would be silence too.
        name = f"content clip {content_clip.path}" if content_clip.path else "content clip"
        raise InputError(f"{name} is silent (peak below -60 dBFS); give an audible clip, or use --texture to "
                         "synthesize the style alone")
    inputs = [c.path for c in ([content_clip] if content_clip else []) + style_clips if c and c.path]

    spec = dict(n_fft=cfg.n_fft, hop_length=cfg.hop_length, window=cfg.window)
    n_freq = cfg.n_fft // 2 + 1
    if extractor is None:
        if cfg.extractor == "vgg":
            raise InputError("extractor vgg reads the spectrogram with an image backbone: pass one, e.g. "
                             "extractor=SpectrogramAsImage(build_extractor(...)), or use nst audio --extractor vgg")
        extractor = make_extractor(cfg.extractor, cfg.n_mels or n_freq, seed=cfg.extractor_seed, filters=cfg.filters,
                                   kernel_size=cfg.kernel_size)
    extractor = extractor.to(device)
    content_layers = tuple(cfg.content_layers or extractor.default_content_layers)
    style_layers = tuple(cfg.style_layers or extractor.default_style_layers)
    # Said once every check below has passed, so that a refused run prints nothing but its error.
    notes = [f"extractor: {getattr(extractor, 'description', type(extractor).__name__)}; mode {cfg.mode}"]

    fb = (mel_filterbank(n_fft=cfg.n_fft, n_mels=cfg.n_mels, sample_rate=cfg.sample_rate, device=device)
          if cfg.n_mels else None)

    def analyse(wave: Tensor) -> tuple[Tensor, Tensor]:
        """(1, N) wave -> the optimized signal (1, F or n_mels, T) and the complex STFT (1, F, T)."""
        c = stft(wave, **spec)
        mag = c.abs()
        return torch.log1p(fb @ mag if fb is not None else mag), c

    style_specs = [analyse(c.samples.to(device))[0] for c in style_clips]  # (1, F, T)
    grams = style_targets(extractor, style_specs, style_layers, cfg.style_blend_weights)

    if content_clip is not None:
        channel_waves, channel_names = _split_channels(content_clip.samples.to(device), cfg.channels)
        if cfg.channels != "mono" and channel_names == ["mono"]:
            notes.append("content clip is mono: stylizing its single channel")
        n_samples = content_clip.samples.shape[-1]
    else:
        n_samples = int(round(cfg.duration * cfg.sample_rate))  # at least n_fft: checked by _validate
        channel_waves, channel_names = [None], ["mono"]
    frames = n_samples // cfg.hop_length + 1
    chunk = max(2, int(cfg.chunk_seconds * cfg.sample_rate / cfg.hop_length))
    overlap = int(cfg.chunk_overlap_seconds * cfg.sample_rate / cfg.hop_length)
    bounds = chunk_bounds(frames, chunk, overlap)
    use_content = cfg.mode == "transfer"
    init = cfg.init if cfg.init != "auto" else ("noise" if cfg.mode == "texture" else "content")
    if init == "content" and content_clip is None:
        raise InputError("--init content needs a content clip")

    need = _estimate_memory(n_freq, bounds[0][1] - bounds[0][0], extractor, cfg)
    have = available_memory_bytes(device)
    if need > have:
        raise InputError(f"one chunk of {cfg.chunk_seconds:g} s would need about {need / 2**30:.1f} GB on "
                         f"{device.type} but {have / 2**30:.1f} GB is available; lower --chunk-seconds or --filters")
    for note in notes:
        say(note)
    runs: list[dict] = []
    waves_out: list[Tensor] = []
    magnitudes: list[Tensor] = []
    setup_seconds = time.perf_counter() - t_setup
    estimate_said = False
    gl_seconds = 0.0
    for ch_index, (wave, ch_name) in enumerate(zip(channel_waves, channel_names)):
        if wave is not None:
            c_spec, c_complex = analyse(wave[None])
            c_phase = torch.angle(c_complex)
        else:
            c_spec, c_phase = None, None
        pieces = []
        for k, (s, e) in enumerate(bounds):
            piece = c_spec[..., s:e] if c_spec is not None else None
            with torch.no_grad():
                content_feats = extractor(piece, list(content_layers)) if use_content else {}
            objective = Objective(content_feats, grams, content_weight=cfg.content_weight,
                                  style_weight=cfg.style_weight)
            loss_fn = make_loss_fn(extractor, objective)
            if init == "content":
                x0 = piece
            else:
                x0 = _noise_like_style(style_specs[0], e - s, seed=(cfg.seed or 0) + 7919 * k + ch_index)
            if not estimate_said and (len(bounds) > 1 or len(channel_names) > 1):
                per_step = _time_steps(loss_fn, x0)
                total_steps = cfg.iterations * len(bounds) * len(channel_names)
                say(f"long run: {len(channel_names)} channel(s) x {len(bounds)} chunk(s) of up to {cfg.chunk_seconds:g} s, "
                    f"about {per_step * total_steps:.0f} s and {need / 2**30:.1f} GB estimated")
                estimate_said = True
            # No projection: clamping the log-magnitude at 0 during L-BFGS (many bins of a tonal clip sit
            # there) spoils its curvature pairs and stalls the run; the formulation is unconstrained as in
            # Ulyanov & Lebedev, and negative values become zero magnitude when the spectrogram is inverted.
            res = optimize(x0, loss_fn, cfg.optimize_config(precision), callbacks=callbacks)
            run = res.summary()
            run.update(channel=ch_name, chunk=k, frames=[s, e])
            runs.append(run)
            pieces.append(res.signal[0].clamp_min(0))
            if res.stopped:
                say(f"{ch_name} chunk {k + 1}: {res.stopped}")
        result_spec = crossfade_chunks(pieces, bounds, frames) if len(pieces) > 1 else pieces[0]
        synchronize(device)
        t_gl = time.perf_counter()
        magnitude = magnitude_from_log(result_spec)
        if fb is not None:
            magnitude = mel_to_linear(magnitude, fb)
        wave_out = griffin_lim(magnitude[None], **spec, n_iter=cfg.griffin_lim_iters,
                               momentum=cfg.griffin_lim_momentum, init_phase=c_phase, length=n_samples,
                               generator=torch.Generator(device=device).manual_seed(cfg.seed or 0))[0]
        synchronize(device)  # the GPU runs ahead of the host: time the finished work
        gl_seconds += time.perf_counter() - t_gl
        waves_out.append(wave_out)
        magnitudes.append(magnitude)

    samples = _join_channels(waves_out, channel_names).float().cpu()
    peak = float(samples.abs().max())
    if peak > 0.999:
        samples = samples * (0.999 / peak)

    mono_out = samples.mean(0)
    out_spec = log_magnitude(mono_out, **spec)
    from .spectral import spectral_convergence_db

    # Over all channels at once: a silent first channel (a hard-right clip's left, the mid of an L = -R clip)
    # has an all-zero target, for which spectral convergence is undefined.
    sc = spectral_convergence_db(torch.stack(magnitudes), torch.stack(waves_out), **spec)
    metrics: dict = {"spectral_convergence_db": float(sc)}
    style_lin = log_magnitude(style_clips[0].samples, **spec)  # linear-frequency, for metrics and figures
    style_wave = style_clips[0].samples[0]
    metrics["style"] = {
        "gram_distance_result": M.gram_distance(out_spec, style_lin),
        "mfcc_distance_result": M.mfcc_stats_distance(mono_out.numpy(), style_wave.numpy(), cfg.sample_rate),
    }
    if content_clip is not None:
        content_mono = content_clip.samples.mean(0)
        content_spec = log_magnitude(content_mono, **spec)
        metrics["style"]["gram_distance_content"] = M.gram_distance(content_spec, style_lin)
        metrics["style"]["mfcc_distance_content"] = M.mfcc_stats_distance(content_mono.numpy(), style_wave.numpy(),
                                                                           cfg.sample_rate)
        metrics["content"] = {
            "log_spectral_distance_db": M.log_spectral_distance(out_spec, content_spec),
            "chroma_correlation": M.chroma_correlation(mono_out.numpy(), content_mono.numpy(), cfg.sample_rate),
            "onset_correlation": M.onset_correlation(mono_out.numpy(), content_mono.numpy(), cfg.sample_rate),
        }

    spectrograms = {"style": style_lin[0], "result": out_spec}
    if content_clip is not None:
        spectrograms["content"] = content_spec
    trace = run_trace(
        modality="audio",
        settings=dataclasses.asdict(cfg),
        runs=runs,
        inputs={"content": (content_clip.path or "<clip>") if content_clip else None,
                "styles": [c.path or "<clip>" for c in style_clips]},
        extra={"device": device_description(device), "precision": precision,
               "extractor": getattr(extractor, "description", type(extractor).__name__),
               "content_layers": list(content_layers), "style_layers": list(style_layers),
               "channels": channel_names, "chunks": len(bounds), "setup_seconds": setup_seconds,
               "griffin_lim_seconds": gl_seconds, "duration_seconds": n_samples / cfg.sample_rate,
               "metrics": metrics, "stopped": next((r["stopped"] for r in runs if r.get("stopped")), None)},
    )
    return AudioResult(samples=samples, sample_rate=cfg.sample_rate, spectrograms=spectrograms, trace=trace,
                       inputs=inputs)


def _noise_like_style(style_spec: Tensor, frames: int, *, seed: int) -> Tensor:
    """Noise with the style's per-frequency mean and spread: a texture start that is already in range."""
    gen = torch.Generator().manual_seed(seed)
    mean = style_spec.mean(-1, keepdim=True).cpu()
    std = style_spec.std(-1, keepdim=True).cpu()
    noise = torch.randn(style_spec.shape[:-1] + (frames,), generator=gen)
    return (mean + std * noise).clamp_min(0).to(style_spec.device)


def _time_steps(loss_fn, x0: Tensor, n: int = 2) -> float:
    """Seconds per loss-and-gradient evaluation, measured on ``n`` evaluations (for the estimate of a long run)."""
    x = x0.detach().clone().requires_grad_(True)
    loss_fn(x)["total"].backward()  # warm-up
    synchronize(x.device)
    t = time.perf_counter()
    for _ in range(n):
        x.grad = None
        loss_fn(x)["total"].backward()
    synchronize(x.device)
    return (time.perf_counter() - t) / n


def _estimate_memory(n_freq: int, frames: int, extractor, cfg: AudioStyleConfig) -> int:
    """Rough peak bytes of one chunk: activations kept for backward, the widest gradient, L-BFGS history."""
    channels = sum(p.shape[0] for p in extractor.parameters() if p.dim() > 1) or cfg.filters
    acts = 3 * channels * frames * 4
    signal = n_freq * frames * 4
    state = (2 * cfg.history_size + 6) * signal if cfg.optimizer == "lbfgs" else 8 * signal
    weights = sum(p.numel() for p in extractor.parameters()) * 4
    return int(acts + state + weights)
