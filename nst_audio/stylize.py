"""``stylize_audio``: timbre and texture transfer on log-magnitude spectrograms (Ulyanov & Lebedev 2016;
Grinstein et al. 2018), run by the same core as images.

The front end reads the clips, plans one segment per chunk and channel (:func:`plan_audio`), lets
:func:`nst_core.run_plan` run them (each channel's last chunk cross-fades the chunks and synthesizes the
waveform by Griffin-Lim), and measures the result.
"""

from __future__ import annotations

import math
import numbers
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal, Sequence, Union

import torch
from torch import Tensor

from nst_core import (Checkpoint, InputError, InterruptedRun, Objective, OptimizeConfig, Plan, Result, Segment, Step,
                      StyleResult, TargetCache, blend_grams, make_loss_fn, run_plan, start_run, style_targets)
from nst_core.config import (ConfigError, Options, as_list, blend_weights_option, config_settings, device_option,
                             option, precision_option, threads_option, seed_option, validate)
from nst_core.device import require_memory, synchronize
from nst_core.registry import extractor_names, get_extractor_builder
from nst_core.result import trace_path

from .io import DEFAULT_SAMPLE_RATE, AudioClip, is_silent, load_audio, save_audio
from .spectral import (StreamingGriffinLim, log_magnitude, magnitude_from_log, mel_filterbank, mel_to_linear,
                       stft_frames)

__all__ = ["AudioStyleConfig", "AudioResult", "stylize_audio", "plan_audio", "chunk_bounds", "crossfade_chunks",
           "trace_path"]

AudioInput = Union[str, os.PathLike, AudioClip]
MODES = ("transfer", "texture", "style-from-content")
CHANNEL_MODES = ("mono", "stereo", "mid-side")
MAX_DURATION_SECONDS = 3 * 3600.0
_BACKBONE_OPTIONS = {"backbone": "auto", "weights": "auto", "weights_layout": "auto", "pooling": "max"}


#: The stopping rule's tolerance for audio (window and minimum as for images: 100 steps), chosen by
#: ``benchmarks/convergence.py``: a chunk stops when its best loss fell by less than 0.1 % over 100 steps.
AUDIO_TOLERANCE = 1e-3


def _extractor_rule(name: str) -> str | None:
    try:
        get_extractor_builder("audio", name)
    except InputError as err:
        return str(err).split("; ", 1)[1] if "; " in str(err) else str(err)
    return None


def _momentum_rule(value: float) -> str | None:
    return None if value < 1 else f"must be below 1 (0.99 is fast Griffin-Lim's usual value), not {value:g}"


