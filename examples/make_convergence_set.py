"""Generate the pairs on which the stopping rule's defaults are measured (``benchmarks/convergence.py``).

Everything is drawn or synthesised here from fixed seeds (public domain, CC0 1.0, like the demo inputs):

* six image pairs: the demo's landscape and portrait generators with other seeds and sizes, styled by the
  swirl and mosaic generators with other seeds;
* four audio pairs, two of them dense mixtures as real music is: chords under a melody with percussion
  (kick, snare, hi-hat), several timbres at once, and a style clip that is itself a mixture.

Usage::

    python examples/make_convergence_set.py --out DIR

writes ``DIR/images/*.png``, ``DIR/audio/*.wav`` and ``DIR/pairs.json`` (which content goes with which
style, at which size and settings).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

HERE = Path(__file__).resolve().parent
SR = 22050


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, HERE / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


#: (name, content (generator, seed, size), style (generator, seed, size), options)
IMAGE_PAIRS = [
    ("landscape-swirls-256", ("landscape", 1234, (640, 480)), ("swirls", 2024, 512), {"image_size": 256}),
    ("portrait-mosaic-256", ("portrait", 99, (384, 512)), ("mosaic", 777, 512), {"image_size": 256}),
    ("landscape-mosaic-128", ("landscape", 5, (320, 240)), ("mosaic", 8, 384), {"image_size": 128}),
    ("portrait-swirls-192-avg", ("portrait", 6, (384, 512)), ("swirls", 9, 384),
     {"image_size": 192, "pooling": "avg"}),
    ("landscape-mosaic-320", ("landscape", 1234, (640, 480)), ("mosaic", 777, 512), {"image_size": 320}),
    ("portrait-swirls-256-strong", ("portrait", 99, (384, 512)), ("swirls", 2024, 512),
     {"image_size": 256, "style_weight": 100.0}),
]

#: (name, content clip, style clip, options)
AUDIO_PAIRS = [
    ("sine-to-violin", "melody_sine", "phrase_violin", {}),
    ("band-to-organ-band", "band_flute_piano_drums", "band_organ_violin", {}),
    ("chords-drums-to-violin", "chords_drums", "phrase_violin", {}),
    ("flute-to-organ-vgg", "melody_flute", "phrase_organ", {"extractor": "vgg", "weights": "vgg16-hed"}),
]

AUDIO_SECONDS = 4.0  # each clip's first seconds: long enough for a phrase, short enough to measure 300 steps


def drums(seconds: float, sr: int = SR, *, bpm: float = 120.0, seed: int = 31) -> np.ndarray:
    """Kick on beats 1 and 3, snare on 2 and 4, closed hi-hat on every eighth note."""
    rng = np.random.default_rng(seed)
    n = int(seconds * sr)
    out = np.zeros(n)
    eighth = 60.0 / bpm / 2
    t = np.arange(int(0.4 * sr)) / sr
    kick = np.sin(2 * np.pi * (50 * t + 60 * (1 - np.exp(-t * 30)) / 30)) * np.exp(-t * 12)
    snare = (0.6 * rng.standard_normal(t.size) + 0.4 * np.sin(2 * np.pi * 190 * t)) * np.exp(-t * 22)
    hat_noise = np.diff(rng.standard_normal(t.size + 1))  # a first difference: bright noise
    hat = hat_noise * np.exp(-t * 70)
    for k in range(int(seconds / eighth)):
        start = int(k * eighth * sr)
        beat, sub = divmod(k, 2)
        hits = [(hat, 0.25)]
        if sub == 0:
            hits.append((kick, 0.9) if beat % 2 == 0 else (snare, 0.6))
        for sound, gain in hits:
            m = min(sound.size, n - start)
            out[start:start + m] += gain * sound[:m]
    return out


def make_audio(out: Path, demo) -> dict[str, Path]:
    """The clips the audio pairs name (the demo's own ones cut to :data:`AUDIO_SECONDS`, and the mixtures)."""
    out.mkdir(parents=True, exist_ok=True)
    n = int(AUDIO_SECONDS * SR)

    def cut(x: np.ndarray) -> np.ndarray:
        return np.pad(x, (0, max(0, n - x.size)))[:n]

    melody_sine = demo.render_melody(demo.MELODY, demo.sine_voice, SR, seed=101, legato=0.9)
    melody_flute = demo.render_melody(demo.MELODY, demo.flute_voice, SR, seed=303, legato=0.93)
    phrase_violin = demo.render_melody(demo.PHRASE, demo.violin_voice, SR, seed=404, legato=0.97)
    phrase_organ = demo.render_melody(demo.PHRASE, demo.organ_voice, SR, seed=505, legato=0.94)
    chords = demo.make_piano_chords(SR, chord_seconds=1.0, seed=708)
    bass = demo.render_melody([(48, 2), (45, 2), (41, 2), (43, 2)], demo.organ_voice, SR, seed=606)
    kit = drums(AUDIO_SECONDS)
    organ_chords = demo.render_melody([(57, 2), (60, 2), (64, 2), (62, 2)], demo.organ_voice, SR, seed=909)
    clips = {
        "melody_sine": cut(melody_sine),
        "melody_flute": cut(melody_flute),
        "phrase_violin": cut(phrase_violin),
        "phrase_organ": cut(phrase_organ),
        # three timbres and percussion at once: a melody over strummed chords and a drum kit
        "band_flute_piano_drums": cut(melody_flute) + 0.7 * cut(chords) + 0.25 * cut(bass) + 0.5 * kit,
        "chords_drums": cut(chords) + 0.6 * kit,
        # a style clip that is itself a mixture: a violin phrase over sustained organ
        "band_organ_violin": cut(phrase_violin) + 0.6 * cut(organ_chords),
    }
    paths = {}
    for name, x in clips.items():
        x = 0.7 * x / max(np.abs(x).max(), 1e-9)
        paths[name] = out / f"{name}.wav"
        sf.write(paths[name], x.astype(np.float32), SR, subtype="PCM_16")
    return paths


def make_images(out: Path, inputs) -> dict[str, Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    for _name, *items, _opts in IMAGE_PAIRS:
        for kind, seed, size in items:
            key = f"{kind}_{seed}_{size[0] if isinstance(size, tuple) else size}"
            if key in paths:
                continue
            make = getattr(inputs, f"make_{kind}")
            image = make(*size, seed=seed) if isinstance(size, tuple) else make(size, seed=seed)
            paths[key] = out / f"{key}.png"
            image.save(paths[key])
    return paths


def make_convergence_set(out_dir: str | Path) -> dict:
    """Write the set into ``out_dir``; return the pairs (also written to ``pairs.json``)."""
    out = Path(out_dir)
    images = make_images(out / "images", _load("make_demo_inputs"))
    audio = make_audio(out / "audio", _load("make_demo_audio"))

    def key(kind, seed, size):
        return f"{kind}_{seed}_{size[0] if isinstance(size, tuple) else size}"

    pairs = {
        "image": [{"name": name, "content": str(images[key(*c)]), "style": str(images[key(*s)]), "options": opts}
                  for name, c, s, opts in IMAGE_PAIRS],
        "audio": [{"name": name, "content": str(audio[c]), "style": str(audio[s]), "options": opts}
                  for name, c, s, opts in AUDIO_PAIRS],
    }
    (out / "pairs.json").write_text(json.dumps(pairs, indent=1))
    return pairs


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="examples/out/convergence-set", help="folder to write into")
    args = ap.parse_args(argv)
    pairs = make_convergence_set(args.out)
    print(f"{len(pairs['image'])} image pairs and {len(pairs['audio'])} audio pairs in {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
