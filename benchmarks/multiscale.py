"""Coarse to fine: do more, cheaper steps at a fraction of the size and fewer at full size reach the same result
sooner? The measurement behind the automatic scale schedule.

At each ``--sizes`` long side, ``stylize_image`` runs at its defaults (the stopping rule on) with each scale
schedule in turn: the full size alone, then starting at a half, then at a quarter (never below ``--min-side``).
For each it reports the wall time, the steps at each scale, the final loss under the objective at full size
(the same objective whatever the schedule), and the independent metrics (Gram distance to the style, SSIM to
the content). The offline VGG-16, the demo's landscape and swirls.

    python benchmarks/multiscale.py --sizes 512 --out benchmarks/results/cpu/multiscale.json
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Sequence

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import bench_image as BI  # noqa: E402
from _common import emit, machine_info  # noqa: E402

from nst_core import resolve_device, resolve_precision  # noqa: E402


def schedules(size: int, min_side: int) -> list[list[int]]:
    out, sched = [], [size]
    while True:
        out.append(list(sched))
        if sched[0] // 2 < min_side:
            return out
        sched.insert(0, sched[0] // 2)


def main(argv: Sequence[str] | None = None) -> int:
    from nst_image.io import load_image, resize_long_side
    from nst_image.metrics import luminance_ssim, style_gram_distance
    from nst_image.stylize import ImageStyleConfig, stylize_image

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[512])
    ap.add_argument("--min-side", type=int, default=128, help="smallest coarse scale")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--precision", default="auto")
    ap.add_argument("--out", help="JSON output (default: stdout)")
    args = ap.parse_args(argv)
    device = resolve_device(args.device)
    precision = resolve_precision(args.precision, device)
    notes: list[str] = []
    extractor = BI.load_extractor("vgg16-hed", notes)[0].to(device)
    content_path, style_path = str(BI.DEFAULT_CONTENT), str(BI.DEFAULT_STYLE)
    results = []
    for size in args.sizes:
        c = resize_long_side(load_image(content_path), size).unsqueeze(0).to(device)
        s = resize_long_side(load_image(style_path), size).unsqueeze(0).to(device)
        cfg = ImageStyleConfig.of(content_layers=BI.CONTENT_LAYERS, style_layers=BI.STYLE_LAYERS)
        loss_fn = BI.our_objective_fn(extractor, c, s, cfg)
        for sched in schedules(size, args.min_side):
            print(f"[multiscale] {size} px, scales {sched} ...", file=sys.stderr, flush=True)
            t = time.perf_counter()
            res = stylize_image(content_path, style_path, extractor=extractor, image_size=size, scales=sched,
                                seed=0, device=str(device), precision=precision)
            seconds = time.perf_counter() - t
            img = res.image.unsqueeze(0).to(device)
            with torch.no_grad():
                loss = float(loss_fn(img)["total"])
            row = {"size": size, "scales": res.trace["scales"], "seconds": seconds,
                   "steps": [r["steps_run"] for r in res.trace["runs"]],
                   "seconds_per_scale": [r["seconds"] for r in res.trace["runs"]],
                   "stop_reasons": res.trace["stop_reasons"], "final_loss": loss,
                   "gram_distance": style_gram_distance(extractor, img, s, list(BI.STYLE_LAYERS)),
                   "ssim": luminance_ssim(img, c)}
            print(f"  {seconds:.0f} s, steps {row['steps']}, loss {loss:.4g}", file=sys.stderr, flush=True)
            results.append(row)
    doc = {"benchmark": "multi-scale schedules at the stopping rule's defaults", "machine": machine_info(device),
           "device": str(device), "precision": precision, "results": results, "notes": notes,
           "definitions": {"final_loss": "the library's objective at full size (content 1, style 10, tv 1; relative "
                                         "losses) on the result, whatever the schedule",
                           "seconds": "the whole stylize_image call"}}
    emit(doc, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
