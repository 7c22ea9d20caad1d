"""`nst report out/` over a batch: one card per job with its pictures or clips embedded, the failed job's error,
a sortable table of every job, metrics.json equal to batch.json's records, and bad inputs as one line."""

from __future__ import annotations

import base64
import io
import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from markupsafe import escape
from PIL import Image

from nst_run import assert_one_line_error, run

SR = 22050
IMAGE_OPTIONS = {"image_size": 48, "iterations": 3, "weights": "random", "device": "cpu", "seed": 0}
AUDIO_OPTIONS = {"iterations": 3, "filters": 64, "griffin_lim_iters": 4, "n_fft": 512, "hop_length": 128,
                 "device": "cpu", "seed": 0}


def _picture(path: Path, rgb) -> None:
    Image.fromarray((np.clip(np.stack(rgb, -1), 0, 1) * 255).astype(np.uint8)).save(path)


@pytest.fixture(scope="module")
def batch(tmp_path_factory) -> dict:
    """A finished batch made from ``root`` with relative paths, as `nst batch in/ --style style.png -o out/`
    would: two pictures (one in a subfolder), a broken .png that fails, and a 1 s audio job."""
    from nst_jobs.batch import Job, jobs_from_folder, run_batch

    root = tmp_path_factory.mktemp("batch")
    (root / "in" / "sub").mkdir(parents=True)
    y, x = np.mgrid[0:48, 0:48] / 47.0
    _picture(root / "in" / "a.png", [x, y, 1 - x])  # gradients
    _picture(root / "in" / "sub" / "b.png", [0.5 + 0.5 * np.cos(4 * x), 0.2 + 0 * x, y * y])  # waves
    (root / "in" / "c.png").write_bytes(b"not a picture at all")
    _picture(root / "style.png", [0.5 + 0.5 * np.sin(9 * x), 0.5 + 0.5 * np.cos(7 * y), 0.9 - 0.8 * x * y])  # blobs
    t = np.arange(SR) / SR
    sf.write(root / "melody.wav", (0.3 * np.sin(2 * np.pi * 330 * t)).astype(np.float32), SR)
    sf.write(root / "buzz.wav", (0.3 * np.sign(np.sin(2 * np.pi * 220 * t))).astype(np.float32), SR)
    cwd = os.getcwd()
    os.chdir(root)
    try:
        jobs = jobs_from_folder("in", ["style.png"], "out", IMAGE_OPTIONS)
        jobs.append(Job("audio", "melody.wav", ["buzz.wav"], "out/melody_buzz.wav", dict(AUDIO_OPTIONS)))
        result = run_batch(jobs, "out", workers=1)
    finally:
        os.chdir(cwd)
    assert [r["state"] for r in result.records] == ["done", "failed", "done", "done"], \
        [r.get("error") for r in result.records]
    return {"root": root, "out": root / "out", "doc": json.loads((root / "out" / "batch.json").read_text())}


@pytest.fixture(scope="module")
def page(batch, tmp_path_factory) -> dict:
    """The page built from Python (the current folder is not the one the batch ran in)."""
    from nst_jobs import build_batch_report

    said: list[str] = []
    index = build_batch_report(batch["out"], tmp_path_factory.mktemp("page") / "report", log=said.append)
    metrics = json.loads(index.with_name("metrics.json").read_text())
    return {"index": index, "html": index.read_text(), "metrics": metrics, "said": said}


def _cards(html: str) -> dict[int, dict]:
    found = re.findall(r'<section class="job state-(\w+)" id="job-(\d+)" data-kind="(\w+)">(.*?)</section>', html, re.S)
    return {int(i): {"state": state, "kind": kind, "body": body} for state, i, kind, body in found}


def _figures(card_body: str) -> dict[str, str]:
    """role -> the figure's img src (or its placeholder text)."""
    out = {}
    for role, inner in re.findall(r'<figure class="(\w+)">(.*?)</figure>', card_body, re.S):
        src = re.search(r'<img src="([^"]+)"', inner)
        out[role] = src.group(1) if src else re.search(r'class="placeholder"[^>]*>([^<]*)<', inner).group(1)
    return out


