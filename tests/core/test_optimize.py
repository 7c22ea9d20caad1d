"""Tests for nst_core.optimize and its device-resident L-BFGS.

L-BFGS is checked against torch.optim.LBFGS (no line search, one iteration per closure, tolerances off),
the loop's behaviour with measured thresholds: loss reduction, projection, best-so-far, NaN stop,
callbacks, determinism.
"""

from __future__ import annotations

import dataclasses
import json
import math

import pytest
import torch

from nst_core import LBFGS, Objective, OptimizeConfig, Result, Step, make_loss_fn, optimize, style_targets


def gen(seed):
    return torch.Generator().manual_seed(seed)


def quadratic(n=24, seed=0, dtype=torch.float64, scale=1.0):
    """0.5 x^T A x - b^T x with A SPD (eigenvalues in about [0.5, 5]) and its minimiser."""
    m = torch.randn(n, n, generator=gen(seed), dtype=dtype)
    a = m @ m.T / n + 0.5 * torch.eye(n, dtype=dtype)
    b = scale * torch.randn(n, generator=gen(seed + 1), dtype=dtype)
    x0 = scale * torch.randn(n, generator=gen(seed + 2), dtype=dtype)
    return a, b, x0, torch.linalg.solve(a, b)


def run_ours(x0, fn, steps, m):
    x = x0.clone().requires_grad_(True)
    opt = LBFGS(lr=1.0, history_size=m)
    xs = []
    for k in range(steps):
        (g,) = torch.autograd.grad(fn(x, k), x)
        opt.step(x, g)
        xs.append(x.detach().clone())
    return xs


def run_torch(x0, fn, steps, m):
    x = x0.clone().requires_grad_(True)
    opt = torch.optim.LBFGS([x], lr=1, history_size=m, line_search_fn=None, max_iter=1,
                            tolerance_grad=0, tolerance_change=0)
    xs, k = [], [0]

    def closure():
        opt.zero_grad()
        loss = fn(x, k[0])
        loss.backward()
        k[0] += 1
        return loss

    for _ in range(steps):
        opt.step(closure)
        xs.append(x.detach().clone())
    return xs


# ---------------------------------------------------------------------------------------------
# L-BFGS against torch.optim.LBFGS
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("history_size", [3, 5, 100])
def test_lbfgs_iterates_equal_torch_lbfgs_on_least_squares(history_size):
    # scale=1000 keeps every curvature pair y.s >= 1e-8, 100x above torch's 1e-10 skip threshold, for
    # all 20 steps (asserted below; measured >= 2e-6), so both keep the same pairs; 3 and 5 make the
    # history wrap.
    a, b, x0, x_star = quadratic(scale=1000.0)
    fn = lambda x, k: 0.5 * x @ a @ x - b @ x
    ours, ref = run_ours(x0, fn, 20, history_size), run_torch(x0, fn, 20, history_size)
    prev = x0
    for x in ref:
        s = x - prev
        assert (s @ a @ s).item() > 1e-8
        prev = x
    # Same update up to float64 round-off (s = x_new - x_old here vs d*t in torch): relative max-norm
    # difference measured <= 1e-12; allowed 1e-10.
    for k, (p, q) in enumerate(zip(ours, ref)):
        assert (p - q).abs().max() <= 1e-10 * q.abs().max(), f"step {k + 1}"
    # And it is a real optimisation: 20 unit steps close all but ~1e-6 of the distance to the minimiser.
    assert (ours[-1] - x_star).norm() < 1e-4 * (x0 - x_star).norm()


def _quadratic_with_flat_step(skip_at):
    """Least squares, except that call ``skip_at`` returns a linear function with the previous gradient.

    That makes y = 0 for the pair formed at the next step, so ``y.s <= 1e-10`` and torch drops the pair.
    """
    a, b, x0, _ = quadratic(n=12, seed=3)
    last = {}

    def fn(x, k):
        if k == skip_at:
            g_prev = a @ last["x"] - b
            return (g_prev * x).sum()
        last["x"] = x.detach().clone()
        return 0.5 * x @ a @ x - b @ x

    return x0, fn


