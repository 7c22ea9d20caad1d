"""The ``nst`` command: parses arguments, prints progress and one-line errors; the work is in ``nst_image``,
``nst_audio`` and ``nst_jobs``."""
