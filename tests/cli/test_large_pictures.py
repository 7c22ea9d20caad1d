"""Large pictures as a user meets them: --tile and its errors, --bit-depth 16 with the content's ICC profile and
EXIF carried into the result, the trace's record of the tiles."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import png
import pytest
import tifffile
from PIL import Image

from helpers import icc_profile
from nst_run import assert_one_line_error, run

FAST = ["--weights", "random", "--no-progress", "--device", "cpu", "--iterations", "2", "--precision", "fp32",
        "--content-layers", "relu2_2", "--style-layers", "relu1_1,relu2_1,relu3_1"]


@pytest.fixture
def content_with_metadata(tmp_path, demo_inputs):
    """The demo landscape as a JPEG with an ICC profile (a gamma-2.2 Adobe-like RGB) and EXIF."""
    src = Image.open(demo_inputs["content_landscape"]).convert("RGB").resize((96, 72))
    exif = Image.Exif()
    exif[0x010F] = "TestCam"
    exif[0x0112] = 1
    path = tmp_path / "content.jpg"
    src.save(path, exif=exif.tobytes(), icc_profile=icc_profile())
    return path


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_sixteen_bits_with_profile_and_exif(tmp_path, demo_inputs, content_with_metadata, capsys, suffix):
    out = tmp_path / f"out{suffix}"
    code, stdout, err = run(["image", content_with_metadata, demo_inputs["style_swirls"], "-o", out,
                             "--image-size", "96", "--bit-depth", "16", "--tile", "64", *FAST], capsys)
    assert code == 0, err
    if suffix == ".png":
        _w, _h, rows, info = png.Reader(filename=str(out)).read()
        assert info["bitdepth"] == 16
        values = np.array([list(r) for r in rows])
    else:
        values = tifffile.imread(out)
        assert values.dtype == np.uint16
    assert len(np.unique(values % 257)) > 50  # 16-bit values, not 8-bit ones spread out
    with Image.open(out) as pil:
        assert pil.info.get("icc_profile") == Image.open(content_with_metadata).info["icc_profile"]
        assert pil.getexif().get(0x010F) == "TestCam"
    trace = json.loads(out.with_name("out.trace.json").read_text())
    assert trace["tiles"] == [64] and "in tiles of 64 px" in trace["runs"][0]["segment"]


def test_bad_tile_and_bit_depth_are_one_line_errors(tmp_path, demo_inputs, capsys):
    c, s = demo_inputs["content_landscape"], demo_inputs["style_swirls"]
    cases = [(["--tile", "0"], "tile must be a whole number >= 16"),
             (["--tile", "64", "--style-layers", "relu5_1"], "smaller than the receptive field of relu5_1"),
             (["--bit-depth", "12"], "--bit-depth must be 8 or 16"),
             (["--bit-depth", "16", "-o", str(tmp_path / "out.jpg")], "JPEG holds 8")]
    for extra, message in cases:
        args = ["image", c, s, "-o", tmp_path / "out.png", "--image-size", "64", *FAST, *extra]
        code, _stdout, err = run(args, capsys)
        assert code in (2, 4), (extra, err)
        assert_one_line_error(code, err, message)
    assert not [p for p in Path(tmp_path).iterdir() if p.suffix in (".png", ".jpg", ".json")]
