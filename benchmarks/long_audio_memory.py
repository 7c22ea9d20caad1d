"""Peak memory of ``nst audio`` against the clip's duration: does it stay bounded as the clip grows?

Makes content clips of the given lengths (the demo's sine melody repeated, 22050 Hz mono 16-bit WAV) and
runs the real command on each, ``nst audio CLIP examples/audio/phrase_violin.wav -o OUT --iterations N``
at otherwise default settings, each in its own process, one after the other; the peak resident size of
each process comes from ``os.wait4``. Writes JSON with the seconds, the peak RSS of each run and the ratio
of each to the shortest.

    python benchmarks/long_audio_memory.py --minutes 1 20 --iterations 2 --out benchmarks/results/cpu/long_audio_memory.json
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import soundfile as sf

from _common import emit, machine_info

ROOT = Path(__file__).resolve().parents[1]
AUDIO = ROOT / "examples" / "audio"


def make_clip(path: Path, seconds: float) -> Path:
    melody, rate = sf.read(AUDIO / "melody_sine.wav", dtype="float32")
    n = int(seconds * rate)
    with sf.SoundFile(path, "w", samplerate=rate, channels=1, subtype="PCM_16") as f:
        written = 0
        while written < n:  # written a melody at a time: the generator itself stays small
            piece = melody[: n - written]
            f.write(piece)
            written += len(piece)
    return path


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, nargs="+", default=[1.0, 20.0])
    p.add_argument("--iterations", type=int, default=2)
    p.add_argument("--threads", type=int, default=None, help="OMP_NUM_THREADS for the runs (default: unset)")
    p.add_argument("--out", default=None, help="JSON file (default: stdout)")
    args = p.parse_args(argv)

    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for minutes in args.minutes:
            clip = make_clip(Path(tmp) / f"content_{minutes:g}min.wav", minutes * 60)
            out = Path(tmp) / f"out_{minutes:g}min.wav"
            pid_before = time.perf_counter()
            cmd = [sys.executable, "-m", "nst_cli", "audio", str(clip), str(AUDIO / "phrase_violin.wav"), "-o",
                   str(out), "--iterations", str(args.iterations), "--no-progress"]
            env = dict(os.environ, **({"OMP_NUM_THREADS": str(args.threads)} if args.threads else {}))
            with open(Path(tmp) / "stdout", "w+b") as so, open(Path(tmp) / "stderr", "w+b") as se:
                proc = subprocess.Popen(cmd, stdout=so, stderr=se, env=env, cwd=ROOT)
                _pid, status, usage = os.wait4(proc.pid, 0)
                so.seek(0)
                se.seek(0)
                stdout, stderr = so.read().decode(), se.read().decode()
            seconds = time.perf_counter() - pid_before
            code = os.waitstatus_to_exitcode(status)
            peak = usage.ru_maxrss * (1 if sys.platform == "darwin" else 1024)
            runs.append({"minutes": minutes, "returncode": code, "seconds": round(seconds, 1),
                         "peak_rss_bytes": int(peak), "peak_rss_mib": round(peak / 2**20, 1),
                         "output_seconds": round(sf.info(out).duration, 2) if out.exists() else None,
                         "summary": stdout.strip().splitlines()[-2:], "stderr_tail": stderr.strip()[-300:]})
            print(f"{minutes:g} min: exit {code}, {seconds:.0f} s, peak RSS {peak / 2**20:.0f} MiB", flush=True)
    base = runs[0]["peak_rss_bytes"]
    for r in runs:
        r["peak_ratio_to_shortest"] = round(r["peak_rss_bytes"] / base, 3)
    import torch

    emit({"benchmark": "long_audio_memory", "iterations": args.iterations,
                          "settings": "nst audio defaults (4096 random filters, 30 s chunks, 200 Griffin-Lim iterations)",
                          "machine": machine_info(torch.device("cpu")), "runs": runs}, str(args.out))
    return 0 if all(r["returncode"] == 0 for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
