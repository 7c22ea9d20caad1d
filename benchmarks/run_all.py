"""Run every benchmark case, each in its own process, and summarise them in ``all.json`` and ``all.md``.

Cases (each a subprocess of the existing script, so that one crash or out-of-memory does not lose the others,
and each starts with a clean process and device):

========================  =============================================  ======================================
case                      GPU (``--device cuda``)                        CPU (``--device cpu``)
========================  =============================================  ======================================
``image``                 ``bench_image.py --size 512 --steps 500``      ``--size 256 --steps 100``
``image_cpu_parity``      with ``--with-cpu``: ``bench_image.py          (not needed: ``image`` is this case)
                          --device cpu --size 256 --steps 100``
``audio``                 ``bench_audio.py --seconds 10 --steps 300      ``--seconds 10 --steps 40``
                          --griffin-lim-iters 500``
``max_image_size``        ``max_image_size.py`` (VGG-19, random          not measured: needs a CUDA device
                          weights)
``batch_throughput``      with ``--with-batch``: ``batch_throughput.py   ``batch_throughput.py`` (16 image and
                          --device cuda`` (64 images at 512 px, one at   8 audio jobs, 1 or 2 workers, Ray)
                          a time against Ray's fractional packing)
``time_to_quality``       ``time_to_quality.py --image-sizes 512         with ``--with-time-to-quality``:
                          --audio-seconds 10`` (ours until it stops      ``time_to_quality.py`` (256 and 512
                          vs the references' fixed steps)                px, 10 s of audio)
``tiled_memory``          ``tiled_memory.py --sizes 4096 8192``          with ``--with-tiled-memory``:
                          (peak memory and s/step, tiled and untiled)    ``--sizes 2048 4096 --memory-limit-gib
                                                                         16`` (about 30 minutes on 2 cores)
``precision_quality``     with ``--with-precision-quality``:             ``precision_quality.py`` (its
                          ``precision_quality.py --size 512 --steps 300  defaults: 128 px, 50 steps; audio 2 s,
                          --seconds 10 --audio-steps 300 --filters 4096  30 steps, 512 filters)
                          --griffin-lim-iters 200``
========================  =============================================  ======================================

Each case writes its JSON into ``--out-dir`` (its stderr goes to the terminal and to ``logs/<case>.log``
there); then ``all.json`` holds every case's document (or its exit status and the end of its log) and the
machine, and ``all.md`` the table :func:`markdown_table` makes of it. ``all.json`` is rewritten after every case.

``--quick`` passes tiny sizes through (image 48 px, 2 steps; audio 1 s, 2 steps, 64 filters, 4 Griffin-Lim
iterations; random weights) to check the mechanics in seconds. ``--from-json FILE ...`` prints the table of
saved results (an ``all.json`` or single benchmark documents) and runs nothing.

    python benchmarks/run_all.py --device cuda --out-dir benchmarks/results/cuda
    python benchmarks/run_all.py --from-json benchmarks/results/cpu_256.json benchmarks/results/cpu_audio_10s.json
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Sequence

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DASH = "–"  # shown for a value a document does not have (older results, failed cases)
CASE_ORDER = ("image", "image_cpu_parity", "audio", "time_to_quality", "max_image_size", "tiled_memory",
              "precision_quality", "batch_throughput")


def log(msg: str) -> None:
    print(f"[run_all] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- plan and run

def plan(device: str, args: argparse.Namespace, out_dir: Path) -> list[dict]:
    """The cases to run on ``device`` (``cuda``, ``cuda:1``, ``cpu``, ...): ``[{"name", "script", "argv", "out"}]``,
    or ``{"name", "skip": result}`` for one that cannot run here. ``argv`` writes the case's JSON to ``out``.
    CUDA gets the GPU sizes; any other device the CPU sizes."""
    gpu = device.startswith("cuda")
    dev = device
    tag = device.split(":")[0]
    common = []
    if args.precision:
        common += ["--precision", args.precision]
    if args.repeats:
        common += ["--repeats", str(args.repeats)]
    weights = ["--weights", "random"] if args.quick else (["--weights", args.weights] if args.weights else [])
    if args.quick:
        image = ["--size", "48", "--steps", "2", "--warmup-steps", "1"]
        parity = image
        audio = ["--seconds", "1", "--steps", "2", "--filters", "64", "--griffin-lim-iters", "4", "--warmup-steps", "1"]
        probe = ["--max-size", "1024"]
        precision = ["--size", "48", "--steps", "3", "--seconds", "1", "--audio-steps", "2", "--filters", "64",
                     "--griffin-lim-iters", "4", "--weights", "random"]
    else:
        image = ["--size", "512", "--steps", "500"] if gpu else ["--size", "256", "--steps", "100"]
        parity = ["--size", "256", "--steps", "100"]
        audio = (["--seconds", "10", "--steps", "300", "--griffin-lim-iters", "500"] if gpu
                 else ["--seconds", "10", "--steps", "40"])
        probe = []
        # On a GPU the quality comparison can afford the benchmark's own sizes; on a CPU its defaults are small.
        precision = (["--size", "512", "--steps", "300", "--seconds", "10", "--audio-steps", "300", "--filters", "4096",
                      "--griffin-lim-iters", "200"] if gpu else [])
        if args.weights:
            precision += ["--weights", args.weights]
    if args.threads:
        audio = audio + ["--threads", str(args.threads)]
    # Names carry the settings, so they never overwrite the saved results (cpu_256.json, cpu_audio_10s.json).
    cases = [{"name": "image", "script": "bench_image.py",
              "out": out_dir / f"{tag}_image_{image[1]}px_{image[3]}steps.json",
              "argv": ["--device", dev, *image, *weights, *common]}]
    if gpu and args.with_cpu:
        cases.append({"name": "image_cpu_parity", "script": "bench_image.py",
                      "out": out_dir / f"cpu_image_{parity[1]}px_{parity[3]}steps.json",
                      "argv": ["--device", "cpu", *parity, *weights, *(["--repeats", str(args.repeats)]
                                                                       if args.repeats else [])]})
    cases.append({"name": "audio", "script": "bench_audio.py",
                  "out": out_dir / f"{tag}_audio_{audio[1]}s_{audio[3]}steps.json",
                  "argv": ["--device", dev, *audio, *common]})
    if gpu or args.with_time_to_quality:
        ttq = (["--image-sizes", "48", "--image-steps", "3", "--audio-seconds", "1", "--audio-steps", "3",
                "--griffin-lim-iters", "4", "--filters", "64", "--weights", "random", "--image-step-caps", "2",
                "--audio-style-weights", "30"] if args.quick
               else ["--image-sizes", "512", "--audio-seconds", "10"] if gpu else [])
        cases.append({"name": "time_to_quality", "script": "time_to_quality.py",
                      "out": out_dir / f"{tag}_time_to_quality.json",
                      "argv": ["--device", dev, *ttq, "--save", str(out_dir / "time_to_quality"),
                               *(["--precision", args.precision] if args.precision else [])]})
    if gpu:
        cases.append({"name": "max_image_size", "script": "max_image_size.py",
                      "out": out_dir / f"{tag}_max_image_size.json",
                      "argv": ["--device", dev, "--weights", "random", "--backbone", "vgg19", *probe,
                               *(["--precision", args.precision] if args.precision else [])]})
    else:
        cases.append({"name": "max_image_size", "skip": {"not measured": "needs a CUDA device"}})
    if gpu or args.with_tiled_memory:
        sizes = (["--sizes", "256", "--steps", "1"] if args.quick else ["--sizes", "4096", "8192"] if gpu
                 else ["--sizes", "2048", "4096", "--memory-limit-gib", "16"])
        cases.append({"name": "tiled_memory", "script": "tiled_memory.py", "out": out_dir / f"{tag}_tiled_memory.json",
                      "argv": ["--device", dev, *sizes]})
    if args.with_precision_quality:
        cases.append({"name": "precision_quality", "script": "precision_quality.py",
                      "out": out_dir / "precision" / "precision_quality.json",
                      "argv": ["--device", dev, *precision, "--out-dir", str(out_dir / "precision")]})
    if args.with_batch:
        cases.append({"name": "batch_throughput", "script": "batch_throughput.py",
                      "out": out_dir / f"{tag}_batch_throughput.json",
                      "argv": ["--device", dev, *(["--quick"] if args.quick else [])]})
    for case in cases:
        if "script" in case and case["script"] != "precision_quality.py":
            case["argv"] = [*case["argv"], "--out", str(case["out"])]
    skip = set(args.skip or ())
    return [c for c in cases if c["name"] not in skip]


def run_case(case: dict, log_dir: Path, timeout: float) -> dict:
    """Run one case's script in a fresh interpreter; its stderr is shown and kept in ``log_dir/<name>.log``.

    Returns ``{"command", "returncode", "seconds", "result"}``; ``result`` is the JSON the script wrote, or
    None, with ``error`` (exit status, timeout) and ``log_tail`` (its last lines) when it failed.
    """
    cmd = [sys.executable, str(HERE / case["script"]), *case["argv"]]
    out = Path(case["out"])
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.exists():
        out.unlink()  # a failed run must not leave an older result to be read as this one's
    log_dir.mkdir(parents=True, exist_ok=True)
    log(f"{case['name']}: {' '.join(cmd[1:])}")
    tail: collections.deque[str] = collections.deque(maxlen=25)
    start = time.perf_counter()
    with open(log_dir / f"{case['name']}.log", "w") as log_file:
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                errors="replace")

        def pump() -> None:
            for line in proc.stderr:
                sys.stderr.write(line)
                log_file.write(line)
                tail.append(line.rstrip("\n"))

        reader = threading.Thread(target=pump, daemon=True)
        reader.start()
        error = None
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()  # our own child, by its handle
            proc.wait()
            error = f"timed out after {timeout:g} s"
        reader.join(timeout=10)
    entry: dict[str, Any] = {"command": [os.path.relpath(cmd[1], REPO), *cmd[2:]], "returncode": proc.returncode,
                             "seconds": time.perf_counter() - start, "result": None}
    if error is None and proc.returncode != 0:
        error = f"exit status {proc.returncode}"
    if error is None:
        try:
            entry["result"] = json.loads(out.read_text())
        except (OSError, ValueError) as err:
            error = f"no readable result at {out}: {err}"
    if error:
        entry["error"] = error
        entry["log_tail"] = list(tail)
        log(f"{case['name']} FAILED ({error}); the other cases go on")
    return entry


# --------------------------------------------------------------------------- Markdown

def _get(doc: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(doc, dict) or key not in doc:
            return None
        doc = doc[key]
    return doc


def _num(x: Any, fmt: str = ".4g") -> str:
    return DASH if not isinstance(x, (int, float)) or isinstance(x, bool) else format(x, fmt)


def _pair(a: Any, b: Any, fmt: str = ".4g", unit: str = "") -> str:
    if not isinstance(a, (int, float)) and not isinstance(b, (int, float)):
        return DASH
    return f"{_num(a, fmt)} / {_num(b, fmt)}{unit}"


def _bytes(n: Any) -> str:
    if not isinstance(n, (int, float)):
        return DASH
    return f"{n / 2**30:.2f} GiB" if abs(n) >= 2**30 else f"{n / 2**20:.0f} MiB"


def _peak(mem: Any) -> str:
    """One number for a peak_memory record: CUDA max allocated, or the CPU's peak RSS delta."""
    if not isinstance(mem, dict):
        return DASH
    if "peak_bytes" in mem:
        return _bytes(mem["peak_bytes"])
    if "peak_rss_delta_bytes" in mem:
        return f"{_bytes(mem['peak_rss_delta_bytes'])} RSS Δ"
    return DASH


