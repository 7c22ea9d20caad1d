"""What every front end's result shares: the trace, the inputs it may not overwrite, and ``save``."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .fileio import check_output_path
from .trace import write_trace

__all__ = ["StyleResult", "trace_path"]


def trace_path(output: str | os.PathLike) -> Path:
    """Where a result's trace goes: ``out.png`` -> ``out.trace.json`` beside it."""
    p = Path(output)
    return p.with_name(p.stem + ".trace.json")


def checkpoint_path(output: str | os.PathLike) -> Path:
    """Where a run's checkpoint goes: ``out.png`` -> ``out.ckpt`` beside it."""
    p = Path(output)
    return p.with_name(p.stem + ".ckpt")


@dataclass
class StyleResult:
    """Base of :class:`nst_image.ImageResult` and :class:`nst_audio.AudioResult`.

    trace : the run's trace document (settings, per-segment losses, timings, device, precision, peak
    memory, metrics). inputs : paths :meth:`save` refuses to overwrite. A front end adds its signal and
    implements :meth:`_write`.
    """

    trace: dict
    inputs: list[str] = field(default_factory=list)

    @property
    def losses(self) -> dict[str, float]:
        """Final loss terms of the last segment (scale or chunk)."""
        last = self.trace["runs"][-1]["trace"]
        return {k: v[-1] for k, v in last.items() if v}

    @property
    def seconds(self) -> float:
        """Optimization seconds over every segment."""
        return float(self.trace["seconds"])

    @property
    def metrics(self) -> dict:
        return self.trace.get("metrics", {})

    @property
    def stopped(self) -> str | None:
        """Why the run ended early (a NaN or inf loss), or None."""
        return self.trace.get("stopped")

    def _write(self, path: Path, **options: Any) -> Path:  # pragma: no cover - abstract
        raise NotImplementedError

    def save(self, path: str | os.PathLike, *, trace: bool = True, **options: Any) -> Path:
        """Write the result (format by extension) and, unless ``trace=False``, ``<stem>.trace.json`` beside it.

        Both paths are checked before either is written; each is written atomically.
        """
        if trace:
            check_output_path(trace_path(path), self.inputs)
        out = self._write(Path(path), **options)
        if trace:
            self.trace["output"] = str(out)
            write_trace(trace_path(out), self.trace)
        return out