@dataclass(frozen=True)
class AudioStyleConfig(Options):
    """Every setting of an audio style transfer run; the CLI's options, their help and defaults come from here.

    mode : ``transfer`` (content and style losses, from the content), ``texture`` (style only, from
        noise, no content needed), ``style-from-content`` (style loss only, starting from the content:
        Grinstein et al.'s best setting).
    extractor : a name registered for audio: ``random-cnn`` (Ulyanov: one wide Conv1d over time, frequency
        bins as channels), ``multi-random-cnn`` (several kernel widths, for rhythm too), or ``vgg`` (an
        image backbone reading the spectrogram, chosen by ``backbone``, ``weights``, ``pooling``).
    n_mels : optional mel front end: the signal is log(1 + mel magnitude) with this many bands.
    chunk_seconds : content longer than this is stylized in overlapping chunks of this length
        (``chunk_overlap_seconds`` cross-faded), with style statistics from the whole style clip.
    optimize : optimizer settings; L-BFGS with a trust region of 1.0 per log-magnitude bin (no bin changes
        by more than a factor e in one step), 300 steps per chunk.

    >>> AudioStyleConfig().optimize.max_step
    1.0
    """

    mode: Literal["transfer", "texture", "style-from-content"] = option(
        "transfer", choices=MODES, switches={"texture": "--texture", "style-from-content": "--style-only"},
        help="transfer; texture (style only, from noise, no content clip; needs duration); style-from-content "
             "(style loss only, from the content: Grinstein et al.'s best setting).")
    sample_rate: int = option(DEFAULT_SAMPLE_RATE, kind="int", min=1000, max=384000, help="Working sample rate in Hz.")
    n_fft: int = option(2048, kind="int", min=16, help="FFT size in samples.")
    hop_length: int = option(512, kind="int", min=1, flags=("--hop",), help="Hop length in samples.")
    window: str = option("hann", choices=("hann", "hamming", "blackman"), help="STFT window.")
    n_mels: int | None = option(None, kind="int", min=8, optional=True,
                                help="Optimize a mel spectrogram with this many bands (default: linear frequency).")
    extractor: str = option("random-cnn", check=_extractor_rule,
                            help="random-cnn, multi-random-cnn, or vgg (an image backbone reading the spectrogram).")
    backbone: str = option("auto", choices=("auto", "vgg19", "vgg16"), help="For extractor vgg: the VGG network.")
    weights: str = option("auto", help="For extractor vgg: auto, torchvision, vgg16-hed, random, or a weights file.")
    weights_layout: str = option("auto", choices=("auto", "torchvision", "caffe"),
                                 help="For extractor vgg and a weights file: its preprocessing.")
    pooling: str = option("max", choices=("max", "avg"), help="For extractor vgg: max or avg pooling.")
    filters: int = option(4096, kind="int", min=1, help="Filters of the random CNN.")
    kernel_size: int = option(11, kind="int", min=1, help="Kernel width of the random CNN, in frames.")
    extractor_seed: int = option(0, kind="int", help="Seed of the random CNN's weights.")
    content_weight: float = option(1.0, kind="float", min=0.0, help="Weight of the content loss.")
    style_weight: float = option(10.0, kind="float", min=0.0, help="Weight of the style loss.")
    content_layers: tuple[str, ...] | None = option(None, kind="names", optional=True,
                                                    help="Comma-separated layer names (default: the extractor's own).")
    style_layers: tuple[str, ...] | None = option(None, kind="names", optional=True,
                                                  help="Comma-separated layer names (default: the extractor's own).")
    style_blend_weights: tuple[float, ...] | None = blend_weights_option("clip")
    init: Literal["auto", "content", "noise"] = option("auto", choices=("auto", "content", "noise"),
                                                       help="Start from: auto (the content; noise for texture), content or noise.")
    duration: float | None = option(None, kind="float", min=0.0, min_open=True, max=MAX_DURATION_SECONDS,
                                    optional=True, help="Seconds of output for texture synthesis.")
    channels: Literal["mono", "stereo", "mid-side"] = option(
        "mono", choices=CHANNEL_MODES, switches={"stereo": "--stereo", "mid-side": "--mid-side"},
        help="mono mix; stereo (left and right stylized apart); mid-side (mid and side apart).")
    griffin_lim_iters: int = option(200, kind="int", min=0, help="Griffin-Lim iterations.")
    griffin_lim_momentum: float = option(0.99, kind="float", min=0.0, check=_momentum_rule,
                                         help="Fast Griffin-Lim momentum, in [0, 1) (0: plain Griffin-Lim).")
    chunk_seconds: float = option(30.0, kind="float", min=0.0, min_open=True,
                                  help="Longer content is stylized in chunks of this many seconds.")
    chunk_overlap_seconds: float = option(2.0, kind="float", min=0.0, flags=("--chunk-overlap",),
                                          help="Seconds by which neighbouring chunks overlap and cross-fade.")
    optimize: OptimizeConfig = option(kind="nested", default_factory=lambda: OptimizeConfig(
        steps=300, max_step=1.0, tolerance=AUDIO_TOLERANCE),
                                      help="Optimizer settings.")
    device: str = device_option()
    precision: str = precision_option()
    threads: int | None = threads_option()
    seed: int | None = seed_option()

    def __post_init__(self):
        validate(self)
        if self.hop_length > self.n_fft:
            raise ConfigError(f"hop_length {self.hop_length} exceeds n_fft {self.n_fft}; use a hop of at most n_fft",
                              "hop_length")
        if not self.chunk_seconds > 2 * self.chunk_overlap_seconds:
            raise ConfigError(f"chunk_seconds {self.chunk_seconds:g} must exceed twice the chunk overlap "
                              f"({self.chunk_overlap_seconds:g} s)", "chunk_seconds")
        if self.duration is not None and int(round(self.duration * self.sample_rate)) < self.n_fft:
            raise ConfigError(f"duration {self.duration:g} s is shorter than one FFT frame "
                              f"({self.n_fft / self.sample_rate:.3f} s)", "duration")
        if self.mode == "texture" and self.init == "content":
            raise ConfigError("init content needs a content clip, and texture mode has none; use init auto or noise",
                              "init")
        if self.extractor != "vgg":
            for name, default in _BACKBONE_OPTIONS.items():
                if getattr(self, name) != default:
                    raise ConfigError(f"{name} applies to extractor vgg only (this run uses {self.extractor}); "
                                      f"leave it out or use extractor vgg", (name, "extractor"))


