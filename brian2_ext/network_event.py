"""Event-family e-prop (NEST ``eprop_iaf*`` / ``eprop_readout`` / ``eprop_synapse``) as one Brian2 network.

The schedule and the time shift (Brian2 step ``s`` = aligned step ``s - 1``) are described in
:mod:`brian2_ext.equations_event`.  A scenario is one run of ``n_steps + 2`` Brian2 steps: step 0 is
the neurons' last pre-roll step, and the last two steps integrate the final history steps of the
synapses.  Recurrent spikes are delivered to recurrent synapses only while they arrive before
aligned step ``n_steps`` and to readout synapses only while they are spikes of aligned steps
``< n_steps`` (custom events), as in the reference.

What is compiled in: as for the original family (:mod:`brian2_ext.network`), cpp_standalone compiles
the whole structure; in runtime mode sizes, step counts and connectivity are run-time values and the
four recurrent models are per-neuron masks, so one set of Cython modules serves many scenarios.
Sparse projections and the feedback of a sparse readout projection as in :mod:`brian2_ext.network`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from eprop_plugins.parameters import ADAPTIVE_MODELS, ParameterError, to_steps
from eprop_plugins.reference.common import readout_constants, recurrent_constants

from . import equations_event as eqe
from .equations import FEEDBACK_MODEL, feedback_apart
from .event_functions import functions
from .network_common import (BIG, PlasticNetwork, ProjectionSynapses, as_variable_arrays, grid_codeobject,
                             is_standalone, optimizer_values, sparse_counts, surrogate_flag_values, timed_array)

__all__ = ["event_structure_of", "EventNetwork"]

#: the ISI cutoff "none" as a 32-bit step count (runs are far shorter)
_NO_CUTOFF = 2**30


def event_structure_of(sc, *, record: bool = True, weight_trace: bool = True) -> eqe.EventStructure:
    """The code-relevant structure of a validated event-family scenario."""
    return eqe.EventStructure(
        n_in=sc.n_in, n_rec=sc.n_rec, n_out=sc.n_out, steps=sc.steps_per_sequence, sequences=sc.n_sequences,
        batch=sc.optimizer["batch_size"], optimizer=sc.optimizer["type"],
        each_step=bool(sc.optimizer["optimize_each_step"]),
        surrogates=tuple(sorted({p.params["surrogate_gradient_function"] for p in sc.populations})),
        symmetric_feedback=sc.network["feedback"] == "symmetric", record=record,
        weight_trace=bool(record and weight_trace), dt=sc.dt,
        adaptive=any(p.model in ADAPTIVE_MODELS for p in sc.populations), sparse=sparse_counts(sc))


class EventNetwork(PlasticNetwork):
    """The Brian2 objects of one event-family network.

    Parameters
    ----------
    st : EventStructure
    dt : float
        Resolution in ms.
    record_synapses : list of (str, int, int)
        Synapses whose traces are monitored.
    synapses : dict of ProjectionSynapses, optional
        The scenario's synapses (None: every projection dense, all-to-all).
    """

    def __init__(self, st: eqe.EventStructure, dt: float, record_synapses=(),
                 synapses: dict[str, ProjectionSynapses] | None = None):
        import brian2 as b2

        self.st = st
        self.dt = dt
        self.record_synapses = list(record_synapses)
        n_in, n_rec, n_out, T = st.n_in, st.n_rec, st.n_out, st.steps
        self.n_steps = N = st.sequences * T
        self.R = N + 2
        clock_dt = dt * b2.ms
        interval = T * clock_dt
        b2.defaultclock.dt = clock_dt
        fns = functions()
        # runtime mode: sizes and step counts as run-time values (one Cython module for many scenarios)
        rt = self.run_time_numbers = not is_standalone()
        self._use_synapses(synapses)
        syn = self.synapses

        self.x_in = timed_array(np.zeros((self.R, n_in)), clock_dt, "eprop_x_in", rt)
        self.target = timed_array(np.zeros((self.R, n_out)), clock_dt, "eprop_target", rt)
        self.lam = timed_array(np.zeros(self.R), clock_dt, "eprop_lam", rt)
        self.inp = b2.NeuronGroup(n_in, "", threshold="x_in(t, i) > 0.5", reset="", name="eprop_inputs",
                                  namespace={"x_in": self.x_in})
        # spikes computed in Brian2 step s are of aligned step s - 1
        n_end = "n_N" if rt else N
        self.rec = b2.NeuronGroup(n_rec, eqe.recurrent_model(st, rt),
                                  threshold=f"z > 0.5 and t_in_timesteps <= {n_end}",
                                  events={"hid": f"z > 0.5 and t_in_timesteps < {n_end}"}, reset="",
                                  name="eprop_recurrent")
        self.rec.run_regularly(eqe.recurrent_step(st, rt), when="groups", order=0, name="eprop_recurrent_step")
        self.out = b2.NeuronGroup(n_out, eqe.readout_model(st), name="eprop_readout",
                                  namespace={"target": self.target, "lam": self.lam})
        self.out.run_regularly(eqe.readout_step(), when="after_synapses", order=0, name="eprop_readout_step")
        objects: list[Any] = [self.inp, self.rec, self.out]

        hidden_model = eqe.hidden_synapse_model(st, rt)
        ns = dict(fns)
        # a projection without synapses (one recurrent neuron, or an empty connection list) has no Synapses
        self.s_in = self._synapses("in", self.inp, self.rec, hidden_model, 0, name="eprop_syn_in", namespace=ns,
                                   on_pre=eqe.arrive_code(st, True, "syn_post += w", rt))
        self.s_rec = self._synapses("rec", self.rec, self.rec, hidden_model, 1, name="eprop_syn_rec", namespace=ns,
                                    on_pre=eqe.arrive_code(st, True, "syn_post += w", rt), on_event="hid")
        self.s_out = self._synapses("out", self.rec, self.out, eqe.out_synapse_model(st, rt), 2, name="eprop_syn_out",
                                    namespace=ns, on_pre=eqe.arrive_code(st, False, "syn_out_post += w", rt))
        out = [("out", self.s_out)] if self.s_out is not None else []
        if self.s_out is not None:
            self._schedule_summed(self.s_out, order=1)
        self.s_fb = None
        if feedback_apart(st):  # all-to-all readout -> recurrent, pre-major: sums over readouts ascending
            self.s_fb = b2.Synapses(self.out, self.rec, FEEDBACK_MODEL, name="eprop_feedback")
            self.s_fb.connect(i=np.repeat(np.arange(n_out), n_rec), j=np.tile(np.arange(n_rec), n_out))
            self._schedule_summed(self.s_fb, order=1)
            objects.append(self.s_fb)
        if st.symmetric_feedback and self.s_out is not None:
            self.s_out.run_regularly("B = w", when="after_synapses", order=2, name="eprop_syn_out_feedback")
        hidden = [(name, s) for name, s in (("in", self.s_in), ("rec", self.s_rec)) if s is not None]
        for name, s in hidden:
            if st.record:
                s.run_regularly(eqe.snapshot_step(st, rt), when="after_synapses", order=2,
                                name=f"eprop_syn_{name}_snap")
            s.run_regularly(eqe.hidden_integrate(st, rt), when="after_synapses", order=5,
                            name=f"eprop_syn_{name}_trace",
                            codeobj_class=grid_codeobject(n_in if name == "in" else n_rec, n_rec, name == "rec",
                                                          not syn[name].sparse))
        for _, s in out:
            s.run_regularly(eqe.out_integrate(st, rt), when="after_synapses", order=5, name="eprop_syn_out_trace")
        objects += [s for _, s in hidden + out]

        self.monitors: dict[str, Any] = {}
        self.monitors["out"] = b2.StateMonitor(self.out, ["sig", "err"] if st.record else ["sig"], record=True,
                                               when="end", name="eprop_mon_out")
        if st.record:
            self.monitors["rec"] = b2.StateMonitor(self.rec, ["v", "z", "psi", "a", "thr", "L", "fr"], record=True,
                                                   when="end", name="eprop_mon_rec")
            for name, s in hidden:
                self.monitors[f"snap_{name}"] = b2.StateMonitor(s, "wsnap", record=True, dt=interval, when="end",
                                                                name=f"eprop_mon_snap_{name}")
            for _, s in out:
                self.monitors["snap_out"] = b2.StateMonitor(s, ["w", "B"] if self.s_fb is None else ["w"],
                                                            record=True, dt=interval, when="after_synapses", order=4,
                                                            name="eprop_mon_snap_out")
            if st.weight_trace:
                for name, s in hidden + out:
                    self.monitors[f"w_{name}"] = b2.StateMonitor(s, "w", record=True, when="after_synapses", order=4,
                                                                 name=f"eprop_mon_w_{name}")
            for proj, s in hidden + out:
                idx = [self.synapse_index(p, pre, post) for p, pre, post in self.record_synapses if p == proj]
                if idx:
                    variables = ["zbar", "elig", "dec"] + (["ebar", "ebar_reg"] if proj != "out" else [])
                    self.monitors[f"syn_{proj}"] = b2.StateMonitor(s, variables, record=idx, when="end",
                                                                   name=f"eprop_mon_syn_{proj}")
        objects += list(self.monitors.values())
        self.net = b2.Network(*objects, name="eprop_network")
        if rt:
            self._set_numbers([(self.rec, eqe.NUMBERS["recurrent"]), (self.s_in, eqe.NUMBERS["hidden_synapse"]),
                               (self.s_rec, eqe.NUMBERS["hidden_synapse"]), (self.s_out, eqe.NUMBERS["out_synapse"])],
                              st.dt)

    # ---------------------------------------------------------------- values
    def constant_values(self, sc) -> dict[Any, np.ndarray]:
        """Per-neuron parameters and pre-rolled initial states of a validated scenario."""
        c = recurrent_constants(sc)
        ro, opt = sc.readout, sc.optimizer
        rec, out = self.rec, self.out
        v_min = np.maximum(c.v_min, -BIG)
        if np.any(np.maximum(0.0, c.v_min) >= c.v_th):
            raise ParameterError("populations: v_min >= v_thresh makes a neuron fire before any input; "
                                 "allowed range is v_min < v_thresh")
        kappa_out, p_i_out, i_e_out = readout_constants(ro, sc.dt)
        v_min_out = -BIG if ro["v_min"] is None else ro["v_min"] - ro["v_rest"]
        cutoff_out = _NO_CUTOFF if ro["isi_trace_cutoff"] is None else \
            min(to_steps(ro["isi_trace_cutoff"], sc.dt, "readout.isi_trace_cutoff", allow_zero=False), _NO_CUTOFF)
        y0 = 0.0
        for _ in range(2):  # two of the readout's three pre-roll steps (Brian2 step 0 is the third)
            y0 = max(0.0 + kappa_out * y0, v_min_out)
        v = {
            rec.alpha: c.alpha, rec.p_i: c.p_i, rec.i_e: c.i_e, rec.v_th: c.v_th, rec.v_min: v_min,
            rec.v_max: BIG, rec.v_reset: c.v_reset, rec.n_ref: c.n_ref, rec.rho: c.rho, rec.beta: c.beta,
            rec.psc: c.psc_delta.astype(int), rec.adaptive: c.adaptive.astype(int), rec.h: c.h, rec.sg_w: c.w,
            rec.c_reg: c.c_reg, rec.f_target: c.f_target, rec.kappa: c.kappa, rec.kappa_reg: c.kappa_reg,
            rec.one_m_kappa_reg: 1.0 - c.kappa_reg, rec.cutoff: np.minimum(c.cutoff, _NO_CUTOFF),
            # one of the two pre-roll steps (Brian2 step 0 is the other); thr starts at v_th
            rec.v: np.maximum(0.0, v_min), rec.thr: c.v_th,
            out.kappa_out: kappa_out, out.p_i_out: p_i_out, out.i_e_out: i_e_out, out.v_rest_out: ro["v_rest"],
            out.v_min_out: v_min_out, out.v_max_out: BIG, out.cutoff: cutoff_out, out.y: y0,
        }
        v.update(surrogate_flag_values(rec, self.st.surrogates, c))
        v.update(optimizer_values((rec, out), opt))
        return as_variable_arrays(v)

    def run_values(self, sc, weights: dict[str, np.ndarray]) -> dict[Any, np.ndarray]:
        """Initial weights and optimizer state, input raster, target and learning-window signal (Brian2 rows)."""
        st, N = self.st, self.n_steps
        x = np.zeros((self.R, st.n_in))
        for i, train in enumerate(sc.input_spikes):
            x[np.asarray(train, dtype=np.int64), i] = 1.0
        tgt = np.zeros((self.R, st.n_out))
        tgt[1 : N + 1] = sc.target[:, :N].T
        lam = np.zeros(self.R)
        lam[1 : N + 1] = 1.0 if sc.learning_window_signal is None else np.asarray(sc.learning_window_signal, float)[:N]
        vals: dict[Any, np.ndarray] = {self.x_in: x, self.target: tgt, self.lam: lam}
        for proj, s in (("in", self.s_in), ("rec", self.s_rec), ("out", self.s_out)):
            if s is not None:
                vals[s.w] = self.flat(proj, weights[proj])
                vals[s.ostep] = np.ones(len(s), dtype=np.int32)
                if st.optimizer == "adam":
                    vals[s.b1p] = np.ones(len(s))
                    vals[s.b2p] = np.ones(len(s))
        vals.update(self.feedback_values(weights["fb"]))
        return vals
