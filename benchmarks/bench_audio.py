"""Benchmark ``nst_audio.stylize_audio`` against a plain port of Ulyanov & Lebedev's audio style transfer.

The reference is their method (github.com/DmitryUlyanov/neural-style-audio-tf), written out here in plain
PyTorch: the log-magnitude spectrogram ``log1p |STFT|`` of content and style, one wide ``Conv1d`` over time
with the frequency bins as input channels plus ReLU, content loss ``2 * l2_loss`` of the feature difference,
style loss ``2 * l2_loss`` of the Gram difference with ``Gram = F F^T / T``, ``torch.optim.LBFGS`` over the
spectrogram in one ``.step(closure)``, then classic Griffin-Lim (random initial phase, no momentum).

Both implementations run in this process, on the same device, with

* the same clips: a ``--seconds`` content excerpt built by looping ``melody_sine.wav`` (8 s) and the style
  ``phrase_violin.wav``, loaded and resampled by :mod:`nst_audio.io`,
* the same spectrogram settings (n_fft 2048, hop 512, periodic Hann, centred with zero padding),
* the same network: the reference's ``nn.Conv1d`` gets its weights (and zero bias) copied from the very
  ``RandomCNN`` object passed to ``stylize_audio``,
* the same number of optimization steps = loss/gradient evaluations (the reference's closure calls are
  counted), L-BFGS with history ``--history-size``, unit step length, no line search, start = content,
* the same number of Griffin-Lim iterations (``--griffin-lim-iters``).

Each is warmed up once before its timed runs. Seconds per step are the optimization loop's wall time divided
by the steps run (ours: from its trace; ``torch.cuda.synchronize`` around both loops on CUDA); Griffin-Lim is
timed separately. Because the two use different loss normalisations, both final spectrograms are scored under
the library's objective (relative losses, ``AudioStyleConfig`` default weights) and under the reference's.

Run ``python benchmarks/bench_audio.py --help``; results go to stdout as JSON (and to ``--out``).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path
from typing import Callable, Sequence

import torch
from torch import Tensor, nn

from nst_core import Objective, make_loss_fn, precision_context, resolve_device, resolve_precision, style_targets
from nst_audio import spectral
from nst_audio.extractors import RandomCNN, ulyanov_std
from nst_audio.io import DEFAULT_SAMPLE_RATE, AudioClip, load_audio
from nst_audio.stylize import AudioStyleConfig, stylize_audio
from _common import PeakMemory, _loadavg, emit, machine_info, run_torch_lbfgs  # benchmarks/ is on sys.path when run as a script

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CONTENT = REPO / "examples" / "audio" / "melody_sine.wav"
DEFAULT_STYLE = REPO / "examples" / "audio" / "phrase_violin.wav"
N_FFT = 2048
HOP = 512
KERNEL_SIZE = 11
SEED = 0
#: Ulyanov & Lebedev's notebook: ``content_loss = ALPHA * 2 * tf.nn.l2_loss(net - content_features)`` with
#: ALPHA = 1e-2, ``style_loss = 2 * tf.nn.l2_loss(gram - style_gram)`` with weight 1.
REFERENCE_CONTENT_WEIGHT = 1e-2
REFERENCE_STYLE_WEIGHT = 1.0


def log(msg: str) -> None:
    print(f"[bench_audio] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- reference (Ulyanov & Lebedev)

def reference_stft(wave: Tensor) -> Tensor:
    """Complex STFT (F, T) of a (N,) wave: periodic Hann, centred with zero padding (librosa >= 0.10's
    default, and what ``nst_audio.spectral`` uses, so both implementations see the same spectrograms)."""
    window = torch.hann_window(N_FFT, periodic=True, device=wave.device, dtype=wave.dtype)
    return torch.stft(wave, N_FFT, hop_length=HOP, win_length=N_FFT, window=window, center=True,
                      pad_mode="constant", normalized=False, onesided=True, return_complex=True)


def reference_log_spectrogram(wave: Tensor) -> Tensor:
    """``log1p |STFT|`` of a (N,) wave as a contiguous (1, F, T) batch, the signal the reference optimises
    (``torch.stft``'s output is frame-major in memory; ``torch.optim.LBFGS`` needs a contiguous parameter)."""
    return torch.log1p(reference_stft(wave).abs()).unsqueeze(0).contiguous()


class UlyanovNet(nn.Module):
    """One wide 1-D convolution over time (frequency bins as channels, 'same' padding) and a ReLU."""

    def __init__(self, n_freq: int, filters: int, kernel_size: int):
        super().__init__()
        self.conv = nn.Conv1d(n_freq, filters, kernel_size, padding="same")
        self.relu = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        return self.relu(self.conv(x))


def build_reference_net(extractor: RandomCNN) -> UlyanovNet:
    """The reference network with the weights of ``extractor`` copied in (they were drawn with Ulyanov's
    ``std = sqrt(2) * sqrt(2 / ((F + filters) * 11))`` from a fixed seed; the bias is zero, as theirs)."""
    net = UlyanovNet(extractor.n_freq, extractor.filters, extractor.kernel_size)
    with torch.no_grad():
        net.conv.weight.copy_(extractor.conv.weight)
        net.conv.bias.copy_(extractor.conv.bias)
    net.requires_grad_(False)
    net.eval()
    return net.to(extractor.conv.weight.device)


def reference_gram(features: Tensor) -> Tensor:
    """Gram matrix of (1, C, T) features as in the reference: ``F F^T / T`` (C, C)."""
    flat = features[0]
    return flat @ flat.t() / flat.shape[1]


class ReferenceObjective:
    """Ulyanov & Lebedev's loss against fixed content features and style Gram."""

    def __init__(self, net: UlyanovNet, content_spec: Tensor, style_spec: Tensor):
        self.net = net
        with torch.no_grad():
            self.content_features = net(content_spec)
            self.style_gram = reference_gram(net(style_spec))

    def __call__(self, spec: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(content, style, weighted total) of a (1, F, T) spectrogram; ``2 * l2_loss(t)`` = ``sum(t ** 2)``."""
        features = self.net(spec)
        content = (features - self.content_features).pow(2).sum()
        style = (reference_gram(features) - self.style_gram).pow(2).sum()
        return content, style, REFERENCE_CONTENT_WEIGHT * content + REFERENCE_STYLE_WEIGHT * style


def run_reference(objective: ReferenceObjective, init: Tensor, steps: int, history_size: int,
                  sync: Callable[[], None]) -> dict:
    """Optimise a copy of ``init`` for ``steps`` loss/gradient evaluations of ``torch.optim.LBFGS``
    (see :func:`_common.run_torch_lbfgs`)."""
    spec = init.detach().clone().requires_grad_(True)
    out = run_torch_lbfgs(spec, lambda x: objective(x)[2], steps, history_size, sync)
    return {"spec": spec.detach(), **out}


def reference_griffin_lim(magnitude: Tensor, n_iter: int, length: int, generator: torch.Generator) -> Tensor:
    """Classic Griffin-Lim as in Ulyanov's notebook: random phase, then ``n_iter`` rounds of inverse STFT and
    re-analysis keeping the phase, then a last inverse (``n_iter + 1`` inverses, ``n_iter`` analyses, as the
    library's). ``torch.istft`` / ``torch.stft``, no momentum."""
    window = torch.hann_window(N_FFT, periodic=True, device=magnitude.device, dtype=magnitude.dtype)
    phase = (torch.rand(magnitude.shape, generator=generator, device=generator.device) * 2 * math.pi - math.pi)
    spec = magnitude * torch.exp(1j * phase.to(magnitude.device))
    for _ in range(n_iter):
        wave = torch.istft(spec, N_FFT, hop_length=HOP, win_length=N_FFT, window=window, center=True, length=length)
        spec = magnitude * torch.exp(1j * torch.angle(reference_stft(wave)))
    return torch.istft(spec, N_FFT, hop_length=HOP, win_length=N_FFT, window=window, center=True, length=length)


# --------------------------------------------------------------------------- measurement helpers

class CaptureOptimize:
    """Collects every chunk's :class:`nst_core.Result` through ``stylize_audio(on_segment=...)``, so the
    optimised spectrogram (not only the re-analysed audio) can be scored."""

    def __init__(self):
        self.results: list = []

    def __call__(self, _index, result) -> None:
        self.results.append(result)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


# --------------------------------------------------------------------------- main

def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--seconds", type=float, default=10.0, help="length of the content excerpt (looped), s")
    p.add_argument("--steps", type=int, default=300, help="loss/gradient evaluations per timed run")
    p.add_argument("--repeats", type=int, default=1,
                   help="timed runs of each, alternating ours/reference; the fastest of each is reported")
    p.add_argument("--warmup-steps", type=int, default=2, help="steps of the untimed warm-up run of each")
    p.add_argument("--filters", type=int, default=4096, help="filters of the random Conv1d")
    p.add_argument("--griffin-lim-iters", type=int, default=500, help="Griffin-Lim iterations of both")
    p.add_argument("--history-size", type=int, default=100, help="L-BFGS history of both")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    p.add_argument("--precision", default="auto", help="precision of ours: auto (tf32 on CUDA), fp32, tf32, bf16")
    p.add_argument("--reference-precision", default="fp32", choices=("fp32", "match"),
                   help="fp32 (TF32 switched off, also for cuDNN), or the same as ours")
    p.add_argument("--content", default=str(DEFAULT_CONTENT), help="content clip (looped to --seconds)")
    p.add_argument("--style", default=str(DEFAULT_STYLE), help="style clip")
    p.add_argument("--threads", type=int, default=None,
                   help="torch intra-op threads (default: torch's own choice); fewer than the cores can steady "
                        "timings on a machine shared with other work")
    p.add_argument("--out", default=None, help="also write the JSON here")
    args = p.parse_args(argv)
    if not args.seconds > 0.2 or args.steps < 1 or args.warmup_steps < 1 or args.repeats < 1 or args.filters < 1 \
            or args.griffin_lim_iters < 0 or args.history_size < 1:
        p.error("--seconds must exceed 0.2; --steps, --warmup-steps, --repeats, --filters, --history-size >= 1; "
                "--griffin-lim-iters >= 0")
    return args


def _rel(path: str) -> str:
    try:
        return os.path.relpath(path, REPO)
    except ValueError:
        return path


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    notes: list[str] = []
    if args.threads is not None:
        torch.set_num_threads(max(1, args.threads))
    device = resolve_device(args.device)
    ours_precision = resolve_precision(args.precision, device)
    ref_precision = "fp32" if args.reference_precision == "fp32" else ours_precision
    if device.type == "cuda" and ours_precision != ref_precision:
        notes.append(f"ours runs in {ours_precision} and the reference in {ref_precision}; pass --precision fp32 "
                     "(or --reference-precision match) for a same-precision comparison")

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    # Clips: the content looped (whole copies, then cut) to --seconds; the style as it is. Mono, 22050 Hz.
    sr = DEFAULT_SAMPLE_RATE
    source = load_audio(args.content, sample_rate=sr, mono=True, min_samples=N_FFT).samples
    n_samples = int(round(args.seconds * sr))
    copies = -(-n_samples // source.shape[-1])
    content_clip = AudioClip(source.repeat(1, copies)[:, :n_samples].contiguous(), sr, None)
    style_clip = load_audio(args.style, sample_rate=sr, mono=True, min_samples=N_FFT)
    content_wave = content_clip.samples[0].to(device)
    style_wave = style_clip.samples[0].to(device)
    content_spec = reference_log_spectrogram(content_wave)  # (1, F, T)
    style_spec = reference_log_spectrogram(style_wave)
    n_freq, frames = content_spec.shape[1], content_spec.shape[2]
    # The library's own analysis of the same waves: the reference must optimise the same spectrogram.
    spec_kw = dict(n_fft=N_FFT, hop_length=HOP, window="hann")
    spec_diff = max(float((spectral.log_magnitude(content_wave[None], **spec_kw) - content_spec).abs().max()),
                    float((spectral.log_magnitude(style_wave[None], **spec_kw) - style_spec).abs().max()))
    if spec_diff > 1e-4:
        notes.append(f"the reference's spectrograms differ from nst_audio.spectral's by up to {spec_diff:.2e}")

    # One network for both: the library's RandomCNN; the reference copies its weights.
    extractor = RandomCNN(n_freq, filters=args.filters, kernel_size=KERNEL_SIZE, seed=SEED).to(device)
    ref_net = build_reference_net(extractor)
    log(f"device {device}; content {n_samples / sr:.2f} s ({frames} frames), style {style_clip.duration:.2f} s "
        f"({style_spec.shape[2]} frames); {extractor.description}")

    cfg = AudioStyleConfig.of(iterations=args.steps, tolerance=0.0, filters=args.filters, kernel_size=KERNEL_SIZE, extractor_seed=SEED,
                           griffin_lim_iters=args.griffin_lim_iters, history_size=args.history_size,
                           device=str(device), precision=ours_precision, seed=0, n_fft=N_FFT, hop_length=HOP)
    if args.seconds > cfg.chunk_seconds:
        notes.append(f"{args.seconds:g} s exceeds stylize_audio's chunk length ({cfg.chunk_seconds:g} s): ours "
                     "optimises overlapping chunks while the reference optimises the whole clip")

    def run_ours(steps: int, gl_iters: int) -> tuple:
        with CaptureOptimize() as cap:
            sync()
            start = time.perf_counter()
            result = stylize_audio(content_clip, style_clip, cfg, extractor=extractor, iterations=steps,
                                   griffin_lim_iters=gl_iters, on_segment=cap)
            sync()
            total = time.perf_counter() - start
        return result, cap.results, total

    def run_ref(steps: int, gl_iters: int) -> tuple:
        sync()
        start = time.perf_counter()
        with precision_context(ref_precision, device):
            c = reference_log_spectrogram(content_wave)
            s = reference_log_spectrogram(style_wave)
            objective = ReferenceObjective(ref_net, c, s)
            out = run_reference(objective, c, steps, args.history_size, sync)
        sync()
        t_gl = time.perf_counter()
        with torch.no_grad():
            # Ulyanov's notebook inverts exp(x) - 1 unclamped; a bin below 0 becomes a tiny negative magnitude.
            reference_griffin_lim(torch.expm1(out["spec"][0]), gl_iters, n_samples,
                                  torch.Generator(device=device).manual_seed(0))
        sync()
        out["griffin_lim_seconds"] = time.perf_counter() - t_gl
        return out, time.perf_counter() - start

    warm_gl = min(args.griffin_lim_iters, 5)
    log(f"warm-up: {args.warmup_steps} steps and {warm_gl} Griffin-Lim iterations each")
    run_ours(args.warmup_steps, warm_gl)
    run_ref(args.warmup_steps, warm_gl)

    load_before = _loadavg()
    ours_runs, ref_runs = [], []
    for rep in range(args.repeats):
        log(f"[{rep + 1}/{args.repeats}] ours: {args.steps} steps, {args.griffin_lim_iters} Griffin-Lim iterations")
        with PeakMemory(device) as mem:
            result, results, total = run_ours(args.steps, args.griffin_lim_iters)
        loop = sum(r["seconds"] for r in result.trace["runs"])
        steps = sum(r["steps_run"] for r in result.trace["runs"])
        gl = float(result.trace["griffin_lim_seconds"])
        ours_runs.append({"result": result, "optimized": results, "seconds_total": total, "seconds_optimize": loop,
                          "steps": steps, "seconds_per_step": loop / steps, "griffin_lim_seconds": gl,
                          "peak_memory": mem.result})
        log(f"ours: {loop:.2f} s loop, {loop / steps:.4f} s/step; Griffin-Lim {gl:.2f} s")

        log(f"[{rep + 1}/{args.repeats}] reference: {args.steps} steps, {args.griffin_lim_iters} Griffin-Lim iterations")
        with PeakMemory(device) as mem:
            out, total = run_ref(args.steps, args.griffin_lim_iters)
        ref_runs.append({"out": out, "seconds_total": total, "seconds_optimize": out["seconds"], "steps": out["steps"],
                         "seconds_per_step": out["seconds"] / out["steps"],
                         "griffin_lim_seconds": out["griffin_lim_seconds"], "peak_memory": mem.result})
        log(f"reference: {out['seconds']:.2f} s loop, {out['seconds'] / out['steps']:.4f} s/step; "
            f"Griffin-Lim {out['griffin_lim_seconds']:.2f} s")
        if out["steps"] != args.steps:
            notes.append(f"the reference's L-BFGS made {out['steps']} closure calls, not {args.steps}")
    load_after = _loadavg()

    best_ours = min(ours_runs, key=lambda r: r["seconds_per_step"])
    best_ref = min(ref_runs, key=lambda r: r["seconds_per_step"])
    gl_ours = min(r["griffin_lim_seconds"] for r in ours_runs)
    gl_ref = min(r["griffin_lim_seconds"] for r in ref_runs)
    if load_before and device.type == "cpu" and load_before[0] > 0.5 * (os.cpu_count() or 1):
        notes.append(f"the 1-minute load average was {load_before[0]:.2f} before the timed runs on "
                     f"{os.cpu_count()} CPUs: other processes were competing, so CPU timings are noisy")
        if torch.get_num_threads() > 1:
            notes.append(f"{torch.get_num_threads()} torch threads on a busy machine: when another process holds a "
                         "core, every parallel op waits for its descheduled thread, which inflates work made of many "
                         "small ops (Griffin-Lim) by up to 20x on the 2-core VM this was written on; --threads 1 "
                         "gives steadier numbers there")
    if device.type != "cpu":
        notes.append("ours' griffin_lim_seconds comes from stylize_audio's trace, timed without a device "
                     "synchronisation at its end: on an asynchronous device it can miss the last queued kernels "
                     "(griffin_lim_seconds_synchronized re-times the library's griffin_lim on its own)")

    # Score both final spectrograms under both objectives, in fp32.
    with torch.no_grad():
        our_objective = Objective(extractor(content_spec, ["relu1"]),
                                  style_targets(extractor, [style_spec], ["relu1"]),
                                  content_weight=cfg.content_weight, style_weight=cfg.style_weight)
    our_loss_fn = make_loss_fn(extractor, our_objective)
    ref_objective = ReferenceObjective(ref_net, content_spec, style_spec)

    def score(spec: Tensor) -> dict:
        with torch.no_grad(), precision_context("fp32", device):
            ours = {k: float(v) for k, v in our_loss_fn(spec).items() if k != "tv"}
            content, style, total = ref_objective(spec)
        return {"our_objective": ours,
                "reference_objective": {"content": float(content), "style": float(style), "total": float(total)}}

    ours_spec = best_ours["optimized"][0].signal  # the one chunk: the best step, as stylize_audio keeps it
    ref_spec = best_ref["out"]["spec"]
    initial_scores, ours_scores, ref_scores = score(content_spec), score(ours_spec), score(ref_spec)
    # How far each got on its own objective: a ratio near 1 means it barely moved in --steps steps.
    progress = {"ours": ours_scores["our_objective"]["total"] / initial_scores["our_objective"]["total"],
                "reference": ref_scores["reference_objective"]["total"]
                / initial_scores["reference_objective"]["total"]}
    for name, ratio in progress.items():
        if ratio > 0.9:
            notes.append(f"{name} lowered its own objective only to {ratio:.3f} of its initial value in {args.steps} "
                         "steps: it had barely started, so its final losses say little about where it converges")

    gl_sync = None
    if device.type != "cpu" and args.griffin_lim_iters > 0:
        mag = spectral.magnitude_from_log(ours_spec.clamp_min(0))
        phase = torch.angle(reference_stft(content_wave))[None]
        times = []
        for _ in range(args.repeats):
            sync()
            t = time.perf_counter()
            spectral.griffin_lim(mag, **spec_kw, n_iter=args.griffin_lim_iters, momentum=cfg.griffin_lim_momentum,
                                 init_phase=phase, length=n_samples)
            sync()
            times.append(time.perf_counter() - t)
        gl_sync = min(times)

    ours_sps, ref_sps = best_ours["seconds_per_step"], best_ref["seconds_per_step"]

    def summary(best: dict, runs: list[dict]) -> dict:
        return {"seconds_total": best["seconds_total"], "seconds_optimize": best["seconds_optimize"],
                "seconds_per_step": best["seconds_per_step"], "steps": best["steps"],
                "seconds_per_step_all_repeats": [r["seconds_per_step"] for r in runs],
                "griffin_lim_seconds": min(r["griffin_lim_seconds"] for r in runs),
                "griffin_lim_seconds_all_repeats": [r["griffin_lim_seconds"] for r in runs]}

    ours_result = best_ours["result"]
    doc = {
        "benchmark": "audio style transfer: nst_audio.stylize_audio vs a plain port of Ulyanov & Lebedev (2016)",
        "machine": {**machine_info(device), "loadavg_before": load_before, "loadavg_after": load_after},
        "torch": torch.__version__,
        "settings": {
            "seconds": args.seconds, "sample_rate": sr, "samples": n_samples, "frames": frames,
            "style_seconds": style_clip.duration, "style_frames": int(style_spec.shape[2]),
            "content": f"{_rel(args.content)} looped {copies}x and cut to {args.seconds:g} s",
            "style": _rel(args.style),
            "n_fft": N_FFT, "hop_length": HOP, "window": "periodic hann, centred, zero padding",
            "frequency_bins": n_freq, "spectrogram_max_abs_difference_reference_vs_library": spec_diff,
            "network": f"Conv1d({n_freq} -> {args.filters}, kernel {KERNEL_SIZE}, 'same') + ReLU, random normal "
                       f"std {ulyanov_std(n_freq, args.filters, KERNEL_SIZE):.6g} (Ulyanov's formula), seed {SEED}, "
                       "zero bias; the reference copies the weights of the RandomCNN that ours uses",
            "steps": args.steps, "warmup_steps": args.warmup_steps, "repeats": args.repeats, "threads": args.threads,
            "griffin_lim_iters": args.griffin_lim_iters, "device": str(device),
            "precision_requested": args.precision, "precision_ours": ours_precision,
            "precision_reference": ref_precision,
            "optimizer_ours": f"nst_core L-BFGS, history {args.history_size}, lr 1, no line search, "
                              f"max_step {cfg.optimize.max_step} (trust region), init = content spectrogram",
            "optimizer_reference": f"torch.optim.LBFGS(max_iter=steps, history_size={args.history_size}, lr=1, "
                                   "line_search_fn=None, tolerances 0), one .step(closure), init = content "
                                   "spectrogram",
            "griffin_lim_ours": f"nst_audio.spectral.griffin_lim, momentum {cfg.griffin_lim_momentum}, initial "
                                "phase = the content's",
            "griffin_lim_reference": "torch.istft/torch.stft loop, no momentum, random initial phase",
            "our_objective_weights": {"content": cfg.content_weight, "style": cfg.style_weight},
            "reference_objective_weights": {"content": REFERENCE_CONTENT_WEIGHT, "style": REFERENCE_STYLE_WEIGHT},
        },
        "initial_losses": initial_scores,
        "ours": {
            **summary(best_ours, ours_runs),
            "griffin_lim_seconds_synchronized": gl_sync,
            "final_losses": ours_scores,
            "own_objective_final_over_initial": progress["ours"],
            "own_trace_last_step": {k: v[-1] for k, v in ours_result.trace["runs"][0]["trace"].items()},
            "spectrogram_is": "best step by total loss (what stylize_audio keeps; it clamps it at 0 before "
                              "Griffin-Lim)",
            "peak_memory": best_ours["peak_memory"],
        },
        "reference": {
            **summary(best_ref, ref_runs),
            "final_losses": ref_scores,
            "own_objective_final_over_initial": progress["reference"],
            "own_last_closure_loss": best_ref["out"]["last_closure_loss"],
            "spectrogram_is": "final iterate after the last update",
            "peak_memory": best_ref["peak_memory"],
        },
        "speedup": ref_sps / ours_sps,
        "griffin_lim_speedup": gl_ref / gl_ours if gl_ours > 0 else None,
        "definitions": {
            "speedup": "reference seconds_per_step / ours seconds_per_step (optimization loop only; the fastest of "
                       "--repeats alternating runs of each); > 1 means ours is faster",
            "griffin_lim_speedup": "reference griffin_lim_seconds / ours griffin_lim_seconds (fastest of each)",
            "seconds_total": "ours: the whole stylize_audio call (loading, targets, loop, Griffin-Lim, metrics); "
                             "reference: spectrograms, targets, loop, Griffin-Lim",
            "seconds_optimize": "the optimization loop only (synchronised on CUDA); ours from the trace's runs",
            "griffin_lim_seconds": f"{args.griffin_lim_iters} iterations; ours from trace['griffin_lim_seconds']",
            "final_losses": "both objectives evaluated in fp32 on the optimised spectrogram of the fastest run",
            "peak_memory": "of the fastest run (optimization and Griffin-Lim together; ours also its metrics). On "
                           "CUDA, nst_core.optimize resets the peak counter when its loop starts, so ours' peak "
                           "covers the loop onward, not the target computation before it",
        },
        "notes": notes,
    }
    emit(doc, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
