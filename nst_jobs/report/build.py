"""Assemble a comparison report from run traces: ``index.html`` (self-contained) and ``metrics.json``."""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
from pathlib import Path
from typing import Any, Callable, Sequence

from nst_core import InputError, OutputError
from nst_core.fileio import atomic_path, write_text_atomic
from nst_core.trace import json_safe

from . import assets
from .traces import Run, concatenated, load_runs, normalised, summary

REPORT_FORMAT = "nst-report/1"
REPORT_FILES = ("index.html", "metrics.json", "loss_curves.png")


def check_report_folder(out_dir: str | os.PathLike, *, force: bool = False,
                        inputs: Sequence[str | os.PathLike] = ()) -> Path:
    """Validate a report folder before any work: not a file, not holding a report unless ``force``, writable."""
    out = Path(out_dir).expanduser()
    if out.exists() and not out.is_dir():
        raise OutputError(f"report folder {out} is a file; choose a folder name, e.g. {out.with_suffix('')}_report/")
    resolved_inputs = {Path(p).resolve() for p in inputs}
    for name in REPORT_FILES:
        target = out / name
        if target.resolve() in resolved_inputs:
            raise OutputError(f"{target} is also an input; choose another report folder so the input is kept")
        if target.exists() and not force:
            raise OutputError(f"{out} already holds a report ({name}); replace it with force, or choose "
                              "another folder", "force")
    parent = out if out.is_dir() else next((p for p in out.resolve().parents if p.exists()), None)
    if parent is None or not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"cannot create the report folder {out} (its parent is not writable); "
                          "choose another folder")
    return out


def _fmt(v: Any, digits: int = 3) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        if not math.isfinite(v):
            return "–"
        if v != 0 and (abs(v) >= 1e4 or abs(v) < 1e-3):
            return f"{v:.{digits - 1}e}"
        return f"{v:.{digits}g}"
    return str(v)


def _metric_rows(s: dict) -> list[tuple[str, str, str]]:
    """(name, result, reference) rows of the front end's metrics, each with what it is compared to."""
    m = s["metrics"]
    rows: list[tuple[str, str, str]] = []
    if s["modality"] == "image":
        st, ct = m.get("style", {}), m.get("content", {})
        rows.append(("style Gram distance (lower: nearer the style)", _fmt(st.get("gram_distance_result")),
                     f"content: {_fmt(st.get('gram_distance_content'))}"))
        rows.append(("luminance SSIM with the content (higher: structure kept)",
                     _fmt(ct.get("ssim_luminance_result")), f"style image: {_fmt(ct.get('ssim_luminance_style'))}"))
    else:
        st, ct = m.get("style", {}), m.get("content", {})
        rows.append(("spectral convergence (dB, lower: the sound matches the optimized spectrogram)",
                     _fmt(m.get("spectral_convergence_db")), ""))
        rows.append(("style Gram distance, independent random CNN", _fmt(st.get("gram_distance_result")),
                     f"content: {_fmt(st.get('gram_distance_content'))}" if "gram_distance_content" in st else ""))
        rows.append(("MFCC distance to the style (lower: timbre nearer the style)",
                     _fmt(st.get("mfcc_distance_result")),
                     f"content: {_fmt(st.get('mfcc_distance_content'))}" if "mfcc_distance_content" in st else ""))
        if ct:
            rows.append(("log-spectral distance to the content (dB)", _fmt(ct.get("log_spectral_distance_db")), ""))
            rows.append(("chroma correlation with the content (notes kept)", _fmt(ct.get("chroma_correlation")), ""))
            rows.append(("onset correlation with the content (rhythm kept)", _fmt(ct.get("onset_correlation")), ""))
    return rows


