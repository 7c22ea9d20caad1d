"""A small comparison report made once (random weights, tiny sizes) for the report and browser tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

SR = 22050


def _tone(freqs, seconds: float, harmonics: int) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    seg = len(t) // len(freqs)
    out = np.zeros_like(t)
    for i, f in enumerate(freqs):
        tt = t[i * seg:(i + 1) * seg]
        out[i * seg:(i + 1) * seg] = sum(np.sin(2 * np.pi * f * k * tt) / k for k in range(1, harmonics + 1))
    return (0.3 * out / np.abs(out).max()).astype(np.float32)


@pytest.fixture(scope="session")
def report_inputs(tmp_path_factory, demo_inputs) -> dict[str, Path]:
    """A content and a style image (the demo's) and two 1.5 s clips: sine notes and a sawtooth-like phrase."""
    d = tmp_path_factory.mktemp("report_inputs")
    sf.write(d / "notes_sine.wav", _tone([262, 330, 392], 1.5, 1), SR)
    sf.write(d / "phrase_saw.wav", _tone([196, 220], 1.5, 12), SR)
    return {"image_content": demo_inputs["content_landscape"], "image_style": demo_inputs["style_swirls"],
            "audio_content": d / "notes_sine.wav", "audio_style": d / "phrase_saw.wav"}


def make_comparison(out: Path, inputs: dict[str, Path], **kw) -> Path:
    from nst_audio.stylize import AudioStyleConfig
    from nst_jobs import run_comparison
    from nst_image import ImageStyleConfig, VGGFeatures

    torch.manual_seed(0)
    return run_comparison(
        out, image=(inputs["image_content"], inputs["image_style"]),
        audio=(inputs["audio_content"], inputs["audio_style"]),
        image_config=ImageStyleConfig.of(image_size=48, iterations=8, device="cpu", seed=0),
        audio_config=AudioStyleConfig.of(n_fft=512, hop_length=128, filters=128, iterations=8, griffin_lim_iters=16,
                                      device="cpu", seed=0),
        weights="random", image_extractor=VGGFeatures("vgg16"), command="nst compare (test)", **kw)


@pytest.fixture(scope="session")
def tiny_report(tmp_path_factory, report_inputs) -> Path:
    """Folder of a finished comparison report; tests that change it work on a copy (``report_copy``)."""
    out = tmp_path_factory.mktemp("tiny") / "report"
    make_comparison(out, report_inputs)
    return out


@pytest.fixture
def report_copy(tiny_report, tmp_path) -> Path:
    dst = tmp_path / "report"
    shutil.copytree(tiny_report, dst)
    return dst
