"""Comparison reports: image and audio runs side by side in one self-contained HTML page.

``build_report(traces, out_dir)`` writes ``index.html``, ``metrics.json`` and ``loss_curves.png`` from
run traces; :func:`nst_jobs.run_comparison` makes the runs of a comparison and then the report.
``build_batch_report(batch_folder)`` writes a contact sheet and a metrics table over a whole ``nst batch``.
"""

from .batch_page import BATCH_REPORT_FORMAT, build_batch_report
from .build import REPORT_FORMAT, build_report, check_report_folder
from .traces import load_trace

__all__ = ["REPORT_FORMAT", "build_report", "check_report_folder", "load_trace", "BATCH_REPORT_FORMAT",
           "build_batch_report"]
