#!/usr/bin/env python
"""Generate the demo content and style audio clips used by the examples.

Every clip is synthesised with numpy from fixed random seeds and written with
soundfile, so the output is identical on every run and no third-party
(possibly copyrighted) recording or download is needed.  The generated clips
are dedicated to the public domain (CC0 1.0); see ``LICENSE.txt`` next to them.

Usage::

    python examples/make_demo_audio.py [--out DIR]

``DIR`` defaults to ``examples/audio`` next to this script.  Other code can
load this file by path and call :func:`make_demo_audio`::

    import importlib.util
    spec = importlib.util.spec_from_file_location("make_demo_audio", path)
    mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
    paths = mod.make_demo_audio(out_dir)   # {"melody_sine": Path(...), ...}

Clips written (22050 Hz, mono, 16-bit PCM WAV unless noted; every clip is
peak-normalised to -3 dBFS):

* ``melody_sine.wav`` (8 s) - the opening phrase of Beethoven's "Ode to Joy"
  (15 notes in C major, E4..G4, 120 BPM, quarter / dotted-quarter / eighth /
  half notes) as pure sine tones with soft attack and release envelopes.
* ``melody_violin.wav`` (8 s) - the same notes and rhythm as a bowed string:
  band-limited sawtooth (1/k harmonics up to Nyquist) shaped by violin-body
  formants, delayed 5.5 Hz vibrato, slow bow attack, a little bow noise.
* ``melody_flute.wav`` (8 s) - the same notes and rhythm as a breathy flute:
  a few fast-decaying harmonics, breath noise, attack chiff, gentle vibrato.
* ``phrase_violin.wav`` (6 s) - a *different* phrase (A minor, A4..E5, other
  rhythm) in the violin timbre: the style clip for timbre transfer.
* ``phrase_organ.wav`` (6 s) - that same different phrase as a steady organ
  (octave and fifth partials plus odd harmonics, square-ish, no vibrato).
* ``rain.wav`` (6 s) - rain-like texture: filtered noise bed plus many short
  random droplet transients (noise clicks and tiny bubble chirps).
* ``chords_piano.flac`` (6 s, FLAC) - four chords (C, Am, F, G7), slightly
  strummed, in a piano-like timbre: exponentially decaying, slightly
  inharmonic partials with a hammer thump.
* ``melody_violin_stereo.wav`` (8 s, stereo) - ``melody_violin`` panned a
  little to the left with a quieter copy delayed by 15 ms on the right.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import soundfile as sf

__all__ = [
    "make_demo_audio",
    "render_melody",
    "sine_voice",
    "violin_voice",
    "flute_voice",
    "organ_voice",
    "make_rain",
    "make_piano_chords",
    "make_stereo",
    "MELODY",
    "PHRASE",
    "CHORDS",
    "DEFAULT_OUT_DIR",
    "DEFAULT_SAMPLE_RATE",
]

DEFAULT_OUT_DIR = Path(__file__).resolve().parent / "audio"
DEFAULT_SAMPLE_RATE = 22050
PEAK_DBFS = -3.0
TEMPO_BPM = 120.0

# (MIDI note, length in beats).  "Ode to Joy" (Beethoven, public domain),
# first phrase: 16 beats = 8 s at 120 BPM.
MELODY: tuple[tuple[int, float], ...] = (
    (64, 1), (64, 1), (65, 1), (67, 1),
    (67, 1), (65, 1), (64, 1), (62, 1),
    (60, 1), (60, 1), (62, 1), (64, 1),
    (64, 1.5), (62, 0.5), (62, 2),
)

# A different phrase (A minor, other notes and rhythm): 12 beats = 6 s.
PHRASE: tuple[tuple[int, float], ...] = (
    (69, 1), (72, 0.5), (71, 0.5), (69, 1), (76, 2),
    (74, 1), (72, 0.5), (71, 0.5), (72, 1), (68, 1), (69, 3),
)

# Four chords, 1.5 s each (I - vi - IV - V7 in C major).
CHORDS: tuple[tuple[int, ...], ...] = (
    (48, 55, 60, 64),        # C:  C3 G3 C4 E4
    (45, 52, 60, 64),        # Am: A2 E3 C4 E4
    (41, 53, 57, 60),        # F:  F2 F3 A3 C4
    (43, 50, 59, 62, 65),    # G7: G2 D3 B3 D4 F4
)

LICENSE_TEXT = """\
Demo audio clips for the neural style transfer toolkit
======================================================