def test_lbfgs_skipped_pair_with_room_in_history_matches_torch():
    # The zero-weight pair leaves the two-loop recursion unchanged while the history is not full.
    x0, fn = _quadratic_with_flat_step(skip_at=4)
    ours, ref = run_ours(x0, fn, 10, 100), run_torch(x0, fn, 10, 100)
    for k, (p, q) in enumerate(zip(ours, ref)):
        torch.testing.assert_close(p, q, rtol=1e-10, atol=1e-10, msg=f"step {k + 1}")


def test_lbfgs_skipped_pair_with_full_history_is_documented_difference():
    """A zero-weight pair takes a history slot (documented in LBFGS): iterates equal torch's until the
    pair enters a full history, and the run still descends afterwards."""
    x0, fn = _quadratic_with_flat_step(skip_at=4)
    ours, ref = run_ours(x0, fn, 10, 2), run_torch(x0, fn, 10, 2)
    for k in range(4):
        torch.testing.assert_close(ours[k], ref[k], rtol=1e-10, atol=1e-10, msg=f"step {k + 1}")
    assert float(fn(ours[-1], 99)) < float(fn(x0, 99))


def _two_loop_direction(g, pairs, gamma):
    """-H g by the textbook two-loop recursion; a pair with y.s <= 1e-10 gets zero weight (rho = 0)."""
    q = g.neg()
    alphas = []
    for s_, y_ in reversed(pairs):
        ys = float(y_ @ s_)
        rho = 1.0 / ys if ys > 1e-10 else 0.0
        a = rho * float(s_ @ q)
        q = q - a * y_
        alphas.append((a, rho))
    d = q * gamma
    for (s_, y_), (a, rho) in zip(pairs, reversed(alphas)):
        d = d + s_ * (a - rho * float(y_ @ d))
    return d


@pytest.mark.parametrize("history_size", [2, 3, 100])
def test_compact_lbfgs_direction_equals_the_two_loop_recursion_with_zero_weight_pairs(history_size):
    """The compact form (what LBFGS computes) against the two-loop recursion, pair for pair, float64:
    a flat step makes a zero-weight pair, and the small histories wrap around it."""
    x0, fn = _quadratic_with_flat_step(skip_at=4)
    x = x0.clone().requires_grad_(True)
    opt = LBFGS(lr=1.0, history_size=history_size)
    pairs, prev, gamma = [], None, 1.0
    for k in range(12):
        (g,) = torch.autograd.grad(fn(x, k), x)
        if prev is not None:
            s_, y_ = x.detach() - prev[0], g - prev[1]
            pairs = (pairs + [(s_, y_)])[-history_size:]
            if float(y_ @ s_) > 1e-10:
                gamma = float(y_ @ s_) / float(y_ @ y_)
        before = x.detach().clone()
        opt.step(x, g)
        if k > 0:  # after the first (scaled) step, the step is the direction itself (lr = 1)
            expected = _two_loop_direction(g, pairs, gamma)
            torch.testing.assert_close(x.detach() - before, expected, rtol=1e-9, atol=1e-12, msg=f"step {k + 1}")
        prev = (before, g.detach().clone())


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_lbfgs_steps_never_wait_for_the_device():
    """No host synchronisation inside an L-BFGS step (CUDA's sync debug mode turns one into an error)."""
    a, b, x0, _ = quadratic(n=64, seed=2, dtype=torch.float32, scale=10.0)
    a, b, x = a.cuda(), b.cuda(), x0.cuda().requires_grad_(True)
    opt = LBFGS(history_size=5)
    grads = []
    for _ in range(8):
        (g,) = torch.autograd.grad(0.5 * x @ a @ x - b @ x, x)
        grads.append(g)
        torch.cuda.set_sync_debug_mode("error")
        try:
            opt.step(x, g)
        finally:
            torch.cuda.set_sync_debug_mode("default")


