"""Metric definitions on hand-made arrays (values computed by hand in the comments)."""
from __future__ import annotations

import numpy as np
import pytest

from opensim_surrogate.train.metrics import (EvalTrial, evaluate, mae, per_channel, r2_channel,
                                             r2_paper, r2_per_channel, rmse, subject_mean)

# two channels, three frames
Y = np.array([[1.0, 10.0], [2.0, 20.0], [3.0, 30.0]])
P = np.array([[1.0, 12.0], [2.0, 18.0], [4.0, 30.0]])
M = np.ones_like(Y, dtype=bool)


def test_hand_computed_values():
    # errors: [0, -2], [0, 2], [-1, 0] -> squared sum 9 over 6 entries
    assert rmse(Y, P, M) == pytest.approx(np.sqrt(9 / 6))
    assert mae(Y, P, M) == pytest.approx(5 / 6)
    # channel 0: mean 2, SStot 2, SSres 1 -> 0.5; channel 1: mean 20, SStot 200, SSres 8 -> 0.96
    assert r2_per_channel(Y, P, M) == pytest.approx([0.5, 0.96])
    assert r2_channel(Y, P, M) == pytest.approx(0.73)
    # paper: grand mean of all 6 values = 11; SStot = 100+81+64+1+81+361 = 688; SSres = 9
    assert r2_paper(Y, P, M) == pytest.approx(1 - 9 / 688)
    assert r2_paper(Y, P, M) > r2_channel(Y, P, M)  # the grand mean flatters


def test_masked_and_nan_entries_are_ignored():
    y = np.vstack([Y, [[100.0, 100.0]], [[np.nan, 5.0]]])
    p = np.vstack([P, [[-100.0, -100.0]], [[0.0, np.nan]]])
    m = np.vstack([M, [[False, False]], [[True, False]]])  # NaN label; NaN pred masked off
    assert rmse(y, p, m) == pytest.approx(np.sqrt(9 / 6))
    assert r2_paper(y, p, m) == pytest.approx(1 - 9 / 688)
    assert r2_channel(y, p, m) == pytest.approx(0.73)


def test_nan_prediction_on_scored_entry_is_an_error():
    p = P.copy()
    p[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        rmse(Y, p, M)


def test_constant_channel_left_out_of_honest_r2():
    y = np.column_stack([Y[:, 0], np.full(3, 7.0)])
    p = np.column_stack([P[:, 0], np.full(3, 6.0)])
    r = r2_per_channel(y, p, np.ones_like(y, bool))
    assert r[0] == pytest.approx(0.5) and np.isnan(r[1])
    assert r2_channel(y, p, np.ones_like(y, bool)) == pytest.approx(0.5)


def test_subject_mean_is_not_pooled():
    # subject A: one trial, every error 1 (RMSE 1); subject B: three trials, every error 3
    a = EvalTrial("A", "C4", Y, Y + 1.0, M)
    bs = [EvalTrial("B", c, Y, Y + 3.0, M) for c in ("C4", "C5", "C5")]
    sm = subject_mean([a] + bs)
    assert sm["rmse"] == pytest.approx(2.0)           # (1 + 3) / 2, pooled would be ~2.65
    assert sm["mae"] == pytest.approx(2.0)
    assert sm["n_subjects"] == 2
    # R² ch per subject: A: ch0 1-3/2=-0.5, ch1 1-3/200 -> mean; B: 1-27/2, 1-27/200
    ra = np.mean([1 - 3 / 2, 1 - 3 / 200])
    rb = np.mean([1 - 27 / 2, 1 - 27 / 200])
    assert sm["r2_channel"] == pytest.approx((ra + rb) / 2)
    ev = evaluate([a] + bs, ["c0", "c1"])
    cond = ev.conditions.set_index("condition")
    assert cond.loc["C4", "rmse"] == pytest.approx(2.0)   # A and B both have C4
    assert cond.loc["C5", "rmse"] == pytest.approx(3.0)   # only B
    assert cond.loc["C5", "n_subjects"] == 1
    subj = ev.subjects.set_index("subject")
    assert subj.loc["B", "n_entries"] == 18


def test_per_channel_table():
    a = EvalTrial("A", "C4", Y, P, M)
    b = EvalTrial("B", "C4", Y, Y, M)
    ch = per_channel([a, b], ["c0", "c1"]).set_index("channel")
    # A: ch0 errors (0,0,-1) -> RMSE sqrt(1/3); B: 0 -> mean sqrt(1/3)/2
    assert ch.loc["c0", "rmse"] == pytest.approx(np.sqrt(1 / 3) / 2)
    assert ch.loc["c1", "mae"] == pytest.approx((4 / 3) / 2)
    assert ch.loc["c0", "r2"] == pytest.approx((0.5 + 1.0) / 2)
    assert ch.loc["c1", "r2"] == pytest.approx((0.96 + 1.0) / 2)
