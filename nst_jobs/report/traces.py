"""Reading run traces for a report: validation, file lookup, and the figures a report shows per run."""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from nst_core import InputError
from nst_core.errors import one_line
from nst_core.trace import READABLE_TRACE_FORMATS, TRACE_FORMAT

MODALITIES = ("image", "audio")
_REQUIRED = ("modality", "settings", "runs", "inputs")


@dataclass
class Run:
    """One traced run: the trace document, where it came from, and its files found on disk."""

    trace: dict
    path: Path
    content: Path | None = None
    styles: list[Path] = field(default_factory=list)
    output: Path | None = None
    label: str = ""

    @property
    def modality(self) -> str:
        return self.trace["modality"]

    @property
    def extractor_kind(self) -> str:
        """``image`` runs: the backbone (vgg19 / vgg16). Audio runs: the extractor setting."""
        if self.modality == "image":
            return str(self.trace.get("backbone") or self.trace["settings"].get("backbone", "vgg"))
        return str(self.trace["settings"].get("extractor", "random-cnn"))

    @property
    def short_label(self) -> str:
        return f"{self.modality} · {self.extractor_kind}"

    @property
    def long_label(self) -> str:
        name = self.output.stem if self.output else self.path.stem.removesuffix(".trace")
        return f"{self.short_label} · {name}"


def load_trace(path: str | os.PathLike) -> dict:
    """Read and check one trace file; every problem is a one-line :class:`InputError`."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"trace {p} does not exist; pass the .trace.json files written beside nst results")
    if p.is_dir():
        raise InputError(f"trace {p} is a directory; pass its .trace.json files, e.g. {p}/*.trace.json")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InputError(f"trace {p} is not a text file; pass the .trace.json files written beside nst results") from None
    except OSError as err:
        raise InputError(f"cannot read trace {p} ({err.strerror or err})") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as err:
        raise InputError(f"trace {p} is not valid JSON ({err.msg} at line {err.lineno}, column {err.colno}); "
                         "re-run the job that wrote it") from None
    if not isinstance(doc, dict) or "format" not in doc:
        raise InputError(f"{p} is not an nst trace (no 'format' field); pass the .trace.json files nst writes")
    if doc["format"] not in READABLE_TRACE_FORMATS:
        raise InputError(f"trace {p} has format {one_line(doc['format'])!r} but this version reads {TRACE_FORMAT!r}; "
                         "re-run that job with this version to get a new trace")
    missing = [k for k in _REQUIRED if k not in doc]
    if missing:
        raise InputError(f"trace {p} is incomplete (missing {', '.join(missing)}); re-run the job that wrote it")
    if doc["modality"] not in MODALITIES:
        raise InputError(f"trace {p} is of modality {one_line(doc['modality'])!r}; reports cover image and audio runs")
    runs = doc["runs"]
    if not isinstance(runs, list) or not runs or not all(isinstance(r, dict) and isinstance(r.get("trace"), dict)
                                                          for r in runs):
        raise InputError(f"trace {p} holds no optimization runs; re-run the job that wrote it")
    for r in runs:
        for key in ("content", "style"):
            series = r["trace"].get(key)
            if not isinstance(series, list) or not all(v is None or isinstance(v, (int, float)) for v in series):
                raise InputError(f"trace {p} has no per-step {key} losses; re-run the job that wrote it")
    _check_fields(doc, p)
    return doc


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _check_fields(doc: dict, p: Path) -> None:
    """Every field a report reads has the type it must have, so a hand-edited trace fails here in one line."""
    def broken(what: str) -> InputError:
        return InputError(f"trace {p} is broken ({what}); re-run the job that wrote it")

    for key in ("steps", "seconds", "peak_memory_bytes", "griffin_lim_seconds", "duration_seconds"):
        if doc.get(key) is not None and not _is_number(doc[key]):
            raise broken(f"{key!r} is {type(doc[key]).__name__}, not a number")
    for key in ("settings", "inputs"):
        if not isinstance(doc[key], dict):
            raise broken(f"{key!r} is not a mapping")
    if doc.get("metrics") is not None and not isinstance(doc["metrics"], dict):
        raise broken("'metrics' is not a mapping")
    for i, r in enumerate(doc["runs"]):
        if r.get("seconds") is not None and not _is_number(r["seconds"]):
            raise broken(f"run {i + 1}'s 'seconds' is not a number")
        timeline = r.get("timeline") or []
        if not isinstance(timeline, list) or not all(
                isinstance(t, list) and len(t) == 2 and all(_is_number(v) for v in t) for t in timeline):
            raise broken(f"run {i + 1}'s 'timeline' is not a list of [step, seconds] pairs")
        if "total" in r["trace"] and not isinstance(r["trace"]["total"], list):
            raise broken(f"run {i + 1}'s 'total' losses are not a list")


def _existing(name: str | None, trace_path: Path, what: str, *, beside: bool = False) -> Path:
    """The file a trace names; an output moved together with its trace is also found beside it."""
    if not name or name.startswith("<"):
        raise InputError(f"trace {trace_path} has no {what} file (the run was given data in memory); "
                         "reports need runs made from files, e.g. with nst image / nst audio")
    p = Path(name)
    if not p.is_absolute():
        p = (trace_path.parent / p) if not p.exists() else p
    if p.exists():
        return p
    if beside and (trace_path.parent / p.name).exists():
        return trace_path.parent / p.name
    raise InputError(f"{what} {name} named by trace {trace_path} does not exist; "
                     "put it back or re-run the job")


def load_run(path: str | os.PathLike) -> Run:
    """A :class:`Run` whose input and output files all exist."""
    p = Path(path)
    doc = load_trace(p)
    inputs = doc["inputs"]
    content = None
    if inputs.get("content") is not None:
        content = _existing(inputs.get("content"), p, "content")
    styles = [_existing(s, p, f"style {i + 1}") for i, s in enumerate(inputs.get("styles") or [])]
    if not styles:
        raise InputError(f"trace {p} names no style input; re-run the job that wrote it")
    output = _existing(doc.get("output"), p, "result", beside=True)
    return Run(trace=doc, path=p, content=content, styles=styles, output=output)


def load_runs(paths: Sequence[str | os.PathLike]) -> list[Run]:
    if not paths:
        raise InputError("no traces given; pass the .trace.json files written beside nst results")
    seen: dict[Path, int] = {}
    runs = []
    for path in paths:
        key = Path(path).resolve()
        if key in seen:
            continue
        seen[key] = 1
        runs.append(load_run(path))
    # Label runs "image · vgg19", adding the result's name only where two runs would share a label.
    counts: dict[str, int] = {}
    for r in runs:
        counts[r.short_label] = counts.get(r.short_label, 0) + 1
    for r in runs:
        r.label = r.short_label if counts[r.short_label] == 1 else r.long_label
    return runs


# ----------------------------------------------------------------------------------------------------
# Figures per run


def _finite(values: list) -> list[float]:
    return [float(v) if v is not None and math.isfinite(v) else float("nan") for v in values]


def concatenated(run: Run) -> dict[str, list[float]]:
    """Per-step series over all of a run's optimizations (scales, chunks, channels) laid end to end.

    ``step`` counts from 1; ``seconds`` is the wall time at each step, interpolated linearly between
    the timeline readouts each optimization records (the only points where time is read).
    """
    import numpy as np

    out: dict[str, list[float]] = {"step": [], "seconds": [], "content": [], "style": [], "total": []}
    t0, s0 = 0.0, 0
    for r in run.trace["runs"]:
        tr = r["trace"]
        n = len(tr["style"])
        if n == 0:
            continue
        seconds = float(r.get("seconds") or 0.0)
        timeline = [(0, 0.0)] + [(int(a), float(b)) for a, b in (r.get("timeline") or [])]
        if timeline[-1][0] < n:
            timeline.append((n, max(seconds, timeline[-1][1])))
        steps = np.arange(1, n + 1)
        times = np.interp(steps, [a for a, _ in timeline], [b for _, b in timeline])
        out["step"] += (steps + s0).tolist()
        out["seconds"] += (times + t0).tolist()
        for key in ("content", "style", "total"):
            series = _finite(tr.get(key) or [float("nan")] * n)
            out[key] += series + [float("nan")] * (n - len(series))
        t0 += seconds
        s0 += n
    return out


def normalised(series: list[float]) -> tuple[list[float], str]:
    """Divide by the first finite value, or by the largest when the series starts at 0.

    Content loss starts at 0 when the optimization starts from the content itself; it is then shown
    relative to its largest value. Returns the series and how it was normalised.
    """
    finite = [v for v in series if math.isfinite(v)]
    if not finite:
        return series, "none"
    first = finite[0]
    if first > 0:
        return [v / first for v in series], "start"
    top = max(finite)
    if top > 0:
        return [v / top for v in series], "max"
    return series, "none"


def steps_to_fraction(style: list[float], fraction: float = 0.9) -> int | None:
    """First step (from 1) at which ``fraction`` of the style loss's total reduction is reached."""
    finite = [(i, v) for i, v in enumerate(style) if math.isfinite(v)]
    if len(finite) < 2:
        return None
    start, final = finite[0][1], finite[-1][1]
    drop = start - final
    if drop <= 0:
        return None
    for i, v in finite:
        if start - v >= fraction * drop:
            return i + 1
    return None


