"""Audio files to tensors and back.

``load_audio`` turns any file soundfile (libsndfile) or librosa reads -- WAV, FLAC, OGG/Vorbis,
MP3, ... at any sample rate, bit depth and channel count -- into an ``AudioClip`` holding a
``(C, N)`` float32 tensor in [-1, 1] at the working sample rate. ``save_audio`` writes WAV or FLAC
atomically, never over an input, scaling the clip down rather than clipping it.
Every failure a user can cause surfaces as ``InputError`` or ``OutputError`` with a one-line message.
"""

from __future__ import annotations

import gc
import math
import operator
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np
import soundfile as sf
import torch
import torchaudio.functional as AF
from torch import Tensor

from nst_core.errors import InputError, OutputError, one_line
from nst_core.fileio import atomic_path, check_output_path

__all__ = [
    "DEFAULT_SAMPLE_RATE",
    "SAVE_FORMATS",
    "SUBTYPES",
    "AudioClip",
    "load_audio",
    "is_silent",
    "check_audio_output",
    "save_audio",
]

DEFAULT_SAMPLE_RATE = 22050
"""Working sample rate in Hz (librosa's default): 11 kHz of bandwidth at half the cost of 44.1 kHz."""

SAVE_FORMATS = {".wav": "WAV", ".flac": "FLAC"}
"""Output extension (lower case) -> soundfile format name."""

SUBTYPES = ("PCM_16", "PCM_24", "FLOAT")
"""Sample encodings ``save_audio`` writes. FLAC stores integers only, so it takes PCM_16 and PCM_24."""

SAVE_PEAK = 0.999
"""Largest absolute sample written; louder clips are scaled down as a whole to this peak."""

# A sinc resampler's kernel has (new/g) x (orig/g + 2*width) taps for g = gcd(orig, new); odd rates
# (a 44101 Hz file, say) would need gigabytes, so those ratios go through soxr instead.
_MAX_RESAMPLE_KERNEL = 1_000_000


# ------------------------------------------------------------------------------------------ clip


@dataclass
class AudioClip:
    """A decoded audio signal.

    samples : Tensor
        ``(C, N)`` float32 in [-1, 1]: C channels of N samples each.
    sample_rate : int
        Samples per second per channel, in Hz.
    path : str or None
        The file it was read from, if any.
    """

    samples: Tensor
    sample_rate: int
    path: str | None = None

    @property
    def channels(self) -> int:
        """Number of channels C."""
        return int(self.samples.shape[0])

    @property
    def duration(self) -> float:
        """Length in seconds (N / sample_rate)."""
        return int(self.samples.shape[-1]) / self.sample_rate

    def mono(self) -> AudioClip:
        """A new clip with the channels averaged: samples ``(1, N)``, same rate and path."""
        return AudioClip(self.samples.mean(dim=0, keepdim=True), self.sample_rate, self.path)


# --------------------------------------------------------------------------------------- loading


