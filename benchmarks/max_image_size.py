"""Largest square image ``stylize_image`` can optimise on a CUDA device, against the library's memory estimate.

For square sizes that are multiples of ``--step`` px (256), the probe makes a square content image by
resizing the demo content image (and passes the demo style image, which ``stylize_image`` resizes to the same
long side) and runs ``stylize_image(..., iterations=--iterations)`` with the default settings: content layer
relu4_2, style layers relu1_1 ... relu5_1, L-BFGS with history 100, the given precision, one scale (the
multi-scale schedule's coarser scales are skipped: they take time and the final scale sets the peak). It
doubles the size until a run fails, then bisects between the last success and the first failure.

For every size tried it records the outcome and, next to it, what the library predicts:

* ``outcome``: ``ok``, ``oom`` (``torch.OutOfMemoryError``, or an allocation failure inside cuDNN/cuBLAS),
  ``refused_by_estimate`` (``nst_core.ResourceError``: ``stylize_image`` checks its estimate against the free
  memory before it runs; only with ``--respect-estimate``) or ``error`` (anything else, e.g. a kernel's
  32-bit indexing limit);
* ``peak_allocated_bytes`` / ``peak_reserved_bytes``: ``torch.cuda.max_memory_allocated`` / ``_reserved``.
  ``nst_core.optimize`` resets the peak counters when its loop starts, so they cover the loop (the part that
  needs the most: activations kept for the backward pass and the L-BFGS state), not the target computation
  before it, which runs without autograd;
* ``estimate_bytes``: ``nst_image.estimate_memory_bytes(h, w, arch=..., precision=...)``, and
  ``estimate_refuses``: whether it exceeds the free memory measured before the run (what ``stylize_image``
  would have refused);
* ``peak_full_history_bytes``: L-BFGS keeps one (s, y) pair of signal-sized fp32 vectors per step, up to
  ``history_size``; after ``--iterations`` 2 it holds one pair, so the measured peak lacks
  ``2 * (history - pairs) * 3 * H * W * 4`` bytes that a long run adds. This adds them back (an
  extrapolation, not a measurement); ``fits_with_full_history`` compares it with the memory the device had
  for the run (free before it, plus what was already allocated). Use ``--iterations 102`` to measure it.

By default the library's own check is bypassed for each run (``stylize_image`` is given
``memory_limit=2**62``), so that a size the
estimate would refuse is still tried and the estimate can be compared with reality; ``--respect-estimate``
keeps the check and records ``refused_by_estimate`` instead.

Also recorded: the largest multiple of ``--step`` the estimate allows in the free memory, and what
``nst_image.stylize.auto_image_size`` (``--image-size auto``) picks for a content image larger than any
size that fits, and for the demo content image itself.

Weights: ``--weights random --backbone vgg19`` (the default) gives VGG-19 with random weights, which costs the
same memory and time as trained VGG-19 weights and needs no download; ``--weights vgg16-hed`` uses the offline
VGG-16 (``--backbone vgg16`` or ``auto``). On a device other than CUDA the probe writes
``{"not measured": "needs a CUDA device"}`` and exits 0.

Run ``python benchmarks/max_image_size.py --help``; results go to stdout as JSON (and to ``--out``).
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from pathlib import Path
from typing import Callable, Sequence

import torch

from nst_core import InputError, ResourceError, WeightsError, resolve_device, resolve_precision
from nst_image import estimate_memory_bytes
from nst_image import stylize as stylize_module
from nst_image.io import load_image, resize_to
from nst_image.stylize import ImageStyleConfig, stylize_image
from nst_image.weights import build_extractor, hed_cache_path
from _common import emit, machine_info  # benchmarks/ is on sys.path when run as a script

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CONTENT = REPO / "examples" / "inputs" / "content_landscape.png"
DEFAULT_STYLE = REPO / "examples" / "inputs" / "style_swirls.png"
CONTENT_LAYERS = ("relu4_2",)
STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
DEEPEST = "relu5_1"
NOT_MEASURED = {"not measured": "needs a CUDA device"}
#: Messages of allocation failures that do not arrive as torch.OutOfMemoryError.
OOM_MARKERS = ("out of memory", "CUDNN_STATUS_ALLOC_FAILED", "CUBLAS_STATUS_ALLOC_FAILED")


def log(msg: str) -> None:
    print(f"[max_image_size] {msg}", file=sys.stderr, flush=True)


def largest_ok(try_size: Callable[[int], bool], *, step: int, max_size: int) -> int | None:
    """Largest multiple of ``step`` (at most ``max_size``) for which ``try_size`` returns True.

    Doubles from ``step`` until a failure or ``max_size``, then bisects between the last success and the first
    failure. Assumes that success is monotone in the size. Returns None when ``step`` itself fails.
    """
    if step < 1 or max_size < step:
        raise ValueError("need 1 <= step <= max_size")
    top = max_size // step  # sizes are k * step, k = 1 .. top
    good, bad = 0, top + 1
    k = 1
    while k <= top:
        if try_size(k * step):
            good = k
            k *= 2
        else:
            bad = k
            break
    # If every doubling passed, bad is still max_size + step (never tried): bisect up to max_size.
    while bad - good > 1:
        mid = (good + bad) // 2
        if try_size(mid * step):
            good = mid
        else:
            bad = mid
    return good * step if good else None


def _free_cuda() -> None:
    gc.collect()
    torch.cuda.empty_cache()


def _is_oom(err: BaseException) -> bool:
    return isinstance(err, torch.OutOfMemoryError) or any(m in str(err) for m in OOM_MARKERS)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--device", default="auto", help="auto, cuda or cuda:N (anything else: not measured)")
    p.add_argument("--weights", default="random",
                   help="backbone weights for build_extractor: random (VGG-19 with random weights: same memory and "
                        "time as trained ones, no download), vgg16-hed, torchvision or a file")
    p.add_argument("--backbone", default="vgg19", help="vgg19, vgg16 or auto (auto with vgg16-hed: VGG-16)")
    p.add_argument("--precision", default="auto", help="auto (tf32 on CUDA), fp32, tf32 or bf16")
    p.add_argument("--step", type=int, default=256, help="sizes tried are multiples of this, px")
    p.add_argument("--max-size", type=int, default=16384, help="largest size tried, px")
    p.add_argument("--iterations", type=int, default=2, help="optimization steps per try")
    p.add_argument("--history-size", type=int, default=100, help="L-BFGS history")
    p.add_argument("--respect-estimate", action="store_true",
                   help="keep stylize_image's memory check (sizes it refuses count as failures) instead of "
                        "bypassing it to see what really fits")
    p.add_argument("--content", default=str(DEFAULT_CONTENT), help="content image (resized to a square)")
    p.add_argument("--style", default=str(DEFAULT_STYLE), help="style image")
    p.add_argument("--out", default=None, help="also write the JSON here")
    args = p.parse_args(argv)
    if args.step < 16 or args.max_size < args.step or args.iterations < 1 or args.history_size < 1:
        p.error("--step must be >= 16, --max-size >= --step, --iterations and --history-size >= 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    device = resolve_device(args.device)
    settings = {"device": str(device), "weights_requested": args.weights, "backbone_requested": args.backbone,
                "precision_requested": args.precision, "step": args.step, "max_size": args.max_size,
                "iterations": args.iterations, "history_size": args.history_size,
                "respect_estimate": args.respect_estimate}
    if device.type != "cuda":
        emit({"benchmark": "largest image size of stylize_image", **NOT_MEASURED,
              "machine": machine_info(device), "settings": settings}, args.out)
        return 0
    precision = resolve_precision(args.precision, device)
    notes: list[str] = []
    if args.weights == "vgg16-hed" and not hed_cache_path().exists():
        notes.append(f"vgg16-hed weights are not cached at {hed_cache_path()}; used random VGG-16 weights "
                     "(the same memory and time)")
        extractor = build_extractor("random", backbone="vgg16")
    else:
        try:
            extractor = build_extractor(args.weights, backbone=args.backbone)
        except WeightsError as err:
            print(f"max_image_size: {err}", file=sys.stderr)
            return 2
    extractor = extractor.to(device)
    arch = extractor.arch
    log(f"{torch.cuda.get_device_name(device)}, {arch} ({extractor.source}), {precision}")

    content_src = load_image(args.content)
    style_src = load_image(args.style)
    total_memory = torch.cuda.get_device_properties(device).total_memory
    _free_cuda()
    free_at_start = torch.cuda.mem_get_info(device)[0]

    def estimate(size: int) -> int:
        return estimate_memory_bytes(size, size, arch=arch, deepest=DEEPEST, history_size=args.history_size,
                                     precision=precision)

    # What the library itself would allow and pick, before anything runs.
    estimate_allows = 0
    for k in range(1, args.max_size // args.step + 1):
        if estimate(k * args.step) <= free_at_start:
            estimate_allows = k * args.step
    cfg_defaults = ImageStyleConfig.of(content_layers=CONTENT_LAYERS, style_layers=STYLE_LAYERS,
                                    history_size=args.history_size)
    auto = {}
    auto_fn = getattr(stylize_module, "auto_image_size", None)
    if auto_fn is None:
        auto = {"unavailable": "nst_image.stylize.auto_image_size does not exist in this version"}
    else:
        # A 'meta' tensor has a shape and no storage: a content image larger than anything that fits.
        huge = torch.empty(3, 1 << 17, 1 << 17, device="meta")
        for key, image in (("uncapped_square", huge), ("demo_content", content_src)):
            try:
                auto[key] = int(auto_fn(image, device, cfg_defaults, precision=precision, arch=arch))
            except Exception as err:  # noqa: BLE001 - a probe records, it does not stop
                auto[key] = f"failed: {type(err).__name__}: {err}"
        auto["demo_content_long_side"] = int(max(content_src.shape[-2:]))

    tried: list[dict] = []

    def try_size(size: int) -> bool:
        _free_cuda()
        free_before = torch.cuda.mem_get_info(device)[0]
        allocated_before = torch.cuda.memory_allocated(device)
        need = estimate(size)
        entry = {"size": size, "estimate_bytes": need, "free_before_bytes": free_before,
                 "estimate_refuses": need > free_before}
        cfg = ImageStyleConfig.of(image_size=size, scales=(size,), content_layers=CONTENT_LAYERS,
                               style_layers=STYLE_LAYERS, iterations=args.iterations, history_size=args.history_size,
                               device=str(device), precision=precision, init="content", seed=0,
                               log_every=args.iterations)
        torch.cuda.reset_peak_memory_stats(device)
        start = time.perf_counter()
        result = None
        try:
            content = resize_to(content_src, (size, size))
            # Without --respect-estimate the memory check is told of unlimited memory, so that a size the
            # estimate refuses is still tried.
            result = stylize_image(content, style_src, cfg, extractor=extractor,
                                   memory_limit=None if args.respect_estimate else 1 << 62)
            torch.cuda.synchronize(device)
            entry["outcome"] = "ok"
        except ResourceError as err:
            entry["outcome"] = "refused_by_estimate"
            entry["message"] = str(err)
        except (RuntimeError, InputError) as err:  # torch.OutOfMemoryError is a RuntimeError
            entry["outcome"] = "oom" if _is_oom(err) else "error"
            entry["message"] = f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"[:500]
        entry["seconds"] = time.perf_counter() - start
        entry["peak_allocated_bytes"] = int(torch.cuda.max_memory_allocated(device))
        entry["peak_reserved_bytes"] = int(torch.cuda.max_memory_reserved(device))
        if entry["outcome"] == "ok":
            steps_run = sum(r["steps_run"] for r in result.trace["runs"])
            pairs = max(0, min(steps_run - 1, args.history_size))
            signal_bytes = 3 * size * size * 4
            full = entry["peak_allocated_bytes"] + 2 * (args.history_size - pairs) * signal_bytes
            entry["lbfgs_pairs_held"] = pairs
            entry["peak_full_history_bytes"] = full
            entry["fits_with_full_history"] = full <= free_before + allocated_before
            entry["estimate_over_peak_full_history"] = need / full
        del result
        _free_cuda()
        tried.append(entry)
        gib = entry["peak_allocated_bytes"] / 2**30
        log(f"{size} px: {entry['outcome']}, peak {gib:.2f} GiB, estimate {need / 2**30:.2f} GiB"
            + (f" ({entry.get('message', '')[:120]})" if entry["outcome"] != "ok" else ""))
        if entry["outcome"] == "error":
            notes.append(f"{size} px failed with an error that is not an allocation failure: {entry['message']}")
        return entry["outcome"] == "ok"

    largest = largest_ok(try_size, step=args.step, max_size=args.max_size)
    ok_sizes = [t for t in tried if t["outcome"] == "ok"]
    full_ok = [t["size"] for t in ok_sizes if t.get("fits_with_full_history")]
    if largest is not None and largest == args.max_size:
        notes.append(f"--max-size {args.max_size} px ran; the real limit may be higher")
    doc = {
        "benchmark": "largest image size of stylize_image",
        "machine": machine_info(device),
        "settings": {**settings, "precision": precision, "backbone": arch, "weights_source": extractor.source,
                     "content_layers": list(CONTENT_LAYERS), "style_layers": list(STYLE_LAYERS),
                     "content": "the content image resized to size x size; the style image resized by "
                                "stylize_image to the same long side",
                     "scales": "one (the final size)"},
        "total_memory_bytes": int(total_memory),
        "free_at_start_bytes": int(free_at_start),
        "largest_ok_size": largest,
        "largest_ok_size_with_full_history": max(full_ok) if full_ok else None,
        "largest_size_estimate_allows": estimate_allows or None,
        "auto_image_size": auto,
        "tried": sorted(tried, key=lambda t: t["size"]),
        "definitions": {
            "largest_ok_size": f"largest multiple of {args.step} px for which {args.iterations} steps ran",
            "largest_ok_size_with_full_history": "of the sizes that ran, the largest whose peak plus the L-BFGS "
                                                 "history a long run adds (peak_full_history_bytes, extrapolated) "
                                                 "fits in the memory the device had",
            "largest_size_estimate_allows": "largest multiple of the step whose estimate_memory_bytes fits in the "
                                            "free memory at the start (stylize_image refuses larger ones)",
            "auto_image_size": "what --image-size auto picks (90 % of the free memory): for a content image larger "
                               "than any size that fits, and for the demo content image",
            "peak_allocated_bytes": "torch.cuda.max_memory_allocated over the optimization loop (nst_core.optimize "
                                    "resets the counter when its loop starts); the extractor's weights included",
        },
        "notes": notes,
    }
    emit(doc, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
