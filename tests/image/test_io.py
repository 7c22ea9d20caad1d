"""Tests for nst_image.io: loading every pixel mode, resizing, and atomic, input-safe saving.

All images are made here with NumPy and Pillow; nothing is downloaded.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from PIL import Image, ImageCms

from nst_core.errors import InputError, OutputError
from nst_image.io import MIN_SIDE, SAVE_FORMATS, load_image, resize_long_side, resize_to, save_image, to_pil


def gradient_rgb(height: int = 40, width: int = 64) -> np.ndarray:
    """(H, W, 3) uint8 with a different smooth ramp per channel, so no rotation or flip maps it onto itself."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    red = 255 * x / (width - 1)
    green = 255 * y / (height - 1)
    blue = 255 * (0.25 + 0.5 * ((x + 2 * y) / (width + 2 * height)))
    return np.stack([red, green, blue], axis=-1).round().astype(np.uint8)


def noise_rgb(height: int = 64, width: int = 64, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def mode_of(path) -> str:
    with Image.open(path) as image:
        return image.mode


def as_hwc(tensor: torch.Tensor) -> np.ndarray:
    return tensor.permute(1, 2, 0).numpy()


# ----------------------------------------------------------------------------------- load: basics


def test_load_rgb_png_shape_dtype_range_and_values(tmp_path):
    source = gradient_rgb(40, 64)
    path = tmp_path / "rgb.png"
    Image.fromarray(source).save(path)
    image = load_image(str(path))  # str and PathLike are both accepted
    assert image.shape == (3, 40, 64)
    assert image.dtype == torch.float32
    assert 0.0 <= image.min().item() and image.max().item() <= 1.0
    np.testing.assert_array_equal(as_hwc(image), source.astype(np.float32) / 255)


def test_load_applies_exif_orientation(tmp_path):
    source = gradient_rgb(40, 64)
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation 6: the stored pixels must be turned 90 degrees clockwise to display
    path = tmp_path / "rotated.jpg"
    Image.fromarray(source).save(path, quality=95, exif=exif)
    image = as_hwc(load_image(path))
    assert image.shape == (64, 40, 3)
    expected = np.rot90(source, k=-1).astype(np.float32) / 255  # k=-1: clockwise
    assert np.abs(image - expected).mean() < 0.01
    assert np.abs(image - expected).max() < 0.08  # JPEG tolerance
    wrong_way = np.rot90(source, k=1).astype(np.float32) / 255
    assert np.abs(image - wrong_way).mean() > 0.1


# ----------------------------------------------------------------------------- load: pixel modes


def test_load_grayscale_replicates_channels(tmp_path):
    gray = gradient_rgb(32, 48)[..., 0]
    path = tmp_path / "gray.png"
    Image.fromarray(gray).save(path)
    image = load_image(path)
    assert image.shape == (3, 32, 48)
    for channel in image:
        np.testing.assert_array_equal(channel.numpy(), gray.astype(np.float32) / 255)


def test_load_one_bit_image(tmp_path):
    bits = np.zeros((20, 30), dtype=bool)
    bits[:, 15:] = True
    path = tmp_path / "bits.png"
    Image.fromarray(bits).save(path)
    assert mode_of(path) == "1"
    image = load_image(path)
    assert torch.all(image[:, :, :15] == 0) and torch.all(image[:, :, 15:] == 1)


def test_load_rgba_composites_over_white(tmp_path):
    rgba = np.zeros((20, 30, 4), dtype=np.uint8)
    rgba[..., :3] = (200, 40, 10)
    rgba[:, :10, 3] = 0  # fully transparent
    rgba[:, 10:20, 3] = 255  # opaque
    rgba[:, 20:, 3] = 51  # 20 % opaque
    path = tmp_path / "rgba.png"
    Image.fromarray(rgba).save(path)
    image = as_hwc(load_image(path))
    np.testing.assert_allclose(image[:, :10], 1.0, atol=1e-6)
    np.testing.assert_allclose(image[:, 10:20], np.broadcast_to([200 / 255, 40 / 255, 10 / 255], (20, 10, 3)), atol=1e-6)
    blended = 0.2 * np.array([200, 40, 10]) / 255 + 0.8
    np.testing.assert_allclose(image[:, 20:], np.broadcast_to(blended, (20, 10, 3)), atol=1e-6)


def test_load_gray_alpha_composites_over_white(tmp_path):
    la = np.zeros((20, 20, 2), dtype=np.uint8)
    la[..., 0] = 30
    la[:10, :, 1] = 255
    path = tmp_path / "la.png"
    Image.merge("LA", [Image.fromarray(la[..., 0]), Image.fromarray(la[..., 1])]).save(path)
    image = as_hwc(load_image(path))
    np.testing.assert_allclose(image[:10], 30 / 255, atol=1e-6)
    np.testing.assert_allclose(image[10:], 1.0, atol=1e-6)


def test_load_palette_with_and_without_transparency(tmp_path):
    source = np.zeros((20, 30, 3), dtype=np.uint8)
    source[:, :10] = (255, 0, 0)
    source[:, 10:20] = (0, 0, 255)
    source[:, 20:] = (0, 128, 0)
    palette = Image.fromarray(source).quantize(colors=3)
    assert palette.mode == "P"

    opaque_path = tmp_path / "palette.png"
    palette.save(opaque_path)
    np.testing.assert_array_equal(as_hwc(load_image(opaque_path)), source.astype(np.float32) / 255)

    red_index = palette.getpixel((0, 0))
    transparent_path = tmp_path / "palette.gif"
    palette.save(transparent_path, transparency=red_index)
    image = as_hwc(load_image(transparent_path))
    np.testing.assert_array_equal(image[:, :10], 1.0)  # the transparent red becomes white
    np.testing.assert_array_equal(image[:, 10:], source[:, 10:].astype(np.float32) / 255)


def test_load_cmyk(tmp_path):
    cmyk = np.zeros((20, 40, 4), dtype=np.uint8)
    cmyk[:, 10:20, 0] = 255  # cyan
    cmyk[:, 20:30, 3] = 255  # black
    cmyk[:, 30:, 2] = 255  # yellow
    path = tmp_path / "cmyk.tif"
    Image.frombytes("CMYK", (40, 20), cmyk.tobytes()).save(path)
    assert mode_of(path) == "CMYK"
    image = as_hwc(load_image(path))
    np.testing.assert_array_equal(image[0, 0], [1, 1, 1])  # no ink is white
    np.testing.assert_array_equal(image[0, 15], [0, 1, 1])
    np.testing.assert_array_equal(image[0, 25], [0, 0, 0])
    np.testing.assert_array_equal(image[0, 35], [1, 1, 0])


@pytest.mark.parametrize("mode", ["YCbCr", "HSV", "LAB"])
def test_load_other_colour_spaces_match_pillow_conversion(tmp_path, mode):
    converted = Image.fromarray(gradient_rgb(24, 32)).convert(mode)
    path = tmp_path / f"{mode}.tif"
    if mode == "HSV":  # no file format Pillow writes stores HSV; convert the decoded image directly
        from nst_image.io import _to_rgb_array

        array = _to_rgb_array(converted, path)
    else:
        converted.save(path)
        assert mode_of(path) == mode
        array = as_hwc(load_image(path))
    expected = np.asarray(converted.convert("RGB")).astype(np.float32) / 255
    np.testing.assert_allclose(array, expected, atol=1e-6)


def test_load_16bit_grayscale_png_keeps_precision(tmp_path):
    values = np.full((20, 20), 1000, dtype=np.uint16)
    values[:, 10:] = 1001  # 1/65535 apart: lost by any trip through 8 bits
    values[0, 0] = 65535
    path = tmp_path / "deep.png"
    Image.fromarray(values).save(path)
    assert mode_of(path) == "I;16"
    image = load_image(path)
    assert image.dtype == torch.float32
    assert abs(image[0, 5, 5].item() - 1000 / 65535) < 1e-7
    assert abs(image[2, 5, 15].item() - 1001 / 65535) < 1e-7
    assert image[:, 0, 0].tolist() == [1.0, 1.0, 1.0]


@pytest.mark.parametrize("dtype", ["<u2", ">u2"])
def test_load_16bit_tiff_keeps_precision(tmp_path, dtype):
    values = (np.arange(32 * 32, dtype=np.uint32).reshape(32, 32) * 64).astype(dtype)
    path = tmp_path / "deep.tif"
    Image.fromarray(values).save(path)
    assert mode_of(path) in ("I;16", "I;16B")
    image = load_image(path)
    np.testing.assert_allclose(image[1].numpy(), values.astype(np.float64) / 65535, atol=1e-7)


def test_load_16bit_pgm_mode_i(tmp_path):
    path = tmp_path / "deep.pgm"
    path.write_bytes(b"P5 20 20 65535\n" + np.full((20, 20), 1000, dtype=">u2").tobytes())
    assert mode_of(path) == "I"
    assert abs(load_image(path)[0, 3, 3].item() - 1000 / 65535) < 1e-7


@pytest.mark.parametrize("peak, scale", [(0.5, 1.0), (4.0, 4.0)])
def test_load_float_image_clips_or_scales_by_max(tmp_path, peak, scale):
    values = np.linspace(-0.5, peak, 20 * 20, dtype=np.float32).reshape(20, 20)
    path = tmp_path / "float.tif"
    Image.fromarray(values).save(path)
    assert mode_of(path) == "F"
    image = load_image(path)
    np.testing.assert_allclose(image[0].numpy(), np.clip(values / scale, 0, 1), atol=1e-6)


def test_load_converts_embedded_icc_profile_and_survives_a_broken_one(tmp_path):
    source = gradient_rgb(20, 20)
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    tagged, broken = tmp_path / "tagged.png", tmp_path / "broken.png"
    Image.fromarray(source).save(tagged, icc_profile=srgb)
    Image.fromarray(source).save(broken, icc_profile=b"not a profile")
    expected = source.astype(np.float32) / 255
    np.testing.assert_allclose(as_hwc(load_image(tagged)), expected, atol=1.5 / 255)
    np.testing.assert_array_equal(as_hwc(load_image(broken)), expected)


# ------------------------------------------------------------------------------ load: bad inputs


def _png_bytes(tmp_path, array) -> bytes:
    path = tmp_path / "source.png"
    Image.fromarray(array).save(path)
    return path.read_bytes()


def _make_bad_input(kind: str, tmp_path):
    path = tmp_path / f"{kind}.png"
    if kind == "missing":
        pass
    elif kind == "directory":
        path.mkdir()
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "truncated_png":
        data = _png_bytes(tmp_path, noise_rgb(64, 64))
        path.write_bytes(data[: len(data) // 2])
    elif kind == "truncated_jpeg":
        path = tmp_path / "truncated.jpg"
        Image.fromarray(noise_rgb(64, 64)).save(tmp_path / "full.jpg")
        data = (tmp_path / "full.jpg").read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif kind == "text":
        path.write_text("this is not an image\nsecond line\n")
    elif kind == "one_pixel":
        Image.fromarray(np.zeros((1, 1, 3), dtype=np.uint8)).save(path)
    elif kind == "too_narrow":
        Image.fromarray(np.zeros((200, 8, 3), dtype=np.uint8)).save(path)  # 8 px wide, 200 px tall
    return path


@pytest.mark.parametrize(
    "kind, fragments",
    [
        ("missing", ["not found"]),
        ("directory", ["directory"]),
        ("empty", ["empty"]),
        ("truncated_png", ["truncated or corrupt"]),
        ("truncated_jpeg", ["truncated or corrupt"]),
        ("text", ["not an image"]),
        ("one_pixel", ["1x1", str(MIN_SIDE)]),
        ("too_narrow", ["8x200", str(MIN_SIDE)]),
    ],
)
def test_load_bad_input_raises_one_line_input_error(tmp_path, kind, fragments):
    path = _make_bad_input(kind, tmp_path)
    with pytest.raises(InputError) as caught:
        load_image(path)
    message = str(caught.value)
    assert "\n" not in message and message.strip() == message
    assert str(path) in message
    for fragment in fragments:
        assert fragment in message
    error = caught.value  # no chained PIL/OSError traceback shown under the message
    assert error.__cause__ is None and (error.__context__ is None or error.__suppress_context__)


def test_load_decompression_bomb_raises_input_error(tmp_path, monkeypatch):
    path = tmp_path / "big.png"
    Image.fromarray(gradient_rgb(64, 64)).save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # 4096 px > 2 * 100: Pillow's hard limit
    with pytest.raises(InputError, match="too large") as caught:
        load_image(path)
    assert "\n" not in str(caught.value)


# ------------------------------------------------------------------------------------- resizing


@pytest.mark.parametrize(
    "shape, size, expected",
    [
        ((3, 40, 80), 20, (3, 10, 20)),  # landscape
        ((3, 80, 40), 20, (3, 20, 10)),  # portrait
        ((3, 30, 30), 64, (3, 64, 64)),  # square, upscaled
        ((2, 3, 40, 80), 20, (2, 3, 10, 20)),  # batch rank kept
        ((3, 400, 2), 20, (3, 20, 1)),  # short side never below 1 px
        ((3, 33, 100), 50, (3, 16, 50)),  # 16.5 rounds to even
    ],
)
def test_resize_long_side_sizes(shape, size, expected):
    image = torch.rand(shape, generator=torch.Generator().manual_seed(0))
    result = resize_long_side(image, size)
    assert tuple(result.shape) == expected
    assert result.dtype == image.dtype
    assert 0.0 <= result.min().item() and result.max().item() <= 1.0  # bicubic overshoot is clamped


def test_resize_batch_equals_items_and_leaves_input_unchanged():
    batch = torch.rand(3, 3, 48, 64, generator=torch.Generator().manual_seed(1))
    before = batch.clone()
    resized = resize_long_side(batch, 32)
    for item, expected in zip(batch, resized):
        torch.testing.assert_close(resize_long_side(item, 32), expected)
    torch.testing.assert_close(batch, before, rtol=0, atol=0)


def test_resize_to_exact_size_and_identity():
    image = torch.rand(3, 20, 30, generator=torch.Generator().manual_seed(2))
    assert tuple(resize_to(image, (7, 41)).shape) == (3, 7, 41)
    same = resize_to(image, (20, 30))
    torch.testing.assert_close(same, image, rtol=0, atol=0)
    assert same.data_ptr() != image.data_ptr()


def test_resize_preserves_a_constant_image():
    image = torch.full((3, 50, 70), 0.25)
    torch.testing.assert_close(resize_long_side(image, 23), torch.full((3, 16, 23), 0.25))


@pytest.mark.parametrize("size", [0, -5, 2.5])
def test_resize_long_side_rejects_bad_size(size):
    with pytest.raises(InputError):
        resize_long_side(torch.rand(3, 20, 20), size)


def test_resize_rejects_bad_shape():
    with pytest.raises(ValueError):
        resize_long_side(torch.rand(20, 20), 10)
    with pytest.raises(ValueError):
        resize_to(torch.rand(1, 4, 20, 20), (10, 10))


# --------------------------------------------------------------------------------------- to_pil


def test_to_pil_rounds_and_clamps():
    image = torch.tensor([-0.3, 0.5, 1.7, 100 / 255 + 0.4 / 255]).reshape(1, 1, 4).expand(3, 1, 4)
    picture = to_pil(image)
    assert picture.mode == "RGB" and picture.size == (4, 1)
    np.testing.assert_array_equal(np.asarray(picture)[0, :, 0], [0, 128, 255, 100])
    np.testing.assert_array_equal(np.asarray(to_pil(image.unsqueeze(0))), np.asarray(picture))


# --------------------------------------------------------------------------------------- saving


def _tensor_from_uint8(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(array.astype(np.float32) / 255).permute(2, 0, 1)


@pytest.mark.parametrize("suffix", sorted(SAVE_FORMATS))
def test_save_round_trips_every_format(tmp_path, suffix):
    source = gradient_rgb(48, 64)
    image = _tensor_from_uint8(source)
    path = tmp_path / f"out{suffix}"
    written = save_image(image, path)
    assert written == path and path.is_file()
    with Image.open(path) as check:
        assert check.format == SAVE_FORMATS[suffix]
    loaded = load_image(path)
    assert loaded.shape == image.shape
    if SAVE_FORMATS[suffix] in ("PNG", "TIFF"):  # lossless
        torch.testing.assert_close(loaded, image, rtol=0, atol=0)
    else:
        error = (loaded - image).abs()
        assert error.mean().item() < 0.01 and error.max().item() < 0.1


def test_save_extension_is_case_insensitive(tmp_path):
    path = save_image(_tensor_from_uint8(gradient_rgb(20, 20)), tmp_path / "OUT.PNG")
    with Image.open(path) as check:
        assert check.format == "PNG"


def test_save_is_atomic_and_leaves_no_temporary_files(tmp_path):
    image = _tensor_from_uint8(gradient_rgb(20, 20))
    save_image(image, tmp_path / "out.png")
    save_image(image, tmp_path / "out.png")  # replacing an earlier result is allowed
    assert sorted(os.listdir(tmp_path)) == ["out.png"]


def test_save_write_error_becomes_output_error_and_leaves_nothing(tmp_path, monkeypatch):
    previous = tmp_path / "out.png"
    previous.write_bytes(b"previous result")

    def failing_save(self, fp, format=None, **params):
        with open(fp, "wb") as file:  # a partial write, as when the disk fills up mid-file
            file.write(b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", failing_save)
    with pytest.raises(OutputError, match="No space left on device") as caught:
        save_image(_tensor_from_uint8(gradient_rgb(20, 20)), previous)
    assert "\n" not in str(caught.value)
    assert sorted(os.listdir(tmp_path)) == ["out.png"]
    assert previous.read_bytes() == b"previous result"


def test_save_refuses_to_overwrite_an_input(tmp_path):
    path = tmp_path / "content.png"
    Image.fromarray(gradient_rgb(20, 20)).save(path)
    original = path.read_bytes()
    with pytest.raises(OutputError, match="input"):
        save_image(torch.zeros(3, 20, 20), path, inputs=[tmp_path / "style.png", str(path)])
    assert path.read_bytes() == original
    assert sorted(os.listdir(tmp_path)) == ["content.png"]


def test_save_into_missing_folder_raises_output_error(tmp_path):
    with pytest.raises(OutputError, match="does not exist"):
        save_image(torch.zeros(3, 20, 20), tmp_path / "missing" / "out.png")
    assert not (tmp_path / "missing").exists()


@pytest.mark.parametrize("name", ["out.bmp", "out", "out.png.txt"])
def test_save_unknown_extension_raises_output_error(tmp_path, name):
    with pytest.raises(OutputError) as caught:
        save_image(torch.zeros(3, 20, 20), tmp_path / name)
    message = str(caught.value)
    assert "\n" not in message
    for suffix in SAVE_FORMATS:
        assert suffix in message
    assert os.listdir(tmp_path) == []