def _decoded(uri: str) -> np.ndarray:
    head, data = uri.split(",", 1)
    assert head.startswith("data:image/") and head.endswith(";base64")
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(data))).convert("RGB"), dtype=np.float64) / 255


def _pixels(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"), dtype=np.float64) / 255


# ---------------------------------------------------------------------------------------------------
# The page


def test_every_image_job_has_a_card_with_its_own_pictures_embedded(batch, page):
    cards = _cards(page["html"])
    assert sorted(cards) == [1, 2, 3, 4]
    assert [cards[i]["kind"] for i in (1, 2, 3)] == ["image"] * 3 and cards[4]["kind"] == "audio"
    root = batch["root"]
    for i, content in ((1, root / "in" / "a.png"), (3, root / "in" / "sub" / "b.png")):
        figs = _figures(cards[i]["body"])
        assert list(figs) == ["content", "style", "result"]
        assert all(src.startswith("data:image/jpeg;base64,") for src in figs.values())
        output = batch["out"] / batch["doc"]["jobs"][i - 1]["job"]["output"].removeprefix("out/")
        # Each thumbnail is its own file (to JPEG's error), not another role's: a swap or a wrong path fails here.
        for role, path in (("content", content), ("style", root / "style.png"), ("result", output)):
            assert np.abs(_decoded(figs[role]) - _pixels(path)).mean() < 0.04, (i, role)
        assert np.abs(_decoded(figs["content"]) - _pixels(root / "style.png")).mean() > 0.15
    assert '<div class="name">sub/b.png</div>' in cards[3]["body"]  # named inside the batch folder
    srcs = re.findall(r'\bsrc="([^"]*)"', page["html"])
    assert srcs and all(s.startswith("data:") for s in srcs)  # self-contained
    assert not re.search(r'\b(href|src)="(https?:)?//', page["html"])


def test_the_failed_job_shows_its_error_and_no_result(batch, page):
    record = batch["doc"]["jobs"][1]  # in/a.png, in/c.png, in/sub/b.png: sorted
    assert record["state"] == "failed" and "not an image" in record["error"] and record["job"]["output"] == "out/c.png"
    failed = _cards(page["html"])[2]
    assert failed["state"] == "failed"
    figs = _figures(failed["body"])
    assert "result" not in figs and figs["content"] == "unreadable" and figs["style"].startswith("data:image/")
    assert f'<div class="error">{escape(record["error"])}</div>' in failed["body"]
    assert '<div class="name">c.png</div>' in failed["body"]


def test_header_counts_and_the_audio_job_plays_its_three_clips(batch, page):
    html = page["html"]
    for state, n in batch["doc"]["counts"].items():
        assert f'id="count-{state}"><b>{n}</b>{state}</span>' in html
    assert str(batch["out"] / "batch.json") in html
    total = sum(r["seconds"] for r in batch["doc"]["jobs"])
    assert f"{total:.1f} s of work" in html
    audio = _cards(html)[4]["body"]
    players = re.findall(r'<audio controls preload="none" src="data:audio/flac;base64,([^"]+)"', audio)
    root = batch["root"]
    assert len(players) == 3
    for data, path in zip(players, (root / "melody.wav", root / "buzz.wav", batch["out"] / "melody_buzz.wav")):
        played, rate = sf.read(io.BytesIO(base64.b64decode(data)))
        want, want_rate = sf.read(path)
        assert rate == want_rate and np.allclose(played, want, atol=2 / 32768), path  # the file, as 16-bit FLAC
    assert re.search(r'<img class="spectrogram" src="data:image/png;base64,', audio)
    assert "MFCC distance to style" in audio
    assert page["said"] == [f"batch report over 4 job(s) from {batch['out'] / 'batch.json'}"]


def test_the_table_has_a_row_per_job_sortable_by_every_column(batch, page):
    html = page["html"]
    table = re.search(r'<table id="jobs" class="sortable">(.*?)</table>', html, re.S).group(1)
    header = re.findall(r"<th[^>]*>([^<]*)</th>", table)
    keys = []
    for record in batch["doc"]["jobs"]:
        for group, values in (record["metrics"] or {}).items():
            keys += [f"{group}.{k}" for k in values] if isinstance(values, dict) else [group]
    assert header[:6] == ["#", "output", "kind", "state", "seconds", "steps"]
    assert header[6:] == list(dict.fromkeys(keys))  # the union of every job's metrics, in order met
    rows = re.findall(r"<tr class=\"state-(\w+)\">(.*?)</tr>", table, re.S)
    assert [state for state, _ in rows] == [r["state"] for r in batch["doc"]["jobs"]]
    for (_, row), record in zip(rows, batch["doc"]["jobs"]):
        sort = re.findall(r'data-sort="([^"]*)"', row)
        assert len(sort) == len(header)
        assert float(sort[4]) == pytest.approx(record["seconds"])
        col = header.index("style.gram_distance_result")
        want = (record["metrics"] or {}).get("style", {}).get("gram_distance_result")
        assert (float(sort[col]) if sort[col] else None) == want  # the raw number sorts, not the rounded text
    # The sort is inline script bound to the headers; nothing is loaded.
    script = re.search(r"<script>(.*?)</script>", html, re.S).group(1)
    assert "function sortTable" in script and 'addEventListener("click"' in script and "table.sortable th" in script
    assert "<script src" not in html


def test_metrics_json_rows_are_the_batch_records(batch, page):
    m = page["metrics"]
    assert m["format"] == "nst-batch-report/1" and m["batch"] == str(batch["out"] / "batch.json")
    assert m["counts"] == batch["doc"]["counts"]
    assert len(m["rows"]) == len(batch["doc"]["jobs"])
    for row, record in zip(m["rows"], batch["doc"]["jobs"]):
        assert row["metrics"] == record["metrics"]
        assert (row["output"], row["state"], row["kind"], row["steps"], row["error"]) == (
            record["job"]["output"], record["state"], record["job"]["kind"], record["steps"], record["error"])
        assert row["metrics_from"] == ("batch" if record["metrics"] else None)
    assert m["rows"][0]["found"] and Path(m["rows"][0]["found"]).samefile(batch["out"] / "a.png")


def test_a_skipped_job_takes_its_metrics_from_its_trace_and_a_moved_batch_shows_inputs_missing(batch, tmp_path):
    """What --resume writes for a job done before (no metrics in its record), in a batch folder moved and renamed:
    outputs are found in the folder, the inputs the relative paths named are shown as missing."""
    from nst_jobs import build_batch_report

    moved = tmp_path / "elsewhere" / "renamed"
    shutil.copytree(batch["out"], moved)
    doc = json.loads((moved / "batch.json").read_text())
    doc["jobs"][0].update(state="skipped", metrics=None, steps=None)
    doc["counts"].update(done=2, skipped=1)
    (moved / "batch.json").write_text(json.dumps(doc))
    index = build_batch_report(moved)
    assert index == moved / "report" / "index.html"
    m = json.loads(index.with_name("metrics.json").read_text())
    trace = json.loads((moved / "a.trace.json").read_text())
    assert m["rows"][0]["metrics"] == trace["metrics"] == batch["doc"]["jobs"][0]["metrics"]
    assert m["rows"][0]["metrics_from"] == "trace" and m["rows"][0]["steps"] == 3
    cards = _cards(index.read_text())
    figs = _figures(cards[1]["body"])
    assert figs["content"] == figs["style"] == "missing" and figs["result"].startswith("data:image/jpeg")
    assert '<div class="name">c.png</div>' in cards[2]["body"]  # a failed job's output, named though never written


def test_thumbnails_are_small_jpegs_of_the_long_side_asked(tmp_path):
    from nst_jobs.report.assets import image_uri, thumbnail_uri

    photo = np.random.default_rng(0).random((300, 600, 3))  # fine detail, as photos have: PNG is large
    _picture(tmp_path / "wide.png", [photo[..., 0], photo[..., 1], photo[..., 2]])
    uri, info = thumbnail_uri(tmp_path / "wide.png")
    assert (info["width"], info["height"], info["shown"]) == (600, 300, [256, 128])
    assert _decoded(uri).shape == (128, 256, 3) and uri.startswith("data:image/jpeg;base64,")
    assert thumbnail_uri(tmp_path / "wide.png", max_side=64)[1]["shown"] == [64, 32]
    assert len(uri) < len(image_uri(tmp_path / "wide.png")[0]) / 4


# ---------------------------------------------------------------------------------------------------
# From the command line


def test_nst_report_on_a_batch_folder_writes_into_its_report_folder(batch, capsys):
    out = batch["out"]
    code, stdout, err = run(["report", out], capsys)
    assert code == 0, err
    assert (out / "report" / "index.html").is_file() and (out / "report" / "metrics.json").is_file()
    assert f"wrote {out / 'report' / 'index.html'}" in stdout
    assert len(_cards((out / "report" / "index.html").read_text())) == 4
    # A report already there is kept unless --force.
    code, _, err = run(["report", out], capsys)
    assert_one_line_error(code, err, "already holds a report", "--force")
    assert code == 4
    code, _, err = run(["report", out, "--force", "--title", "Holiday photos"], capsys)
    assert code == 0, err
    assert "<h1>Holiday photos</h1>" in (out / "report" / "index.html").read_text()


def test_nst_report_on_a_batch_folder_with_o_writes_there(batch, tmp_path, capsys):
    code, _, err = run(["report", batch["out"], "-o", tmp_path / "page"], capsys)
    assert code == 0, err
    assert json.loads((tmp_path / "page" / "metrics.json").read_text())["format"] == "nst-batch-report/1"


@pytest.mark.parametrize("case,needles", [
    ("no batch.json", ["holds no batch.json", "nst batch"]),
    ("not json", ["batch.json", "not valid JSON", "--resume"]),
    ("other format", ["batch.json", "nst-batch/1"]),
    ("broken record", ["batch.json", "job 1", "--resume"]),
])
def test_a_folder_that_is_no_batch_is_one_line_exit_2(case, needles, tmp_path, capsys):
    folder = tmp_path / "out"
    folder.mkdir()
    text = {"no batch.json": None, "not json": '{"format": "nst-batch/1", "jobs": [',
            "other format": json.dumps({"format": "nst-report/1", "jobs": []}),
            "broken record": json.dumps({"format": "nst-batch/1", "jobs": [{"state": "done"}]})}[case]
    if text is not None:
        (folder / "batch.json").write_text(text)
    code, _, err = run(["report", folder], capsys)
    assert_one_line_error(code, err, *needles)
    assert code == 2 and not (folder / "report").exists()


def test_a_folder_of_traces_is_told_to_pass_its_traces(batch, tmp_path, capsys):
    runs = tmp_path / "runs"
    runs.mkdir()
    shutil.copy(batch["out"] / "a.trace.json", runs)
    code, _, err = run(["report", runs, "-o", tmp_path / "r"], capsys)
    assert_one_line_error(code, err, "holds no batch.json", f"{runs}/*.trace.json")
    assert code == 2


def test_traces_still_need_o_and_a_folder_does_not_mix_with_traces(batch, tmp_path, capsys):
    trace = batch["out"] / "a.trace.json"
    code, _, err = run(["report", trace], capsys)
    assert_one_line_error(code, err, "-o")
    assert code == 2
    code, _, err = run(["report", batch["out"], trace, "-o", tmp_path / "r"], capsys)
    assert_one_line_error(code, err, "batch folder", "trace files")
    assert code == 2 and not (tmp_path / "r").exists()
    code, _, err = run(["report", batch["out"], batch["out"], "-o", tmp_path / "r"], capsys)
    assert_one_line_error(code, err, "one batch folder at a time")
    assert code == 2 and not (tmp_path / "r").exists()
