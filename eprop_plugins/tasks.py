"""Learning tasks as scenarios: sine-wave pattern generation and evidence accumulation.

The random draws follow NEST 3.10's e-prop tests and examples exactly (legacy ``np.random`` seeded
with ``seed``, the same order of draws), so that the first losses can be checked against the public
reference numbers (docs/model.rst §5).  The parameters are NEST's, written in the canonical
vocabulary (``cm`` in nF: NEST's ``C_m = 1 pF`` is ``cm = 0.001``).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from .parameters import FAMILIES, ParameterError
from .scenario import Population, Scenario

__all__ = ["TASKS", "make_task", "sine", "evidence", "superimposed_sines"]


def superimposed_sines(rng: np.random.RandomState, steps: int, periods=(1000, 500, 333, 200)) -> np.ndarray:
    """Sum of sines with random amplitudes (then phases), starting at 0, scaled to max |x| = 1."""
    amplitudes = rng.uniform(low=0.5, high=2.0, size=len(periods))
    phases = rng.uniform(low=0.0, high=2.0 * np.pi, size=len(periods))
    sines = [
        A * np.sin(np.linspace(phi, phi + 2.0 * np.pi * (steps // T), steps))
        for A, phi, T in zip(amplitudes, phases, periods)
    ]
    x = sum(sines)
    x -= x[0]
    x /= max(np.abs(x).max(), 1e-6)
    return x


def _f32(x: np.ndarray) -> np.ndarray:
    return np.array(x, dtype=np.float32).astype(np.float64)


def _tile_spikes(bools: np.ndarray, steps: int, n_sequences: int) -> list[np.ndarray]:
    """Per input, the aligned arrival steps of a frozen pattern ``bools[input, step]`` repeated each sequence."""
    starts = np.arange(n_sequences) * steps
    return [np.concatenate([np.nonzero(b)[0] + s for s in starts]).astype(np.int64) for b in bools]


def sine(
    family: str = "original",
    iterations: int = 5,
    batch_size: int = 1,
    seed: int = 1,
    *,
    sequence_steps: int | None = None,
    model: str | None = None,
    optimizer: str | None = None,
) -> Scenario:
    """Sine-wave pattern generation (supervised regression), NEST's ``sine-waves`` example and test.

    100 frozen Poisson inputs (p = 0.05 per step), 100 recurrent neurons, one readout trained with
    mean squared error to reproduce a sum of four sines.

    Parameters
    ----------
    family : {'original', 'event'}
    iterations : int
        Number of training iterations (each of ``batch_size`` sequences).
    batch_size : int
        Sequences per weight update (original family) or per loss value (event family).
    seed : int
        Seed of ``np.random.RandomState``; 1 reproduces NEST's reference losses.
    sequence_steps : int, optional
        Sequence length in steps (default 1000 for the original family, 100 for the event family
        as in NEST's test).
    model : str, optional
        Event family recurrent model (default ``iaf``; NEST's test also runs ``iaf_adapt``,
        ``iaf_psc_delta`` and ``iaf_psc_delta_adapt``).
    optimizer : str, optional
        Event family optimizer (default ``adam`` for ``iaf``, else ``gradient_descent``, as NEST's test).
    """
    if family not in FAMILIES:
        raise ParameterError(f"family = {family!r}: allowed values are {', '.join(FAMILIES)}")
    if family == "event":
        from .tasks_event import sine_event

        return sine_event(iterations, batch_size, seed, sequence_steps=sequence_steps, model=model, optimizer=optimizer)
    if model not in (None, "iaf") or optimizer not in (None, "gradient_descent"):
        raise ParameterError("sine (original family): model and optimizer are fixed (iaf, gradient_descent)")
    rng = np.random.RandomState(seed)
    T = sequence_steps or 1000
    n_in, n_rec, n_out = 100, 100, 1
    n_seq = iterations * batch_size

    w_in = _f32(rng.randn(n_in, n_rec).T / np.sqrt(n_in))
    w_rec = _f32(rng.randn(n_rec, n_rec).T / np.sqrt(n_rec))
    np.fill_diagonal(w_rec, 0.0)
    w_out = _f32(rng.randn(n_rec, n_out).T / np.sqrt(n_rec))
    w_fb = _f32(rng.randn(n_rec, n_out) / np.sqrt(n_rec))

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
        input_spikes=_tile_spikes(bools, T, n_seq),
        target=np.tile(target, n_seq)[None, :],
        float32_weights=True,
        tolerance={"rtol": 1e-10, "why": "float64 throughout; weights are float32 values as in NEST's test"},
    )


def _glorot(rng: np.random.RandomState, fan_in: int, fan_out: int) -> np.ndarray:
    scale = 1.0 / max(1.0, (fan_in + fan_out) / 2.0)
    limit = np.sqrt(3.0 * scale)
    return rng.uniform(low=-limit, high=limit, size=(fan_in, fan_out))


def evidence(
    family: str = "original",
    iterations: int = 5,
    batch_size: int = 1,
    seed: int = 1,
    **unused,
) -> Scenario:
    """Evidence accumulation (store-recall), NEST's ``evidence-accumulation`` example and test.

    40 inputs in four groups (left cues, right cues, recall cue, background), 50 LIF and 50 adaptive
    LIF neurons, two readouts.  Seven cues; after a delay the network must report the side with more
    cues during the recall window.  Original family: softmax cross-entropy, Adam (eta 5e-3,
    epsilon 1e-8), averaged gradients.  Event family: the same input and recurrent network with
    mean-squared-error readouts trained on the one-hot answer during the recall window (the event
    family has no cross-entropy readout).
    """
    if family not in FAMILIES:
        raise ParameterError(f"family = {family!r}: allowed values are {', '.join(FAMILIES)}")
    if unused.get("model") or unused.get("optimizer") or unused.get("sequence_steps"):
        raise ParameterError("evidence: model, optimizer and sequence_steps are fixed by the task")
    rng = np.random.RandomState(seed)
    n_symbols, n_cues, prob_group, spike_prob = 4, 7, 0.3, 0.04
    cue, spacing, bg_noise, recall = 100, 50, 1050, 150
    T = n_cues * (cue + spacing) + bg_noise + recall
    n_in, n_ad, n_reg, n_out = 40, 50, 50, 2
    n_rec = n_ad + n_reg
    n_seq = iterations * batch_size

    w_in = _f32(rng.randn(n_in, n_rec).T / np.sqrt(n_in))
    w_rec = _f32(rng.randn(n_rec, n_rec).T / np.sqrt(n_rec))
    np.fill_diagonal(w_rec, 0.0)
    w_out = _f32(_glorot(rng, n_rec, n_out).T)
    w_fb = _f32(rng.randn(n_rec, n_out))

    bools_all, cues_all = [], []
    n_pop = n_in // n_symbols
    for _ in range(iterations):
        prob_choices = np.array([prob_group, 1 - prob_group], dtype=np.float32)
        idx = rng.choice([0, 1], batch_size)
        probs = np.zeros((batch_size, 2), dtype=np.float32)
        probs[:, 0] = prob_choices[idx]
        probs[:, 1] = prob_choices[1 - idx]
        cues = np.zeros((batch_size, n_cues), dtype=int)
        for b in range(batch_size):
            cues[b, :] = rng.choice([0, 1], n_cues, p=probs[b])
        p_in = np.zeros((batch_size, T, n_in))
        for b in range(batch_size):
            for c in range(n_cues):
                start = c * (cue + spacing) + spacing
                side = cues[b, c]
                p_in[b, start : start + cue, side * n_pop : (side + 1) * n_pop] = spike_prob
        p_in[:, -recall:, 2 * n_pop : 3 * n_pop] = spike_prob
        p_in[:, :, 3 * n_pop :] = spike_prob / 4.0
        bools = p_in > rng.rand(p_in.size).reshape(p_in.shape)
        bools[:, 0, :] = False
        bools_all.append(bools)
        cues_all.extend((np.sum(cues, axis=1) > int(n_cues / 2)).astype(int))
    raster = np.array(bools_all).reshape(n_seq * T, n_in)
    spikes = [np.nonzero(raster[:, i])[0].astype(np.int64) for i in range(n_in)]
    target = np.zeros((n_out, n_seq * T))
    for s, k in enumerate(cues_all):
        target[k, s * T : (s + 1) * T] = 1.0

    v_th = 0.6
    common = {
        "tau_m": 20.0, "cm": 0.001, "v_rest": 0.0, "v_thresh": v_th, "tau_refrac": 5.0, "i_offset": 0.0,
        "surrogate_gradient_function": "piecewise_linear",
        "surrogate_gradient_height": 0.3 / v_th, "surrogate_gradient_width": 1.0 * abs(v_th),
        "c_reg": 300.0, "f_target": 10.0,
    }
    adapt = {"tau_a": 2000.0, "beta": 1.7 * ((1.0 - np.exp(-1.0 / 2000.0)) / (1.0 - np.exp(-1.0 / 20.0)))}
    if family == "original":
        common["regular_spike_arrival"] = True
        readout = {"tau_m": 20.0, "cm": 0.001, "v_rest": 0.0, "i_offset": 0.0, "loss": "cross_entropy",
                   "regular_spike_arrival": False}
        network = {"family": "original", "dt": 1.0, "sequence": float(T), "learning_window": float(recall),
                   "feedback": "random"}
        optimizer = {"type": "adam", "eta": 5e-3, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-8,
                     "batch_size": batch_size, "w_min": -100.0, "w_max": 100.0}
        synapse = {"average_gradient": True, "tau_m_readout": 20.0}
        lws = None
    else:
        readout = {"tau_m": 20.0, "cm": 0.001, "v_rest": 0.0, "i_offset": 0.0, "loss": "mean_squared_error"}
        network = {"family": "event", "dt": 1.0, "sequence": float(T), "feedback": "random"}
        optimizer = {"type": "adam", "eta": 5e-3, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-8,
                     "batch_size": 1, "w_min": -100.0, "w_max": 100.0, "optimize_each_step": True}
        synapse = {}
        window = np.zeros(T)
        window[-recall:] = 1.0
        lws = np.tile(window, n_seq)
    return Scenario(
        name=f"evidence-{family}-b{batch_size}-it{iterations}-seed{seed}",
        description=f"Evidence accumulation, {family} family (NEST evidence-accumulation example/test).",
        network=network,
        populations=[Population("iaf", n_reg, dict(common)), Population("iaf_adapt", n_ad, {**common, **adapt})],
        readout=readout,
        optimizer=optimizer,
        synapse=synapse,
        n_in=n_in,
        n_out=n_out,
        n_sequences=n_seq,
        iteration_sequences=batch_size,
        w_in=w_in,
        w_rec=w_rec,
        w_out=w_out,
        w_fb=w_fb,
        input_spikes=spikes,
        target=target,
        learning_window_signal=lws,
        float32_weights=True,
        tolerance={"rtol": 1e-10, "why": "float64 throughout; weights are float32 values as in NEST's test"},
    )


TASKS: dict[str, Callable[..., Scenario]] = {"sine": sine, "evidence": evidence}


def make_task(name: str, **kwargs) -> Scenario:
    """Build a task scenario by name (``sine`` or ``evidence``)."""
    try:
        factory = TASKS[name]
    except KeyError:
        raise ParameterError(f"task = {name!r}: allowed values are {', '.join(TASKS)}") from None
    return factory(**kwargs)
