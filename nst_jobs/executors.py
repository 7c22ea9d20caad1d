"""Where a batch's jobs run: in this process, in local worker processes (one per GPU, or ``workers`` on the
CPU with the cores divided among them), or on a Ray cluster (:mod:`nst_jobs.ray_executor`).

An executor gets the jobs still to do and reports back through two callbacks: ``finished(index, record)``
when a job ends, and ``event(worker, index, info)`` as it goes (``info`` is ``{"state": "started"}`` or a
step ``{"step", "total", "segment", "segments"}``). It never looks inside a job: a worker calls
:func:`nst_jobs.batch.run_job`.
"""

from __future__ import annotations

import collections
import contextlib
import multiprocessing
import multiprocessing.connection
import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol, Sequence

from nst_core.device import usable_cores

__all__ = ["Executor", "LocalExecutor", "usable_cores", "make_executor", "EXECUTORS"]

EXECUTORS = ("local", "ray")
STEP_EVENT_SECONDS = 0.5  # a worker reports its current step at most this often

Finished = Callable[[int, dict], None]
Event = Callable[[str, int, dict], None]


class Executor(Protocol):
    """Runs jobs (``(index, job dict)`` pairs) with the same keyword options for :func:`run_job` each."""

    name: str

    def describe(self) -> str: ...

    def run(self, tasks: Sequence[tuple[int, dict]], options: dict, *, finished: Finished, event: Event,
            should_stop: Callable[[], bool], log: Callable[[str], None]) -> None: ...


def _visible_gpus() -> list[str]:
    """The GPUs this process sees, as ``CUDA_VISIBLE_DEVICES`` names them (none without CUDA)."""
    try:
        import torch

        n = torch.cuda.device_count() if torch.cuda.is_available() else 0
    except Exception:  # a broken driver is no GPU
        n = 0
    if n == 0:
        return []
    named = os.environ.get("CUDA_VISIBLE_DEVICES")
    names = [g.strip() for g in named.split(",") if g.strip()] if named else []
    return names[:n] if len(names) >= n else [str(i) for i in range(n)]


def failed_record(job: dict, error: str) -> dict:
    return {"job": job, "state": "failed", "seconds": 0.0, "metrics": None, "steps": None, "error": error}


def _throttled(send: Callable[[dict], None]) -> Callable[[dict], None]:
    last = [0.0]

    def on_step(info: dict) -> None:
        now = time.monotonic()
        if now - last[0] >= STEP_EVENT_SECONDS or info["step"] == info["total"]:
            last[0] = now
            send(info)
    return on_step


