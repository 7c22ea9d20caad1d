"""Device and numeric precision choice, seeding, and memory readings."""

from __future__ import annotations

import contextlib
import math
import os
import random
import sys
from pathlib import Path
from typing import Iterator, Literal

import numpy as np
import torch

from .errors import ConfigError, ResourceError

DeviceName = Literal["auto", "cpu", "cuda", "mps"]
Precision = Literal["auto", "fp32", "tf32", "bf16"]
DEVICES: tuple[str, ...] = ("auto", "cpu", "cuda", "mps")
PRECISIONS: tuple[str, ...] = ("auto", "fp32", "tf32", "bf16")


def _mps_available() -> bool:
    return bool(getattr(torch.backends, "mps", None)) and torch.backends.mps.is_available()


def resolve_device(name: str | torch.device = "auto") -> torch.device:
    """``auto`` picks CUDA, then MPS, then CPU; an explicit device that is absent raises ConfigError (an InputError)."""
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
            raise ConfigError("device cuda was asked for but CUDA is not available here; use device cpu or auto", "device")
        return torch.device(name)
    if base == "mps":
        if not _mps_available():
            raise ConfigError("device mps was asked for but MPS is not available; use device cpu or auto", "device")
        return torch.device("mps")
    if base == "cpu":
        return torch.device("cpu")
    raise ConfigError(f"unknown device {name!r}; use one of {', '.join(DEVICES)}", "device")


def cpu_has_native_bf16() -> bool:
    """Whether this CPU has bf16 arithmetic instructions (x86 AVX512-BF16 or AMX-BF16, read from
    ``/proc/cpuinfo``), with which oneDNN runs bf16 convolutions natively; False where that cannot be read."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool(flags & {"avx512_bf16", "amx_bf16"})
    except OSError:
        pass
    return False


def resolve_precision(precision: str, device: torch.device) -> str:
    """``auto`` is TF32 on CUDA, bf16 on a CPU with bf16 instructions (:func:`cpu_has_native_bf16`; measured on
    an AMD EPYC with AVX512-BF16: image steps 1.5x and audio steps 1.2x faster, results within 0.5 % of fp32's
    loss) and fp32 elsewhere; TF32 needs CUDA, bf16 works on CUDA and CPU."""
    precision = str(precision).lower()
    if precision not in PRECISIONS:
        raise ConfigError(f"unknown precision {precision!r}; use one of {', '.join(PRECISIONS)}", "precision")
    if precision == "auto":
        if device.type == "cuda":
            return "tf32"
        return "bf16" if device.type == "cpu" and cpu_has_native_bf16() else "fp32"
    if precision == "tf32" and device.type != "cuda":
        raise ConfigError(f"precision tf32 needs a CUDA device (running on {device.type}); use fp32 or bf16", "precision")
    if precision == "bf16" and device.type == "mps":
        raise ConfigError("precision bf16 is not supported on mps; use fp32", "precision")
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


def proc_status_kib(key: str) -> int | None:
    """A ``kB`` field of /proc/self/status (Linux), or None where there is no such file."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


#: The largest peak resident size (KiB) that a reset in this process has cleared since reset_process_peak(): an
#: outer measurement (a benchmark around a whole run) adds it back, so per-run resets do not hide its peak.
_cleared_peak_kib = 0


def _clear_resident_peak() -> None:
    global _cleared_peak_kib
    hwm = proc_status_kib("VmHWM")
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # 5: reset the peak resident size (VmHWM) to the current one
    except OSError:
        return
    _cleared_peak_kib = max(_cleared_peak_kib, hwm or 0)


def reset_peak_memory(device: torch.device) -> None:
    """Start a new peak-memory reading for this run.

    CUDA: the allocator's peak. CPU on Linux: the process's peak resident size (VmHWM), reset through
    /proc/self/clear_refs, so that a second run in one process (``nst compare``) reports its own peak.
    Elsewhere the CPU reading stays the process's lifetime peak (:func:`peak_memory_bytes` says which).
    """
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    elif device.type == "cpu":
        _clear_resident_peak()


def reset_process_peak() -> None:
    """Start a CPU peak reading that spans several runs (see :func:`process_peak_bytes`)."""
    global _cleared_peak_kib
    _clear_resident_peak()
    _cleared_peak_kib = 0


def process_peak_bytes() -> int | None:
    """Peak resident size since :func:`reset_process_peak`, through any per-run resets in between (Linux);
    None where the reading does not exist."""
    hwm = proc_status_kib("VmHWM")
    return None if hwm is None else max(hwm, _cleared_peak_kib) * 1024


