"""The stopping rule: a run stops when its loss has flattened, never while it still falls, never before
``min_steps``; ``tolerance 0`` runs every step; the reason is in the result, the trace and the plan's log."""

from __future__ import annotations

import math

import pytest
import torch

from nst_core import OptimizeConfig, Plan, Segment, optimize, run_plan
from nst_core.optimize import convergence


def _curve_loss(curve):
    """A loss whose value at evaluation k is ``curve(k)`` whatever the signal (plus a term that gives the
    signal a gradient, so the optimizer moves): a known loss curve for the rule to judge."""
    count = {"k": 0}

    def loss_fn(x):
        count["k"] += 1
        value = curve(count["k"])
        term = 1e-12 * (x * x).sum()
        return {"total": term + value, "curve": torch.tensor(float(value))}

    return loss_fn


def _run(curve, **cfg):
    cfg = {"steps": 400, "log_every": 10, "optimizer": "adam", **cfg}
    return optimize(torch.ones(8), _curve_loss(curve), OptimizeConfig(**cfg))


def test_a_flat_loss_stops_at_the_first_whole_window_after_min_steps():
    res = _run(lambda k: 1.0, tolerance=1e-3, stop_window=30, min_steps=50)
    assert res.converged and res.steps_run == 50  # the first reading at or after min_steps
    assert res.stop_reason.startswith("converged at step 50:")
    assert "tolerance 0.1%" in res.stop_reason
    assert res.stopped is None  # converging is not a failure


def test_a_loss_still_falling_faster_than_the_tolerance_runs_every_step():
    # falls 1 % every 10 steps: 6 % over a 60-step window, far above 0.5 %
    res = _run(lambda k: 0.999 ** k, tolerance=5e-3, stop_window=60, min_steps=60)
    assert not res.converged and res.steps_run == 400
    assert res.stop_reason == "ran all 400 steps"


def test_a_decaying_loss_stops_where_its_fall_over_the_window_drops_below_the_tolerance():
    # 1 + exp(-k/40): the relative fall over 40 steps, e^(-k/40) (e - 1) / (1 + e^(-(k-40)/40)), drops below
    # 1e-3 once k > 40 ln(1000 (e - 1)), about 298; the rule reads every 10 steps, so at step 300
    res = _run(lambda k: 1.0 + math.exp(-k / 40), tolerance=1e-3, stop_window=40, min_steps=40)
    expected = next(k for k in range(50, 400, 10)
                    if (1 + math.exp(-(k - 40) / 40) - 1 - math.exp(-k / 40)) / (1 + math.exp(-(k - 40) / 40)) < 1e-3)
    assert res.converged and res.steps_run == expected
    assert expected == 300


def test_never_stops_before_min_steps_even_when_flat_from_the_start():
    res = _run(lambda k: 2.0, tolerance=0.5, stop_window=10, min_steps=130)
    assert res.steps_run == 130


@pytest.mark.parametrize("optimizer", ["lbfgs", "adam"])
def test_tolerance_zero_runs_every_step(optimizer):
    res = _run(lambda k: 1.0, tolerance=0.0, optimizer=optimizer, steps=75)
    assert res.steps_run == 75 and not res.converged
    assert res.stop_reason == "ran all 75 steps"
    assert len(res.trace["total"]) == 75


def test_the_rule_judges_the_best_loss_so_far_not_a_noisy_last_value():
    # falls steadily but every other evaluation spikes: the best so far keeps falling, so the run goes on
    res = _run(lambda k: (1.0 - 0.002 * k) * (3.0 if k % 2 else 1.0), tolerance=1e-3, stop_window=20,
               min_steps=20, steps=300)
    assert res.steps_run == 300


def test_convergence_waits_for_a_whole_window():
    cfg = OptimizeConfig(tolerance=0.01, stop_window=50, min_steps=10, log_every=10)
    flat = [(10, 1.0), (20, 1.0), (30, 1.0), (40, 1.0)]
    assert convergence(flat, cfg) is None  # no reading 50 steps before step 40
    assert convergence(flat + [(50, 1.0)], cfg) is None  # step 0 is no reading
    assert convergence(flat + [(50, 1.0), (60, 1.0)], cfg).startswith("converged at step 60")


def test_convergence_ignores_non_finite_readings():
    cfg = OptimizeConfig(tolerance=0.01, stop_window=10, min_steps=10, log_every=10)
    assert convergence([(10, math.inf), (20, math.inf)], cfg) is None


def test_a_resumed_run_stops_where_the_whole_run_stops():
    from nst_core.optimize import Interrupted

    saved: dict = {}
    calls = {"n": 0}

    def stop_after_70():
        calls["n"] += 1
        return calls["n"] == 70

    cfg = OptimizeConfig(steps=300, optimizer="adam", log_every=10, tolerance=1e-3, stop_window=30, min_steps=30)
    # the curve is read by evaluation count, so the resumed run's counter starts where the first one stopped
    whole = optimize(torch.ones(8), _curve_loss(lambda k: 1.0 + math.exp(-k / 20)), cfg)
    with pytest.raises(Interrupted):
        optimize(torch.ones(8), _curve_loss(lambda k: 1.0 + math.exp(-k / 20)), cfg, save_state=saved.update,
                 should_stop=stop_after_70)
    assert saved["steps_run"] == 70 and [s for s, _ in saved["history"]] == [10, 20, 30, 40, 50, 60, 70]
    resumed = optimize(torch.ones(8), _curve_loss(lambda k: 1.0 + math.exp(-(k + 70) / 20)), cfg, resume=saved)
    assert whole.converged and resumed.converged
    assert resumed.steps_run == whole.steps_run and resumed.stop_reason == whole.stop_reason


def test_each_segment_of_a_plan_stops_on_its_own():
    # segment 0 flat (stops at min_steps), segment 1 still falling (runs every step)
    curves = [lambda k: 1.0, lambda k: 0.99 ** k]
    segs = [Segment(f"part {i}", lambda carry, i=i: (torch.ones(4), _curve_loss(curves[i])), info={})
            for i in range(2)]
    logged: list[str] = []
    cfg = OptimizeConfig(steps=120, optimizer="adam", log_every=10, tolerance=1e-3, stop_window=20, min_steps=40)
    out = run_plan(Plan(segs, cfg, "fp32"), log=logged.append)
    assert [r["steps_run"] for r in out.runs] == [40, 120]
    assert [r["converged"] for r in out.runs] == [True, False]
    assert logged == ["part 0: " + out.runs[0]["stop_reason"]]
    trace = out.trace(modality="test", settings={}, inputs={})
    assert trace["stop_reasons"] == [f"part 0: {out.runs[0]['stop_reason']}", "part 1: ran all 120 steps"]
