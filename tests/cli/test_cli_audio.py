"""`nst audio` end to end, and every bad input: one stderr line, a non-zero exit, no output file, inputs kept.

Inputs are 1.5 s cuts of the synthesized demo clips in examples/audio, written to a temporary folder; the
random CNN is small and runs few steps (FAST), so each successful run takes about a second on a CPU.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from nst_run import assert_one_line_error, run

AUDIO = Path(__file__).resolve().parents[2] / "examples" / "audio"
SR = 22050
SECONDS = 1.5
FAST = ["--filters", "256", "--iterations", "10", "--griffin-lim-iters", "8", "--no-progress", "--device", "cpu",
        "--seed", "0"]


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """One intra-op thread here: the two cores are shared with other jobs, and two OpenMP threads spin-wait on
    each other whenever another process holds a core (a run of a second becomes half a minute)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _cut(src: str, dst: Path, seconds: float = SECONDS, start: float = 0.0) -> Path:
    data, rate = sf.read(AUDIO / src, dtype="float32", always_2d=True)
    assert rate == SR
    a = int(round(start * rate))
    sf.write(dst, data[a:a + int(round(seconds * rate))], rate, subtype="PCM_16")
    return dst


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("clips")
    return {
        "content": _cut("melody_sine.wav", d / "content.wav"),
        "style": _cut("phrase_violin.wav", d / "style.flac"),
        "rain": _cut("rain.wav", d / "rain.wav"),
        "stereo": _cut("melody_violin_stereo.wav", d / "stereo.wav", start=6.5),
    }


# ---------------------------------------------------------------------------------------------- success


def test_audio_end_to_end_writes_result_trace_and_spectrogram(clips, tmp_path, capsys):
    out, spec = tmp_path / "out.wav", tmp_path / "spec.png"
    code, stdout, err = run(["audio", clips["content"], clips["style"], "-o", out, "--spectrogram", spec, *FAST],
                            capsys)
    assert code == 0, err
    info = sf.info(out)
    assert (info.format, info.samplerate, info.channels) == ("WAV", SR, 1)
    assert info.frames == sf.info(clips["content"]).frames == int(SECONDS * SR)
    doc = json.loads((tmp_path / "out.trace.json").read_text())
    assert doc["modality"] == "audio" and doc["settings"]["mode"] == "transfer"
    assert doc["settings"]["filters"] == 256 and doc["settings"]["optimize"]["steps"] == 10
    assert doc["inputs"]["content"] == str(clips["content"])
    assert "spectral_convergence_db" in doc["metrics"]
    assert spec.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "wrote" in stdout and "spectral convergence" in stdout and "dB" in stdout
    assert "chroma correlation with content" in stdout
    y, _ = sf.read(out)
    assert np.isfinite(y).all() and np.abs(y).max() > 0.01  # audible, not silence


def test_audio_texture_writes_flac_of_the_given_duration(clips, tmp_path, capsys):
    out = tmp_path / "tex.flac"
    code, stdout, err = run(["audio", "--texture", clips["rain"], "--duration", "1.0", "-o", out, *FAST], capsys)
    assert code == 0, err
    info = sf.info(out)
    assert (info.format, info.samplerate, info.channels, info.frames) == ("FLAC", SR, 1, SR)
    assert json.loads((tmp_path / "tex.trace.json").read_text())["settings"]["mode"] == "texture"
    assert "(1.00 s, 1 channel(s))" in stdout


def test_audio_stereo_gives_two_channels(clips, tmp_path, capsys):
    out = tmp_path / "st.wav"
    code, stdout, err = run(["audio", clips["stereo"], clips["style"], "--stereo", "-o", out, *FAST], capsys)
    assert code == 0, err
    info = sf.info(out)
    assert (info.channels, info.frames) == (2, sf.info(clips["stereo"]).frames)
    assert json.loads((tmp_path / "st.trace.json").read_text())["channels"] == ["left", "right"]
    assert "2 channel(s)" in stdout


# ------------------------------------------------------------------------------------------- bad inputs


def _bad_clip(kind: str, d: Path) -> tuple[Path, str]:
    t = np.arange(SR) / SR
    tone = (0.5 * np.sin(2 * np.pi * 330 * t)).astype(np.float32)
    if kind == "missing":
        return d / "missing.wav", "not found"
    if kind == "empty":
        (d / "empty.wav").write_bytes(b"")
        return d / "empty.wav", "empty"
    if kind == "text":
        (d / "notes.wav").write_text("this is not audio\n")
        return d / "notes.wav", "not in an audio format"
    if kind == "silent":
        sf.write(d / "silent.wav", np.zeros(SR, np.float32), SR)
        return d / "silent.wav", "silent"
    if kind == "short":
        sf.write(d / "short.wav", tone[:500], SR)
        return d / "short.wav", "500 samples"
    if kind == "nan":
        bad = tone.copy()
        bad[1000] = np.nan
        sf.write(d / "nan.wav", bad, SR, subtype="FLOAT")
        return d / "nan.wav", "NaN"
    raise AssertionError(kind)


