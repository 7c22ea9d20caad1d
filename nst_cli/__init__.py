"""The ``nst`` command: a thin layer over ``nst_image`` (and later ``nst_audio``)."""