@dataclass(kw_only=True)
class AudioResult(StyleResult):
    """Outcome of :func:`stylize_audio`.

    samples : ``(C, N)`` float32 waveform in [-1, 1] on the CPU. sample_rate : Hz.
    spectrograms : log-magnitude ``(F, T)`` of the content (mono mix, absent in texture mode), the
    (first) style and the result, for figures. The trace holds settings, per-step losses per chunk and
    channel, timings, device, precision, peak memory and ``metrics``.
    """

    samples: Tensor
    sample_rate: int
    spectrograms: dict[str, Tensor] = field(default_factory=dict)

    @property
    def duration(self) -> float:
        return self.samples.shape[-1] / self.sample_rate

    def _write(self, path: Path, *, subtype: str = "PCM_16") -> Path:
        return save_audio(self.samples, path, self.sample_rate, subtype=subtype, inputs=self.inputs)

    def save_spectrogram(self, path: str | os.PathLike) -> Path:
        """Write a figure of the content, style and result spectrograms (format by extension, e.g. PNG)."""
        from .figures import save_spectrogram_figure

        return save_spectrogram_figure(self.spectrograms, path, sample_rate=self.sample_rate,
                                       hop_length=self.trace["settings"]["hop_length"], inputs=self.inputs)


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
                             f"({cfg.n_fft}); give a longer clip or a smaller n_fft")
        return clip
    if not isinstance(item, (str, os.PathLike)):
        raise InputError(f"{what} must be a file path or an nst_audio.AudioClip, not {type(item).__name__}")
    return load_audio(item, sample_rate=cfg.sample_rate, mono=mono, min_samples=cfg.n_fft)


def chunk_bounds(frames: int, chunk: int, overlap: int) -> list[tuple[int, int]]:
    """Frame ranges ``[start, end)`` of overlapping chunks covering ``frames`` (one chunk if it fits)."""
    if frames <= chunk:
        return [(0, frames)]
    step = chunk - overlap
    starts = list(range(0, frames - chunk, step)) + [frames - chunk]
    return [(s, s + chunk) for s in sorted(set(starts))]


class CrossFader:
    """Joins ``(F, T_i)`` chunks placed at ``bounds`` with linear cross-fades where they overlap, a chunk at a
    time: :meth:`add` returns the frames that no later chunk touches, so only the overlaps are held."""

    def __init__(self, bounds: Sequence[tuple[int, int]], frames: int):
        self.bounds, self.frames = list(bounds), frames
        self.base = 0  # first frame not returned yet
        self.acc: Tensor | None = None
        self.weight: Tensor | None = None

    def add(self, index: int, chunk: Tensor) -> Tensor:
        s, e = self.bounds[index]
        w = chunk.new_ones(e - s)
        if index > 0:
            ov = self.bounds[index - 1][1] - s
            if ov > 0:
                w[:ov] = torch.linspace(0, 1, ov + 2, device=w.device, dtype=w.dtype)[1:-1]
        if index + 1 < len(self.bounds):
            ov = e - self.bounds[index + 1][0]
            if ov > 0:
                w[-ov:] = torch.minimum(w[-ov:], torch.linspace(1, 0, ov + 2, device=w.device, dtype=w.dtype)[1:-1])
        end = max(e, self.base + (self.acc.shape[-1] if self.acc is not None else 0))
        if self.acc is None or self.acc.shape[-1] < end - self.base:  # grow the buffer to this chunk's end
            grow = end - self.base - (self.acc.shape[-1] if self.acc is not None else 0)
            self.acc = torch.cat([self.acc, chunk.new_zeros(chunk.shape[0], grow)], -1) if self.acc is not None \
                else chunk.new_zeros(chunk.shape[0], grow)
            self.weight = torch.cat([self.weight, chunk.new_zeros(grow)]) if self.weight is not None \
                else chunk.new_zeros(grow)
        self.acc[:, s - self.base:e - self.base] += chunk * w
        self.weight[s - self.base:e - self.base] += w
        done = self.bounds[index + 1][0] if index + 1 < len(self.bounds) else self.frames
        n = done - self.base
        out = self.acc[:, :n] / self.weight[:n].clamp_min(1e-8)
        self.acc, self.weight, self.base = self.acc[:, n:], self.weight[n:], done
        return out


