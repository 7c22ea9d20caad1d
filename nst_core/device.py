"""Device and numeric precision choice, seeding, and memory readings."""

from __future__ import annotations

import contextlib
import random
import resource
import sys
from typing import Iterator, Literal

import numpy as np
import torch

from .errors import InputError

DeviceName = Literal["auto", "cpu", "cuda", "mps"]
Precision = Literal["auto", "fp32", "tf32", "bf16"]
DEVICES: tuple[str, ...] = ("auto", "cpu", "cuda", "mps")
PRECISIONS: tuple[str, ...] = ("auto", "fp32", "tf32", "bf16")


def _mps_available() -> bool:
    return bool(getattr(torch.backends, "mps", None)) and torch.backends.mps.is_available()


def resolve_device(name: str | torch.device = "auto") -> torch.device:
    """``auto`` picks CUDA, then MPS, then CPU; an explicit device that is absent raises InputError."""
    if isinstance(name, torch.device):
        return name
    name = str(name).lower()
    base = name.split(":")[0]
    if base == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    if base == "cuda":
        if not torch.cuda.is_available():
            raise InputError("--device cuda was asked for but no CUDA device is available; use --device cpu or auto")
        return torch.device(name)
    if base == "mps":
        if not _mps_available():
            raise InputError("--device mps was asked for but MPS is not available; use --device cpu or auto")
        return torch.device("mps")
    if base == "cpu":
        return torch.device("cpu")
    raise InputError(f"unknown device {name!r}; use one of {', '.join(DEVICES)}")


def resolve_precision(precision: str, device: torch.device) -> str:
    """``auto`` is TF32 on CUDA and fp32 elsewhere; TF32 needs CUDA, bf16 works on CUDA and CPU."""
    precision = str(precision).lower()
    if precision not in PRECISIONS:
        raise InputError(f"unknown precision {precision!r}; use one of {', '.join(PRECISIONS)}")
    if precision == "auto":
        return "tf32" if device.type == "cuda" else "fp32"
    if precision == "tf32" and device.type != "cuda":
        raise InputError(f"--precision tf32 needs a CUDA device (running on {device.type}); use fp32 or bf16")
    if precision == "bf16" and device.type == "mps":
        raise InputError("--precision bf16 is not supported on mps; use fp32")
    return precision


@contextlib.contextmanager
def precision_context(precision: str, device: torch.device) -> Iterator[None]:
    """Run the forward pass in ``precision``: fp32 (TF32 off), tf32 (TF32 matmul/conv), bf16 (autocast).

    On CUDA, cuDNN's benchmark mode is on inside (the step's shapes never change). Global TF32 and
    benchmark switches are restored on exit.
    """
    matmul, cudnn = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    benchmark = torch.backends.cudnn.benchmark
    try:
        allow = precision in ("tf32", "bf16")
        torch.backends.cuda.matmul.allow_tf32 = allow
        torch.backends.cudnn.allow_tf32 = allow
        # Every step has the same shapes, so cuDNN's autotuner pays for itself after the first one.
        torch.backends.cudnn.benchmark = benchmark or device.type == "cuda"
        if precision == "bf16":
            with torch.autocast(device_type=device.type, dtype=torch.bfloat16):
                yield
        else:
            yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = matmul, cudnn
        torch.backends.cudnn.benchmark = benchmark


def seed_everything(seed: int | None) -> None:
    """Seed Python, NumPy and torch (all devices) for reproducible runs; ``None`` leaves them as they are."""
    if seed is None:
        return
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def reset_peak_memory(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory_bytes(device: torch.device) -> int:
    """Peak memory of the run: allocated device memory on CUDA, the process's peak resident size on CPU."""
    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device))
    if device.type == "mps":
        return int(torch.mps.driver_allocated_memory())
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(rss if sys.platform == "darwin" else rss * 1024)


def available_memory_bytes(device: torch.device) -> int:
    """Memory the run may use: free device memory on CUDA, available RAM otherwise."""
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return int(free)
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    import os

    return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def device_description(device: torch.device) -> str:
    """Human-readable device name, e.g. ``cuda (NVIDIA H100 80GB HBM3)`` or ``cpu (2 threads)``."""
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    if device.type == "cpu":
        return f"cpu ({torch.get_num_threads()} threads)"
    return device.type
