"""Checkpoints and resume: a run killed (kill -9) or stopped (Ctrl-C) at a random step, then resumed, ends
bit-identical to a run that was never stopped (CPU, fixed seed); a checkpoint made for other inputs or
settings is refused."""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from nst_run import assert_one_line_error, run

RUN = ["--weights", "random", "--seed", "0", "--scales", "32", "--image-size", "48", "--iterations", "150",
       "--tolerance", "0", "--device", "cpu", "--no-progress"]


@pytest.fixture(scope="module")
def pair(tmp_path_factory, demo_inputs):
    folder = tmp_path_factory.mktemp("inputs")
    content, style = folder / "content.png", folder / "style.png"
    shutil.copy(demo_inputs["content_landscape"], content)
    shutil.copy(demo_inputs["style_mosaic"], style)
    return content, style


def _nst(args, **kw) -> subprocess.Popen:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.Popen([sys.executable, "-m", "nst_cli", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env, **kw)


def _finish(args) -> tuple[int, str]:
    """Run to the end in a process like the reference's (the same thread count: same float reductions)."""
    proc = _nst(args)
    _, err = proc.communicate(timeout=300)
    return proc.returncode, err.decode()


def _pixels(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path))


@pytest.fixture(scope="module")
def reference(pair, tmp_path_factory):
    """The uninterrupted run (same options, checkpoints on), made once: its picture."""
    tmp_path = tmp_path_factory.mktemp("reference")
    out = tmp_path / "reference.png"
    proc = _nst(["image", *pair, "-o", out, "--checkpoint-every", "10", *RUN])
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err.decode()
    assert not (tmp_path / "reference.ckpt").exists()  # removed when the run finished
    return out


def _wait_for(path: Path, timeout: float = 120.0) -> None:
    end = time.time() + timeout
    while not path.exists():
        assert time.time() < end, f"{path} never appeared"
        time.sleep(0.01)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1])
def test_kill_9_then_resume_is_bit_identical(seed, pair, tmp_path, reference, capsys):
    out, ckpt = tmp_path / "out.png", tmp_path / "out.ckpt"
    proc = _nst(["image", *pair, "-o", out, "--checkpoint-every", "10", *RUN])
    _wait_for(ckpt)
    time.sleep(random.Random(seed).uniform(0.0, 1.5))  # a random step, maybe in the second scale
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    assert ckpt.exists() and not out.exists()
    saved = torch.load(ckpt, weights_only=True)
    code, err = _finish(["image", *pair, "-o", out, "--checkpoint-every", "10", "--resume", ckpt, *RUN])
    assert code == 0, err
    assert f"resuming scale {saved['segment'] + 1}/2" in err
    assert np.array_equal(_pixels(out), _pixels(reference))
    assert not ckpt.exists()


@pytest.mark.slow
def test_ctrl_c_saves_a_checkpoint_and_the_best_result_then_resume_finishes(pair, tmp_path, reference, capsys):
    out, ckpt = tmp_path / "out.png", tmp_path / "out.ckpt"
    proc = _nst(["image", *pair, "-o", out, "--checkpoint-every", "25", *RUN])
    _wait_for(ckpt)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    err = err.decode()
    assert proc.returncode == 130, err
    assert "interrupted at step" in err and f"--resume {ckpt}" in err and "Traceback" not in err
    assert out.exists() and ckpt.exists()  # the best result so far, and where to continue from
    code, err = _finish(["image", *pair, "-o", out, "--resume", ckpt, *RUN])
    assert code == 0, err
    assert np.array_equal(_pixels(out), _pixels(reference))


def test_a_checkpoint_for_other_settings_is_refused(pair, tmp_path, capsys):
    out, ckpt = tmp_path / "out.png", tmp_path / "out.ckpt"
    proc = _nst(["image", *pair, "-o", out, "--checkpoint-every", "5", *RUN])
    _wait_for(ckpt)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    code, _, err = run(["image", *pair, "-o", out, "--resume", ckpt, "--style-weight", "3", *RUN], capsys)
    assert_one_line_error(code, err, "made for other inputs or settings")
    assert code == 2 and ckpt.exists()  # kept: the right command can still resume it
    broken = tmp_path / "broken.ckpt"
    broken.write_bytes(b"not a checkpoint")
    code, _, err = run(["image", *pair, "-o", out, "--resume", broken, *RUN], capsys)
    assert_one_line_error(code, err, "cannot be read")


AUDIO = Path(__file__).resolve().parents[2] / "examples" / "audio"
AUDIO_RUN = ["--iterations", "40", "--filters", "64", "--griffin-lim-iters", "8", "--chunk-seconds", "3",
             "--chunk-overlap", "0.5",
             "--seed", "0", "--device", "cpu", "--no-progress"]


@pytest.mark.slow
def test_audio_killed_in_a_later_chunk_resumes_to_the_same_samples(tmp_path, capsys):
    """kill -9 of `nst audio` after its first chunks: the resumed run replays the finished chunks' cross-fade and
    Griffin-Lim from the checkpoint, continues the current chunk, and writes the same samples as a run never
    stopped."""
    import soundfile as sf

    clips = [AUDIO / "melody_sine.wav", AUDIO / "phrase_violin.wav"]
    ref = tmp_path / "ref.wav"
    code, err = _finish(["audio", *clips, "-o", ref, "--checkpoint-every", "5", *AUDIO_RUN])
    assert code == 0, err
    out, ckpt = tmp_path / "out.wav", tmp_path / "out.ckpt"
    proc = _nst(["audio", *clips, "-o", out, "--checkpoint-every", "5", *AUDIO_RUN])
    end = time.time() + 300
    while True:  # until the checkpoint is in the second chunk or later
        assert time.time() < end and proc.poll() is None, "the run never reached a second chunk"
        if ckpt.exists():
            try:
                if torch.load(ckpt, weights_only=True)["segment"] >= 1:
                    break
            except Exception:  # replaced while read
                pass
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    assert not out.exists()
    saved = torch.load(ckpt, weights_only=True)
    assert len(saved["finished"]) == saved["segment"] >= 1
    code, err = _finish(["audio", *clips, "-o", out, "--checkpoint-every", "5", "--resume", ckpt, *AUDIO_RUN])
    assert code == 0, err
    assert f"resuming mono chunk {saved['segment'] + 1}/" in err
    assert np.array_equal(sf.read(out)[0], sf.read(ref)[0])
    assert not ckpt.exists()
