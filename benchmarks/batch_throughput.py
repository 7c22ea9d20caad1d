"""Jobs per hour of ``nst batch`` on one machine: one worker, two workers with the cores split between them,
two workers that each use every core (oversubscribed), and Ray on the same machine; and Ray's overhead
against the local executor for jobs of 30 s or more. One JSON document.

Every configuration is the whole command, ``nst batch MANIFEST -o OUT``, in a fresh process, over the same
jobs into a fresh folder (nothing skipped). The reference is the plain way: one job after the other in one
process (``--workers 1``), measured in the same run. All jobs use one seed, so a worker builds its (random)
backbone once, as it would with pretrained weights; the style-target cache works in every configuration
alike.

CPU (default): 16 image jobs (96 px, 30 L-BFGS steps, VGG-19 with random weights) and 8 audio jobs (the
8 s demo melodies, 20 steps, 512 filters, 16 Griffin-Lim iterations); the overhead case runs
3 image jobs of about 30 s each (256 px, 70 steps) one at a time, locally and as Ray tasks, once on a
cluster the command starts and stops itself and once on a cluster already running (``--address auto``).

CUDA (``--device cuda``): 64 image jobs at 512 px (300 steps, random weights) one at a time on one GPU
against Ray packing them by each job's memory estimate (fractions of the GPU).

    python benchmarks/batch_throughput.py --out benchmarks/results/cpu/batch_throughput.json
    python benchmarks/batch_throughput.py --quick      # the mechanics in a minute
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # a local Ray here listens on loopback only

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

import torch  # noqa: E402

from _common import emit, machine_info  # noqa: E402
from nst_core import usable_cores  # noqa: E402

INPUTS = REPO / "examples" / "inputs"
AUDIO = REPO / "examples" / "audio"


def image_manifest(n: int, options: dict) -> str:
    """``n`` image jobs: the two demo pictures in two styles, in turn (one job per line of the manifest)."""
    contents = ["content_landscape.png", "content_portrait.png"]
    styles = ["style_swirls.png", "style_mosaic.png"]
    return "".join(f'[[job]]\ncontent = "{INPUTS / contents[k % 2]}"\nstyle = "{INPUTS / styles[(k // 2) % 2]}"\n'
                   f'output = "image_{k:02d}.png"\n{_toml(options)}\n' for k in range(n))


def audio_manifest(n: int, options: dict) -> str:
    contents = ["melody_sine.wav", "melody_flute.wav"]
    styles = ["phrase_violin.wav", "phrase_organ.wav"]
    return "".join(f'[[job]]\ncontent = "{AUDIO / contents[k % 2]}"\nstyle = "{AUDIO / styles[(k // 2) % 2]}"\n'
                   f'output = "audio_{k:02d}.wav"\n{_toml(options)}\n' for k in range(n))


def _toml(options: dict) -> str:
    return "".join(f"{k} = {json.dumps(v)}\n" for k, v in options.items())


def timed_batch(manifest: str, work: Path, name: str, flags: list[str]) -> dict:
    """``nst batch MANIFEST -o OUT FLAGS`` as a whole command in a fresh process: wall seconds, jobs per hour."""
    out = work / name
    shutil.rmtree(out, ignore_errors=True)
    path = work / f"{name}.toml"
    path.write_text(manifest)
    argv = [sys.executable, "-m", "nst_cli", "batch", str(path), "-o", str(out), "--no-progress", *flags]
    start = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, env=dict(os.environ, PYTHONWARNINGS="ignore"))
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{name}: nst batch exited {proc.returncode}: {proc.stderr.strip()[-2000:]}")
    doc = json.loads((out / "batch.json").read_text())
    records = doc["jobs"]
    job_seconds = [r["seconds"] for r in records]
    said = [line for line in proc.stderr.splitlines() if line.startswith("executor:")]
    result = {"jobs": len(records), "seconds": round(seconds, 2), "jobs_per_hour": round(len(records) * 3600 / seconds, 1),
              "mean_job_seconds": round(sum(job_seconds) / len(job_seconds), 2),
              "style_target_hits": sum(r.get("targets", {}).get("hits", 0) for r in records),
              "command": " ".join(["nst", "batch", "MANIFEST", "-o", "OUT", "--no-progress", *flags]),
              "executor": said[:1]}
    print(f"[batch_throughput] {name}: {len(records)} jobs in {seconds:.1f} s ({result['jobs_per_hour']} jobs/h)",
          file=sys.stderr, flush=True)
    return result


def throughput(kind: str, manifest: str, work: Path, ray_ok: bool) -> dict:
    configs = {
        "1_worker": ["--workers", "1"],
        "2_workers_split_threads": ["--workers", "2"],
        "2_workers_every_core_each": ["--workers", "2", "--threads", "0"],
    }
    if ray_ok:
        configs["ray_local_2_per_node"] = ["--executor", "ray", "--workers", "2"]
    out = {name: timed_batch(manifest, work, f"{kind}_{name}", flags) for name, flags in configs.items()}
    base = out["1_worker"]["seconds"]
    for doc in out.values():
        doc["speedup_vs_1_worker"] = round(base / doc["seconds"], 3)
    return out


def ray_overhead(manifest: str, work: Path) -> dict:
    """The same long jobs one at a time: locally; on a Ray cluster the command starts and stops itself (no
    address); and on a cluster already running (``ray start --head``, then ``--address auto``), as on a real
    cluster, where only the per-job costs remain."""
    local = timed_batch(manifest, work, "long_local", ["--workers", "1"])
    own = timed_batch(manifest, work, "long_ray_own_cluster", ["--executor", "ray", "--workers", "1"])
    ray_cli = [sys.executable, "-m", "ray.scripts.scripts"]
    cores = usable_cores()
    subprocess.run([*ray_cli, "start", "--head", "--node-ip-address", "127.0.0.1", "--num-cpus", str(cores),
                    "--include-dashboard", "false", "--disable-usage-stats"], check=True, capture_output=True)
    try:
        joined = timed_batch(manifest, work, "long_ray_running_cluster",
                             ["--executor", "ray", "--address", "auto", "--workers", "1"])
    finally:
        subprocess.run([*ray_cli, "stop"], capture_output=True)
    per_job = own["mean_job_seconds"] / local["mean_job_seconds"] - 1
    return {"local": local, "ray_own_cluster": own, "ray_running_cluster": joined,
            "overhead": round(own["seconds"] / local["seconds"] - 1, 4),
            "overhead_running_cluster": round(joined["seconds"] / local["seconds"] - 1, 4),
            "overhead_inside_jobs": round(per_job, 4),
            "target": "under 0.10 for jobs of 30 s or more"}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", help="write the JSON document here (default: print it)")
    ap.add_argument("--quick", action="store_true", help="tiny jobs: check the mechanics")
    ap.add_argument("--no-ray", action="store_true", help="leave out the Ray configurations")
    args = ap.parse_args(argv)
    try:
        import ray  # noqa: F401
        ray_ok = not args.no_ray
    except ImportError:
        ray_ok = False
    device = torch.device(args.device)
    work = Path(tempfile.mkdtemp(prefix="nst-batch-bench-"))
    doc: dict = {"benchmark": "batch_throughput", "machine": machine_info(device), "ray": ray_ok}
    try:
        if device.type == "cuda":
            opts = {"image_size": 512, "iterations": 300, "weights": "random", "device": "cuda"}
            n = 8 if args.quick else 64
            if args.quick:
                opts.update(image_size=128, iterations=10)
            manifest = image_manifest(n, opts)
            doc["gpu_images"] = {"options": opts, "one_at_a_time": timed_batch(manifest, work, "gpu_one", ["--workers", "1"])}
            if ray_ok:
                doc["gpu_images"]["ray_fractional"] = timed_batch(manifest, work, "gpu_ray", ["--executor", "ray"])
                doc["gpu_images"]["speedup"] = round(doc["gpu_images"]["one_at_a_time"]["seconds"]
                                                     / doc["gpu_images"]["ray_fractional"]["seconds"], 3)
        else:
            img = {"image_size": 96, "iterations": 30, "weights": "random", "seed": 0, "device": "cpu"}
            aud = {"iterations": 20, "filters": 512, "griffin_lim_iters": 16, "seed": 0, "device": "cpu"}
            long = {"image_size": 256, "iterations": 70, "weights": "random", "seed": 0, "device": "cpu"}
            counts = (16, 8, 3)
            if args.quick:
                img.update(image_size=48, iterations=3)
                aud.update(iterations=2, filters=64, griffin_lim_iters=2)
                long.update(image_size=64, iterations=5)
                counts = (4, 2, 2)
            doc["settings"] = {"image": img, "audio": aud, "long_image": long, "counts": counts,
                               "cores": usable_cores()}
            doc["image"] = throughput("image", image_manifest(counts[0], img), work, ray_ok)
            doc["audio"] = throughput("audio", audio_manifest(counts[1], aud), work, ray_ok)
            if ray_ok:
                doc["ray_overhead_long_jobs"] = ray_overhead(image_manifest(counts[2], long), work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    emit(doc, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
