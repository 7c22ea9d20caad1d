#!/usr/bin/env bash
# Quickstart: set up .venv if needed, then stylize the demo landscape with the demo brush-stroke painting,
# and give the demo melody (sine tones) the timbre of a bowed-string phrase.
# On a GPU: 512 px, 500 steps; audio 300 steps. On a CPU: 256 px, 200 steps; audio 100 steps (a few minutes on 2 cores).
# Weights: `--weights auto` takes torchvision's VGG-19 if it can be downloaded, else the offline VGG-16.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/.ci/setup.sh"
cd "$root"
mkdir -p examples/out
if .venv/bin/python -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
  size=512; steps=500; audio_steps=300
else
  size=256; steps=200; audio_steps=100
fi
.venv/bin/nst image examples/inputs/content_landscape.png examples/inputs/style_swirls.png \
  -o examples/out/landscape_swirls.png --image-size "$size" --iterations "$steps" --seed 0
.venv/bin/nst audio examples/audio/melody_sine.wav examples/audio/phrase_violin.wav \
  -o examples/out/melody_violin.wav --spectrogram examples/out/melody_violin.png --iterations "$audio_steps" --seed 0
echo "results: examples/out/landscape_swirls.png, examples/out/melody_violin.wav (+ .png spectrograms, .trace.json traces)"
