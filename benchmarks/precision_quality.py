"""What lower precision does to the result: the same image and audio stylized in fp32, bf16 (and tf32 on CUDA).

Every run uses the same inputs, network, seed, start (the content) and number of steps; only ``precision``
changes (``nst_core.precision_context``: fp32 = TF32 off; tf32 = TF32 matmuls and convolutions; bf16 =
``torch.autocast`` to bfloat16, which also works on a CPU, slowly). For each precision it reports

* ``final_losses_own``: the last step's losses as the run computed them, in its own precision, and
  ``best_total_own`` / ``best_step``: the lowest total it saw and when (the result is that step's signal);
* ``final_losses_fp32``: the result scored again under the same objective in fp32, so that precisions are
  compared on one scale;
* ``seconds_per_step`` (the optimization loop only; on a CPU, bf16 is emulated and slow: no speed claim);

and for each precision against fp32: the relative difference of the final total losses
(``|L_p - L_fp32| / |L_fp32|``, own and fp32-scored) and the max and mean absolute difference of the results
(image pixels in [0, 1], and in 8-bit levels; for audio, the optimised log-magnitude spectrograms).

With ``--out-dir`` it also writes ``precision_quality.json``, ``image_precision_<p>.png`` (fp32 | p | their
absolute difference x10) and ``audio_precision.png`` (the optimised spectrograms side by side, drawn by
``nst_audio.figures.spectrogram_figure``). Without it, only the JSON on stdout.

Defaults are small enough for a CPU (image 128 px, 50 steps; audio 2 s, 30 steps, 512 filters).
Run ``python benchmarks/precision_quality.py --help``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

import torch
from torch import Tensor

from nst_core import Objective, make_loss_fn, precision_context, resolve_device, style_targets
from nst_audio import spectral
from nst_audio.extractors import RandomCNN
from nst_audio.io import DEFAULT_SAMPLE_RATE, AudioClip, load_audio
from nst_audio.stylize import AudioStyleConfig, stylize_audio
from nst_image.io import load_image, resize_long_side, to_pil
from nst_image.stylize import ImageStyleConfig, stylize_image
from _common import emit, machine_info  # benchmarks/ is on sys.path when run as a script
from bench_audio import CaptureOptimize
from bench_image import CONTENT_LAYERS, STYLE_LAYERS, load_extractor, our_objective_fn

REPO = Path(__file__).resolve().parents[1]
IMAGE_CONTENT = REPO / "examples" / "inputs" / "content_landscape.png"
IMAGE_STYLE = REPO / "examples" / "inputs" / "style_swirls.png"
AUDIO_CONTENT = REPO / "examples" / "audio" / "melody_sine.wav"
AUDIO_STYLE = REPO / "examples" / "audio" / "phrase_violin.wav"
N_FFT, HOP, KERNEL_SIZE, SEED = 2048, 512, 11, 0
DIFF_GAIN = 10.0  # the difference panel is |a - b| * 10, clamped to [0, 1]


def log(msg: str) -> None:
    print(f"[precision_quality] {msg}", file=sys.stderr, flush=True)


def precisions_for(device: torch.device) -> list[str]:
    """fp32 first (the baseline), then bf16, then tf32 where TF32 exists (CUDA)."""
    return ["fp32", "bf16"] + (["tf32"] if device.type == "cuda" else [])


def relative_difference(value: float, baseline: float) -> float | None:
    """``|value - baseline| / |baseline|``; None when the baseline is 0."""
    return abs(value - baseline) / abs(baseline) if baseline != 0 else None


def abs_difference(a: Tensor, b: Tensor) -> dict:
    """Max and mean absolute difference of two same-shaped tensors, in fp32."""
    d = (a.detach().float().cpu() - b.detach().float().cpu()).abs()
    return {"max": float(d.max()), "mean": float(d.mean())}


def side_by_side(images: Sequence[Tensor], gutter: int = 4) -> Tensor:
    """``(3, H, W)`` images in [0, 1] left to right with white gutters: one ``(3, H, sum W + gutters)`` image."""
    h = max(im.shape[-2] for im in images)
    parts: list[Tensor] = []
    for i, im in enumerate(images):
        if i:
            parts.append(torch.ones(3, h, gutter))
        pad = torch.ones(3, h, im.shape[-1])
        pad[:, : im.shape[-2]] = im.detach().float().cpu().clamp(0, 1)
        parts.append(pad)
    return torch.cat(parts, dim=-1)


def comparison_figure(baseline: Tensor, other: Tensor) -> Tensor:
    """fp32 | other | ``|other - fp32| * 10`` (clamped), for ``(3, H, W)`` images in [0, 1]."""
    diff = ((other.float() - baseline.float()).abs() * DIFF_GAIN).clamp(0, 1)
    return side_by_side([baseline, other, diff])


def _save_png(image: Tensor, path: Path, labels: Sequence[str]) -> None:
    """Write ``image`` with a strip of labels above it (one per equal-width panel)."""
    from PIL import Image, ImageDraw

    pil = to_pil(image)
    strip = 14
    canvas = Image.new("RGB", (pil.width, pil.height + strip), "white")
    canvas.paste(pil, (0, strip))
    draw = ImageDraw.Draw(canvas)
    width = pil.width / len(labels)
    for i, label in enumerate(labels):
        draw.text((i * width + 2, 1), label, fill="black")
    path.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(path)


# --------------------------------------------------------------------------- image

def image_case(args: argparse.Namespace, device: torch.device, notes: list[str]) -> dict:
    extractor, weights_used = load_extractor(args.weights, notes)
    extractor = extractor.to(device)
    cfg = ImageStyleConfig.of(image_size=args.size, tolerance=0.0, content_layers=CONTENT_LAYERS, style_layers=STYLE_LAYERS,
                           iterations=args.steps, device=str(device), init="content", seed=SEED)
    content = resize_long_side(load_image(args.content), args.size).unsqueeze(0).to(device)
    style = resize_long_side(load_image(args.style), args.size).unsqueeze(0).to(device)
    with precision_context("fp32", device):
        loss_fn = our_objective_fn(extractor, content, style, cfg)

    runs: dict[str, dict] = {}
    images: dict[str, Tensor] = {}
    for p in precisions_for(device):
        log(f"image: {p}, {args.size} px, {args.steps} steps ...")
        result = stylize_image(args.content, args.style, cfg, extractor=extractor, precision=p)
        loop = sum(r["seconds"] for r in result.trace["runs"])
        steps = sum(r["steps_run"] for r in result.trace["runs"])
        with torch.no_grad(), precision_context("fp32", device):
            scored = {k: float(v) for k, v in loss_fn(result.image.unsqueeze(0).to(device)).items()}
        images[p] = result.image
        last = result.trace["runs"][-1]
        runs[p] = {"final_losses_own": result.losses, "best_total_own": last.get("best_loss"),
                   "best_step": last.get("best_step"), "final_losses_fp32": scored,
                   "seconds_per_step": loop / max(steps, 1), "steps": steps}
    comparisons = {}
    for p in runs:
        if p == "fp32":
            continue
        pix = abs_difference(images[p], images["fp32"])
        comparisons[f"{p}_vs_fp32"] = {
            "relative_difference_final_total_own": relative_difference(runs[p]["final_losses_own"]["total"],
                                                                       runs["fp32"]["final_losses_own"]["total"]),
            "relative_difference_final_total_fp32": relative_difference(runs[p]["final_losses_fp32"]["total"],
                                                                        runs["fp32"]["final_losses_fp32"]["total"]),
            "pixel_abs_difference": pix,
            "pixel_abs_difference_8bit": {"max": pix["max"] * 255, "mean": pix["mean"] * 255},
        }
        if args.out_dir:
            path = Path(args.out_dir) / f"image_precision_{p}.png"
            _save_png(comparison_figure(images["fp32"], images[p]), path,
                      ["fp32", p, f"|{p} - fp32| x{DIFF_GAIN:g}"])
            comparisons[f"{p}_vs_fp32"]["figure"] = str(path)
            log(f"wrote {path}")
    return {"settings": {"size": args.size, "shape": list(content.shape[-2:]), "steps": args.steps,
                         "weights_requested": args.weights, "weights_used": weights_used,
                         "backbone": extractor.arch, "content_layers": list(CONTENT_LAYERS),
                         "style_layers": list(STYLE_LAYERS), "seed": SEED, "init": "content"},
            "runs": runs, "comparisons": comparisons}


# --------------------------------------------------------------------------- audio

def looped_clip(path: str, seconds: float, sample_rate: int) -> AudioClip:
    """The clip at ``path``, mono, looped (whole copies, then cut) to ``seconds``."""
    source = load_audio(path, sample_rate=sample_rate, mono=True, min_samples=N_FFT).samples
    n = int(round(seconds * sample_rate))
    copies = -(-n // source.shape[-1])
    return AudioClip(source.repeat(1, copies)[:, :n].contiguous(), sample_rate, None)


def audio_case(args: argparse.Namespace, device: torch.device, notes: list[str]) -> dict:
    sr = DEFAULT_SAMPLE_RATE
    content_clip = looped_clip(args.audio_content, args.seconds, sr)
    style_clip = load_audio(args.audio_style, sample_rate=sr, mono=True, min_samples=N_FFT)
    spec_kw = dict(n_fft=N_FFT, hop_length=HOP, window="hann")
    content_spec = spectral.log_magnitude(content_clip.samples.to(device), **spec_kw)  # (1, F, T)
    style_spec = spectral.log_magnitude(style_clip.samples.to(device), **spec_kw)
    extractor = RandomCNN(content_spec.shape[1], filters=args.filters, kernel_size=KERNEL_SIZE, seed=SEED).to(device)
    cfg = AudioStyleConfig.of(iterations=args.audio_steps, tolerance=0.0, filters=args.filters, kernel_size=KERNEL_SIZE,
                           extractor_seed=SEED, griffin_lim_iters=args.griffin_lim_iters, device=str(device),
                           seed=SEED, n_fft=N_FFT, hop_length=HOP)
    with torch.no_grad(), precision_context("fp32", device):
        layers = list(extractor.default_content_layers)
        objective = Objective(extractor(content_spec, layers),
                              style_targets(extractor, [style_spec], list(extractor.default_style_layers)),
                              content_weight=cfg.content_weight, style_weight=cfg.style_weight)
    loss_fn = make_loss_fn(extractor, objective)

    runs: dict[str, dict] = {}
    specs: dict[str, Tensor] = {}
    out_specs: dict[str, Tensor] = {}
    for p in precisions_for(device):
        log(f"audio: {p}, {args.seconds:g} s, {args.audio_steps} steps, {args.filters} filters ...")
        with CaptureOptimize() as cap:
            result = stylize_audio(content_clip, style_clip, cfg, extractor=extractor, precision=p, on_segment=cap)
        if len(cap.results) != 1:
            notes.append(f"audio {p}: stylize_audio optimised {len(cap.results)} chunks; the first is compared")
        spec = cap.results[0].signal.detach()
        spec = spec if spec.dim() == 3 else spec.unsqueeze(0)
        run = result.trace["runs"][0]
        with torch.no_grad(), precision_context("fp32", device):
            scored = {k: float(v) for k, v in loss_fn(spec.to(device).float()).items() if k != "tv"}
        specs[p], out_specs[p] = spec[0].float().cpu(), result.spectrograms["result"].float().cpu()
        runs[p] = {"final_losses_own": {k: v[-1] for k, v in run["trace"].items() if v and k != "tv"},
                   "best_total_own": run.get("best_loss"), "best_step": run.get("best_step"),
                   "final_losses_fp32": scored,
                   "seconds_per_step": sum(r["seconds"] for r in result.trace["runs"])
                   / max(sum(r["steps_run"] for r in result.trace["runs"]), 1),
                   "steps": sum(r["steps_run"] for r in result.trace["runs"])}
    comparisons = {}
    for p in runs:
        if p == "fp32":
            continue
        comparisons[f"{p}_vs_fp32"] = {
            "relative_difference_final_total_own": relative_difference(runs[p]["final_losses_own"]["total"],
                                                                       runs["fp32"]["final_losses_own"]["total"]),
            "relative_difference_final_total_fp32": relative_difference(runs[p]["final_losses_fp32"]["total"],
                                                                        runs["fp32"]["final_losses_fp32"]["total"]),
            "optimised_spectrogram_abs_difference": abs_difference(specs[p], specs["fp32"]),
            "output_spectrogram_abs_difference": abs_difference(out_specs[p], out_specs["fp32"]),
        }
    doc = {"settings": {"seconds": args.seconds, "frames": int(content_spec.shape[-1]), "steps": args.audio_steps,
                        "filters": args.filters, "griffin_lim_iters": args.griffin_lim_iters,
                        "content": f"{Path(args.audio_content).name} looped to {args.seconds:g} s",
                        "style": Path(args.audio_style).name, "seed": SEED,
                        "spectrograms": "optimised: the log-magnitude stylize_audio kept (best step); output: "
                                        "the log-magnitude of the Griffin-Lim audio"},
           "runs": runs, "comparisons": comparisons}
    if args.out_dir:
        import matplotlib.pyplot as plt
        from nst_audio.figures import spectrogram_figure

        path = Path(args.out_dir) / "audio_precision.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        fig = spectrogram_figure({f"optimised, {p}": specs[p] for p in specs}, sample_rate=sr, hop_length=HOP)
        try:
            fig.savefig(path)
        finally:
            plt.close(fig)
        doc["figure"] = str(path)
        log(f"wrote {path}")
    return doc


# --------------------------------------------------------------------------- main

def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--only", choices=("both", "image", "audio"), default="both", help="which cases to run")
    p.add_argument("--size", type=int, default=128, help="image long side, px")
    p.add_argument("--steps", type=int, default=50, help="image optimization steps")
    p.add_argument("--weights", default="vgg16-hed",
                   help="image backbone weights (vgg16-hed, torchvision, random or a file); vgg16-hed falls back "
                        "to random VGG-16 weights, with a note, when it is not cached")
    p.add_argument("--content", default=str(IMAGE_CONTENT), help="content image")
    p.add_argument("--style", default=str(IMAGE_STYLE), help="style image")
    p.add_argument("--seconds", type=float, default=2.0, help="audio content length (looped), s")
    p.add_argument("--audio-steps", type=int, default=30, help="audio optimization steps")
    p.add_argument("--filters", type=int, default=512, help="filters of the audio random Conv1d")
    p.add_argument("--griffin-lim-iters", type=int, default=32, help="Griffin-Lim iterations (fp32 in every run)")
    p.add_argument("--audio-content", default=str(AUDIO_CONTENT), help="audio content clip")
    p.add_argument("--audio-style", default=str(AUDIO_STYLE), help="audio style clip")
    p.add_argument("--out-dir", default=None, help="write precision_quality.json and the figures here")
    args = p.parse_args(argv)
    if args.size < 16 or args.steps < 1 or args.audio_steps < 1 or args.filters < 1 or not args.seconds > 0.2 \
            or args.griffin_lim_iters < 0:
        p.error("--size must be >= 16, --seconds > 0.2; --steps, --audio-steps, --filters >= 1; "
                "--griffin-lim-iters >= 0")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    device = resolve_device(args.device)
    notes: list[str] = []
    if device.type == "cpu":
        from nst_core.device import cpu_has_native_bf16

        notes.append("this CPU has bf16 instructions (AVX512-BF16 or AMX): oneDNN runs bf16 convolutions natively"
                     if cpu_has_native_bf16() else
                     "this CPU has no bf16 instructions: bf16 is emulated, so its seconds_per_step says nothing "
                     "about bf16 speed elsewhere")
    doc = {"benchmark": "precision and quality: the same runs in fp32, bf16 (and tf32 on CUDA)",
           "machine": machine_info(device), "precisions": precisions_for(device)}
    if args.only in ("both", "image"):
        doc["image"] = image_case(args, device, notes)
    if args.only in ("both", "audio"):
        doc["audio"] = audio_case(args, device, notes)
    doc["definitions"] = {
        "final_losses_own": "the last step's loss terms, computed in the run's own precision",
        "best_total_own": "the lowest total loss of any step (own precision); the result is that step's signal",
        "final_losses_fp32": "the result (image: the best step stylize_image returns; audio: the optimised "
                             "spectrogram) scored again under the same objective in fp32",
        "relative_difference_final_total_*": "|total_p - total_fp32| / |total_fp32|",
        "pixel_abs_difference": "over all pixels and channels of the two result images, values in [0, 1]",
    }
    doc["notes"] = notes
    emit(doc, str(Path(args.out_dir) / "precision_quality.json") if args.out_dir else None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
