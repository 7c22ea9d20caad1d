#!/usr/bin/env bash
# Quickstart: set up .venv if needed, then run the comparison on the demo inputs: the landscape in the style of
# the brush-stroke painting, the sine melody with the timbre of the violin phrase (stylized twice: by the random
# CNN and by the image backbone reading the spectrogram), and a report of all three in examples/out/report/.
# On a GPU: 512 px, audio 300 steps at most. On a CPU: 256 px, audio 100 steps (about 10 minutes on 2 cores,
# most of it the image backbone reading the spectrogram). The picture runs until the stopping rule ends it.
# Weights: `--weights auto` takes torchvision's VGG-19 if it can be downloaded, else the offline VGG-16.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/.ci/setup.sh"
cd "$root"
mkdir -p examples/out
.venv/bin/nst compare \
  --image examples/inputs/content_landscape.png examples/inputs/style_swirls.png \
  --audio examples/audio/melody_sine.wav examples/audio/phrase_violin.wav \
  --seed 0 --force -o examples/out/report
echo "results: examples/out/report/index.html (open it in a browser); the stylized picture and sounds with their traces are in examples/out/report/runs/"
