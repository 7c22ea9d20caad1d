"""Run plans: a front end says what to optimize, segment by segment; :func:`run_plan` runs it.

A front end turns its inputs into a :class:`Plan`: an ordered list of :class:`Segment` (one per image
scale, one per audio chunk and channel). Each segment builds its initial signal and loss function when
its turn comes (so only one segment's targets are in memory at a time), from what the segment before it
carried over (the previous scale's result, to be upsampled), and hands its own result on through
``finish`` (an audio chunk to the cross-fade). :func:`run_plan` does the rest for every modality: the
loop, callbacks, NaN handling, timings, per-run peak memory and the trace's ``runs``.

>>> import torch
>>> from nst_core import OptimizeConfig
>>> seg = Segment("one", lambda carry: (torch.zeros(3), lambda x: {"total": (x - 1).pow(2).sum()}))
>>> out = run_plan(Plan([seg], OptimizeConfig(steps=5, optimizer="adam", learning_rate=0.5)))
>>> out.steps, out.runs[0]["segment"], out.stopped
(5, 'one', None)
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, NamedTuple, Sequence

import torch
from torch import Tensor

from .config import resolve_config
from .device import (apply_threads, device_description, resolve_device, resolve_precision, seed_everything,
                     synchronize, threads_from)
from .errors import InputError, InterruptedRun
from .fileio import atomic_path
from .optimize import Interrupted, LossFn, OptimizeConfig, Result, Step, optimize
from .trace import json_safe, run_trace

__all__ = ["Segment", "Plan", "PlanResult", "Checkpoint", "CHECKPOINT_FORMAT", "fingerprint", "RunStart", "start_run", "run_plan", "time_loss_fn"]


@dataclass
class Segment:
    """One optimization of a plan.

    label : how messages name it (``scale 2 (512x384 px)``, ``left chunk 3/5``).
    prepare : ``prepare(carry) -> (signal0, loss_fn)``; ``carry`` is what the previous segment's
        ``finish`` returned (None for the first). Called when the segment's turn comes.
    info : recorded with the segment's run in the trace (e.g. ``{"scale": 0, "size": [w, h]}``).
    project : maps the signal back into its valid set after every update (an image's [0, 1]).
    finish : ``finish(signal) -> carry`` receives the segment's best signal; what it returns goes to the
        next segment's ``prepare``. Default: the signal itself.
    """

    label: str
    prepare: Callable[[Any], tuple[Tensor, LossFn]]
    info: Mapping[str, Any] = field(default_factory=dict)
    project: Callable[[Tensor], Tensor] | None = None
    finish: Callable[[Tensor], Any] | None = None


@dataclass
class Plan:
    """What a front end asks the core to run.

    segments : in order. optimize : the optimizer settings of every segment. precision : resolved
    (``fp32``, ``tf32``, ``bf16``). stop_on_failure : a NaN or inf loss ends the whole plan (image
    scales build on each other) rather than only its segment (audio chunks do not). estimate : for a
    plan of several segments, ``estimate(seconds_per_step, total_steps) -> message`` is logged once the
    first segment's step has been timed (None: no estimate). replay : resuming replays the finished
    segments' ``finish`` with their saved signals, in order (for a plan whose ``finish`` feeds state the
    checkpoint does not hold, such as audio's cross-fade and streaming Griffin-Lim); the checkpoint then
    keeps every finished segment's signal.
    """

    segments: Sequence[Segment]
    optimize: OptimizeConfig
    precision: str = "fp32"
    stop_on_failure: bool = True
    estimate: Callable[[float, int], str] | None = None
    resumable: bool = True
    replay: bool = False


CHECKPOINT_FORMAT = "nst-checkpoint/1"


@dataclass
class Checkpoint:
    """Where a plan saves its state, how often, and what a resume must match.

    path : the checkpoint file (written atomically). every : steps between saves (0: only when the run
    is interrupted). fingerprint : a hash of the run's inputs and settings; a checkpoint made for other
    ones is refused. resume : continue from ``path`` instead of starting over.
    """

    path: Path
    fingerprint: str
    every: int = 0
    resume: bool = False
    _saved: dict | None = field(default=None, repr=False)

    @classmethod
    def for_run(cls, path: str | os.PathLike | None, settings: dict, inputs: Sequence[Any], *, every: int = 0,
                resume: bool = False) -> "Checkpoint | None":
        """The checkpoint of a run with these settings and inputs (tensors), or None without ``path``. With
        ``resume`` it is read at once, so that one made for other inputs or settings is refused before any
        work."""
        if path is None:
            return None
        ck = cls(Path(path), fingerprint(settings, inputs), every=every, resume=resume)
        if resume:
            ck.load()
        return ck

    def load(self) -> dict:
        """The saved state, checked against this run's fingerprint (read once; call early to refuse a wrong
        checkpoint before any work)."""
        if self._saved is None:
            self._saved = _load_checkpoint(self)
        return self._saved


@dataclass
class PlanResult:
    """What :func:`run_plan` returns: every segment's summary and info (the trace's ``runs``) and what the
    last segment's ``finish`` returned. The segments' own signals are not kept (a long clip's chunks would
    all stay in memory); ``on_result`` sees each :class:`Result` as it ends.
    """

    runs: list[dict]
    carry: Any
    stopped: str | None
    device: torch.device
    precision: str = "fp32"

    @property
    def steps(self) -> int:
        return sum(r["steps_run"] for r in self.runs)

    @property
    def seconds(self) -> float:
        return sum(r["seconds"] for r in self.runs)

    @property
    def peak_memory_bytes(self) -> int:
        return max((r["peak_memory_bytes"] for r in self.runs), default=0)

    def trace(self, *, modality: str, settings: Mapping[str, Any], inputs: Mapping[str, Any],
              extra: Mapping[str, Any] | None = None) -> dict:
        """The run's trace document (:func:`nst_core.run_trace`) with device, precision and stop reason."""
        common = {"device": device_description(self.device), "precision": self.precision, "stopped": self.stopped,
                  "threads": torch.get_num_threads(), "threads_from": threads_from(),
                  "stop_reasons": [f"{r['segment']}: {r['stop_reason']}" for r in self.runs
                                   if r.get("stop_reason")]}
        return run_trace(modality=modality, settings=settings, runs=self.runs, inputs=inputs,
                         extra={**common, **(extra or {})})