def _assert_nothing_written(d: Path) -> None:
    assert not (d / "out.wav").exists() and not (d / "out.trace.json").exists()
    assert not [p for p in d.iterdir() if p.name.startswith(".out")]  # no temporary left behind


@pytest.mark.parametrize("kind", ["missing", "empty", "text", "silent", "short", "nan"])
@pytest.mark.parametrize("role", ["content", "style"])
def test_bad_clips_give_one_line_errors(kind, role, clips, tmp_path, capsys):
    bad, needle = _bad_clip(kind, tmp_path)
    args = [bad, clips["style"]] if role == "content" else [clips["content"], bad]
    before = {p: _digest(p) for p in (clips["content"], clips["style"])}
    code, stdout, err = run(["audio", *args, "-o", tmp_path / "out.wav", *FAST], capsys)
    assert_one_line_error(code, err, needle)
    assert code == 2 and stdout == ""
    _assert_nothing_written(tmp_path)
    assert {p: _digest(p) for p in before} == before


def test_absurd_duration(clips, tmp_path, capsys):
    code, _, err = run(["audio", "--texture", clips["rain"], "--duration", "1e9", "-o", tmp_path / "out.wav",
                        *FAST], capsys)
    assert_one_line_error(code, err, "--duration", "<= 10800")
    _assert_nothing_written(tmp_path)


@pytest.mark.parametrize("args,needle", [
    # Each of these was refused only after the run had logged "extractor: ..." to stderr (two lines), and
    # the blend weights as "nst: internal error: ValueError" (exit 70); now refused before any log line.
    (["--duration", "0.01"], "shorter than one FFT frame"),
    (["--style-blend-weights", "nan"], "finite"),
    (["--style-blend-weights", "0"], "not all be zero"),
])
def test_bad_settings_refused_before_any_work(args, needle, clips, tmp_path, capsys):
    clip_args = ["--texture", clips["rain"]] if args[0] == "--duration" else [clips["content"], clips["style"]]
    code, _, err = run(["audio", *clip_args, *args, "-o", tmp_path / "out.wav", *FAST], capsys)
    assert_one_line_error(code, err, needle)
    assert code == 2
    _assert_nothing_written(tmp_path)


def test_three_channel_content_with_stereo(clips, tmp_path, capsys):
    three = tmp_path / "three.wav"
    data, _ = sf.read(clips["stereo"], dtype="float32")
    sf.write(three, np.concatenate([data, data[:, :1]], axis=1), SR)
    code, _, err = run(["audio", three, clips["style"], "--stereo", "-o", tmp_path / "out.wav", *FAST], capsys)
    assert_one_line_error(code, err, "this one has 3")
    _assert_nothing_written(tmp_path)


def test_texture_without_duration(clips, tmp_path, capsys):
    code, _, err = run(["audio", "--texture", clips["rain"], "-o", tmp_path / "out.wav", *FAST], capsys)
    assert_one_line_error(code, err, "needs --duration")
    _assert_nothing_written(tmp_path)


def test_one_clip_without_texture(clips, tmp_path, capsys):
    code, _, err = run(["audio", clips["content"], "-o", tmp_path / "out.wav", *FAST], capsys)
    assert_one_line_error(code, err, "content clip and at least one style clip")
    _assert_nothing_written(tmp_path)


@pytest.mark.parametrize("where,needle", [
    ("missing folder", "does not exist"),
    ("mp3", "not supported"),
    ("directory", "is a directory"),
])
def test_unwritable_or_unsupported_output(where, needle, clips, tmp_path, capsys):
    out = {"missing folder": tmp_path / "no" / "such" / "out.wav", "mp3": tmp_path / "out.mp3",
           "directory": tmp_path}[where]
    code, _, err = run(["audio", clips["content"], clips["style"], "-o", out, *FAST], capsys)
    assert_one_line_error(code, err, needle)
    assert code == 4
    assert not (tmp_path / "no").exists() and not (tmp_path / "out.mp3").exists()
    assert not list(tmp_path.glob("*.trace.json"))


@pytest.mark.parametrize("role", ["content", "style"])
def test_output_equal_to_an_input_is_refused(role, clips, tmp_path, capsys):
    content = _cut("melody_sine.wav", tmp_path / "content.wav")
    style = _cut("phrase_violin.wav", tmp_path / "style.wav")
    target = content if role == "content" else style
    before = {p: _digest(p) for p in (content, style)}
    code, _, err = run(["audio", content, style, "-o", target, *FAST], capsys)
    assert_one_line_error(code, err, "is also an input")
    assert {p: _digest(p) for p in (content, style)} == before
    assert not list(tmp_path.glob("*.trace.json"))