def test_optimize_lbfgs_iterates_equal_torch_lbfgs_in_fp32(device):
    a, b, x0, _ = quadratic(n=16, seed=5, dtype=torch.float32, scale=10.0)
    a, b, x0 = a.to(device), b.to(device), x0.to(device)
    seen = []
    optimize(x0, lambda x: {"total": 0.5 * x @ a @ x - b @ x},
             OptimizeConfig(steps=20, history_size=4, log_every=5), callbacks=[lambda s: seen.append(s.signal.clone())])
    ref = run_torch(x0, lambda x, k: 0.5 * x @ a @ x - b @ x, 20, 4)
    assert len(seen) == 20
    # fp32 round-off only: relative max-norm difference over all 20 steps measured 3e-6; allowed 1e-4.
    for k, (p, q) in enumerate(zip(seen, ref)):
        assert (p - q).abs().max() <= 1e-4 * q.abs().max(), f"step {k + 1}"


# ---------------------------------------------------------------------------------------------
# Loss reduction and the project hook
# ---------------------------------------------------------------------------------------------

def _texture_problem(tiny_extractor, device="cpu"):
    """Texture synthesis with the tiny extractor: (loss_fn, x0), everything on ``device``."""
    extractor = tiny_extractor(in_channels=3, seed=0).to(device)
    style = torch.rand(1, 3, 16, 16, generator=gen(1)).to(device)
    obj = Objective({}, style_targets(extractor, [style], ["relu1", "relu2"]))
    return make_loss_fn(extractor, obj), torch.rand(1, 3, 16, 16, generator=gen(3)).to(device)


@pytest.fixture
def texture_problem(tiny_extractor):
    return _texture_problem(tiny_extractor)


# Measured on this problem in 40 steps: L-BFGS about 1.8e4 x, Adam (lr 0.02) about 3e2 x.
@pytest.mark.parametrize("optimizer, factor", [("lbfgs", 1000.0), ("adam", 100.0)])
def test_optimizers_reduce_the_style_loss(texture_problem, optimizer, factor):
    loss_fn, x0 = texture_problem
    r = optimize(x0, loss_fn, OptimizeConfig(steps=40, optimizer=optimizer, log_every=10),
                 project=lambda x: x.clamp(0, 1))
    assert r.stopped is None and r.steps_run == 40
    assert r.trace["style"][0] / r.best_loss >= factor
    # The returned signal really has the reported loss.
    assert loss_fn(r.signal)["total"].item() == pytest.approx(r.best_loss, rel=1e-4)


@pytest.mark.parametrize("optimizer", ["lbfgs", "adam"])
def test_project_keeps_values_in_range(optimizer):
    # The unconstrained minimiser (2.0) lies outside [0, 1]; so does part of the start.
    x0 = torch.rand(1, 1, 6, 6, generator=gen(0)) * 3 - 1
    seen = []

    def loss_fn(x):
        seen.append(x.detach().clone())
        return {"total": (x - 2.0).pow(2).sum()}

    steps = []
    r = optimize(x0, loss_fn, OptimizeConfig(steps=30, optimizer=optimizer, learning_rate=0.2 if optimizer == "adam" else None),
                 project=lambda x: x.clamp(0, 1), callbacks=[lambda s: steps.append(s.signal.clone())])
    for x in seen + steps + [r.signal]:
        assert x.min() >= 0 and x.max() <= 1
    # The constrained optimum is the upper bound everywhere.
    torch.testing.assert_close(r.signal, torch.ones_like(x0), rtol=0, atol=1e-3)


# ---------------------------------------------------------------------------------------------
# Best-so-far, NaN stop
# ---------------------------------------------------------------------------------------------

