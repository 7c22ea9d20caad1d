"""Atomic writes: a result file appears whole or not at all, and never replaces an input."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Iterable, Iterator

from .errors import OutputError


def check_output_path(path: str | os.PathLike, inputs: Iterable[str | os.PathLike] = ()) -> Path:
    """Validate an output path before any work is done.

    Raises OutputError when ``path`` is one of ``inputs`` (compared after resolving links), names a
    directory, or lies in a folder that does not exist or cannot be written.
    """
    out = Path(path).expanduser()
    resolved = out.resolve()
    for item in inputs:
        try:
            if Path(item).expanduser().resolve() == resolved:
                raise OutputError(f"output {out} is also an input; choose another output path so the input is kept")
        except OSError:
            continue
    if out.is_dir():
        raise OutputError(f"output {out} is a directory; give a file name such as {out / 'out.png'}")
    parent = resolved.parent
    if not parent.is_dir():
        raise OutputError(f"output folder {parent} does not exist; create it or choose another output path")
    try:  # a real write: os.access says yes to root even on read-only mounts
        with tempfile.TemporaryFile(dir=parent):
            pass
    except OSError:
        raise OutputError(f"output folder {parent} is not writable; choose another output path") from None
    if out.exists() and not os.access(out, os.W_OK):
        raise OutputError(f"output {out} exists and is not writable; choose another output path")
    return out


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds.

    The temporary file keeps the suffix of ``path`` so that writers which pick a format by extension
    still work. On any error the temporary file is removed and ``path`` is left as it was.
    """
    target = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=target.suffix, dir=target.parent or ".")
    os.close(fd)
    tmp_path = Path(tmp)
    # mkstemp creates owner-only files; give the result the permissions a plain open() would.
    umask = os.umask(0)
    os.umask(umask)
    try:
        os.chmod(tmp_path, 0o666 & ~umask)
        yield tmp_path
        os.replace(tmp_path, target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp_path.unlink()
        raise


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` atomically (UTF-8)."""
    try:
        with atomic_path(path) as tmp:
            tmp.write_text(text, encoding="utf-8")
    except OSError as err:
        raise OutputError(f"cannot write {path}: {err.strerror or err}") from None
