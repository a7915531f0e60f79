"""Sequence regressors: one interface, shapes, variable length, Mamba scan, MC dropout."""
from __future__ import annotations

import pytest
import torch

from opensim_surrogate.models import (ARCHITECTURES, build_model, default_hyperparameters,
                                      mc_dropout, selective_scan)
from opensim_surrogate.train.protocol import TINY_HYPERPARAMETERS

HEADS = {"moments": 3, "forces": 5}


@pytest.mark.parametrize("arch", ["lstm", "transformer", "mamba"])
@pytest.mark.parametrize("length", [7, 40])
def test_forward_shapes_any_length(arch, length):
    torch.manual_seed(0)
    hp = dict(TINY_HYPERPARAMETERS[arch])
    if arch == "transformer":
        hp["max_len"] = 40
    m = build_model(arch, 6, HEADS, **hp).eval()
    out = m(torch.randn(2, length, 6))
    assert set(out) == set(HEADS)
    assert out["moments"].shape == (2, length, 3) and out["forces"].shape == (2, length, 5)
    assert all(torch.isfinite(v).all() for v in out.values())
    cfg = m.config()
    assert cfg["arch"] == arch and cfg["n_inputs"] == 6 and cfg["head_sizes"] == HEADS
    rebuilt = build_model(arch, 6, HEADS, **cfg["hyperparameters"])
    assert rebuilt.n_parameters() == m.n_parameters()


def test_paper_defaults():
    assert set(ARCHITECTURES) >= {"lstm", "transformer", "mamba"}
    t = default_hyperparameters("transformer")
    assert (t["d_model"], t["n_layers"], t["n_heads"], t["d_ff"], t["dropout"]) == \
        (128, 2, 4, 256, 0.1)
    lstm = default_hyperparameters("lstm")
    assert (lstm["hidden_size"], lstm["num_layers"]) == (128, 2)
    mb = default_hyperparameters("mamba")
    assert (mb["d_model"], mb["n_layers"], mb["d_state"], mb["d_conv"], mb["expand"]) == \
        (128, 2, 16, 4, 2)


def test_bad_arguments():
    with pytest.raises(ValueError, match="unknown architecture"):
        build_model("gru", 4, HEADS)
    with pytest.raises(TypeError, match="d_modell"):
        build_model("transformer", 4, HEADS, d_modell=8)
    m = build_model("transformer", 4, HEADS, **TINY_HYPERPARAMETERS["transformer"], max_len=10)
    with pytest.raises(ValueError, match="max_len"):
        m(torch.zeros(1, 11, 4))
    with pytest.raises(ValueError, match="expected input"):
        m(torch.zeros(1, 5, 3))


def test_selective_scan_matches_reference():
    """The loop equals the textbook recurrence with the full discretisation."""
    torch.manual_seed(1)
    b, t, d, n = 2, 9, 5, 3
    u, dt = torch.randn(b, t, d), torch.rand(b, t, d) * 0.5
    A, B, C, D = -torch.rand(d, n) * 3, torch.randn(b, t, n), torch.randn(b, t, n), torch.randn(d)
    h = torch.zeros(b, d, n)
    ref = []
    for i in range(t):
        dA = torch.exp(dt[:, i, :, None] * A)
        h = dA * h + dt[:, i, :, None] * B[:, i, None, :] * u[:, i, :, None]
        ref.append((h * C[:, i, None, :]).sum(-1) + D * u[:, i])
    assert torch.allclose(selective_scan(u, dt, A, B, C, D), torch.stack(ref, 1), atol=1e-5)


def test_unidirectional_mamba_is_causal():
    torch.manual_seed(2)
    m = build_model("mamba", 4, HEADS, **{**TINY_HYPERPARAMETERS["mamba"],
                                          "bidirectional": False}).eval()
    x = torch.randn(1, 12, 4)
    y = x.clone()
    y[:, 8:] += 5.0
    a, b = m(x)["moments"], m(y)["moments"]
    assert torch.allclose(a[:, :8], b[:, :8], atol=1e-6)
    assert not torch.allclose(a[:, 8:], b[:, 8:])


@pytest.mark.parametrize("arch", ["lstm", "transformer", "mamba"])
def test_mc_dropout(arch):
    torch.manual_seed(3)
    hp = {**TINY_HYPERPARAMETERS[arch], "dropout": 0.2}
    if arch == "lstm":
        hp["num_layers"] = 2
    m = build_model(arch, 4, HEADS, **hp).eval()
    x = torch.randn(2, 10, 4)
    state = torch.random.get_rng_state()
    r1 = mc_dropout(m, x, n_samples=8, seed=5)
    r2 = mc_dropout(m, x, n_samples=8, seed=5)
    assert torch.equal(torch.random.get_rng_state(), state)  # global RNG untouched
    assert not m.training and not any(mm.training for mm in m.modules())
    for h in HEADS:
        mean, std = r1[h]
        assert mean.shape == (2, 10, HEADS[h]) and (std > 0).all()
        assert torch.equal(std, r2[h][1])


def test_chunked_scan_equals_loop():
    """The chunked form (what training compiles) pads with dt = 0 and gives the same result."""
    from opensim_surrogate.models import selective_scan_chunked

    torch.manual_seed(4)
    b, t, d, n = 2, 37, 4, 3          # 37 is not a multiple of the chunk length
    u, dt = torch.randn(b, t, d), torch.rand(b, t, d) * 0.5
    A, B, C, D = -torch.rand(d, n) * 3, torch.randn(b, t, n), torch.randn(b, t, n), torch.randn(d)
    assert torch.allclose(selective_scan_chunked(u, dt, A, B, C, D),
                          selective_scan(u, dt, A, B, C, D), atol=1e-5)


def test_numpy_savgol_equals_scipy():
    """The runtime's Savitzky-Golay derivatives (numpy, no scipy import) equal scipy's."""
    import numpy as np
    from scipy.signal import savgol_filter

    from opensim_surrogate.train.features import savgol

    rng = np.random.default_rng(3)
    for n in (9, 40, 157):
        x = np.cumsum(rng.normal(size=(n, 4)), axis=0)
        for deriv in (0, 1, 2):
            want = savgol_filter(x, 9, 3, deriv=deriv, delta=0.01, axis=0, mode="interp")
            got = savgol(x, 9, 3, deriv, 0.01)
            assert np.allclose(got, want, rtol=1e-9, atol=1e-9 * np.abs(want).max())
