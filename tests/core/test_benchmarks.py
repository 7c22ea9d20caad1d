"""The benchmark helpers in ``benchmarks/``: FLOP counts, peak FLOPS, MFU, the size search, the Markdown summary,
and one tiny end-to-end run of ``run_all.py`` on the CPU.

The benchmark scripts are not a package: they import each other by bare name (``from _common import ...``),
so ``benchmarks/`` goes on ``sys.path`` here, as it is when they run as scripts.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "benchmarks"
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))

import flops  # noqa: E402
import max_image_size  # noqa: E402
import precision_quality  # noqa: E402
import run_all  # noqa: E402

DASH = "–"


# --------------------------------------------------------------------------- FLOPs

def test_flops_small_case_by_hand():
    # VGG-16 at 8x8 up to relu2_1: conv1_1 (3 -> 64) and conv1_2 (64 -> 64) at 8x8, pool1, conv2_1 (64 -> 128) at 4x4.
    conv1_1 = 2 * 3 * 64 * 9 * 8 * 8
    conv1_2 = 2 * 64 * 64 * 9 * 8 * 8
    conv2_1 = 2 * 64 * 128 * 9 * 4 * 4
    assert (conv1_1, conv1_2, conv2_1) == (221_184, 4_718_592, 2_359_296)
    got = flops.vgg_step_flops(8, 8, arch="vgg16", deepest="relu2_1")
    assert got["forward"] == conv1_1 + conv1_2 + conv2_1
    assert got["backward_input"] == got["forward"]
    assert got["per_step"] == 2 * (conv1_1 + conv1_2 + conv2_1)
    assert got["convolutions"] == 3
    assert flops.vgg_step_flops(8, 8, arch="vgg16", deepest="relu1_2")["forward"] == conv1_1 + conv1_2


def test_flops_pooling_floors_odd_sizes():
    convs = flops.vgg_conv_shapes(9, 7, arch="vgg19", deepest="relu3_1")
    assert [(c["name"], c["height"], c["width"]) for c in convs] == [
        ("conv1_1", 9, 7), ("conv1_2", 9, 7), ("conv2_1", 4, 3), ("conv2_2", 4, 3), ("conv3_1", 2, 1)]


def test_flops_scale_with_pixels():
    base = flops.vgg_step_flops(32, 48)["per_step"]
    assert flops.vgg_step_flops(64, 96)["per_step"] == 4 * base
    assert flops.vgg_step_flops(32, 96)["per_step"] == 2 * base


def test_flops_stop_at_the_deepest_layer():
    def fwd(deepest: str, arch: str = "vgg19") -> int:
        return flops.vgg_step_flops(64, 64, arch=arch, deepest=deepest)["forward"]

    assert flops.vgg_step_flops(64, 64, deepest="relu5_1")["convolutions"] == 13
    assert flops.vgg_step_flops(64, 64, deepest="relu4_2")["convolutions"] == 10
    assert flops.vgg_step_flops(64, 64, arch="vgg16", deepest="relu5_1")["convolutions"] == 11
    # relu5_1 adds exactly conv5_1 (512 -> 512 at 4x4) to relu4_4's stack; pool4 and the ReLUs add nothing.
    assert fwd("relu5_1") - fwd("relu4_4") == 2 * 512 * 512 * 9 * 4 * 4
    assert fwd("pool4") == fwd("relu4_4") == fwd("conv4_4")
    assert fwd("relu5_4") == fwd("pool5") > fwd("relu5_1")
    assert flops.deepest_layer("vgg19", ["relu1_1", "relu4_2", "relu5_1", "relu3_1"]) == "relu5_1"
    with pytest.raises(ValueError):
        flops.deepest_layer("vgg19", ["relu6_1"])


def test_flops_vgg19_at_224_px():
    # Hand sums of Cin*Cout*9*H*W (multiply-adds) per block at 224, 112, 56, 28, 14 px:
    macs = [(3 * 64 + 64 * 64) * 9 * 224**2,
            (64 * 128 + 128 * 128) * 9 * 112**2,
            (128 * 256 + 3 * 256 * 256) * 9 * 56**2,
            (256 * 512 + 3 * 512 * 512) * 9 * 28**2,
            512 * 512 * 9 * 14**2]  # conv5_1 only
    up_to_relu5_1 = 2 * sum(macs)
    all_16 = up_to_relu5_1 + 2 * 3 * 512 * 512 * 9 * 14**2
    assert up_to_relu5_1 == 36_242_325_504  # 36.2 GFLOPs forward
    assert all_16 == 39_016_857_600  # the usual "19.5 GMACs" of VGG-19's convolutions
    assert flops.vgg_step_flops(224, 224, deepest="relu5_1")["forward"] == up_to_relu5_1
    assert flops.vgg_step_flops(224, 224, deepest="relu5_4")["forward"] == all_16
    assert flops.vgg_step_flops(224, 224, deepest="relu5_1")["per_step"] == 2 * up_to_relu5_1


def test_flops_match_torch_flop_counter():
    """torch's own FlopCounterMode, on the library's VGG-19, counts the same convolution FLOPs forward and
    (frozen weights: input gradient only) backward."""
    from torch.utils.flop_counter import FlopCounterMode

    from nst_image.backbones import VGGFeatures

    extractor = VGGFeatures("vgg19")
    x = torch.rand(1, 3, 32, 40, requires_grad=True)
    with FlopCounterMode(display=False) as counter:
        extractor(x, ["relu4_2", "relu5_1"])["relu5_1"].sum().backward()
    counts = {str(k): v for k, v in counter.get_flop_counts()["Global"].items()}
    ours = flops.vgg_step_flops(32, 40, deepest="relu5_1")
    assert counts["aten.convolution"] == ours["forward"]
    assert counts["aten.convolution_backward"] == ours["backward_input"]


def test_gram_flops():
    # relu1_1 at 8x8: C = 64, N = 64; forward 2 C^2 N and backward 2 C^2 N.
    assert flops.gram_flops(8, 8, style_layers=["relu1_1"]) == 4 * 64 * 64 * 64
    assert flops.gram_flops(8, 8, style_layers=["relu2_1"]) == 4 * 128 * 128 * 16
    assert flops.gram_flops(8, 8, style_layers=[]) == 0


# --------------------------------------------------------------------------- peaks and MFU

@pytest.mark.parametrize("name, precision, expected", [
    ("NVIDIA H100 80GB HBM3", "fp32", 66.9),
    ("NVIDIA H100 80GB HBM3", "tf32", 494.7),
    ("NVIDIA H100 80GB HBM3", "bf16", 989.4),
    ("NVIDIA H100 PCIe", "bf16", 756.0),
    ("NVIDIA H100 NVL", "tf32", 417.5),
    ("NVIDIA H200", "bf16", 989.4),
    ("NVIDIA A100-SXM4-80GB", "tf32", 156.0),
    ("NVIDIA A100 80GB PCIe", "bf16", 312.0),
    ("NVIDIA L4", "bf16", 121.0),
    ("NVIDIA L40S", "fp32", 91.6),
])
def test_peak_table(name, precision, expected):
    peak, source = flops.peak_tflops(name, precision)
    assert peak == expected
    assert "dense" in source or precision == "fp32"


@pytest.mark.parametrize("name", [None, "cpu", "NVIDIA L40", "NVIDIA A10G", "Tesla T4"])
def test_peak_unknown_gives_a_reason(name):
    peak, reason = flops.peak_tflops(name, "fp32")
    assert peak is None
    assert reason and ("CPU" in reason if name in (None, "cpu") else str(name) in reason)


def test_utilisation_arithmetic():
    u = flops.utilisation(2e12, 0.01, "NVIDIA H100 80GB HBM3", "bf16")
    assert u["achieved_tflops"] == pytest.approx(200.0)
    assert u["peak_tflops"] == 989.4
    assert u["mfu"] == pytest.approx(200.0 / 989.4)
    cpu = flops.utilisation(2e12, 0.5, None, "fp32")
    assert cpu["achieved_tflops"] == pytest.approx(4.0)
    assert cpu["peak_tflops"] is None and cpu["mfu"] is None
    assert "CPU" in cpu["mfu_unavailable"]


# --------------------------------------------------------------------------- size probe

@pytest.mark.parametrize("limit, expected", [(0, None), (256, 256), (700, 512), (3000, 2816), (5000, 4864),
                                             (99_999, 16384)])
def test_size_search(limit, expected):
    tried = []

    def fits(size: int) -> bool:
        tried.append(size)
        return size <= limit

    assert max_image_size.largest_ok(fits, step=256, max_size=16384) == expected
    assert all(s % 256 == 0 and s <= 16384 for s in tried)
    assert len(tried) == len(set(tried)) <= 12  # doubling then bisection, no size twice


def test_size_probe_on_cpu_is_not_measured(capsys):
    assert max_image_size.main(["--device", "cpu"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["not measured"] == "needs a CUDA device"
    assert run_all.case_kind(doc) == "max_image_size"


def test_precision_comparison_figure():
    a = torch.zeros(3, 8, 10)
    b = a.clone()
    b[:, 0, 0] = 0.05
    fig = precision_quality.comparison_figure(a, b)
    assert fig.shape == (3, 8, 3 * 10 + 2 * 4)
    diff_panel = fig[:, :, 2 * 10 + 2 * 4:]
    assert diff_panel[:, 0, 0].tolist() == pytest.approx([0.5] * 3)  # 0.05 amplified 10x
    assert float(diff_panel[:, 1:].abs().max()) == 0
    assert precision_quality.relative_difference(1.1, 1.0) == pytest.approx(0.1)
    assert precision_quality.relative_difference(1.0, 0.0) is None
    assert precision_quality.precisions_for(torch.device("cpu")) == ["fp32", "bf16"]


# --------------------------------------------------------------------------- Markdown

def _rows(table: str) -> list[list[str]]:
    lines = [line for line in table.splitlines() if line.startswith("| ")]
    header = lines[0]
    n = header.count("|")
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in lines[1:]]
    return [r for r in rows if len(r) == n - 1]


def test_markdown_table_synthetic():
    image = {"benchmark": "image style transfer: x", "machine": {"gpu": "NVIDIA H100 80GB HBM3"},
             "settings": {"size": 512, "content_shape": [384, 512], "steps": 500, "backbone": "vgg19",
                          "precision_ours": "tf32"},
             "ours": {"seconds_per_step": 0.0125, "final_losses": {"our_objective": {"total": 0.5},
                                                                   "tutorial_objective": {"total": 7e6}},
                      "peak_memory": {"peak_bytes": 3 * 2**30}, "achieved_tflops": 120.0, "mfu": 0.2426},
             "reference": {"seconds_per_step": 0.05, "final_losses": {"our_objective": {"total": 1.5}}},
             "speedup": 4.0, "notes": ["a note"]}
    audio = {"benchmark": "audio style transfer: y", "machine": {"cpu_model": "AMD EPYC", "cpu_count": 2},
             "settings": {"seconds": 10.0, "steps": 40}, "ours": {"seconds_per_step": 1.5,
                                                                 "griffin_lim_seconds": 3.5},
             "reference": {"seconds_per_step": 2.0, "griffin_lim_seconds": 14.0}, "speedup": 1.333}
    results = {"machine": {"gpu": "NVIDIA H100 80GB HBM3"}, "cases": {
        "image": {"result": image}, "audio": {"result": audio},
        "max_image_size": {"result": {"largest_ok_size": 4608, "largest_size_estimate_allows": 4096,
                                      "auto_image_size": {"uncapped_square": 3840},
                                      "tried": [{"size": 4608, "outcome": "ok", "peak_allocated_bytes": 2**35,
                                                 "estimate_bytes": 2**36, "estimate_refuses": True}]}},
        "image_cpu_parity": {"result": None, "error": "exit status 1"}}}
    table = run_all.markdown_table(results)
    rows = {r[1].split(" ")[0]: r for r in _rows(table)}
    assert set(rows) >= {"image", "audio", "max_image_size", "image_cpu_parity"}
    img = rows["image"]
    assert img[0] == "NVIDIA H100 80GB HBM3"
    assert img[2] == "512 px (512x384), 500 steps, vgg19, tf32"
    assert img[3:6] == ["0.0125", "0.05", "4"]
    assert img[6] == "0.5 / 1.5"
    assert img[7] == f"7e+06 / {DASH}"  # the reference's tutorial-objective loss is missing
    assert img[8] == DASH  # no Griffin-Lim for images
    assert img[9] == f"3.00 GiB / {DASH}"
    assert img[10] == "120 TFLOPS (24.3 %)"
    aud = rows["audio"]
    assert aud[0] == "AMD EPYC (2 CPUs)"
    assert aud[8] == "3.5 / 14"
    assert aud[6] == aud[7] == aud[9] == aud[10] == DASH
    assert rows["max_image_size"][11].startswith("4608 px (estimate allows 4096 px; auto picks 3840 px)")
    assert "failed: exit status 1" in rows["image_cpu_parity"][1]
    assert "| 4608 | ok | 32.00 GiB |" in table
    assert "* image: a note" in table


@pytest.mark.parametrize("name", ["cpu_256.json", "cpu_audio_10s.json"])
def test_markdown_table_saved_results(name):
    """The saved results render: the row's figures are the document's, rounded as the table rounds them."""
    doc = json.loads((BENCH / "results" / name).read_text())
    rows = _rows(run_all.markdown_table(doc))
    assert len(rows) == 1
    row = rows[0]
    assert row[0].startswith("AMD EPYC")
    ours, ref = doc["ours"]["seconds_per_step"], doc["reference"]["seconds_per_step"]
    assert float(row[3]) == pytest.approx(ours, rel=1e-3)
    assert float(row[4]) == pytest.approx(ref, rel=1e-3)
    assert float(row[5]) == pytest.approx(ref / ours, rel=6e-3)  # shown to 3 significant digits
    if "griffin_lim_seconds" in doc["ours"]:
        gl = [float(v) for v in row[8].split(" / ")]
        assert gl == pytest.approx([doc["ours"]["griffin_lim_seconds"], doc["reference"]["griffin_lim_seconds"]],
                                   rel=0.02)
    else:
        assert row[8] == DASH
    assert row[11] == DASH  # no size probe in these files


def test_from_json_merges_saved_results(capsys):
    files = [str(BENCH / "results" / "cpu_256.json"), str(BENCH / "results" / "cpu_audio_10s.json")]
    assert run_all.main(["--from-json", *files]) == 0
    rows = _rows(capsys.readouterr().out)
    assert [r[1] for r in rows] == ["cpu_256", "cpu_audio_10s"]


# --------------------------------------------------------------------------- run_all's plan

def _argv(cases: list[dict], name: str) -> list[str]:
    return next(c for c in cases if c["name"] == name)["argv"]


def test_plan_gpu_and_cpu(tmp_path):
    args = run_all.parse_args(["--out-dir", str(tmp_path), "--with-cpu"])
    gpu = run_all.plan("cuda", args, tmp_path)
    assert [c["name"] for c in gpu] == ["image", "image_cpu_parity", "audio", "time_to_quality", "max_image_size",
                                        "tiled_memory"]
    assert "--device cuda --sizes 4096 8192" in " ".join(_argv(gpu, "tiled_memory"))
    assert "--device cuda --image-sizes 512 --audio-seconds 10" in " ".join(_argv(gpu, "time_to_quality"))
    image = " ".join(_argv(gpu, "image"))
    assert "--device cuda --size 512 --steps 500" in image and "--out" in image
    assert "--device cpu --size 256 --steps 100" in " ".join(_argv(gpu, "image_cpu_parity"))
    assert "--seconds 10 --steps 300 --griffin-lim-iters 500" in " ".join(_argv(gpu, "audio"))
    assert "--weights random --backbone vgg19" in " ".join(_argv(gpu, "max_image_size"))
    # Per-case files never take the names of the saved results.
    assert {c["out"].name for c in gpu}.isdisjoint({"cpu_256.json", "cpu_audio_10s.json"})

    cpu = run_all.plan("cpu", args, tmp_path)
    assert [c["name"] for c in cpu] == ["image", "audio", "max_image_size"]  # no parity case on a CPU
    assert "--size 256 --steps 100" in " ".join(_argv(cpu, "image"))
    assert "--seconds 10 --steps 40" in " ".join(_argv(cpu, "audio"))
    assert cpu[-1]["skip"] == {"not measured": "needs a CUDA device"}
    assert {c["out"].name for c in cpu if "out" in c}.isdisjoint({"cpu_256.json", "cpu_audio_10s.json"})

    with_ttq = run_all.plan("cpu", run_all.parse_args(["--out-dir", "x", "--with-time-to-quality"]), tmp_path)
    assert "time_to_quality" in [c["name"] for c in with_ttq]
    tiled = run_all.plan("cpu", run_all.parse_args(["--out-dir", "x", "--with-tiled-memory"]), tmp_path)
    assert "--sizes 2048 4096 --memory-limit-gib 16" in " ".join(_argv(tiled, "tiled_memory"))
    quick = run_all.plan("cpu", run_all.parse_args(["--out-dir", "x", "--quick", "--skip", "audio"]), tmp_path)
    assert [c["name"] for c in quick] == ["image", "max_image_size"]
    assert "--size 48 --steps 2" in " ".join(_argv(quick, "image"))


# --------------------------------------------------------------------------- end to end

@pytest.mark.slow
def test_run_all_quick_on_cpu(tmp_path):
    # One intra-op thread: on a shared 2-core machine two threads can make these tiny runs 10x slower.
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, str(BENCH / "run_all.py"), "--device", "cpu", "--quick",
                           "--out-dir", str(tmp_path)], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads((tmp_path / "all.json").read_text())
    md = (tmp_path / "all.md").read_text()
    assert set(doc["cases"]) == {"image", "audio", "max_image_size"}
    assert doc["cases"]["max_image_size"]["result"] == {"not measured": "needs a CUDA device"}
    image = doc["cases"]["image"]["result"]
    h, w = image["settings"]["content_shape"]
    assert (image["settings"]["size"], image["settings"]["steps"], image["settings"]["backbone"]) == (48, 2, "vgg19")
    assert image["ours"]["flops_per_step"] == flops.vgg_step_flops(h, w, arch="vgg19")["per_step"]
    assert image["ours"]["achieved_tflops"] > 0
    assert image["ours"]["mfu"] is None and "CPU" in image["ours"]["mfu_unavailable"]
    audio = doc["cases"]["audio"]["result"]
    assert audio["settings"]["steps"] == 2 and audio["ours"]["steps"] == 2
    assert (tmp_path / "logs" / "image.log").read_text()
    rows = {r[1]: r for r in _rows(md)}
    assert rows["max_image_size"][11] == "not measured: needs a CUDA device"
    assert rows["image"][3] != DASH and rows["audio"][8] != DASH
    assert md == proc.stdout
    # The saved all.json renders to the same table.
    assert run_all.markdown_table(doc) == md


def test_markdown_table_time_to_quality():
    doc = {"benchmark": "time to quality: nst at its defaults vs the plain references at their fixed steps",
           "image": [{"size": 256, "reference": {"seconds": 150.0, "steps": 500}, "ours": {"seconds": 40.0, "steps": 140},
                      "speedup": 3.75, "metrics_vs_reference": {"ssim": {"ours": 0.3, "reference": 0.29}},
                      "target": {"speedup_at_least": 3.0, "met": True},
                      "at_reference_quality": {"step_cap": 50, "seconds": 10.0, "steps": 50, "speedup": 15.0,
                                               "metrics_vs_reference": {"ssim": {"ours": 0.5, "reference": 0.29}}}}],
           "audio": [{"seconds_of_audio": 10.0, "reference": {"seconds": 600.0, "steps": 300},
                      "ours": {"seconds": 200.0, "steps": 80}, "speedup": 3.0, "metrics_vs_reference": {},
                      "target": {"speedup_at_least": 5.0, "met": False}}]}
    assert run_all.case_kind(doc) == "time_to_quality"
    md = run_all.markdown_table(doc)
    assert "| image 256 px | 150.0 (500) | 40.0 (140) | 3.75 | ssim 0.3 / 0.29 | 3x: met |" in md
    assert "| audio 10.0 s | 600.0 (300) | 200.0 (80) | 3 | – | 5x: missed |" in md
    assert "| image 256 px, ours capped at 50 steps | – | 10.0 (50) | 15 | ssim 0.5 / 0.29 | 3x: met |" in md


def test_markdown_table_tiled_memory():
    doc = {"benchmark": "peak memory and seconds per step against picture size, untiled and tiled",
           "results": [{"size": 2048, "mode": "tiled", "tiles": [1024], "history": "fp32:100", "peak_bytes": 3 * 2**30,
                        "peak_added_bytes": 2 * 2**30, "estimated_bytes": 4 * 2**30, "seconds_per_step": 30.0,
                        "seconds_per_step_per_mpx": 7.15, "time_ratio_to_untiled": 1.4},
                       {"size": 4096, "mode": "untiled", "skipped": "estimated 70.3 GiB, 22.0 GiB available"}]}
    assert run_all.case_kind(doc) == "tiled_memory"
    md = run_all.markdown_table(doc)
    assert "| 2048 px | tiled | [1024] | fp32:100 | 3.00 GiB | 2.00 GiB | 4.00 GiB | 30 | 7.15 | 1.4 |" in md
    assert "| 4096 px | untiled | – | – | – | – | – | – | – | estimated 70.3 GiB, 22.0 GiB available |" in md


@pytest.mark.slow
def test_time_to_quality_step_caps_find_the_reference_quality(tmp_path):
    # Tiny and random-weighted: this checks the sweep's mechanics, not the figures.
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = tmp_path / "ttq.json"
    proc = subprocess.run([sys.executable, str(BENCH / "time_to_quality.py"), "--device", "cpu", "--precision", "fp32",
                           "--image-sizes", "48", "--image-steps", "4", "--image-step-caps", "3", "1",
                           "--audio-seconds", "--weights", "random", "--out", str(out)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    case = json.loads(out.read_text())["image"][0]
    caps = case["ours_by_step_cap"]
    assert [c["step_cap"] for c in caps] == [1, 3]  # cheapest first
    assert all(c["steps"] <= c["step_cap"] for c in caps)
    assert all(c["speedup"] == pytest.approx(case["reference"]["seconds"] / c["seconds"]) for c in caps)
    at = case["at_reference_quality"]
    good = [c for c in caps if all(m["within"] for m in c["metrics_vs_reference"].values())]
    assert at == (good[0] if good else None)
    for c in caps:
        for name, m in c["metrics_vs_reference"].items():
            assert m["ours"] == c["metrics"][name] and m["reference"] == case["reference"]["metrics"][name]