class RunStart(NamedTuple):
    """What every run settles before it reads its inputs: the config, the device and the precision."""

    config: Any
    device: torch.device
    precision: str


def start_run(cls: type, config: Any, options: Mapping[str, Any], *, owner: str) -> RunStart:
    """The first steps of every front end's run: the config asked for (``config`` with keyword ``options``
    on top, checked), the device and precision it resolves to, and the seed applied (before anything random
    is built: noise starts, random weights)."""
    cfg = resolve_config(cls, config, options, owner=owner)
    device = resolve_device(cfg.device)
    precision = resolve_precision(cfg.precision, device)
    apply_threads(getattr(cfg, "threads", None))
    seed_everything(cfg.seed)
    return RunStart(cfg, device, precision)


def time_loss_fn(loss_fn: LossFn, x0: Tensor, n: int = 2) -> float:
    """Seconds per loss-and-gradient evaluation, measured on ``n`` evaluations after one warm-up."""
    x = x0.detach().clone().float().requires_grad_(True)
    loss_fn(x)["total"].backward()
    synchronize(x.device)
    t = time.perf_counter()
    for _ in range(n):
        x.grad = None
        loss_fn(x)["total"].backward()
    synchronize(x.device)
    return (time.perf_counter() - t) / n


def fingerprint(settings: Mapping[str, Any], inputs: Sequence[Any]) -> str:
    """sha256 of a run's settings and of its inputs' contents (files read in blocks, tensors by their bytes):
    what a checkpoint must match to be resumed, and (next) what marks a batch job as done."""
    h = hashlib.sha256(json.dumps(json_safe(settings), sort_keys=True).encode())
    for item in inputs:
        if isinstance(item, Tensor):
            h.update(item.detach().cpu().contiguous().numpy().tobytes())
        elif item is not None:
            with open(item, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    h.update(block)
    return h.hexdigest()


def _load_checkpoint(ck: Checkpoint) -> dict:
    path = Path(ck.path)
    if not path.is_file():
        raise InputError(f"checkpoint {path} does not exist; give the .ckpt file a run with checkpoints wrote")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:
        raise InputError(f"checkpoint {path} cannot be read (truncated, or not a checkpoint); start the run "
                         "again without resume") from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise InputError(f"{path} is not a checkpoint of this version ({CHECKPOINT_FORMAT})")
    if state.get("fingerprint") != ck.fingerprint:
        raise InputError(f"checkpoint {path} was made for other inputs or settings; resume with the same inputs "
                         "and options, or start again without resume")
    return state


def run_plan(plan: Plan, *, callbacks: Sequence[Callable[[Step], None]] = (),
             log: Callable[[str], None] | None = None,
             on_result: Callable[[int, Result], None] | None = None,
             checkpoint: Checkpoint | None = None, should_stop: Callable[[], bool] | None = None) -> PlanResult:
    """Run every segment of ``plan`` in order with :func:`nst_core.optimize`.

    A segment whose loss becomes NaN or inf keeps its best finite signal (``finish`` receives it); the
    plan then stops there if ``plan.stop_on_failure``, else goes on with the next segment. ``log``
    receives one line per such stop and the time estimate of a long plan; ``on_result(index, result)``
    each segment's :class:`nst_core.Result` (its best signal before ``finish``, its per-step losses).

    With ``checkpoint`` the state (segment, signal, optimizer history, losses so far, what the earlier
    segments carried over) is saved every ``checkpoint.every`` steps and when ``should_stop()`` turns true
    at a step boundary; the run then raises :class:`nst_core.InterruptedRun` (exit code 130) with the
    best signal so far. ``checkpoint.resume`` continues a saved run; on the CPU with a fixed seed the
    result is bit-identical to a run that was never stopped. The file is removed when the plan finishes.
    """
    say = log or (lambda _msg: None)
    segments = list(plan.segments)
    runs: list[dict] = []
    carry: Any = None
    stopped: str | None = None
    device = torch.device("cpu")
    first, resume_state = 0, None
    finished: list[Tensor] = []  # with replay: the finished segments' signals (CPU), for the checkpoint
    if checkpoint is not None and not plan.resumable:
        raise InputError("checkpoints are not available for this kind of run yet")
    if checkpoint is not None and checkpoint.resume:
        saved = checkpoint.load()
        first, runs, carry, resume_state = int(saved["segment"]), list(saved["runs"]), saved["carry"], saved["state"]
        finished = list(saved.get("finished") or [])
        if plan.replay and len(finished) != first:
            raise InputError(f"checkpoint {checkpoint.path} does not hold the {first} finished part(s) it should; "
                             "start the run again without resume")
        say(f"resuming {segments[first].label} at step {resume_state['steps_run']} from {checkpoint.path}")
    for index in range(first, len(segments)):
        seg = segments[index]
        signal0, loss_fn = seg.prepare(carry.to(device) if isinstance(carry, Tensor) else carry)
        device = signal0.device
        if plan.replay and index == first and first > 0:  # what the finished segments fed on, as they fed it
            for k in range(first):
                if segments[k].finish is not None:
                    carry = segments[k].finish(finished[k].to(device))
        if index == 0 and plan.estimate is not None and len(segments) > 1 and resume_state is None:
            say(plan.estimate(time_loss_fn(loss_fn, signal0), plan.optimize.steps * len(segments)))
        save = None
        if checkpoint is not None:
            def save(state: dict, index=index, carry=carry) -> None:
                doc = {"format": CHECKPOINT_FORMAT, "fingerprint": checkpoint.fingerprint, "segment": index,
                       "runs": runs, "carry": carry.detach().cpu() if isinstance(carry, Tensor) else None,
                       "finished": finished if plan.replay else None,
                       "state": {k: (v.detach().cpu() if isinstance(v, Tensor) else v) for k, v in state.items()}}
                with atomic_path(checkpoint.path) as tmp:
                    torch.save(doc, tmp)
        try:
            result = optimize(signal0, loss_fn, plan.optimize, precision=plan.precision, project=seg.project,
                              callbacks=callbacks, segment=(index, len(segments)), resume=resume_state,
                              save_state=save, save_every=checkpoint.every if checkpoint else 0,
                              should_stop=should_stop)
        except Interrupted as stop:
            best, steps = stop.args
            where = f"; checkpoint {checkpoint.path}" if checkpoint is not None else ""
            raise InterruptedRun(f"interrupted at step {steps} of {seg.label}{where}", checkpoint=
                                 checkpoint.path if checkpoint is not None else None, partial=best) from None
        resume_state = None
        if on_result is not None:
            on_result(index, result)
        run = result.summary()
        run.update(segment=seg.label, **dict(seg.info))
        runs.append(run)
        if checkpoint is not None and plan.replay:
            finished.append(result.signal.detach().cpu())
        carry = seg.finish(result.signal) if seg.finish is not None else result.signal
        if result.converged:
            say(f"{seg.label}: {result.stop_reason}")
        if result.stopped:
            say(f"{seg.label}: {result.stopped}")
            stopped = stopped or f"{seg.label}: {result.stopped}"
            if plan.stop_on_failure:
                break
    if checkpoint is not None:
        Path(checkpoint.path).unlink(missing_ok=True)
    return PlanResult(runs=runs, carry=carry, stopped=stopped, device=device,
                      precision=plan.precision)
