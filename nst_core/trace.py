"""Run traces: one JSON document per run with every setting, the per-step losses, time, device and memory."""

from __future__ import annotations

import datetime as _dt
import json
import math
import numbers
import os
import platform
from typing import Any, Mapping

import torch

from .fileio import write_text_atomic

TRACE_FORMAT = "nst-trace/2"
#: Formats this version reads: /1 kept the optimizer settings flat beside the others (see nst_core.config).
READABLE_TRACE_FORMATS = ("nst-trace/1", TRACE_FORMAT)


def json_safe(value: Any) -> Any:
    """Make a value JSON-safe: paths to strings, tuples to lists, non-finite floats to None."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, torch.Tensor):
        return json_safe(value.tolist())
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        value = float(value)
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return str(value)


def run_trace(*, modality: str, settings: Mapping[str, Any], runs: list[Mapping[str, Any]],
              inputs: Mapping[str, Any], output: str | None = None, extra: Mapping[str, Any] | None = None) -> dict:
    """Assemble a trace document.

    ``runs`` holds one entry per optimization (a multi-scale image run has one per scale), each a
    :meth:`nst_core.Result.summary` plus whatever the front end adds (e.g. the scale's size).
    """
    doc = {
        "format": TRACE_FORMAT,
        "modality": modality,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "versions": {"torch": torch.__version__, "python": platform.python_version()},
        "inputs": dict(inputs),
        "output": output,
        "settings": dict(settings),
        "runs": runs,
        "seconds": sum(r.get("seconds", 0.0) for r in runs),
        "steps": sum(r.get("steps_run", 0) for r in runs),
        "peak_memory_bytes": max((r.get("peak_memory_bytes", 0) for r in runs), default=0),
    }
    if extra:
        doc.update(extra)
    return json_safe(doc)


def write_trace(path: str | os.PathLike, doc: Mapping[str, Any]) -> None:
    """Write a trace document as indented JSON, atomically."""
    write_text_atomic(path, json.dumps(json_safe(doc), indent=1) + "\n")