def case_kind(doc: Any) -> str | None:
    """``image``, ``audio``, ``max_image_size`` or ``precision_quality`` from a result document's contents."""
    if not isinstance(doc, dict):
        return None
    name = str(doc.get("benchmark", "")).lower()
    if "largest_ok_size" in doc or "not measured" in doc or name.startswith("largest image size"):
        return "max_image_size"
    if "precisions" in doc or name.startswith("precision"):
        return "precision_quality"
    if name == "batch_throughput":
        return "batch_throughput"
    if name.startswith("time to quality"):
        return "time_to_quality"
    if name.startswith("peak memory and seconds per step"):
        return "tiled_memory"
    if name.startswith("audio") or "griffin_lim_speedup" in doc:
        return "audio"
    if name.startswith("image") or "tutorial_objective_weights" in (doc.get("settings") or {}):
        return "image"
    return None


def _machine(doc: Any) -> str:
    m = _get(doc, "machine") or {}
    if m.get("gpu"):
        return str(m["gpu"])
    if m.get("cpu_model"):
        threads = m.get("torch_threads")
        threads = f", {threads} thread{'s' if threads != 1 else ''}" if threads else ""
        return f"{m['cpu_model']} ({m.get('cpu_count', '?')} CPUs{threads})"
    return DASH


