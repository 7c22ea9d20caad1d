"""Checks shared by the op tests (kornia-style): a batch gives what its items give one by one."""

from __future__ import annotations

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
