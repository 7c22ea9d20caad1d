"""Running ``nst`` in-process from the CLI tests, and the one-line error every bad input must give."""

from __future__ import annotations

from nst_cli.main import main


def run(args, capsys):
    """``nst ARGS...``: (exit code, stdout, stderr)."""
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code, err, *needles):
    """A non-zero exit and exactly one stderr line, ``nst: error: ...``, containing every needle; no traceback."""
    assert code != 0
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("nst: error:"), err
    assert "Traceback" not in err
    for needle in needles:
        assert needle.lower() in lines[0].lower(), (needle, lines[0])