def _settings(doc: dict, kind: str) -> str:
    s = doc.get("settings") or {}
    prec = s.get("precision_ours")
    if kind == "image":
        shape = s.get("content_shape")
        shape_s = f" ({shape[1]}x{shape[0]})" if isinstance(shape, list) and len(shape) == 2 else ""
        return ", ".join(x for x in [f"{s.get('size', '?')} px{shape_s}", f"{s.get('steps', '?')} steps",
                                     s.get("backbone"), prec] if x)
    if kind == "audio":
        return ", ".join(x for x in [f"{_num(s.get('seconds'), 'g')} s", f"{s.get('steps', '?')} steps",
                                     f"{s.get('griffin_lim_iters', '?')} GL iters", prec] if x)
    if kind == "max_image_size":
        return ", ".join(str(x) for x in [s.get("backbone"), s.get("precision"),
                                          f"{s['iterations']} steps" if "iterations" in s else None] if x)
    return DASH


def _mfu(side: Any) -> str:
    achieved = _get(side, "achieved_tflops")
    if not isinstance(achieved, (int, float)):
        return DASH
    mfu = _get(side, "mfu")
    return f"{achieved:.3g} TFLOPS ({_num(100 * mfu, '.1f') + ' %' if isinstance(mfu, (int, float)) else DASH})"


