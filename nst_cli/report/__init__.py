"""Comparison reports: image and audio runs side by side in one self-contained HTML page.

``build_report(traces, out_dir)`` writes ``index.html``, ``metrics.json`` and ``loss_curves.png`` from
run traces; ``run_comparison(...)`` stylizes an image pair and an audio pair (the audio twice: random
CNN and an image backbone reading the spectrogram) and then builds the report over those runs.
"""

from .build import REPORT_FORMAT, build_report, check_report_folder
from .compare import run_comparison
from .traces import load_trace

__all__ = ["REPORT_FORMAT", "build_report", "check_report_folder", "run_comparison", "load_trace"]
