"""Tests for nst_audio.io: loading every format, depth and layout, refusing bad files, and safe saving.

Every file is synthesised here with NumPy and soundfile; nothing is downloaded.
"""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch

import nst_audio.io as audio_io
from nst_audio.io import (
    DEFAULT_SAMPLE_RATE,
    SAVE_FORMATS,
    SUBTYPES,
    AudioClip,
    check_audio_output,
    is_silent,
    load_audio,
    save_audio,
)
from nst_core.errors import InputError, OutputError


def sine(freq: float = 440.0, seconds: float = 0.5, rate: int = 44100, amplitude: float = 0.5) -> np.ndarray:
    """(N,) float32 sine wave."""
    t = np.arange(round(seconds * rate)) / rate
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def peak_hz(samples: torch.Tensor, rate: int) -> float:
    """Frequency in Hz of the largest FFT bin of a (1, N) or (N,) signal."""
    x = samples.reshape(-1).double().numpy()
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.argmax(spectrum)) * rate / len(x)


def rms(x) -> float:
    return float(np.sqrt(np.mean(np.square(np.asarray(x, dtype=np.float64)))))


def write_or_skip(path, data, rate, *, format, subtype=None):
    """Write with soundfile, or skip the test when this libsndfile cannot encode that format."""
    try:
        sf.write(path, data, rate, format=format, subtype=subtype)
    except (sf.SoundFileError, RuntimeError, ValueError, TypeError) as err:
        pytest.skip(f"this libsndfile ({sf.__libsndfile_version__}) cannot write {format}/{subtype}: {err}")


def assert_one_line(err: Exception, *fragments: str) -> str:
    message = str(err)
    assert message and "\n" not in message and "Traceback" not in message
    for fragment in fragments:
        assert fragment.lower() in message.lower(), (fragment, message)
    return message


# ------------------------------------------------------------------------------------- formats


def test_wav_loads_with_shape_dtype_range_and_exact_values(tmp_path):
    data = sine(rate=22050)
    path = tmp_path / "a.wav"
    sf.write(path, data, 22050, subtype="FLOAT")
    clip = load_audio(str(path))  # str and PathLike both accepted; 22050 Hz needs no resampling
    assert isinstance(clip, AudioClip)
    assert clip.samples.shape == (1, len(data)) and clip.samples.dtype == torch.float32
    assert clip.sample_rate == DEFAULT_SAMPLE_RATE and clip.channels == 1
    assert clip.duration == pytest.approx(0.5)
    assert clip.path == str(path)
    np.testing.assert_array_equal(clip.samples[0].numpy(), data)


def test_resampling_44100_to_22050_keeps_the_frequency_and_duration(tmp_path):
    path = tmp_path / "a44.wav"
    sf.write(path, sine(440.0, seconds=1.0, rate=44100), 44100, subtype="PCM_16")
    clip = load_audio(path)
    assert clip.sample_rate == 22050
    assert clip.samples.shape == (1, 22050)
    assert peak_hz(clip.samples, 22050) == pytest.approx(440.0, abs=1.0)  # 1 s: bins are 1 Hz apart
    assert rms(clip.samples[0, 1000:-1000]) == pytest.approx(0.5 / np.sqrt(2), rel=0.01)


@pytest.mark.parametrize("native", [8000, 48000, 44101])
def test_any_native_rate_resamples(tmp_path, native):
    # 44101 Hz has no common factor with 22050: the sinc kernel would need gigabytes, soxr takes over.
    path = tmp_path / f"r{native}.wav"
    sf.write(path, sine(440.0, seconds=1.0, rate=native), native, subtype="PCM_16")
    clip = load_audio(path)
    assert clip.sample_rate == 22050
    assert abs(clip.samples.shape[1] - 22050) <= 1
    assert peak_hz(clip.samples, 22050) == pytest.approx(440.0, abs=1.0)
    assert clip.samples.abs().max() <= 1.0


