"""Training of :class:`brian2_ext.attach.EpropAttachment`: the online learner on the user's own objects.

The attachment's *equivalent scenario* (canonical parameters, weights and replayed input spikes)
is translated into a call of :func:`brian2_ext.online.online_eprop` on the user's ``NeuronGroup``
and ``Synapses`` in the e-prop slots with NEST's interval boundary; the run is read back into a
:class:`~eprop_plugins.results.Result` in aligned time and canonical units (mV, 1/mV), like every
backend's.  There is no second implementation of the e-prop math here: only the translation of
units and the recording.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from eprop_plugins.reference.common import recurrent_constants
from eprop_plugins.results import Result, compute_losses

from .online import online_eprop
from .online_code import eps_name

__all__ = ["train_online", "online_arguments"]


def _restart_voltage(sc) -> np.ndarray:
    """The membrane potential (mV, per neuron) in an interval's first step after NEST's reset.

    The state is reset after that step's arrivals (which are dropped), so it holds one update
    from rest without input: ``v_rest + max(P_i I_e, v_min - v_rest)`` (docs/model.rst §2 steps 1, 3).
    """
    c = recurrent_constants(sc)
    return c.v_rest + np.maximum(c.p_i * c.i_e, c.v_min)


def online_arguments(att, sc) -> dict[str, Any]:
    """Keyword arguments of :func:`online_eprop` equivalent to the attachment's scenario ``sc``."""
    import brian2 as b2
    from brian2 import Hz, TimedArray, mV, ms

    pop, ro, opt, net = sc.populations[0].params, sc.readout, sc.optimizer, sc.network
    dt = sc.dt * ms
    idx = np.concatenate([np.full(len(s), k) for k, s in enumerate(sc.input_spikes)] + [np.zeros(0, int)])
    steps = np.concatenate([np.asarray(s) - 1 for s in sc.input_spikes] + [np.zeros(0, int)])
    # the scenario's arrivals, emitted one step earlier; nothing after the last sequence (NEST's boundary rule
    # then applies the last update without a next interval, as the reference does)
    replay = b2.SpikeGeneratorGroup(sc.n_in, idx.astype(int), steps * dt, dt=dt, name=f"{att.inputs.name}_replay")
    fb = net["feedback"]
    w_fb = sc.w_fb if fb == "random" else sc.w_out.T
    adam = opt["type"] == "adam"
    ce = ro["loss"] == "cross_entropy"
    # the learning signal B err is in mV (cross-entropy) or mV² (mean squared error): gradients are
    # dimensionless or in mV, so gradient descent's eta is in mV or dimensionless
    g_unit = 1.0 if ce else mV
    return dict(
        n_out=sc.n_out, loss=ro["loss"], softmax={"offset": ro["v_rest"] * mV, "scale": 1.0 * mV},
        target=TimedArray(sc.target.T.copy() if ce else (sc.target.T - ro["v_rest"]) * mV, dt=dt),
        update_interval=sc.steps_per_sequence * dt, learning_window=sc.learning_window_steps() * dt,
        readout_tau=ro["tau_m"] * ms, readout_regular_spike_arrival=ro["regular_spike_arrival"],
        surrogate={"function": pop["surrogate_gradient_function"], "height": pop["surrogate_gradient_height"] / mV,
                   "width": pop["surrogate_gradient_width"] * mV},
        c_reg=pop["c_reg"], f_target=pop["f_target"] * Hz,
        optimizer={"type": opt["type"], "eta": opt["eta"] * mV if adam or ce else opt["eta"],
                   "beta_1": opt["beta_1"], "beta_2": opt["beta_2"], "epsilon": opt["epsilon"] * g_unit,
                   "w_min": opt["w_min"] * mV,
                   "w_max": opt["w_max"] * mV},
        feedback="symmetric" if fb == "symmetric" else "random", w_out=sc.w_out * mV, w_fb=w_fb * mV,
        weight=att.weight_name, voltage=att.population_voltage, reset_state_on_update=True,
        namespace=att.namespace, inputs={att.inputs: replay}, eprop_schedule=True,
        restart_values={att.population_voltage: _restart_voltage(sc) * mV},
        lower_bounds={} if pop.get("v_min") is None else {att.population_voltage: pop["v_min"] * mV},
        batch_size=opt["batch_size"], average_gradient=sc.synapse["average_gradient"],
        trace_tau=(sc.synapse["tau_m_readout"] or ro["tau_m"]) * ms,
        readout_drive=ro["i_offset"] / ro["cm"] * ro["tau_m"] * mV if ro["i_offset"] != 0.0 else None,
        readout_lower_bound=None if ro["v_min"] is None else (ro["v_min"] - ro["v_rest"]) * mV)


