"""Fixtures for the core tests: a tiny frozen feature extractor and RNG-state hygiene.

Everything is built here from fixed seeds; nothing is downloaded, and no test needs pretrained weights.
"""

from __future__ import annotations

import random
from typing import Sequence

import numpy as np
import pytest
import torch
from torch import Tensor, nn


class TinyExtractor(nn.Module):
    """Two frozen 3x3 convolutions implementing the ``extractor(x, layers) -> {layer: Tensor}`` protocol.

    Layers, shallow to deep: ``conv1`` (4 ch), ``relu1``, ``conv2`` (6 ch, after a 2x average pool), ``relu2``.
    Stops after the deepest layer asked for, as :class:`nst_core.FeatureExtractor` requires, and records
    the layer lists it was called with so tests can check what the objective asked for.
    """

    order = ("conv1", "relu1", "conv2", "relu2")

    def __init__(self, in_channels: int = 3, seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.conv1 = nn.Conv2d(in_channels, 4, 3, padding=1)
        self.conv2 = nn.Conv2d(4, 6, 3, padding=1)
        with torch.no_grad():
            # Weights from a private generator so the global RNG (and other tests) are untouched.
            for conv in (self.conv1, self.conv2):
                fan_in = conv.weight[0].numel()
                conv.weight.copy_(torch.randn(conv.weight.shape, generator=g) / fan_in**0.5)
                conv.bias.copy_(0.1 * torch.randn(conv.bias.shape, generator=g))
        self.requires_grad_(False)
        self.eval()
        self.calls: list[list[str]] = []

    def forward(self, x: Tensor, layers: Sequence[str]) -> dict[str, Tensor]:  # type: ignore[override]
        layers = list(layers)
        self.calls.append(layers)
        unknown = set(layers) - set(self.order)
        if unknown:
            raise KeyError(f"unknown layers {sorted(unknown)}")
        deepest = max(self.order.index(name) for name in layers)
        out: dict[str, Tensor] = {}
        h = self.conv1(x)
        steps = [
            ("conv1", lambda t: t),
            ("relu1", torch.relu),
            ("conv2", lambda t: self.conv2(nn.functional.avg_pool2d(t, 2))),
            ("relu2", torch.relu),
        ]
        for i, (name, fn) in enumerate(steps):
            if i > 0:
                h = fn(h)
            if name in layers:
                out[name] = h
            if i == deepest:
                break
        return out


@pytest.fixture
def tiny_extractor():
    """Factory: ``tiny_extractor(in_channels=3, seed=0)`` -> a fresh :class:`TinyExtractor`."""
    return TinyExtractor


@pytest.fixture
def keep_rng_state():
    """Restore Python, NumPy and torch RNG states after a test that reseeds them."""
    py, npy, th = random.getstate(), np.random.get_state(), torch.get_rng_state()
    yield
    random.setstate(py)
    np.random.set_state(npy)
    torch.set_rng_state(th)


@pytest.fixture(autouse=True)
def single_thread():
    """Run the core tests' tiny tensors on one intra-op thread, restoring the setting afterwards.

    These ops are a few microseconds each; with two threads every op ends in a thread barrier, which
    makes the loop tests 10-100x slower whenever another process is busy on the same cores.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
