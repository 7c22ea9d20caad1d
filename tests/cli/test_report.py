"""`nst compare` and `nst report`: contents of the report, metrics.json, and every bad input the issue lists."""

from __future__ import annotations

import hashlib
import json
import math
import re
import shlex
from pathlib import Path

import pytest
import torch

from nst_core import resolve_precision
from nst_run import assert_one_line_error, run
from nst_jobs.report.traces import concatenated, load_run, normalised, steps_to_fraction


def _digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


def traces_of(report: Path) -> list[Path]:
    return sorted((report / "runs").glob("*.trace.json"))


# ---------------------------------------------------------------------------------------------------
# What the report holds


def test_compare_writes_runs_and_a_self_contained_report(tiny_report):
    files = {p.name for p in (tiny_report / "runs").iterdir()}
    assert {"image_content_landscape_style_swirls.png", "audio_notes_sine_phrase_saw_random-cnn.wav",
            "audio_notes_sine_phrase_saw_vgg.wav"} <= files
    assert len(traces_of(tiny_report)) == 3
    html = (tiny_report / "index.html").read_text()
    # Self-contained: every src is a data URI; nothing is fetched from a server or the network.
    srcs = re.findall(r'\bsrc="([^"]*)"', html)
    assert srcs and all(s.startswith("data:") for s in srcs)
    assert not re.search(r'\b(href|src)="(https?:)?//', html)
    assert html.count("<img ") == 3 + 2 + 1 + 1  # 3 pictures, 2 audio spectrogram rows, loss chart, experiment
    assert html.count("<audio ") == 6  # content, style, result for each of the two audio runs
    assert "data:audio/flac;base64," in html
    assert "nst compare (test)" in html
    assert html.count("How it ended: ") == 3 and "ran all 8 steps" in html  # 8 steps: below min_steps


def test_metrics_json_holds_every_figure_in_the_table(tiny_report):
    m = json.loads((tiny_report / "metrics.json").read_text())
    assert m["format"] == "nst-report/1"
    labels = [r["label"] for r in m["runs"]]
    assert labels == ["image · vgg16", "audio · random-cnn", "audio · vgg"]
    html = (tiny_report / "index.html").read_text()
    for r in m["runs"]:
        assert r["steps"] == 8
        assert r["ms_per_step"] > 0 and r["device"] and r["precision"] == resolve_precision("auto", torch.device("cpu"))
        assert set(r["final_losses"]) == {"content", "style", "total"}
        assert r["reproduce"].startswith("nst ")
        # The table shows the time per step and the final style loss as formatted here.
        assert f"{r['ms_per_step']:.4g}" in html
        curve = m["curves"][r["label"]]
        assert len(curve["step"]) == len(curve["seconds"]) == len(curve["style_norm"]) == 8
        assert curve["style_norm"][0] == pytest.approx(1.0)
        assert all(b >= a for a, b in zip(curve["seconds"], curve["seconds"][1:]))
    image, audio, vgg = m["runs"]
    assert {"gram_distance_result", "gram_distance_content"} <= set(image["metrics"]["style"])
    assert {"ssim_luminance_result", "ssim_luminance_style"} <= set(image["metrics"]["content"])
    for a in (audio, vgg):
        assert math.isfinite(a["metrics"]["spectral_convergence_db"])
        assert {"mfcc_distance_result", "mfcc_distance_content"} <= set(a["metrics"]["style"])
        assert "chroma_correlation" in a["metrics"]["content"]
    exp = m["spectrogram_as_image"]
    assert len(exp) == 1 and exp[0]["runs"] == ["audio · random-cnn", "audio · vgg"]
    assert "MFCC distance" in exp[0]["verdict"] and exp[0]["verdict"] in html.replace("&#39;", "'")


def test_each_run_prints_a_command_that_reproduces_it(tiny_report):
    m = json.loads((tiny_report / "metrics.json").read_text())
    for r, trace in zip(m["runs"], traces_of_in_order(tiny_report, m)):
        argv = shlex.split(r["reproduce"])
        doc = json.loads(trace.read_text())
        assert argv[:2] == ["nst", doc["modality"]]
        assert argv[argv.index("-o") + 1] == doc["output"]
        assert argv[argv.index("--seed") + 1] == "0"
        if doc["modality"] == "image" or doc["settings"]["extractor"] == "vgg":
            assert argv[argv.index("--weights") + 1] == "random"
    vgg = m["runs"][2]["reproduce"]
    assert "--extractor vgg" in vgg and "--weights random" in vgg