def _table_row(s: dict) -> dict:
    m = s["metrics"]
    st, ct = m.get("style", {}), m.get("content", {})
    if s["modality"] == "image":
        style_d = f"Gram {_fmt(st.get('gram_distance_result'))} (content {_fmt(st.get('gram_distance_content'))})"
        content_d = f"SSIM {_fmt(ct.get('ssim_luminance_result'))} (style {_fmt(ct.get('ssim_luminance_style'))})"
        extra = "–"
    else:
        style_d = f"MFCC {_fmt(st.get('mfcc_distance_result'))}"
        if "mfcc_distance_content" in st:
            style_d += f" (content {_fmt(st.get('mfcc_distance_content'))})"
        content_d = f"chroma r {_fmt(ct.get('chroma_correlation'))}" if ct else "–"
        extra = f"{_fmt(m.get('spectral_convergence_db'))} dB"
    fl = s["final_losses"]
    return {
        "label": s["label"], "modality": s["modality"], "steps": s["steps"],
        "ms_per_step": _fmt(s["ms_per_step"], 4), "steps90": _fmt(s["steps_to_90pct_style_reduction"]),
        "content": _fmt(fl.get("content")), "style": _fmt(fl.get("style")),
        "reduction": (_fmt(s["style_loss_reduction"]) + "×") if s["style_loss_reduction"] else "–",
        "style_distance": style_d, "content_measure": content_d, "spectral_convergence": extra,
        "device": s["device"] or "–", "precision": s["precision"] or "–",
    }


def _experiments(audio: list[tuple[Run, dict]]) -> list[dict]:
    """Audio runs on the same content and style with different extractors, grouped for comparison."""
    groups: dict[tuple, list[tuple[Run, dict]]] = {}
    for run, s in audio:
        if run.content is None:
            continue
        key = (str(run.content.resolve()), tuple(str(p.resolve()) for p in run.styles))
        groups.setdefault(key, []).append((run, s))
    out = []
    for members in groups.values():
        kinds = {r.extractor_kind for r, _ in members}
        if "vgg" not in kinds or len(kinds) < 2:
            continue
        members.sort(key=lambda rs: (rs[0].extractor_kind == "vgg", rs[1]["label"]))
        out.append({"members": members, "verdict": _verdict(members)})
    return out


def _verdict(members: list[tuple[Run, dict]]) -> str:
    """One sentence from the numbers: which extractor brought the timbre nearer the style, which kept the notes."""
    def val(s, *keys):
        v: Any = s["metrics"]
        for k in keys:
            v = v.get(k, {}) if isinstance(v, dict) else None
        return v if isinstance(v, (int, float)) else None

    mf = [(val(s, "style", "mfcc_distance_result"), r.extractor_kind) for r, s in members]
    ch = [(val(s, "content", "chroma_correlation"), r.extractor_kind) for r, s in members]
    parts = []
    mf = [x for x in mf if x[0] is not None]
    ch = [x for x in ch if x[0] is not None]
    if len(mf) >= 2:
        best = min(mf)
        parts.append(f"the {best[1]} result's timbre is nearest the style (MFCC distance "
                     + ", ".join(f"{k} {_fmt(v)}" for v, k in mf) + ")")
    if len(ch) >= 2:
        best = max(ch)
        parts.append(f"the {best[1]} result keeps the content's notes best (chroma correlation "
                     + ", ".join(f"{k} {_fmt(v)}" for v, k in ch) + ")")
    return ("On this pair " + "; ".join(parts) + ".") if parts else ""


