"""What a smaller L-BFGS memory does to the result: the history's size and its storage precision.

At large sizes the L-BFGS history is most of the memory (``2 * history_size`` copies of the picture: 40 GB of
fp32 at 4096 x 4096 with the default 100 pairs). Two ways to shrink it: store it in bf16 (half, with every
product still accumulated in fp32) or keep fewer pairs. This runs the same picture, start, network, seed and
number of steps (the stopping rule off) with each history setting, as ``precision_quality.py`` does for the
compute precision, and reports the final and best loss (scored again in fp32 under one objective), their
difference from fp32 with 100 pairs, the loss at intermediate steps, and each setting's history memory at
4096 x 4096.

    python benchmarks/lbfgs_history.py --size 256 --steps 300 --out benchmarks/results/cpu/lbfgs_history.json
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

SETTINGS = [("fp32", 100), ("bf16", 100), ("fp32", 50), ("bf16", 50), ("fp32", 20), ("bf16", 20), ("fp32", 10)]
PAIRS = [("content_landscape", "style_swirls"), ("content_portrait", "style_mosaic")]


def log(msg: str) -> None:
    print(f"[lbfgs_history] {msg}", file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    from nst_image.io import load_image, resize_long_side
    from nst_image.stylize import ImageStyleConfig, stylize_image

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--precision", default="fp32", help="compute precision of every run (default fp32: the "
                                                         "history is the only difference)")
    ap.add_argument("--pairs", type=int, default=len(PAIRS))
    ap.add_argument("--out", help="JSON output (default: stdout)")
    args = ap.parse_args(argv)
    device = resolve_device(args.device)
    precision = resolve_precision(args.precision, device)
    notes: list[str] = []
    extractor = BI.load_extractor("vgg16-hed", notes)[0].to(device)
    inputs = BI.DEFAULT_CONTENT.parent
    rows = []
    for content_name, style_name in PAIRS[: args.pairs]:
        content_path, style_path = inputs / f"{content_name}.png", inputs / f"{style_name}.png"
        c = resize_long_side(load_image(content_path), args.size).unsqueeze(0).to(device)
        s = resize_long_side(load_image(style_path), args.size).unsqueeze(0).to(device)
        cfg = ImageStyleConfig.of(content_layers=BI.CONTENT_LAYERS, style_layers=BI.STYLE_LAYERS)
        score = BI.our_objective_fn(extractor, c, s, cfg)
        base = None
        for hp, m in SETTINGS:
            log(f"{content_name} + {style_name}, {args.size} px: history {m} in {hp} ...")
            t = time.perf_counter()
            res = stylize_image(content_path, style_path, extractor=extractor, image_size=args.size, seed=0,
                                device=str(device), precision=precision, iterations=args.steps, tolerance=0,
                                history_size=m, history_precision=hp)
            seconds = time.perf_counter() - t
            with torch.no_grad():
                loss = float(score(res.image.unsqueeze(0).to(device))["total"])
            totals = res.trace["runs"][-1]["trace"]["total"]
            row = {"pair": [content_name, style_name], "history_precision": hp, "history_size": m,
                   "seconds": seconds, "final_loss_fp32": loss,
                   "history_bytes_at_4096": 2 * m * 3 * 4096 * 4096 * (2 if hp == "bf16" else 4)}
            if totals:
                row["loss_at"] = {str(k): totals[k - 1] for k in (50, 100, 200, 300) if k <= len(totals)}
            if base is None:
                base = loss
            row["vs_fp32_100"] = (loss - base) / base
            log(f"  loss {loss:.5g} ({100 * row['vs_fp32_100']:+.2f} % vs fp32/100), {seconds:.0f} s")
            rows.append(row)
    doc = {"benchmark": "L-BFGS history size and storage precision against the loss reached in the same steps",
           "machine": machine_info(device), "device": str(device), "precision": precision, "size": args.size,
           "steps": args.steps, "notes": notes, "results": rows}
    emit(doc, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
