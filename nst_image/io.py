"""Image files to tensors and back.

``load_image`` turns any file Pillow reads into a ``(3, H, W)`` float32 RGB tensor in [0, 1];
``save_image`` writes one atomically, never over an input. ``resize_long_side`` and ``resize_to``
are the antialiased resizes used to bring content and style images to a working size.
Every failure a user can cause surfaces as ``InputError`` or ``OutputError`` with a one-line message.
"""

from __future__ import annotations

import io
import operator
import os
import struct
import warnings
import zlib
from pathlib import Path
from dataclasses import dataclass
from typing import Iterable

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps, UnidentifiedImageError
from torch import Tensor

from nst_core.errors import InputError, OutputError, one_line
from nst_core.fileio import atomic_path, check_output_path

try:  # Pillow can be built without LittleCMS; colour management is then skipped.
    from PIL import ImageCms
except ImportError:  # pragma: no cover - depends on the Pillow build
    ImageCms = None

__all__ = [
    "MIN_SIDE",
    "SAVE_FORMATS",
    "load_image",
    "resize_long_side",
    "resize_to",
    "save_image",
    "check_image_output",
    "to_pil",
    "ImageMetadata",
    "read_metadata",
    "srgb_to_profile",
]

MIN_SIDE = 16
"""Smallest accepted side in px: VGG's four 2x2 poolings leave a 1 px map at 16 px."""

SAVE_FORMATS = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".tif": "TIFF",
    ".tiff": "TIFF",
    ".webp": "WEBP",
}
"""Output extension (lower case) -> Pillow format name."""

_SAVE_OPTIONS = {"JPEG": {"quality": 95}, "WEBP": {"quality": 95}}
#: Formats that hold 16 bits per channel (``bit_depth=16``).
SIXTEEN_BIT_FORMATS = ("PNG", "TIFF")

# Pillow has no 16-bit-per-channel RGB mode: 16-bit grayscale PNG/TIFF/PGM open as one of these
# (PGM with maxval < 65535 is rescaled by Pillow to the full 16-bit range), 16-bit colour files
# are reduced to 8 bits by Pillow itself while decoding.
_SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")
_ALPHA_MODES = ("RGBA", "LA", "PA")
_PREMULTIPLIED_MODES = ("RGBa", "La")
_ICC_MODES = ("RGB", "RGBA", "CMYK")


# --------------------------------------------------------------------------------------- loading