def traces_of_in_order(report, m):
    return [Path(r["trace_file"]) for r in m["runs"]]


def test_report_from_traces_rebuilds_the_same_figures(tiny_report, tmp_path, capsys):
    out = tmp_path / "again"
    code, stdout, err = run(["report", *traces_of(tiny_report), "-o", out], capsys)
    assert code == 0, err
    assert "index.html" in stdout
    a = json.loads((tiny_report / "metrics.json").read_text())
    b = json.loads((out / "metrics.json").read_text())
    key = lambda runs: sorted((r["label"], r["steps"], r["final_losses"]["style"]) for r in runs)  # noqa: E731
    assert key(a["runs"]) == key(b["runs"])
    assert b["command"].startswith("nst report ")


def test_report_of_images_only_says_the_experiment_needs_audio_runs(tiny_report, tmp_path, capsys):
    image_trace = next(p for p in traces_of(tiny_report) if p.name.startswith("image_"))
    code, _, err = run(["report", image_trace, "-o", tmp_path / "r"], capsys)
    assert code == 0, err
    html = (tmp_path / "r" / "index.html").read_text()
    assert html.count("<audio ") == 0 and "Spectrogram as image" not in html


def test_outputs_moved_with_their_traces_are_found_beside_them(tiny_report, tmp_path, capsys):
    moved = tmp_path / "moved"
    moved.mkdir()
    trace = next(p for p in traces_of(tiny_report) if "random-cnn" in p.name)
    doc = json.loads(trace.read_text())
    doc["output"] = "/nonexistent/folder/" + Path(doc["output"]).name
    (moved / trace.name).write_text(json.dumps(doc))
    (moved / Path(doc["output"]).name).write_bytes(Path(load_run(trace).output).read_bytes())
    code, _, err = run(["report", moved / trace.name, "-o", tmp_path / "r"], capsys)
    assert code == 0, err


# ---------------------------------------------------------------------------------------------------
# Series arithmetic


def test_steps_to_ninety_percent_and_normalisation():
    assert steps_to_fraction([10, 5, 2, 1.5, 1.0]) == 4  # drop 9; 90 % of it (8.1) first reached at 1.5, step 4
    assert steps_to_fraction([10, 10, 10]) is None
    assert steps_to_fraction([1, 2, 3]) is None
    assert normalised([4.0, 2.0, 1.0]) == ([1.0, 0.5, 0.25], "start")
    assert normalised([0.0, 2.0, 4.0]) == ([0.0, 0.5, 1.0], "max")


def test_wall_time_is_interpolated_within_and_accumulated_across_optimizations(tiny_report):
    run_ = load_run(next(p for p in traces_of(tiny_report) if p.name.startswith("image_")))
    tr = run_.trace
    tr["runs"] = [dict(tr["runs"][0], seconds=4.0, timeline=[[4, 2.0], [8, 4.0]]),
                  dict(tr["runs"][0], seconds=8.0, timeline=[[8, 8.0]])]
    s = concatenated(run_)
    assert s["step"] == list(range(1, 17))
    assert s["seconds"][3] == pytest.approx(2.0) and s["seconds"][7] == pytest.approx(4.0)
    assert s["seconds"][8] == pytest.approx(5.0) and s["seconds"][15] == pytest.approx(12.0)


# ---------------------------------------------------------------------------------------------------
# Bad input: one line, non-zero exit, nothing overwritten


def test_broken_json_trace(tiny_report, tmp_path, capsys):
    bad = tmp_path / "broken.trace.json"
    bad.write_text('{"format": "nst-trace/1", "runs": [')
    code, _, err = run(["report", bad, "-o", tmp_path / "r"], capsys)
    assert_one_line_error(code, err, "not valid JSON", "line 1")
    assert not (tmp_path / "r").exists()