def _largest(doc: dict) -> str:
    if "not measured" in doc:
        return f"not measured: {doc['not measured']}"
    largest = doc.get("largest_ok_size")
    text = f"{largest} px" if largest else "none ran"
    extra = []
    if doc.get("largest_ok_size_with_full_history"):
        extra.append(f"{doc['largest_ok_size_with_full_history']} px with a full L-BFGS history")
    if doc.get("largest_size_estimate_allows"):
        extra.append(f"estimate allows {doc['largest_size_estimate_allows']} px")
    auto = _get(doc, "auto_image_size", "uncapped_square")
    if auto is not None:
        extra.append(f"auto picks {auto} px")
    return text + (f" ({'; '.join(extra)})" if extra else "")


def _normalise(results: dict) -> tuple[dict, dict]:
    """``(cases, top)``: an ``all.json`` document's cases, or one benchmark document as a one-case dict."""
    if isinstance(results.get("cases"), dict):
        return results["cases"], results
    kind = case_kind(results) or "result"
    return {kind: {"result": results}}, {}


def markdown_table(results: dict) -> str:
    """A Markdown summary of benchmark results: one row per case, then the size probe's tries and notes.

    results : an ``all.json`` document (``{"machine", "cases": {name: {"result": doc | None, "error"?}}}``) or
    a single document of ``bench_image.py``, ``bench_audio.py``, ``max_image_size.py`` or
    ``precision_quality.py``. Fields a document lacks (older results, failed cases) show as "–".
    """
    cases, top = _normalise(results)
    header = ["machine", "case", "settings", "ours s/step", "reference s/step", "speedup",
              "final loss, our objective (ours / ref)", "final loss, ref objective (ours / ref)",
              "Griffin-Lim s (ours / ref)", "peak memory (ours / ref)", "ours TFLOPS (MFU)", "largest size"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    details: list[str] = []  # the size probe's tries, the precision comparison
    notes: list[str] = []
    names = sorted(cases, key=lambda n: (CASE_ORDER.index(n) if n in CASE_ORDER else len(CASE_ORDER), n))
    for name in names:
        entry = cases[name] if isinstance(cases[name], dict) else {}
        doc = entry.get("result")
        row = [DASH] * len(header)
        row[1] = name
        if not isinstance(doc, dict):
            row[0] = _machine(top)
            row[1] = f"{name} (failed: {entry.get('error', 'no result')})"
            lines.append("| " + " | ".join(row) + " |")
            continue
        kind = case_kind(doc)
        row[0] = _machine(doc) if doc.get("machine") else _machine(top)
        row[2] = _settings(doc, kind) if kind else DASH
        if kind in ("image", "audio"):
            ours, ref = doc.get("ours") or {}, doc.get("reference") or {}
            ref_key = "tutorial_objective" if kind == "image" else "reference_objective"
            row[3] = _num(ours.get("seconds_per_step"))
            row[4] = _num(ref.get("seconds_per_step"))
            row[5] = _num(doc.get("speedup"), ".3g")
            row[6] = _pair(_get(ours, "final_losses", "our_objective", "total"),
                           _get(ref, "final_losses", "our_objective", "total"))
            row[7] = _pair(_get(ours, "final_losses", ref_key, "total"), _get(ref, "final_losses", ref_key, "total"))
            if kind == "audio":
                row[8] = _pair(ours.get("griffin_lim_seconds"), ref.get("griffin_lim_seconds"), ".3g")
            peaks = (_peak(ours.get("peak_memory")), _peak(ref.get("peak_memory")))
            row[9] = DASH if peaks == (DASH, DASH) else " / ".join(peaks)
            row[10] = _mfu(ours)
            if isinstance(ours.get("mfu_unavailable"), str) and ours.get("mfu") is None and row[10] != DASH:
                notes.append(f"* {name}: no MFU: {ours['mfu_unavailable']}")
        elif kind == "max_image_size":
            row[11] = _largest(doc)
            tried = doc.get("tried") or []
            if tried:
                details += ["", f"**{name}**: every size tried ({_settings(doc, kind)}; memory from "
                                 "torch.cuda.max_memory_allocated over the loop)", "",
                            "| size px | outcome | peak allocated | peak + full L-BFGS history | estimate | "
                            "estimate / (peak + history) | estimate refuses | s |",
                            "|---|---|---|---|---|---|---|---|"]
                for t in tried:
                    cells = [str(t.get("size")), t.get("outcome", DASH), _bytes(t.get("peak_allocated_bytes")),
                             _bytes(t.get("peak_full_history_bytes")), _bytes(t.get("estimate_bytes")),
                             _num(t.get("estimate_over_peak_full_history"), ".2f"),
                             "yes" if t.get("estimate_refuses") else "no", _num(t.get("seconds"), ".1f")]
                    details.append("| " + " | ".join(cells) + " |")
        elif kind == "precision_quality":
            row[2] = ", ".join(doc.get("precisions") or []) or DASH
            details += ["", f"**{name}**: precision against fp32", "",
                        "| case | precision | final total (fp32-scored) | rel. difference to fp32 (own / fp32-scored) "
                        "| max / mean abs difference of the results | s/step |", "|---|---|---|---|---|---|"]
            for modality in ("image", "audio"):
                part = doc.get(modality)
                if not isinstance(part, dict):
                    continue
                for p, run in (part.get("runs") or {}).items():
                    comp = _get(part, "comparisons", f"{p}_vs_fp32") or {}
                    diff = comp.get("pixel_abs_difference") or comp.get("optimised_spectrogram_abs_difference") or {}
                    rel = _pair(comp.get("relative_difference_final_total_own"),
                                comp.get("relative_difference_final_total_fp32"), ".3g")
                    cells = [modality, p, _num(_get(run, "final_losses_fp32", "total")), rel,
                             _pair(diff.get("max"), diff.get("mean"), ".3g"), _num(run.get("seconds_per_step"), ".3g")]
                    details.append("| " + " | ".join(cells) + " |")
        elif kind == "time_to_quality":
            row[2] = "nst at its defaults (stopping rule) vs the references' fixed steps"
            details += ["", f"**{name}**: time to a result (whole runs; metrics ours / reference)", "",
                        "| case | reference s (steps) | ours s (steps) | speed-up | metrics | target |",
                        "|---|---|---|---|---|---|"]
            for part in (doc.get("image") or []) + (doc.get("audio") or []):
                what = (f"image {part['size']} px" if "size" in part else f"audio {part.get('seconds_of_audio')} s")
                ref, ours = part.get("reference") or {}, part.get("ours") or {}
                mets = "; ".join(f"{k} {_num(v.get('ours'), '.3g')} / {_num(v.get('reference'), '.3g')}"
                                 for k, v in (part.get("metrics_vs_reference") or {}).items())
                target = part.get("target") or {}
                cells = [what, f"{_num(ref.get('seconds'), '.1f')} ({ref.get('steps', DASH)})",
                         f"{_num(ours.get('seconds'), '.1f')} ({ours.get('steps', DASH)})",
                         _num(part.get("speedup"), ".3g"), mets or DASH,
                         f"{_num(target.get('speedup_at_least'), 'g')}x: {'met' if target.get('met') else 'missed'}"]
                details.append("| " + " | ".join(cells) + " |")
                at = part.get("at_reference_quality")
                if at:
                    knob = (f"capped at {at['step_cap']} steps" if "step_cap" in at
                            else f"style weight {_num(at.get('style_weight'), 'g')}")
                    mets = "; ".join(f"{k} {_num(v.get('ours'), '.3g')} / {_num(v.get('reference'), '.3g')}"
                                     for k, v in (at.get("metrics_vs_reference") or {}).items())
                    met = (at.get("speedup") or 0) >= (target.get("speedup_at_least") or float("inf"))
                    cells = [f"{what}, ours {knob}", DASH, f"{_num(at.get('seconds'), '.1f')} ({at.get('steps', DASH)})",
                             _num(at.get("speedup"), ".3g"), mets or DASH,
                             f"{_num(target.get('speedup_at_least'), 'g')}x: {'met' if met else 'missed'}"]
                    details.append("| " + " | ".join(cells) + " |")
        elif kind == "tiled_memory":
            row[2] = "a few steps per size, image_size auto (tiled where needed) and untiled"
            details += ["", f"**{name}**: peak memory and seconds per step", "",
                        "| size | mode | tiles | L-BFGS history | peak | the run's own peak | estimate | s/step | "
                        "s/step per Mpx | tiled / untiled time |", "|---|---|---|---|---|---|---|---|---|---|"]
            for r in doc.get("results") or []:
                cells = [f"{r.get('size')} px", str(r.get("mode")), str(r.get("tiles", DASH)),
                         str(r.get("history", DASH)), _bytes(r.get("peak_bytes")), _bytes(r.get("peak_added_bytes")),
                         _bytes(r.get("estimated_bytes")),
                         _num(r.get("seconds_per_step"), ".3g"), _num(r.get("seconds_per_step_per_mpx"), ".3g"),
                         _num(r.get("time_ratio_to_untiled"), ".3g") if "time_ratio_to_untiled" in r
                         else (r.get("skipped") or r.get("error") or DASH)]
                details.append("| " + " | ".join(cells) + " |")
        elif kind == "batch_throughput":
            row[2] = "whole nst batch commands, jobs per hour"
            details += ["", f"**{name}**: jobs per hour (speed-up against one worker)", "",
                        "| jobs | configuration | seconds | jobs/hour | speed-up |", "|---|---|---|---|---|"]
            groups = [(k, doc[k]) for k in ("image", "audio", "gpu_images") if isinstance(doc.get(k), dict)]
            for group, configs in groups:
                for config, r in configs.items():
                    if isinstance(r, dict) and "seconds" in r:
                        cells = [f"{r.get('jobs')} {group}", config, _num(r.get("seconds"), ".1f"),
                                 _num(r.get("jobs_per_hour"), ".0f"),
                                 _num(r.get("speedup_vs_1_worker", configs.get("speedup") if config ==
                                            "ray_fractional" else None), ".3g")]
                        details.append("| " + " | ".join(cells) + " |")
            over = doc.get("ray_overhead_long_jobs")
            if isinstance(over, dict):
                pct = lambda key: _num(100 * over[key], ".1f") if isinstance(over.get(key), (int, float)) else DASH  # noqa: E731
                notes.append(f"* {name}: Ray's overhead against local, {_get(over, 'local', 'jobs')} jobs of about "
                             f"{_num(_get(over, 'local', 'mean_job_seconds'), '.0f')} s: {pct('overhead')} % with "
                             f"the cluster started by the command, {pct('overhead_running_cluster')} % on a running "
                             f"cluster ({over.get('target')})")
        lines.append("| " + " | ".join(row) + " |")
        for note in doc.get("notes") or []:
            notes.append(f"* {name}: {note}")
    text = "\n".join(lines)
    for block in (details, notes):
        if block:
            text += "\n\n" + "\n".join(block).strip("\n")
    return text + "\n"


# --------------------------------------------------------------------------- main

def load_results(paths: Sequence[str]) -> dict:
    """One ``all.json``-shaped document from saved files: an ``all.json`` as it is; several files (or single
    benchmark documents) merged, each case named after its file."""
    docs = [(Path(p), json.loads(Path(p).read_text())) for p in paths]
    if len(docs) == 1 and isinstance(docs[0][1].get("cases"), dict):
        return docs[0][1]
    cases: dict = {}
    for path, doc in docs:
        if isinstance(doc.get("cases"), dict):
            for name, entry in doc["cases"].items():
                cases[f"{path.stem}/{name}"] = entry
        else:
            cases[path.stem] = {"result": doc}
    return {"cases": cases}


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--out-dir", default=None, help="where every case's JSON, all.json, all.md and logs/ go "
                                                   "(required unless --from-json)")
    p.add_argument("--with-cpu", action="store_true", help="on a GPU, also run the 256 px image case on the CPU")
    p.add_argument("--with-batch", action="store_true",
                   help="also batch_throughput.py: jobs per hour of nst batch (GPU: 64 images at 512 px, one at a "
                        "time against Ray's fractional packing)")
    p.add_argument("--with-precision-quality", action="store_true",
                   help="also run precision_quality.py (fp32 vs bf16 vs tf32 results)")
    p.add_argument("--with-time-to-quality", action="store_true",
                   help="on a CPU also run time_to_quality.py (256 and 512 px, 10 s of audio, each also at the "
                        "reference's quality: about 70 minutes on 2 cores); on a GPU it always runs (512 px, 10 s)")
    p.add_argument("--with-tiled-memory", action="store_true",
                   help="on a CPU also run tiled_memory.py (2048 and 4096 px within 16 GiB); on a GPU it always runs "
                        "(4096 and 8192 px)")
    p.add_argument("--quick", action="store_true", help="tiny sizes and random weights: checks the mechanics only")
    p.add_argument("--weights", default=None,
                   help="image benchmark weights (bench_image.py's default, vgg16-hed, when not given; random = "
                        "VGG-19 with random weights)")
    p.add_argument("--precision", default=None, help="precision of ours in every case (the scripts' default: auto)")
    p.add_argument("--repeats", type=int, default=None, help="--repeats for the image and audio cases")
    p.add_argument("--threads", type=int, default=None, help="--threads for the audio case")
    p.add_argument("--skip", nargs="*", choices=CASE_ORDER, help="cases not to run")
    p.add_argument("--timeout", type=float, default=7200.0, help="seconds before a case is stopped")
    p.add_argument("--from-json", nargs="+", metavar="FILE", default=None,
                   help="print the Markdown table of saved results (all.json or single documents); runs nothing")
    args = p.parse_args(argv)
    if args.from_json is None and not args.out_dir:
        p.error("--out-dir is required (or --from-json FILE to print saved results)")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.from_json:
        print(markdown_table(load_results(args.from_json)), end="")
        return 0

    sys.path.insert(0, str(HERE))
    import torch
    from nst_core import resolve_device
    from _common import machine_info

    device = resolve_device(args.device)
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    doc: dict[str, Any] = {
        "benchmark": "all cases (benchmarks/run_all.py)",
        "machine": machine_info(device),
        "torch": torch.__version__,
        "settings": {"device": str(device), "quick": args.quick, "with_cpu": args.with_cpu,
                     "with_precision_quality": args.with_precision_quality, "with_batch": args.with_batch,
                     "with_time_to_quality": args.with_time_to_quality,
                     "with_tiled_memory": args.with_tiled_memory,
                     "weights": args.weights,
                     "precision": args.precision, "repeats": args.repeats, "threads": args.threads,
                     "skip": args.skip or []},
        "cases": {},
    }
    all_json, all_md = out_dir / "all.json", out_dir / "all.md"
    failed = []
    for case in plan(str(device), args, out_dir):
        if "skip" in case:
            doc["cases"][case["name"]] = {"result": case["skip"]}
        else:
            entry = run_case(case, out_dir / "logs", args.timeout)
            doc["cases"][case["name"]] = entry
            if entry["result"] is None:
                failed.append(case["name"])
        all_json.write_text(json.dumps(doc, indent=2) + "\n")
    table = markdown_table(doc)
    all_md.write_text(table)
    all_json.write_text(json.dumps(doc, indent=2) + "\n")
    print(table, end="")
    log(f"wrote {all_json} and {all_md}" + (f"; failed: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