def load_audio(
    path: str | os.PathLike,
    *,
    sample_rate: int | None = DEFAULT_SAMPLE_RATE,
    mono: bool = True,
    min_samples: int = 0,
) -> AudioClip:
    """Read an audio file as a float32 tensor at the working sample rate.

    Parameters
    ----------
    path : str or os.PathLike
        Any file libsndfile decodes (WAV, FLAC, OGG/Vorbis/Opus, MP3, AIFF, ...: 8/16/24/32-bit
        integer or 32/64-bit float samples, any channel count and sample rate); files it cannot
        open are tried with ``librosa.load`` (audioread) before giving up.
    sample_rate : int or None, keyword-only
        Rate in Hz to resample to (``torchaudio.functional.resample``, a windowed-sinc filter);
        ``None`` keeps the file's own rate. Default ``DEFAULT_SAMPLE_RATE`` (22050 Hz).
    mono : bool, keyword-only
        ``True`` (default) averages the channels into one; ``False`` keeps them all.
    min_samples : int, keyword-only
        Fewest samples per channel accepted *after* resampling (pass the STFT's ``n_fft``);
        default 0, which still refuses a file without samples.

    Returns
    -------
    AudioClip
        ``samples`` of shape ``(1, N)`` (``mono=True``) or ``(C, N)``, float32 in [-1, 1] on the
        CPU; ``sample_rate`` in Hz; ``path`` the file as given.

    Notes
    -----
    Integer files are scaled by libsndfile to [-1, 1) (8-bit unsigned WAV is centred first). A
    float file (or a resampled clip, whose sinc filter can overshoot) with a peak above 1 is
    scaled down as a whole to peak 1, never clipped, so its shape is kept.

    Raises
    ------
    InputError
        The file is missing, a directory, empty, not readable, not audio, truncated or corrupt,
        holds no samples or NaN/inf samples, or is shorter than ``min_samples``; or an argument is
        out of range.
    """
    file = Path(path).expanduser()
    target_rate = None if sample_rate is None else _positive_int(sample_rate, "sample_rate", "Hz")
    min_samples = _positive_int(min_samples, "min_samples", "samples", minimum=0)

    if not file.exists():
        raise InputError(f"audio file {file} not found; check the path")
    if file.is_dir():
        raise InputError(f"audio file {file} is a directory, not an audio file; give the path of an audio file")
    try:
        if file.stat().st_size == 0:
            raise InputError(f"audio file {file} is empty (0 bytes); re-export or re-download it")
        with open(file, "rb"):  # a clean PermissionError here instead of a libsndfile "System error"
            pass
        data, native_rate = _decode(file)
    except InputError:
        raise
    except PermissionError:
        raise InputError(f"audio file {file} cannot be read (permission denied); check its permissions") from None
    except MemoryError:
        raise InputError(f"audio file {file} is too large to decode in memory; cut it into shorter clips") from None
    except OSError as err:
        reason = one_line(err.strerror or err) or type(err).__name__
        raise InputError(f"audio file {file} cannot be read ({reason}); check the file and its folder") from None

    frames, channels = data.shape
    if frames == 0 or channels == 0:
        raise InputError(f"audio file {file} contains no samples; re-export it with some audio in it")
    finite = np.isfinite(data)
    if not finite.all():
        bad = int(data.size - np.count_nonzero(finite))
        first = float(np.argwhere(~finite)[0][0]) / native_rate
        raise InputError(
            f"audio file {file} has {bad} NaN or infinite samples (the first at {first:.3f} s); "
            "re-export it from the source, e.g. as 16-bit PCM WAV"
        )

    samples = torch.from_numpy(np.ascontiguousarray(data.T, dtype=np.float32))  # (C, N)
    if mono and samples.shape[0] > 1:
        samples = samples.mean(dim=0, keepdim=True)  # mix down first: resampling one channel is cheaper
    rate = native_rate
    if target_rate is not None and target_rate != native_rate:
        samples = _resample(samples, native_rate, target_rate)
        rate = target_rate
    peak = float(samples.abs().max()) if samples.numel() else 0.0
    if peak > 1.0:
        samples = samples / peak

    length = int(samples.shape[-1])
    if length == 0 or length < min_samples:
        raise InputError(
            f"audio file {file} is {length / rate:.3f} s long ({length} samples at {rate} Hz) but at least "
            f"{min_samples} samples ({min_samples / rate:.3f} s) are needed; use a longer clip or a smaller n_fft"
        )
    return AudioClip(samples.contiguous(), int(rate), str(file))


def _positive_int(value: object, name: str, unit: str, *, minimum: int = 1) -> int:
    try:
        number = operator.index(value)
    except TypeError:
        raise InputError(f"{name} must be a whole number of {unit}, got {value!r}") from None
    if number < minimum:
        raise InputError(f"{name} must be at least {minimum} {unit}, got {number}")
    return number


_SHORT_CHUNK = re.compile(r"^\s*(?:data|SSND)\s*:\s*(\d+)\s*\(should be (\d+)\)", re.MULTILINE)


def _check_complete(file: Path) -> None:
    """Refuse a WAV/AIFF file cut short: its header promises more sample bytes than the file holds.

    libsndfile reads what is there without a word, noting ``data : N (should be M)`` in its header dump;
    a streamed file's placeholder size (0 or 0xFFFFFFFF) is not a promise and passes.
    """
    try:
        with sf.SoundFile(file) as f:
            info, rate, channels, frames = f.extra_info, f.samplerate, f.channels, f.frames
            width = {"PCM_S8": 1, "PCM_U8": 1, "PCM_16": 2, "PCM_24": 3, "PCM_32": 4, "FLOAT": 4,
                     "DOUBLE": 8}.get(f.subtype)
    except Exception:
        return  # _decode reports files libsndfile cannot open
    m = _SHORT_CHUNK.search(info)
    if not m:
        return
    declared, present = int(m.group(1)), int(m.group(2))
    if declared in (0, 0xFFFFFFFF) or present >= declared:
        return
    promised = f"{declared / (width * channels * rate):.2f} s" if width else f"{declared} bytes"
    raise InputError(f"audio file {file} is truncated: its header promises {promised} of audio but the file holds "
                     f"{frames / rate:.2f} s; re-export or re-download it")


