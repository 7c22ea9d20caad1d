"""Objective measures of how an audio style transfer result relates to its content and style inputs.

Pure functions returning Python floats; nothing is cached on disk and nothing is printed.

Inputs are of two kinds:

* **spectrograms**: log1p-magnitude spectrograms, the pipeline's signal, ``(F, T)`` or ``(1, F, T)``
  (NumPy arrays or tensors), ``F`` frequency bins by ``T`` frames;
* **waveforms**: mono, 1-D (or ``(1, N)``) NumPy arrays or tensors of samples, with ``sample_rate`` in Hz.

=====================  ============================================================  ==============
function               what it measures                                              unit, range
=====================  ============================================================  ==============
gram_distance          style (texture) distance under an independent random CNN      relative, >= 0
mfcc_stats_distance    timbre: Frechet distance of Gaussians fitted to MFCCs 1..n-1  MFCC units
log_spectral_distance  frame-wise spectral difference                                dB, >= 0
chroma_correlation     harmonic / melodic content                                    [-1, 1]
onset_correlation      rhythm                                                        [-1, 1]
=====================  ============================================================  ==============
"""

from __future__ import annotations

from functools import lru_cache
from typing import Union

import librosa
import numpy as np
import torch
from torch import Tensor

from nst_core import gram_loss, gram_matrix

from .extractors import RandomCNN

__all__ = ["chroma_correlation", "gram_distance", "log_spectral_distance", "mfcc_stats_distance",
           "onset_correlation"]

ArrayLike = Union[np.ndarray, Tensor]

#: Seed of the measuring network in :func:`gram_distance`; deliberately not the optimizer's default (0),
#: so the metric is not the very loss the result was optimized for.
METRIC_SEED = 12345


def _spectrogram(x: ArrayLike, name: str) -> Tensor:
    """(F, T) or (1, F, T) array or tensor -> detached float32 (F, T) tensor on its device."""
    t = x.detach() if isinstance(x, Tensor) else torch.as_tensor(np.asarray(x))
    if t.dim() == 3 and t.shape[0] == 1:
        t = t[0]
    if t.dim() != 2:
        raise ValueError(f"{name} must be a (F, T) or (1, F, T) spectrogram, got shape {tuple(t.shape)}")
    if t.shape[0] < 1 or t.shape[1] < 1:
        raise ValueError(f"{name} is empty (shape {tuple(t.shape)})")
    return t.float()


def _pair(spec_a: ArrayLike, spec_b: ArrayLike) -> tuple[Tensor, Tensor]:
    a, b = _spectrogram(spec_a, "spec_a"), _spectrogram(spec_b, "spec_b")
    if a.shape[0] != b.shape[0]:
        raise ValueError(f"the spectrograms have different frequency bins, {a.shape[0]} vs {b.shape[0]}; "
                         f"analyse both with the same n_fft")
    return a, b.to(a.device)


def _waveform(x: ArrayLike, name: str) -> np.ndarray:
    y = x.detach().cpu().numpy() if isinstance(x, Tensor) else np.asarray(x)
    if y.ndim == 2 and y.shape[0] == 1:
        y = y[0]
    if y.ndim != 1:
        raise ValueError(f"{name} must be a mono waveform of shape (N,) or (1, N), got {y.shape}; mix down first")
    if y.size == 0:
        raise ValueError(f"{name} is empty")
    return np.ascontiguousarray(y, dtype=np.float32)