@dataclass
class LocalExecutor:
    """Jobs on this machine. ``workers``: processes (default one per visible GPU, else 1); with one worker
    and no GPU to pin, jobs run in this process. Each worker is pinned to a GPU (round robin) with
    ``CUDA_VISIBLE_DEVICES`` and runs ``threads`` intra-op threads (default: the usable cores divided
    among the workers, so that they do not oversubscribe the cores; ``threads=0`` leaves PyTorch's own
    default, every core in each worker). A worker keeps its backbones and style targets between jobs. A
    worker that dies (killed, crashed, out of memory) loses only its current job, which is retried once on
    a fresh worker."""

    workers: int | None = None
    threads: int | None = None
    gpus: list[str] | None = None
    name: str = field(default="local", init=False)

    def __post_init__(self):
        from nst_core import InputError

        if self.workers is not None and self.workers < 1:
            raise InputError(f"workers must be at least 1, not {self.workers}", "workers")
        if self.threads is not None and self.threads < 0:
            raise InputError(f"threads must be 0 (PyTorch's default) or more, not {self.threads}", "threads")
        if self.gpus is None:
            self.gpus = _visible_gpus()
        self.n = self.workers or max(1, len(self.gpus))
        if self.threads is None:
            self.per_worker = max(1, usable_cores() // self.n)
        else:
            self.per_worker = self.threads  # 0: leave PyTorch's default

    @property
    def in_process(self) -> bool:
        return self.n == 1 and not self.gpus

    def _threads_why(self) -> str:
        if self.threads is not None:
            return f"the batch's threads per worker ({self.threads})"
        return f"a batch worker's share of {usable_cores()} core(s) among {self.n} worker(s)"

    def describe(self) -> str:
        threads = "PyTorch's default threads" if self.per_worker == 0 else f"{self.per_worker} thread(s)"
        if self.in_process:
            return f"in this process, {threads}"
        where = f" on GPU(s) {', '.join(self.gpus)}" if self.gpus else ""
        return f"{self.n} worker process(es){where}, {threads} each"

    def run(self, tasks, options, *, finished, event, should_stop, log) -> None:
        if self.in_process:
            self._run_here(tasks, options, finished=finished, event=event, should_stop=should_stop)
        else:
            _Pool(self, options, finished, event, should_stop, log).run(tasks)

    def _run_here(self, tasks, options, *, finished, event, should_stop) -> None:
        from nst_core.device import host_threads

        from .batch import run_job

        with contextlib.ExitStack() as stack:
            if self.per_worker:
                stack.enter_context(host_threads(self.per_worker, self._threads_why()))
            for i, job in tasks:
                if should_stop():
                    return
                event("worker", i, {"state": "started"})
                record = run_job(job, should_stop=should_stop,
                                 on_step=_throttled(lambda info, i=i: event("worker", i, info)), **options)
                record["worker"] = "worker"
                finished(i, record)
                if record["state"] == "interrupted":
                    return


def _worker_main(conn, stop, threads: int, gpu: str | None, why: str = "") -> None:
    """A worker process: jobs in over its pipe, events and records out, until it gets None."""
    import signal

    if gpu is not None:  # before CUDA is first touched in this process
        os.environ["CUDA_VISIBLE_DEVICES"] = gpu
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's: it sets `stop` for every worker
    if threads:
        from nst_core import set_threads

        set_threads(threads, why)
    from .batch import run_job

    while True:
        try:
            task = conn.recv()
        except EOFError:
            return
        if task is None:
            return
        i, job, options = task
        record = run_job(job, should_stop=stop.is_set,
                         on_step=_throttled(lambda info, i=i: conn.send(("step", i, info))), **options)
        if gpu is not None:
            record["cuda_visible_devices"] = os.environ.get("CUDA_VISIBLE_DEVICES")
        conn.send(("done", i, record))


@dataclass
class _Slot:
    label: str
    gpu: str | None
    proc: Any = None
    conn: Any = None
    job: int | None = None


class _Pool:
    """The local worker processes: one job at a time each, handed out as they free up."""

    def __init__(self, ex: LocalExecutor, options: dict, finished: Finished, event: Event,
                 should_stop: Callable[[], bool], log: Callable[[str], None]):
        self.ctx = multiprocessing.get_context("spawn")  # no fork of a process that may hold CUDA or threads
        self.stop = self.ctx.Event()
        self.ex, self.options, self.finished, self.event = ex, options, finished, event
        self.should_stop, self.log = should_stop, log
        gpus = ex.gpus or [None]
        self.slots = [_Slot(f"worker {k + 1}" + (f" (GPU {gpus[k % len(gpus)]})" if ex.gpus else ""),
                            gpus[k % len(gpus)]) for k in range(ex.n)]

    def _start(self, slot: _Slot) -> None:
        parent, child = self.ctx.Pipe()
        slot.proc = self.ctx.Process(target=_worker_main, daemon=True,
                                     args=(child, self.stop, self.ex.per_worker, slot.gpu, self.ex._threads_why()),
                                     name=f"nst-{slot.label}")
        slot.proc.start()
        child.close()
        slot.conn, slot.job = parent, None

    def run(self, tasks: Sequence[tuple[int, dict]]) -> None:
        jobs = dict(tasks)
        queue = collections.deque(i for i, _ in tasks)
        attempts = collections.Counter()
        for slot in self.slots[:max(1, min(len(self.slots), len(queue)))]:
            self._start(slot)
        live = [s for s in self.slots if s.proc is not None]

        def hand_out(slot: _Slot) -> None:
            if queue and not self.stop.is_set():
                i = queue.popleft()
                slot.job = i
                slot.conn.send((i, jobs[i], self.options))
                self.event(slot.label, i, {"state": "started"})

        try:
            for slot in live:
                hand_out(slot)
            while any(s.job is not None for s in live):
                if not self.stop.is_set() and self.should_stop():
                    self.stop.set()  # running image jobs save a checkpoint and stop; nothing new starts
                ready = multiprocessing.connection.wait([s.conn for s in live if s.job is not None] +
                                                        [s.proc.sentinel for s in live if s.job is not None],
                                                        timeout=0.2)
                if not ready:
                    continue
                for slot in live:
                    self._drain(slot, hand_out)
                    if slot.job is not None and not slot.proc.is_alive():
                        self._drain(slot, hand_out)  # a record sent just before the end
                    if slot.job is not None and not slot.proc.is_alive():
                        i, slot.job = slot.job, None
                        attempts[i] += 1
                        code = slot.proc.exitcode
                        if attempts[i] < 2:
                            self.log(f"{slot.label} died (exit code {code}) during job {i + 1}; retrying that job once")
                            queue.appendleft(i)
                        else:
                            self.finished(i, failed_record(jobs[i], f"its worker process died twice (exit code "
                                                                    f"{code}: killed, crashed or out of memory)"))
                        slot.conn.close()
                        if queue and not self.stop.is_set():
                            self._start(slot)
                            hand_out(slot)
        finally:
            for slot in live:
                try:
                    slot.conn.send(None)
                except (OSError, ValueError):
                    pass
            deadline = time.monotonic() + 10
            for slot in live:
                slot.proc.join(max(0.0, deadline - time.monotonic()))
                if slot.proc.is_alive():
                    slot.proc.terminate()
                    slot.proc.join(5)

    def _drain(self, slot: _Slot, hand_out: Callable[[_Slot], None]) -> None:
        while slot.job is not None:
            try:
                if not slot.conn.poll():
                    return
                kind, i, payload = slot.conn.recv()
            except (EOFError, OSError):
                return
            if kind == "step":
                self.event(slot.label, i, payload)
            else:
                slot.job = None
                payload["worker"] = slot.label
                self.finished(i, payload)
                hand_out(slot)


def make_executor(executor: str | Executor = "local", *, workers: int | None = None, threads: int | None = None,
                  address: str | None = None) -> Executor:
    """An executor by name (``local`` or ``ray``) with its settings, or the one given."""
    from nst_core import InputError

    if not isinstance(executor, str):
        return executor
    if executor == "local":
        if address is not None:
            raise InputError("address is for executor ray; leave it out, or add executor ray", "address")
        return LocalExecutor(workers=workers, threads=threads)
    if executor == "ray":
        from .ray_executor import RayExecutor

        return RayExecutor(address=address, workers=workers, threads=threads)
    raise InputError(f"executor must be one of {', '.join(EXECUTORS)}, not {executor!r}", "executor")
