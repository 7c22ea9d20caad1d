"""Tests for nst_core.trace: the run trace document and its JSON file."""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch

from nst_core import TRACE_FORMAT, OptimizeConfig, optimize, run_trace, write_trace


def _summary(steps=4, optimizer="adam", seed=0):
    target = torch.rand(5, generator=torch.Generator().manual_seed(seed))
    r = optimize(torch.zeros(5), lambda x: {"total": (x - target).pow(2).sum()},
                 OptimizeConfig(steps=steps, optimizer=optimizer, log_every=2))
    return r.summary()


def test_run_trace_is_strict_json_with_format_and_sums():
    runs = [_summary(steps=4, seed=0), _summary(steps=6, optimizer="lbfgs", seed=1)]
    runs[0]["size"] = (32, 48)  # front ends add their own fields
    doc = run_trace(modality="image", settings={"style_weight": 1e3, "layers": ("relu1_1", "relu2_1")},
                    runs=runs, inputs={"content": Path("/data/c.png"), "style": [Path("s1.png")]}, output="out.png",
                    extra={"note": "x"})
    text = json.dumps(doc, allow_nan=False)  # strict JSON: would raise on NaN/inf
    back = json.loads(text)
    assert back["format"] == TRACE_FORMAT == "nst-trace/2"
    assert back["modality"] == "image" and back["output"] == "out.png" and back["note"] == "x"
    assert back["steps"] == 10
    assert back["seconds"] == runs[0]["seconds"] + runs[1]["seconds"]
    assert back["peak_memory_bytes"] == max(r["peak_memory_bytes"] for r in runs)
    assert back["inputs"] == {"content": "/data/c.png", "style": ["s1.png"]}
    assert back["settings"]["layers"] == ["relu1_1", "relu2_1"]
    assert back["runs"][0]["size"] == [32, 48]
    assert back["runs"][1]["trace"]["total"] == runs[1]["trace"]["total"]
    assert back["versions"]["torch"] == torch.__version__


def test_run_trace_converts_non_finite_numbers_to_none():
    runs = [
        {"seconds": 1.5, "steps_run": 3, "best_loss": math.inf, "trace": {"total": [1.0, math.nan, -math.inf]}},
        {"seconds": 0.5, "steps_run": 2, "peak_memory_bytes": 7},
    ]
    doc = run_trace(modality="audio", settings={"lr": math.nan}, runs=runs, inputs={})
    json.dumps(doc, allow_nan=False)
    assert doc["runs"][0]["best_loss"] is None
    assert doc["runs"][0]["trace"]["total"] == [1.0, None, None]
    assert doc["settings"]["lr"] is None
    assert doc["seconds"] == 2.0 and doc["steps"] == 5 and doc["peak_memory_bytes"] == 7
    assert runs[0]["trace"]["total"][1] != runs[0]["trace"]["total"][1]  # caller's NaN left in place


def test_run_trace_of_no_runs():
    doc = run_trace(modality="image", settings={}, runs=[], inputs={})
    assert doc["seconds"] == 0 and doc["steps"] == 0 and doc["peak_memory_bytes"] == 0 and doc["runs"] == []


def test_write_trace_round_trips(tmp_path):
    doc = run_trace(modality="image", settings={"w": 1.0}, runs=[_summary()], inputs={"content": "c.png"})
    doc_with_nan = dict(doc, extra_value=math.nan)
    path = tmp_path / "run.trace.json"
    write_trace(path, doc_with_nan)
    text = path.read_text(encoding="utf-8")
    assert text.endswith("\n") and "NaN" not in text
    back = json.loads(text)
    assert back["extra_value"] is None
    assert back["runs"] == json.loads(json.dumps(doc["runs"]))
    assert [p.name for p in tmp_path.iterdir()] == ["run.trace.json"]
