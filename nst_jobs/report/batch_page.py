"""A page over a whole batch (the output folder of ``nst batch``): its counts, a contact sheet of every job,
and a table of every job's metrics that sorts by any column; self-contained like the comparison report.

``build_batch_report("out/")`` reads ``out/batch.json`` and writes ``out/report/index.html`` and
``out/report/metrics.json``. The page is made from ``batch.json`` and the files it names; a file that is
gone is shown as missing, and a skipped job's metrics are read from its result's trace.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import numbers
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from nst_core import InputError, NSTError, OutputError
from nst_core.errors import one_line
from nst_core.fileio import write_text_atomic
from nst_core.trace import json_safe

from . import assets
from .build import _fmt, check_report_folder, render_template

BATCH_REPORT_FORMAT = "nst-batch-report/1"
STATES = ("done", "skipped", "failed", "interrupted", "pending")
AUDIO_EXCERPT_SECONDS = 30.0  # each clip on a batch page is embedded as at most its first 30 s
# What a contact-sheet card shows: (label, dotted key into the job's metrics). The table has every metric.
KEY_METRICS = {
    "image": (("style Gram distance", "style.gram_distance_result"),
              ("SSIM with content", "content.ssim_luminance_result")),
    "audio": (("spectral convergence (dB)", "spectral_convergence_db"),
              ("MFCC distance to style", "style.mfcc_distance_result"),
              ("chroma r with content", "content.chroma_correlation")),
}
_FIXED_COLUMNS = (("#", "index"), ("output", "name"), ("kind", "kind"), ("state", "state"),
                  ("seconds", "seconds"), ("steps", "steps"))


# ------------------------------------------------------------------------------------------------ reading

def load_batch(batch_folder: str | os.PathLike) -> tuple[Path, dict]:
    """``(path of batch.json, its document)``, checked: a folder, holding batch.json, valid JSON of format
    ``nst-batch/1`` whose ``jobs`` are records. Every problem is a one-line :class:`InputError`."""
    from ..batch import BATCH_FORMAT

    folder = Path(batch_folder).expanduser()
    path = folder / "batch.json"
    if not folder.is_dir():
        raise InputError(f"{folder} is not a folder; give the output folder of nst batch (it holds batch.json)")
    if not path.is_file():
        if any(folder.glob("*.trace.json")):  # a folder of runs, e.g. a comparison's runs/
            raise InputError(f"{folder} holds no batch.json; for a report over the runs in it pass their traces, "
                             f"e.g. {folder}/*.trace.json")
        raise InputError(f"{folder} holds no batch.json; give the output folder of an nst batch run, or the "
                         "run traces (.trace.json files) to report on")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise InputError(f"{path} is not valid JSON ({one_line(err)[:120]}); run the same batch again with resume "
                         "to rewrite it", "resume") from None
    if not isinstance(doc, dict) or doc.get("format") != BATCH_FORMAT:
        found = doc.get("format") if isinstance(doc, dict) else type(doc).__name__
        raise InputError(f"{path} is not an nst batch record (format {found!r}, expected {BATCH_FORMAT!r}); give "
                         "the output folder of nst batch")
    jobs = doc.get("jobs")
    if not isinstance(jobs, list):
        raise InputError(f"{path} is broken ('jobs' is not a list); run the same batch again with resume to "
                         "rewrite it", "resume")
    for i, record in enumerate(jobs, start=1):
        if not (isinstance(record, dict) and isinstance(record.get("job"), dict)
                and isinstance(record["job"].get("output"), str)):
            raise InputError(f"{path} is broken (job {i} is not a record with a job and its output); run the "
                             "same batch again with resume to rewrite it", "resume")
    return path, doc


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        return None
    return float(value)


def _batch_cwd(folder: Path, records: Sequence[dict]) -> tuple[Path, int] | None:
    """The folder the batch ran in, inferred from where its outputs lie now (relative paths in batch.json
    are relative to it), and how many leading parts of a relative output name the batch folder (the
    ``out`` of ``out/sub/b.png``); None when no relative output is found under ``folder``."""
    here = folder.resolve()
    for record in records:
        out = Path(record["job"]["output"])
        if out.is_absolute() or ".." in out.parts:
            continue
        # "out/sub/b.png" found as <folder>/sub/b.png: the batch wrote into "out", one level below where it ran.
        n = next((n for n in range(1, len(out.parts)) if (folder / Path(*out.parts[n:])).is_file()), None)
        if n is not None and n <= len(here.parents):
            return here.parents[n - 1], n
    return None


def _locate(name: Any, bases: Sequence[Path], *, under: Path | None = None) -> Path | None:
    """The file ``name`` (as batch.json wrote it) on disk, or None. ``under``: for an output, also the place
    its path's tail names under the batch folder (the folder was moved or renamed)."""
    if not isinstance(name, str) or not name:
        return None
    p = Path(name).expanduser()
    candidates = [p] if p.is_absolute() else [base / p for base in bases]
    if under is not None:
        candidates += [under / Path(*p.parts[n:]) for n in range(1, len(p.parts))]
    return next((c for c in candidates if c.is_file()), None)


