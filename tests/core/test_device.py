"""Tests for nst_core.device: device and precision choice, the precision context, seeding."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import torch

from nst_core import InputError, precision_context, resolve_device, resolve_precision, seed_everything
from nst_core.device import device_description

CPU = torch.device("cpu")
HAS_CUDA = torch.cuda.is_available()
HAS_MPS = bool(getattr(torch.backends, "mps", None)) and torch.backends.mps.is_available()


@pytest.mark.parametrize("name", ["cpu", "CPU", CPU])
def test_resolve_device_cpu(name):
    assert resolve_device(name) == CPU


@pytest.mark.skipif(HAS_CUDA or HAS_MPS, reason="auto picks an accelerator on this machine")
def test_resolve_device_auto_is_cpu_without_accelerators():
    assert resolve_device("auto") == CPU
    assert resolve_device() == CPU


@pytest.mark.skipif(not HAS_CUDA, reason="needs CUDA")
def test_resolve_device_auto_prefers_cuda():
    assert resolve_device("auto").type == "cuda"


@pytest.mark.skipif(HAS_CUDA, reason="CUDA is available here")
@pytest.mark.parametrize("name", ["cuda", "cuda:0"])
def test_resolve_device_cuda_unavailable_raises_input_error(name):
    with pytest.raises(InputError, match="CUDA is not available"):
        resolve_device(name)


@pytest.mark.skipif(HAS_MPS, reason="MPS is available here")
def test_resolve_device_mps_unavailable_raises_input_error():
    with pytest.raises(InputError, match="MPS"):
        resolve_device("mps")


@pytest.mark.parametrize("name", ["tpu", "gpu", ""])
def test_resolve_device_unknown_raises_input_error(name):
    with pytest.raises(InputError, match="unknown device"):
        resolve_device(name)


def test_resolve_precision_on_cpu(monkeypatch):
    from nst_core import device as D

    monkeypatch.setattr(D, "cpu_has_native_bf16", lambda: True)
    assert resolve_precision("auto", CPU) == "bf16"  # measured faster there, and within 1 % of fp32's result
    monkeypatch.setattr(D, "cpu_has_native_bf16", lambda: False)
    assert resolve_precision("auto", CPU) == "fp32"
    assert resolve_precision("fp32", CPU) == "fp32"
    assert resolve_precision("BF16", CPU) == "bf16"
    with pytest.raises(InputError, match="tf32 needs a CUDA device"):
        resolve_precision("tf32", CPU)
    with pytest.raises(InputError, match="unknown precision"):
        resolve_precision("fp16", CPU)


def test_resolve_precision_cuda_rules_without_a_gpu():
    # Pure logic on the device type: no CUDA call is made.
    cuda = torch.device("cuda")
    assert resolve_precision("auto", cuda) == "tf32"
    assert resolve_precision("tf32", cuda) == "tf32"
    with pytest.raises(InputError, match="bf16 is not supported on mps"):
        resolve_precision("bf16", torch.device("mps"))


def _tf32_flags():
    return torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32


@pytest.fixture
def tf32_flags():
    """Set the global TF32 switches to a known mixed state and put the originals back afterwards."""
    saved = _tf32_flags()
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = False, True
    yield (False, True)
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def _conv_and_matmul():
    g = torch.Generator().manual_seed(0)
    x, w = torch.randn(1, 2, 6, 6, generator=g), torch.randn(3, 2, 3, 3, generator=g)
    a, b = torch.randn(4, 5, generator=g), torch.randn(5, 3, generator=g)
    return torch.nn.functional.conv2d(x, w), a @ b


def test_precision_context_bf16_on_cpu_runs_in_bfloat16_and_restores_flags(tf32_flags):
    with precision_context("bf16", CPU):
        conv, mm = _conv_and_matmul()
        assert conv.dtype == torch.bfloat16 and mm.dtype == torch.bfloat16
        assert _tf32_flags() == (True, True)
    assert _tf32_flags() == tf32_flags
    conv, mm = _conv_and_matmul()  # autocast is off again
    assert conv.dtype == torch.float32 and mm.dtype == torch.float32


def test_precision_context_fp32_turns_tf32_off_and_restores(tf32_flags):
    with precision_context("fp32", CPU):
        conv, mm = _conv_and_matmul()
        assert conv.dtype == torch.float32 and mm.dtype == torch.float32
        assert _tf32_flags() == (False, False)
    assert _tf32_flags() == tf32_flags


def test_precision_context_restores_flags_after_an_error(tf32_flags):
    with pytest.raises(RuntimeError, match="boom"):
        with precision_context("bf16", CPU):
            raise RuntimeError("boom")
    assert _tf32_flags() == tf32_flags
    assert _conv_and_matmul()[0].dtype == torch.float32


def _draws():
    return random.random(), float(np.random.rand()), torch.rand(3).tolist()


def test_seed_everything_reproduces_python_numpy_and_torch(keep_rng_state):
    seed_everything(1234)
    first = _draws()
    seed_everything(1234)
    assert _draws() == first
    seed_everything(1235)
    assert _draws() != first


def test_seed_everything_accepts_large_seeds_and_none_leaves_state(keep_rng_state):
    seed_everything(2**40 + 7)  # NumPy takes the seed mod 2^32
    seed_everything(5)
    a = _draws()
    seed_everything(None)
    b = _draws()
    seed_everything(5)
    assert _draws() == a
    assert _draws() == b  # None did not reseed: the sequence just continued


def test_device_description_cpu():
    assert device_description(CPU) == f"cpu ({torch.get_num_threads()} threads)"


def test_precision_context_turns_cudnn_benchmark_on_for_cuda_only_and_restores_it():
    before = torch.backends.cudnn.benchmark
    try:
        torch.backends.cudnn.benchmark = False
        with precision_context("fp32", torch.device("cpu")):
            assert torch.backends.cudnn.benchmark is False
        with precision_context("fp32", torch.device("cuda")):  # the switch alone; no CUDA work is done
            assert torch.backends.cudnn.benchmark is True
        assert torch.backends.cudnn.benchmark is False
    finally:
        torch.backends.cudnn.benchmark = before


def test_core_imports_and_reads_memory_without_the_resource_module():
    """Windows has no ``resource`` module: importing nst_core and reading peak memory must still work."""
    import subprocess
    import sys

    code = ("import sys; sys.modules['resource'] = None\n"
            "import nst_core, torch\n"
            "from nst_core.device import peak_memory_bytes, proc_status_kib\n"
            "import nst_core.device as d; d.proc_status_kib = lambda key: None  # no /proc either\n"
            "print(peak_memory_bytes(torch.device('cpu')))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "0"  # no reading there: 0, said in the docstring, not a crash


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="per-run CPU peaks need Linux's clear_refs")
def test_cpu_peak_memory_is_per_run():
    """A small run after a large one reports its own peak, not the process's lifetime maximum."""
    from nst_core import OptimizeConfig, optimize

    big = optimize(torch.zeros(40_000_000), lambda x: {"total": (x - 1).pow(2).sum()}, OptimizeConfig(steps=2, history_size=2))
    small = optimize(torch.zeros(1000), lambda x: {"total": (x - 1).pow(2).sum()}, OptimizeConfig(steps=2, history_size=2))
    assert big.peak_memory_bytes > small.peak_memory_bytes + 500 * 2**20, (big.peak_memory_bytes, small.peak_memory_bytes)


def test_cpu_bf16_flag_is_read_from_cpuinfo(monkeypatch, tmp_path):
    import builtins

    from nst_core import device as D

    real_open = builtins.open

    def fake(text):
        def opener(path, *a, **k):
            if path == "/proc/cpuinfo":
                import io
                return io.StringIO(text)
            return real_open(path, *a, **k)
        return opener

    monkeypatch.setattr(builtins, "open", fake("processor : 0\nflags : fpu avx512f avx512_bf16 sse\n"))
    assert D.cpu_has_native_bf16()
    monkeypatch.setattr(builtins, "open", fake("processor : 0\nflags : fpu avx2 sse\n"))
    assert not D.cpu_has_native_bf16()