def _check_rate(sample_rate: int) -> int:
    if not (isinstance(sample_rate, (int, np.integer)) and sample_rate > 0):
        raise ValueError(f"sample_rate must be a positive integer in Hz, got {sample_rate!r}")
    return int(sample_rate)


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two equally long flat arrays; NaN when either is constant."""
    a = a.astype(np.float64) - a.mean()
    b = b.astype(np.float64) - b.mean()
    den = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / den) if den > 0 else float("nan")


@lru_cache(maxsize=2)
def _measuring_net(n_freq: int, filters: int, kernel_size: int, seed: int) -> RandomCNN:
    # Building 1024 x 1025 x 11 random weights takes ~0.1 s; a report calls this many times.
    return RandomCNN(n_freq, filters=filters, kernel_size=kernel_size, seed=seed)


def gram_distance(spec_a: ArrayLike, spec_b: ArrayLike, *, seed: int = METRIC_SEED, filters: int = 1024,
                  kernel_size: int = 11) -> float:
    """Relative Gram (style) distance of ``spec_a`` from the reference ``spec_b``.

    Both log1p-magnitude spectrograms ``(F, T)`` or ``(1, F, T)`` (same F, any lengths) go through a
    :class:`~nst_audio.extractors.RandomCNN` seeded independently of the one used for optimization
    (default seed 12345), and the ReLU Gram matrices are compared with :func:`nst_core.gram_loss`:
    ``||G_a - G_b||_F^2 / ||G_b||_F^2``. Dimensionless, 0 for identical textures; not symmetric
    (``spec_b`` is the reference, normally the style).

    Parameters
    ----------
    seed : int
        Seed of the measuring network's weights.
    filters, kernel_size : int
        Size of the measuring network (1024 filters: a quarter of Ulyanov's width, for speed; the
        relative distance is stable in the filter count).
    """
    a, b = _pair(spec_a, spec_b)
    net = _measuring_net(a.shape[0], int(filters), int(kernel_size), int(seed)).to(a.device)
    with torch.no_grad():
        ga = gram_matrix(net(a[None], ["relu1"])["relu1"])
        gb = gram_matrix(net(b[None], ["relu1"])["relu1"])
        return float(gram_loss(ga, gb))


def _mfcc_gaussian(y: np.ndarray | None, sample_rate: int, n_mfcc: int, *,
                   power: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    if power is not None:  # the same MFCCs from a power spectrogram (n_fft 2048, hop 512) instead of samples
        mel_db = librosa.power_to_db(librosa.feature.melspectrogram(S=power, sr=sample_rate))
        mfcc = librosa.feature.mfcc(S=mel_db, n_mfcc=n_mfcc)[1:].astype(np.float64)
    else:
        mfcc = librosa.feature.mfcc(y=y, sr=sample_rate, n_mfcc=n_mfcc)[1:].astype(np.float64)  # (n_mfcc - 1, frames)
    if mfcc.shape[1] < 2:
        raise ValueError("mfcc_stats_distance needs at least two MFCC frames (512 samples at the default hop)")
    return mfcc.mean(axis=1), np.atleast_2d(np.cov(mfcc))


def _sym(m: np.ndarray) -> np.ndarray:
    return (m + m.T) / 2


def _psd_sqrt(c: np.ndarray) -> np.ndarray:
    """Square root of a symmetric positive semi-definite matrix (eigenvalues clipped at 0)."""
    w, v = np.linalg.eigh(_sym(c))
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def mfcc_stats_distance(wave_a: ArrayLike, wave_b: ArrayLike, sample_rate: int, *, n_mfcc: int = 20) -> float:
    """Timbre distance: 2-Wasserstein (Frechet) distance between Gaussians fitted to the MFCCs.

    Each waveform's MFCC frames (librosa defaults: 2048-sample frames, hop 512, 128 mel bands, dB
    power), without the 0th coefficient (overall loudness), are summarised by their mean ``mu`` and
    covariance ``C`` over frames; the distance is

    ``sqrt(||mu_a - mu_b||^2 + tr(C_a + C_b - 2 (C_a^1/2 C_b C_a^1/2)^1/2))``,

    the square root of the Frechet distance that FAD (Kilgour et al., 2019) and FID compute on
    embeddings. In MFCC units (dB-like, since the MFCCs are an orthonormal DCT of dB mel powers);
    0 for identical statistics, symmetric, a metric. Chosen over the symmetric Gaussian KL divergence
    (Mandel & Ellis, 2005) because it needs no inverse: steady synthetic tones have nearly singular
    MFCC covariances, where the KL divergence runs to millions of nats and depends on a
    regularisation constant. Note that MFCCs of sparse harmonic spectra still move with pitch, so a
    transposition is not distance 0.

    Parameters
    ----------
    wave_a, wave_b : (N,) arrays or tensors, mono
    sample_rate : int
        Hz, shared by both waveforms.
    n_mfcc : int
        Coefficients computed (default 20; coefficients 1 .. n_mfcc - 1 are compared).
    """
    sample_rate = _check_rate(sample_rate)
    if not (isinstance(n_mfcc, int) and n_mfcc >= 2):
        raise ValueError(f"n_mfcc must be an integer >= 2 (the 0th coefficient is skipped), got {n_mfcc!r}")
    return _frechet(_mfcc_gaussian(_waveform(wave_a, "wave_a"), sample_rate, n_mfcc),
                    _mfcc_gaussian(_waveform(wave_b, "wave_b"), sample_rate, n_mfcc))


def mfcc_stats_distance_of_power(power_a: np.ndarray, power_b: np.ndarray, sample_rate: int, *,
                                 n_mfcc: int = 20) -> float:
    """:func:`mfcc_stats_distance` of two power spectrograms ``|STFT|^2`` (F, T) with n_fft 2048 and hop 512,
    as an optimized spectrogram is before any phase is reconstructed; of the waveforms' own spectrograms it
    equals the waveform version."""
    sample_rate = _check_rate(sample_rate)
    return _frechet(_mfcc_gaussian(None, sample_rate, n_mfcc, power=np.asarray(power_a)),
                    _mfcc_gaussian(None, sample_rate, n_mfcc, power=np.asarray(power_b)))


def _frechet(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]) -> float:
    """2-Wasserstein distance between the Gaussians ``(mu, cov)`` ``a`` and ``b``."""
    (mu_a, cov_a), (mu_b, cov_b) = a, b
    root_a = _psd_sqrt(cov_a)
    cross = np.sqrt(np.clip(np.linalg.eigvalsh(_sym(root_a @ cov_b @ root_a)), 0.0, None)).sum()
    squared = float(np.sum((mu_a - mu_b) ** 2) + np.trace(cov_a) + np.trace(cov_b) - 2.0 * cross)
    return float(np.sqrt(max(squared, 0.0)))


def log_spectral_distance(spec_a: ArrayLike, spec_b: ArrayLike, *, floor_db: float = 80.0) -> float:
    """Log-spectral distance in dB between two log1p-magnitude spectrograms ``(F, T)`` or ``(1, F, T)``.

    Magnitudes are recovered as ``expm1(spec)`` and squared to powers ``P``; per frame the distance is
    the RMS over frequency of ``10 log10(P_a / P_b)``, and the result is the mean over frames (dB).
    Spectrograms of different lengths are compared over their common first ``min(T_a, T_b)`` frames.

    Silence: powers are first raised to a floor ``floor_db`` below the louder input's peak (as
    ``librosa.power_to_db(top_db=80)`` does), so two near-silent bins differ by about 0 dB instead of by
    the ratio of two round-off values, and a sound's quiet gaps do not dominate. Symmetric; 0 for
    identical inputs.
    """
    if not floor_db > 0:
        raise ValueError(f"floor_db must be positive, got {floor_db!r}")
    a, b = _pair(spec_a, spec_b)
    frames = min(a.shape[1], b.shape[1])
    a, b = a[:, :frames].double(), b[:, :frames].double()
    power_a, power_b = torch.expm1(a).clamp_min(0).square(), torch.expm1(b).clamp_min(0).square()
    peak = torch.maximum(power_a.max(), power_b.max())
    floor = peak * 10.0 ** (-floor_db / 10.0) + torch.finfo(torch.float64).tiny
    ratio_db = 10.0 * torch.log10(power_a.clamp_min(floor) / power_b.clamp_min(floor))
    return float(ratio_db.square().mean(dim=0).sqrt().mean())


def _common_frames(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n = min(x.shape[-1], y.shape[-1])
    return x[..., :n], y[..., :n]


def chroma_correlation(wave_a: ArrayLike, wave_b: ArrayLike, sample_rate: int, *, n_fft: int = 2048,
                       hop_length: int = 512) -> float:
    """Pearson correlation of the two waveforms' chromagrams (harmonic and melodic agreement).

    ``librosa.feature.chroma_stft`` (12 pitch classes per frame, each frame normalised to a maximum of
    1) of both waveforms, cut to the common number of frames, flattened and correlated. In [-1, 1]; near
    1 when the same notes sound at the same times whatever the timbre; NaN when a chromagram is
    constant (e.g. silence). ``n_fft`` and ``hop_length`` in samples.
    """
    sample_rate = _check_rate(sample_rate)
    ca = librosa.feature.chroma_stft(y=_waveform(wave_a, "wave_a"), sr=sample_rate, n_fft=n_fft, hop_length=hop_length)
    cb = librosa.feature.chroma_stft(y=_waveform(wave_b, "wave_b"), sr=sample_rate, n_fft=n_fft, hop_length=hop_length)
    ca, cb = _common_frames(ca, cb)
    return _pearson(ca.ravel(), cb.ravel())


def chroma_correlation_of_power(power_a: np.ndarray, power_b: np.ndarray, sample_rate: int) -> float:
    """:func:`chroma_correlation` of two power spectrograms ``|STFT|^2`` (F, T) with n_fft 2048 and hop 512."""
    sample_rate = _check_rate(sample_rate)
    ca = librosa.feature.chroma_stft(S=np.asarray(power_a), sr=sample_rate)
    cb = librosa.feature.chroma_stft(S=np.asarray(power_b), sr=sample_rate)
    ca, cb = _common_frames(ca, cb)
    return _pearson(ca.ravel(), cb.ravel())


def onset_correlation(wave_a: ArrayLike, wave_b: ArrayLike, sample_rate: int, *, hop_length: int = 512) -> float:
    """Pearson correlation of the two waveforms' onset-strength envelopes (rhythmic agreement).

    ``librosa.onset.onset_strength`` (spectral flux of a mel spectrogram, one value per ``hop_length``
    samples) of both, cut to the common length. In [-1, 1]; near 1 when notes start at the same times;
    NaN when an envelope is constant (e.g. silence or a steady tone).
    """
    sample_rate = _check_rate(sample_rate)
    oa = librosa.onset.onset_strength(y=_waveform(wave_a, "wave_a"), sr=sample_rate, hop_length=hop_length)
    ob = librosa.onset.onset_strength(y=_waveform(wave_b, "wave_b"), sr=sample_rate, hop_length=hop_length)
    oa, ob = _common_frames(oa, ob)
    return _pearson(oa, ob)
