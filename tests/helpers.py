"""Shared by the tests: the op checks (kornia-style: a batch gives what its items give one by one) and a
hand-made ICC profile."""

from __future__ import annotations

import struct
from typing import Callable

import torch
from torch import Tensor


def assert_batch_equals_items(fn: Callable[[Tensor], Tensor], batch: Tensor, *, rtol: float = 1e-5,
                              atol: float = 1e-6) -> None:
    """``fn(batch)`` equals ``fn`` applied to each item (a batch of one) and stacked; for a scalar output
    (a loss averaged over the batch), the mean of the items' values."""
    whole = fn(batch)
    items = [fn(batch[i:i + 1]) for i in range(batch.shape[0])]
    if whole.dim() == 0:
        torch.testing.assert_close(whole, torch.stack(items).mean(), rtol=rtol, atol=atol)
    else:
        torch.testing.assert_close(whole, torch.cat(items), rtol=rtol, atol=atol)


def icc_profile(gamma: float = 2.2, primaries=((0.6097, 0.3111, 0.0195), (0.2053, 0.6257, 0.0609),
                                               (0.1492, 0.0632, 0.7446))) -> bytes:
    """A matrix/TRC RGB profile (Adobe RGB (1998)-like by default: its D50 primaries and a pure gamma)."""
    def s15(*v):
        return b"".join(struct.pack(">i", round(x * 65536)) for x in v)

    desc_text = b"test RGB\0"
    tags = {
        b"desc": b"desc" + b"\0" * 4 + struct.pack(">I", len(desc_text)) + desc_text + b"\0" * 79,
        b"wtpt": b"XYZ " + b"\0" * 4 + s15(0.9642, 1.0, 0.8249),
        b"rXYZ": b"XYZ " + b"\0" * 4 + s15(*primaries[0]),
        b"gXYZ": b"XYZ " + b"\0" * 4 + s15(*primaries[1]),
        b"bXYZ": b"XYZ " + b"\0" * 4 + s15(*primaries[2]),
        b"rTRC": b"curv" + b"\0" * 4 + struct.pack(">IH", 1, round(gamma * 256)) + b"\0\0",
        b"cprt": b"text" + b"\0" * 4 + b"none\0\0\0\0",
    }
    tags[b"gTRC"] = tags[b"bTRC"] = tags[b"rTRC"]
    table, data = b"", b""
    offset = 128 + 4 + 12 * len(tags)
    for sig, body in tags.items():
        body += b"\0" * (-len(body) % 4)
        table += struct.pack(">4sII", sig, offset + len(data), len(body))
        data += body
    size = offset + len(data)
    header = struct.pack(">I4sI4s4s4s", size, b"none", 0x02100000, b"mntr", b"RGB ", b"XYZ ") + b"\0" * 12
    header += b"acsp" + b"\0" * 28 + s15(0.9642, 1.0, 0.8249) + b"\0" * 48
    assert len(header) == 128
    return header + struct.pack(">I", len(tags)) + table + data


def kaiming_vgg(arch: str = "vgg16", pooling: str = "max", seed: int = 0):
    """A VGGFeatures with random weights that keep the activations' scale down to block 5 (PyTorch's default
    init fades them), and non-zero biases."""
    from torch import nn

    from nst_image.backbones import VGGFeatures

    torch.manual_seed(seed)
    ex = VGGFeatures(arch, pooling=pooling)
    with torch.no_grad():
        for m in ex.layers:
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.uniform_(m.bias, -0.1, 0.1)
    return ex