def test_sample_rate_none_keeps_the_native_rate(tmp_path):
    data = sine(rate=48000)
    path = tmp_path / "a48.wav"
    sf.write(path, data, 48000, subtype="FLOAT")
    clip = load_audio(path, sample_rate=None)
    assert clip.sample_rate == 48000 and clip.samples.shape == (1, len(data))
    np.testing.assert_array_equal(clip.samples[0].numpy(), data)


def test_flac_loads_and_resamples(tmp_path):
    path = tmp_path / "a.flac"
    sf.write(path, sine(440.0, seconds=1.0), 44100, format="FLAC", subtype="PCM_16")
    clip = load_audio(path)
    assert clip.samples.shape == (1, 22050)
    assert peak_hz(clip.samples, 22050) == pytest.approx(440.0, abs=1.0)
    native = load_audio(path, sample_rate=None)
    np.testing.assert_allclose(native.samples[0].numpy(), sine(440.0, seconds=1.0), atol=2 / 32768)


@pytest.mark.parametrize(
    ("suffix", "format", "subtype"),
    [(".ogg", "OGG", "VORBIS"), (".mp3", "MP3", "MPEG_LAYER_III")],
)
def test_lossy_formats_load_with_duration_frequency_and_level(tmp_path, suffix, format, subtype):
    path = tmp_path / f"a{suffix}"
    write_or_skip(path, sine(440.0, seconds=1.0), 44100, format=format, subtype=subtype)
    clip = load_audio(path)
    assert clip.sample_rate == 22050
    # MP3 frames are 1152 samples; allow one frame of encoder delay/padding either way.
    assert clip.duration == pytest.approx(1.0, abs=1152 / 44100 + 1e-3)
    assert peak_hz(clip.samples[:, :22050], 22050) == pytest.approx(440.0, abs=2.0)
    middle = clip.samples[0, 2000:-2000]
    assert rms(middle) == pytest.approx(0.5 / np.sqrt(2), rel=0.05)


@pytest.mark.parametrize(
    ("subtype", "atol"),
    [
        # libsndfile writes float*(2^(b-1)-1) but reads int/2^(b-1): up to about one step of error.
        ("PCM_U8", 2 / 128),
        ("PCM_16", 2 / 2**15),
        ("PCM_24", 2 / 2**23),
        ("PCM_32", 1e-6),
        ("FLOAT", 0.0),
        ("DOUBLE", 1e-7),
    ],
)
def test_every_bit_depth_loads_within_quantisation(tmp_path, subtype, atol):
    data = sine(440.0, seconds=0.25, rate=22050, amplitude=0.9)
    path = tmp_path / f"{subtype}.wav"
    sf.write(path, data, 22050, subtype=subtype)
    assert sf.info(path).subtype == subtype
    clip = load_audio(path)
    assert clip.samples.dtype == torch.float32 and clip.samples.shape == (1, len(data))
    np.testing.assert_allclose(clip.samples[0].numpy(), data, atol=atol, rtol=0)


def test_stereo_mixes_to_mono_by_default_and_keeps_channels_on_request(tmp_path):
    left, right = sine(440.0, rate=22050, amplitude=0.6), sine(660.0, rate=22050, amplitude=0.3)
    path = tmp_path / "stereo.wav"
    sf.write(path, np.stack([left, right], axis=1), 22050, subtype="FLOAT")
    mixed = load_audio(path)
    assert mixed.samples.shape == (1, len(left))
    np.testing.assert_allclose(mixed.samples[0].numpy(), (left + right) / 2, atol=1e-7)
    both = load_audio(path, mono=False)
    assert both.samples.shape == (2, len(left)) and both.channels == 2
    np.testing.assert_array_equal(both.samples[0].numpy(), left)
    np.testing.assert_array_equal(both.samples[1].numpy(), right)
    np.testing.assert_allclose(both.mono().samples.numpy(), mixed.samples.numpy(), atol=1e-7)


