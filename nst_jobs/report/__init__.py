"""Comparison reports: image and audio runs side by side in one self-contained HTML page.

``build_report(traces, out_dir)`` writes ``index.html``, ``metrics.json`` and ``loss_curves.png`` from
run traces; :func:`nst_jobs.run_comparison` makes the runs of a comparison and then the report.
"""

from .build import REPORT_FORMAT, build_report, check_report_folder
from .traces import load_trace

__all__ = ["REPORT_FORMAT", "build_report", "check_report_folder", "load_trace"]