def crossfade_chunks(chunks: Sequence[Tensor], bounds: Sequence[tuple[int, int]], frames: int) -> Tensor:
    """Join ``(F, T_i)`` chunks placed at ``bounds`` with linear cross-fades where they overlap (all at once)."""
    fader = CrossFader(bounds, frames)
    return torch.cat([fader.add(i, c) for i, c in enumerate(chunks)], dim=-1)


def _split_channels(samples: Tensor, mode: str) -> tuple[list[Tensor], list[str]]:
    if mode == "mono" or samples.shape[0] == 1:
        return [samples.mean(0)], ["mono"]
    if samples.shape[0] != 2:
        raise InputError(f"{mode} needs a 1- or 2-channel content clip, this one has {samples.shape[0]}; "
                         "give a mono or stereo clip, or stylize the mono mix")
    left, right = samples[0], samples[1]
    if mode == "stereo":
        return [left, right], ["left", "right"]
    return [(left + right) / 2, (left - right) / 2], ["mid", "side"]


def _join_channels(waves: list[Tensor], names: list[str]) -> Tensor:
    if names == ["mid", "side"]:
        mid, side = waves
        return torch.stack([mid + side, mid - side])
    return torch.stack(waves)


def _style_list(styles) -> list:
    return as_list(styles, (str, os.PathLike, AudioClip), what="styles", noun="path or an AudioClip")


@dataclass
class _Inputs:
    content: AudioClip | None
    styles: list[AudioClip]
    files: list[str]


def _read_inputs(content, styles, cfg: AudioStyleConfig) -> _Inputs:
    styles = _style_list(styles)
    if cfg.mode != "texture" and content is None:
        raise ConfigError(f"mode {cfg.mode} needs a content clip; give one, or use mode texture for style only", "mode")
    if cfg.mode == "texture" and cfg.duration is None:
        raise ConfigError("texture synthesis needs duration (seconds of output)", "duration")
    if cfg.duration is not None and content is not None:
        raise ConfigError("duration is for texture synthesis; with a content clip the output is as long as it",
                          "duration")
    if cfg.style_blend_weights is not None and len(cfg.style_blend_weights) != len(styles):
        raise ConfigError(f"{len(cfg.style_blend_weights)} style blend weights given for {len(styles)} style clips; "
                          "give one weight per style clip", "style_blend_weights")
    if cfg.init == "content" and content is None:
        raise ConfigError("init content needs a content clip", "init")
    style_clips = [_load(s, f"style {i + 1}", cfg, mono=True) for i, s in enumerate(styles)]
    for i, clip in enumerate(style_clips):
        if is_silent(clip.samples):
            raise InputError(f"style clip {clip.path or i + 1} is silent (peak below -60 dBFS); it has no timbre "
                             "to transfer, give an audible clip")
    clip = _load(content, "content", cfg, mono=cfg.channels == "mono") if content is not None else None
    if clip is not None:
        _split_channels(clip.samples[:, :1], cfg.channels)  # refuses a clip the channel mode cannot split
    if clip is not None and cfg.mode != "texture" and is_silent(clip.samples):
        # Starting from silence the random CNN's ReLUs give no gradient, so the result would be silence too.
        name = f"content clip {clip.path}" if clip.path else "content clip"
        raise InputError(f"{name} is silent (peak below -60 dBFS); give an audible clip, or use texture mode to "
                         "synthesize the style alone")
    files = [c.path for c in ([clip] if clip else []) + style_clips if c and c.path]
    return _Inputs(clip, style_clips, files)


def _build_extractor(cfg: AudioStyleConfig, n_bins: int, say: Callable[[str], None], given: Any):
    if given is None:
        extractor = get_extractor_builder("audio", cfg.extractor)(cfg, n_freq=n_bins, log=say)
    else:
        extractor = given
    names = getattr(extractor, "layer_names", None)
    content_layers = tuple(cfg.content_layers or extractor.default_content_layers)
    style_layers = tuple(cfg.style_layers or extractor.default_style_layers)
    if names is not None:
        for param, layers in (("content_layers", content_layers), ("style_layers", style_layers)):
            bad = [n for n in layers if n not in names]
            if bad:
                raise ConfigError(f"{param} has unknown layer(s) {', '.join(bad)} for extractor {cfg.extractor}; "
                                  f"its layers are {', '.join(names)}", param)
    return extractor, content_layers, style_layers