def _decode(file: Path) -> tuple[np.ndarray, int]:
    """Decode ``file`` to ``((N, C) float32 array, sample rate in Hz)``; InputError if nothing can read it."""
    _check_complete(file)
    try:
        data, rate = sf.read(file, dtype="float32", always_2d=True)
        return data, int(rate)
    except (sf.SoundFileError, RuntimeError, ValueError, TypeError, EOFError) as err:
        sf_error = err
    decoded = _decode_librosa(file)
    if decoded is not None:
        return decoded
    reason = _soundfile_reason(sf_error)
    if "format not recognised" in reason.lower() or "unknown format" in reason.lower():
        raise InputError(
            f"audio file {file} is not in an audio format soundfile or librosa can read ({reason}); "
            "convert it to WAV, FLAC, OGG or MP3"
        )
    raise InputError(
        f"audio file {file} cannot be decoded ({reason}); the file may be truncated or corrupt, re-export it"
    )


def _decode_librosa(file: Path) -> tuple[np.ndarray, int] | None:
    """Decode with ``librosa.load`` (audioread backends); ``None`` if it cannot either."""
    # Everything happens under one filter: audioread's import warns about deprecated stdlib modules,
    # librosa warns "PySoundFile failed. Trying audioread instead.", and audioread's raw backend
    # leaks its file handle when it fails (a ResourceWarning when the traceback is freed).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            import librosa

            y, rate = librosa.load(file, sr=None, mono=False, dtype=np.float32)
        except MemoryError:
            raise
        except Exception:
            # Its errors are uninformative here (an empty EOFError, NoBackendError); the caller
            # reports libsndfile's reason instead.
            y = None
        if y is None:
            gc.collect()  # finalise the leaked handle while its warning is still silenced
            return None
    y = np.asarray(y, dtype=np.float32)
    data = y[:, None] if y.ndim == 1 else y.T
    return data, int(rate)


def _soundfile_reason(err: BaseException) -> str:
    reason = getattr(err, "error_string", None) or str(err)
    reason = one_line(reason)
    # "Error opening 'x.wav': Format not recognised." -> the message names the file already.
    if reason.startswith("Error opening") and ": " in reason:
        reason = reason.split(": ", 1)[1]
    return reason.rstrip(".") or type(err).__name__


def _resample(samples: Tensor, orig_rate: int, new_rate: int) -> Tensor:
    """Resample ``(C, N)`` from ``orig_rate`` to ``new_rate`` Hz (windowed sinc, torchaudio's defaults)."""
    g = math.gcd(orig_rate, new_rate)
    orig, new = orig_rate // g, new_rate // g
    width = math.ceil(6 * orig / (0.99 * min(orig, new)))  # torchaudio's lowpass_filter_width=6, rolloff=0.99
    if new * (orig + 2 * width) <= _MAX_RESAMPLE_KERNEL:
        return AF.resample(samples, orig_rate, new_rate)
    try:  # soxr is librosa's resampler (a dependency of librosa >= 0.10); librosa.resample wraps it slowly on first use
        import soxr

        out = soxr.resample(samples.numpy().T, orig_rate, new_rate, quality="HQ").T
    except ImportError:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import librosa

            out = librosa.resample(samples.numpy(), orig_sr=orig_rate, target_sr=new_rate, res_type="soxr_hq", axis=-1)
    return torch.from_numpy(np.ascontiguousarray(out, dtype=np.float32))


def is_silent(samples: Tensor, *, threshold_db: float = -60.0) -> bool:
    """Whether a signal is silent: its peak is below ``threshold_db`` dBFS.

    samples : Tensor (or array) of any shape, full scale 1.0. An empty signal is silent; a signal
    with NaN is not (it is not known to be quiet).
    threshold_db : float, keyword-only
        Peak level in dB relative to full scale (default -60 dBFS, i.e. a peak of 0.001).
    """
    values = torch.as_tensor(samples).detach()
    if values.numel() == 0:
        return True
    peak = float(values.abs().max())
    if math.isnan(peak):
        return False
    return peak < 10.0 ** (threshold_db / 20.0)


# ---------------------------------------------------------------------------------------- saving


