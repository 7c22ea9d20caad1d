"""Output for print: 16-bit PNG and TIFF, and the content's ICC profile and EXIF carried into the result.

The files are read back by independent decoders (pypng, tifffile, Pillow, LittleCMS through Pillow's ImageCms),
not by our own writer's code."""

from __future__ import annotations

import io

import numpy as np
import png
import pytest
import tifffile
import torch
from PIL import Image, ImageCms

from nst_core.errors import OutputError
from nst_image.io import ImageMetadata, load_image, read_metadata, save_image, srgb_to_profile

from helpers import icc_profile


def picture(h: int = 37, w: int = 53, seed: int = 0) -> torch.Tensor:
    """Values on the 16-bit grid, with steps finer than 8 bits can hold."""
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, 65536, (3, h, w), generator=gen).float() / 65535.0


def test_16_bit_png_round_trips(tmp_path):
    img = picture()
    out = save_image(img, tmp_path / "r.png", bit_depth=16)
    w, h, rows, info = png.Reader(filename=str(out)).read()
    assert (w, h, info["bitdepth"], info["planes"]) == (53, 37, 16, 3)
    got = np.array([list(r) for r in rows], dtype=np.int64).reshape(h, w, 3)
    want = (img.permute(1, 2, 0).numpy() * 65535 + 0.5).astype(np.int64)
    assert np.array_equal(got, want)
    assert len(np.unique(got % 257)) > 100  # really 16 bits: not 8-bit values spread out
    with Image.open(out) as pil:  # and an ordinary reader opens it
        assert pil.size == (53, 37)


def test_16_bit_tiff_round_trips(tmp_path):
    img = picture(29, 70, seed=1)
    out = save_image(img, tmp_path / "r.tif", bit_depth=16)
    got = tifffile.imread(out)
    assert got.dtype == np.uint16 and got.shape == (29, 70, 3)
    want = (img.permute(1, 2, 0).numpy() * 65535 + 0.5).astype(np.uint16)
    assert np.array_equal(got, want)


def test_8_bit_output_is_unchanged_without_metadata(tmp_path):
    img = picture(20, 24, seed=2)
    out = save_image(img, tmp_path / "r.png")
    with Image.open(out) as pil:
        assert pil.mode == "RGB" and "icc_profile" not in pil.info
        assert np.array_equal(np.asarray(pil), (img.permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8))


def test_sixteen_bits_only_where_the_format_holds_them(tmp_path):
    with pytest.raises(OutputError, match="JPEG holds 8"):
        save_image(picture(), tmp_path / "r.jpg", bit_depth=16)
    with pytest.raises(OutputError, match="use 8 or 16"):
        save_image(picture(), tmp_path / "r.png", bit_depth=12)
    assert not list(tmp_path.iterdir())


def test_matrix_profile_conversion_agrees_with_littlecms():
    icc = icc_profile()
    levels = np.arange(0, 256, 5, dtype=np.uint8)
    cube = np.stack(np.meshgrid(levels, levels, levels, indexing="ij"), -1).reshape(-1, 1, 3)
    ours = srgb_to_profile(cube.astype(np.float32) / 255.0, icc)
    theirs = ImageCms.profileToProfile(Image.fromarray(cube, "RGB"), ImageCms.createProfile("sRGB"),
                                       ImageCms.ImageCmsProfile(io.BytesIO(icc)), outputMode="RGB",
                                       renderingIntent=ImageCms.Intent.RELATIVE_COLORIMETRIC)
    diff = np.abs(ours * 255 - np.asarray(theirs).astype(np.float64))
    assert diff.mean() < 0.6 and np.percentile(diff, 99) < 2.5  # LittleCMS works in 8 bits: its rounding
    assert np.abs(ours * 255 - cube).mean() > 3  # and the profile is not sRGB: the conversion did something


