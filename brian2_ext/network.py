"""Original-family e-prop as one Brian2 network, run one iteration at a time.

:class:`EpropNetwork` creates the Brian2 objects for a :class:`~brian2_ext.equations.Structure`
(sizes, interval, loss, optimizer: everything the generated code depends on).  Values (parameters,
weights, optimizer state, inputs, targets) are set per iteration: assigned directly in runtime mode,
passed as ``run_args`` in cpp_standalone, so one compiled binary serves every iteration and every
scenario of the same structure.

One iteration = one run of ``batch * T + 1`` steps that starts from a fresh state (t = 0): the
optimizer of the iteration's last interval runs in the interval block at step ``batch * T``, the
extra step; whatever else that step computes is discarded.
"""

from __future__ import annotations

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

__all__ = ["structure_of", "EpropNetwork", "BIG"]

#: stands in for "no bound" in clip(); keeps every array finite
BIG = float(np.finfo(float).max)


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
    )


def _shared_zbar(sc) -> bool:
    """True when every recurrent neuron has the same alpha and zeta (then z-bar is per presynaptic neuron)."""
    c = recurrent_constants(sc)
    return bool(np.all(c.alpha == c.alpha[0]) and np.all(c.zeta == c.zeta[0]))


def _grid_class(n_pre: int, n_post: int, no_diagonal: bool):
    """cpp_standalone: the grid-loop code object of the per-step synapse traces (None: Brian2's default).

    The per-step eligibility-trace pass is most of the run time; over the (pre, post) grid its
    inner loop reads contiguous memory and vectorises, with bit-identical results (:mod:`.grid_loops`).
    """
    from brian2.devices.cpp_standalone.device import CPPStandaloneDevice
    from brian2.devices.device import get_device

    if not isinstance(get_device(), CPPStandaloneDevice):
        return None
    from .grid_loops import grid_codeobject_class

    return grid_codeobject_class(n_pre, n_post, no_diagonal)


def structure_hash(st: eq.Structure, dt: float, extra: str = "") -> str:
    """Hash of the structure and of the code that generates the model (cache key of a build)."""
    import brian2

    h = hashlib.sha256()
    h.update(json.dumps(asdict(st), sort_keys=True).encode())
    h.update(repr(dt).encode())
    h.update(brian2.__version__.encode())
    h.update(cpu_tag().encode())  # standalone binaries are built with -march=native
    mods = ("equations.py", "network.py", "config.py", "grid_loops.py")
    if not isinstance(st, eq.Structure):  # event family
        mods += ("equations_event.py", "network_event.py", "event_functions.py")
    for mod in mods:
        h.update((Path(__file__).parent / mod).read_bytes())
    h.update(extra.encode())
    return h.hexdigest()[:16]


