"""Pictures larger than the device: peak memory and seconds per step against picture size, untiled and tiled.

For each ``--sizes`` long side (square pictures: the demo's landscape resized, passed as a tensor so that the
content's own size is the size), a few steps of ``stylize_image`` at the defaults (VGG-19 to relu5_1; random
weights unless ``--weights`` says otherwise: memory and time do not depend on the values):

* ``tiled``: ``image_size="auto"``: the content's own size, with the tiles and L-BFGS history the memory plan
  chooses to fit this machine (what a user gets);
* ``untiled``: the same picture and the same history without tiles, where its estimate fits the memory (or
  ``--force-untiled``).

Each run is its own process, so its peak resident memory (``VmHWM``: targets, steps and all) is its own. Per row:
the peak, the run's own peak (the peak less what the process held before the run: Python, PyTorch's libraries
and the inputs, about 0.5 GiB on a CPU; this is what the estimate is of), the estimate the run planned with,
seconds per step (the optimization loop, setup excluded) and per megapixel, and for sizes where both ran, the
tiled step's time per pixel as a ratio to the untiled one (the cost of the halos and of the second forward pass).
On a GPU the peak is ``torch.cuda.max_memory_allocated`` and what the process held before is what it had allocated.

    python benchmarks/tiled_memory.py --sizes 2048 4096 --memory-limit-gib 16 --out tiled_memory.json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Sequence

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from _common import emit, machine_info  # noqa: E402


def log(msg: str) -> None:
    print(f"[tiled_memory] {msg}", file=sys.stderr, flush=True)


def one_run(size: int, mode: str, steps: int, device: str, weights: str, history: str | None, tile: str,
            memory_limit: int | None) -> dict:
    """Runs in a child process: one stylization, its numbers as a dict."""

    import torch

    from nst_core.device import peak_memory_bytes, proc_status_kib, resolve_device
    from nst_image.io import load_image, resize_to
    from nst_image.stylize import stylize_image

    dev = resolve_device(device)
    inputs = HERE.parent / "examples" / "inputs"
    content = resize_to(load_image(inputs / "content_landscape.png"), (size, size))
    style = load_image(inputs / "style_swirls.png")
    said: list[str] = []
    options = dict(iterations=steps, tolerance=0, device=device, weights=weights, backbone="vgg19", seed=0,
                   log=said.append, scales=(size,))  # one scale: the size itself
    if mode == "tiled":
        options.update(image_size="auto", tile=int(tile) if tile != "auto" else tile, memory_limit=memory_limit)
    else:
        hp, m = history.split(":")
        options.update(image_size=size, tile=size, history_precision=hp, history_size=int(m), memory_limit=1 << 62)
    # What the process holds before the run (Python, PyTorch's libraries, the inputs): the estimate is of what
    # the run adds, as the memory it plans with is what is free once the process has started.
    before = torch.cuda.memory_allocated(dev) if dev.type == "cuda" else (proc_status_kib("VmRSS") or 0) * 1024
    t = time.perf_counter()
    res = stylize_image(content, style, **options)
    total = time.perf_counter() - t
    tr = res.trace
    settings = tr["settings"]["optimize"]
    peak = peak_memory_bytes(dev) if dev.type == "cuda" else (proc_status_kib("VmHWM") or 0) * 1024
    run = tr["runs"][-1]
    per_step = run["seconds"] / max(run["steps_run"], 1)
    return {"size": size, "mode": mode, "tiles": tr.get("tiles"), "steps": tr["steps"],
            "history": f"{settings['history_precision']}:{settings['history_size']}",
            "seconds_per_step": per_step, "seconds_per_step_per_mpx": per_step / (size * size / 1e6),
            "seconds_total": total, "peak_bytes": peak, "baseline_bytes": before, "peak_added_bytes": peak - before,
            "estimated_bytes": tr.get("estimated_peak_bytes"),
            "precision": tr["precision"], "log": [m for m in said if m.startswith(("memory", "image_size"))]}


def child(args: argparse.Namespace, size: int, mode: str, history: str | None, timeout: float) -> dict:
    cmd = [sys.executable, __file__, "--one", f"{size}:{mode}", "--steps", str(args.steps), "--device", args.device,
           "--weights", args.weights, "--tile", args.tile]
    if args.memory_limit_gib:
        cmd += ["--memory-limit-gib", str(args.memory_limit_gib)]
    if history:
        cmd += ["--history", history]
    t = time.perf_counter()
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"size": size, "mode": mode, "error": f"did not finish in {timeout:.0f} s"}
    if out.returncode != 0:
        tail = (out.stderr.strip().splitlines() or ["?"])[-1]
        return {"size": size, "mode": mode, "error": tail, "seconds_total": time.perf_counter() - t}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1024, 2048, 4096])
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--weights", default="random", help="random (default; memory and time do not depend on "
                                                          "the values) or any --weights value")
    ap.add_argument("--tile", default="auto")
    ap.add_argument("--memory-limit-gib", type=float, help="memory the tiled runs may plan with (image_size auto "
                                                           "fits 90 %% of it; default: what the device has free)")
    ap.add_argument("--force-untiled", action="store_true", help="run untiled even where the estimate says no")
    ap.add_argument("--timeout", type=float, default=3600, help="seconds per run")
    ap.add_argument("--one", help=argparse.SUPPRESS)
    ap.add_argument("--history", help=argparse.SUPPRESS)
    ap.add_argument("--out", help="JSON output (default: stdout)")
    args = ap.parse_args(argv)
    if args.one:
        size, mode = args.one.split(":")
        limit = int(args.memory_limit_gib * 2**30) if args.memory_limit_gib else None
        print(json.dumps(one_run(int(size), mode, args.steps, args.device, args.weights, args.history, args.tile,
                                 limit)))
        return 0

    import torch

    from nst_core import available_memory_bytes, resolve_device
    from nst_image.memory import estimate_memory_bytes

    device = resolve_device(args.device)
    have = available_memory_bytes(device)
    rows = []
    for size in args.sizes:
        log(f"{size} px tiled (image_size auto) ...")
        tiled = child(args, size, "tiled", None, args.timeout)
        log(f"  {json.dumps({k: tiled.get(k) for k in ('tiles', 'history', 'seconds_per_step', 'peak_bytes', 'error')})}")
        rows.append(tiled)
        history = tiled.get("history")
        if history is None:
            continue
        hp, m = history.split(":")
        need = estimate_memory_bytes(size, size, arch="vgg19", history_size=int(m), history_precision=hp,
                                     precision=tiled["precision"], content_layers=("relu4_2",))
        if need > have and not args.force_untiled:
            rows.append({"size": size, "mode": "untiled", "skipped": f"estimated {need / 2**30:.1f} GiB, "
                                                                      f"{have / 2**30:.1f} GiB available"})
            log(f"  untiled skipped: {rows[-1]['skipped']}")
            continue
        log(f"{size} px untiled, history {history} ...")
        untiled = child(args, size, "untiled", history, args.timeout)
        rows.append(untiled)
        log(f"  {json.dumps({k: untiled.get(k) for k in ('seconds_per_step', 'peak_bytes', 'error')})}")
        if "error" not in untiled and "error" not in tiled and all(t is None for t in tiled["tiles"]):
            continue
        if "error" not in untiled and "error" not in tiled:
            tiled["time_ratio_to_untiled"] = tiled["seconds_per_step"] / untiled["seconds_per_step"]
            tiled["memory_ratio_to_untiled"] = tiled["peak_bytes"] / max(untiled["peak_bytes"], 1)
    doc = {"benchmark": "peak memory and seconds per step against picture size, untiled and tiled",
           "machine": machine_info(device), "device": str(device), "available_bytes": have, "steps": args.steps,
           "memory_limit_gib": args.memory_limit_gib, "tile": args.tile,
           "weights": args.weights, "torch_threads": torch.get_num_threads(), "results": rows}
    emit(doc, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