def _monitors(learner, sc, attach_syn: dict[str, Any], voltage: str):
    """Monitors for the traces, the weight snapshots and the recorded synapses (on the given objects)."""
    from brian2 import SpikeMonitor, StateMonitor, ms

    ce = sc.readout["loss"] == "cross_entropy"

    def make(objects):
        rec, readout = objects[learner.recurrent.name], objects[learner.readout.name]
        T = sc.steps_per_sequence
        mons = [SpikeMonitor(rec), StateMonitor(rec, [voltage, "eprop_psi", "eprop_L"], record=True, when="end",
                                                order=100),
                StateMonitor(readout, ["y", "err"] + (["eprop_pi"] if ce else []), record=True, when="end",
                             order=100)]
        snap = {}
        for proj, syn in attach_syn.items():
            copy = objects[learner.synapses[syn.name].name] if syn is not None else None
            snap[proj] = copy
            if copy is not None:
                # explicit indices: cpp_standalone cannot resolve record=True for synapses before the run
                every = np.arange(len(learner.synapses[syn.name]))
                mons.append(StateMonitor(copy, learner.weight, record=every, dt=T * sc.dt * ms, when="start",
                                         order=-100))
        ro = objects[learner.readout_synapses.name]
        mons.append(StateMonitor(ro, "w_out", record=np.arange(len(learner.readout_synapses)), dt=T * sc.dt * ms,
                                 when="start", order=-100))
        for proj, pre, post in sc.record_synapses:
            if proj == "out":
                k = int(np.nonzero((np.asarray(learner.readout_synapses.i[:]) == pre)
                                   & (np.asarray(learner.readout_synapses.j[:]) == post))[0][0])
                mons.append(StateMonitor(ro, "eprop_zbar", record=[k], when="end", order=100))
            else:
                s = learner.synapses[attach_syn[proj].name]
                k = int(np.nonzero((np.asarray(s.i[:]) == pre) & (np.asarray(s.j[:]) == post))[0][0])
                mons.append(StateMonitor(snap[proj], [eps_name(voltage), "eprop_e", "eprop_ebar"], record=[k],
                                         when="end", order=100))
        return mons

    return make