def _estimate_memory(extractor, n_bins: int, frames: int, cfg: AudioStyleConfig, precision: str) -> int:
    """Rough peak bytes of one chunk: the extractor's activations (its own figure), the L-BFGS history, weights."""
    acts = extractor.activation_bytes(n_bins, frames, 2 if precision == "bf16" else 4) \
        if hasattr(extractor, "activation_bytes") else 3 * cfg.filters * frames * 4
    signal = n_bins * frames * 4
    state = (2 * cfg.optimize.history_size + 6) * signal if cfg.optimize.optimizer == "lbfgs" else 8 * signal
    weights = sum(p.numel() for p in extractor.parameters()) * 4 if hasattr(extractor, "parameters") else 0
    return int(acts + state + weights)


METRICS_SECONDS = 60.0  # metrics and figures read at most the first minute, so they too stay bounded in memory


@dataclass
class _Synthesis:
    """What the plan's segments fill in: per channel, the waveform pieces and its Griffin-Lim."""

    pieces: list[list[Tensor]] = field(default_factory=list)
    synths: list[StreamingGriffinLim] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def waves(self) -> list[Tensor]:
        return [torch.cat(p) for p in self.pieces]

    @property
    def spectral_convergence_db(self) -> float:
        # Over all channels at once: a silent first channel (a hard-right clip's left, the mid of an L = -R clip)
        # has an all-zero target, for which spectral convergence is undefined.
        err, energy = sum(g.squared_error for g in self.synths), sum(g.squared_norm for g in self.synths)
        return -math.inf if err == 0 else 10.0 * math.log10(err / max(energy, 1e-30))