def recording_loss(target, penalty_from=None, nan_from=None):
    """Least squares to ``target``; +100 from call ``penalty_from`` on, NaN from call ``nan_from`` on (1-based)."""
    seen = []

    def loss_fn(x):
        seen.append(x.detach().clone())
        total = (x - target).pow(2).sum()
        if penalty_from is not None and len(seen) >= penalty_from:
            total = total + 100.0
        if nan_from is not None and len(seen) >= nan_from:
            total = total * math.nan
        return {"data": (x - target).pow(2).sum(), "total": total}

    return loss_fn, seen


@pytest.mark.parametrize("optimizer", ["lbfgs", "adam"])
def test_best_so_far_is_returned_when_loss_gets_worse_late(optimizer):
    target = torch.linspace(0, 1, 10)
    loss_fn, seen = recording_loss(target, penalty_from=13)
    r = optimize(torch.zeros(10), loss_fn, OptimizeConfig(steps=20, optimizer=optimizer, log_every=5))
    totals = r.trace["total"]
    assert r.steps_run == 20 and r.stopped is None
    assert r.best_step <= 12
    assert totals[-1] > r.best_loss + 99  # the late steps are worse
    assert r.best_loss == min(totals)
    assert r.best_step == totals.index(min(totals)) + 1
    assert torch.equal(r.signal, seen[r.best_step - 1])


@pytest.mark.parametrize("optimizer", ["lbfgs", "adam"])
@pytest.mark.parametrize("nan_at, log_every, calls", [(7, 5, 10), (10, 5, 10), (1, 4, 4), (3, 20, 20)])
def test_nan_stops_at_next_log_interval_and_keeps_best_finite(optimizer, nan_at, log_every, calls):
    target = torch.linspace(-1, 1, 8)
    loss_fn, seen = recording_loss(target, nan_from=nan_at)
    x0 = torch.zeros(8)
    r = optimize(x0, loss_fn, OptimizeConfig(steps=20, optimizer=optimizer, log_every=log_every))
    assert len(seen) == calls  # ran on to the next logging interval (or the end), no further
    assert r.steps_run == nan_at
    assert r.stopped is not None and f"step {nan_at}" in r.stopped
    assert len(r.trace["total"]) == nan_at and math.isnan(r.trace["total"][-1])
    assert all(math.isfinite(v) for v in r.trace["total"][:-1])
    assert torch.isfinite(r.signal).all() and math.isfinite(r.best_loss) == (nan_at > 1)
    if nan_at > 1:
        finite = r.trace["total"][: nan_at - 1]
        assert r.best_loss == min(finite) and r.best_step == finite.index(min(finite)) + 1
        assert torch.equal(r.signal, seen[r.best_step - 1])
    else:  # nothing finite was seen: the start is returned
        assert r.best_step == 0 and torch.equal(r.signal, x0)


# ---------------------------------------------------------------------------------------------
# Callbacks, inputs, determinism, Result
# ---------------------------------------------------------------------------------------------

def test_callbacks_get_steps_with_one_based_index_and_lazy_losses_equal_to_trace():
    target = torch.linspace(0, 1, 6)
    loss_fn, _ = recording_loss(target)
    views, read_now = [], []

    def cb(step: Step):
        views.append(step)
        read_now.append(step.losses)

    r = optimize(torch.zeros(6), loss_fn, OptimizeConfig(steps=12, log_every=5), callbacks=[cb, lambda s: None])
    assert [s.index for s in views] == list(range(1, 13))
    assert all(isinstance(s, Step) and s.total == 12 for s in views)
    assert all(not s.signal.requires_grad for s in views)
    assert [s.seconds for s in views] == sorted(s.seconds for s in views)
    rows = [dict(zip(r.trace, vals)) for vals in zip(*r.trace.values())]
    assert read_now == rows
    # Read after the run: the lazily read values still belong to their own step.
    assert [s.losses for s in views] == rows
    assert set(rows[0]) == {"data", "total"}


