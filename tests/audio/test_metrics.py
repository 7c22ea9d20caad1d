"""Tests for nst_audio.metrics with synthesised melodies whose timbre, pitch and rhythm are known.

Signals (22.05 kHz): melody A (C major scale up, 8 notes of 0.25 s) and melody B (8 other notes), each
rendered with a sine timbre and a sawtooth timbre (harmonics k up to Nyquist with amplitude 1/k), the
sawtooth also transposed by 3 semitones; white noise. Every threshold is stated next to the value
measured when it was set.
"""

from __future__ import annotations

import librosa
import numpy as np
import pytest
import torch

from nst_audio.metrics import (METRIC_SEED, chroma_correlation, gram_distance, log_spectral_distance,
                               mfcc_stats_distance, onset_correlation)

SR = 22050
MELODY_A = (60, 62, 64, 65, 67, 69, 71, 72)
MELODY_B = (67, 59, 65, 62, 71, 57, 64, 55)


@pytest.fixture(autouse=True)
def single_thread():
    """One intra-op thread (restored afterwards): tiny ops on two threads stall on barriers whenever
    another process is busy on the same cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def render(notes, timbre: str, *, durations=None, transpose: int = 0) -> np.ndarray:
    """(N,) float32 melody: MIDI ``notes`` of ``durations`` seconds (0.25 each by default), 10 ms ramps."""
    durations = durations or [0.25] * len(notes)
    out = []
    for note, seconds in zip(notes, durations):
        t = np.arange(int(seconds * SR)) / SR
        f0 = 440.0 * 2 ** ((note + transpose - 69) / 12)
        if timbre == "sine":
            y = np.sin(2 * np.pi * f0 * t)
        else:  # band-limited sawtooth
            y = sum(np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, int(SR / 2 / f0) + 1)) * (2 / np.pi)
        ramp = np.minimum(1.0, np.minimum(t, seconds - t) / 0.01)
        out.append(0.5 * ramp * y)
    return np.concatenate(out).astype(np.float32)


def log_spec(wave: np.ndarray, n_fft: int = 1024, hop_length: int = 256) -> np.ndarray:
    """(F, T) log1p-magnitude spectrogram, as the pipeline optimises it."""
    return np.log1p(np.abs(librosa.stft(wave, n_fft=n_fft, hop_length=hop_length)))


@pytest.fixture(scope="module")
def waves() -> dict[str, np.ndarray]:
    noise = np.random.default_rng(0).standard_normal(2 * SR).astype(np.float32) * 0.3
    return {
        "sine_a": render(MELODY_A, "sine"),
        "saw_a": render(MELODY_A, "saw"),
        "saw_a_up3": render(MELODY_A, "saw", transpose=3),
        "saw_b": render(MELODY_B, "saw"),
        "noise": noise,
    }


@pytest.fixture(scope="module")
def specs(waves) -> dict[str, np.ndarray]:
    return {name: log_spec(w) for name, w in waves.items()}


# ---------------------------------------------------------------------------------------------
# gram_distance
# ---------------------------------------------------------------------------------------------

def test_gram_distance_zero_for_identical_and_input_forms(specs):
    x = specs["saw_a"]
    assert gram_distance(x, x) == 0.0
    d = gram_distance(specs["sine_a"], x)
    assert gram_distance(torch.from_numpy(specs["sine_a"])[None], torch.from_numpy(x)) == pytest.approx(d, rel=1e-5)
    # the Gram ignores length: the first half of a sound has nearly the same texture (measured 0.22)
    assert gram_distance(x[:, : x.shape[1] // 2], x) < 0.5 * d
    assert METRIC_SEED != 0  # not the optimizer's default extractor seed


def test_gram_distance_timbre_beats_transposition(specs):
    """Measured (1024 filters, seed 12345): sine vs saw 0.82, saw transposed +3 vs saw 0.37 (ratio 2.2),
    melody B vs melody A (both saw) 0.25, noise vs saw 70."""
    timbre = gram_distance(specs["sine_a"], specs["saw_a"])
    transposed = gram_distance(specs["saw_a_up3"], specs["saw_a"])
    assert timbre > 1.5 * transposed, (timbre, transposed)
    assert gram_distance(specs["noise"], specs["saw_a"]) > 10 * timbre


def test_gram_distance_bad_shapes(specs):
    with pytest.raises(ValueError, match="frequency bins"):
        gram_distance(specs["saw_a"], specs["saw_a"][:-1])
    with pytest.raises(ValueError, match=r"\(F, T\)"):
        gram_distance(specs["saw_a"][None, None], specs["saw_a"])


# ---------------------------------------------------------------------------------------------
# mfcc_stats_distance
# ---------------------------------------------------------------------------------------------

def test_mfcc_stats_distance_timbre_over_notes(waves):
    """Measured (MFCC units): sine vs saw melody 164, saw vs saw transposed +3 semitones 66 (ratio 2.5),
    melody B vs melody A (both saw) 53."""
    timbre = mfcc_stats_distance(waves["sine_a"], waves["saw_a"], SR)
    transposed = mfcc_stats_distance(waves["saw_a_up3"], waves["saw_a"], SR)
    assert timbre > 2.0 * transposed, (timbre, transposed)
    assert mfcc_stats_distance(waves["saw_a"], waves["sine_a"], SR) == pytest.approx(timbre, rel=1e-6)


def test_mfcc_stats_distance_identity_and_loudness(waves):
    saw = waves["saw_a"]
    assert mfcc_stats_distance(saw, saw, SR) < 1e-3 * mfcc_stats_distance(waves["sine_a"], saw, SR)
    # the 0th coefficient (loudness) is skipped: 6 dB quieter is the same timbre (measured 0.0)
    assert mfcc_stats_distance(0.5 * saw, saw, SR) < 0.01 * mfcc_stats_distance(waves["saw_a_up3"], saw, SR)
    assert mfcc_stats_distance(torch.from_numpy(saw)[None], saw, SR) < 1e-3


def test_metric_argument_errors(waves):
    saw = waves["saw_a"]
    with pytest.raises(ValueError, match="mono"):
        mfcc_stats_distance(np.stack([saw, saw]), saw, SR)
    with pytest.raises(ValueError, match="sample_rate"):
        chroma_correlation(saw, saw, 0)
    with pytest.raises(ValueError, match="n_mfcc"):
        mfcc_stats_distance(saw, saw, SR, n_mfcc=1)
    with pytest.raises(ValueError, match="empty"):
        onset_correlation(saw[:0], saw, SR)


# ---------------------------------------------------------------------------------------------
# log_spectral_distance
# ---------------------------------------------------------------------------------------------

def test_log_spectral_distance_identity_length_and_noise(waves, specs):
    """Measured (saw melody plus white noise of rms 1e-3, 1e-2, 1e-1): 4.5, 16.8, 32.5 dB."""
    saw, x = waves["saw_a"], specs["saw_a"]
    assert log_spectral_distance(x, x) == 0.0
    assert log_spectral_distance(x[:, :-7], x) == 0.0  # compared over the common frames
    assert log_spectral_distance(np.zeros_like(x), np.zeros_like(x)) == 0.0  # silence: no NaN
    rng = np.random.default_rng(1)
    noise = rng.standard_normal(len(saw)).astype(np.float32)
    lsd = [log_spectral_distance(log_spec(saw + level * noise), x) for level in (1e-3, 1e-2, 1e-1)]
    assert 0 < lsd[0] and lsd[0] * 1.3 < lsd[1] and lsd[1] * 1.3 < lsd[2], lsd
    noisy = log_spec(saw + 1e-2 * noise)
    assert log_spectral_distance(noisy, x) == pytest.approx(log_spectral_distance(x, noisy), rel=1e-9)


# ---------------------------------------------------------------------------------------------
# chroma and onset correlation
# ---------------------------------------------------------------------------------------------

def test_chroma_correlation_hears_the_melody_not_the_timbre(waves):
    """Measured: same melody sine vs saw 0.99; melody A vs melody B (both saw) 0.04."""
    same = chroma_correlation(waves["sine_a"], waves["saw_a"], SR)
    different = chroma_correlation(waves["saw_a"], waves["saw_b"], SR)
    assert same > 0.7 and different < 0.3, (same, different)
    # Chroma folds octaves: the melody an octave up keeps its pitch classes, three semitones up does not.
    octave = chroma_correlation(waves["saw_a"], render(MELODY_A, "saw", transpose=12), SR)
    assert octave > 0.7 and chroma_correlation(waves["saw_a"], waves["saw_a_up3"], SR) < octave - 0.4, octave


def test_onset_correlation_hears_the_rhythm(waves):
    """Measured: same rhythm (sine vs saw melody A) 0.99, same rhythm but melody B 0.95; dotted rhythm
    (0.375 s + 0.125 s pairs) vs even 0.25 s notes 0.28."""
    same = onset_correlation(waves["sine_a"], waves["saw_a"], SR)
    other_notes = onset_correlation(waves["saw_b"], waves["saw_a"], SR)
    dotted = render(MELODY_A, "saw", durations=[0.375, 0.125] * 4)
    different = onset_correlation(dotted, waves["saw_a"], SR)
    assert same > 0.9 and other_notes > 0.9, (same, other_notes)
    assert different < 0.5 and same - different > 0.5, (same, different)
    steady = np.zeros(SR, dtype=np.float32)
    assert np.isnan(onset_correlation(steady, waves["saw_a"], SR))  # undefined for a constant envelope


def test_power_spectrogram_metrics_equal_the_waveform_ones(waves):
    """The spectrogram versions (used where no waveform exists yet) give the waveform versions' values on the
    waveforms' own spectrograms (librosa's STFT: n_fft 2048, hop 512, centred)."""
    from nst_audio.metrics import chroma_correlation_of_power, mfcc_stats_distance_of_power

    def power(w):
        return np.abs(librosa.stft(np.asarray(w, dtype=np.float32), n_fft=2048, hop_length=512)) ** 2

    a, b = waves["sine_a"], waves["saw_a"]
    assert mfcc_stats_distance_of_power(power(a), power(b), SR) == pytest.approx(mfcc_stats_distance(a, b, SR),
                                                                                 rel=1e-4)
    assert chroma_correlation_of_power(power(a), power(b), SR) == pytest.approx(chroma_correlation(a, b, SR),
                                                                                abs=1e-4)
    assert mfcc_stats_distance_of_power(power(a), power(a), SR) == pytest.approx(0.0, abs=1e-3)
