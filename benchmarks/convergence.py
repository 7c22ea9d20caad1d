"""How many steps does a result need? The measurement behind the stopping rule's defaults.

Every pair of ``examples/make_convergence_set.py`` is stylized once with the rule off (``tolerance 0``): 500
steps for images, 300 for audio, the offline VGG-16 for images, the audio front end's defaults (random CNN,
or the VGG reading the spectrogram where the pair says so). Every ``log_every`` (20) steps, where the rule
reads the loss, the current result is kept and scored by the independent metrics: Gram distance to the
style and luminance SSIM to the content for images; MFCC-statistics distance to the style and chroma
correlation with the content for audio (each snapshot turned into sound by the same Griffin-Lim as a
result, starting from the content's phase).

The rule is then replayed on every run's loss curve for a grid of tolerances and windows: the step where it
would have stopped, and how far each metric there is from its value after all the steps. A setting passes
when every pair stops at or after its settled step, from which on every metric stays within ``--within``
(2 %) of its full-length value; the defaults are the passing setting with the fewest steps in all. Writes JSON, and a plot of the metrics against steps with the
chosen stops marked.

    python benchmarks/convergence.py --work /tmp/conv --out benchmarks/results/cpu/convergence.json \\
        --plot benchmarks/results/cpu/convergence.png

Each pair's run is kept in ``--work`` (one JSON each), so an interrupted measurement continues where it was.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks._common import emit, machine_info  # noqa: E402
from nst_core import OptimizeConfig  # noqa: E402
from nst_core.optimize import convergence  # noqa: E402

TOLERANCES = (1e-4, 2e-4, 5e-4, 1e-3, 2e-3, 5e-3, 1e-2, 2e-2)
WINDOWS = (20, 40, 60, 100)
STEPS = {"image": 500, "audio": 300}
#: The metrics the choice is made on. For audio they are read off the optimized spectrogram itself: the
#: waveform's (after Griffin-Lim, also recorded) jump by several per cent between spectrograms whose loss
#: differs by 0.01 %, since fast Griffin-Lim's momentum iteration lands on other phases for tiny changes.
METRICS = {"image": ("gram_distance", "ssim"), "audio": ("mfcc_distance_spec", "chroma_correlation_spec")}


def _load_set(work: Path) -> dict:
    spec = importlib.util.spec_from_file_location("make_convergence_set", ROOT / "examples" / "make_convergence_set.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.make_convergence_set(work / "set")


def run_image_pair(pair: dict, steps: int, every: int) -> dict:
    from nst_image.io import load_image, resize_long_side, resize_to
    from nst_image.metrics import luminance_ssim, style_gram_distance
    from nst_image.stylize import stylize_image
    from nst_image.weights import build_extractor

    opts = dict(pair["options"])
    extractor = build_extractor("vgg16-hed", pooling=opts.get("pooling", "max"))
    snaps: dict[int, torch.Tensor] = {}

    def on_image(_scale, step, image):
        snaps[step] = image.clone()

    t = time.perf_counter()
    res = stylize_image(pair["content"], pair["style"], extractor=extractor, weights="vgg16-hed", seed=0,
                        iterations=steps, tolerance=0.0, save_every=every, on_image=on_image, **opts)
    seconds = time.perf_counter() - t
    snaps[steps] = res.image
    w, h = res.trace["runs"][-1]["size"]
    content = resize_to(load_image(pair["content"]), (h, w)).unsqueeze(0)
    style = resize_long_side(load_image(pair["style"]), max(w, h))
    layers = res.trace["settings"]["style_layers"]
    points = []
    for step in sorted(snaps):
        img = snaps[step].unsqueeze(0)
        points.append({"step": step, "gram_distance": style_gram_distance(extractor, img, style, layers),
                       "ssim": luminance_ssim(img, content)})
    return {"loss": res.trace["runs"][-1]["trace"]["total"], "points": points, "seconds": seconds,
            "seconds_per_step": seconds / steps, "size": [w, h]}


def run_audio_pair(pair: dict, steps: int, every: int) -> dict:
    from nst_audio.io import load_audio
    from nst_audio.metrics import (chroma_correlation, chroma_correlation_of_power, mfcc_stats_distance,
                                   mfcc_stats_distance_of_power)
    from nst_audio.spectral import StreamingGriffinLim, magnitude_from_log, stft_frames
    from nst_audio.stylize import AudioStyleConfig, stylize_audio

    cfg = AudioStyleConfig(**pair["options"])
    snaps: dict[int, torch.Tensor] = {}

    def grab(step):
        if step.index % every == 0 or step.index == step.total:
            snaps[step.index] = step.signal.detach().cpu().clone()

    t = time.perf_counter()
    res = stylize_audio(pair["content"], pair["style"], cfg, seed=0, iterations=steps, tolerance=0.0,
                        callbacks=[grab])
    seconds = time.perf_counter() - t
    sr = cfg.sample_rate
    content = load_audio(pair["content"], sample_rate=sr).samples.mean(0)
    style = load_audio(pair["style"], sample_rate=sr).samples.mean(0)
    spec = dict(n_fft=cfg.n_fft, hop_length=cfg.hop_length, window=cfg.window)
    def power(wave):
        return stft_frames(wave, 0, wave.shape[-1] // cfg.hop_length + 1, **spec).abs().pow(2).numpy()

    content_power, style_power = power(content), power(style)
    points = []
    for step in sorted(snaps):
        p = magnitude_from_log(snaps[step][0].clamp_min(0)).pow(2).numpy()
        spec_metrics = {"mfcc_distance_spec": mfcc_stats_distance_of_power(p, style_power, sr),
                        "chroma_correlation_spec": chroma_correlation_of_power(p, content_power, sr)}
        gl = StreamingGriffinLim(**spec, n_iter=cfg.griffin_lim_iters, momentum=cfg.griffin_lim_momentum,
                                 length=content.shape[-1],
                                 phase=lambda a, b: stft_frames(content, a, b, **spec).angle(),
                                 generator=torch.Generator().manual_seed(0))
        wave = gl.push(magnitude_from_log(snaps[step][0].clamp_min(0)), last=True).numpy()
        points.append({"step": step, **spec_metrics, "mfcc_distance": mfcc_stats_distance(wave, style.numpy(), sr),
                       "chroma_correlation": chroma_correlation(wave, content.numpy(), sr)})
    baseline = {"chroma_style_vs_content": chroma_correlation(style.numpy(), content.numpy(), sr),
                "chroma_style_vs_content_spec": chroma_correlation_of_power(style_power, content_power, sr),
                "mfcc_content_vs_style_spec": mfcc_stats_distance_of_power(content_power, style_power, sr),
                "mfcc_content_vs_style": mfcc_stats_distance(content.numpy(), style.numpy(), sr)}
    return {"loss": res.trace["runs"][-1]["trace"]["total"], "points": points, "seconds": seconds,
            "seconds_per_step": seconds / steps, "baseline": baseline, "result_metrics": res.trace["metrics"]}


def stop_step(loss: list[float], tolerance: float, window: int, log_every: int = 20) -> int:
    """Where the rule (:func:`nst_core.optimize.convergence`) would stop a run with these per-step losses."""
    cfg = OptimizeConfig(steps=len(loss), tolerance=tolerance, stop_window=window, min_steps=window,
                         log_every=log_every)
    history, best = [], math.inf
    for i, v in enumerate(loss, 1):
        best = min(best, v) if math.isfinite(v) else best
        if i % log_every == 0:
            history.append((i, best))
            if convergence(history, cfg):
                return i
    return len(loss)


def deviations(record: dict, modality: str, step: int) -> dict[str, float]:
    """Each metric's relative distance at ``step`` from its value after every step."""
    by_step = {p["step"]: p for p in record["points"]}
    at, end = by_step[step], record["points"][-1]
    return {m: abs(at[m] - end[m]) / max(abs(end[m]), 1e-12) for m in METRICS[modality]}