@pytest.mark.parametrize("optimizer", ["lbfgs", "adam"])
def test_signal0_is_not_modified(optimizer):
    x0 = torch.rand(1, 2, 5, 5, generator=gen(0)) * 2 - 0.5
    before = x0.clone()

    def project(x):
        return x.clamp_(0, 1)  # in place on purpose: must act on the loop's copy only

    optimize(x0, lambda x: {"total": (x - 0.3).pow(2).sum()}, OptimizeConfig(steps=5, optimizer=optimizer), project=project)
    assert torch.equal(x0, before) and not x0.requires_grad


@pytest.mark.parametrize("optimizer", ["lbfgs", "adam"])
def test_same_inputs_give_bit_identical_results(texture_problem, optimizer):
    loss_fn, x0 = texture_problem
    cfg = OptimizeConfig(steps=10, optimizer=optimizer, log_every=5)
    r1 = optimize(x0, loss_fn, cfg, project=lambda x: x.clamp(0, 1))
    r2 = optimize(x0, loss_fn, cfg, project=lambda x: x.clamp(0, 1))
    assert torch.equal(r1.signal, r2.signal)
    assert r1.trace == r2.trace and r1.best_step == r2.best_step


def test_result_summary_is_json_serialisable():
    loss_fn, _ = recording_loss(torch.ones(4))
    cfg = OptimizeConfig(steps=6, optimizer="adam", log_every=3)
    r = optimize(torch.zeros(4), loss_fn, cfg)
    assert isinstance(r, Result)
    summary = r.summary()
    assert "signal" not in summary
    back = json.loads(json.dumps(summary, allow_nan=False))
    assert back["steps_run"] == 6 and back["optimizer"] == "adam" and back["device"] == "cpu"
    assert back["config"] == dataclasses.asdict(cfg)
    assert back["trace"]["total"] == r.trace["total"]
    assert back["precision"] == "fp32" and back["stopped"] is None


def test_timeline_is_read_at_logging_intervals():
    loss_fn, _ = recording_loss(torch.ones(4))
    r = optimize(torch.zeros(4), loss_fn, OptimizeConfig(steps=12, optimizer="adam", log_every=5))
    assert [step for step, _ in r.timeline] == [5, 10, 12]
    seconds = [t for _, t in r.timeline]
    assert seconds == sorted(seconds) and 0 <= seconds[0] and seconds[-1] <= r.seconds
    assert json.loads(json.dumps(r.summary()["timeline"])) == [list(e) for e in r.timeline]


def test_timeline_stops_before_the_nan_interval():
    loss_fn, _ = recording_loss(torch.ones(4), nan_from=7)
    r = optimize(torch.zeros(4), loss_fn, OptimizeConfig(steps=20, optimizer="adam", log_every=5))
    assert [step for step, _ in r.timeline] == [5]


@pytest.mark.parametrize("layout", ["channels_last", "permuted"])
def test_lbfgs_optimizes_non_contiguous_signal(layout):
    target = torch.rand(1, 3, 6, 6, generator=gen(0))
    if layout == "channels_last":
        x0 = torch.zeros(1, 3, 6, 6).to(memory_format=torch.channels_last)
    else:
        x0 = torch.zeros(1, 6, 6, 3).permute(0, 3, 1, 2)
    assert not x0.is_contiguous()
    r = optimize(x0, lambda x: {"total": (x - target).pow(2).sum()}, OptimizeConfig(steps=10, log_every=5))
    # The contiguous start reaches < 1e-6 of the start loss in 10 steps (a separable quadratic).
    assert r.best_loss < 1e-3 * r.trace["total"][0]


def test_lbfgs_contiguous_counterpart_converges():
    target = torch.rand(1, 3, 6, 6, generator=gen(0))
    r = optimize(torch.zeros(1, 3, 6, 6), lambda x: {"total": (x - target).pow(2).sum()},
                 OptimizeConfig(steps=10, log_every=5))
    assert r.best_loss < 1e-3 * r.trace["total"][0]


