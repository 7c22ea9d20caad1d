"""The stopping rule and the thread count as a user meets them: flags, the summary line, the progress log,
the trace; multi-scale and chunked runs judged per part."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from nst_run import run

FAST = ["--weights", "random", "--image-size", "32", "--no-progress", "--device", "cpu"]
# An easy rule to meet: a run stops at the first reading after 10 steps whose loss fell < 50 % over 5 steps.
EAGER = ["--tolerance", "0.5", "--stop-window", "5", "--min-steps", "10", "--log-every", "5"]


@pytest.fixture
def images(tmp_path, demo_inputs):
    content, style = tmp_path / "content.png", tmp_path / "style.png"
    shutil.copy(demo_inputs["content_landscape"], content)
    shutil.copy(demo_inputs["style_mosaic"], style)
    return content, style


def _trace(out: Path) -> dict:
    return json.loads(out.with_name(out.stem + ".trace.json").read_text())


def test_a_converged_image_run_says_so_and_records_why(images, tmp_path, capsys):
    content, style = images
    out = tmp_path / "out.png"
    code, stdout, err = run(["image", content, style, "-o", out, "--iterations", "200", *EAGER, *FAST], capsys)
    assert code == 0, err
    doc = _trace(out)
    run0 = doc["runs"][0]
    assert run0["converged"] and run0["steps_run"] < 200
    assert run0["stop_reason"].startswith(f"converged at step {run0['steps_run']}:")
    assert doc["stop_reasons"] == [f"{run0['segment']}: {run0['stop_reason']}"]
    assert "(converged)" in stdout
    assert f"converged at step {run0['steps_run']}" in err  # the progress log says where and why


def test_tolerance_zero_runs_every_step(images, tmp_path, capsys):
    content, style = images
    out = tmp_path / "out.png"
    code, stdout, err = run(["image", content, style, "-o", out, "--iterations", "30", "--tolerance", "0",
                             "--stop-window", "5", "--min-steps", "10", "--log-every", "5", *FAST], capsys)
    assert code == 0, err
    run0 = _trace(out)["runs"][0]
    assert run0["steps_run"] == 30 and not run0["converged"]
    assert run0["stop_reason"] == "ran all 30 steps"
    assert "converged" not in stdout


def test_each_scale_of_a_multi_scale_run_stops_on_its_own(images, tmp_path, capsys):
    content, style = images
    out = tmp_path / "out.png"
    code, stdout, err = run(["image", content, style, "-o", out, "--iterations", "200", "--scales", "32",
                             *EAGER, *FAST[:2], "--image-size", "48", *FAST[4:]], capsys)
    assert code == 0, err
    runs = _trace(out)["runs"]
    assert len(runs) == 2
    assert all(r["converged"] and r["steps_run"] < 200 for r in runs)
    assert [r["size"][0] for r in runs] == [32, 48]


def test_each_chunk_of_a_long_clip_stops_on_its_own(tmp_path, capsys):
    sr = 8000
    t = np.arange(int(3.0 * sr)) / sr
    sf.write(tmp_path / "c.wav", (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), sr)
    sf.write(tmp_path / "s.wav", (0.3 * np.sign(np.sin(2 * np.pi * 330 * t))).astype(np.float32), sr)
    out = tmp_path / "out.wav"
    code, stdout, err = run(["audio", tmp_path / "c.wav", tmp_path / "s.wav", "-o", out, "--sample-rate", str(sr),
                             "--n-fft", "256", "--hop", "64", "--filters", "32", "--griffin-lim-iters", "4",
                             "--chunk-seconds", "1.2", "--chunk-overlap", "0.2", "--iterations", "200", *EAGER,
                             "--no-progress", "--device", "cpu"], capsys)
    assert code == 0, err
    runs = _trace(out)["runs"]
    assert len(runs) >= 3
    assert all(r["converged"] and r["steps_run"] < 200 for r in runs)
    assert "(converged)" in stdout


def test_threads_flag_is_applied_and_recorded(images, tmp_path, capsys):
    content, style = images
    out = tmp_path / "out.png"
    before = torch.get_num_threads()
    try:
        code, stdout, err = run(["image", content, style, "-o", out, "--iterations", "2", "--threads", "1", *FAST],
                                capsys)
        assert code == 0, err
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
    doc = _trace(out)
    assert doc["threads"] == 1 and doc["threads_from"] == "asked for (threads)"
    assert doc["device"] == "cpu (1 threads)"


def test_threads_bad_value_is_one_line(images, tmp_path, capsys):
    content, style = images
    code, stdout, err = run(["image", content, style, "-o", tmp_path / "o.png", "--threads", "0", *FAST], capsys)
    assert code != 0 and "--threads" in err and "Traceback" not in err


def _nst_threads_subprocess(tmp_path: Path, images, cpus: set[int] | None) -> dict:
    content, style = images
    out = tmp_path / f"out{len(cpus or ())}.png"
    code = (f"import os, sys; {'os.sched_setaffinity(0, %r); ' % (cpus,) if cpus else ''}"
            "from nst_cli.main import main; raise SystemExit(main(sys.argv[1:]))")
    args = ["image", str(content), str(style), "-o", str(out), "--iterations", "1", *FAST]
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=300,
                          env={k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")})
    assert proc.returncode == 0, proc.stderr
    return _trace(out)


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity") or len(os.sched_getaffinity(0)) < 2,
                    reason="needs an affinity mask of at least 2 cores to narrow")
def test_default_threads_follow_the_cores_this_process_may_use(images, tmp_path):
    every = len(os.sched_getaffinity(0))
    whole = _nst_threads_subprocess(tmp_path, images, None)
    assert whole["threads"] == every
    one = _nst_threads_subprocess(tmp_path, images, {sorted(os.sched_getaffinity(0))[0]})
    assert one["threads"] == 1
    assert one["threads_from"] == "one per core this process may use (1)"


def test_auto_threads_lower_a_count_above_the_usable_cores_and_keep_a_lower_one(monkeypatch):
    from nst_core import device as D

    before = torch.get_num_threads()
    try:
        monkeypatch.setattr(D, "usable_cores", lambda: 1)
        torch.set_num_threads(2)
        assert D.apply_threads(None) == "one per core this process may use (1; PyTorch had 2)"
        assert torch.get_num_threads() == 1
        monkeypatch.setattr(D, "usable_cores", lambda: 4)
        assert D.apply_threads(None) == "as set before the run (1 of 4 usable cores)"  # a caller's lower count
        assert torch.get_num_threads() == 1
        with D.host_threads(3, "a batch worker's share"):
            assert D.apply_threads(None) == "a batch worker's share" and torch.get_num_threads() == 3
        assert D.apply_threads(2) == "asked for (threads)" and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_a_cgroup_cpu_quota_caps_the_usable_cores(monkeypatch):
    from nst_core import device as D

    monkeypatch.setattr(D, "_cgroup_cpu_limit", lambda: 1)
    assert D.usable_cores() == 1
    monkeypatch.setattr(D, "_cgroup_cpu_limit", lambda: None)
    assert D.usable_cores() == len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else True