def test_trace_from_another_version(tiny_report, tmp_path, capsys):
    doc = json.loads(traces_of(tiny_report)[0].read_text())
    doc["format"] = "nst-trace/0"
    old = tmp_path / "old.trace.json"
    old.write_text(json.dumps(doc))
    code, _, err = run(["report", old, "-o", tmp_path / "r"], capsys)
    assert_one_line_error(code, err, "nst-trace/0", "re-run")
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"hello": 1}))
    code, _, err = run(["report", other, "-o", tmp_path / "r"], capsys)
    assert_one_line_error(code, err, "not an nst trace")


def test_trace_whose_inputs_are_gone(tiny_report, tmp_path, capsys):
    doc = json.loads(traces_of(tiny_report)[0].read_text())
    doc["inputs"]["content"] = str(tmp_path / "deleted.png")
    t = tmp_path / "gone.trace.json"
    t.write_text(json.dumps(doc))
    code, _, err = run(["report", t, "-o", tmp_path / "r"], capsys)
    assert_one_line_error(code, err, "deleted.png", "does not exist")
    code, _, err = run(["report", tmp_path / "missing.trace.json", "-o", tmp_path / "r"], capsys)
    assert_one_line_error(code, err, "does not exist")


def test_compare_with_missing_inputs(report_inputs, tmp_path, capsys):
    code, _, err = run(["compare", "--image", tmp_path / "nope.png", report_inputs["image_style"],
                        "-o", tmp_path / "r", "--no-progress"], capsys)
    assert_one_line_error(code, err, "nope.png")
    assert not (tmp_path / "r").exists()
    code, _, err = run(["compare", "-o", tmp_path / "r"], capsys)
    assert_one_line_error(code, err, "--image")


def test_failed_compare_leaves_no_folders_behind(report_inputs, tmp_path, capsys):
    bad = tmp_path / "notes.wav"
    bad.write_text("not audio")
    out = tmp_path / "new" / "report"
    code, _, err = run(["compare", "--audio", bad, report_inputs["audio_style"], "--no-vgg-audio",
                        "--audio-iterations", "1", "-o", out, "--no-progress", "--device", "cpu"], capsys)
    assert_one_line_error(code, err, "notes.wav")
    assert not (tmp_path / "new").exists()
    # A failure after the run folder was made (weights that cannot be loaded) removes it again.
    code, _, err = run(["compare", "--image", report_inputs["image_content"], report_inputs["image_style"],
                        "--weights", tmp_path / "missing.pth", "-o", out, "--no-progress", "--device", "cpu"], capsys)
    assert_one_line_error(code, err, "missing.pth")
    assert not (tmp_path / "new").exists()


def test_output_folder_that_is_a_file(tiny_report, report_inputs, tmp_path, capsys):
    f = tmp_path / "report.html"
    f.write_text("keep me")
    code, _, err = run(["report", *traces_of(tiny_report), "-o", f], capsys)
    assert_one_line_error(code, err, "is a file")
    code, _, err = run(["compare", "--image", report_inputs["image_content"], report_inputs["image_style"],
                        "-o", f, "--no-progress"], capsys)
    assert_one_line_error(code, err, "is a file")
    assert f.read_text() == "keep me"


def test_existing_report_is_kept_without_force_and_replaced_with_it(report_copy, tmp_path, capsys):
    before = _digest(report_copy)
    traces = traces_of(report_copy)
    code, _, err = run(["report", *traces, "-o", report_copy], capsys)
    assert_one_line_error(code, err, "already holds a report", "--force")
    assert _digest(report_copy) == before
    code, _, err = run(["report", *traces, "-o", report_copy, "--force"], capsys)
    assert code == 0, err
    after = _digest(report_copy)
    assert after["index.html"] != before["index.html"]  # rebuilt (new creation time, new command)
    assert {k: v for k, v in after.items() if k.endswith((".wav", ".png")) and k != "loss_curves.png"} == \
        {k: v for k, v in before.items() if k.endswith((".wav", ".png")) and k != "loss_curves.png"}


def test_compare_refuses_to_replace_earlier_runs_without_force(report_copy, report_inputs, capsys):
    (report_copy / "index.html").unlink()
    (report_copy / "metrics.json").unlink()
    (report_copy / "loss_curves.png").unlink()
    before = _digest(report_copy)
    code, _, err = run(["compare", "--image", report_inputs["image_content"], report_inputs["image_style"],
                        "-o", report_copy, "--no-progress", "--weights", "random"], capsys)
    assert_one_line_error(code, err, "already exists", "--force")
    assert _digest(report_copy) == before
