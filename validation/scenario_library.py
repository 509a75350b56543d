"""The validation scenarios: small hand-made experiments plus the first iterations of the tasks.

Every scenario is built by a generator function in this module (deterministic: fixed seeds) and
saved as JSON in ``validation/scenarios/<name>.json``; the runner reads the saved files, so a change
to a generator shows up as a diff of the data.  Regenerate the files with::

    python -m validation.scenario_library --write

Each scenario states what it covers (``description``) and its tolerance with the reason
(``tolerance = {"rtol": ..., "why": ...}``).  Scenarios whose JSON would exceed
:data:`MAX_JSON_BYTES` are not saved and are generated on the fly (:func:`saved` says which).

Hand-made scenarios use absolute recurrent voltages (``v_rest = -70 mV``, threshold 15 mV above it)
so that every backend's handling of ``v_rest`` is exercised, and a readout at ``v_rest = 0`` so that
the readout signal lives on the scale of the target.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Callable

import numpy as np

from eprop_plugins import connectivity as cn
from eprop_plugins import tasks
from eprop_plugins.scenario import Population, Scenario, load

__all__ = [
    "SCENARIO_DIR",
    "MAX_JSON_BYTES",
    "LIBRARY",
    "EXPECTED_LOSSES",
    "names",
    "build",
    "get",
    "saved",
    "write",
]

#: Where the saved scenarios live.
SCENARIO_DIR = Path(__file__).resolve().parent / "scenarios"
#: Scenarios whose JSON is larger than this are generated on the fly instead of saved.
MAX_JSON_BYTES = 2_000_000

FLOAT64 = "float64 throughout; every backend computes in double precision"

#: Public reference losses (docs/model.rst §5, from NEST 3.10's test suite) for task scenarios:
#: name -> (losses, rtol, source).  The runner checks the reference against them.
EXPECTED_LOSSES: dict[str, tuple[tuple[float, ...], float, str]] = {
    "task-sine-original": (
        (101.964356999041, 103.466731126205, 103.340607074771, 103.680244037686, 104.412775748752),
        1e-8,
        "NEST 3.10 testsuite test_eprop_bsshslm_2020_plasticity.py (sine-waves)",
    ),
    "task-evidence-original": (
        (0.741152550006, 0.740388187700, 0.665785233177, 0.663644193322, 0.729428962844),
        1e-8,
        "NEST 3.10 testsuite test_eprop_bsshslm_2020_plasticity.py (evidence accumulation)",
    ),
}


# ---------------------------------------------------------------------------------------------- helpers
def _recurrent(family: str, **overrides: Any) -> dict[str, Any]:
    """Recurrent-neuron parameters used by the hand-made scenarios (absolute voltages)."""
    p: dict[str, Any] = {
        "tau_m": 10.0,
        "cm": 0.25,
        "v_rest": -70.0,
        "v_thresh": -55.0,
        "tau_refrac": 2.0,
        "i_offset": 0.0,
        "surrogate_gradient_function": "piecewise_linear",
        "surrogate_gradient_height": 0.3 / 15.0,
        "surrogate_gradient_width": 15.0,
        "c_reg": 0.0,
        "f_target": 10.0,
    }
    if family == "original":
        p["regular_spike_arrival"] = True
    else:
        p["kappa"] = 0.95
        p["kappa_reg"] = 0.95
    p.update(overrides)
    return p


def _adaptive(family: str, **overrides: Any) -> dict[str, Any]:
    return _recurrent(family, **{"tau_a": 50.0, "beta": 2.0, **overrides})


def _readout(family: str, loss: str = "mean_squared_error", **overrides: Any) -> dict[str, Any]:
    p: dict[str, Any] = {"tau_m": 15.0, "cm": 0.25, "v_rest": 0.0, "i_offset": 0.0, "loss": loss}
    if family == "original":
        p["regular_spike_arrival"] = True
    p.update(overrides)
    return p


def _regular_train(start: int, period: int, steps: int, n_sequences: int, family: str, jitter_seed: int | None = None) -> np.ndarray:
    """Arrival steps of a regular spike train repeated in every sequence (never at a sequence's step 0)."""
    base = np.arange(start, steps, period)
    if jitter_seed is not None:
        rng = np.random.RandomState(jitter_seed)
        base = np.unique(np.clip(base + rng.randint(-1, 2, base.size), 1, steps - 1))
    trains = [base + s * steps for s in range(n_sequences)]
    return np.concatenate(trains).astype(np.int64)


def _poisson_inputs(rng: np.random.RandomState, n_in: int, steps: int, n_sequences: int, p: float,
                    frozen: bool) -> list[np.ndarray]:
    """Bernoulli(p) input spikes per step; step 0 of each sequence is left empty (original family rule)."""
    if frozen:
        pattern = rng.rand(n_in, steps) < p
        pattern[:, 0] = False
        bools = np.tile(pattern, (1, n_sequences))
    else:
        bools = rng.rand(n_in, steps * n_sequences) < p
        bools[:, ::steps] = False
    return [np.nonzero(b)[0].astype(np.int64) for b in bools]


def _sine_target(n_out: int, steps: int, n_sequences: int, amplitude: float = 2.0) -> np.ndarray:
    t = np.arange(steps)
    rows = [amplitude * np.sin(2 * np.pi * (k + 1) * t / steps + 0.5 * k) for k in range(n_out)]
    return np.tile(np.array(rows), (1, n_sequences))


def _class_target(rng: np.random.RandomState, n_out: int, steps: int, n_sequences: int) -> np.ndarray:
    target = np.zeros((n_out, steps * n_sequences))
    for s in range(n_sequences):
        target[rng.randint(n_out), s * steps : (s + 1) * steps] = 1.0
    return target


def _default_record(n_in: int, n_rec: int, n_out: int) -> list[tuple[str, int, int]]:
    rec = [("in", 0, 0), ("in", n_in - 1, n_rec - 1), ("out", 0, 0)]
    if n_rec > 1:
        rec += [("rec", 1, 0), ("rec", 0, n_rec - 1)]
    if n_out > 1:
        rec.append(("out", n_rec - 1, n_out - 1))
    return rec


def _single(
    name: str,
    family: str,
    model: str,
    description: str,
    *,
    params: dict[str, Any] | None = None,
    steps: int = 120,
    n_sequences: int = 2,
    eta: float = 5e-4,
    w_in: float = 7.0,
) -> Scenario:
    """One recurrent neuron driven by two fixed regular input trains, one MSE readout, gradient descent."""
    adaptive = model.endswith("adapt")
    base = _adaptive(family) if adaptive else _recurrent(family)
    if model.startswith("iaf_psc_delta"):
        base["v_reset"] = -70.0
    base.update(params or {})
    spikes = [
        _regular_train(3, 4, steps, n_sequences, family),
        _regular_train(5, 7, steps, n_sequences, family, jitter_seed=11),
    ]
    return Scenario(
        name=name,
        description=description,
        tolerance={"rtol": 1e-10, "why": FLOAT64},
        network={"family": family, "dt": 1.0, "sequence": float(steps), "feedback": "random"},
        populations=[Population(model, 1, base)],
        readout=_readout(family),
        optimizer={"type": "gradient_descent", "eta": eta, "batch_size": 1},
        synapse={},
        n_in=2,
        n_out=1,
        n_sequences=n_sequences,
        w_in=np.array([[w_in, 0.6 * w_in]]),
        w_rec=np.zeros((1, 1)),
        w_out=np.array([[0.8]]),
        w_fb=np.array([[1.3]]),
        input_spikes=spikes,
        target=_sine_target(1, steps, n_sequences),
        record_synapses=[("in", 0, 0), ("in", 1, 0), ("out", 0, 0)],
    )


def _network(
    name: str,
    family: str,
    description: str,
    *,
    seed: int,
    populations: list[Population] | None = None,
    n_in: int = 6,
    n_out: int = 2,
    steps: int = 150,
    n_sequences: int = 3,
    iteration_sequences: int = 1,
    loss: str = "mean_squared_error",
    optimizer: dict[str, Any] | None = None,
    synapse: dict[str, Any] | None = None,
    network: dict[str, Any] | None = None,
    readout: dict[str, Any] | None = None,
    p_in: float = 0.12,
    frozen_input: bool = False,
    w_in_scale: float = 9.0,
    w_rec_scale: float = 4.0,
    tolerance: dict[str, Any] | None = None,
    learning_window_signal: np.ndarray | None = None,
    density: dict[str, float] | None = None,
) -> Scenario:
    """A small recurrent network (default 4 LIF + 3 adaptive LIF) with Poisson inputs.

    ``density`` (``{"in": p, "rec": p, "out": p}``) makes those projections sparse: each pair is
    connected with probability ``p`` (drawn after every other number, from the seed + 1000), the
    recorded synapses always, and the input weights are divided by ``p`` to keep the drive.
    """
    rng = np.random.RandomState(seed)
    if populations is None:
        populations = [Population("iaf", 4, _recurrent(family)), Population("iaf_adapt", 3, _adaptive(family))]
    n_rec = sum(p.size for p in populations)
    w_in = np.abs(rng.randn(n_rec, n_in)) * w_in_scale / np.sqrt(n_in) * 1.5
    w_rec = rng.randn(n_rec, n_rec) * w_rec_scale / np.sqrt(n_rec)
    np.fill_diagonal(w_rec, 0.0)
    w_out = rng.randn(n_out, n_rec) / np.sqrt(n_rec)
    w_fb = rng.randn(n_rec, n_out)
    spikes = _poisson_inputs(rng, n_in, steps, n_sequences, p_in, frozen_input)
    if loss == "cross_entropy":
        target = _class_target(rng, n_out, steps, n_sequences)
    else:
        target = _sine_target(n_out, steps, n_sequences)
    net = {"family": family, "dt": 1.0, "sequence": float(steps), "feedback": "random"}
    net.update(network or {})
    opt = {"type": "gradient_descent", "eta": 2e-5, "batch_size": 1}
    opt.update(optimizer or {})
    record = _default_record(n_in, n_rec, n_out)
    weights: dict[str, Any] = {"in": w_in, "rec": w_rec, "out": w_out}
    if density:
        mask_rng = np.random.RandomState(seed + 1000)
        for proj, p in density.items():
            mask = mask_rng.rand(*weights[proj].shape) < p
            for q, pre, post in record:
                if q == proj:
                    mask[post, pre] = True
            scale = 1.0 / p if proj == "in" else 1.0
            weights[proj] = cn.from_dense(weights[proj] * scale, mask, autapses=proj != "rec")
    return Scenario(
        name=name,
        description=description,
        tolerance=tolerance or {"rtol": 1e-10, "why": FLOAT64},
        network=net,
        populations=populations,
        readout={**_readout(family, loss), **(readout or {})},
        optimizer=opt,
        synapse=dict(synapse or {}),
        n_in=n_in,
        n_out=n_out,
        n_sequences=n_sequences,
        iteration_sequences=iteration_sequences,
        w_in=weights["in"],
        w_rec=weights["rec"],
        w_out=weights["out"],
        w_fb=w_fb,
        input_spikes=spikes,
        target=target,
        learning_window_signal=learning_window_signal,
        record_synapses=record,
    )


# ---------------------------------------------------------------------------------------------- original family
def _orig_lif_single() -> Scenario:
    return _single("orig-lif-single", "original", "iaf",
                   "Original family: one LIF neuron (t_ref 2 ms) driven by two fixed regular input trains; "
                   "MSE readout, gradient descent, two sequences (one update in between).")


def _orig_alif_single() -> Scenario:
    return _single("orig-alif-single", "original", "iaf_adapt",
                   "Original family: one adaptive LIF neuron driven by fixed input; the threshold adaptation "
                   "and the adaptive eligibility trace (epsilon) enter the gradient.")


def _orig_tref(t_ref: float) -> Callable[[], Scenario]:
    def make() -> Scenario:
        return _single(f"orig-lif-tref{t_ref:g}", "original", "iaf",
                       f"Original family: one LIF neuron with t_ref = {t_ref:g} ms under strong drive "
                       f"(psi = 0 and no spike while refractory).",
                       params={"tau_refrac": t_ref}, w_in=12.0)
    return make


def _orig_rec_mse_gd() -> Scenario:
    return _network("orig-rec-mse-gd", "original",
                    "Original family: 4 LIF + 3 adaptive LIF recurrent network, 6 Poisson inputs, two MSE "
                    "readouts, gradient descent, batch 1, three sequences.", seed=101)


def _orig_rec_ce_adam() -> Scenario:
    return _network("orig-rec-ce-adam", "original",
                    "Original family: recurrent network with two softmax cross-entropy readouts, Adam "
                    "(eta 5e-3), averaged gradients and a 50 ms learning window.", seed=102,
                    loss="cross_entropy",
                    optimizer={"type": "adam", "eta": 5e-3, "epsilon": 1e-8},
                    synapse={"average_gradient": True},
                    network={"learning_window": 50.0})


def _orig_rec_batch2() -> Scenario:
    return _network("orig-rec-batch2-gd", "original",
                    "Original family: recurrent network, gradient descent with batch size 2 (gradients of two "
                    "consecutive sequences averaged), four sequences = two iterations.", seed=103,
                    n_sequences=4, iteration_sequences=2, optimizer={"batch_size": 2, "eta": 3e-5})


def _orig_rec_adam_batch2() -> Scenario:
    sc = _network("orig-rec-batch2-adam", "original",
                  "Original family: recurrent network, Adam with batch size 2, four sequences; weight bounds "
                  "[-3, 3] mV with initial weights clipped into them, so that updates hit the bounds.", seed=104,
                  n_sequences=4, iteration_sequences=2,
                  optimizer={"type": "adam", "eta": 2e-3, "batch_size": 2, "w_min": -3.0, "w_max": 3.0})
    # NEST requires w_min <= initial weight <= w_max; weights at the bounds are then pushed out and clipped
    for key in ("w_in", "w_rec", "w_out"):
        setattr(sc, key, np.clip(getattr(sc, key), -3.0, 3.0))
    return sc


def _orig_firing_reg() -> Scenario:
    pops = [Population("iaf", 4, _recurrent("original", c_reg=50.0, f_target=20.0)),
            Population("iaf_adapt", 3, _adaptive("original", c_reg=50.0, f_target=20.0))]
    return _network("orig-rec-firing-reg", "original",
                    "Original family: firing-rate regularisation (c_reg 50, f_target 20 Hz) adds fr * sum(e) "
                    "to every recurrent gradient.", seed=105, populations=pops)


def _orig_symmetric_initial() -> Scenario:
    return _network("orig-rec-symmetric-initial", "original",
                    "Original family: feedback B = initial W_out^T (fixed, as NEST's learning-signal "
                    "connections can express).", seed=106, network={"feedback": "symmetric_initial"})


def _orig_symmetric() -> Scenario:
    return _network("orig-rec-symmetric", "original",
                    "Original family: symmetric e-prop, B tracks W_out^T after every update (not expressible "
                    "with NEST's built-in models).", seed=107, network={"feedback": "symmetric"},
                    optimizer={"eta": 5e-5})


def _orig_surrogates() -> Scenario:
    pops = [
        Population("iaf", 2, _recurrent("original", surrogate_gradient_function="exponential",
                                        surrogate_gradient_height=0.05, surrogate_gradient_width=4.0)),
        Population("iaf", 2, _recurrent("original", surrogate_gradient_function="fast_sigmoid_derivative",
                                        surrogate_gradient_height=0.05, surrogate_gradient_width=4.0)),
        Population("iaf_adapt", 2, _adaptive("original", surrogate_gradient_function="arctan_derivative",
                                             surrogate_gradient_height=0.05, surrogate_gradient_width=4.0)),
    ]
    return _network("orig-rec-surrogates", "original",
                    "Original family: the exponential, fast-sigmoid and arctan surrogate gradients, one "
                    "population each.", seed=108, populations=pops)


def _orig_tensorflow_form() -> Scenario:
    pops = [Population("iaf", 5, _recurrent("original", tau_refrac=0.0, regular_spike_arrival=False,
                                            v_min=-80.0))]
    return _network("orig-rec-tf-arrival", "original",
                    "Original family in the TensorFlow form: regular_spike_arrival False (arriving spikes "
                    "scaled by 1 - alpha), t_ref 0, a v_min clamp and a constant offset current.",
                    seed=109, populations=pops, w_in_scale=60.0, w_rec_scale=20.0,
                    readout={"regular_spike_arrival": False, "i_offset": 0.01})


# ---------------------------------------------------------------------------------------------- event family
def _event_lif_single() -> Scenario:
    return _single("event-lif-single", "event", "iaf",
                   "Event family: one eprop_iaf neuron (t_ref 2 ms) driven by two fixed regular input trains; "
                   "MSE readout, gradient descent each step.", eta=1e-3)


def _event_alif_single() -> Scenario:
    return _single("event-alif-single", "event", "iaf_adapt",
                   "Event family: one eprop_iaf_adapt neuron driven by fixed input (adaptive threshold, "
                   "epsilon trace).", eta=1e-3)


def _event_tref(t_ref: float) -> Callable[[], Scenario]:
    def make() -> Scenario:
        return _single(f"event-lif-tref{t_ref:g}", "event", "iaf",
                       f"Event family: one eprop_iaf neuron with t_ref = {t_ref:g} ms under strong drive.",
                       params={"tau_refrac": t_ref}, w_in=12.0, eta=1e-3)
    return make


def _event_psc_delta_single() -> Scenario:
    return _single("event-psc-delta-single", "event", "iaf_psc_delta",
                   "Event family: one eprop_iaf_psc_delta neuron (hard reset to v_reset, input dropped while "
                   "refractory, t_ref 2 ms) driven by fixed input.", eta=1e-3)


def _event_psc_delta_adapt_single() -> Scenario:
    return _single("event-psc-delta-adapt-single", "event", "iaf_psc_delta_adapt",
                   "Event family: one eprop_iaf_psc_delta_adapt neuron with t_ref 0 (with t_ref > 0 NEST 3.10 "
                   "never raises its adaptation, a documented quirk).", params={"tau_refrac": 0.0}, eta=1e-3)


def _event_rec_gd() -> Scenario:
    return _network("event-rec-mse-gd", "event",
                    "Event family: 4 eprop_iaf + 3 eprop_iaf_adapt recurrent network, two MSE readouts, "
                    "gradient descent every step, batch 1.", seed=201, optimizer={"eta": 5e-4})


def _event_rec_adam_batch2() -> Scenario:
    return _network("event-rec-adam-batch2", "event",
                    "Event family: Adam with batch size 2 (time steps; missed steps caught up with zero "
                    "gradient).", seed=202, optimizer={"type": "adam", "eta": 1e-3, "batch_size": 2})


def _event_isi_cutoff() -> Scenario:
    pops = [Population("iaf", 4, _recurrent("event", isi_trace_cutoff=10.0)),
            Population("iaf_adapt", 3, _adaptive("event", isi_trace_cutoff=10.0))]
    return _network("event-rec-isi-cutoff", "event",
                    "Event family: finite ISI trace cutoff (10 ms) on recurrent and readout neurons; sparse "
                    "input so that many inter-spike intervals exceed it.", seed=203, populations=pops,
                    readout={"isi_trace_cutoff": 10.0}, p_in=0.05, w_in_scale=14.0, optimizer={"eta": 5e-4})


def _event_firing_reg() -> Scenario:
    pops = [Population("iaf", 4, _recurrent("event", c_reg=5.0, f_target=20.0)),
            Population("iaf_adapt", 3, _adaptive("event", c_reg=5.0, f_target=20.0))]
    return _network("event-rec-firing-reg", "event",
                    "Event family: firing-rate regularisation (c_reg 5, f_target 20 Hz, kappa_reg 0.95) through "
                    "the ebar_reg trace.", seed=204, populations=pops, optimizer={"eta": 5e-4})


def _event_symmetric_initial() -> Scenario:
    return _network("event-rec-symmetric-initial", "event",
                    "Event family: feedback B = initial W_out^T (fixed).", seed=205,
                    network={"feedback": "symmetric_initial"}, optimizer={"eta": 5e-4})


def _event_symmetric() -> Scenario:
    return _network("event-rec-symmetric", "event",
                    "Event family: symmetric e-prop, B tracks W_out^T after every update (not expressible "
                    "with NEST's built-in models).", seed=206, network={"feedback": "symmetric"},
                    optimizer={"eta": 2e-3})


def _event_psc_delta_net() -> Scenario:
    pops = [Population("iaf_psc_delta", 4, _recurrent("event", v_reset=-65.0, tau_refrac=3.0)),
            Population("iaf_psc_delta_adapt", 3, _adaptive("event", v_reset=-70.0, tau_refrac=0.0))]
    return _network("event-rec-psc-delta", "event",
                    "Event family: recurrent network of eprop_iaf_psc_delta (v_reset -65 mV, t_ref 3 ms) and "
                    "eprop_iaf_psc_delta_adapt (t_ref 0) neurons.", seed=207, populations=pops,
                    optimizer={"eta": 5e-4})


def _event_per_spike() -> Scenario:
    return _network("event-rec-optimize-per-spike", "event",
                    "Event family: optimize_each_step False (gradient summed between spikes, one gradient "
                    "descent call per presynaptic spike) with a learning window on the last 100 steps.",
                    seed=208, optimizer={"eta": 5e-4, "optimize_each_step": False},
                    learning_window_signal=np.tile(np.r_[np.zeros(50), np.ones(100)], 3))


# ---------------------------------------------------------------------------------------------- sparse
#: Connection probabilities of the sparse scenarios: 10 % recurrent, sparse input and readout
SPARSE10 = {"in": 0.3, "rec": 0.1, "out": 0.5}


def _sparse_populations(family: str) -> list[Population]:
    return [Population("iaf", 20, _recurrent(family)), Population("iaf_adapt", 10, _adaptive(family))]


def _orig_sparse() -> Scenario:
    return _network("orig-rec-sparse10", "original",
                    "Original family: 20 LIF + 10 adaptive LIF, 10 % recurrent connectivity, 30 % of the "
                    "input pairs and 50 % of the readout pairs connected (sparse connection lists: "
                    "unconnected pairs have no synapse and never learn), Adam.", seed=120,
                    populations=_sparse_populations("original"), n_in=12, w_in_scale=6.0, w_rec_scale=12.0,
                    optimizer={"type": "adam", "eta": 2e-3, "epsilon": 1e-8}, density=SPARSE10)


def _orig_sparse_ce() -> Scenario:
    return _network("orig-rec-sparse-ce", "original",
                    "Original family: sparse connectivity (as orig-rec-sparse10) with three cross-entropy "
                    "readouts, gradient descent, batch 2.", seed=121,
                    populations=_sparse_populations("original"), n_in=12, n_out=3, w_in_scale=6.0,
                    w_rec_scale=12.0, loss="cross_entropy", n_sequences=4, iteration_sequences=2,
                    optimizer={"eta": 2e-3, "batch_size": 2}, density=SPARSE10)


def _event_sparse() -> Scenario:
    return _network("event-rec-sparse10", "event",
                    "Event family: 20 eprop_iaf + 10 eprop_iaf_adapt, 10 % recurrent connectivity, 30 % of "
                    "the input pairs and 50 % of the readout pairs connected (sparse connection lists), "
                    "gradient descent every step.", seed=220,
                    populations=_sparse_populations("event"), n_in=12, w_in_scale=6.0, w_rec_scale=12.0,
                    optimizer={"eta": 5e-4}, density=SPARSE10)


def _event_sparse_adam() -> Scenario:
    return _network("event-rec-sparse-adam", "event",
                    "Event family: sparse connectivity (as event-rec-sparse10) with Adam, optimize_each_step "
                    "False and an ISI trace cutoff of 20 ms.", seed=221,
                    populations=[Population("iaf", 20, _recurrent("event", isi_trace_cutoff=20.0)),
                                 Population("iaf_adapt", 10, _adaptive("event", isi_trace_cutoff=20.0))],
                    n_in=12, w_in_scale=6.0, w_rec_scale=12.0,
                    optimizer={"type": "adam", "eta": 1e-3, "optimize_each_step": False}, density=SPARSE10)


# ---------------------------------------------------------------------------------------------- tasks
def _task(task: str, family: str) -> Callable[[], Scenario]:
    def make() -> Scenario:
        sc = tasks.make_task(task, family=family, iterations=5)
        sc.name = f"task-{task}-{family}"
        sc.description = (f"First five iterations of the {task} task, {family} family, with NEST's seed-1 "
                          f"draws (tasks.{task}). " + sc.description)
        sc.tolerance = {"rtol": 1e-10, "why": "float64 throughout; weights are float32 values, as in NEST's "
                        "examples, so every backend starts from the same numbers"}
        n_rec, n_in, n_out = sc.n_rec, sc.n_in, sc.n_out
        sc.record_synapses = _default_record(n_in, n_rec, n_out)
        return sc
    return make


#: Scenario name -> generator, in the order they are run and reported.
LIBRARY: dict[str, Callable[[], Scenario]] = {
    "orig-lif-single": _orig_lif_single,
    "orig-alif-single": _orig_alif_single,
    "orig-lif-tref0": _orig_tref(0.0),
    "orig-lif-tref5": _orig_tref(5.0),
    "orig-rec-mse-gd": _orig_rec_mse_gd,
    "orig-rec-ce-adam": _orig_rec_ce_adam,
    "orig-rec-batch2-gd": _orig_rec_batch2,
    "orig-rec-batch2-adam": _orig_rec_adam_batch2,
    "orig-rec-firing-reg": _orig_firing_reg,
    "orig-rec-symmetric-initial": _orig_symmetric_initial,
    "orig-rec-symmetric": _orig_symmetric,
    "orig-rec-surrogates": _orig_surrogates,
    "orig-rec-tf-arrival": _orig_tensorflow_form,
    "event-lif-single": _event_lif_single,
    "event-alif-single": _event_alif_single,
    "event-lif-tref0": _event_tref(0.0),
    "event-lif-tref5": _event_tref(5.0),
    "event-psc-delta-single": _event_psc_delta_single,
    "event-psc-delta-adapt-single": _event_psc_delta_adapt_single,
    "event-rec-mse-gd": _event_rec_gd,
    "event-rec-adam-batch2": _event_rec_adam_batch2,
    "event-rec-isi-cutoff": _event_isi_cutoff,
    "event-rec-firing-reg": _event_firing_reg,
    "event-rec-symmetric-initial": _event_symmetric_initial,
    "event-rec-symmetric": _event_symmetric,
    "event-rec-psc-delta": _event_psc_delta_net,
    "event-rec-optimize-per-spike": _event_per_spike,
    "orig-rec-sparse10": _orig_sparse,
    "orig-rec-sparse-ce": _orig_sparse_ce,
    "event-rec-sparse10": _event_sparse,
    "event-rec-sparse-adam": _event_sparse_adam,
    "task-sine-original": _task("sine", "original"),
    "task-evidence-original": _task("evidence", "original"),
    "task-sine-event": _task("sine", "event"),
    "task-evidence-event": _task("evidence", "event"),
}


def names() -> list[str]:
    """All scenario names, in run order."""
    return list(LIBRARY)


def build(name: str) -> Scenario:
    """Generate a scenario from its generator function.

    Raises
    ------
    KeyError
        Unknown name (the message lists the known ones).
    """
    if name not in LIBRARY:
        raise KeyError(f"scenario {name!r}: known scenarios are {', '.join(LIBRARY)}")
    sc = LIBRARY[name]()
    assert sc.name == name, (sc.name, name)
    return sc


def saved(name: str) -> Path:
    """Path of the saved JSON of a scenario (it may not exist: then the scenario is generated on the fly)."""
    return SCENARIO_DIR / f"{name}.json"


def get(name: str) -> tuple[Scenario, str]:
    """The scenario to validate and where it came from (``"saved <file>"`` or ``"generated"``)."""
    path = saved(name)
    if path.exists():
        return load(path), f"saved {path.name}"
    return build(name), "generated"


def write(directory: Path = SCENARIO_DIR, only: list[str] | None = None) -> dict[str, str]:
    """Regenerate the saved scenarios.

    Returns
    -------
    dict
        name -> what happened (``written (N bytes)``, ``too large (N bytes): generated on the fly`` or
        ``not generated: <reason>``).
    """
    directory.mkdir(parents=True, exist_ok=True)
    out: dict[str, str] = {}
    for name in only or names():
        try:
            sc = build(name)
            sc.validated()
        except Exception as exc:  # report generator dependencies that are not there yet
            out[name] = f"not generated: {type(exc).__name__}: {exc}"
            continue
        text = json.dumps(sc.to_dict(), indent=None, separators=(",", ":"))
        path = directory / f"{name}.json"
        if len(text) > MAX_JSON_BYTES:
            path.unlink(missing_ok=True)
            out[name] = f"too large ({len(text)} bytes): generated on the fly"
            continue
        path.write_text(text + "\n")
        out[name] = f"written ({len(text)} bytes)"
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m validation.scenario_library", description=__doc__.split("\n")[0])
    parser.add_argument("--write", action="store_true", help="regenerate validation/scenarios/*.json")
    parser.add_argument("names", nargs="*", help="only these scenarios")
    args = parser.parse_args(argv)
    if args.write:
        status = write(only=args.names or None)
        for name, what in status.items():
            print(f"{name:32s} {what}")
        return 1 if any(v.startswith("not generated") for v in status.values()) else 0
    for name in args.names or names():
        print(f"{name:32s} {'saved' if saved(name).exists() else 'generated on the fly'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