def plan_audio(inp: _Inputs, cfg: AudioStyleConfig, extractor, content_layers, style_layers, precision: str,
               device: torch.device, synth: _Synthesis,
               target_cache: TargetCache | None = None) -> tuple[Plan, list[str], int, int]:
    """One segment per chunk and channel, streamed: each chunk analyses only its own frames, and its
    ``finish`` cross-fades it into the chunks before and hands the frames that are complete to a block
    Griffin-Lim, so no step holds the whole clip's spectrogram. Returns the plan, the channel names, the
    chunk count and the output's samples."""
    spec = dict(n_fft=cfg.n_fft, hop_length=cfg.hop_length, window=cfg.window)
    fb = (mel_filterbank(n_fft=cfg.n_fft, n_mels=cfg.n_mels, sample_rate=cfg.sample_rate, device=device)
          if cfg.n_mels else None)

    def to_signal(mag: Tensor) -> Tensor:
        return torch.log1p(fb @ mag if fb is not None else mag)

    style_grams = _style_grams(inp, cfg, extractor, style_layers, to_signal, device, target_cache)
    if inp.content is not None:
        channel_waves, names = _split_channels(inp.content.samples, cfg.channels)
        n_samples = inp.content.samples.shape[-1]
    else:
        channel_waves, names = [None], ["mono"]
        n_samples = int(round(cfg.duration * cfg.sample_rate))
    frames = n_samples // cfg.hop_length + 1
    chunk = max(2, int(cfg.chunk_seconds * cfg.sample_rate / cfg.hop_length))
    overlap = int(cfg.chunk_overlap_seconds * cfg.sample_rate / cfg.hop_length)
    bounds = chunk_bounds(frames, chunk, overlap)
    use_content = cfg.mode == "transfer"
    init = cfg.init if cfg.init != "auto" else ("noise" if cfg.mode == "texture" else "content")
    noise_stats = _style_stats(inp, to_signal, spec, device) if init == "noise" else None
    segments: list[Segment] = []
    for ch, (wave, name) in enumerate(zip(channel_waves, names)):
        fader = CrossFader(bounds, frames)
        phase = None if wave is None else (lambda a, b, wave=wave: stft_frames(wave, a, b, **spec).angle().to(device))
        gl = StreamingGriffinLim(**spec, n_iter=cfg.griffin_lim_iters, momentum=cfg.griffin_lim_momentum,
                                 length=n_samples, phase=phase,
                                 generator=torch.Generator(device=device).manual_seed(cfg.seed or 0))
        synth.synths.append(gl)
        synth.pieces.append([])

        def prepare(_carry, k: int, ch=ch, wave=wave):
            s, e = bounds[k]
            piece = to_signal(stft_frames(wave, s, e, **spec).to(device).abs())[None] if wave is not None else None
            with torch.no_grad():
                content_feats = extractor(piece, list(content_layers)) if use_content else {}
            objective = Objective(content_feats, style_grams, content_weight=cfg.content_weight,
                                  style_weight=cfg.style_weight)
            x0 = piece if init == "content" else _noise(noise_stats, e - s, seed=(cfg.seed or 0) + 7919 * k + ch)
            return x0, make_loss_fn(extractor, objective)

        def finish(signal: Tensor, k: int, ch=ch, fader=fader, gl=gl):
            # No projection during the run: clamping the log-magnitude at 0 (many bins of a tonal clip sit
            # there) spoils L-BFGS's curvature pairs; negative values become zero magnitude here instead.
            joined = fader.add(k, signal[0].clamp_min(0))
            synchronize(device)
            t = time.perf_counter()
            magnitude = magnitude_from_log(joined)
            if fb is not None:
                magnitude = mel_to_linear(magnitude, fb)
            synth.pieces[ch].append(gl.push(magnitude, last=k == len(bounds) - 1))
            synchronize(device)  # the GPU runs ahead of the host: time the finished work
            synth.seconds += time.perf_counter() - t
            return None

        for k, (s, e) in enumerate(bounds):
            label = f"{name} chunk {k + 1}/{len(bounds)}" if len(bounds) > 1 else name
            segments.append(Segment(label, lambda carry, prepare=prepare, k=k: prepare(carry, k),
                                    info={"channel": name, "chunk": k, "frames": [s, e]},
                                    finish=lambda sig, finish=finish, k=k: finish(sig, k)))

    def estimate(per_step: float, total_steps: int) -> str:
        return (f"long run: {len(names)} channel(s) x {len(bounds)} chunk(s) of up to {cfg.chunk_seconds:g} s, "
                f"about {per_step * total_steps:.0f} s estimated")

    # A chunk's finish feeds the cross-fade and the block Griffin-Lim: a resumed run replays it (replay=True).
    plan = Plan(segments, cfg.optimize, precision, stop_on_failure=False, estimate=estimate, replay=True)
    return plan, names, len(bounds), n_samples


def _style_pieces(clip: AudioClip, cfg: AudioStyleConfig) -> list[tuple[int, int]]:
    """Frame ranges of a style clip, in chunks of at most ``chunk_seconds`` (one range for a short clip)."""
    frames = clip.samples.shape[-1] // cfg.hop_length + 1
    chunk = max(2, int(cfg.chunk_seconds * cfg.sample_rate / cfg.hop_length))
    return [(s, min(s + chunk, frames)) for s in range(0, frames, chunk)]


def _style_grams(inp: _Inputs, cfg: AudioStyleConfig, extractor, layers, to_signal, device,
                 cache: TargetCache | None = None) -> dict[str, Tensor]:
    """Blended Gram targets of the style clips. A clip longer than a chunk is read a chunk at a time and its
    Gram matrices averaged, weighted by frames (a Gram matrix is a mean over positions; only the few frames
    at each inner boundary, where the convolution sees zero padding instead of the next chunk, differ)."""
    spec = dict(n_fft=cfg.n_fft, hop_length=cfg.hop_length, window=cfg.window)
    per_clip = []
    for clip in inp.styles:
        wave = clip.samples[0]
        pieces = _style_pieces(clip, cfg)
        total = sum(e - s for s, e in pieces)
        acc: dict[str, Tensor] = {}
        for s, e in pieces:
            x = to_signal(stft_frames(wave, s, e, **spec).to(device).abs())[None]
            grams = style_targets(extractor, [x], layers, cache=cache)
            for k, g in grams.items():
                acc[k] = acc.get(k, 0) + g * ((e - s) / total)
        per_clip.append(acc)
    return blend_grams(per_clip, cfg.style_blend_weights)


