"""A batch on a Ray cluster: every job is a Ray task; Ray schedules, places and retries them.

Needs the ``ray`` extra (``pip install 'nst-toolkit[ray]'``). Why tasks and not one actor per GPU: an
actor runs one call at a time, so fractional packing of small jobs onto a large GPU would need several
actors per GPU sized in advance; a task asks for exactly the fraction of a GPU that its own memory estimate
needs, and Ray packs tasks of any size. Ray keeps a task's worker process alive between tasks (these tasks
set ``max_calls=0``, also on GPUs), so the worker's backbones and style targets stay resident from one job to
the next, as an actor's would. A task whose worker or node died is retried by Ray (``max_retries``).

Every node reads the inputs and writes the outputs at the same paths: put them on a filesystem that every
node mounts at the same place. A job on a node that cannot write there fails at once with that message.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nst_core import InputError

from .executors import failed_record, usable_cores

__all__ = ["RayExecutor", "require_ray", "gpu_fraction", "RAY_RETRIES"]

RAY_RETRIES = 2  # a job whose node or worker died is run again up to this many times
GPU_FRACTION_STEP = 1 / 16  # jobs ask for GPUs in sixteenths: small jobs share, none asks for a sliver
GPU_MEMORY_MARGIN = 1.25  # the memory estimate is of the optimisation; CUDA context and allocator come on top


def require_ray():
    """The ``ray`` module, or an InputError that says how to install it."""
    try:
        import ray
    except ImportError:
        raise InputError("executor ray needs Ray, which is not installed; install it with "
                         "pip install 'nst-toolkit[ray]' (or pip install 'ray>=2.9')", "executor") from None
    return ray


def gpu_fraction(need_bytes: int, gpu_bytes: int) -> float:
    """The fraction of a GPU of ``gpu_bytes`` to ask for a job estimated to need ``need_bytes``, in steps of a
    sixteenth, at least one step, at most one GPU."""
    if gpu_bytes <= 0:
        return 1.0
    share = need_bytes * GPU_MEMORY_MARGIN / gpu_bytes
    return min(1.0, max(GPU_FRACTION_STEP, math.ceil(share / GPU_FRACTION_STEP) * GPU_FRACTION_STEP))


def job_memory_bytes(job: dict) -> int:
    """The memory a job's run is estimated to need on its device (the front ends' own estimates)."""
    from .batch import Job

    j = Job.from_dict(job)
    cfg = j.config()
    if j.kind == "image":
        from PIL import Image

        from nst_image.backbones import deepest_layer
        from nst_image.stylize import _long_side_shape, estimate_memory_bytes

        with Image.open(j.content) as im:  # the header only
            w, h = im.size
        size = max(w, h) if cfg.image_size == "auto" else cfg.image_size
        sh, sw = _long_side_shape((h, w), size)
        arch = "vgg19" if cfg.backbone == "auto" else cfg.backbone
        return estimate_memory_bytes(sh, sw, arch=arch, deepest=deepest_layer(arch, cfg.layers),
                                     history_size=cfg.optimize.history_size, precision="fp32",
                                     optimizer=cfg.optimize.optimizer)
    # audio: one chunk at a time, by the front end's own per-chunk estimate
    import soundfile as sf

    from nst_audio.stylize import _estimate_memory

    seconds = sf.info(j.content).duration if j.content else float(cfg.duration or cfg.chunk_seconds)
    frames = int(min(seconds, cfg.chunk_seconds) * cfg.sample_rate / cfg.hop_length) + 1
    n_bins = cfg.n_mels or cfg.n_fft // 2 + 1
    if cfg.extractor == "vgg":  # the image backbone reading the (F, T) spectrogram as a picture
        from nst_image.stylize import estimate_memory_bytes

        return estimate_memory_bytes(n_bins, frames, arch="vgg19" if cfg.backbone == "auto" else cfg.backbone,
                                     history_size=cfg.optimize.history_size, precision="fp32",
                                     optimizer=cfg.optimize.optimizer)
    return _estimate_memory(object(), n_bins, frames, cfg, "fp32") + 4 * cfg.filters * n_bins * 11


def _ray_job(job: dict, options: dict, threads: int) -> dict:
    """The task body, on a Ray worker: check that the output folder is writable here, then run the job."""
    import socket

    from nst_core import set_threads

    if threads:
        set_threads(threads, f"the Ray task's CPUs ({threads})")
    out = Path(job["output"]).parent
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".nst-write-check-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        return failed_record(job, f"node {socket.gethostname()} cannot write to {out} ({err.strerror or err}); "
                                  "with executor ray the outputs must go to a folder every node can reach at the "
                                  "same path (a shared filesystem)")
    from .batch import run_job

    import ray

    record = run_job(job, **options)
    record["node"] = f"{socket.gethostname()} ({ray.get_runtime_context().get_node_id()[:8]})"
    return record


@dataclass
class RayExecutor:
    """Jobs as Ray tasks. ``address``: ``auto`` or ``HOST:PORT`` joins a running cluster; None starts a
    local one on this machine (loopback only) for the batch. ``workers``: jobs at a time per node on the CPU
    (default 1); each task asks for ``threads`` CPUs (default: the smallest node's CPUs divided by
    ``workers``). On GPU nodes each task asks for the fraction of a GPU its memory estimate needs."""

    address: str | None = None
    workers: int | None = None
    threads: int | None = None
    name: str = field(default="ray", init=False)

    def __post_init__(self):
        require_ray()
        if self.workers is not None and self.workers < 1:
            raise InputError(f"workers must be at least 1, not {self.workers}", "workers")
        self._described = "Ray"

    def describe(self) -> str:
        return self._described

    def _connect(self, ray) -> bool:
        """Join or start the cluster; True when this call started Ray (and so shuts it down)."""
        if ray.is_initialized():
            return False
        kwargs: dict[str, Any] = {"log_to_driver": False, "logging_level": "ERROR"}
        try:
            if self.address is None:
                # a cluster of this machine only: its services listen on loopback
                ray.init(include_dashboard=False, _node_ip_address="127.0.0.1", num_cpus=usable_cores(), **kwargs)
            else:
                ray.init(address=self.address, **kwargs)
        except (ConnectionError, RuntimeError, ValueError) as err:
            where = f"at {self.address}" if self.address else "on this machine"
            raise InputError(f"cannot reach a Ray cluster {where} ({str(err).splitlines()[0][:160]}); start one "
                             "with ray start --head, or leave address out to start a local one", "address") from None
        return True

    def _gpu_bytes(self, ray) -> int:
        """Memory of the cluster's (smallest) GPU, read by a tiny task on a GPU node."""
        @ray.remote(num_gpus=GPU_FRACTION_STEP, num_cpus=0, max_calls=0)
        def probe() -> int:
            import torch

            return int(torch.cuda.get_device_properties(0).total_memory) if torch.cuda.is_available() else 0

        return ray.get(probe.remote())

    def run(self, tasks, options, *, finished, event, should_stop, log) -> None:
        ray = require_ray()
        started = self._connect(ray)
        try:
            nodes = [n for n in ray.nodes() if n.get("Alive")]
            node_cpus = [int(n["Resources"].get("CPU", 0)) for n in nodes if n["Resources"].get("CPU", 0) >= 1]
            gpus = float(ray.cluster_resources().get("GPU", 0))
            per_node = self.workers or 1
            threads = self.threads if self.threads is not None else max(1, min(node_cpus or [1]) // per_node)
            if threads > max(node_cpus or [0]):  # Ray would wait for such a node for ever
                raise InputError(f"threads {threads} is more than any node of the Ray cluster has (at most "
                                 f"{max(node_cpus or [0])} CPU(s)); use fewer threads", "threads")
            gpu_bytes = self._gpu_bytes(ray) if gpus > 0 else 0
            self._described = (f"Ray, {len(nodes)} node(s), {int(ray.cluster_resources().get('CPU', 0))} CPU(s), "
                               f"{gpus:g} GPU(s); {threads} thread(s) per job")
            log(f"executor: {self._described}")
            remote = ray.remote(max_calls=0, max_retries=RAY_RETRIES, retry_exceptions=False)(_ray_job)
            refs: dict[Any, int] = {}
            jobs = dict(tasks)
            for i, job in tasks:
                job = _absolute(job)
                jobs[i] = job
                opts: dict[str, Any] = {"num_cpus": threads}
                if gpus > 0:
                    opts["num_gpus"] = gpu_fraction(job_memory_bytes(job), gpu_bytes)
                refs[remote.options(**opts).remote(job, options, threads)] = i
                event("ray", i, {"state": "queued"})
            pending = list(refs)
            while pending:
                if should_stop():
                    for ref in pending:
                        ray.cancel(ref)
                    for ref in pending:
                        finished(refs[ref], {**failed_record(jobs[refs[ref]], "stopped (Ctrl-C) before it finished; "
                                                                              "resume the batch to run it"),
                                             "state": "interrupted"})
                    return
                done, pending = ray.wait(pending, num_returns=1, timeout=0.5)
                for ref in done:
                    i = refs[ref]
                    try:
                        finished(i, ray.get(ref))
                    except ray.exceptions.RayError as err:
                        finished(i, failed_record(jobs[i], _ray_error(err)))
        finally:
            if started:
                ray.shutdown()


def _absolute(job: dict) -> dict:
    """Paths as every node sees them: absolute (a Ray worker's working folder is not the driver's)."""
    job = dict(job)
    job["content"] = str(Path(job["content"]).resolve()) if job.get("content") else job.get("content")
    job["styles"] = [str(Path(s).resolve()) for s in job["styles"]]
    job["output"] = str(Path(job["output"]).resolve())
    return job


def _ray_error(err: BaseException) -> str:
    name = type(err).__name__
    if name in ("WorkerCrashedError", "NodeDiedError", "OwnerDiedError", "ObjectLostError"):
        return f"its Ray worker or node died {RAY_RETRIES + 1} times ({name}); see the Ray logs"
    first = str(err).strip().splitlines()[0] if str(err).strip() else name
    return f"Ray could not run it: {name}: {first[:200]}"


def wait_for_nodes(ray, count: int, timeout: float = 60.0) -> None:
    """Block until ``count`` nodes are alive (a cluster just started takes a few seconds)."""
    deadline = time.monotonic() + timeout
    while sum(1 for n in ray.nodes() if n.get("Alive")) < count:
        if time.monotonic() > deadline:
            raise InputError(f"the Ray cluster has fewer than {count} live node(s) after {timeout:.0f} s")
        time.sleep(0.2)