def summary(run: Run) -> dict[str, Any]:
    """The figures the report's table shows for one run (all of them also go to metrics.json)."""
    tr = run.trace
    series = concatenated(run)
    steps = int(tr.get("steps") or len(series["step"]))
    seconds = float(tr.get("seconds") or 0.0)
    def last(key: str) -> float | None:
        return next((v for v in reversed(series[key]) if math.isfinite(v)), None)

    out: dict[str, Any] = {
        "label": run.label,
        "modality": run.modality,
        "extractor": run.extractor_kind,
        "extractor_description": tr.get("extractor") or tr.get("weights_source"),
        "trace_file": str(run.path),
        "steps": steps,
        "seconds": seconds,
        "ms_per_step": 1000.0 * seconds / steps if steps else None,
        "steps_to_90pct_style_reduction": steps_to_fraction(series["style"]),
        "final_losses": {k: last(k) for k in ("content", "style", "total")},
        "style_loss_reduction": (series["style"][0] / last("style")
                                 if series["style"] and last("style") and series["style"][0] > 0 else None),
        "device": tr.get("device"),
        "precision": tr.get("precision"),
        "peak_memory_bytes": tr.get("peak_memory_bytes"),
        "metrics": tr.get("metrics") or {},
        "stopped": tr.get("stopped"),
        "stop_reasons": tr.get("stop_reasons") or [],
    }
    if run.modality == "audio":
        out["griffin_lim_seconds"] = tr.get("griffin_lim_seconds")
        out["duration_seconds"] = tr.get("duration_seconds")
    else:
        size = tr["runs"][-1].get("size")
        out["size"] = size
    return out