def test_lut_path_matches_the_matrix_path():
    """The grid path (for profiles that are not matrix/TRC) gives the exact path's values to about 1/255."""
    import nst_image.io as io_mod

    icc = icc_profile(gamma=1.8)
    x = np.random.default_rng(0).random((40, 40, 3)).astype(np.float32)
    exact = srgb_to_profile(x, icc)
    real = io_mod._matrix_shaper
    try:
        io_mod._matrix_shaper = lambda _icc: None
        grid = srgb_to_profile(x, icc)
    finally:
        io_mod._matrix_shaper = real
    assert np.abs(exact - grid).mean() < 2 / 255 and np.abs(exact - grid).max() < 8 / 255


def _content_with_metadata(path, icc: bytes | None):
    yy, xx = np.mgrid[0:40, 0:60] / 60.0  # smooth, so that JPEG's own loss stays small
    arr = (np.stack([xx, yy, 0.5 + 0.4 * np.sin(6 * xx + 3 * yy)], -1) * 230 + 10).astype(np.uint8)
    exif = Image.Exif()
    exif[0x010F] = "TestCam"  # Make
    exif[0x0110] = "Model 7"  # Model
    exif[0x0112] = 6  # orientation: rotated 90 degrees
    exif[0x8769] = {0x9003: "2026:01:02 03:04:05"}  # DateTimeOriginal, in the Exif sub-IFD
    kwargs = {"exif": exif.tobytes()}
    if icc:
        kwargs["icc_profile"] = icc
    Image.fromarray(arr).save(path, **kwargs)
    return arr


@pytest.mark.parametrize("suffix,bits", [(".png", 16), (".tif", 16), (".jpg", 8), (".png", 8), (".tif", 8)])
def test_icc_profile_and_exif_are_carried_over(tmp_path, suffix, bits):
    icc = icc_profile()
    content = tmp_path / "content.jpg"
    _content_with_metadata(content, icc)
    meta = read_metadata(content)
    assert meta.icc_profile == icc and meta.exif[0x0112] == 1
    srgb = load_image(content)  # upright (orientation 6 applied) and converted into sRGB
    assert srgb.shape == (3, 60, 40)
    out = save_image(srgb, tmp_path / f"result{suffix}", bit_depth=bits, metadata=meta)
    with Image.open(out) as pil:
        assert pil.info.get("icc_profile") == icc
        ex = pil.getexif()
        assert ex.get(0x010F) == "TestCam" and ex.get(0x0110) == "Model 7" and ex.get(0x0112) == 1
        assert ex.get_ifd(0x8769).get(0x9003) == "2026:01:02 03:04:05"
    # The pixels are in the profile's space: read back through the profile they are the sRGB values again.
    back = load_image(out)
    tolerance = 3 / 255 if suffix == ".jpg" else 1.5 / 255
    assert float((back - srgb).abs().mean()) < tolerance
    # ... while the same numbers read as sRGB would be visibly off (a profile ignored would pass the line above
    # only if the conversion were skipped on both sides).
    raw = srgb_to_profile(srgb.permute(1, 2, 0).numpy(), icc)
    assert float(np.abs(raw - srgb.permute(1, 2, 0).numpy()).mean()) > 3 / 255


def test_tiff_metadata_read_by_tifffile(tmp_path):
    icc = icc_profile()
    content = tmp_path / "content.png"
    _content_with_metadata(content, icc)
    out = save_image(load_image(content), tmp_path / "r.tif", bit_depth=16, metadata=read_metadata(content))
    with tifffile.TiffFile(out) as tf:
        page = tf.pages[0]
        assert page.iccprofile == icc
        assert page.tags["Make"].value == "TestCam" and page.tags["Orientation"].value == 1
        assert page.tags["ExifTag"].value["DateTimeOriginal"] == "2026:01:02 03:04:05"
        assert page.bitspersample == 16


def test_content_without_metadata_gives_none(tmp_path):
    p = tmp_path / "plain.png"
    Image.fromarray(np.zeros((20, 20, 3), np.uint8)).save(p)
    assert read_metadata(p) == ImageMetadata()
