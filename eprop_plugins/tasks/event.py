"""The event family's tasks: NEST 3.10's ``test_eprop_plasticity.py::test_eprop_regression`` and evidence accumulation.

Sine-wave regression
--------------------

Random draws, parameters and weight scalings are those of NEST's test (legacy ``np.random`` seeded
with ``seed``; draws W_in, W_rec, W_out, B, then the frozen input pattern, then the target), so
that seed 1 reproduces the test's reference losses for its four model/optimizer combinations.

Alignment: the scenario is NEST's test network at NEST's absolute times (input bit ``k`` of
sequence ``s`` arrives at aligned step ``s T + k``, i.e. its generator fires at ``s T + k + 1`` ms
as in the test).  Absolute time matters: NEST's Adam catches up every missed optimisation step
since the start of the simulation, so shifting the network by one step changes the numbers.  NEST's
test feeds target ``k`` to the readout one step before input bit ``k`` arrives, so the aligned
target is the tiled sine shifted by one step (holding its last value at the end), and the test
evaluates its loss over the readout steps ``[s T - 1, s T + T - 1)`` rather than the sequence:
:func:`nest_test_losses` computes that loss, :attr:`Result.losses` the canonical per-sequence one.

Evidence accumulation
---------------------
The network and inputs of the original family's task (:func:`eprop_plugins.tasks.common.evidence_draws`)
with mean-squared-error readouts trained on the one-hot answer during the recall window (the event
family has no cross-entropy readout).
"""

from __future__ import annotations

import numpy as np

from ..parameters import PSC_DELTA_MODELS, ParameterError, RECURRENT_MODELS
from ..scenario import Population, Scenario
from .common import evidence_draws, superimposed_sines

__all__ = ["sine_event", "evidence_event", "nest_test_losses", "EVENT_SINE_DEFAULT_OPTIMIZER", "NEST_TEST_LOSSES"]

#: NEST's test pairs each model with one optimizer
EVENT_SINE_DEFAULT_OPTIMIZER = {
    "iaf": "adam",
    "iaf_adapt": "gradient_descent",
    "iaf_psc_delta": "gradient_descent",
    "iaf_psc_delta_adapt": "gradient_descent",
}


#: NEST 3.10's reference losses of ``test_eprop_regression`` (model -> first 5 losses, optimizer of
#: :data:`EVENT_SINE_DEFAULT_OPTIMIZER`, seed 1, 100-step sequences, batch 1)
NEST_TEST_LOSSES = {
    "iaf": (0.14000491891386, 0.28735818029752, 0.22263713699860, 0.23015072431384, 0.17565248170694),
    "iaf_adapt": (0.02242584487453, 0.01916753791522, 0.00571493935652, 0.00037875376195, 0.00037823157578),
    "iaf_psc_delta": (0.27039631749159, 0.51390204375229, 0.53473859833866, 0.53608474802202, 0.49323580244201),
    "iaf_psc_delta_adapt": (0.16416646182675, 0.27952159282830, 0.29937515524341, 0.26160957500433,
                            0.26384514215024),
}


def nest_test_losses(scenario, y: np.ndarray) -> np.ndarray:
    """The loss as NEST's ``test_eprop_regression`` evaluates it, from the aligned readout signal.

    NEST's test records the readout from one step before aligned step 0, so its iteration ``i``
    covers aligned steps ``[i L - 1, i L + L - 1)`` (``L`` = steps per iteration).  The step before
    0 is the readout at rest (``v_rest``) against the first target value, which is 0 by construction.

    Parameters
    ----------
    scenario : Scenario
        A :func:`sine_event` scenario.
    y : ndarray
        ``(n_steps, 1)`` aligned readout signal (``Result.traces['y']``).
    """
    sc = scenario.validated()
    y = np.asarray(y, dtype=float)
    target = sc.target.T
    y_prev = np.concatenate([[[sc.readout["v_rest"]]], y[:-1]])
    t_prev = np.concatenate([[[0.0]], target[:-1]])
    L = sc.steps_per_sequence * sc.iteration_sequences
    n = y.shape[0] // L * L
    sq = ((y_prev[:n] - t_prev[:n]) ** 2).sum(axis=1).reshape(-1, sc.iteration_sequences, sc.steps_per_sequence)
    return 0.5 * np.mean(np.sum(sq, axis=2), axis=1)


