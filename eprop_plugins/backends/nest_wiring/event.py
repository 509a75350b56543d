"""Event family (``eprop_iaf*``, ``eprop_readout``, ``eprop_synapse``) on NEST: layout, network, simulation, collection.

Wired as NEST's ``test_eprop_plasticity.py``: the skeleton of :mod:`.common`, plus one
``step_rate_generator`` -> all readouts on receptor 1 (the learning-window signal).  Recurrent neurons
send flush events after a silent sequence (``flush_event_send_interval`` = sequence; flush events
change no number, see :mod:`eprop_plugins.reference.event`).  No e-prop kernel settings.

Alignment (NEST step <-> aligned step ``n``; measured, and tested against the reference):

=====================================================  ===========================
what                                                   NEST time stamp (steps)
=====================================================  ===========================
spike generator emission of an input arriving at n     ``n + 1``
recurrent update of step n (multimeter, spikes)        ``n + 3`` (NEST step n + 2)
readout update of step n (V_m, readout/error signal)   ``n + 4`` (NEST step n + 3)
target / learning-window amplitude used at step n      ``n + 3``
recurrent learning signal paired with psi of step n    ``n + 5`` (history read 2 back)
weight event of a spike arriving at n (rec / readout)  ``n + 2`` / ``n + 3``
=====================================================  ===========================

``I_e`` is switched on just in time (after NEST step 0 for ``eprop_iaf(_adapt)``, after step 1 for
the ``psc_delta`` models and the readouts) so that the constant current enters at aligned step 0,
as in the reference; before that the neurons run silent pre-roll steps.

The recorded learning signal is exact wherever NEST still held the history entry; entries that
NEST had already erased (no synapse needs them any more) record as 0 and are filled with
``B . error`` of the recorded readout errors, the value NEST had written there (checked on every
recorded entry).  The recorded ``readout_signal``/``target_signal`` are multiplied by the
learning-window signal in NEST, so ``y`` is the recorded potential and ``target`` the scenario's
target.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ...parameters import PSC_DELTA_MODELS
from ...results import compute_losses
from .. import nest_translations as tr
from . import common
from .common import Layout, NestNetwork, Offsets, Recording

__all__ = ["OFFSETS", "RECORDABLES", "layout", "kernel_status", "create_network", "simulate", "collect",
           "complete_learning_signal"]

OFFSETS = Offsets(generator=1, amplitude=3, recurrent=3, readout=4, signal=4, learning_signal=5,
                  arrival=(2, 2, 3), tail=6)

RECORDABLES = {
    "recurrent": dict(common.RECURRENT_RECORDABLES),
    "adaptive": {"adaptation": "adaptation", "v_th_adapt": "V_th_adapt"},
    "readout": {"readout_v": "V_m", "error": "error_signal"},
}

#: steps simulated before aligned step 0 (see :func:`simulate`)
PRE_ROLL_STEPS = 2


def layout(nestml: bool = False) -> Layout:
    """The event-family layout with NEST's built-in models or (``nestml``) the project's NESTML models."""
    return Layout("event", tr.model_names("event", nestml), {k: dict(v) for k, v in RECORDABLES.items()}, OFFSETS)


def kernel_status(sc) -> dict[str, Any]:
    """Kernel settings of the family: none (the event family has no global update interval)."""
    return {}


def _recurrent_status(pop, flush_interval: float) -> dict[str, Any]:
    status = tr.to_nest(tr.RECURRENT, pop.params)
    # I_e is switched on in the pre-roll (see simulate)
    status.update({"V_m": pop.params["v_rest"], "I_e": 0.0, "flush_event_send_interval": flush_interval})
    return status


def _readout_status(sc) -> dict[str, Any]:
    status = tr.to_nest(tr.READOUT, {k: v for k, v in sc.readout.items() if k != "loss"})
    status.update({"V_m": sc.readout["v_rest"], "I_e": 0.0})
    return status


def create_network(sc, layout: Layout, *, record_weight_events: bool = True,
                   flush_interval: float | None = None, record: bool = True) -> NestNetwork:
    """Create, wire and stimulate the network of a validated event-family scenario in the current kernel.

    The kernel must not have simulated yet.

    Parameters
    ----------
    sc : Scenario
        Validated scenario (event family).
    layout : Layout
        From :func:`layout`.
    record_weight_events : bool
        Attach the weight recorder to the plastic synapses.
    flush_interval : float, optional
        ``flush_event_send_interval`` of the recurrent neurons, ms (default one sequence; flush
        events change no number).
    record : bool
        Record the recurrent neurons (False: losses only, no recurrent multimeters; the spike
        recorder only for weight events).
    """
    dt = sc.dt
    flush = flush_interval or sc.steps_per_sequence * dt
    net = common.create_nodes(sc, layout, [_recurrent_status(p, flush) for p in sc.populations], _readout_status(sc),
                              window=True, record=record, spikes=record_weight_events)
    common.connect(net, sc, {}, {}, record_weight_events=record_weight_events)
    common.import_nest().Connect(net.window_generator, net.readouts, "all_to_all",
                                 {"synapse_model": "rate_connection_delayed", "delay": dt, "receptor_type": 1})
    common.set_inputs(net, sc)
    lam = np.ones(sc.n_steps) if sc.learning_window_signal is None else np.asarray(sc.learning_window_signal, float)
    net.window_generator.set(common.amplitudes(lam, OFFSETS.amplitude, dt))
    return net


def _switch_on_currents(net: NestNetwork, sc, psc: bool) -> None:
    """Set I_e of the recurrent models of one kind (psc_delta or not) and, with psc, of the readouts."""
    for pop, nodes in zip(sc.populations, net.populations):
        if (pop.model in PSC_DELTA_MODELS) == psc and pop.params["i_offset"] != 0.0:
            nodes.set(tr.to_nest(tr.RECURRENT, {"i_offset": pop.params["i_offset"]}))
    if psc and sc.readout["i_offset"] != 0.0:
        net.readouts.set(tr.to_nest(tr.READOUT, {"i_offset": sc.readout["i_offset"]}))


def simulate(net: NestNetwork, sc, on_iteration: Callable[[int, float], None] | None = None) -> None:
    """Simulate all iterations of a network from :func:`create_network` (kernel at time 0), then the tail.

    ``on_iteration(index, loss)`` after each iteration (NEST then runs iteration by iteration).
    """
    nest = common.import_nest()
    dt = sc.dt
    # pre-roll: I_e of eprop_iaf(_adapt) enters v one step after it is set, that of psc_delta at once
    nest.Simulate(dt)
    _switch_on_currents(net, sc, psc=False)
    nest.Simulate(dt)
    _switch_on_currents(net, sc, psc=True)
    net.simulated_steps = PRE_ROLL_STEPS
    steps_it = sc.steps_per_sequence * sc.iteration_sequences
    v_name = net.layout.recordables["readout"]["readout_v"]
    if on_iteration is not None:
        for it in range(sc.n_iterations):
            end = (it + 1) * steps_it + OFFSETS.readout  # readout of the iteration's last step is recorded
            nest.Simulate((end - net.simulated_steps) * dt)
            net.simulated_steps = end
            n = (it + 1) * steps_it
            y = common.grid(net.readout_multimeter.events, v_name, net.first_out, sc.n_out, OFFSETS.readout, n, dt)
            sl = slice(it * steps_it, n)
            on_iteration(it, float(compute_losses(sc, y[sl], np.asarray(sc.target, float).T[sl], sl.start)[0]))
    end = sc.n_steps + OFFSETS.tail
    nest.Simulate((end - net.simulated_steps) * dt)
    net.simulated_steps = end


def complete_learning_signal(recorded: np.ndarray, error: np.ndarray, B: np.ndarray) -> tuple[np.ndarray, int]:
    """Fill the learning-signal entries NEST could not record.

    A neuron records the learning signal from its e-prop history two steps back; NEST erases a
    history entry as soon as no incoming synapse needs it any more, and then records 0.  Every entry
    NEST wrote is ``sum_k B_jk error_k`` (readouts in ascending order) of the recorded errors: this
    is checked on the recorded entries, and used for the erased ones.

    Parameters
    ----------
    recorded : ndarray
        ``(n_steps, n_rec)`` recorded learning signal.
    error : ndarray
        ``(n_steps, n_out)`` recorded readout errors.
    B : ndarray
        ``(n_rec, n_out)`` feedback weights.

    Returns
    -------
    (ndarray, int)
        The learning signal ``(n_steps, n_rec)`` and the number of filled entries.
    """
    derived = np.zeros_like(recorded)
    for k in range(B.shape[1]):
        derived += B[None, :, k] * error[:, k : k + 1]
    differs = recorded != derived
    wrong = differs & (recorded != 0.0)
    if wrong.any():
        t, j = (int(x[0]) for x in np.nonzero(wrong))
        raise RuntimeError(f"NEST's recorded learning signal of neuron {j} at aligned step {t} is {recorded[t, j]!r}, "
                           f"not B . error = {derived[t, j]!r}: recording alignment broken")
    return derived, int(differs.sum())


def collect(net: NestNetwork, sc, *, record_weight_events: bool = True, record: bool = True) -> Recording:
    """Read all recorders: traces ``v, z, psi, adaptation, v_th_adapt, learning_signal, readout_v, y,
    target, error`` in aligned time and (``record_weight_events``) the weight events.

    ``record`` False (a network created losses only): the losses and weight events, no traces.
    """
    N, dt = sc.n_steps, sc.dt
    if not record:
        # y is the recorded readout potential, target the scenario's (as in the traces below)
        y = common.grid(net.readout_multimeter.events, net.layout.recordables["readout"]["readout_v"],
                        net.first_out, sc.n_out, OFFSETS.readout, N, dt)
        events = common.weight_events(net, sc, *common.recurrent_spikes(net, sc)) if record_weight_events else {}
        notes = ["weight recorder entries of NEST flush events were removed", "losses only: no traces were recorded"]
        return Recording({}, events, notes, losses=compute_losses(sc, y, np.asarray(sc.target, dtype=float).T.copy()))
    traces, s_stamp, s_idx = common.recurrent_traces(net, sc)
    ev = net.readout_multimeter.events
    for name, nest_name in net.layout.recordables["readout"].items():
        traces[name] = common.grid(ev, nest_name, net.first_out, sc.n_out, OFFSETS.readout, N, dt)
    traces["y"] = traces["readout_v"].copy()
    traces["target"] = np.asarray(sc.target, dtype=float).T.copy()
    traces["learning_signal"], filled = complete_learning_signal(traces["learning_signal"], traces["error"],
                                                                 sc.effective_feedback())
    events = common.weight_events(net, sc, s_stamp, s_idx) if record_weight_events else {}
    notes = [
        "weight recorder entries of NEST flush events were removed",
        f"learning_signal: {filled} entries NEST had erased from its history before recording them "
        "(it records 0 there) were filled with B . error (checked equal on all recorded entries)",
        "y is the recorded readout potential (NEST multiplies readout_signal by the learning window)",
        "fr_reg, per-synapse traces and weight snapshots are not observable in NEST",
    ]
    return Recording(traces, events, notes)