def _name_in(here: Path, output: str, found: Path | None, bases: Sequence[Path], strip: int) -> str:
    """An output's path relative to the batch folder (``sub/b.png``), found or not (a failed job's: less the
    ``strip`` leading parts that named the batch folder); as batch.json names it when it lies elsewhere (a
    manifest's absolute output)."""
    if found is not None:
        try:
            return str(found.resolve().relative_to(here))
        except ValueError:
            return output
    p = Path(output)
    if strip and not p.is_absolute() and len(p.parts) > strip:
        return str(Path(*p.parts[strip:]))
    for base in bases:
        try:
            return str((base / p).resolve().relative_to(here))
        except ValueError:
            continue
    return output


@dataclass
class JobRow:
    """One job of the batch as the page shows it: the record's figures and its files found on disk."""

    index: int  # 1-based place in batch.json
    kind: str
    state: str
    output: str  # as batch.json names it
    name: str  # the output relative to the batch folder where it lies there
    seconds: float | None
    steps: int | None
    error: str | None
    metrics: dict | None
    metrics_from: str | None  # "batch", or "trace" for a skipped job (its record has none)
    content: tuple[str, Path | None] | None  # (as named, found) or None for an audio texture
    styles: list[tuple[str, Path | None]] = field(default_factory=list)
    result: Path | None = None
    trace: dict | None = None
    options: dict = field(default_factory=dict)


def _trace_of(result: Path | None) -> dict | None:
    from nst_core import trace_path

    from .traces import load_trace

    if result is None or not trace_path(result).is_file():
        return None
    try:
        return load_trace(trace_path(result))
    except InputError:  # a broken trace costs the skipped job its metrics, not the page
        return None


def job_rows(path: Path, doc: Mapping[str, Any]) -> list[JobRow]:
    """A :class:`JobRow` per record of a checked batch document (see :func:`load_batch`)."""
    folder = path.parent
    records = doc["jobs"]
    here = folder.resolve()
    then, strip = _batch_cwd(folder, records) or (None, 0)
    # A relative path is looked for from the current folder first, then from the one the batch ran in.
    bases = list(dict.fromkeys([Path.cwd(), *([then] if then else []), here]))
    rows = []
    for i, record in enumerate(records, start=1):
        job = record["job"]
        state = str(record.get("state") or "pending")
        result = _locate(job["output"], bases, under=folder)
        name = _name_in(here, job["output"], result, bases, strip)
        trace = _trace_of(result) if state in ("done", "skipped") else None
        metrics = record.get("metrics") if isinstance(record.get("metrics"), dict) else None
        steps = record.get("steps")
        metrics_from = "batch" if metrics is not None else None
        if metrics is None and state == "skipped" and trace is not None and isinstance(trace.get("metrics"), dict):
            metrics, metrics_from = trace["metrics"], "trace"
            steps = trace.get("steps")
        content = job.get("content")
        styles = job.get("styles") if isinstance(job.get("styles"), list) else []
        error = record.get("error")
        rows.append(JobRow(
            index=i, kind=str(job.get("kind") or "?"), state=state, output=job["output"], name=name,
            seconds=_number(record.get("seconds")),
            steps=int(steps) if isinstance(steps, int) and not isinstance(steps, bool) else None,
            error=one_line(error) if error else None, metrics=metrics, metrics_from=metrics_from,
            content=(content, _locate(content, bases)) if isinstance(content, str) else None,
            styles=[(s, _locate(s, bases)) for s in styles if isinstance(s, str)],
            result=result if state in ("done", "skipped", "interrupted") else None,
            trace=trace, options=job.get("options") if isinstance(job.get("options"), dict) else {}))
    return rows


def flatten(metrics: Mapping[str, Any] | None, prefix: str = "") -> dict[str, Any]:
    """Nested metrics as one level with dotted keys: ``{"style": {"x": 1}}`` -> ``{"style.x": 1}``."""
    out: dict[str, Any] = {}
    for key, value in (metrics or {}).items():
        if isinstance(value, Mapping):
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


