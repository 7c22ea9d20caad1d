"""Is the audio loss's early plateau convergence or a stall? The same runs with the optimizer's knobs changed.

An audio run's loss falls most of its way in the first steps and then creeps. If that were a stall (the trust
region ``max_step`` clipping every step, the unit L-BFGS step overshooting, the history filling with pairs of
no curvature), another setting would reach a lower loss in the same steps. Each pair of
``examples/make_convergence_set.py`` named by ``--pairs`` runs ``--steps`` steps (stopping rule off) with
``max_step`` 1 (the default), 0.25, 4 and none, L-BFGS history 100 and 20, and Adam at its default rate; the
loss after 20, 50 and all the steps, relative to the default's, says which (if any) goes lower.

    python benchmarks/audio_plateau.py --out benchmarks/results/cpu/audio_plateau.json
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from pathlib import Path
from typing import Sequence

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._common import emit, machine_info  # noqa: E402

VARIANTS = {
    "default (max_step 1, history 100)": {},
    "max_step 0.25": {"max_step": 0.25},
    "max_step 4": {"max_step": 4.0},
    "no trust region": {"max_step": None},
    "history 20": {"history_size": 20},
    "adam": {"optimizer": "adam"},
}


def main(argv: Sequence[str] | None = None) -> int:
    from nst_audio.stylize import stylize_audio

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", default="/tmp/nst-convergence")
    ap.add_argument("--pairs", nargs="+", default=["band-to-organ-band"])
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--out")
    args = ap.parse_args(argv)
    spec = importlib.util.spec_from_file_location("mcs", ROOT / "examples" / "make_convergence_set.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    pairs = {p["name"]: p for p in mod.make_convergence_set(Path(args.work) / "set")["audio"]}
    results = {}
    for name in args.pairs:
        pair = pairs[name]
        rows = {}
        for label, opts in VARIANTS.items():
            print(f"[audio_plateau] {name}: {label} ...", file=sys.stderr, flush=True)
            t = time.perf_counter()
            res = stylize_audio(pair["content"], pair["style"], seed=0, iterations=args.steps, tolerance=0.0,
                                griffin_lim_iters=1, **pair["options"], **opts)
            loss = res.trace["runs"][0]["trace"]["total"]
            best = [min(loss[:k]) for k in (20, 50, len(loss))]
            rows[label] = {"best_loss_at": dict(zip(("20", "50", str(len(loss))), best)),
                           "seconds": time.perf_counter() - t}
        base = rows[next(iter(VARIANTS))]["best_loss_at"]
        for row in rows.values():
            row["relative_to_default"] = {k: v / base[k] for k, v in row["best_loss_at"].items()}
        results[name] = rows
    doc = {"benchmark": "audio plateau: the loss reached with other optimizer settings",
           "machine": machine_info(torch.device("cpu")), "steps": args.steps, "results": results,
           "definitions": {"best_loss_at": "lowest total loss (the library's objective) within the first N steps",
                           "relative_to_default": "best_loss_at / the default settings' (below 1: lower)"}}
    emit(doc, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
