"""The one optimization loop every modality uses.

The loop keeps losses, the best-so-far signal and the optimizer state on the device. The host reads
values only every ``log_every`` steps (to check for NaN/inf) and when a callback asks for them.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Literal, Sequence

import torch
from torch import Tensor

from .config import option, validate
from .device import peak_memory_bytes, precision_context, reset_peak_memory, synchronize

LossFn = Callable[[Tensor], "dict[str, Tensor]"]

#: Default learning rates: L-BFGS takes unit steps (as torch.optim.LBFGS without line search);
#: Adam's rate is in the signal's own units (0.02 of an image's [0, 1] range).
DEFAULT_LEARNING_RATE = {"lbfgs": 1.0, "adam": 0.02}

#: The stopping rule's defaults (the image front end's; audio sets its own), chosen by
#: ``benchmarks/convergence.py`` (see the README): a run stops when its best loss fell by less than 1 % over
#: the last 100 steps, and never before step 100.
DEFAULT_TOLERANCE = 1e-2
DEFAULT_STOP_WINDOW = 100
DEFAULT_MIN_STEPS = 100


@dataclass(frozen=True)
class OptimizeConfig:
    """Settings of :func:`optimize`, nested in each front end's config as ``optimize``.

    steps : number of loss evaluations (one gradient each).
    optimizer : ``lbfgs`` (default, as neural-style) or ``adam``.
    learning_rate : step size; ``None`` takes the optimizer's default (L-BFGS 1.0, Adam 0.02).
    history_size : L-BFGS memory; costs ``2 * history_size`` copies of the signal.
    history_precision : how the L-BFGS history is stored: ``fp32``, or ``bf16`` (half the memory, the
        products with it still accumulated in fp32).
    log_every : steps between host reads of the loss (NaN check, progress).
    max_step : L-BFGS only: largest change of any signal element in one step (a trust region that
        needs no host read); ``None`` leaves steps unbounded, as torch.optim.LBFGS without line search.
    tolerance, stop_window, min_steps : the stopping rule. At each logging interval from ``min_steps`` on,
        the run stops when the best total loss fell by less than ``tolerance`` (a fraction of it) over the
        last ``stop_window`` steps; ``steps`` stays the ceiling. ``tolerance=0`` runs every step.

    >>> OptimizeConfig(optimizer="adam").lr
    0.02
    """

    steps: int = option(500, kind="int", min=1, flags=("--iterations", "--num-iterations"), aliases=("iterations",),
                        help="Optimization steps (gradient evaluations) per scale or chunk.")
    optimizer: Literal["lbfgs", "adam"] = option("lbfgs", choices=tuple(DEFAULT_LEARNING_RATE),
                                                 help="lbfgs (as neural-style) or adam.")
    learning_rate: float | None = option(None, kind="float", min=0.0, min_open=True, optional=True,
                                         help="Step size (default: 1 for L-BFGS, 0.02 for Adam).")
    history_size: int = option(100, kind="int", min=1, help="L-BFGS memory: 2 x this many copies of the signal.")
    history_precision: Literal["fp32", "bf16"] = option(
        "fp32", choices=("fp32", "bf16"),
        help="L-BFGS history storage: fp32, or bf16 (half the memory; its products still accumulate in fp32).")
    log_every: int = option(20, kind="int", min=1, help="Steps between loss readouts (NaN check, progress).")
    max_step: float | None = option(None, kind="float", min=0.0, min_open=True, optional=True, zero_is_none=True,
                                    help="L-BFGS trust region: largest change of any signal element in one step "
                                         "(0: no limit).")
    tolerance: float = option(DEFAULT_TOLERANCE, kind="float", min=0.0,
                              help="Stop when the loss fell by less than this fraction over the stop window "
                                   "(0: run every step).")
    stop_window: int = option(DEFAULT_STOP_WINDOW, kind="int", min=1,
                              help="Steps over which the stopping rule measures the loss's fall.")
    min_steps: int = option(DEFAULT_MIN_STEPS, kind="int", min=1,
                            help="Steps every run takes before the stopping rule may end it.")

    def __post_init__(self):
        validate(self)

    @property
    def lr(self) -> float:
        return self.learning_rate if self.learning_rate is not None else DEFAULT_LEARNING_RATE[self.optimizer]


class Step:
    """What a callback sees after each step. Values on the device are read only when asked for.

    index : steps done so far in this segment (1-based). total : steps planned for it. seconds : host
    time since the segment's start (not synchronised, so it runs ahead of the device between logging
    intervals). signal : the current signal (detached, on the device; do not modify). segment,
    segments : which segment of a :class:`nst_core.Plan` this is (0-based) and how many there are.
    """

    __slots__ = ("index", "total", "seconds", "signal", "segment", "segments", "_trace", "_names")

    def __init__(self, index: int, total: int, seconds: float, signal: Tensor, trace: Tensor, names: Sequence[str],
                 segment: int = 0, segments: int = 1):
        self.index, self.total, self.seconds, self.signal = index, total, seconds, signal
        self.segment, self.segments = segment, segments
        self._trace, self._names = trace, names

    @property
    def losses(self) -> dict[str, float]:
        """Loss terms evaluated at this step (reads the device)."""
        row = self._trace[self.index - 1].tolist()
        return dict(zip(self._names, row))


@dataclass
class Result:
    """Outcome of :func:`optimize`.

    signal : best signal seen (lowest total loss), detached. trace : per-step values of every loss
    term. best_step : 1-based step of ``signal``. stopped : why the run failed early (NaN or inf), or
    None. stop_reason : why it ended, in words (converged at a step, every step run, or the failure).
    timeline : ``(step, seconds since start)`` read at every logging interval, where the loop
    synchronises anyway, for loss-against-time curves.
    """

    signal: Tensor
    trace: dict[str, list[float]]
    best_step: int
    best_loss: float
    steps_run: int
    seconds: float
    seconds_per_step: float
    precision: str
    device: str
    peak_memory_bytes: int
    optimizer: str
    stopped: str | None = None
    timeline: list[tuple[int, float]] = field(default_factory=list)
    config: dict = field(default_factory=dict)
    stop_reason: str = ""
    converged: bool = False

    def summary(self) -> dict:
        """JSON-ready summary without the signal."""
        d = asdict(self)
        d.pop("signal")
        return d


class LBFGS:
    """L-BFGS without line search whose state stays on the device (no host synchronisation).

    The update of ``torch.optim.LBFGS(line_search_fn=None)``: first step ``lr * min(1, 1/|g|_1)``,
    then ``lr``. One difference: a curvature pair with ``y.s <= 1e-10`` is kept with zero weight
    instead of being dropped, which avoids a data-dependent branch (a host read); it contributes
    nothing to the direction but takes a history slot, so once the history is full the iterates can
    differ from torch's after such a pair.

    The direction comes from the compact representation of the inverse Hessian (Byrd, Nocedal and
    Schnabel 1994) rather than the two-loop recursion: the history lives in two ``(m, n)`` matrices and
    the inner products in two ``(m, m)`` ones. A step reads the history twice (one product with
    ``[s, y, g]``, one with the coefficients) and solves two small triangular systems: a handful of
    kernels instead of the two-loop's 4m small ones, whose launch overhead dominates a step on a GPU.
    The result is the same direction up to round-off.
    """

    def __init__(self, lr: float = 1.0, history_size: int = 100, max_step: float | None = None,
                 history_dtype: torch.dtype | None = None):
        self.lr, self.m, self.max_step = lr, history_size, max_step
        self.history_dtype = history_dtype  # None: the signal's own dtype
        self.W: Tensor | None = None  # (2m, n): rows 0..m-1 the s of each slot, m..2m-1 its y; a ring buffer
        self.SY: Tensor | None = None  # (m, m): SY[i, j] = s_i . y_j
        self.YY: Tensor | None = None  # (m, m): YY[i, j] = y_i . y_j
        self.count = 0  # pairs stored (at most m)
        self.head = 0  # next slot to write
        self.k = 0
        self.prev_x: Tensor | None = None
        self.prev_g: Tensor | None = None
        self.gamma: Tensor | None = None

    _STATE = ("W", "SY", "YY", "count", "head", "k", "prev_x", "prev_g", "gamma")

    def state_dict(self) -> dict:
        """The whole state (history, counters, previous point and gradient), for a checkpoint."""
        return {name: (v.detach().clone() if isinstance(v, Tensor) else v)
                for name in self._STATE for v in [getattr(self, name)]}

    def load_state_dict(self, state: dict) -> None:
        """Continue exactly where :meth:`state_dict` was taken (same history: the iterates are bit-identical)."""
        for name in self._STATE:
            setattr(self, name, state[name])

    def _store_and_project(self, s: Tensor, y: Tensor, g: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Store the pair (s, y); return ``S g``, ``Y g``, ``y.s`` and ``y.y``: one pass over the history for all."""
        m, slot = self.m, self.head
        if self.W is None:
            self.W = s.new_zeros(2 * m, s.numel(), dtype=self.history_dtype or s.dtype)
            self.SY = s.new_zeros(m, m)
            self.YY = s.new_zeros(m, m)
        self.W[slot] = s
        self.W[m + slot] = y
        p = self._history_times(torch.stack([s, y, g]).T)  # (2m, 3)
        self.SY[:, slot] = p[:m, 1]  # s_i . y_new (the new slot's own s_new . y_new included)
        self.SY[slot, :] = p[m:, 0]  # s_new . y_j
        self.YY[:, slot] = p[m:, 1]
        self.YY[slot, :] = p[m:, 1]
        self.head = (slot + 1) % m
        self.count = min(self.count + 1, m)
        return p[:m, 2], p[m:, 2], p[m + slot, 0], p[m + slot, 1]

    def _inverse_hessian_times(self, g: Tensor, sg: Tensor, yg: Tensor) -> Tensor:
        """``H g`` with ``H = gamma I + [S gamma*Y] M [S; gamma*Y]^T`` over the valid pairs (compact form).

        ``sg``, ``yg``: ``S g`` and ``Y g`` by slot.
        """
        assert self.W is not None and self.gamma is not None
        n, m = self.count, self.m
        # Slots oldest first; made on the device (a tensor from a host list would mean a copy and a wait).
        idx = (torch.arange(n, device=g.device) + (self.head - n)) % m
        sy = self.SY[idx][:, idx]
        ys = sy.diagonal()
        valid = ys > 1e-10  # zero-weight pairs (y.s <= 1e-10) drop out of the formula
        both = valid[:, None] & valid[None, :]
        eye = torch.eye(n, device=g.device, dtype=torch.bool)
        r = torch.where(both, sy.triu(), torch.zeros_like(sy))
        r = torch.where(eye & ~both, torch.ones_like(r), r)  # an invalid pair: identity row, decoupled
        d = torch.where(valid, ys, torch.ones_like(ys))
        yy = torch.where(both, self.YY[idx][:, idx], torch.zeros_like(sy))
        a = torch.where(valid, sg[idx], torch.zeros_like(ys))
        b = torch.where(valid, yg[idx], torch.zeros_like(ys))
        gamma = self.gamma
        u = torch.linalg.solve_triangular(r, a[:, None], upper=True)[:, 0]  # R^-1 S^T g
        w = d * u + gamma * (yy @ u) - gamma * b
        top = torch.linalg.solve_triangular(r.T, w[:, None], upper=False)[:, 0]  # R^-T (...)
        coef = g.new_zeros(2 * m)
        coef.index_copy_(0, idx, top)
        coef.index_copy_(0, idx + m, -gamma * u)
        return gamma * g + self._times_history(coef)

    #: Elements of the history upcast at a time when it is stored in a narrower type than the signal (16 MiB of
    #: fp32: measured fastest on a 2-core CPU, where larger pieces fall out of the cache).
    _CHUNK = 1 << 22

    def _history_times(self, v: Tensor) -> Tensor:
        """``W @ v`` (``v``: (n, k) in the signal's type), accumulated in the signal's type."""
        assert self.W is not None
        if self.W.dtype == v.dtype:
            return self.W @ v
        out = v.new_zeros(self.W.shape[0], v.shape[1])
        step = max(1, self._CHUNK // self.W.shape[0])
        for j in range(0, self.W.shape[1], step):
            out.addmm_(self.W[:, j:j + step].to(v.dtype), v[j:j + step])
        return out

    def _times_history(self, coef: Tensor) -> Tensor:
        """``coef @ W`` (``coef``: (2m,) in the signal's type), accumulated in the signal's type."""
        assert self.W is not None
        if self.W.dtype == coef.dtype:
            return coef @ self.W
        out = coef.new_empty(self.W.shape[1])
        step = max(1, self._CHUNK // self.W.shape[0])
        for j in range(0, self.W.shape[1], step):
            out[j:j + step] = coef @ self.W[:, j:j + step].to(coef.dtype)
        return out

    @torch.no_grad()
    def step(self, x: Tensor, grad: Tensor) -> None:
        """Update ``x`` (our own leaf tensor) in place from its gradient ``grad``."""
        xf, g = x.view(-1), grad.reshape(-1).to(x.dtype)  # view: x must be contiguous (optimize ensures it)
        if self.prev_x is not None:
            s, y = xf - self.prev_x, g - self.prev_g
            sg, yg, ys, yy = self._store_and_project(s, y, g)
            self.gamma = torch.where(ys > 1e-10, ys / yy.clamp_min(1e-30), self.gamma)
            d = self._inverse_hessian_times(g, sg, yg).neg_()
        else:  # the first step: steepest descent, scaled below
            d = g.neg()
        if self.k == 0:
            if self.max_step is not None:
                # With a trust region the first step goes to its edge, and the same scale stands in for
                # the Hessian until a pair with positive curvature arrives: small gradients (relative
                # losses spread over many elements) would otherwise give steps too small to matter.
                self.gamma = self.max_step / g.abs().max().clamp_min(1e-30)
                d.mul_(self.gamma)
                t = self.lr
            else:
                self.gamma = torch.ones((), device=x.device, dtype=x.dtype)
                t = (1.0 / g.abs().sum()).clamp(max=1.0) * self.lr
        else:
            t = self.lr
        self.prev_x, self.prev_g = xf.clone(), g.clone()
        step = d * t
        if self.max_step is not None:
            # Shrink the whole step so no element moves more than max_step: the direction is kept.
            step = step * (self.max_step / step.abs().max().clamp_min(self.max_step))
        xf.add_(step)
        self.k += 1


def _detached_copy(obj):
    """A copy of a nested state (dicts, lists, tensors) whose tensors later steps cannot change."""
    if isinstance(obj, Tensor):
        return obj.detach().clone()
    if isinstance(obj, dict):
        return {k: _detached_copy(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_detached_copy(v) for v in obj)
    return obj


def convergence(history: Sequence[tuple[int, float]], config: OptimizeConfig) -> str | None:
    """The stopping rule: why the run should stop now, or None to go on.

    ``history``: ``(step, best total loss so far)`` at each logging interval, the latest last. The run
    stops when, at step ``n >= min_steps``, the best loss fell by less than ``tolerance`` (relative to its
    value ``stop_window`` steps earlier) since the last reading at or before step ``n - stop_window``.
    Readings before the first step count as no reading: a window is only judged once it is whole.

    >>> cfg = OptimizeConfig(tolerance=0.01, stop_window=20, min_steps=20, log_every=10)
    >>> convergence([(10, 2.0), (20, 1.0), (30, 0.999)], cfg) is None  # fell 50 % over steps 10..30
    True
    >>> convergence([(10, 2.0), (20, 1.0), (30, 0.999), (40, 0.998)], cfg)
    'converged at step 40: the loss fell 0.2% over the last 20 steps (tolerance 1%)'
    """
    if config.tolerance <= 0 or not history:
        return None
    step, now = history[-1]
    if step < config.min_steps:
        return None
    then = [loss for s, loss in history if s <= step - config.stop_window]
    if not then or not math.isfinite(then[-1]) or not math.isfinite(now):
        return None
    fall = (then[-1] - now) / max(abs(then[-1]), 1e-30)
    if fall >= config.tolerance:
        return None
    span = step - max(s for s, _ in history if s <= step - config.stop_window)
    return (f"converged at step {step}: the loss fell {100 * fall:.3g}% over the last {span} steps "
            f"(tolerance {100 * config.tolerance:g}%)")


class Interrupted(Exception):
    """Raised by :func:`optimize` when ``should_stop()`` said so at a step boundary, after its state was saved.

    ``args``: the best signal so far and the steps done.
    """


def optimize(signal0: Tensor, loss_fn: LossFn, config: OptimizeConfig = OptimizeConfig(), *,
             precision: str = "fp32", project: Callable[[Tensor], Tensor] | None = None,
             callbacks: Sequence[Callable[[Step], None]] = (), segment: tuple[int, int] = (0, 1),
             resume: dict | None = None, save_state: Callable[[dict], None] | None = None, save_every: int = 0,
             should_stop: Callable[[], bool] | None = None) -> Result:
    """Minimise ``loss_fn(signal)["total"]`` starting from ``signal0``.

    Parameters
    ----------
    signal0 : Tensor
        Initial signal on the target device; not modified.
    loss_fn : callable
        ``loss_fn(signal) -> dict[str, Tensor]`` of scalar terms including ``"total"``.
    config : OptimizeConfig
    precision : str
        ``fp32``, ``tf32`` or ``bf16`` (already resolved from ``auto``), see :func:`precision_context`.
    project : callable, optional
        Maps the signal back into its valid set after every update (an image's [0, 1] range,
        a non-negative log-magnitude); the modality's hook into the loop.
    callbacks : sequence of callable
        Called with a :class:`Step` after every step.
    segment : (index, count)
        Where this run sits in a plan; passed on to the callbacks' :class:`Step`.
    resume : dict, optional
        A state ``save_state`` received: the run continues from that step exactly as it would have
        (signal, optimizer history, best so far and per-step losses restored; bit-identical on the CPU).
    save_state, save_every : callable, int
        ``save_state(state)`` every ``save_every`` steps (0: never) and before an interruption.
    should_stop : callable, optional
        Polled at every step boundary (a flag, no device read); when it returns True the state is saved
        and :class:`Interrupted` is raised with the best result so far as its argument.

    Returns
    -------
    Result
        Best signal by total loss. A NaN or inf loss stops the run at the next logging interval;
        the result is then the best finite step so far and ``stopped`` says what happened.
    """
    device = signal0.device
    x = signal0.detach().float().clone(memory_format=torch.contiguous_format)
    if project is not None:
        x = project(x)
    x.requires_grad_(True)
    if config.optimizer == "adam":
        opt: object = torch.optim.Adam([x], lr=config.lr)
    else:
        opt = LBFGS(lr=config.lr, history_size=config.history_size, max_step=config.max_step,
                    history_dtype=torch.bfloat16 if config.history_precision == "bf16" else x.dtype)

    reset_peak_memory(device)
    steps = config.steps
    trace: Tensor | None = None
    names: list[str] = []
    best_x = x.detach().clone()
    best_loss = torch.full((), math.inf, device=device)
    best_step = torch.zeros((), dtype=torch.long, device=device)
    stopped = None
    steps_run = 0
    checked = 0
    timeline: list[tuple[int, float]] = []
    history: list[tuple[int, float]] = []  # (step, best loss so far) at each logging interval
    converged = None
    earlier = 0.0  # seconds spent before a resume
    if resume is not None:
        with torch.no_grad():
            x.copy_(resume["x"].to(device))
        names, steps_run, checked = list(resume["names"]), int(resume["steps_run"]), int(resume["checked"])
        trace = torch.zeros(steps, len(names), device=device)
        trace[:steps_run] = resume["trace"].to(device)
        best_x = resume["best_x"].to(device).clone()
        best_loss = resume["best_loss"].to(device).clone()
        best_step = resume["best_step"].to(device).clone()
        timeline = [(int(a), float(b)) for a, b in resume["timeline"]]
        history = [(int(a), float(b)) for a, b in resume.get("history", [])]
        earlier = float(resume["seconds"])
        if isinstance(opt, LBFGS):
            opt.load_state_dict({k: (v.to(device) if isinstance(v, Tensor) else v) for k, v in resume["opt"].items()})
        else:
            opt.load_state_dict(resume["opt"])

    def snapshot() -> dict:
        return {"x": x.detach().clone(), "names": names, "steps_run": steps_run, "checked": checked,
                "trace": trace[:steps_run].clone() if trace is not None else torch.zeros(0, 0),
                "best_x": best_x.clone(), "best_loss": best_loss.clone(), "best_step": best_step.clone(),
                "timeline": [list(t) for t in timeline], "history": [list(h) for h in history],
                "seconds": time.perf_counter() - start,
                "opt": _detached_copy(opt.state_dict())}  # torch.optim hands out its live tensors

    synchronize(device)
    start = time.perf_counter() - earlier
    for i in range(steps_run, steps):
        with precision_context(precision, device):
            terms = loss_fn(x)
        total = terms["total"]
        (grad,) = torch.autograd.grad(total, x)
        if trace is None:
            names = list(terms)
            trace = torch.zeros(steps, len(names), device=device)
        with torch.no_grad():
            trace[i] = torch.stack([terms[k].detach().float() for k in names])
            loss = total.detach().float()
            better = loss < best_loss  # NaN compares false, so a NaN step is never kept
            best_loss = torch.where(better, loss, best_loss)
            best_step = torch.where(better, torch.full_like(best_step, i + 1), best_step)
            best_x = torch.where(better, x.detach(), best_x)
            if isinstance(opt, LBFGS):
                opt.step(x, grad)
            else:
                x.grad = grad
                opt.step()
                x.grad = None
            if project is not None:
                x.copy_(project(x))
        steps_run = i + 1
        if callbacks:
            now = time.perf_counter() - start
            view = Step(steps_run, steps, now, x.detach(), trace, names, *segment)
            for cb in callbacks:
                cb(view)
        if steps_run % config.log_every == 0 or steps_run == steps:
            block = trace[checked:steps_run]
            checked = steps_run
            if not bool(torch.isfinite(block).all()):
                bad = int((~torch.isfinite(block).all(dim=1)).nonzero()[0]) + checked - len(block) + 1
                stopped = f"loss became NaN or inf at step {bad}; kept the best result before it"
                steps_run = bad
                break
            timeline.append((steps_run, time.perf_counter() - start))
            if config.tolerance > 0:  # the loop has just synchronised: one more scalar costs nothing
                history.append((steps_run, float(best_loss)))
                converged = convergence(history, config)
                if converged:
                    break
        if steps_run < steps:
            if should_stop is not None and should_stop():
                if save_state is not None:
                    save_state(snapshot())
                raise Interrupted(best_x.detach(), steps_run)
            if save_state is not None and save_every and steps_run % save_every == 0:
                save_state(snapshot())
    synchronize(device)
    seconds = time.perf_counter() - start
    host_trace = trace[:steps_run].cpu() if trace is not None else torch.zeros(0, 0)
    trace_dict = {k: host_trace[:, j].tolist() for j, k in enumerate(names)}
    best_loss_f = float(best_loss)
    reason = stopped or converged or f"ran all {steps_run} steps"
    return Result(
        signal=best_x.detach(),
        trace=trace_dict,
        best_step=int(best_step),
        best_loss=best_loss_f,
        steps_run=steps_run,
        seconds=seconds,
        seconds_per_step=seconds / max(steps_run, 1),
        precision=precision,
        device=str(device),
        peak_memory_bytes=peak_memory_bytes(device),
        optimizer=config.optimizer,
        stopped=stopped,
        timeline=timeline,
        config=asdict(config),
        stop_reason=reason,
        converged=converged is not None,
    )
