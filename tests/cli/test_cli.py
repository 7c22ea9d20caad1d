"""The `nst` command end to end, and every bad input the image issue lists: one line, non-zero exit, nothing lost."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from nst_run import assert_one_line_error, run

FAST = ["--weights", "random", "--image-size", "32", "--iterations", "3", "--no-progress", "--device", "cpu"]


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def images(tmp_path, demo_inputs):
    content = tmp_path / "content.png"
    style = tmp_path / "style.png"
    style2 = tmp_path / "style2.jpg"
    shutil.copy(demo_inputs["content_landscape"], content)
    shutil.copy(demo_inputs["style_mosaic"], style)
    Image.open(demo_inputs["style_swirls"]).convert("RGB").save(style2)
    return content, style, style2


def test_image_end_to_end_writes_result_and_trace(images, tmp_path, capsys):
    content, style, style2 = images
    out = tmp_path / "out.png"
    code, stdout, err = run(["image", content, style, style2, "--style-blend-weights", "0.7,0.3",
                             "--original-colors", "--save-every", "2", "-o", out, *FAST], capsys)
    assert code == 0, err
    assert Image.open(out).size == (32, 24)
    assert (tmp_path / "out_0002.png").exists()
    doc = json.loads((tmp_path / "out.trace.json").read_text())
    assert doc["settings"]["style_blend_weights"] == [0.7, 0.3]
    assert doc["settings"]["original_colors"] == "chroma"
    assert len(doc["runs"][0]["trace"]["total"]) == 3
    assert "wrote" in stdout and "RANDOM" in err  # says which weights it used


@pytest.mark.pretrained
def test_image_with_pretrained_weights_and_jpeg_output(images, tmp_path, capsys, hed_extractor):
    content, style, _ = images
    out = tmp_path / "result.jpg"
    code, stdout, err = run(["image", content, style, "-o", out, "--weights", "vgg16-hed", "--image-size", "48",
                             "--iterations", "10", "--no-progress", "--luminance-only", "--device", "cpu"], capsys)
    assert code == 0, err
    assert Image.open(out).format == "JPEG"
    assert "VGG-16 offline weights" in err


def test_entry_point_subprocess_has_no_traceback(tmp_path):
    """The installed console script itself: bad input, exit code, stderr one line."""
    proc = subprocess.run([sys.executable, "-m", "nst_cli", "image", str(tmp_path / "nope.png"),
                           str(tmp_path / "nope2.png"), "-o", str(tmp_path / "o.png")],
                          capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "not found" in proc.stderr and "Traceback" not in proc.stderr


def _bad_files(tmp_path):
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    text = tmp_path / "notes.png"
    text.write_text("this is not an image\n")
    good = tmp_path / "good.png"
    Image.fromarray((np.random.default_rng(0).random((64, 64, 3)) * 255).astype("uint8")).save(good)
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(good.read_bytes()[: len(good.read_bytes()) // 2])
    tiny = tmp_path / "tiny.png"
    Image.new("RGB", (1, 1), (10, 20, 30)).save(tiny)
    folder = tmp_path / "folder.png"
    folder.mkdir()
    return {"missing": (tmp_path / "missing.png", "not found"), "directory": (folder, "directory"),
            "empty": (empty, "empty"), "text": (text, "not"), "truncated": (truncated, "truncated"),
            "tiny": (tiny, "1x1")}


@pytest.mark.parametrize("kind", ["missing", "directory", "empty", "text", "truncated", "tiny"])
@pytest.mark.parametrize("role", ["content", "style"])
def test_bad_image_inputs(kind, role, images, tmp_path, capsys):
    content, style, _ = images
    bad, needle = _bad_files(tmp_path)[kind]
    out = tmp_path / "out.png"
    args = [bad, style] if role == "content" else [content, bad]
    before = {p: _digest(p) for p in (content, style)}
    code, _, err = run(["image", *args, "-o", out, *FAST], capsys)
    assert_one_line_error(code, err, needle)
    assert not out.exists() and not (tmp_path / "out.trace.json").exists()
    assert {p: _digest(p) for p in (content, style)} == before


@pytest.mark.parametrize("args,needle", [
    (["--image-size", "0"], "--image-size"),
    (["--image-size", "100000"], "would need about"),
    (["--image-size", "large"], "whole number of px or auto"),
    (["--style-blend-weights", "0.5,0.3,0.2"], "3 style blend weights"),
    (["--style-blend-weights", "a,b"], "comma-separated"),
    (["--style-blend-weights", "nan"], "finite"),
    (["--iterations", "0"], "--iterations"),
    (["--optimizer", "sgd"], "--optimizer"),
    (["--style-layers", "relu9_1"], "relu9_1"),
    (["--device", "cuda"], "cuda"),
    (["--precision", "tf32"], "tf32"),
])
def test_bad_options(args, needle, images, tmp_path, capsys):
    if args == ["--device", "cuda"] and torch.cuda.is_available():
        pytest.skip("a CUDA device exists here")
    content, style, _ = images
    out = tmp_path / "out.png"
    opts = FAST.copy()
    if args[0] in opts:  # the bad value replaces the fast default
        i = opts.index(args[0])
        del opts[i:i + 2]
    code, _, err = run(["image", content, style, "-o", out, *opts, *args], capsys)
    assert_one_line_error(code, err, needle)
    assert not out.exists()


def _weights_files(tmp_path):
    missing = tmp_path / "nothere.pth"
    corrupt = tmp_path / "corrupt.pth"
    corrupt.write_bytes(np.random.default_rng(1).bytes(4096))
    wrong = tmp_path / "wrong.pth"
    import torchvision

    sd = torchvision.models.vgg16(weights=None).features.state_dict()
    sd = {f"features.{k}": v for k, v in sd.items()}
    sd["features.5.weight"] = torch.zeros(128, 64, 5, 5)
    torch.save(sd, wrong)
    return {"missing": (missing, "not found"), "corrupt": (corrupt, "cannot be read"), "wrong": (wrong, "shape")}


@pytest.mark.parametrize("kind", ["missing", "corrupt", "wrong"])
def test_bad_weights_files(kind, images, tmp_path, capsys):
    content, style, _ = images
    path, needle = _weights_files(tmp_path)[kind]
    out = tmp_path / "out.png"
    opts = [o for o in FAST if o not in ("--weights", "random")]
    code, _, err = run(["image", content, style, "-o", out, "--weights", path, *opts], capsys)
    assert_one_line_error(code, err, needle)
    assert not out.exists()


def test_output_equal_to_input_is_refused(images, tmp_path, capsys):
    content, style, _ = images
    before = _digest(style)
    code, _, err = run(["image", content, style, "-o", style, *FAST], capsys)
    assert_one_line_error(code, err, "is also an input")
    assert _digest(style) == before


def test_unwritable_output(images, tmp_path, capsys):
    content, style, _ = images
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    for out, needle in ((tmp_path / "no" / "such" / "dir" / "out.png", "does not exist"),
                        (blocker / "out.png", "does not exist"),
                        (tmp_path, "is a directory"),
                        (tmp_path / "out.bmpx", "not supported")):
        code, _, err = run(["image", content, style, "-o", out, *FAST], capsys)
        assert_one_line_error(code, err, needle)


def test_existing_output_is_replaced_atomically(images, tmp_path, capsys):
    content, style, _ = images
    out = tmp_path / "out.png"
    out.write_bytes(b"old")
    code, _, err = run(["image", content, style, "-o", out, *FAST], capsys)
    assert code == 0, err
    assert Image.open(out).size == (32, 24)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.")]


def test_weights_list_and_help(capsys):
    code, out, _ = run(["weights", "list"], capsys)
    assert code == 0 and "vgg16-hed" in out
    code, out, _ = run(["image", "--help"], capsys)
    assert code == 0 and "--style-blend-weights" in out and "--original-colors" in out
