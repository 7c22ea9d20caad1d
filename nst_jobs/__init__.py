"""What composes the two front ends, as a library: the image backbone reading spectrograms (the audio
extractor ``vgg``), the image-versus-audio comparison, the report over run traces, and the commands that
reproduce a run from its trace::

    from nst_jobs import build_report, run_comparison
    run_comparison("report/", image=("photo.jpg", "painting.jpg"), audio=("melody.wav", "violin.flac"))
    build_report(["report/runs/a.trace.json"], "report2/")
    build_batch_report("out/")  # a page over the batch nst batch wrote into out/: out/report/index.html
"""

from .commands import command_for_trace, format_command
from .compare import run_comparison
from .extractors import build_spectrogram_vgg, spectrogram_vgg
from .report import (BATCH_REPORT_FORMAT, REPORT_FORMAT, build_batch_report, build_report, check_report_folder,
                     load_trace)

__all__ = ["command_for_trace", "format_command", "run_comparison", "build_spectrogram_vgg", "spectrogram_vgg",
           "REPORT_FORMAT", "build_report", "check_report_folder", "load_trace", "BATCH_REPORT_FORMAT",
           "build_batch_report"]