def test_many_channels_are_kept_and_resampled_together(tmp_path):
    data = np.stack([sine(220.0 * (k + 1), seconds=1.0, rate=44100, amplitude=0.1 * (k + 1)) for k in range(6)], axis=1)
    path = tmp_path / "surround.wav"
    sf.write(path, data, 44100, subtype="PCM_24")
    clip = load_audio(path, mono=False)
    assert clip.samples.shape == (6, 22050)
    for k in range(6):
        assert peak_hz(clip.samples[k], 22050) == pytest.approx(220.0 * (k + 1), abs=1.0)


def test_float_file_louder_than_full_scale_is_scaled_not_clipped(tmp_path):
    data = sine(rate=22050, amplitude=2.0)
    path = tmp_path / "hot.wav"
    sf.write(path, data, 22050, subtype="FLOAT")
    clip = load_audio(path)
    assert clip.samples.abs().max().item() == pytest.approx(1.0)
    np.testing.assert_allclose(clip.samples[0].numpy(), data / 2.0, atol=1e-6)


def test_librosa_fallback_when_soundfile_cannot_read(tmp_path, monkeypatch, recwarn):
    data = sine(rate=22050)
    path = tmp_path / "fallback.wav"
    sf.write(path, data, 22050, subtype="PCM_16")

    def refuse(*args, **kwargs):
        raise sf.LibsndfileError(1, prefix="Error opening: ")

    monkeypatch.setattr(audio_io.sf, "read", refuse)  # librosa reads via sf.SoundFile, not sf.read
    clip = load_audio(path)
    assert clip.samples.shape == (1, len(data))
    np.testing.assert_allclose(clip.samples[0].numpy(), data, atol=2 / 32768)
    assert not [w for w in recwarn if "librosa" in str(w.filename) or "audioread" in str(w.filename)]


# ----------------------------------------------------------------------------------- bad inputs


def _missing(tmp_path):
    return tmp_path / "nope.wav"


def _directory(tmp_path):
    folder = tmp_path / "folder.wav"
    folder.mkdir()
    return folder


def _empty(tmp_path):
    path = tmp_path / "empty.wav"
    path.write_bytes(b"")
    return path


def _text(tmp_path):
    path = tmp_path / "notes.wav"
    path.write_text("this is not audio\njust some text\n")
    return path


def _truncated(tmp_path):
    full = tmp_path / "full.wav"
    sf.write(full, sine(rate=22050), 22050, subtype="PCM_16")
    path = tmp_path / "truncated.wav"
    path.write_bytes(full.read_bytes()[:30])
    return path


def _no_samples(tmp_path):
    path = tmp_path / "nothing.wav"
    sf.write(path, np.zeros((0, 1), np.float32), 22050, subtype="PCM_16")
    return path


def _nan(tmp_path):
    data = sine(rate=22050)
    data[1000] = np.nan
    path = tmp_path / "nan.wav"
    sf.write(path, data, 22050, subtype="FLOAT")
    return path


def _inf(tmp_path):
    data = sine(rate=22050)
    data[-1] = np.inf
    path = tmp_path / "inf.wav"
    sf.write(path, data, 22050, subtype="FLOAT")
    return path


@pytest.mark.parametrize(
    ("make", "fragments"),
    [
        (_missing, ["not found"]),
        (_directory, ["directory"]),
        (_empty, ["empty", "0 bytes"]),
        (_text, ["not in an audio format"]),
        (_truncated, ["cannot be decoded", "corrupt"]),
        (_no_samples, ["no samples"]),
        (_nan, ["NaN", "0.045 s"]),
        (_inf, ["infinite"]),
    ],
    ids=["missing", "directory", "empty", "text-as-wav", "truncated", "no-samples", "nan", "inf"],
)
def test_bad_inputs_raise_input_error_with_one_line(tmp_path, recwarn, make, fragments):
    path = make(tmp_path)
    with pytest.raises(InputError) as excinfo:
        load_audio(path)
    message = assert_one_line(excinfo.value, *fragments)
    assert str(path) in message
    assert len(recwarn) == 0, [str(w.message) for w in recwarn]  # librosa/audioread warnings are silenced