class EpropNetwork:
    """The Brian2 objects of one e-prop network and the per-iteration protocol.

    Parameters
    ----------
    st : Structure
    dt : float
        Resolution in ms.
    record_synapses : list of (str, int, int)
        Synapses whose traces are monitored (part of the structure: it changes the code).
    """

    def __init__(self, st: eq.Structure, dt: float, record_synapses: list[tuple[str, int, int]] = ()):
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

        # ------------------------------------------------------------ inputs and target (TimedArrays)
        # arrival raster of the whole run (+2 rows: the lookahead of the NEST-quirk factor)
        self.x_in = b2.TimedArray(np.zeros((self.R + 2, n_in)), dt=clock_dt, name="eprop_x_in")
        self.target = b2.TimedArray(np.zeros((self.R, n_out)), dt=clock_dt, name="eprop_target")
        # emits at step m the spikes that arrive at the recurrent neurons at step m + 1
        self.inp = b2.NeuronGroup(n_in, eq.input_model(st), threshold="x_in(t + dt, i) > 0.5", reset="",
                                  name="eprop_inputs", namespace={"x_in": self.x_in})
        self.inp.run_regularly(eq.input_step(st), when="groups", order=-1, name="eprop_inputs_step")
        if st.shared_zbar:
            self.inp.run_regularly("ztr = 0.0", dt=interval, when="start", order=0, name="eprop_inputs_interval")

        # ------------------------------------------------------------ recurrent neurons
        self.rec = b2.NeuronGroup(n_rec, eq.recurrent_model(st), threshold="z > 0.5", reset="",
                                  name="eprop_recurrent")
        self.rec.run_regularly(eq.recurrent_interval(st, dt), dt=interval, when="start", order=0,
                               name="eprop_recurrent_interval")
        self.rec.run_regularly(eq.recurrent_step(st), when="groups", order=0, name="eprop_recurrent_step")

        # ------------------------------------------------------------ readouts
        self.out = b2.NeuronGroup(n_out, eq.readout_model(st), name="eprop_readout",
                                  namespace={"target": self.target})
        self.out.run_regularly(eq.readout_interval(st), dt=interval, when="start", order=0,
                               name="eprop_readout_interval")
        self.out.run_regularly(eq.readout_step(st), when="after_synapses", order=0, name="eprop_readout_step")
        self.out.run_regularly(eq.readout_signal(st), when="after_synapses", order=2, name="eprop_readout_signal")
        objects: list[Any] = [self.inp, self.rec, self.out]
        if st.loss == "cross_entropy":
            # softmax normaliser: sum of the other readouts' u (ascending index), then + own u
            self.norm = b2.Synapses(self.out, self.out, "usum_post = u_pre : 1 (summed)", name="eprop_softmax")
            pairs = [(q, k) for q in range(n_out) for k in range(n_out) if q != k]
            self.norm.connect(i=np.array([p[0] for p in pairs]), j=np.array([p[1] for p in pairs]))
            self._schedule_summed(self.norm, order=1)
            objects.append(self.norm)

        # ------------------------------------------------------------ plastic synapses
        hidden_model = eq.hidden_synapse_model(st)
        self.s_in = b2.Synapses(self.inp, self.rec, hidden_model, on_pre="syn_post += w", name="eprop_syn_in")
        self.in_pre, self.in_post = np.repeat(np.arange(n_in), n_rec), np.tile(np.arange(n_rec), n_in)
        self.s_in.connect(i=self.in_pre, j=self.in_post)
        pre, post = np.repeat(np.arange(n_rec), n_rec), np.tile(np.arange(n_rec), n_rec)
        keep = pre != post
        self.rec_pre, self.rec_post = pre[keep], post[keep]
        self.s_rec = None  # a single neuron has no recurrent synapses (no autapses)
        if self.rec_pre.size:
            self.s_rec = b2.Synapses(self.rec, self.rec, hidden_model, on_pre="syn_post += w", name="eprop_syn_rec")
            self.s_rec.connect(i=self.rec_pre, j=self.rec_post)
        self.s_out = b2.Synapses(self.rec, self.out, eq.out_synapse_model(st), on_pre="syn_out_post += w",
                                 name="eprop_syn_out")
        self.out_pre, self.out_post = np.repeat(np.arange(n_rec), n_out), np.tile(np.arange(n_out), n_rec)
        self.s_out.connect(i=self.out_pre, j=self.out_post)
        # inputs before recurrent spikes: the reference sums arrivals in [inputs, recurrent] order
        self.s_in.pre.order, self.s_out.pre.order = 0, 2
        if self.s_rec is not None:
            self.s_rec.pre.order = 1
        self._schedule_summed(self.s_out, order=3)

        for s, name in ((self.s_in, "in"), (self.s_rec, "rec")):
            if s is None:
                continue
            s.run_regularly(eq.eligibility_step(st, inputs=name == "in"), when="after_synapses", order=5,
                            name=f"eprop_syn_{name}_trace",
                            codeobj_class=_grid_class(n_in if name == "in" else n_rec, n_rec, name == "rec"))
            s.run_regularly(eq.optimizer_block(st, "grad + fr_post*sum_e", eq.hidden_reset(st)), dt=interval,
                            when="start", order=1, name=f"eprop_syn_{name}_update")
        self.s_out.run_regularly(eq.out_trace_step(), when="after_synapses", order=4, name="eprop_syn_out_trace")
        out_reset = eq.OUT_RESET + ("B = w\n" if st.symmetric_feedback else "")
        self.s_out.run_regularly(eq.optimizer_block(st, "grad", out_reset), dt=interval, when="start", order=1,
                                 name="eprop_syn_out_update")
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
                    variables = ["w", "B"] if proj == "out" else ["w"]
                    self.monitors[f"w_{proj}"] = b2.StateMonitor(s, variables, record=True, dt=interval,
                                                                 when="end", name=f"eprop_mon_w_{proj}")
        for proj, s in (("in", self.s_in), ("rec", self.s_rec), ("out", self.s_out)):
            idx = [self.synapse_index(p, pre, post) for p, pre, post in self.record_synapses if p == proj]
            if idx and st.record:
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

    # ---------------------------------------------------------------- helpers
    @staticmethod
    def _schedule_summed(syn, order: int) -> None:
        # the sums need this step's readout values: run them after the readout update
        for updater in syn.summed_updaters.values():
            updater.when = "after_synapses"
            updater.order = order

    def synapse_index(self, proj: str, pre: int, post: int) -> int:
        """Index of one synapse in its Synapses object (creation order: pre-major)."""
        if proj == "in":
            return pre * self.st.n_rec + post
        if proj == "rec":
            return pre * (self.st.n_rec - 1) + (post if post < pre else post - 1)
        return pre * self.st.n_out + post

    def dense(self, proj: str, values: np.ndarray) -> np.ndarray:
        """Synaptic values as a ``[post, pre]`` matrix."""
        n = {"in": (self.st.n_rec, self.st.n_in), "rec": (self.st.n_rec, self.st.n_rec),
             "out": (self.st.n_out, self.st.n_rec)}[proj]
        pre, post = {"in": (self.in_pre, self.in_post), "rec": (self.rec_pre, self.rec_post),
                     "out": (self.out_pre, self.out_post)}[proj]
        mat = np.zeros(n)
        mat[post, pre] = values
        return mat

    def flat(self, proj: str, matrix: np.ndarray) -> np.ndarray:
        """A ``[post, pre]`` matrix in synapse order."""
        pre, post = {"in": (self.in_pre, self.in_post), "rec": (self.rec_pre, self.rec_post),
                     "out": (self.out_pre, self.out_post)}[proj]
        return np.ascontiguousarray(np.asarray(matrix, dtype=float)[post, pre])

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
        if len(self.st.surrogates) > 1:
            for name in self.st.surrogates:
                flags = np.zeros(sc.n_rec)
                for fname, idx in c.surrogate_groups:
                    if fname == name:
                        flags[idx] = 1.0
                v[getattr(rec, f"sg_{name}")] = flags
        for group in (rec, out):
            for name, key in (("eta", "eta"), ("beta_1", "beta_1"), ("beta_2", "beta_2"), ("epsilon", "epsilon"),
                              ("w_min", "w_min"), ("w_max", "w_max")):
                v[getattr(group, name)] = opt[key]
        return {k: np.broadcast_to(np.asarray(val, dtype=k.variable.dtype), (k.variable.size,)).copy()
                for k, val in v.items()}

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
        vals[self.s_out.B] = self.flat("out", weights["fb"].T)
        return vals