# ---------------------------------------------------------------------------------------------
# OptimizeConfig
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs", [
    dict(steps=0), dict(steps=-3), dict(optimizer="sgd"), dict(learning_rate=-0.1), dict(learning_rate=0.0),
    dict(learning_rate=math.nan), dict(history_size=0), dict(log_every=0),
])
def test_optimize_config_rejects_bad_values(kwargs):
    with pytest.raises(ValueError):
        OptimizeConfig(**kwargs)


def test_optimize_config_learning_rate_defaults_and_is_frozen():
    assert OptimizeConfig().lr == 1.0
    assert OptimizeConfig(optimizer="adam").lr == 0.02
    assert OptimizeConfig(optimizer="adam", learning_rate=0.5).lr == 0.5
    with pytest.raises(dataclasses.FrozenInstanceError):
        OptimizeConfig().steps = 3  # type: ignore[misc]


# ---------------------------------------------------------------------------------------------
# Devices and precisions that exist
# ---------------------------------------------------------------------------------------------

_CUDA = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]


@pytest.mark.parametrize("device, precision", [
    ("cpu", "fp32"), ("cpu", "bf16"),
    pytest.param("cuda", "fp32", marks=_CUDA), pytest.param("cuda", "tf32", marks=_CUDA),
    pytest.param("cuda", "bf16", marks=_CUDA),
])
def test_optimize_on_device_and_precision(tiny_extractor, device, precision):
    loss_fn, x0 = _texture_problem(tiny_extractor, device)
    r = optimize(x0, loss_fn, OptimizeConfig(steps=30, log_every=10), precision=precision,
                 project=lambda x: x.clamp(0, 1))
    assert r.signal.device.type == device and r.signal.dtype == torch.float32
    assert r.device.startswith(device) and r.precision == precision and r.stopped is None
    # bf16 features are coarser, so its bar is lower (CPU, 30 steps, measured: fp32 ~1.1e4 x, bf16 ~4e2 x).
    assert r.trace["style"][0] / r.best_loss >= (50.0 if precision == "bf16" else 1000.0)


def test_max_step_bounds_every_lbfgs_update():
    """With max_step, no element moves more than max_step per step; the run still converges."""
    target = torch.full((50,), 10.0)
    seen = [torch.zeros(50)]
    r = optimize(torch.zeros(50), lambda x: {"total": ((x - target) ** 2).sum()},
                 OptimizeConfig(steps=40, max_step=0.5), callbacks=[lambda s: seen.append(s.signal.clone())])
    moves = [float((b - a).abs().max()) for a, b in zip(seen, seen[1:])]
    assert max(moves) <= 0.5 + 1e-6
    assert r.best_loss < 1e-3
    with pytest.raises(ValueError):
        OptimizeConfig(max_step=0)


def test_max_step_scales_the_first_step_to_the_trust_region():
    """Tiny gradients (a loss spread over many elements) still give a first step of max_step."""
    target = torch.full((1000,), 1e-3)
    seen = [torch.zeros(1000)]
    optimize(torch.zeros(1000), lambda x: {"total": 1e-6 * ((x - target) ** 2).sum()},
             OptimizeConfig(steps=2, max_step=0.5), callbacks=[lambda s: seen.append(s.signal.clone())])
    assert abs(float((seen[1] - seen[0]).abs().max()) - 0.5) < 1e-6


