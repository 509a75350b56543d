"""Original-family e-prop as one Brian2 network, and the cache key of its compiled code.

:class:`EpropNetwork` creates the Brian2 objects for a :class:`~brian2_ext.equations.Structure`.
Values (parameters, weights, optimizer state, inputs, targets) are set before the run: assigned
directly in runtime mode, passed as ``run_args`` in cpp_standalone.  A scenario is one run of
``n_sequences * T + 1`` steps from a fresh state (t = 0): the optimizer of the last interval runs in
the interval block at step ``n_sequences * T``, the extra step; whatever else that step computes is
discarded.

Connectivity: each plastic projection is a dense matrix (all pairs, the recurrent one without
autapses) or a sparse connection list (:mod:`eprop_plugins.connectivity`): Brian2 creates exactly the
listed synapses (:class:`~brian2_ext.network_common.ProjectionSynapses`), so an unconnected pair has
no synapse, no weight, no weight event.  With a sparse readout projection the feedback B (always
dense) is a projection of its own (:func:`~brian2_ext.equations.feedback_apart`).

What is compiled in: cpp_standalone compiles the whole structure (sizes, run length, flags, the
number of synapses of a sparse projection, but not which pairs they connect), so one binary serves
every scenario of the same structure.  In runtime mode sizes and step counts are
run-time values (:mod:`brian2_ext.network_common`): Brian2's Cython cache is keyed by the code text,
so the compiled modules also serve scenarios that differ only in those numbers or in their
connectivity (:func:`runtime_structure_hash` is the key of that code).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from eprop_plugins.parameters import ADAPTIVE_MODELS
from eprop_plugins.reference.common import recurrent_constants

from . import equations as eq
from .config import cpu_tag
from .network_common import (BIG, PlasticNetwork, ProjectionSynapses, as_variable_arrays, grid_codeobject,
                             is_standalone, optimizer_values, sparse_counts, surrogate_flag_values, timed_array)

__all__ = ["structure_of", "structure_hash", "runtime_structure", "runtime_structure_hash", "EpropNetwork", "BIG"]


def structure_of(sc, *, record: bool = True) -> eq.Structure:
    """The code-relevant structure of a validated original-family scenario."""
    surrogates = tuple(sorted({p.params["surrogate_gradient_function"] for p in sc.populations}))
    return eq.Structure(
        n_in=sc.n_in,
        n_rec=sc.n_rec,
        n_out=sc.n_out,
        steps=sc.steps_per_sequence,
        window=sc.learning_window_steps(),
        batch=sc.optimizer["batch_size"],
        loss=sc.readout["loss"],
        optimizer=sc.optimizer["type"],
        average_gradient=bool(sc.synapse["average_gradient"]),
        surrogates=surrogates,
        symmetric_feedback=sc.network["feedback"] == "symmetric",
        record=record,
        adaptive=any(p.model in ADAPTIVE_MODELS for p in sc.populations),
        sequences=sc.n_sequences,
        shared_zbar=_shared_zbar(sc),
        sparse=sparse_counts(sc),
    )


def _shared_zbar(sc) -> bool:
    """True when every recurrent neuron has the same alpha and zeta (then z-bar is per presynaptic neuron)."""
    c = recurrent_constants(sc)
    return bool(np.all(c.alpha == c.alpha[0]) and np.all(c.zeta == c.zeta[0]))


def structure_hash(st: eq.Structure, dt: float, extra: str = "") -> str:
    """Hash of the structure and of the code that generates the model (cache key of a build)."""
    import brian2

    h = hashlib.sha256()
    h.update(json.dumps(asdict(st), sort_keys=True).encode())
    h.update(repr(dt).encode())
    h.update(brian2.__version__.encode())
    h.update(cpu_tag().encode())  # standalone binaries are built with -march=native
    mods = ("equations.py", "network.py", "network_common.py", "config.py", "grid_loops.py")
    if not isinstance(st, eq.Structure):  # event family
        mods += ("equations_event.py", "network_event.py", "event_functions.py")
    for mod in mods:
        h.update((Path(__file__).parent / mod).read_bytes())
    h.update(extra.encode())
    return h.hexdigest()[:16]


def runtime_structure(st):
    """A structure (either family) as runtime-mode code sees it: the run-time numbers zeroed.

    In runtime mode sizes, step counts, the batch size and the learning window are run-time values
    (:mod:`brian2_ext.network_common`) and the gradient is always divided (by 1.0 when not averaged);
    what remains is which projections have synapses (recurrent: more than one neuron and, if
    sparse, some listed) and whether the feedback is a projection of its own.  Which pairs are
    connected, and how many, is run-time data (Brian2 creates synapses from arrays without
    generated code of their size), and runtime mode has no grid loops.  Networks of equal runtime
    structures generate the same Cython code.
    """
    fields: dict[str, Any] = {f: 0 for f in ("n_in", "n_out", "steps", "sequences", "batch", "window")
                              if hasattr(st, f)}
    no_rec = st.n_rec < 2 or ("rec", 0) in st.sparse
    fields["n_rec"] = 1 if no_rec else 2  # no recurrent synapses, or some
    # what changes the code: input or readout projections without synapses, feedback synapses of their own
    code = [(name, 0) for name in ("in", "out") if (name, 0) in st.sparse]
    fields["sparse"] = tuple(code + ([("feedback", 1)] if eq.feedback_apart(st) else []))
    if hasattr(st, "average_gradient"):
        fields["average_gradient"] = False
    return dataclasses.replace(st, **fields)


def runtime_structure_hash(st, dt: float, record_synapses=(), extra: str = "") -> str:
    """Key of the Cython code of a runtime-mode network: equal keys, the same compiled modules.

    Which projections have monitored synapses changes the code; which synapses and how many do not.
    """
    projections = sorted({proj for proj, _, _ in record_synapses})
    return structure_hash(runtime_structure(st), dt, repr(projections) + extra)


class EpropNetwork(PlasticNetwork):
    """The Brian2 objects of one original-family e-prop network.

    Parameters
    ----------
    st : Structure
    dt : float
        Resolution in ms.
    record_synapses : list of (str, int, int)
        Synapses whose traces are monitored (part of the structure: it changes the code).
    synapses : dict of ProjectionSynapses, optional
        The scenario's synapses (:func:`~brian2_ext.network_common.network_synapses`; None: every
        projection dense, all-to-all).
    """

    def __init__(self, st: eq.Structure, dt: float, record_synapses: list[tuple[str, int, int]] = (),
                 synapses: dict[str, ProjectionSynapses] | None = None):
        import brian2 as b2

        self.st = st
        self.dt = dt
        self.record_synapses = list(record_synapses)
        n_in, n_rec, n_out, T = st.n_in, st.n_rec, st.n_out, st.steps
        self.n_steps = st.sequences * T
        self.R = self.n_steps + 1
        ms = b2.ms
        clock_dt = dt * ms
        interval = T * dt * ms
        b2.defaultclock.dt = clock_dt
        # runtime mode: sizes and step counts as run-time values (one Cython module for many scenarios)
        rt = self.run_time_numbers = not is_standalone()
        self._use_synapses(synapses)
        syn = self.synapses

        # ------------------------------------------------------------ inputs and target (TimedArrays)
        # arrival raster of the whole run (+2 rows: the lookahead of the NEST-quirk factor)
        self.x_in = timed_array(np.zeros((self.R + 2, n_in)), clock_dt, "eprop_x_in", rt)
        self.target = timed_array(np.zeros((self.R, n_out)), clock_dt, "eprop_target", rt)
        # emits at step m the spikes that arrive at the recurrent neurons at step m + 1
        self.inp = b2.NeuronGroup(n_in, eq.input_model(st, rt), threshold="x_in(t + dt, i) > 0.5", reset="",
                                  name="eprop_inputs", namespace={"x_in": self.x_in})
        self.inp.run_regularly(eq.input_step(st, rt), when="groups", order=-1, name="eprop_inputs_step")
        if st.shared_zbar:
            self.inp.run_regularly("ztr = 0.0", dt=interval, when="start", order=0, name="eprop_inputs_interval")

        # ------------------------------------------------------------ recurrent neurons
        self.rec = b2.NeuronGroup(n_rec, eq.recurrent_model(st, rt), threshold="z > 0.5", reset="",
                                  name="eprop_recurrent")
        self.rec.run_regularly(eq.recurrent_interval(st, dt, rt), dt=interval, when="start", order=0,
                               name="eprop_recurrent_interval")
        self.rec.run_regularly(eq.recurrent_step(st), when="groups", order=0, name="eprop_recurrent_step")

        # ------------------------------------------------------------ readouts
        self.out = b2.NeuronGroup(n_out, eq.readout_model(st, rt), name="eprop_readout",
                                  namespace={"target": self.target})
        self.out.run_regularly(eq.readout_interval(st, rt), dt=interval, when="start", order=0,
                               name="eprop_readout_interval")
        self.out.run_regularly(eq.readout_step(st), when="after_synapses", order=0, name="eprop_readout_step")
        self.out.run_regularly(eq.readout_signal(st, rt), when="after_synapses", order=2, name="eprop_readout_signal")
        objects: list[Any] = [self.inp, self.rec, self.out]
        if st.loss == "cross_entropy":
            # softmax normaliser: sum of the other readouts' u (ascending index), then + own u
            self.norm = b2.Synapses(self.out, self.out, "usum_post = u_pre : 1 (summed)", name="eprop_softmax")
            pairs = [(q, k) for q in range(n_out) for k in range(n_out) if q != k]
            self.norm.connect(i=np.array([p[0] for p in pairs]), j=np.array([p[1] for p in pairs]))
            self._schedule_summed(self.norm, order=1)
            objects.append(self.norm)

        # ------------------------------------------------------------ plastic synapses
        # a projection without synapses (one recurrent neuron, or an empty connection list) has no Synapses
        hidden_model = eq.hidden_synapse_model(st, rt)
        # inputs before recurrent spikes: the reference sums arrivals in [inputs, recurrent] order
        self.s_in = self._synapses("in", self.inp, self.rec, hidden_model, 0, on_pre="syn_post += w",
                                   name="eprop_syn_in")
        self.s_rec = self._synapses("rec", self.rec, self.rec, hidden_model, 1, on_pre="syn_post += w",
                                    name="eprop_syn_rec")
        self.s_out = self._synapses("out", self.rec, self.out, eq.out_synapse_model(st, rt), 2,
                                    on_pre="syn_out_post += w", name="eprop_syn_out")
        if self.s_out is not None:
            self._schedule_summed(self.s_out, order=3)
        self.s_fb = None
        if eq.feedback_apart(st):  # all-to-all readout -> recurrent, pre-major: sums over readouts ascending
            self.s_fb = b2.Synapses(self.out, self.rec, eq.FEEDBACK_MODEL, name="eprop_feedback")
            self.s_fb.connect(i=np.repeat(np.arange(n_out), n_rec), j=np.tile(np.arange(n_rec), n_out))
            self._schedule_summed(self.s_fb, order=3)
            objects.append(self.s_fb)

        for s, name in ((self.s_in, "in"), (self.s_rec, "rec")):
            if s is None:
                continue
            s.run_regularly(eq.eligibility_step(st, inputs=name == "in"), when="after_synapses", order=5,
                            name=f"eprop_syn_{name}_trace",
                            codeobj_class=grid_codeobject(n_in if name == "in" else n_rec, n_rec, name == "rec",
                                                          not syn[name].sparse))
            s.run_regularly(eq.optimizer_block(st, "grad + fr_post*sum_e", eq.hidden_reset(st), rt), dt=interval,
                            when="start", order=1, name=f"eprop_syn_{name}_update")
        if self.s_out is not None:
            self.s_out.run_regularly(eq.out_trace_step(), when="after_synapses", order=4, name="eprop_syn_out_trace")
            out_reset = eq.OUT_RESET + ("B = w\n" if st.symmetric_feedback else "")
            self.s_out.run_regularly(eq.optimizer_block(st, "grad", out_reset, rt), dt=interval, when="start",
                                     order=1, name="eprop_syn_out_update")
        objects += [s for s in (self.s_in, self.s_rec, self.s_out) if s is not None]

        # ------------------------------------------------------------ monitors
        self.monitors: dict[str, Any] = {}
        # loss accumulators at each iteration start, before the readout interval block restarts them
        # (row k + 1 = iteration k)
        self.monitors["loss"] = b2.StateMonitor(self.out, "lacc", record=True, dt=st.batch * interval,
                                                when="start", order=-1, name="eprop_mon_loss")
        if st.record:
            self.monitors["rec"] = b2.StateMonitor(self.rec, ["v", "z", "psi", "a", "thr", "L", "fr"], record=True,
                                                   when="end", name="eprop_mon_rec")
            self.monitors["out"] = b2.StateMonitor(self.out, ["y", "sig", "err"], record=True, when="end",
                                                   name="eprop_mon_out")
            # weights at every interval start after the optimizer (row s + 1 = end of sequence s)
            for proj, s in (("in", self.s_in), ("rec", self.s_rec), ("out", self.s_out)):
                if s is not None:
                    variables = ["w", "B"] if proj == "out" and self.s_fb is None else ["w"]
                    self.monitors[f"w_{proj}"] = b2.StateMonitor(s, variables, record=True, dt=interval,
                                                                 when="end", name=f"eprop_mon_w_{proj}")
        for proj, s in (("in", self.s_in), ("rec", self.s_rec), ("out", self.s_out)):
            idx = [self.synapse_index(p, pre, post) for p, pre, post in self.record_synapses if p == proj]
            if idx and st.record:  # (recorded synapses exist)
                shared = st.shared_zbar and proj != "out"
                variables = ["zbar"] if proj == "out" else (["elig", "ebar"] if shared else ["zbar", "elig", "ebar"])
                self.monitors[f"syn_{proj}"] = b2.StateMonitor(s, variables, record=idx, when="end",
                                                               name=f"eprop_mon_syn_{proj}")
                if shared:  # z-bar lives in the presynaptic group
                    pres = sorted({pre for p, pre, _ in self.record_synapses if p == proj})
                    group = self.inp if proj == "in" else self.rec
                    self.monitors[f"ztr_{proj}"] = b2.StateMonitor(group, "ztr", record=pres, when="end",
                                                                   name=f"eprop_mon_ztr_{proj}")
        objects += list(self.monitors.values())
        self.net = b2.Network(*objects, name="eprop_network")
        if rt:
            self._set_numbers([(self.inp, eq.NUMBERS["input"]), (self.rec, eq.NUMBERS["recurrent"]),
                               (self.out, eq.NUMBERS["readout"])]
                              + [(s, eq.NUMBERS["synapse"]) for s in (self.s_in, self.s_rec, self.s_out)], dt)

    # ---------------------------------------------------------------- values
    def constant_values(self, sc) -> dict[Any, np.ndarray]:
        """Per-neuron parameters of a validated scenario, keyed by Brian2 variable views."""
        c = recurrent_constants(sc)
        ro, opt = sc.readout, sc.optimizer
        dt = sc.dt
        tau_kappa = sc.synapse["tau_m_readout"] or ro["tau_m"]
        kappa_out = np.exp(-dt / ro["tau_m"])
        rec, out = self.rec, self.out
        v = {
            rec.alpha: c.alpha, rec.p_i: c.p_i, rec.i_e: c.i_e, rec.zeta: c.zeta, rec.v_th: c.v_th,
            rec.v_min: np.maximum(c.v_min, -BIG), rec.v_max: np.full(sc.n_rec, BIG), rec.n_ref: c.n_ref,
            rec.rho: c.rho, rec.beta: c.beta, rec.h: c.h, rec.sg_w: c.w, rec.c_reg: c.c_reg,
            rec.f_target: c.f_target, rec.kappa: np.exp(-dt / tau_kappa), rec.one_m_kappa: 1.0 - np.exp(-dt / tau_kappa),
            out.kappa_out: kappa_out, out.p_i_out: ro["tau_m"] / ro["cm"] * (1.0 - kappa_out),
            out.i_e_out: ro["i_offset"], out.zeta_out: 1.0 if ro["regular_spike_arrival"] else 1.0 - kappa_out,
            out.v_rest_out: ro["v_rest"], out.v_min_out: -BIG if ro["v_min"] is None else ro["v_min"] - ro["v_rest"],
            out.v_max_out: BIG,
        }
        if self.st.shared_zbar:
            for group in (self.inp, rec):
                v[group.alpha_s], v[group.zeta_s] = c.alpha[0], c.zeta[0]
        v.update(surrogate_flag_values(rec, self.st.surrogates, c))
        v.update(optimizer_values((rec, out), opt))
        return as_variable_arrays(v)

    def run_values(self, sc, weights: dict[str, np.ndarray]) -> dict[Any, np.ndarray]:
        """Initial weights, the input raster and the target of the whole run."""
        st = self.st
        x = np.zeros((self.R + 2, st.n_in))
        for i, train in enumerate(sc.input_spikes):
            x[np.asarray(train, dtype=np.int64), i] = 1.0
        tgt = np.zeros((self.R, st.n_out))
        tgt[: self.n_steps] = sc.target[:, : self.n_steps].T
        vals: dict[Any, np.ndarray] = {self.x_in: x, self.target: tgt}
        for proj, s in (("in", self.s_in), ("rec", self.s_rec), ("out", self.s_out)):
            if s is not None:
                vals[s.w] = self.flat(proj, weights[proj])
                if st.optimizer == "adam":
                    vals[s.b1p] = np.ones(len(s))
                    vals[s.b2p] = np.ones(len(s))
        vals.update(self.feedback_values(weights["fb"]))
        return vals