def peak_memory_bytes(device: torch.device) -> int:
    """Peak memory since :func:`reset_peak_memory`: allocated device memory on CUDA; on the CPU the peak
    resident size (Linux: since the reset; macOS/BSD: the process's lifetime peak from ``resource``;
    Windows: 0, as there is no such reading without extra packages)."""
    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device))
    if device.type == "mps":
        return int(torch.mps.driver_allocated_memory())
    hwm = proc_status_kib("VmHWM")
    if hwm is not None:
        return hwm * 1024
    try:
        import resource  # not on Windows
    except ImportError:
        return 0
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
    return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))


_host_threads: tuple[int, str] | None = None  # what a host (a batch worker, a Ray task) set, and why
_threads_from: str | None = None  # how the last run's threads were chosen


def _cgroup_cpu_limit() -> int | None:
    """The CPU quota of this process's cgroup (a container's ``--cpus``), rounded up, or None if there is none."""
    try:  # cgroup v2
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            return max(1, math.ceil(int(quota) / int(period)))
        return None
    except (OSError, ValueError):
        pass
    try:  # cgroup v1
        quota = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us").read_text())
        period = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us").read_text())
        return max(1, math.ceil(quota / period)) if quota > 0 and period > 0 else None
    except (OSError, ValueError):
        return None


def usable_cores() -> int:
    """Cores this process may run on: its affinity mask where one is set (taskset, a scheduler), capped by its
    cgroup's CPU quota where one is set (a container's ``--cpus``, which PyTorch's own default ignores)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    quota = _cgroup_cpu_limit()
    return min(cores, quota) if quota else cores


def set_threads(n: int, why: str) -> None:
    """A host's choice: run ``n`` intra-op threads in this process from now on, because ``why`` (a batch
    worker's share of the cores, say). Runs whose ``threads`` is left at auto then keep it."""
    global _host_threads, _threads_from
    n = max(1, int(n))
    torch.set_num_threads(n)
    _host_threads, _threads_from = (n, why), why


@contextlib.contextmanager
def host_threads(n: int, why: str) -> Iterator[None]:
    """:func:`set_threads` for the duration of a block (jobs run in this process); restored after."""
    global _host_threads, _threads_from
    saved = (torch.get_num_threads(), _host_threads, _threads_from)
    set_threads(n, why)
    try:
        yield
    finally:
        torch.set_num_threads(saved[0])
        _host_threads, _threads_from = saved[1], saved[2]


def apply_threads(threads: int | None) -> str:
    """Settle a run's intra-op threads; returns how they were chosen (also :func:`threads_from`, for the trace).

    ``threads`` given: that many. None (auto): what the host chose with :func:`set_threads` if one did (a
    batch worker's share); else at most one per core this process may use (:func:`usable_cores`): PyTorch's
    count, or the caller's, is lowered to that where it is higher (as under a container's CPU quota) and kept
    where it is not. Two processes that share the cores with a thread per core each run several times slower
    than one: give each its share.
    """
    global _threads_from
    if threads is not None:
        torch.set_num_threads(max(1, int(threads)))
        _threads_from = "asked for (threads)"
    elif _host_threads is not None:
        torch.set_num_threads(_host_threads[0])
        _threads_from = _host_threads[1]
    else:
        cores, now = usable_cores(), torch.get_num_threads()
        if now > cores:
            torch.set_num_threads(cores)
            _threads_from = f"one per core this process may use ({cores}; PyTorch had {now})"
        elif now == cores:
            _threads_from = f"one per core this process may use ({cores})"
        else:
            _threads_from = f"as set before the run ({now} of {cores} usable cores)"
    return _threads_from


def threads_from() -> str | None:
    """How the last run's thread count was chosen, or None before any run."""
    return _threads_from


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


def human_bytes(n: float) -> str:
    """``1536`` -> ``1.5 KiB``: binary units, one decimal."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"):
        if n < 1024 or unit == "EiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f} EiB"


def require_memory(need: int, device: torch.device, *, what: str, advice: str, param: str | None = None,
                   have: int | None = None) -> None:
    """Refuse work that would not fit: ResourceError (exit 5) when ``need`` bytes exceed what the device has.

    ``what`` names the work (``image_size 4096 (4096x3072 px)``), ``advice`` says what to change.
    """
    have = available_memory_bytes(device) if have is None else have
    if need > have:
        raise ResourceError(f"{what} would need about {human_bytes(need)} on {device.type} but about "
                            f"{human_bytes(have)} is available; {advice}", param)