# ------------------------------------------------------------------------------------------------ the page

def _sort_key(value: Any) -> str:
    """What the table sorts a cell by: a number as itself, nothing as empty (the script puts it last)."""
    if value is None:
        return ""
    number = _number(value)
    return repr(number) if number is not None else str(value)


def table(rows: Sequence[JobRow]) -> tuple[list[str], list[dict]]:
    """``(header labels, rows)`` of the metrics table: the fixed columns, then every metric any job has
    (dotted keys, in the order first met). Each cell is ``{"text", "sort", "num"}``."""
    metric_keys = list(dict.fromkeys(k for r in rows for k in flatten(r.metrics)))
    out = []
    for r in rows:
        flat = flatten(r.metrics)
        fixed = {"index": r.index, "name": r.name, "kind": r.kind, "state": r.state,
                 "seconds": r.seconds, "steps": r.steps}
        cells = []
        for label, attr in _FIXED_COLUMNS:
            value = fixed[attr]
            text = f"{value:.1f}" if attr == "seconds" and value is not None else _fmt(value)
            cells.append({"text": text, "sort": _sort_key(value), "num": attr in ("index", "seconds", "steps")})
        for key in metric_keys:
            value = flat.get(key)
            cells.append({"text": _fmt(value), "sort": _sort_key(value), "num": _number(value) is not None})
        out.append({"index": r.index, "state": r.state, "cells": cells})
    return [label for label, _ in _FIXED_COLUMNS] + metric_keys, out


def _key_metrics(row: JobRow) -> list[tuple[str, str]]:
    flat = flatten(row.metrics)
    return [(label, _fmt(flat[key])) for label, key in KEY_METRICS.get(row.kind, ()) if key in flat]


class _Embedder:
    """Data URIs of the files a page shows, each made once however many jobs share it (a batch's style)."""

    def __init__(self):
        self.done: dict[tuple[str, Path], tuple[str | None, dict, str | None]] = {}

    def _once(self, what: str, path: Path, make: Callable[[Path], tuple[str, dict]]):
        key = (what, path.resolve())
        if key not in self.done:
            try:
                self.done[key] = (*make(path), None)
            except InputError as err:  # unreadable: shown as such on its card
                self.done[key] = (None, {}, str(err))
        return self.done[key]

    def item(self, role: str, named: str, found: Path | None, what: str) -> dict:
        """``{"role", "name", "uri", "info", "problem", "detail"}`` for a picture (``what="image"``) or a clip;
        ``problem`` (``missing`` or ``unreadable``, with the whole message in ``detail``) when there is none."""
        item = {"role": role, "name": Path(named).name, "uri": None, "info": {}, "problem": None, "detail": None}
        if found is None:
            item.update(problem="missing", detail=f"{named} does not exist")
            return item
        make = assets.thumbnail_uri if what == "image" else (
            lambda p: assets.audio_uri(p, max_seconds=AUDIO_EXCERPT_SECONDS))
        item["uri"], item["info"], error = self._once(what, found, make)
        if error is not None:
            item.update(problem="unreadable", detail=error)
        return item


def _inputs(row: JobRow, embed: _Embedder, what: str) -> list[dict]:
    items = [embed.item("content", *row.content, what)] if row.content is not None else []
    for i, (named, found) in enumerate(row.styles):
        items.append(embed.item(f"style {i + 1}" if len(row.styles) > 1 else "style", named, found, what))
    return items


def _result(row: JobRow, embed: _Embedder, what: str) -> dict | None:
    """The result on the card: none for a failed or pending job (whatever an earlier run left there)."""
    if row.state not in ("done", "skipped", "interrupted"):
        return None
    role = "best so far" if row.state == "interrupted" else "result"
    return embed.item(role, row.output, row.result, what)


def _spectrogram_settings(row: JobRow) -> dict:
    """sample_rate, n_fft, hop_length, window: the trace's, else the job's options, else the defaults;
    checked by the audio config, so a value it would refuse falls back to the defaults."""
    from nst_audio.stylize import AudioStyleConfig

    keys = ("sample_rate", "n_fft", "hop_length", "window")
    settings = row.trace.get("settings") if row.trace is not None else None
    given = settings if isinstance(settings, dict) else row.options
    try:
        cfg = AudioStyleConfig.of(**{k: given[k] for k in keys if k in given})
    except NSTError:  # settings another version wrote: the defaults still draw it
        cfg = AudioStyleConfig()
    return {k: getattr(cfg, k) for k in keys}


