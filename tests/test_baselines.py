"""Baselines: gait phase, phase-matched template, ridge regression."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from opensim_surrogate.train.baselines import (RidgeBaseline, TemplateBaseline, gait_phase,
                                               lagged, stride_period)
from opensim_surrogate.train.protocol import PreparedData, TrialData


def test_gait_phase_by_hand():
    t = np.array([0.0, 0.2, 0.7, 1.2, 1.7])
    # heel strikes 0.2 and 1.2 (period 1.0): before the first one phase is extrapolated
    assert gait_phase(t, [0.2, 1.2], 1.0) == pytest.approx([0.8, 0.0, 0.5, 0.0, 0.5])
    assert np.isnan(gait_phase(t, [], 1.0)).all()
    assert stride_period({"heel_strike_r": [0.1, 1.2], "heel_strike_l": [0.6, 1.8]}, 9.0) == \
        pytest.approx(1.15)
    assert stride_period({"heel_strike_r": [0.1]}, 9.0) == 9.0


def _trial(tid, subject, period, offset, n=150, labels_fn=None, feats=None, rng=None):
    t = np.arange(n) / 100.0
    hs_r = list(np.arange(offset, t[-1], period))
    hs_l = list(np.arange(offset + period / 2, t[-1], period))
    ph_r = np.mod((t - offset) / period, 1.0)
    ph_l = np.mod(ph_r - 0.5, 1.0)
    y = labels_fn(ph_r, ph_l) if labels_fn else None
    mask = np.ones_like(y, dtype=bool)
    mask[:20] = False  # unlabelled start (must be ignored by the template)
    kin = pd.DataFrame({"x": t}, index=pd.Index(t, name="time"))
    return TrialData(trial_id=tid, subject=subject, condition="C4", mass_kg=70.0, height_m=1.7,
                     mirrored=False, kinematics=kin,
                     events={"heel_strike_r": hs_r, "heel_strike_l": hs_l}, cycles=[],
                     features=feats, labels={"moments": np.where(mask, y, np.nan)},
                     masks={"moments": mask})


def test_template_recovers_a_phase_function():
    fn = lambda pr, pl: np.column_stack([np.sin(2 * np.pi * pr), np.cos(2 * np.pi * pl),  # noqa
                                         np.sin(2 * np.pi * pr) ** 2])
    names = {"moments": ["a_r_moment", "a_l_moment", "lumbar_moment"]}
    train = [_trial(f"s{i}", f"s{i}", p, o, n=300, labels_fn=fn) for i, (p, o) in
             enumerate([(1.0, 0.1), (1.1, 0.4), (0.95, 0.0), (1.05, 0.7)])]
    test = _trial("t", "t", 1.2, 0.3, n=300, labels_fn=fn)
    tb = TemplateBaseline(n_bins=50).fit(train, names)
    pred = tb.predict([test])[0]["moments"]
    truth = fn(np.mod((test.time - 0.3) / 1.2, 1.0), np.mod((test.time - 0.3) / 1.2 - 0.5, 1))
    assert np.max(np.abs(pred - truth)) < 0.04   # phase-matched despite another cadence
    # a trial without events gets the channel mean
    test.events = {}
    flat = tb.predict([test])[0]["moments"]
    assert np.allclose(flat, flat[0])


def test_ridge_fits_a_lagged_linear_map():
    rng = np.random.default_rng(0)
    w = rng.normal(size=(3, 2))
    trials = []
    for i in range(6):
        x = np.cumsum(rng.normal(size=(120, 3)), axis=0) * 0.1
        lag = np.vstack([x[5:], np.repeat(x[-1:], 5, axis=0)])  # x at t+5 (edge-clamped)
        y = x @ w + 0.5 * lag[:, :1] + 1.0
        tr = _trial(f"s{i}", f"s{i}", 1.0, 0.0, n=120, labels_fn=lambda a, b: y, feats=x)
        trials.append(tr)
    names = {"moments": ["m0", "m1"]}
    prep = PreparedData(trials=trials, mirrored={}, spec=None, names=names,
                        model_family="test", fingerprint="x", source="test")
    pool = [t.subject for t in trials[:5]]
    folds = [(pool[:3], pool[3:]), (pool[2:], pool[:2])]
    rb = RidgeBaseline().fit(prep, pool, folds, mirror=False)
    assert rb.alpha["moments"] <= 1.0          # little penalty needed for an exact linear map
    pred = rb.predict([trials[5]])[0]["moments"]
    m = trials[5].masks["moments"]
    err = np.abs(pred - trials[5].labels["moments"])[m]
    assert err.max() < 0.05


def test_lagged_shape_and_edges():
    x = np.arange(10.0)[:, None]
    z = lagged(x, (-2, 0, 3))
    assert z.shape == (10, 4)
    assert z[0].tolist() == [0.0, 0.0, 3.0, 1.0]      # clamped at the start, bias last
    assert z[9].tolist() == [7.0, 9.0, 9.0, 1.0]      # clamped at the end