def settled_step(record: dict, modality: str, within: float) -> int:
    """The first snapshot from which on every metric stays within ``within`` of its value after every step.

    A stop passes from there on; asking only that the metric at the stop be within (not also at every later
    snapshot) would let a metric that wanders (the chroma of a sparse tone clip does, by a few per cent) pass a
    loose tolerance and fail a stricter one."""
    steps = [p["step"] for p in record["points"]]
    settled = steps[-1]
    for step in reversed(steps):
        if max(deviations(record, modality, step).values()) > within:
            break
        settled = step
    return settled


def analyse(records: dict[str, dict], modality: str, within: float) -> dict:
    grid = []
    settled = {name: settled_step(r, modality, within) for name, r in records.items()}
    for window in WINDOWS:
        for tol in TOLERANCES:
            stops = {name: stop_step(r["loss"], tol, window) for name, r in records.items()}
            worst = max(max(deviations(r, modality, stops[name]).values()) for name, r in records.items())
            grid.append({"tolerance": tol, "window": window, "stops": stops, "steps": sum(stops.values()),
                         "worst_deviation": worst, "passes": all(stops[n] >= settled[n] for n in records)})
    passing = [g for g in grid if g["passes"]]
    best = min(passing, key=lambda g: (g["steps"], -g["tolerance"])) if passing else None
    return {"grid": grid, "chosen": best, "settled_steps": settled}