The audio files in this directory

    melody_sine.wav
    melody_violin.wav
    melody_flute.wav
    phrase_violin.wav
    phrase_organ.wav
    rain.wav
    chords_piano.flac
    melody_violin_stereo.wav

are generated procedurally (numpy + soundfile, fixed random seeds, no external
recordings or downloads) by examples/make_demo_audio.py in this repository.
Re-run that script to regenerate them.  The melody is the opening phrase of
Beethoven's "Ode to Joy", which is in the public domain.

To the extent possible under law, the authors have dedicated all copyright
and related and neighboring rights to these audio files to the public domain
worldwide. They are distributed without any warranty.

CC0 1.0 Universal (CC0 1.0) Public Domain Dedication
https://creativecommons.org/publicdomain/zero/1.0/
"""


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------

def midi_to_hz(midi: float) -> float:
    return 440.0 * 2.0 ** ((midi - 69.0) / 12.0)


def _fade_envelope(n: int, sr: int, attack: float, release: float,
                   attack_shape: float = 1.0) -> np.ndarray:
    """Raised-cosine attack / release envelope of ``n`` samples (0 at both ends)."""
    env = np.ones(n)
    na = max(1, min(n // 2, int(round(attack * sr))))
    nr = max(1, min(n - na, int(round(release * sr))))
    ramp = 0.5 - 0.5 * np.cos(np.pi * np.arange(na) / na)
    env[:na] = ramp ** attack_shape
    env[n - nr:] *= 0.5 + 0.5 * np.cos(np.pi * (np.arange(1, nr + 1) / nr))
    return env


def _shaped_noise(rng: np.random.Generator, n: int, sr: int,
                  gain: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """White noise filtered in the frequency domain by ``gain(freqs)``; unit RMS."""
    spec = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1.0 / sr)
    y = np.fft.irfft(spec * gain(freqs), n)
    rms = float(np.sqrt(np.mean(y ** 2)))
    return y / rms if rms > 0 else y


def _bump(f: np.ndarray, centre: float, width_oct: float) -> np.ndarray:
    """Gaussian bump on a log-frequency axis (``width_oct`` = std in octaves)."""
    lf = np.log2(np.maximum(f, 1.0) / centre)
    return np.exp(-0.5 * (lf / width_oct) ** 2)


def _vibrato_phase(f0: float, n: int, sr: int, rate: float, depth_cents: float,
                   delay: float, fade: float, start_phase: float) -> tuple[np.ndarray, float]:
    """Phase (radians) of a tone with delayed sinusoidal vibrato; also the max freq ratio."""
    t = np.arange(n) / sr
    depth = np.clip((t - delay) / fade, 0.0, 1.0) if fade > 0 else np.ones(n)
    cents = depth_cents * depth * np.sin(2 * np.pi * rate * t + start_phase)
    freq = f0 * 2.0 ** (cents / 1200.0)
    phase = 2 * np.pi * np.cumsum(freq) / sr
    phase -= phase[0]
    return phase, 2.0 ** (abs(depth_cents) / 1200.0)


def _normalise(x: np.ndarray, peak_dbfs: float = PEAK_DBFS) -> np.ndarray:
    peak = float(np.max(np.abs(x)))
    if peak == 0:
        return x
    return x * (10.0 ** (peak_dbfs / 20.0) / peak)


# --------------------------------------------------------------------------
# voices: (f0, n_samples, sr, rng) -> note samples with their own envelope
# --------------------------------------------------------------------------

Voice = Callable[[float, int, int, np.random.Generator], np.ndarray]


def sine_voice(f0: float, n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    """Pure sine with a 25 ms attack and 60 ms release."""
    t = np.arange(n) / sr
    return np.sin(2 * np.pi * f0 * t) * _fade_envelope(n, sr, 0.025, 0.06)


def _violin_body(f: np.ndarray) -> np.ndarray:
    """Rough violin-body / bridge response (linear gain) over frequency."""
    g = (0.35
         + 1.0 * _bump(f, 290.0, 0.20)      # main air / body modes
         + 0.8 * _bump(f, 470.0, 0.22)
         + 0.5 * _bump(f, 1000.0, 0.35)
         + 1.3 * _bump(f, 2600.0, 0.45))    # "bridge hill"
    return g / (1.0 + (f / 5000.0) ** 4)     # roll-off of the top plate


def violin_voice(f0: float, n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    """Band-limited 1/k sawtooth through body formants, vibrato, bow noise."""
    nyq = sr / 2
    rate = 5.5 + rng.uniform(-0.25, 0.25)
    phase, max_ratio = _vibrato_phase(f0, n, sr, rate, depth_cents=18.0,
                                      delay=0.15, fade=0.25,
                                      start_phase=rng.uniform(0, 2 * np.pi))
    k_max = max(1, int((0.97 * nyq) / (f0 * max_ratio)))
    ks = np.arange(1, k_max + 1)
    amps = _violin_body(ks * f0) / ks
    tone = np.zeros(n)
    for k, a in zip(ks, amps):
        tone += a * np.sin(k * phase)
    tone /= np.max(np.abs(tone)) + 1e-12
    env = _fade_envelope(n, sr, attack=0.12, release=0.09, attack_shape=1.5)
    # Bow noise: a band of rosin hiss, louder while the bow "bites" at the start.
    noise = _shaped_noise(rng, n, sr, lambda f: _bump(f, 3500.0, 0.8) + 0.3 * _bump(f, 1200.0, 0.6))
    t = np.arange(n) / sr
    noise_env = env * (0.035 + 0.08 * np.exp(-t / 0.06))
    return tone * env + noise * noise_env


def flute_voice(f0: float, n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    """Few fast-decaying harmonics, breath noise, attack chiff, gentle vibrato."""
    nyq = sr / 2
    rate = 4.8 + rng.uniform(-0.2, 0.2)
    start = rng.uniform(0, 2 * np.pi)
    phase, max_ratio = _vibrato_phase(f0, n, sr, rate, depth_cents=9.0,
                                      delay=0.2, fade=0.3, start_phase=start)
    harm = (1.0, 0.32, 0.14, 0.05, 0.025, 0.01)
    tone = np.zeros(n)
    for k, a in enumerate(harm, start=1):
        if k * f0 * max_ratio < 0.97 * nyq:
            tone += a * np.sin(k * phase + 0.3 * k)
    t = np.arange(n) / sr
    tremolo = 1.0 + 0.05 * np.sin(2 * np.pi * rate * t + start) * np.clip((t - 0.2) / 0.3, 0, 1)
    env = _fade_envelope(n, sr, attack=0.07, release=0.08)
    # Breath: broadband airy hiss plus narrow noise bands around f0 and 2 f0.
    hiss = _shaped_noise(rng, n, sr, lambda f: _bump(f, 2500.0, 1.2) * (f > 150))
    band = _shaped_noise(rng, n, sr, lambda f: np.exp(-0.5 * ((f - f0) / 40.0) ** 2)
                         + 0.5 * np.exp(-0.5 * ((f - 2 * f0) / 60.0) ** 2))
    chiff = np.exp(-t / 0.03) * (1 - np.exp(-t / 0.004))
    breath = hiss * (0.07 + 0.35 * chiff) + 0.12 * band
    return (tone * tremolo + breath) * env


def organ_voice(f0: float, n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    """Steady sum of octave / fifth partials and odd harmonics (square-ish)."""
    nyq = sr / 2
    # harmonic number -> amplitude: 8', 4', 2 2/3' (fifth), 2', 1 3/5', ... plus odd partials
    partials = {1: 1.0, 2: 0.55, 3: 0.45, 4: 0.32, 5: 0.2, 6: 0.12,
                7: 0.14, 8: 0.16, 9: 0.1, 11: 0.07, 13: 0.05}
    t = np.arange(n) / sr
    tone = np.zeros(n)
    for k, a in partials.items():
        if k * f0 < 0.97 * nyq:
            tone += a * np.sin(2 * np.pi * k * f0 * t + 0.5 * k)
    return tone * _fade_envelope(n, sr, attack=0.02, release=0.05)


# --------------------------------------------------------------------------
# clips
# --------------------------------------------------------------------------

def render_melody(notes: Sequence[tuple[int, float]], voice: Voice, sr: int, *,
                  seed: int, tempo_bpm: float = TEMPO_BPM, legato: float = 0.92,
                  min_gap: float = 0.0) -> np.ndarray:
    """Render ``(midi, beats)`` notes with ``voice``; length = total beats exactly."""
    rng = np.random.default_rng(seed)
    spb = 60.0 / tempo_bpm
    total = int(round(sum(b for _, b in notes) * spb * sr))
    out = np.zeros(total)
    onset = 0.0
    for midi, beats in notes:
        dur = beats * spb
        start = int(round(onset * sr))
        n = int(round(max(0.05, min(dur * legato, dur - min_gap)) * sr))
        n = min(n, total - start)
        out[start:start + n] += voice(midi_to_hz(midi), n, sr, rng)
        onset += dur
    return out


def make_rain(sr: int, *, seconds: float = 6.0, seed: int = 606) -> np.ndarray:
    """Filtered noise bed plus many short random droplet transients."""
    rng = np.random.default_rng(seed)
    n = int(round(seconds * sr))
    nyq = sr / 2

    # Bed: pink-ish hiss with a broad presence hump, low end cut.
    def bed_gain(f: np.ndarray) -> np.ndarray:
        pink = 1.0 / np.sqrt(np.maximum(f, 20.0) / 1000.0)
        hp = 1.0 / (1.0 + (250.0 / np.maximum(f, 1.0)) ** 2)
        lp = 1.0 / (1.0 + (f / (0.8 * nyq)) ** 6)
        return pink * hp * lp * (0.6 + 1.2 * _bump(f, 4000.0, 0.9))

    bed = _shaped_noise(rng, n, sr, bed_gain)
    # Slow intensity fluctuation (smoothed noise, 0.2..1 Hz).
    swell = _shaped_noise(rng, n, sr, lambda f: (f > 0.1) * (f < 1.0))
    bed *= 1.0 + 0.18 * np.tanh(swell)
    bed *= 0.05
    bed *= _fade_envelope(n, sr, 0.05, 0.05)

    drops = np.zeros(n)
    n_drops = rng.poisson(110 * seconds)
    for _ in range(n_drops):
        dur = rng.uniform(0.004, 0.03)
        m = int(dur * sr)
        start = int(rng.integers(0, n - m))
        tt = np.arange(m) / sr
        amp = float(np.exp(rng.normal(-2.4, 0.8)))
        if rng.random() < 0.55:
            # Tick: high-passed noise burst with a fast exponential decay.
            burst = np.diff(rng.standard_normal(m + 1))
            shape = np.exp(-tt / rng.uniform(0.0015, 0.006))
            sig = burst * shape * 0.6
        else:
            # "Bloop": tiny bubble resonance, decaying sine chirping upwards.
            f_start = float(np.exp(rng.uniform(np.log(1200.0), np.log(min(6000.0, 0.8 * nyq)))))
            tau = rng.uniform(0.003, 0.012)
            freq = f_start * (1.0 + rng.uniform(0.1, 0.4) * tt / dur)
            sig = np.sin(2 * np.pi * np.cumsum(freq) / sr) * np.exp(-tt / tau)
        sig *= 1.0 - np.exp(-tt / 0.0003)          # 0.3 ms onset: crisp, not a step
        drops[start:start + m] += amp * sig
    return bed + drops


def make_piano_chords(sr: int, chords: Sequence[Sequence[int]] = CHORDS, *,
                      chord_seconds: float = 1.5, seed: int = 707) -> np.ndarray:
    """Strummed chords of decaying, slightly inharmonic partials (piano-like)."""
    rng = np.random.default_rng(seed)
    nyq = sr / 2
    total = int(round(len(chords) * chord_seconds * sr))
    out = np.zeros(total)
    for ci, chord in enumerate(chords):
        chord_start = ci * chord_seconds
        for vi, midi in enumerate(chord):
            f0 = midi_to_hz(midi)
            onset = chord_start + 0.018 * vi + rng.uniform(0, 0.004)
            start = int(round(onset * sr))
            end = int(round((chord_start + chord_seconds) * sr)) + int(0.1 * sr)
            n = min(end, total) - start
            t = np.arange(n) / sr
            inharm = 1.2e-4 * (f0 / 130.0) ** 0.5        # stiffness coefficient B
            vel = rng.uniform(0.8, 1.0) * (1.15 if vi == 0 else 1.0)
            note = np.zeros(n)
            k = 1
            while True:
                fk = k * f0 * math.sqrt(1.0 + inharm * k * k)
                if fk >= 0.95 * nyq or k > 40:
                    break
                # Hammer strike position ~1/7 of the string, brightness roll-off.
                a = abs(math.sin(math.pi * k / 7.3)) / k ** 1.1 * math.exp(-k / 14.0)
                tau1 = 1.6 * (261.6 / f0) ** 0.4 / (1.0 + 0.35 * (k - 1))
                decay = 0.75 * np.exp(-t / (0.25 * tau1)) + 0.25 * np.exp(-t / (2.5 * tau1))
                for detune in (-0.6, 0.6):               # two slightly detuned strings
                    fd = fk * 2.0 ** (detune / 1200.0)
                    note += 0.5 * a * decay * np.sin(2 * np.pi * fd * t + rng.uniform(0, 2 * np.pi))
                k += 1
            # Hammer thump: short low-passed noise burst.
            m = min(n, int(0.02 * sr))
            thump = _shaped_noise(rng, m, sr, lambda f: 1.0 / (1.0 + (f / 900.0) ** 2))
            note[:m] += 0.04 * thump * np.exp(-np.arange(m) / sr / 0.005)
            # 2 ms onset; dampers release over the last 0.1 s (or fade at the end).
            env = _fade_envelope(n, sr, attack=0.002, release=0.1)
            out[start:start + n] += vel * note * env
    return out


def make_stereo(mono: np.ndarray, sr: int, *, pan: float = -0.3,
                delay_s: float = 0.015, delay_gain: float = 0.45) -> np.ndarray:
    """Constant-power pan of ``mono`` plus a quieter delayed copy on the right.

    Returns an ``(n, 2)`` array (soundfile's frames x channels layout).
    """
    theta = (pan + 1.0) * np.pi / 4.0
    left = math.cos(theta) * mono
    right = math.sin(theta) * mono
    d = int(round(delay_s * sr))
    delayed = np.zeros_like(mono)
    delayed[d:] = mono[:len(mono) - d]
    right = right + delay_gain * delayed
    return np.stack([left, right], axis=1)


# --------------------------------------------------------------------------
# driver
# --------------------------------------------------------------------------

def _write(path: Path, data: np.ndarray, sr: int) -> Path:
    data = _normalise(np.asarray(data, dtype=np.float64))
    fmt = "FLAC" if path.suffix.lower() == ".flac" else "WAV"
    sf.write(str(path), data, sr, format=fmt, subtype="PCM_16")
    return path


def make_demo_audio(out_dir: str | Path | None = None, *,
                    sample_rate: int = DEFAULT_SAMPLE_RATE) -> dict[str, Path]:
    """Write the eight demo clips and ``LICENSE.txt`` into ``out_dir``.

    Returns a mapping from clip name (file stem, e.g. ``"melody_violin"``) to
    the written path.  The licence file is written alongside but is not part
    of the returned mapping.
    """
    out = Path(out_dir) if out_dir is not None else DEFAULT_OUT_DIR
    out.mkdir(parents=True, exist_ok=True)
    sr = int(sample_rate)

    violin = render_melody(MELODY, violin_voice, sr, seed=202, legato=0.97)
    clips: list[tuple[str, np.ndarray]] = [
        ("melody_sine.wav", render_melody(MELODY, sine_voice, sr, seed=101, legato=0.9)),
        ("melody_violin.wav", violin),
        ("melody_flute.wav", render_melody(MELODY, flute_voice, sr, seed=303, legato=0.93)),
        ("phrase_violin.wav", render_melody(PHRASE, violin_voice, sr, seed=404, legato=0.97)),
        ("phrase_organ.wav", render_melody(PHRASE, organ_voice, sr, seed=505, legato=0.94)),
        ("rain.wav", make_rain(sr)),
        ("chords_piano.flac", make_piano_chords(sr)),
        ("melody_violin_stereo.wav", make_stereo(_normalise(violin), sr)),
    ]
    paths: dict[str, Path] = {}
    for filename, data in clips:
        path = _write(out / filename, data, sr)
        paths[path.stem] = path
    (out / "LICENSE.txt").write_text(LICENSE_TEXT, encoding="utf-8")
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT_DIR,
                        help=f"output directory (default: {DEFAULT_OUT_DIR})")
    parser.add_argument("--sample-rate", type=int, default=DEFAULT_SAMPLE_RATE,
                        help=f"sample rate in Hz (default: {DEFAULT_SAMPLE_RATE})")
    args = parser.parse_args(argv)
    paths = make_demo_audio(args.out, sample_rate=args.sample_rate)
    for path in paths.values():
        info = sf.info(str(path))
        print(f"{path}  {info.duration:.2f} s  {info.channels} ch  {info.samplerate} Hz  "
              f"{info.format}/{info.subtype}  {path.stat().st_size / 1024:.0f} KB")
    print(args.out / "LICENSE.txt")
    return 0


if __name__ == "__main__":
    sys.exit(main())
