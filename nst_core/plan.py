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

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, NamedTuple, Sequence

import torch
from torch import Tensor

from .config import resolve_config
from .device import device_description, resolve_device, resolve_precision, seed_everything, synchronize
from .optimize import LossFn, OptimizeConfig, Result, Step, optimize
from .trace import run_trace

__all__ = ["Segment", "Plan", "PlanResult", "RunStart", "start_run", "run_plan", "time_loss_fn"]


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
    first segment's step has been timed (None: no estimate).
    """

    segments: Sequence[Segment]
    optimize: OptimizeConfig
    precision: str = "fp32"
    stop_on_failure: bool = True
    estimate: Callable[[float, int], str] | None = None


@dataclass
class PlanResult:
    """What :func:`run_plan` returns: every segment's :class:`Result` with its summary and info.

    ``runs`` are the trace's per-segment records; ``carry`` is what the last segment's ``finish`` returned.
    """

    results: list[Result]
    runs: list[dict]
    carry: Any
    stopped: str | None
    device: torch.device

    @property
    def steps(self) -> int:
        return sum(r.steps_run for r in self.results)

    @property
    def seconds(self) -> float:
        return sum(r.seconds for r in self.results)

    @property
    def peak_memory_bytes(self) -> int:
        return max((r.peak_memory_bytes for r in self.results), default=0)

    def trace(self, *, modality: str, settings: Mapping[str, Any], inputs: Mapping[str, Any],
              extra: Mapping[str, Any] | None = None) -> dict:
        """The run's trace document (:func:`nst_core.run_trace`) with device, precision and stop reason."""
        common = {"device": device_description(self.device),
                  "precision": self.results[0].precision if self.results else None,
                  "stopped": self.stopped}
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


def run_plan(plan: Plan, *, callbacks: Sequence[Callable[[Step], None]] = (),
             log: Callable[[str], None] | None = None,
             on_result: Callable[[int, Result], None] | None = None) -> PlanResult:
    """Run every segment of ``plan`` in order with :func:`nst_core.optimize`.

    A segment whose loss becomes NaN or inf keeps its best finite signal (``finish`` receives it); the
    plan then stops there if ``plan.stop_on_failure``, else goes on with the next segment. ``log``
    receives one line per such stop and the time estimate of a long plan; ``on_result(index, result)``
    each segment's :class:`nst_core.Result` (its best signal before ``finish``, its per-step losses).
    """
    say = log or (lambda _msg: None)
    segments = list(plan.segments)
    results: list[Result] = []
    runs: list[dict] = []
    carry: Any = None
    stopped: str | None = None
    device = torch.device("cpu")
    for index, seg in enumerate(segments):
        signal0, loss_fn = seg.prepare(carry)
        device = signal0.device
        if index == 0 and plan.estimate is not None and len(segments) > 1:
            say(plan.estimate(time_loss_fn(loss_fn, signal0), plan.optimize.steps * len(segments)))
        result = optimize(signal0, loss_fn, plan.optimize, precision=plan.precision, project=seg.project,
                          callbacks=callbacks, segment=(index, len(segments)))
        results.append(result)
        if on_result is not None:
            on_result(index, result)
        run = result.summary()
        run.update(segment=seg.label, **dict(seg.info))
        runs.append(run)
        carry = seg.finish(result.signal) if seg.finish is not None else result.signal
        if result.stopped:
            say(f"{seg.label}: {result.stopped}")
            stopped = stopped or f"{seg.label}: {result.stopped}"
            if plan.stop_on_failure:
                break
    return PlanResult(results=results, runs=runs, carry=carry, stopped=stopped, device=device)