def load_image(path: str | os.PathLike) -> Tensor:
    """Read an image file as an RGB tensor.

    Parameters
    ----------
    path : str or os.PathLike
        Any file Pillow can decode (PNG, JPEG, TIFF, WebP, GIF, BMP, PPM, ...). Only the first
        frame of a multi-frame file is read.

    Returns
    -------
    Tensor
        ``(3, H, W)`` float32 RGB in [0, 1], on the CPU, displayed the right way up (the EXIF
        orientation tag is applied, so ``H`` and ``W`` are the displayed height and width in px).

    Notes
    -----
    Colour images with an embedded ICC profile (RGB, RGBA, CMYK) are converted to sRGB when
    Pillow has LittleCMS; otherwise, and for other modes, Pillow's own conversion is used.
    Transparency (alpha, ``tRNS``, palette transparency) is composited over white. 16-bit
    grayscale (modes ``I;16*`` and ``I``) is divided by 65535 without passing through 8 bits;
    float images (mode ``F``) are clipped to [0, 1] if their maximum is at most 1, else divided
    by the maximum. Grayscale is replicated to three channels.

    Raises
    ------
    InputError
        The file is missing, a directory, empty, not an image, truncated or corrupt, larger than
        Pillow's decompression-bomb limit, or smaller than ``MIN_SIDE`` px on a side.
    """
    file = Path(path).expanduser()
    if not file.exists():
        raise InputError(f"image {file} not found; check the path")
    if file.is_dir():
        raise InputError(f"image {file} is a directory, not an image file; give the path of an image")
    try:
        if file.stat().st_size == 0:
            raise InputError(f"image {file} is empty (0 bytes); re-export or re-download it")
        with warnings.catch_warnings():
            # Above 89 Mpx Pillow warns in two lines (and refuses above 179 Mpx, reported below as one line).
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(file)
        with image:
            _check_min_side(image.size, file)
            if image.format == "PNG":
                _check_png_complete(file)
            # load() forces the full decode here, so a truncated file fails now with a clear
            # message instead of later; LOAD_TRUNCATED_IMAGES is deliberately left off.
            image.load()
            try:
                ImageOps.exif_transpose(image, in_place=True)
            except Exception:
                # A damaged EXIF block should not make a decodable image unreadable; the pixels
                # are kept as stored.
                pass
            array = _to_rgb_array(image, file)
    except InputError:
        raise
    except Image.DecompressionBombError as err:
        raise InputError(
            f"image {file} is too large to open safely ({one_line(err)}); downscale it first, or raise "
            "PIL.Image.MAX_IMAGE_PIXELS if you trust the file"
        ) from None
    except UnidentifiedImageError:
        raise InputError(
            f"image {file} is not an image Pillow can read (unknown format or not an image); "
            "convert it to PNG or JPEG"
        ) from None
    except PermissionError:
        raise InputError(f"image {file} cannot be read (permission denied); check its permissions") from None
    except MemoryError:
        raise InputError(f"image {file} is too large to decode in memory; downscale it first") from None
    except Exception as err:
        # Decoders report damage as OSError ("image file is truncated", "broken data stream"),
        # but some plugins raise ValueError, SyntaxError, EOFError or struct.error instead.
        reason = one_line(err) or type(err).__name__
        raise InputError(
            f"image {file} cannot be decoded ({reason}); the file may be truncated or corrupt, re-export it"
        ) from None
    return torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1)))


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}  # colour type -> samples per pixel
_ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))