def test_too_short_clip_states_duration_and_minimum(tmp_path):
    path = tmp_path / "short.wav"
    sf.write(path, sine(rate=22050)[:100], 22050, subtype="PCM_16")
    with pytest.raises(InputError) as excinfo:
        load_audio(path, min_samples=2048)
    assert_one_line(excinfo.value, "0.005 s", "100 samples", "2048 samples", "0.093 s")
    assert load_audio(path, min_samples=100).samples.shape == (1, 100)  # the minimum itself is accepted


def test_min_samples_counts_samples_after_resampling(tmp_path):
    path = tmp_path / "short44.wav"
    sf.write(path, sine(rate=44100)[:3000], 44100, subtype="PCM_16")  # 1500 samples at 22050 Hz
    with pytest.raises(InputError, match="1500 samples at 22050 Hz"):
        load_audio(path, min_samples=2048)
    assert load_audio(path, sample_rate=None, min_samples=2048).samples.shape == (1, 3000)


@pytest.mark.parametrize("kwargs", [{"sample_rate": 0}, {"sample_rate": 22050.5}, {"min_samples": -1}])
def test_bad_arguments_raise_input_error(tmp_path, kwargs):
    path = tmp_path / "ok.wav"
    sf.write(path, sine(rate=22050), 22050)
    with pytest.raises(InputError) as excinfo:
        load_audio(path, **kwargs)
    assert_one_line(excinfo.value)


# --------------------------------------------------------------------------------------- saving


@pytest.mark.parametrize(
    ("suffix", "subtype", "atol"),
    [(".wav", "PCM_16", 2 / 2**15), (".wav", "PCM_24", 2 / 2**23), (".wav", "FLOAT", 0.0), (".flac", "PCM_16", 2 / 2**15)],
)
def test_save_round_trips(tmp_path, suffix, subtype, atol):
    stereo = torch.from_numpy(np.stack([sine(440.0, rate=22050), sine(550.0, rate=22050, amplitude=0.25)]))
    path = tmp_path / f"out{suffix}"
    written = save_audio(stereo, path, 22050, subtype=subtype)
    assert written == path
    info = sf.info(path)
    assert (info.format, info.subtype, info.samplerate, info.channels) == (SAVE_FORMATS[suffix], subtype, 22050, 2)
    clip = load_audio(path, sample_rate=None, mono=False)
    np.testing.assert_allclose(clip.samples.numpy(), stereo.numpy(), atol=atol, rtol=0)


def test_save_accepts_one_dimensional_samples(tmp_path):
    data = torch.from_numpy(sine(rate=22050))
    path = save_audio(data, tmp_path / "mono.wav", 22050, subtype="FLOAT")
    assert sf.info(path).channels == 1
    np.testing.assert_array_equal(load_audio(path).samples[0].numpy(), data.numpy())


def test_save_scales_a_loud_clip_down_without_clipping(tmp_path):
    loud = torch.from_numpy(sine(440.0, rate=22050, amplitude=1.7)).unsqueeze(0)
    before = loud.clone()
    path = save_audio(loud, tmp_path / "loud.wav", 22050)
    torch.testing.assert_close(loud, before, rtol=0, atol=0)  # the caller's tensor is untouched
    saved = load_audio(path, sample_rate=None).samples[0].numpy()
    assert np.abs(saved).max() <= 0.999 + 1 / 2**15
    assert np.abs(saved).max() >= 0.99
    assert np.corrcoef(saved, loud[0].numpy())[0, 1] > 0.99999  # same shape: scaled, not clipped


def test_save_refuses_to_overwrite_an_input(tmp_path):
    path = tmp_path / "input.wav"
    sf.write(path, sine(rate=22050), 22050)
    original = path.read_bytes()
    with pytest.raises(OutputError) as excinfo:
        save_audio(torch.zeros(1, 100), path, 22050, inputs=[tmp_path / "." / "input.wav"])
    assert_one_line(excinfo.value, "input")
    assert path.read_bytes() == original


