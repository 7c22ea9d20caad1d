"""What a report embeds: pictures and sound as data URIs, spectrograms and loss curves drawn by matplotlib."""

from __future__ import annotations

import base64
import io
import math
from pathlib import Path
from typing import Mapping, Sequence

from nst_core import InputError

MAX_IMAGE_SIDE = 1024  # pictures are shown at most this many px on the long side
MAX_AUDIO_SECONDS = 60.0  # longer clips are embedded as their first minute
THUMBNAIL_SIDE = 256  # contact-sheet pictures: px on the long side
AUDIO_MIME = {".wav": "audio/wav", ".flac": "audio/flac", ".ogg": "audio/ogg", ".mp3": "audio/mpeg"}


def data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def image_uri(path: Path) -> tuple[str, dict]:
    """A PNG data URI of the picture (at most ``MAX_IMAGE_SIDE`` px long side) and its sizes."""
    from nst_image import load_image, to_pil

    try:
        img = to_pil(load_image(path))
    except InputError as err:
        raise InputError(f"cannot show {path} in the report: {err}") from None
    w, h = img.size
    if max(w, h) > MAX_IMAGE_SIDE:
        from PIL import Image

        s = MAX_IMAGE_SIDE / max(w, h)
        img = img.resize((max(1, round(w * s)), max(1, round(h * s))), Image.LANCZOS)
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=True)
    return data_uri(buf.getvalue(), "image/png"), {"width": w, "height": h, "shown": list(img.size)}


def thumbnail_uri(path: Path, *, max_side: int = THUMBNAIL_SIDE, quality: int = 85) -> tuple[str, dict]:
    """A JPEG data URI of the picture shrunk to at most ``max_side`` px on the long side, and its sizes.

    For contact sheets of many pictures: the demo pictures' 256 px JPEGs are 11-43 kB where ``image_uri``
    embeds 290-580 kB of PNG, so a page of a hundred jobs (three pictures each) stays around 10 MB.
    """
    from PIL import Image

    from nst_image import load_image, to_pil

    try:
        img = to_pil(load_image(path))
    except InputError as err:
        raise InputError(f"cannot show {path} in the report: {err}") from None
    w, h = img.size
    # thumbnail() keeps the aspect ratio and only ever shrinks; reducing_gap does the first halvings cheaply.
    img.thumbnail((max_side, max_side), Image.LANCZOS, reducing_gap=3.0)
    buf = io.BytesIO()
    # Full-resolution colour (4:4:4): 4:2:0 halves it, which smears a stylized result's colour edges at this
    # size; it costs about a third more bytes (measured on the demo pictures: 9.4 -> 12 kB at 256 px).
    img.convert("RGB").save(buf, format="JPEG", quality=quality, optimize=True, subsampling=0)
    return data_uri(buf.getvalue(), "image/jpeg"), {"width": w, "height": h, "shown": list(img.size)}


def audio_uri(path: Path, *, max_seconds: float = MAX_AUDIO_SECONDS) -> tuple[str, dict]:
    """A data URI the browser plays: a short FLAC, OGG or MP3 file as it is, anything else as FLAC
    (16-bit, at the file's own rate), clips longer than ``max_seconds`` cut to their start."""
    import soundfile as sf

    from nst_audio.io import load_audio

    mime = AUDIO_MIME.get(path.suffix.lower())
    try:
        info = sf.info(str(path))
        seconds = info.frames / info.samplerate
    except Exception:  # noqa: BLE001 - formats libsndfile cannot read are decoded below
        seconds = math.inf
    if mime and mime != "audio/wav" and seconds <= max_seconds:
        return data_uri(path.read_bytes(), mime), {"seconds": seconds, "excerpt": False}
    # WAV (and anything else) is embedded as FLAC: lossless, about half the size.
    try:
        clip = load_audio(path, sample_rate=None, mono=False)
    except InputError as err:
        raise InputError(f"cannot embed {path} in the report: {err}") from None
    rate = clip.sample_rate
    samples = clip.samples[:, : int(max_seconds * rate)].numpy().T
    buf = io.BytesIO()
    sf.write(buf, samples, rate, format="FLAC", subtype="PCM_16")
    total = clip.samples.shape[1] / rate
    return data_uri(buf.getvalue(), "audio/flac"), {"seconds": total, "excerpt": total > max_seconds}


def _png(fig) -> bytes:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    try:
        fig.savefig(buf, format="png")
    finally:
        plt.close(fig)
    return buf.getvalue()


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def spectrogram_png(clips: Mapping[str, Path], *, sample_rate: int, n_fft: int, hop_length: int,
                    window: str = "hann") -> bytes:
    """Log-magnitude spectrograms of the named clips side by side (mono mix, first minute)."""
    from nst_audio.figures import spectrogram_figure
    from nst_audio.io import load_audio
    from nst_audio.spectral import log_magnitude

    specs = {}
    for name, path in clips.items():
        try:
            clip = load_audio(path, sample_rate=sample_rate, mono=True, min_samples=n_fft)
        except InputError as err:
            raise InputError(f"cannot draw {path} in the report: {err}") from None
        specs[name] = log_magnitude(clip.samples[0, : int(MAX_AUDIO_SECONDS * sample_rate)],
                                    n_fft=n_fft, hop_length=hop_length, window=window)
    return _png(spectrogram_figure(specs, sample_rate=sample_rate, hop_length=hop_length))


_COLORS = {"image": ("#1f77b4", "#6baed6"), "audio": ("#d62728", "#fc9272")}
_EXTRA = ["#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]


def loss_curves_png(curves: Sequence[Mapping]) -> bytes:
    """Style loss (top, log scale) and content loss (bottom) of every run on one chart, each normalised,
    against step (left) and wall time (right).

    ``curves``: dicts with ``label``, ``modality``, ``step``, ``seconds``, ``content_norm``, ``style_norm``.
    Style loss falls by orders of magnitude, hence the log scale; content loss often starts at 0 (the
    optimization starts from the content) and rises, hence a linear scale.
    """
    plt = _pyplot()
    fig, axes = plt.subplots(2, 2, figsize=(12.5, 7.2), dpi=100, layout="constrained", sharex="col")
    used: dict[str, int] = {}
    for i, c in enumerate(curves):
        n = used.get(c["modality"], 0)
        used[c["modality"]] = n + 1
        color = _COLORS[c["modality"]][n] if n < 2 and c["modality"] in _COLORS else _EXTRA[i % len(_EXTRA)]
        for col, x in enumerate((c["step"], c["seconds"])):
            axes[0, col].plot(x, c["style_norm"], color=color, lw=1.8, label=c["label"])
            axes[1, col].plot(x, c["content_norm"], color=color, lw=1.6, label=c["label"])
    for col, xlabel in enumerate(("step", "wall time (s)")):
        axes[0, col].set_yscale("log")
        axes[0, col].set_ylabel("style loss / first value")
        axes[1, col].set_ylabel("content loss, normalised")
        axes[1, col].set_xlabel(xlabel)
        for ax in axes[:, col]:
            ax.grid(True, which="both", alpha=0.25)
    axes[0, 0].set_title("against step")
    axes[0, 1].set_title("against wall time")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="outside lower center", ncol=min(len(handles), 4), fontsize=9, frameon=False)
    return _png(fig)


def png_uri(data: bytes) -> str:
    return data_uri(data, "image/png")