def build_report(trace_paths: Sequence[str | os.PathLike], out_dir: str | os.PathLike, *, force: bool = False,
                 command: str | None = None, title: str = "Style transfer on pictures and on sound",
                 log: Callable[[str], None] | None = None) -> Path:
    """Write ``out_dir/index.html`` (self-contained), ``metrics.json`` and ``loss_curves.png`` from run traces.

    ``command``: the command that made these runs (``nst compare ...``), printed in the report; by
    default the ``nst report`` command over the traces, and every run also gets its own reproducing
    ``nst image`` / ``nst audio`` command. Returns the path of ``index.html``.
    """
    from ..commands import command_for_trace, format_command

    say = log or (lambda _m: None)
    out = check_report_folder(out_dir, force=force, inputs=trace_paths)
    runs = load_runs(trace_paths)
    say(f"report over {len(runs)} run(s)")
    summaries = [summary(r) for r in runs]

    curves = []
    for run, s in zip(runs, summaries):
        series = concatenated(run)
        style_n, style_how = normalised(series["style"])
        content_n, content_how = normalised(series["content"])
        curves.append({"label": s["label"], "modality": run.modality, "step": series["step"],
                       "seconds": series["seconds"], "style": series["style"], "content": series["content"],
                       "style_norm": style_n, "content_norm": content_n,
                       "style_normalised_by": style_how, "content_normalised_by": content_how})
    chart = assets.loss_curves_png(curves)

    cards = []
    audio: list[tuple[Run, dict]] = []
    for run, s in zip(runs, summaries):
        try:
            reproduce = format_command(command_for_trace(run.trace, output=str(run.output)))
        except InputError as err:
            reproduce = f"(not reproducible from the command line: {err})"
        card: dict[str, Any] = {"summary": s, "run": run, "metric_rows": _metric_rows(s), "reproduce": reproduce,
                                "settings_json": json.dumps(json_safe(run.trace["settings"]), indent=1)}
        s["reproduce"] = reproduce
        if run.modality == "image":
            card["content"] = assets.image_uri(run.content) if run.content else None
            card["styles"] = [assets.image_uri(p) for p in run.styles]
            card["result"] = assets.image_uri(run.output)
        else:
            st = run.trace["settings"]
            sr = int(st.get("sample_rate", 22050))
            clips = {"content": run.content} if run.content else {}
            clips.update({"style": run.styles[0], "result": run.output})
            card["spectrogram"] = assets.png_uri(assets.spectrogram_png(
                clips, sample_rate=sr, n_fft=int(st.get("n_fft", 2048)), hop_length=int(st.get("hop_length", 512)),
                window=str(st.get("window", "hann"))))
            named = ([("content", run.content)] if run.content else []) + [
                (f"style {i + 1}" if len(run.styles) > 1 else "style", p) for i, p in enumerate(run.styles)]
            named.append(("result", run.output))
            card["players"] = []
            for name, path in named:
                uri, info = assets.audio_uri(path)
                card["players"].append({"name": name, "file": path.name, "uri": uri, **info})
            audio.append((run, s))
        cards.append(card)

    experiments = _experiments(audio)
    for exp in experiments:
        first = exp["members"][0][0]
        st = first.trace["settings"]
        clips = {"content": first.content, "style": first.styles[0]}
        clips.update({f"result: {r.extractor_kind}": r.output for r, _ in exp["members"]})
        exp["figure"] = assets.png_uri(assets.spectrogram_png(
            clips, sample_rate=int(st.get("sample_rate", 22050)), n_fft=int(st.get("n_fft", 2048)),
            hop_length=int(st.get("hop_length", 512)), window=str(st.get("window", "hann"))))
        exp["rows"] = [(r.extractor_kind, s["extractor_description"], _table_row(s), _metric_rows(s))
                       for r, s in exp["members"]]

    report_cmd = format_command(["nst", "report", *[str(p) for p in trace_paths], "-o", str(out)])
    created = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    metrics = json_safe({
        "format": REPORT_FORMAT,
        "created": created,
        "command": command or report_cmd,
        "report_command": report_cmd,
        "runs": summaries,
        "curves": {c["label"]: {k: c[k] for k in ("step", "seconds", "content", "style", "content_norm", "style_norm",
                                                  "content_normalised_by", "style_normalised_by")}
                   for c in curves},
        "spectrogram_as_image": [{"content": str(e["members"][0][0].content),
                                  "style": [str(p) for p in e["members"][0][0].styles],
                                  "runs": [s["label"] for _, s in e["members"]], "verdict": e["verdict"]}
                                 for e in experiments],
    })
    html = _render(title=title, created=created, command=command or report_cmd, report_command=report_cmd,
                   cards=cards, table=[_table_row(s) for s in summaries], chart=assets.png_uri(chart),
                   experiments=experiments, has_audio=bool(audio),
                   content_norm_note=any(c["content_normalised_by"] == "max" for c in curves))

    try:
        out.mkdir(parents=True, exist_ok=True)
        with atomic_path(out / "loss_curves.png") as tmp:
            tmp.write_bytes(chart)
    except OSError as err:
        raise OutputError(f"cannot write the report into {out} ({err.strerror or err})") from None
    write_text_atomic(out / "metrics.json", json.dumps(metrics, indent=1) + "\n")
    write_text_atomic(out / "index.html", html)
    return out / "index.html"


def render_template(name: str, **context: Any) -> str:
    """One of the package's jinja2 templates (``templates/NAME``), HTML-escaped, every name required."""
    import jinja2

    env = jinja2.Environment(loader=jinja2.PackageLoader("nst_jobs.report", "templates"),
                             autoescape=jinja2.select_autoescape(["html", "j2"]), undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True)
    return env.get_template(name).render(**context)


def _render(**context: Any) -> str:
    return render_template("index.html.j2", **context)