def train_online(att, sc, *, mode: str) -> Result:
    """Train the attachment's model on scenario ``sc`` with the online learner; a Result in canonical units."""
    import time

    import brian2 as b2
    from brian2 import mV, ms

    t0 = time.perf_counter()
    attach_syn = {p: s for p, s in att.synapses.items() if s is not None}
    learner = online_eprop(att.recurrent, list(attach_syn.values()), **online_arguments(att, sc))
    for proj, syn in attach_syn.items():  # the attachment's current weights (the user's, unless not written back)
        copy = learner.synapses[syn.name]
        learner.recorder.values(copy, learner.weight, att.weights[proj][np.asarray(copy.j[:]), np.asarray(copy.i[:])]
                                * float(mV))
    make = _monitors(learner, sc, attach_syn, att.population_voltage)
    N, T = sc.n_steps, sc.steps_per_sequence
    duration = (N + 2) * sc.dt * ms  # the last update is applied in step 1 of the (empty) next interval
    names = [learner.synapses[s.name].name for s in attach_syn.values()] + [learner.readout_synapses.name]

    def read(objects):  # connectivity and final weights of the copies, SI
        return {n: (np.asarray(objects[n].i[:]), np.asarray(objects[n].j[:]),
                    np.asarray(objects[n].variables[learner.weight if n != names[-1] else "w_out"].get_value()))
                for n in names}

    if mode == "standalone":
        run = learner.run_standalone(duration, monitors=make, read=read)
        mons, final = run["monitors"], run["read"]
    else:
        b2.prefs.codegen.target = mode
        mons = make({o.name: o for o in learner.objects})
        learner.network.add(*mons)
        learner.network.run(duration)
        final = read({o.name: o for o in learner.objects})
    spikes, state, out, *snapshots = mons
    n_w = len(attach_syn) + 1
    weight_mons, syn_mons = snapshots[:n_w], snapshots[n_w:]

    z = np.zeros((N + 2, sc.n_rec), dtype=np.int8)
    z[np.round(np.asarray(spikes.t / ms) / sc.dt).astype(int), np.asarray(spikes.i)] = 1
    ro = sc.readout
    ce = ro["loss"] == "cross_entropy"
    v_out = np.asarray(out.y / mV).T[:N] + ro["v_rest"]
    y = np.asarray(out.eprop_pi).T[:N] if ce else v_out
    traces = {"v": np.asarray(getattr(state, att.population_voltage) / mV).T[:N], "z": z[:N],
              "psi": np.asarray(state.eprop_psi * mV).T[:N],
              "learning_signal": np.asarray(state.eprop_L / (mV if ce else mV ** 2)).T[:N],
              "readout_v": v_out, "y": y, "target": sc.target.T[:N].copy(),
              "error": np.asarray(out.err if ce else out.err / mV).T[:N]}

    weights = {}
    keys = {"in": "w_in", "rec": "w_rec"}
    for (proj, syn), mon in zip(attach_syn.items(), weight_mons):
        i, j, w_final = final[learner.synapses[syn.name].name]
        rows = [np.asarray(getattr(mon, learner.weight))[:, k] for k in range(2, sc.n_sequences + 1)]
        rows.append(w_final)
        shape = (sc.n_rec, sc.n_in if proj == "in" else sc.n_rec)
        weights[keys[proj]] = np.stack([_dense(r / float(mV), i, j, shape) for r in rows])
    if "w_rec" not in weights:
        weights["w_rec"] = np.zeros((sc.n_sequences, sc.n_rec, sc.n_rec))
    i, j, w_final = final[learner.readout_synapses.name]
    rows = [np.asarray(weight_mons[-1].w_out)[:, k] for k in range(2, sc.n_sequences + 1)]
    rows.append(w_final)
    weights["w_out"] = np.stack([_dense(r / float(mV), i, j, (sc.n_out, sc.n_rec)) for r in rows])
    B = sc.w_fb if sc.network["feedback"] == "random" else sc.w_out.T
    weights["w_fb"] = (np.transpose(weights["w_out"], (0, 2, 1)).copy() if sc.network["feedback"] == "symmetric"
                       else np.repeat(B[None], sc.n_sequences, axis=0))
    syn_traces = {}
    if sc.record_synapses:
        q = len(sc.record_synapses)
        syn_traces = {k: np.zeros((N, q)) for k in ("zbar", "e", "ebar")}
        for col, ((proj, pre, post), mon) in enumerate(zip(sc.record_synapses, syn_mons)):
            if proj == "out":
                zb = np.asarray(mon.eprop_zbar)[0][:N]
                syn_traces["zbar"][:, col] = syn_traces["ebar"][:, col] = zb
                syn_traces["e"][:, col] = traces["error"][:, post] * zb
            else:
                syn_traces["zbar"][:, col] = np.asarray(getattr(mon, eps_name(att.population_voltage)))[0][:N]
                syn_traces["e"][:, col] = np.asarray(mon.eprop_e * mV)[0][:N]
                syn_traces["ebar"][:, col] = np.asarray(mon.eprop_ebar * mV)[0][:N]
    return Result(scenario=sc.name, family="original", backend=f"brian2-attach-{mode}",
                  losses=compute_losses(sc, traces["y"], traces["target"]), traces=traces,
                  synapse_traces=syn_traces, weights=weights,
                  meta={"compile_seconds": 0.0, "cached": mode != "standalone", "seconds": time.perf_counter() - t0})


def _dense(values, i, j, shape) -> np.ndarray:
    out = np.zeros(shape)
    out[j, i] = values
    return out
