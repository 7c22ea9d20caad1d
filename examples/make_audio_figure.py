"""Make the README's audio figure: spectrograms of content | style | result, and the result itself.

    python examples/make_audio_figure.py [--iterations 300] [--device auto]

Content: the demo melody as sine tones; style: a different phrase in a bowed-string timbre (both
synthesized by make_demo_audio.py, CC0). Writes examples/figure_audio.png, examples/out/melody_violin_style.wav
and its trace, and prints the metrics.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from nst_audio import stylize_audio

HERE = Path(__file__).resolve().parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--content", default=HERE / "audio" / "melody_sine.wav", type=Path)
    ap.add_argument("--style", default=HERE / "audio" / "phrase_violin.wav", type=Path)
    ap.add_argument("--iterations", default=300, type=int, help="the most steps (the stopping rule ends sooner)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--figure", default=HERE / "figure_audio.png", type=Path)
    ap.add_argument("--out", default=HERE / "out" / "melody_violin_style.wav", type=Path)
    args = ap.parse_args()

    result = stylize_audio(args.content, args.style, iterations=args.iterations, device=args.device, seed=0,
                           log=print)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    result.save(args.out)
    result.save_spectrogram(args.figure)
    style = result.trace["runs"][0]["trace"]["style"]
    print(f"wrote {args.figure} and {args.out}: style loss {style[0]:.3g} -> {min(style):.3g} "
          f"in {result.trace['steps']} steps ({'; '.join(result.trace['stop_reasons'])}), {result.trace['seconds']:.1f} s + Griffin-Lim {result.trace['griffin_lim_seconds']:.1f} s "
          f"on {result.trace['device']}")
    print(json.dumps(result.metrics, indent=1))


if __name__ == "__main__":
    main()