def sine_event(
    iterations: int = 5,
    batch_size: int = 1,
    seed: int = 1,
    *,
    sequence_steps: int | None = None,
    model: str | None = None,
    optimizer: str | None = None,
) -> Scenario:
    """Sine-wave regression with event-based e-prop (NEST's ``test_eprop_regression``).

    100 frozen Poisson inputs (p = 0.05 per step), 100 recurrent neurons, one readout; per-step
    Adam or gradient descent with ``eta = 1e-4 (1 - kappa)^2``; ISI trace cutoff 100 ms.

    Parameters
    ----------
    iterations : int
        Number of loss values (each of ``batch_size`` sequences).
    batch_size : int
        Sequences per loss value (NEST's ``group_size``; the optimizer batch stays 1 step).
    seed : int
        Seed of ``np.random.RandomState``; 1 reproduces NEST's reference losses.
    sequence_steps : int, optional
        Sequence length in steps (default 100, as NEST's test; ``c_reg`` scales with it).
    model : str, optional
        ``iaf`` (default), ``iaf_adapt``, ``iaf_psc_delta`` or ``iaf_psc_delta_adapt``.
    optimizer : str, optional
        ``adam`` or ``gradient_descent`` (default: NEST's pairing, Adam for ``iaf`` only).

    Raises
    ------
    ParameterError
        For an unknown model or optimizer, or non-positive sizes.
    """
    model = model or "iaf"
    if model not in RECURRENT_MODELS or "event" not in RECURRENT_MODELS[model]:
        raise ParameterError(f"model = {model!r}: allowed values are {', '.join(EVENT_SINE_DEFAULT_OPTIMIZER)}")
    optimizer = optimizer or EVENT_SINE_DEFAULT_OPTIMIZER[model]
    if optimizer not in ("adam", "gradient_descent"):
        raise ParameterError(f"optimizer = {optimizer!r}: allowed values are adam, gradient_descent")
    for name, value in (("iterations", iterations), ("batch_size", batch_size)):
        if not isinstance(value, (int, np.integer)) or value < 1:
            raise ParameterError(f"{name} = {value!r}: allowed range is integer >= 1")
    T = sequence_steps or 100
    if not isinstance(T, (int, np.integer)) or T < 1:
        raise ParameterError(f"sequence_steps = {T!r}: allowed range is integer >= 1")
    rng = np.random.RandomState(seed)
    n_in, n_rec, n_out = 100, 100, 1
    n_seq = iterations * batch_size
    kappa = 0.97
    scale = 1.0 - kappa
    psc = model in PSC_DELTA_MODELS

    # float32 arithmetic exactly as NEST's test (numpy scalars are cast to float32)
    f32 = np.float32
    w_in = np.array(rng.randn(n_in, n_rec).T / np.sqrt(n_in), dtype=f32)
    w_rec = np.array(rng.randn(n_rec, n_rec).T / np.sqrt(n_rec), dtype=f32)
    np.fill_diagonal(w_rec, 0.0)
    w_out = np.array(rng.randn(n_rec, n_out).T / np.sqrt(n_rec), dtype=f32) * scale
    w_fb = np.array(rng.randn(n_rec, n_out) / np.sqrt(n_rec), dtype=f32)
    if psc:
        w_fb /= scale
    else:
        w_in *= scale
        w_rec *= scale
        w_fb *= scale

    bools = (rng.rand(T, n_in) < 0.05).swapaxes(0, 1)
    target = superimposed_sines(rng, T)

    rec = {
        "tau_m": 30.0, "cm": 0.001, "v_rest": 0.0, "v_thresh": 0.03, "tau_refrac": 0.0, "i_offset": 0.0,
        "surrogate_gradient_function": "piecewise_linear",
        "surrogate_gradient_height": 10.0, "surrogate_gradient_width": 0.03,
        "c_reg": 300.0 / T, "f_target": 10.0, "kappa": kappa, "kappa_reg": kappa, "isi_trace_cutoff": 100.0,
    }
    if psc:
        rec.update({"v_reset": -0.5, "c_reg": 2.0 / T / scale**2, "v_thresh": 0.5})
    if model == "iaf_adapt":
        rec.update({"beta": 0.0174, "tau_a": 2000.0})
    opt = {"type": optimizer, "batch_size": 1, "eta": 1e-4 * scale**2, "optimize_each_step": True,
           "w_min": -100.0, "w_max": 100.0}
    if optimizer == "adam":
        opt.update({"beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7})

    spikes = [np.concatenate([np.nonzero(b)[0] + s * T for s in range(n_seq)]).astype(np.int64) for b in bools]
    # NEST's target generator runs one step ahead of the input (see module docstring); it holds its
    # last value after the task
    tiled = np.tile(target, n_seq)
    target_aligned = np.concatenate([tiled[1:], tiled[-1:]])

    return Scenario(
        name=f"sine-event-{model}-{optimizer}-b{batch_size}-it{iterations}-seed{seed}",
        description=(f"Sine-wave pattern generation, event family, eprop_{model} with {optimizer} "
                     "(NEST 3.10 test_eprop_regression)."),
        network={"family": "event", "dt": 1.0, "sequence": float(T), "feedback": "random"},
        populations=[Population(model, n_rec, rec)],
        readout={"tau_m": 30.0, "cm": 0.001, "v_rest": 0.0, "i_offset": 0.0, "loss": "mean_squared_error",
                 "isi_trace_cutoff": 100.0},
        optimizer=opt,
        synapse={},
        n_in=n_in,
        n_out=n_out,
        n_sequences=n_seq,
        iteration_sequences=batch_size,
        w_in=w_in.astype(np.float64),
        w_rec=w_rec.astype(np.float64),
        w_out=w_out.astype(np.float64),
        w_fb=w_fb.astype(np.float64),
        input_spikes=spikes,
        target=target_aligned[None, :],
        float32_weights=True,
        tolerance={"rtol": 1e-10, "why": "float64 throughout; weights are float32 values as in NEST's test"},
    )


def evidence_event(iterations: int = 5, batch_size: int = 1, seed: int = 1) -> Scenario:
    """Evidence accumulation, event family: mean squared error on the one-hot answer during the recall window.

    ``batch_size`` sequences per loss value; the optimizer runs every step (batch 1 step), Adam
    (eta 5e-3, epsilon 1e-8).
    """
    d = evidence_draws(iterations, batch_size, seed)
    n_seq = iterations * batch_size
    window = np.zeros(d.steps)
    window[-d.recall:] = 1.0
    return Scenario(
        name=f"evidence-event-b{batch_size}-it{iterations}-seed{seed}",
        description="Evidence accumulation, event family (NEST evidence-accumulation example/test).",
        network={"family": "event", "dt": 1.0, "sequence": float(d.steps), "feedback": "random"},
        populations=[Population("iaf", d.n_reg, dict(d.recurrent)),
                     Population("iaf_adapt", d.n_ad, {**d.recurrent, **d.adaptation})],
        readout={"tau_m": 20.0, "cm": 0.001, "v_rest": 0.0, "i_offset": 0.0, "loss": "mean_squared_error"},
        optimizer={"type": "adam", "eta": 5e-3, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-8,
                   "batch_size": 1, "w_min": -100.0, "w_max": 100.0, "optimize_each_step": True},
        synapse={},
        n_in=d.n_in,
        n_out=d.n_out,
        n_sequences=n_seq,
        iteration_sequences=batch_size,
        w_in=d.w_in,
        w_rec=d.w_rec,
        w_out=d.w_out,
        w_fb=d.w_fb,
        input_spikes=d.input_spikes,
        target=d.target,
        learning_window_signal=np.tile(window, n_seq),
        float32_weights=True,
        tolerance={"rtol": 1e-10, "why": "float64 throughout; weights are float32 values as in NEST's test"},
    )
