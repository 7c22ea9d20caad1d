"""Shared helpers of the benchmarks: peak memory of a block of work, machine facts, load averages."""

from __future__ import annotations

import ctypes
import json
import gc
import os
import platform
import resource
import sys
import time
from pathlib import Path

import torch

from nst_core.device import proc_status_kib, process_peak_bytes, reset_process_peak


def _malloc_trim() -> None:
    """Hand memory glibc keeps after frees back to the OS, so one run's leftovers do not hide the next run's
    peak from an RSS reading. A no-op where glibc is absent."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


class PeakMemory:
    """Peak memory of a block of work .

    CUDA: ``torch.cuda.max_memory_allocated`` after ``reset_peak_memory_stats`` (baseline included and also
    reported). CPU (Linux): ``VmHWM`` after resetting it through ``/proc/self/clear_refs`` (after
    ``gc.collect`` and ``malloc_trim``) minus ``VmRSS`` before; where that file cannot be written, ``ru_maxrss``
    after minus before (0 when an earlier phase of the process peaked higher).
    """

    def __init__(self, device: torch.device):
        self.device = device
        self.result: dict = {}

    def __enter__(self):
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self.base = torch.cuda.memory_allocated(self.device)
            return self
        gc.collect()
        _malloc_trim()
        self.method = "ru_maxrss"
        reset_process_peak()  # VmHWM, reset through /proc/self/clear_refs (the runs inside reset it again)
        if process_peak_bytes() is not None:
            self.method = "VmHWM"
        self.base_rss = proc_status_kib("VmRSS")
        self.base_maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return self

    def __exit__(self, *exc):
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            peak = torch.cuda.max_memory_allocated(self.device)
            self.result = {"kind": "cuda max_memory_allocated (includes the network and targets resident before)",
                           "peak_bytes": int(peak), "baseline_bytes": int(self.base),
                           "peak_minus_baseline_bytes": int(peak - self.base)}
            return False
        if self.method == "VmHWM" and self.base_rss is not None:
            hwm = process_peak_bytes() // 1024
            self.result = {"kind": "cpu peak RSS delta: VmHWM after (reset via /proc/self/clear_refs after gc + "
                                   "malloc_trim) minus VmRSS before; process-wide, includes the Python/allocator "
                                   "overhead",
                           "peak_rss_delta_bytes": int((hwm - self.base_rss) * 1024),
                           "rss_before_bytes": int(self.base_rss * 1024), "peak_rss_bytes": int(hwm * 1024)}
        else:
            scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss is KiB on Linux, bytes on macOS
            after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            self.result = {"kind": "cpu ru_maxrss after minus before (0 if an earlier phase peaked higher)",
                           "peak_rss_delta_bytes": int((after - self.base_maxrss) * scale)}
        return False


def _loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def machine_info(device: torch.device) -> dict:
    cpu = platform.processor() or None
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    info = {"platform": platform.platform(), "python": platform.python_version(), "cpu_model": cpu,
            "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
            "gpu": None}
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
        info["cuda"] = torch.version.cuda
        info["cudnn"] = torch.backends.cudnn.version()
    return info




def emit(doc: dict, out: str | None) -> None:
    """Print the result document as JSON and, if ``out`` is given, also write it there."""
    text = json.dumps(doc, indent=2)
    print(text)
    if out:
        path = Path(out)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text + "\n")


def run_torch_lbfgs(x: torch.Tensor, total_loss, steps: int, history_size: int, sync, *, before=None) -> dict:
    """Optimise the leaf ``x`` in place with one ``torch.optim.LBFGS.step`` of ``steps`` iterations, timed.

    The plain references' optimizer: unit step, no line search, tolerances of 0 (no early stop).
    Without a line search ``torch.optim.LBFGS`` evaluates the closure once before its first iteration and
    once after every iteration but the last, so ``max_iter=steps`` is exactly ``steps`` evaluations
    (counted and returned). ``total_loss(x)`` returns the scalar loss; ``before()``, if given, runs at the
    start of every evaluation (the image reference clamps there). ``sync`` waits for the device.
    Returns ``{"steps", "seconds", "last_closure_loss"}``.
    """
    optimizer = torch.optim.LBFGS([x], lr=1.0, max_iter=steps, max_eval=2 * steps, history_size=history_size,
                                  line_search_fn=None, tolerance_grad=0.0, tolerance_change=0.0)
    calls = 0
    last: dict = {}

    def closure() -> torch.Tensor:
        nonlocal calls
        if before is not None:
            before()
        optimizer.zero_grad()
        total = total_loss(x)
        total.backward()
        calls += 1
        last["loss"] = total.detach()
        return total

    sync()
    start = time.perf_counter()
    optimizer.step(closure)
    sync()
    return {"steps": calls, "seconds": time.perf_counter() - start,
            "last_closure_loss": float(last["loss"]) if last else float("nan")}