def _png_expected_bytes(width: int, height: int, bit_depth: int, colour: int, interlaced: bool) -> int:
    """Bytes of the filtered scanlines a complete PNG of this header decompresses to."""
    bits = bit_depth * _PNG_CHANNELS.get(colour, 4)
    line = lambda w: 1 + (w * bits + 7) // 8 if w else 0  # noqa: E731 (a filter byte per row)
    if not interlaced:
        return height * line(width)
    total = 0
    for x0, y0, dx, dy in _ADAM7:
        w, h = max(0, (width - x0 + dx - 1) // dx), max(0, (height - y0 + dy - 1) // dy)
        total += h * line(w) if w else 0
    return total


def _check_png_complete(file: Path) -> None:
    """Refuse a PNG whose image data ends before its header's size: Pillow decodes such a file without a
    word and leaves the missing rows black. Reads the IDAT stream once, decompressing in bounded pieces."""
    with open(file, "rb") as f:
        if f.read(8) != _PNG_SIGNATURE:
            return
        expected, got = None, 0
        inflate = zlib.decompressobj()
        while True:
            head = f.read(8)
            if len(head) < 8:
                break
            length, kind = int.from_bytes(head[:4], "big"), head[4:]
            if kind == b"IHDR":
                data = f.read(length)
                width, height = int.from_bytes(data[0:4], "big"), int.from_bytes(data[4:8], "big")
                expected = _png_expected_bytes(width, height, data[8], data[9], data[12] == 1)
                f.seek(4, 1)
                continue
            if kind == b"IEND":
                break
            if kind != b"IDAT":
                f.seek(length + 4, 1)
                continue
            chunk = f.read(length)
            f.seek(4, 1)
            while chunk and not inflate.eof:
                try:
                    out = inflate.decompress(chunk, 1 << 20)
                except zlib.error:
                    return  # damaged data: Pillow's decoder reports it
                got += len(out)
                chunk = inflate.unconsumed_tail
            if expected is not None and got >= expected:
                return
    if expected is not None and got < expected:
        rows = f"{got / expected:.1%}" if expected else "none"
        raise InputError(f"image {file} is truncated or corrupt: its header promises {width}x{height} px but its data ends "
                         f"after {rows} of it; re-export or re-download it")


def _check_min_side(size: tuple[int, int], file: Path) -> None:
    width, height = size
    if min(width, height) < MIN_SIDE:
        raise InputError(
            f"image {file} is {width}x{height} px; both sides must be at least {MIN_SIDE} px, "
            "use a larger image"
        )


def _to_rgb_array(image: Image.Image, file: Path) -> np.ndarray:
    """Convert a loaded Pillow image to a ``(H, W, 3)`` float32 array in [0, 1]."""
    mode = image.mode
    if mode in _SIXTEEN_BIT_MODES:
        gray = np.asarray(image).astype(np.float32)
        transparent = image.info.get("transparency")
        if isinstance(transparent, int):
            gray[gray == transparent] = 65535.0  # tRNS key colour composited over white
        gray = np.clip(gray / 65535.0, 0.0, 1.0)
        return np.repeat(gray[..., None], 3, axis=2)
    if mode == "F":
        gray = np.asarray(image).astype(np.float32)
        finite = gray[np.isfinite(gray)]
        peak = float(finite.max()) if finite.size else 0.0
        gray = np.nan_to_num(gray, nan=0.0, posinf=peak, neginf=0.0)
        if peak > 1.0:
            gray = gray / peak
        gray = np.clip(gray, 0.0, 1.0)
        return np.repeat(gray[..., None], 3, axis=2)
    if mode in _PREMULTIPLIED_MODES:
        values = np.asarray(image).astype(np.float32) / 255.0
        color, alpha = values[..., :-1], values[..., -1:]
        rgb = np.clip(color + (1.0 - alpha), 0.0, 1.0)  # premultiplied "over" white
        return np.repeat(rgb, 3, axis=2) if rgb.shape[-1] == 1 else rgb
    image = _to_srgb(image)
    try:
        if image.mode in _ALPHA_MODES or "transparency" in image.info:
            rgba = np.asarray(image.convert("RGBA")).astype(np.float32) / 255.0
            alpha = rgba[..., 3:]
            return rgba[..., :3] * alpha + (1.0 - alpha)
        return np.asarray(image.convert("RGB")).astype(np.float32) / 255.0
    except ValueError:
        raise InputError(
            f"image {file} has pixel mode {image.mode!r}, which cannot be converted to RGB; convert it to PNG or JPEG"
        ) from None


def _to_srgb(image: Image.Image) -> Image.Image:
    """Apply an embedded ICC profile (RGB, RGBA, CMYK) so the pixels are sRGB; else return ``image``."""
    icc = image.info.get("icc_profile")
    if ImageCms is None or not icc or image.mode not in _ICC_MODES:
        return image
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        output_mode = "RGBA" if image.mode == "RGBA" else "RGB"
        converted = ImageCms.profileToProfile(image, source, ImageCms.createProfile("sRGB"), outputMode=output_mode)
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
        # A broken or unusual profile: fall back to Pillow's plain conversion rather than fail.
        return image
    return converted if converted is not None else image


# -------------------------------------------------------------------------------------- resizing


def resize_long_side(image: Tensor, size: int) -> Tensor:
    """Resize so the longer side is ``size`` px, keeping the aspect ratio.

    Parameters
    ----------
    image : Tensor
        ``(3, H, W)`` or ``(B, 3, H, W)`` floating-point image in [0, 1].
    size : int
        Target length of the longer side in px (>= 1). The shorter side becomes
        ``round(short * size / long)``, at least 1 px.

    Returns
    -------
    Tensor
        Same rank, device and dtype as ``image``; antialiased bicubic, clamped to [0, 1].
    """
    height, width = _spatial_size(image)
    try:
        size = operator.index(size)
    except TypeError:
        raise InputError(f"resize size must be a whole number of px, got {size!r}") from None
    if size < 1:
        raise InputError(f"resize size must be at least 1 px, got {size}")
    long_side = max(height, width)
    new_height = max(1, round(height * size / long_side))
    new_width = max(1, round(width * size / long_side))
    return resize_to(image, (new_height, new_width))


def resize_to(image: Tensor, size: tuple[int, int]) -> Tensor:
    """Resize to exactly ``size = (height, width)`` px.

    Parameters
    ----------
    image : Tensor
        ``(3, H, W)`` or ``(B, 3, H, W)`` floating-point image in [0, 1].
    size : tuple of int
        ``(height, width)`` in px, each >= 1.

    Returns
    -------
    Tensor
        ``(3, height, width)`` or ``(B, 3, height, width)``, same device and dtype as ``image``.
        Antialiased bicubic (``align_corners=False``), clamped to [0, 1] because bicubic overshoots
        at edges. A new tensor even when the size is unchanged.
    """
    _spatial_size(image)
    try:
        height, width = (operator.index(side) for side in size)
    except (TypeError, ValueError):
        raise InputError(f"resize size must be (height, width) in px, got {size!r}") from None
    if height < 1 or width < 1:
        raise InputError(f"resize size must be at least 1x1 px, got {height}x{width} (height x width)")
    batch = image if image.dim() == 4 else image.unsqueeze(0)
    if tuple(batch.shape[-2:]) == (height, width):
        resized = batch
    else:
        # Antialiased bicubic lacks kernels for some reduced precisions (fp16/bf16 on the CPU); use fp32.
        work = batch if batch.dtype in (torch.float32, torch.float64) else batch.float()
        resized = F.interpolate(work, size=(height, width), mode="bicubic", align_corners=False, antialias=True)
        resized = resized.to(image.dtype)
    resized = resized.clamp(0.0, 1.0)
    return resized if image.dim() == 4 else resized.squeeze(0)


def _spatial_size(image: Tensor) -> tuple[int, int]:
    if not isinstance(image, Tensor):
        raise TypeError(f"expected a torch.Tensor image, got {type(image).__name__}")
    if image.dim() not in (3, 4) or image.shape[-3] != 3:
        raise ValueError(f"expected an image of shape (3, H, W) or (B, 3, H, W), got {tuple(image.shape)}")
    if not image.is_floating_point():
        raise ValueError(f"expected a floating-point image in [0, 1], got dtype {image.dtype}")
    return int(image.shape[-2]), int(image.shape[-1])


# --------------------------------------------------------------------------------------- saving


def to_pil(image: Tensor) -> Image.Image:
    """Convert an image tensor to an 8-bit RGB Pillow image.

    Parameters
    ----------
    image : Tensor
        ``(3, H, W)`` or ``(1, 3, H, W)`` RGB in [0, 1], any device and floating dtype. Values
        outside [0, 1] are clamped, NaN becomes 0; ``image`` itself is not modified.

    Returns
    -------
    PIL.Image.Image
        Mode ``"RGB"``, size ``(W, H)``, each channel ``round(255 * value)``.
    """
    if not isinstance(image, Tensor):
        raise TypeError(f"expected a torch.Tensor image, got {type(image).__name__}")
    if image.dim() == 4 and image.shape[0] == 1:
        image = image[0]
    if image.dim() != 3 or image.shape[0] != 3:
        raise ValueError(f"expected an image of shape (3, H, W) or (1, 3, H, W), got {tuple(image.shape)}")
    values = torch.nan_to_num(image.detach().to("cpu", torch.float32), nan=0.0).clamp(0.0, 1.0)
    array = (values * 255.0).round().to(torch.uint8).permute(1, 2, 0).contiguous().numpy()
    return Image.fromarray(array)


def check_image_output(path: str | os.PathLike, inputs: Iterable[str | os.PathLike] = (), *,
                       bit_depth: int = 8) -> str:
    """Check before any work that ``path`` can take an image: a known extension, a writable folder, not an input,
    and a format that holds ``bit_depth`` (8, or 16 for PNG and TIFF).

    Returns the Pillow format name; raises OutputError otherwise.
    """
    check_output_path(path, inputs)
    suffix = Path(path).suffix.lower()
    image_format = SAVE_FORMATS.get(suffix)
    if image_format is None:
        supported = ", ".join(SAVE_FORMATS)
        shown = f"extension {suffix!r}" if suffix else "no extension"
        raise OutputError(f"cannot save {path}: {shown} is not supported; end the name with one of {supported}")
    if bit_depth not in (8, 16):
        raise OutputError(f"bit depth {bit_depth} is not supported; use 8 or 16")
    if bit_depth == 16 and image_format not in SIXTEEN_BIT_FORMATS:
        raise OutputError(f"cannot save {path} with 16 bits per channel: {image_format} holds 8; end the name "
                          ".png, .tif or .tiff, or use bit depth 8")
    return image_format


@dataclass(frozen=True)
class ImageMetadata:
    """What a result carries over from its content picture: the ICC profile of an RGB picture (the result is
    converted from sRGB into it when saved) and the EXIF block, its orientation set to normal (the pixels
    were turned upright when read)."""

    icc_profile: bytes | None = None
    exif: Image.Exif | None = None

    def exif_bytes(self) -> bytes | None:
        return self.exif.tobytes() if self.exif is not None else None


def read_metadata(path: str | os.PathLike) -> ImageMetadata:
    """The ICC profile (RGB pictures only: a CMYK or grey profile does not describe an RGB result) and EXIF of
    an image file; empty where it has none or they cannot be read."""
    try:
        with Image.open(Path(path).expanduser()) as image:
            icc = image.info.get("icc_profile") or None
            if icc is not None and (len(icc) < 20 or icc[16:20] != b"RGB "):
                icc = None
            exif = image.getexif()
            # Sub-IFDs (camera settings, GPS) are read lazily; read them while the file is open.
            subs = {tag: exif.get_ifd(tag) for tag in (0x8769, 0x8825)}
    except Exception:  # a picture that loaded but whose metadata is damaged: carry nothing
        return ImageMetadata()
    if not len(exif) and not any(subs.values()):
        return ImageMetadata(icc, None)
    out = Image.Exif()
    for tag, value in exif.items():
        if tag not in _TIFF_STRUCTURE_TAGS and tag not in (0x8769, 0x8825):
            out[tag] = value
    for tag, value in subs.items():
        if value:
            out[tag] = dict(value)
    out[0x0112] = 1  # orientation: normal, as the pixels now are
    return ImageMetadata(icc, out)


#: Tags describing a TIFF's own pixel layout, never copied from a picture's EXIF onto another picture.
_TIFF_STRUCTURE_TAGS = frozenset({254, 256, 257, 258, 259, 262, 273, 277, 278, 279, 284, 317, 322, 323, 324, 325,
                                  338, 339, 513, 514, 530, 531, 532})


# sRGB primaries adapted to the ICC's D50 (Bradford), as in the sRGB ICC profile: linear sRGB -> XYZ (D50).
_SRGB_TO_XYZ_D50 = np.array([[0.4360747, 0.3850649, 0.1430804],
                             [0.2225045, 0.7168786, 0.0606169],
                             [0.0139322, 0.0971045, 0.7141733]])


def _icc_tags(icc: bytes) -> dict[bytes, bytes]:
    (count,) = struct.unpack(">I", icc[128:132])
    tags = {}
    for i in range(count):
        sig, offset, size = struct.unpack(">4sII", icc[132 + 12 * i: 144 + 12 * i])
        tags[sig] = icc[offset: offset + size]
    return tags


def _s15(data: bytes, at: int, n: int) -> np.ndarray:
    return np.array(struct.unpack(f">{n}i", data[at: at + 4 * n]), dtype=np.float64) / 65536.0


def _trc(tag: bytes) -> "np.ndarray | None":
    """A tone curve sampled at 4096 points in [0, 1] (encoded -> linear), or None if not understood."""
    x = np.linspace(0.0, 1.0, 4096)
    kind = tag[:4]
    if kind == b"curv":
        (n,) = struct.unpack(">I", tag[8:12])
        if n == 0:
            return x
        if n == 1:
            return x ** (struct.unpack(">H", tag[12:14])[0] / 256.0)
        table = np.array(struct.unpack(f">{n}H", tag[12: 12 + 2 * n]), dtype=np.float64) / 65535.0
        return np.interp(x, np.linspace(0.0, 1.0, n), table)
    if kind == b"para":
        (fn,) = struct.unpack(">H", tag[8:10])
        count = {0: 1, 1: 3, 2: 4, 3: 5, 4: 7}.get(fn)
        if count is None:
            return None
        p = list(_s15(tag, 12, count)) + [0.0] * (7 - count)
        g, a, b, c, d, e, f = p
        if fn == 0:
            return x ** g
        if fn == 1:
            return np.where(x >= -b / a, np.maximum(a * x + b, 0) ** g, 0.0)
        if fn == 2:
            return np.where(x >= -b / a, np.maximum(a * x + b, 0) ** g + c, c)
        if fn == 3:
            return np.where(x >= d, np.maximum(a * x + b, 0) ** g, c * x)
        return np.where(x >= d, np.maximum(a * x + b, 0) ** g + e, c * x + f)
    return None


def _matrix_shaper(icc: bytes):
    """``(matrix linear RGB -> XYZ D50, three tone curves)`` of a matrix/TRC RGB profile, or None."""
    try:
        tags = _icc_tags(icc)
        cols = [tags[k] for k in (b"rXYZ", b"gXYZ", b"bXYZ")]
        curves = [_trc(tags[k]) for k in (b"rTRC", b"gTRC", b"bTRC")]
    except (KeyError, struct.error, ValueError, ZeroDivisionError):
        return None
    if any(c is None for c in curves) or any(col[:4] != b"XYZ " for col in cols):
        return None
    matrix = np.stack([_s15(col, 8, 3) for col in cols], axis=1)
    if abs(np.linalg.det(matrix)) < 1e-9:
        return None
    return matrix, curves


def srgb_to_profile(rgb: np.ndarray, icc: bytes) -> np.ndarray:
    """Convert ``(H, W, 3)`` sRGB values in [0, 1] into the RGB space of an ICC profile, in floating point.

    Matrix/TRC profiles (Adobe RGB, Display P3, ProPhoto, sRGB itself: what RGB working spaces are) are
    converted exactly, colorimetrically, through XYZ (D50) and the inverse of each tone curve, so 16-bit
    output keeps its precision; colours outside the profile's gamut are clipped. Other RGB profiles (lookup
    tables) go through LittleCMS on an 18-point grid of 8-bit colours, interpolated (about 1/255 accurate).
    """
    shaper = _matrix_shaper(icc)
    x = np.clip(rgb.astype(np.float64), 0.0, 1.0)
    if shaper is not None:
        matrix, curves = shaper
        linear = np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)
        out = np.clip(linear @ (np.linalg.inv(matrix) @ _SRGB_TO_XYZ_D50).T, 0.0, 1.0)
        grid = np.linspace(0.0, 1.0, 4096)
        for ch, curve in enumerate(curves):
            y = np.maximum.accumulate(curve)  # a curve's inverse needs it non-decreasing
            out[..., ch] = np.interp(out[..., ch], y, grid)
        return out.astype(np.float32)
    if ImageCms is None:
        raise OutputError("this picture's ICC profile needs LittleCMS, which this Pillow lacks; install a Pillow "
                          "built with it, or save without the profile")
    levels = np.arange(0, 256, 15)  # 18 exact 8-bit points: 0, 15, ..., 255
    cube = np.stack(np.meshgrid(levels, levels, levels, indexing="ij"), axis=-1).astype(np.uint8)
    grid_img = Image.fromarray(cube.reshape(18 * 18, 18, 3), "RGB")
    try:
        done = ImageCms.profileToProfile(grid_img, ImageCms.createProfile("sRGB"),
                                         ImageCms.ImageCmsProfile(io.BytesIO(icc)), outputMode="RGB")
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError) as err:
        raise OutputError(f"the content's ICC profile cannot be used ({one_line(err)}); save without it") from None
    lut = torch.from_numpy(np.asarray(done).reshape(18, 18, 18, 3).astype(np.float32) / 255.0)
    # grid_sample reads a (1, C, D, H, W) volume at (x, y, z) = (W, H, D) coordinates in [-1, 1].
    volume = lut.permute(3, 0, 1, 2).unsqueeze(0)  # C, R, G, B
    coords = torch.from_numpy(x.astype(np.float32)).flip(-1).mul(2).sub(1).view(1, -1, 1, 1, 3)
    out = F.grid_sample(volume, coords, mode="bilinear", align_corners=True)  # trilinear on a volume
    return out.view(3, -1).T.reshape(rgb.shape).numpy()


