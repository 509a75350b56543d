"""Original family (``*_bsshslm_2020``) on NEST: layout, network, simulation loop and collection.

Wired as NEST's own tests (``testsuite/pytests/synapses/test_eprop_bsshslm_2020_plasticity.py``): the
skeleton of :mod:`.common`, plus, for cross-entropy, readout <-> readout ``rate_connection_delayed``
on receptor 1 (weight 1, the normalisation).  Kernel: ``eprop_update_interval`` = one sequence,
``eprop_learning_window``, ``eprop_reset_neurons_on_update``; recurrent neurons send flush events
every sequence (``flush_event_send_interval``), as NEST's tests.

Alignment (NEST step -> aligned step ``n``, docs/model.rst §0/§2, measured and tested): a spike
generator emitting at ``n + 1`` reaches the recurrent neurons at aligned step ``n``; the recurrent
update of aligned step ``n`` is NEST step ``n + 2`` (history shift 2) and is recorded with time
stamp ``n + 3``, the readout update of step ``n`` is NEST step ``n + 3`` (shift 3), stamped
``n + 4``; the readout, target and error signals of step ``n`` are stamped ``n + 5`` (they lag the
readout potential by one step), and a recurrent neuron's recorded learning signal of step ``n`` is
stamped ``n + 6`` (NEST reads it from its history three steps back).  The target value of step
``n`` is set on the ``step_rate_generator`` at ``n + 4``.

NEST zeroes ``readout_signal`` and ``target_signal`` outside the learning window: there ``y`` is
derived from the recorded readout potential (mean squared error: the potential itself;
cross-entropy: its softmax, summed in NEST's order) and ``target`` is the scenario's target.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ...results import compute_losses
from .. import nest_translations as tr
from . import common
from .common import Layout, NestNetwork, Offsets, Recording

__all__ = ["OFFSETS", "RECORDABLES", "layout", "kernel_status", "create_network", "simulate", "collect"]

OFFSETS = Offsets(generator=1, amplitude=4, recurrent=3, readout=4, signal=5, learning_signal=6,
                  arrival=(2, 2, 3), tail=6)

RECORDABLES = {
    "recurrent": dict(common.RECURRENT_RECORDABLES),
    "adaptive": {"v_th_adapt": "V_th_adapt", "adaptation": "adaptation"},
    "readout": {"readout_v": "V_m", "y": "readout_signal", "target": "target_signal", "error": "error_signal"},
}

NOTES = [
    "weight recorder entries of NEST flush events were removed",
    "y outside the learning window is derived from the recorded readout potential "
    "(NEST zeroes readout_signal there); target there is the scenario's target",
    "fr_reg and per-synapse traces are not observable in NEST",
]


def layout(nestml: bool = False) -> Layout:
    """The original-family layout with NEST's built-in models or (``nestml``) the project's NESTML models."""
    return Layout("original", tr.model_names("original", nestml), {k: dict(v) for k, v in RECORDABLES.items()}, OFFSETS)


def kernel_status(sc) -> dict[str, Any]:
    """Kernel settings of the family: update interval (one sequence), learning window, reset on update."""
    return {
        "eprop_update_interval": sc.steps_per_sequence * sc.dt,
        "eprop_learning_window": sc.learning_window_steps() * sc.dt,
        "eprop_reset_neurons_on_update": True,
    }


def _recurrent_status(pop, flush_interval: float) -> dict[str, Any]:
    status = tr.to_nest(tr.RECURRENT, pop.params)
    status["V_m"] = pop.params["v_rest"]
    # a silent neuron still closes its synapses' update interval (as NEST's tests: once per sequence)
    status["flush_event_send_interval"] = flush_interval
    return status


def _readout_status(sc) -> dict[str, Any]:
    status = tr.to_nest(tr.READOUT, sc.readout)
    status["V_m"] = sc.readout["v_rest"]
    return status


def create_network(sc, layout: Layout, *, record_weight_events: bool = True,
                   flush_interval: float | None = None, record: bool = True) -> NestNetwork:
    """Create, wire and stimulate the network of a validated original-family scenario in the current kernel.

    The kernel must carry :func:`kernel_status` and must not have simulated yet.

    Parameters
    ----------
    sc : Scenario
        Validated scenario (original family).
    layout : Layout
        From :func:`layout`.
    record_weight_events : bool
        Attach the weight recorder to the plastic synapses.
    flush_interval : float, optional
        ``flush_event_send_interval`` of the recurrent neurons, ms (default one sequence).
    record : bool
        Record the recurrent neurons (False: losses only, no recurrent multimeters; the spike
        recorder only for weight events).
    """
    flush = flush_interval or sc.steps_per_sequence * sc.dt
    net = common.create_nodes(sc, layout, [_recurrent_status(p, flush) for p in sc.populations], _readout_status(sc),
                              record=record, spikes=record_weight_events)
    tau_kappa = sc.synapse["tau_m_readout"] or sc.readout["tau_m"]
    common.connect(net, sc, {"average_gradient": sc.synapse["average_gradient"]}, {"tau_m_readout": tau_kappa},
                   record_weight_events=record_weight_events)
    if sc.readout["loss"] == "cross_entropy":
        common.import_nest().Connect(
            net.readouts, net.readouts, {"rule": "all_to_all", "allow_autapses": False},
            {"synapse_model": "rate_connection_delayed", "delay": sc.dt, "receptor_type": 1, "weight": 1.0})
    common.set_inputs(net, sc)
    return net


def simulate(net: NestNetwork, sc, on_iteration: Callable[[int, float], None] | None = None) -> None:
    """Simulate iteration by iteration (kernel at time 0); after each, report its loss from the recording.

    ``on_iteration(index, loss)`` after each iteration.
    """
    nest = common.import_nest()
    steps_it = sc.steps_per_sequence * sc.iteration_sequences
    for it in range(sc.n_iterations):
        end = (it + 1) * steps_it + OFFSETS.tail  # the readout signal of the last step is stamped later
        nest.Simulate((end - net.simulated_steps) * sc.dt)
        net.simulated_steps = end
        if on_iteration is not None:
            y, target = _readout_signals(net, sc, (it + 1) * steps_it)
            sl = slice(it * steps_it, (it + 1) * steps_it)
            on_iteration(it, float(compute_losses(sc, y[sl], target[sl], sl.start)[0]))


def _readout_signals(net: NestNetwork, sc, n_steps: int) -> tuple[np.ndarray, np.ndarray]:
    """``y`` and ``target`` (n_steps, n_out) in aligned time (see module doc for the window)."""
    rn, off = net.layout.recordables["readout"], net.layout.offsets
    ev = net.readout_multimeter.events
    v = common.grid(ev, rn["readout_v"], net.first_out, sc.n_out, off.readout, n_steps, sc.dt)
    y = common.grid(ev, rn["y"], net.first_out, sc.n_out, off.signal, n_steps, sc.dt)
    target = common.grid(ev, rn["target"], net.first_out, sc.n_out, off.signal, n_steps, sc.dt)
    T = sc.steps_per_sequence
    outside = (np.arange(n_steps) % T) < T - sc.learning_window_steps()
    if outside.any():
        y[outside] = readout_signal_from_potential(v[outside], sc.readout["loss"])
        target[outside] = sc.target[:, :n_steps].T[outside]
    return y, target


def readout_signal_from_potential(v: np.ndarray, loss: str) -> np.ndarray:
    """NEST's readout signal for recorded absolute potentials ``v`` (steps, n_out).

    Mean squared error: ``v``.  Cross-entropy: ``u_k / (sum_{q != k} u_q + u_k)`` with ``u = exp(v)``,
    the other readouts summed in ascending order as NEST delivers their rate events.
    """
    if loss != "cross_entropy":
        return v.copy()
    u = np.exp(v)
    out = np.empty_like(u)
    for k in range(u.shape[1]):
        others = np.zeros(u.shape[0])
        for q in range(u.shape[1]):
            if q != k:
                others += u[:, q]
        out[:, k] = u[:, k] / (others + u[:, k])
    return out


def collect(net: NestNetwork, sc, *, record_weight_events: bool = True, record: bool = True) -> Recording:
    """Read all recorders: traces ``v, z, psi, adaptation, v_th_adapt, learning_signal, readout_v, y,
    target, error`` in aligned time and (``record_weight_events``) the weight events.

    ``record`` False (a network created losses only): the losses and weight events, no traces.
    """
    N, dt = sc.n_steps, sc.dt
    if not record:
        y, target = _readout_signals(net, sc, N)
        events = common.weight_events(net, sc, *common.recurrent_spikes(net, sc)) if record_weight_events else {}
        return Recording({}, events, [*NOTES[:1], "losses only: no traces were recorded"],
                         losses=compute_losses(sc, y, target))
    traces, s_stamp, s_idx = common.recurrent_traces(net, sc)
    rn, off = net.layout.recordables["readout"], net.layout.offsets
    ev = net.readout_multimeter.events
    traces["readout_v"] = common.grid(ev, rn["readout_v"], net.first_out, sc.n_out, off.readout, N, dt)
    traces["y"], traces["target"] = _readout_signals(net, sc, N)
    traces["error"] = common.grid(ev, rn["error"], net.first_out, sc.n_out, off.signal, N, dt)
    events = common.weight_events(net, sc, s_stamp, s_idx) if record_weight_events else {}
    return Recording(traces, events, list(NOTES))