def _style_stats(inp: _Inputs, to_signal, spec: dict, device) -> tuple[Tensor, Tensor]:
    """Per-bin mean and spread of the (first) style's signal over its first minute: where noise starts from."""
    clip = inp.styles[0]
    wave = clip.samples[0][: int(METRICS_SECONDS * clip.sample_rate)]
    x = to_signal(stft_frames(wave, 0, wave.shape[-1] // spec["hop_length"] + 1, **spec).to(device).abs())[None]
    return x.mean(-1, keepdim=True), x.std(-1, keepdim=True)


def _noise(stats: tuple[Tensor, Tensor], frames: int, *, seed: int) -> Tensor:
    """Noise with the style's per-frequency mean and spread: a texture start that is already in range."""
    mean, std = stats
    gen = torch.Generator().manual_seed(seed)
    noise = torch.randn(mean.shape[:-1] + (frames,), generator=gen)
    return (mean.cpu() + std.cpu() * noise).clamp_min(0).to(mean.device)


def _metrics(samples: Tensor, synth: _Synthesis, inp: _Inputs, cfg: AudioStyleConfig) -> tuple[dict, dict]:
    """The result's metrics and the spectrograms of content, style and result for figures, over at most
    the first :data:`METRICS_SECONDS` of each clip (spectral convergence over all of it)."""
    from . import metrics as M

    spec = dict(n_fft=cfg.n_fft, hop_length=cfg.hop_length, window=cfg.window)
    limit = int(METRICS_SECONDS * cfg.sample_rate)
    mono_out = samples.mean(0)[:limit]
    out_spec = log_magnitude(mono_out, **spec)
    style_wave = inp.styles[0].samples[0][:limit]
    style_lin = log_magnitude(style_wave, **spec)  # linear-frequency, for metrics and figures
    metrics: dict = {"spectral_convergence_db": synth.spectral_convergence_db, "style": {
        "gram_distance_result": M.gram_distance(out_spec, style_lin[None]),
        "mfcc_distance_result": M.mfcc_stats_distance(mono_out.numpy(), style_wave.numpy(), cfg.sample_rate)}}
    if samples.shape[-1] > limit:
        metrics["excerpt_seconds"] = METRICS_SECONDS
    spectrograms = {"style": style_lin, "result": out_spec}
    if inp.content is not None:
        content_mono = inp.content.samples.mean(0)[:limit]
        content_spec = log_magnitude(content_mono, **spec)
        metrics["style"]["gram_distance_content"] = M.gram_distance(content_spec, style_lin[None])
        metrics["style"]["mfcc_distance_content"] = M.mfcc_stats_distance(content_mono.numpy(), style_wave.numpy(),
                                                                           cfg.sample_rate)
        metrics["content"] = {
            "log_spectral_distance_db": M.log_spectral_distance(out_spec, content_spec),
            "chroma_correlation": M.chroma_correlation(mono_out.numpy(), content_mono.numpy(), cfg.sample_rate),
            "onset_correlation": M.onset_correlation(mono_out.numpy(), content_mono.numpy(), cfg.sample_rate),
        }
        spectrograms["content"] = content_spec
    return metrics, spectrograms


def stylize_audio(content: AudioInput | None, styles: AudioInput | Sequence[AudioInput],
                  config: AudioStyleConfig | dict | None = None, *, callbacks: Sequence[Callable[[Step], None]] = (),
                  log: Callable[[str], None] | None = None,
                  on_segment: Callable[[int, Result], None] | None = None, target_cache: TargetCache | None = None,
                  checkpoint: str | os.PathLike | None = None, checkpoint_every: int = 0, resume: bool = False,
                  should_stop: Callable[[], bool] | None = None, **options) -> AudioResult:
    """Give ``content`` the timbre and texture of ``styles``, or synthesize a texture (``content=None``).

    Parameters
    ----------
    content : path or AudioClip, or None for texture synthesis (``mode="texture"``, ``duration=`` seconds)
    styles : one or a list of paths or clips; several are blended by ``style_blend_weights``.
    config : AudioStyleConfig or a dict of its options, optional; any option may also be given as a keyword
        (``iterations=100``, ``extractor="vgg"``, ``weights="vgg16-hed"``), which overrides it.
        ``extractor=`` may also be a ready extractor module over ``(B, F, T)`` spectrograms.
    callbacks : called with a :class:`nst_core.Step` after every step of every chunk and channel.
    log : receives one-line messages (extractor, chunking, estimated time).
    on_segment : ``on_segment(index, result)`` with each chunk's :class:`nst_core.Result` (channels in turn).
    target_cache : a :class:`nst_core.TargetCache` shared by several runs: the style clips' Gram targets are
        computed once per extractor, spectrogram settings and layers (a batch worker keeps one).
    checkpoint, checkpoint_every, resume, should_stop : as for :func:`nst_image.stylize_image`. The checkpoint
        holds the current chunk's optimizer state and every finished chunk's spectrogram; a resumed run
        replays the finished chunks' cross-fade and Griffin-Lim from them, so its result equals an
        uninterrupted run's (bit-identical on the CPU with a fixed seed). When stopped,
        :class:`nst_core.InterruptedRun` carries no partial result (a chunk alone is not the clip).

    Returns
    -------
    AudioResult
    """
    given = options.pop("extractor") if not isinstance(options.get("extractor", ""), str) else None
    if given is not None and getattr(given, "spec", {}).get("name") in extractor_names("audio"):
        options["extractor"] = given.spec["name"]  # the trace names what ran
    if content is None and "mode" not in options and getattr(config, "mode", "transfer") == "transfer" \
            and not (isinstance(config, dict) and "mode" in config):
        options["mode"] = "texture"  # no content: a texture is what can be made
    cfg, device, precision = start_run(AudioStyleConfig, config, options, owner="stylize_audio")
    say = log or (lambda _msg: None)
    inp = _read_inputs(content, styles, cfg)

    n_bins = cfg.n_mels or cfg.n_fft // 2 + 1
    extractor, content_layers, style_layers = _build_extractor(cfg, n_bins, say, given)
    extractor = extractor.to(device)
    n_samples = inp.content.samples.shape[-1] if inp.content is not None else int(round(cfg.duration * cfg.sample_rate))
    chunk_frames = min(n_samples // cfg.hop_length + 1, max(2, int(cfg.chunk_seconds * cfg.sample_rate / cfg.hop_length)))
    require_memory(_estimate_memory(extractor, n_bins, chunk_frames, cfg, precision), device, param="chunk_seconds",
                   what=f"one chunk of {min(cfg.chunk_seconds, n_samples / cfg.sample_rate):g} s",
                   advice="lower chunk_seconds" + (" or filters" if cfg.extractor != "vgg" else ""))
    say(f"extractor: {getattr(extractor, 'description', type(extractor).__name__)}; mode {cfg.mode}")
    if inp.content is not None and cfg.channels != "mono" and inp.content.samples.shape[0] == 1:
        say("content clip is mono: stylizing its single channel")

    synth = _Synthesis()
    plan, names, chunks, n_samples = plan_audio(inp, cfg, extractor, content_layers, style_layers, precision,
                                                device, synth, target_cache)
    clips = ([inp.content.samples] if inp.content is not None else []) + [c.samples for c in inp.styles]
    ck = Checkpoint.for_run(checkpoint, config_settings(cfg), clips, every=checkpoint_every, resume=resume)
    try:
        out = run_plan(plan, callbacks=callbacks, log=say, on_result=on_segment, checkpoint=ck,
                       should_stop=should_stop)
    except InterruptedRun as err:
        err.partial = None
        raise

    samples = _join_channels([w.float().cpu() for w in synth.waves], names)
    peak = float(samples.abs().max())
    if peak > 0.999:
        samples = samples * (0.999 / peak)
    metrics, spectrograms = _metrics(samples, synth, inp, cfg)
    spec = getattr(extractor, "spec", {"name": cfg.extractor})
    trace = out.trace(
        modality="audio", settings=config_settings(cfg),
        inputs={"content": (inp.content.path or "<clip>") if inp.content else None,
                "styles": [c.path or "<clip>" for c in inp.styles]},
        extra={"extractor": getattr(extractor, "description", type(extractor).__name__), "extractor_spec": spec,
               "content_layers": list(content_layers), "style_layers": list(style_layers), "channels": names,
               "chunks": chunks, "griffin_lim_seconds": synth.seconds, "duration_seconds": n_samples / cfg.sample_rate,
               "metrics": metrics})
    return AudioResult(samples=samples, sample_rate=cfg.sample_rate, spectrograms=spectrograms, trace=trace,
                       inputs=inp.files)
