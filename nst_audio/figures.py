"""Spectrogram figures (matplotlib, imported only when a figure is asked for)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Mapping

import torch
from torch import Tensor

from nst_core.errors import OutputError
from nst_core.fileio import atomic_path, check_output_path

FIGURE_FORMATS = (".png", ".pdf", ".svg", ".jpg", ".jpeg")


def check_figure_output(path: str | os.PathLike, inputs: Iterable[str | os.PathLike] = ()) -> Path:
    out = check_output_path(path, inputs)
    if out.suffix.lower() not in FIGURE_FORMATS:
        raise OutputError(f"cannot save a figure as {out.name}: end the name with one of {', '.join(FIGURE_FORMATS)}")
    return out


def spectrogram_figure(spectrograms: Mapping[str, Tensor], *, sample_rate: int, hop_length: int):
    """A matplotlib Figure of log-magnitude spectrograms ``(F, T)`` side by side, in the mapping's order.

    Time in seconds on x, frequency in kHz on y, one shared colour scale. The caller closes it.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(spectrograms)
    # One colour scale for all; the 99.5th percentile rather than the peak, so a few loud bins do not
    # leave the rest dark.
    vmax = max(float(torch.quantile(spectrograms[n].detach().float().flatten()[:4_000_000], 0.995)) for n in names)
    vmax = vmax if vmax > 0 else 1.0
    fig, axes = plt.subplots(1, len(names), figsize=(4.2 * len(names) + 1.0, 3.4), dpi=110, squeeze=False,
                             layout="constrained")
    for ax, name in zip(axes[0], names):
        s = spectrograms[name].detach().float().cpu().numpy()
        seconds = s.shape[1] * hop_length / sample_rate
        im = ax.imshow(s, origin="lower", aspect="auto", cmap="magma", vmin=0, vmax=vmax,
                       extent=(0, seconds, 0, sample_rate / 2000))
        ax.set_title(name)
        ax.set_xlabel("time (s)")
        ax.set_ylabel("frequency (kHz)")
    fig.colorbar(im, ax=axes[0].tolist(), label="log(1 + |STFT|)")
    return fig


def save_spectrogram_figure(spectrograms: Mapping[str, Tensor], path: str | os.PathLike, *, sample_rate: int,
                            hop_length: int, inputs: Iterable[str | os.PathLike] = ()) -> Path:
    """Draw log-magnitude spectrograms ``(F, T)`` side by side (content | style | result, those present).

    Time in seconds on x, frequency in kHz on y, one shared colour scale; written atomically.
    """
    import matplotlib.pyplot as plt

    out = check_figure_output(path, inputs)
    names = [n for n in ("content", "style", "result") if n in spectrograms]
    fig = spectrogram_figure({n: spectrograms[n] for n in names}, sample_rate=sample_rate, hop_length=hop_length)
    try:
        with atomic_path(out) as tmp:
            fig.savefig(tmp, format=out.suffix.lower().lstrip(".").replace("jpg", "jpeg"))
    except OSError as err:
        raise OutputError(f"cannot write {out} ({err.strerror or err})") from None
    finally:
        plt.close(fig)
    return out