@pytest.mark.parametrize("name", ["out.mp3", "out.ogg", "out"])
def test_unknown_extension_raises_output_error_naming_the_choices(tmp_path, name):
    with pytest.raises(OutputError) as excinfo:
        save_audio(torch.zeros(1, 100), tmp_path / name, 22050)
    assert_one_line(excinfo.value, ".wav", ".flac")
    assert list(tmp_path.iterdir()) == []


def test_flac_cannot_take_float(tmp_path):
    with pytest.raises(OutputError) as excinfo:
        save_audio(torch.zeros(1, 100), tmp_path / "out.flac", 22050, subtype="FLOAT")
    assert_one_line(excinfo.value, "PCM_16", "PCM_24", ".wav")
    with pytest.raises(OutputError):
        check_audio_output(tmp_path / "out.flac", subtype="FLOAT")
    with pytest.raises(OutputError, match="PCM_8"):
        save_audio(torch.zeros(1, 100), tmp_path / "out.wav", 22050, subtype="PCM_8")
    assert list(tmp_path.iterdir()) == []


def test_check_audio_output(tmp_path):
    assert check_audio_output(tmp_path / "a.wav") == "WAV"
    assert check_audio_output(tmp_path / "a.FLAC") == "FLAC"
    assert check_audio_output(tmp_path / "a.wav", subtype="FLOAT") == "WAV"
    assert set(SUBTYPES) == {"PCM_16", "PCM_24", "FLOAT"}
    with pytest.raises(OutputError, match="does not exist"):
        check_audio_output(tmp_path / "missing" / "a.wav")
    with pytest.raises(OutputError, match="directory"):
        check_audio_output(tmp_path)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_save_refuses_non_finite_samples(tmp_path, bad):
    samples = torch.zeros(1, 100)
    samples[0, 50] = bad
    with pytest.raises(OutputError) as excinfo:
        save_audio(samples, tmp_path / "bad.wav", 22050)
    assert_one_line(excinfo.value, "NaN or infinite")
    assert list(tmp_path.iterdir()) == []


def test_atomic_save_leaves_no_temp_files_and_keeps_the_old_file_on_failure(tmp_path, monkeypatch):
    path = tmp_path / "result.wav"
    save_audio(torch.zeros(1, 100), path, 22050)
    assert [p.name for p in tmp_path.iterdir()] == ["result.wav"]
    save_audio(torch.full((1, 200), 0.5), path, 22050)  # overwriting a non-input result is allowed
    assert sf.info(path).frames == 200
    original = path.read_bytes()

    def disk_full(file, *args, **kwargs):
        with open(file, "wb") as handle:
            handle.write(b"RIFF partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(audio_io.sf, "write", disk_full)
    with pytest.raises(OutputError) as excinfo:
        save_audio(torch.zeros(1, 300), path, 22050)
    assert_one_line(excinfo.value, "No space left on device")
    assert [p.name for p in tmp_path.iterdir()] == ["result.wav"]
    assert path.read_bytes() == original


# ---------------------------------------------------------------------------------- is_silent / clip


def test_is_silent():
    assert is_silent(torch.zeros(1, 1000))
    assert is_silent(torch.zeros(0))
    quiet = torch.from_numpy(sine(rate=22050, amplitude=10 ** (-80 / 20)))
    loud = torch.from_numpy(sine(rate=22050, amplitude=10 ** (-20 / 20)))
    assert is_silent(quiet)
    assert not is_silent(loud)
    assert is_silent(loud, threshold_db=-10.0)
    assert not is_silent(quiet, threshold_db=-90.0)


def test_audio_clip_properties():
    clip = AudioClip(torch.stack([torch.ones(44100), -torch.ones(44100) * 0.5]), 22050, "x.wav")
    assert clip.channels == 2
    assert clip.duration == pytest.approx(2.0)
    mono = clip.mono()
    assert mono.samples.shape == (1, 44100) and mono.sample_rate == 22050 and mono.path == "x.wav"
    torch.testing.assert_close(mono.samples, torch.full((1, 44100), 0.25))
    assert clip.samples.shape == (2, 44100)  # mono() returns a new clip