def _spectrogram(row: JobRow) -> tuple[str | None, str | None]:
    """(PNG data URI, problem) of the content, first style and result spectrograms side by side."""
    clips = {"content": row.content[1]} if row.content is not None and row.content[1] is not None else {}
    if row.styles and row.styles[0][1] is not None:
        clips["style"] = row.styles[0][1]
    if row.result is not None:
        clips["result"] = row.result
    if not clips:
        return None, None
    try:
        return assets.png_uri(assets.spectrogram_png(clips, **_spectrogram_settings(row))), None
    except InputError as err:
        return None, str(err)


def cards(rows: Sequence[JobRow]) -> tuple[list[dict], list[dict]]:
    """(image cards, audio cards): the files each job shows, embedded, and its key metrics."""
    embed = _Embedder()
    image_cards, audio_cards = [], []
    for row in rows:
        what = "audio" if row.kind == "audio" else "image"
        card = {"row": row, "key_metrics": _key_metrics(row), "inputs": _inputs(row, embed, what),
                "result": _result(row, embed, what)}
        if what == "audio":
            card["spectrogram"], card["spectrogram_problem"] = _spectrogram(row)
            audio_cards.append(card)
        else:
            image_cards.append(card)
    return image_cards, audio_cards


def _when(stamp: Any) -> str | None:
    t = _number(stamp)
    return _dt.datetime.fromtimestamp(t, _dt.timezone.utc).isoformat(timespec="seconds") if t is not None else None


def build_batch_report(batch_folder: str | os.PathLike, out_dir: str | os.PathLike | None = None, *,
                       force: bool = False, title: str | None = None,
                       log: Callable[[str], None] | None = None) -> Path:
    """Write a page over the batch in ``batch_folder`` (the output folder of ``nst batch``, holding
    ``batch.json``): ``index.html`` (self-contained) and ``metrics.json`` in ``out_dir`` (default:
    ``batch_folder/report``). A folder holding a report already is replaced only with ``force``.

    The page has the batch's counts, a contact sheet (each image job's content, style and result as
    256 px thumbnails, each audio job's clips as players and their spectrograms, every failed job's
    error) and a table of every job's time, steps and metrics that sorts by any column. Returns the
    path of ``index.html``.
    """
    from ..commands import format_command

    say = log or (lambda _m: None)
    path, doc = load_batch(batch_folder)
    folder = path.parent
    out = check_report_folder(folder / "report" if out_dir is None else out_dir, force=force, inputs=[path])
    rows = job_rows(path, doc)
    say(f"batch report over {len(rows)} job(s) from {path}")
    columns, table_rows = table(rows)
    image_cards, audio_cards = cards(rows)

    counts = dict.fromkeys(STATES, 0)
    for r in rows:  # a state this version does not know is counted too, under its own name
        counts[r.state] = counts.get(r.state, 0) + 1
    total_seconds = sum(r.seconds or 0.0 for r in rows)
    started, updated = _number(doc.get("started")), _number(doc.get("updated"))
    wall_seconds = updated - started if started is not None and updated is not None else None
    created = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    report_command = format_command(["nst", "report", str(folder)] + ([] if out_dir is None else ["-o", str(out)]))
    metrics = json_safe({
        "format": BATCH_REPORT_FORMAT,
        "created": created,
        "batch": str(path),
        "report_command": report_command,
        "started": _when(started), "updated": _when(updated),
        "counts": counts,
        "seconds": total_seconds,
        "metric_columns": columns[len(_FIXED_COLUMNS):],
        "rows": [{"index": r.index, "output": r.output, "found": str(r.result) if r.result else None,
                  "kind": r.kind, "state": r.state, "seconds": r.seconds, "steps": r.steps, "error": r.error,
                  "metrics": r.metrics, "metrics_from": r.metrics_from,
                  "content": r.content[0] if r.content else None, "styles": [s for s, _ in r.styles]}
                 for r in rows],
    })
    html = render_template(
        "batch.html.j2", title=title or f"Batch {folder.resolve().name}", created=created, batch_path=str(path),
        report_command=report_command, counts=counts, jobs=rows, total_seconds=total_seconds,
        wall_seconds=wall_seconds, started=_when(started), updated=_when(updated), image_cards=image_cards,
        audio_cards=audio_cards, columns=columns, table=table_rows, thumbnail_side=assets.THUMBNAIL_SIDE,
        audio_excerpt_seconds=AUDIO_EXCERPT_SECONDS)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OutputError(f"cannot write the report into {out} ({err.strerror or err})") from None
    write_text_atomic(out / "metrics.json", json.dumps(metrics, indent=1) + "\n")
    write_text_atomic(out / "index.html", html)
    return out / "index.html"