def check_audio_output(
    path: str | os.PathLike, inputs: Iterable[str | os.PathLike] = (), *, subtype: str | None = None
) -> str:
    """Check before any work that ``path`` can take audio: a writable folder, not an input, a known extension.

    With ``subtype`` also checks that the format can store that encoding (FLAC cannot store FLOAT).
    Returns the soundfile format name; raises OutputError otherwise.
    """
    check_output_path(path, inputs)
    suffix = Path(path).suffix.lower()
    audio_format = SAVE_FORMATS.get(suffix)
    if audio_format is None:
        supported = ", ".join(SAVE_FORMATS)
        shown = f"extension {suffix!r}" if suffix else "no extension"
        raise OutputError(f"cannot save {path}: {shown} is not supported for audio; end the name with one of {supported}")
    if subtype is not None:
        _check_subtype(path, audio_format, subtype)
    return audio_format


def _check_subtype(path: str | os.PathLike, audio_format: str, subtype: str) -> str:
    name = str(subtype).upper()
    if name not in SUBTYPES:
        raise OutputError(f"cannot save {path}: sample format {subtype!r} is not supported; use one of {', '.join(SUBTYPES)}")
    if audio_format == "FLAC" and name == "FLOAT":
        raise OutputError(
            f"cannot save {path}: FLAC cannot store FLOAT samples; use subtype PCM_16 or PCM_24, or save as .wav"
        )
    return name


def save_audio(
    samples: Tensor,
    path: str | os.PathLike,
    sample_rate: int,
    *,
    subtype: str = "PCM_16",
    inputs: Iterable[str | os.PathLike] = (),
) -> Path:
    """Write a signal to a WAV or FLAC file, atomically.

    Parameters
    ----------
    samples : Tensor
        ``(C, N)`` or ``(N,)`` floating point, full scale 1.0, any device. Not modified. If its
        peak exceeds ``SAVE_PEAK`` (0.999) the whole clip is scaled down to that peak: louder, never
        clipped.
    path : str or os.PathLike
        Output file; its extension (case-insensitive) picks the format, one of ``SAVE_FORMATS``.
    sample_rate : int
        In Hz.
    subtype : str, keyword-only
        One of ``SUBTYPES``: ``"PCM_16"`` (default), ``"PCM_24"``, or ``"FLOAT"`` (WAV only).
    inputs : iterable of path-like, keyword-only
        Files this result was made from; ``path`` may not be one of them.

    Returns
    -------
    Path
        The path written. The file appears whole or not at all (written beside it, then renamed).

    Raises
    ------
    OutputError
        Unknown extension or subtype, FLAC with FLOAT, NaN/inf samples, ``path`` is an input or a
        directory, the folder is missing or not writable, or writing fails (disk full, ...).
    """
    audio_format = check_audio_output(path, inputs)
    subtype = _check_subtype(path, audio_format, subtype)
    out = Path(path).expanduser()
    if not isinstance(samples, Tensor):
        raise TypeError(f"expected a torch.Tensor of samples, got {type(samples).__name__}")
    if samples.dim() not in (1, 2):
        raise ValueError(f"expected samples of shape (C, N) or (N,), got {tuple(samples.shape)}")
    if not samples.is_floating_point():
        raise ValueError(f"expected floating-point samples with full scale 1.0, got dtype {samples.dtype}")
    if samples.numel() == 0:
        raise ValueError(f"no samples to save, got shape {tuple(samples.shape)}")
    rate = operator.index(sample_rate)
    if rate < 1:
        raise ValueError(f"sample_rate must be at least 1 Hz, got {rate}")

    values = samples.detach().to("cpu", torch.float32)
    if values.dim() == 1:
        values = values.unsqueeze(0)
    if not bool(torch.isfinite(values).all()):
        raise OutputError(f"cannot save {out}: the audio has NaN or infinite samples; the result is broken, nothing was written")
    peak = float(values.abs().max())
    if peak > SAVE_PEAK:
        values = values * (SAVE_PEAK / peak)  # scale, never clip: clipping adds harmonics
    frames = values.T.contiguous().numpy()  # soundfile wants (N, C)

    try:
        with atomic_path(out) as tmp:
            sf.write(tmp, frames, rate, subtype=subtype, format=audio_format)
            # soundfile checks a short write with a bare assert (gone under -O); check the file instead.
            written = sf.info(tmp).frames
            if written != frames.shape[0]:
                raise OSError(f"only {written} of {frames.shape[0]} frames were written")
    except (OSError, sf.SoundFileError, RuntimeError, ValueError, AssertionError) as err:
        reason = one_line(getattr(err, "strerror", None) or getattr(err, "error_string", None) or err)
        reason = reason or ("short write" if isinstance(err, AssertionError) else type(err).__name__)
        raise OutputError(f"cannot write {out} ({reason}); check free space and the folder, or choose another path") from None
    return out