def _as_array(image: Tensor) -> np.ndarray:
    """``(H, W, 3)`` float32 array in [0, 1] from a ``(3, H, W)`` / ``(1, 3, H, W)`` tensor (NaN -> 0)."""
    if image.dim() == 4 and image.shape[0] == 1:
        image = image[0]
    if image.dim() != 3 or image.shape[0] != 3:
        raise ValueError(f"expected an image of shape (3, H, W) or (1, 3, H, W), got {tuple(image.shape)}")
    values = torch.nan_to_num(image.detach().to("cpu", torch.float32), nan=0.0).clamp(0.0, 1.0)
    return values.permute(1, 2, 0).contiguous().numpy()


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _write_png16(file, array: np.ndarray, icc: bytes | None, exif: bytes | None) -> None:
    """A 16-bit RGB PNG (colour type 2) with an iCCP and an eXIf chunk where given."""
    h, w, _ = array.shape
    file.write(_PNG_SIGNATURE)
    file.write(_png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0)))
    if icc:
        file.write(_png_chunk(b"iCCP", b"ICC profile\0\0" + zlib.compress(icc)))
    if exif:
        file.write(_png_chunk(b"eXIf", exif[6:] if exif.startswith(b"Exif\0\0") else exif))
    words = (array * 65535.0 + 0.5).astype(">u2")
    pack = zlib.compressobj(6)
    rows = max(1, (1 << 22) // (w * 6))
    for r in range(0, h, rows):  # filter type 0 (none) on each row, compressed a block of rows at a time
        block = words[r:r + rows].reshape(-1, w * 3).view(np.uint8)
        data = np.concatenate([np.zeros((block.shape[0], 1), np.uint8), block], axis=1)
        chunk = pack.compress(data.tobytes())
        if chunk:
            file.write(_png_chunk(b"IDAT", chunk))
    file.write(_png_chunk(b"IDAT", pack.flush()))
    file.write(_png_chunk(b"IEND", b""))


def _write_tiff16(file, array: np.ndarray, icc: bytes | None, exif: Image.Exif | None) -> None:
    """A 16-bit RGB TIFF (deflate strips, little-endian) with the ICC profile and EXIF (with its camera
    sub-IFD) where given. The directory is serialised by Pillow's TIFF tag writer, the pixels by numpy."""
    from PIL import TiffImagePlugin, TiffTags

    h, w, _ = array.shape
    words = (array * 65535.0 + 0.5).astype("<u2")
    rows = max(1, (1 << 20) // (w * 6))
    strips = [zlib.compress(words[r:r + rows].tobytes(), 6) for r in range(0, h, rows)]
    ifd = TiffImagePlugin.ImageFileDirectory_v2(prefix=b"II")
    if exif is not None:
        for tag, value in exif.items():
            if tag not in _TIFF_STRUCTURE_TAGS:
                ifd[tag] = exif.get_ifd(tag) if tag in (0x8769, 0x8825) and not isinstance(value, dict) else value
    for tag, typ, value in ((256, TiffTags.LONG, w), (257, TiffTags.LONG, h), (258, TiffTags.SHORT, (16, 16, 16)),
                            (259, TiffTags.SHORT, 8), (262, TiffTags.SHORT, 2), (277, TiffTags.SHORT, 3),
                            (278, TiffTags.LONG, rows), (284, TiffTags.SHORT, 1), (339, TiffTags.SHORT, (1, 1, 1)),
                            (273, TiffTags.LONG, tuple(int(v) for v in np.cumsum([0] + [len(b) for b in strips[:-1]]))),
                            (279, TiffTags.LONG, tuple(len(b) for b in strips))):
        ifd.tagtype[tag] = typ
        ifd[tag] = value
    if icc:
        ifd.tagtype[34675] = TiffTags.UNDEFINED
        ifd[34675] = icc
    file.write(b"II*\0" + struct.pack("<I", 8))
    file.write(ifd.tobytes(8))  # strip offsets are counted from the end of the directory and its data
    for strip in strips:
        file.write(strip)


def save_image(image: Tensor, path: str | os.PathLike, *, inputs: Iterable[str | os.PathLike] = (),
               bit_depth: int = 8, metadata: ImageMetadata | None = None) -> Path:
    """Write an image tensor to a file, atomically.

    Parameters
    ----------
    image : Tensor
        ``(3, H, W)`` or ``(1, 3, H, W)`` sRGB in [0, 1]; quantised to ``bit_depth`` bits
        (``round(v * (2**bits - 1))``).
    path : str or os.PathLike
        Output file; its extension (case-insensitive) picks the format, one of ``SAVE_FORMATS``.
        JPEG and WebP are written at quality 95.
    inputs : iterable of path-like, keyword-only
        Files this result was made from; ``path`` may not be one of them.
    bit_depth : 8 or 16
        Bits per channel; 16 for PNG and TIFF only.
    metadata : ImageMetadata, optional
        Carried into the file (:func:`read_metadata` of the content): with an ICC profile the pixels are
        converted from sRGB into it and the profile is embedded; the EXIF block is written as it is.

    Returns
    -------
    Path
        The path written. The file appears whole or not at all (written beside it, then renamed).

    Raises
    ------
    OutputError
        Unknown extension, a format that does not hold ``bit_depth``, ``path`` is an input or a directory, the
        folder is missing or not writable, or writing fails (disk full, size beyond the format's limit, ...).
    """
    image_format = check_image_output(path, inputs, bit_depth=bit_depth)
    out = Path(path).expanduser()
    meta = metadata or ImageMetadata()
    array = _as_array(image)
    if meta.icc_profile:
        array = srgb_to_profile(array, meta.icc_profile)
    try:
        with atomic_path(out) as tmp:
            if bit_depth == 16:
                with open(tmp, "wb") as f:
                    if image_format == "PNG":
                        _write_png16(f, array, meta.icc_profile, meta.exif_bytes())
                    else:
                        _write_tiff16(f, array, meta.icc_profile, meta.exif)
            else:
                picture = Image.fromarray((array * 255.0 + 0.5).astype(np.uint8), "RGB")
                extra = dict(_SAVE_OPTIONS.get(image_format, {}))
                if meta.icc_profile:
                    extra["icc_profile"] = meta.icc_profile
                if meta.exif is not None:
                    extra["exif"] = meta.exif_bytes()
                picture.save(tmp, format=image_format, **extra)
    except (OSError, ValueError, struct.error) as err:
        # ValueError: e.g. WebP refuses sides over 16383 px, JPEG over 65535 px.
        reason = one_line(getattr(err, "strerror", None) or err) or type(err).__name__
        raise OutputError(f"cannot write {out} ({reason}); check free space and the folder, or choose another path") from None
    return out