def defaults() -> dict[str, OptimizeConfig]:
    """Each front end's stopping rule as it ships."""
    from nst_audio.stylize import AudioStyleConfig
    from nst_image.stylize import ImageStyleConfig

    return {"image": ImageStyleConfig().optimize, "audio": AudioStyleConfig().optimize}


def plot(records: dict[str, dict], results: dict, path: Path, default: dict[str, OptimizeConfig]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [(mod, name, r) for mod in ("image", "audio") for name, r in records[mod].items()]
    fig, axes = plt.subplots(2, 2, figsize=(11, 7.5))
    for col, mod in enumerate(("image", "audio")):
        chosen = {"tolerance": default[mod].tolerance, "window": default[mod].stop_window}
        for row, metric in enumerate(METRICS[mod]):
            ax = axes[row][col]
            for _m, name, r in [x for x in rows if x[0] == mod]:
                end = r["points"][-1][metric]
                steps = [p["step"] for p in r["points"]]
                rel = [100 * (p[metric] - end) / max(abs(end), 1e-12) for p in r["points"]]
                line, = ax.plot(steps, rel, label=name, lw=1.2)
                if chosen:
                    s = stop_step(r["loss"], chosen["tolerance"], chosen["window"])
                    ax.plot([s], [rel[steps.index(s)]], "o", color=line.get_color())
            ax.axhspan(-2, 2, color="0.9", zorder=0)
            ax.set_ylim(-30, 30)
            ax.set_title(f"{mod}: {metric.replace('_', ' ')}")
            ax.set_xlabel("step")
            ax.set_ylabel("% from its value at the last step")
            ax.legend(fontsize=7)
    what = "dots: where the default rule stops (" + "; ".join(
        f"{m}: {100 * c.tolerance:g} % over {c.stop_window} steps" for m, c in default.items()) + ")"
    fig.suptitle(f"Independent metrics against steps (grey: within 2 %); {what}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", default="/tmp/nst-convergence", help="folder for the set and each pair's run")
    ap.add_argument("--only", choices=("image", "audio"), help="measure one modality")
    ap.add_argument("--pairs", type=int, default=0, help="first N pairs of each modality (0: all)")
    ap.add_argument("--within", type=float, default=0.02, help="largest relative metric change allowed")
    ap.add_argument("--every", type=int, default=20, help="steps between snapshots (the logging interval)")
    ap.add_argument("--steps", type=int, nargs=2, metavar=("IMAGE", "AUDIO"), help="steps per run (a quick check)")
    ap.add_argument("--out", help="JSON output (default: stdout)")
    ap.add_argument("--plot", help="PNG plot of the metrics against steps")
    args = ap.parse_args(argv)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    if args.steps:
        STEPS.update(image=args.steps[0], audio=args.steps[1])
    torch.manual_seed(0)
    pairs = _load_set(work)
    records: dict[str, dict] = {"image": {}, "audio": {}}
    for mod in ("image", "audio"):
        chosen = pairs[mod][: args.pairs or None]
        for pair in chosen:
            cache = work / f"{mod}-{pair['name']}.json"
            if cache.is_file():
                records[mod][pair["name"]] = json.loads(cache.read_text())
                continue
            if args.only and args.only != mod:
                continue
            print(f"{mod} {pair['name']}: {STEPS[mod]} steps ...", file=sys.stderr, flush=True)
            run = run_image_pair if mod == "image" else run_audio_pair
            rec = {**run(pair, STEPS[mod], args.every), "options": pair["options"]}
            cache.write_text(json.dumps(rec))
            records[mod][pair["name"]] = rec
            print(f"  {rec['seconds']:.0f} s ({rec['seconds_per_step']:.2f} s/step)", file=sys.stderr, flush=True)
    results = {mod: analyse(records[mod], mod, args.within) for mod in ("image", "audio") if records[mod]}
    shipped = defaults()
    doc = {"benchmark": "convergence", "machine": machine_info(torch.device("cpu")), "within": args.within,
           "steps": STEPS, "tolerances": TOLERANCES, "windows": WINDOWS, "results": results,
           "default": {m: {"tolerance": c.tolerance, "window": c.stop_window, "min_steps": c.min_steps}
                       for m, c in shipped.items()},
           "pairs": {mod: {name: {"options": r["options"], "seconds_per_step": r["seconds_per_step"],
                                  "points": r["points"], "baseline": r.get("baseline"),
                                  "final_loss": min(v for v in r["loss"] if math.isfinite(v)),
                                  "stops_at_default": stop_step(r["loss"], shipped[mod].tolerance,
                                                                shipped[mod].stop_window)}
                             for name, r in records[mod].items()} for mod in records}}
    if args.plot:
        plot(records, results, Path(args.plot), shipped)
    emit(doc, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