# ---------------------------------------------------------------------------------------------
# Checkpoints
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("optimizer", ["lbfgs", "adam"])
def test_resume_from_a_saved_state_is_bit_identical(tiny_extractor, optimizer):
    """A run restarted from the state saved at step 7 ends exactly where the uninterrupted run does."""
    import io

    loss_fn, x0 = _texture_problem(tiny_extractor)
    cfg = OptimizeConfig(steps=20, optimizer=optimizer, log_every=5, history_size=5)
    whole = optimize(x0, loss_fn, cfg, project=lambda x: x.clamp(0, 1))
    saved = []
    optimize(x0, loss_fn, cfg, project=lambda x: x.clamp(0, 1), save_every=7, save_state=saved.append)
    assert [s["steps_run"] for s in saved] == [7, 14]
    buffer = io.BytesIO()  # through a file, as a checkpoint goes: weights_only must be able to read it back
    torch.save(saved[0], buffer)
    state = torch.load(io.BytesIO(buffer.getvalue()), weights_only=True)
    resumed = optimize(x0 * 0 + 0.5, loss_fn, cfg, project=lambda x: x.clamp(0, 1), resume=state)
    assert torch.equal(resumed.signal, whole.signal)
    assert resumed.trace == whole.trace and resumed.best_step == whole.best_step


def test_should_stop_saves_the_state_and_raises_with_the_best_so_far(tiny_extractor):
    from nst_core.optimize import Interrupted

    loss_fn, x0 = _texture_problem(tiny_extractor)
    saved, calls = [], []
    with pytest.raises(Interrupted) as info:
        optimize(x0, loss_fn, OptimizeConfig(steps=30), save_state=saved.append,
                 should_stop=lambda: calls.append(1) or len(calls) >= 4)
    best, steps = info.value.args
    assert steps == 4 and len(saved) == 1 and saved[0]["steps_run"] == 4
    assert best.shape == x0.shape


# ---------------------------------------------------------------------------------------------
# L-BFGS history stored in bf16
# ---------------------------------------------------------------------------------------------

def test_bf16_history_products_accumulate_in_fp32_chunk_by_chunk(monkeypatch):
    """The chunked products with a bf16 history equal fp32 products with the same (rounded) history."""
    opt = LBFGS(history_size=4, history_dtype=torch.bfloat16)
    opt.W = torch.randn(8, 1000, generator=gen(0)).to(torch.bfloat16)
    v = torch.randn(1000, 3, generator=gen(1))
    coef = torch.randn(8, generator=gen(2))
    full_v, full_c = opt.W.float() @ v, coef @ opt.W.float()
    monkeypatch.setattr(LBFGS, "_CHUNK", 8 * 64)  # 64 columns a chunk: 16 chunks, the last one short
    assert opt._history_times(v).dtype == torch.float32
    assert torch.allclose(opt._history_times(v), full_v, rtol=1e-5, atol=1e-4)
    assert torch.allclose(opt._times_history(coef), full_c, rtol=1e-5, atol=1e-4)
    # accumulated in fp32: a bf16 product would be ~1e-2 off
    assert float((opt._history_times(v) - (opt.W @ v.to(torch.bfloat16)).float()).abs().max()) > 1e-3


def test_bf16_history_converges_like_fp32_and_halves_its_memory():
    a, b, x0, x_star = quadratic(n=200, seed=5, dtype=torch.float32)
    fn = lambda x: {"total": 0.5 * x @ a @ x - b @ x}  # noqa: E731
    out = {}
    for hp in ("fp32", "bf16"):
        cfg = OptimizeConfig(steps=30, history_size=10, history_precision=hp, tolerance=0)
        out[hp] = optimize(x0, fn, cfg)
    f_star = float(fn(x_star)["total"])
    gap = {hp: r.best_loss - f_star for hp, r in out.items()}
    start = float(fn(x0)["total"]) - f_star
    assert gap["fp32"] < 1e-4 * start  # the quadratic is solved ...
    assert gap["bf16"] < 1e-3 * start  # ... and with the history in bf16 nearly as far
    opt = LBFGS(history_size=10, history_dtype=torch.bfloat16)
    x = x0.clone()
    opt.step(x, a @ x - b)
    opt.step(x, a @ x - b)
    assert opt.W.dtype == torch.bfloat16 and opt.W.element_size() == 2
