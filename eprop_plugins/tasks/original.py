"""The original family's tasks (NEST ``eprop_*_bsshslm_2020``): sine-wave regression and evidence accumulation.

The parameters are NEST's, written in the canonical vocabulary (``cm`` in nF: NEST's ``C_m = 1 pF``
is ``cm = 0.001``); the random draws are NEST's (see :mod:`eprop_plugins.tasks.common`).
"""

from __future__ import annotations

import numpy as np

from ..parameters import ParameterError
from ..scenario import Population, Scenario
from .common import evidence_draws, float32_values, superimposed_sines, tile_spikes

__all__ = ["sine_original", "evidence_original"]


def sine_original(iterations: int = 5, batch_size: int = 1, seed: int = 1, *, sequence_steps: int | None = None,
                  model: str | None = None, optimizer: str | None = None) -> Scenario:
    """Sine-wave pattern generation, original family (NEST's ``sine-waves`` example and test).

    100 frozen Poisson inputs (p = 0.05 per step), 100 recurrent neurons, one readout trained with
    mean squared error to reproduce a sum of four sines; gradient descent, one update per
    ``batch_size`` sequences.

    Parameters
    ----------
    iterations : int
        Number of training iterations (each of ``batch_size`` sequences).
    batch_size : int
        Sequences per weight update and per loss value.
    seed : int
        Seed of ``np.random.RandomState``; 1 reproduces NEST's reference losses.
    sequence_steps : int, optional
        Sequence length in steps (default 1000).
    model, optimizer : str, optional
        Fixed by the task (``iaf``, ``gradient_descent``); other values are refused.
    """
    if model not in (None, "iaf") or optimizer not in (None, "gradient_descent"):
        raise ParameterError("sine (original family): model and optimizer are fixed (iaf, gradient_descent)")
    rng = np.random.RandomState(seed)
    T = sequence_steps or 1000
    n_in, n_rec, n_out = 100, 100, 1
    n_seq = iterations * batch_size

    w_in = float32_values(rng.randn(n_in, n_rec).T / np.sqrt(n_in))
    w_rec = float32_values(rng.randn(n_rec, n_rec).T / np.sqrt(n_rec))
    np.fill_diagonal(w_rec, 0.0)
    w_out = float32_values(rng.randn(n_rec, n_out).T / np.sqrt(n_rec))
    w_fb = float32_values(rng.randn(n_rec, n_out) / np.sqrt(n_rec))

    bools = (rng.rand(T, n_in) < 0.05).swapaxes(0, 1)
    bools[:, 0] = False
    target = superimposed_sines(rng, T)

    v_th = 0.03
    rec = {
        "tau_m": 30.0, "cm": 0.001, "v_rest": 0.0, "v_thresh": v_th, "tau_refrac": 0.0, "i_offset": 0.0,
        "surrogate_gradient_function": "piecewise_linear",
        "surrogate_gradient_height": 0.3 / v_th, "surrogate_gradient_width": 1.0 * abs(v_th),
        "c_reg": 300.0, "f_target": 10.0, "regular_spike_arrival": False,
    }
    return Scenario(
        name=f"sine-original-b{batch_size}-it{iterations}-seed{seed}",
        description="Sine-wave pattern generation, original family (NEST eprop_*_bsshslm_2020 sine-waves test).",
        network={"family": "original", "dt": 1.0, "sequence": float(T), "learning_window": float(T), "feedback": "random"},
        populations=[Population("iaf", n_rec, rec)],
        readout={"tau_m": 30.0, "cm": 0.001, "v_rest": 0.0, "i_offset": 0.0, "loss": "mean_squared_error",
                 "regular_spike_arrival": False},
        optimizer={"type": "gradient_descent", "eta": 1e-4, "batch_size": batch_size, "w_min": -100.0, "w_max": 100.0},
        synapse={"average_gradient": False, "tau_m_readout": 30.0},
        n_in=n_in,
        n_out=n_out,
        n_sequences=n_seq,
        iteration_sequences=batch_size,
        w_in=w_in,
        w_rec=w_rec,
        w_out=w_out,
        w_fb=w_fb,
        input_spikes=tile_spikes(bools, T, n_seq),
        target=np.tile(target, n_seq)[None, :],
        float32_weights=True,
        tolerance={"rtol": 1e-10, "why": "float64 throughout; weights are float32 values as in NEST's test"},
    )


def evidence_original(iterations: int = 5, batch_size: int = 1, seed: int = 1) -> Scenario:
    """Evidence accumulation, original family (NEST's ``evidence-accumulation`` example and test).

    The network of :func:`eprop_plugins.tasks.common.evidence_draws` with softmax cross-entropy
    readouts during the recall window, Adam (eta 5e-3, epsilon 1e-8) and averaged gradients.
    """
    d = evidence_draws(iterations, batch_size, seed)
    common = {**d.recurrent, "regular_spike_arrival": True}
    return Scenario(
        name=f"evidence-original-b{batch_size}-it{iterations}-seed{seed}",
        description="Evidence accumulation, original family (NEST evidence-accumulation example/test).",
        network={"family": "original", "dt": 1.0, "sequence": float(d.steps), "learning_window": float(d.recall),
                 "feedback": "random"},
        populations=[Population("iaf", d.n_reg, dict(common)),
                     Population("iaf_adapt", d.n_ad, {**common, **d.adaptation})],
        readout={"tau_m": 20.0, "cm": 0.001, "v_rest": 0.0, "i_offset": 0.0, "loss": "cross_entropy",
                 "regular_spike_arrival": False},
        optimizer={"type": "adam", "eta": 5e-3, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-8,
                   "batch_size": batch_size, "w_min": -100.0, "w_max": 100.0},
        synapse={"average_gradient": True, "tau_m_readout": 20.0},
        n_in=d.n_in,
        n_out=d.n_out,
        n_sequences=iterations * batch_size,
        iteration_sequences=batch_size,
        w_in=d.w_in,
        w_rec=d.w_rec,
        w_out=d.w_out,
        w_fb=d.w_fb,
        input_spikes=d.input_spikes,
        target=d.target,
        float32_weights=True,
        tolerance={"rtol": 1e-10, "why": "float64 throughout; weights are float32 values as in NEST's test"},
    )
