"""pyNN.brian2 translations of the e-prop types: brian2_ext's generated code inside PyNN's own network.

``import pyNN.brian2`` and ``import pynn_ext`` (either order) load this module (``pynn_ext.GLUE``);
then ``sim.Population``/``sim.Projection`` take the types of :mod:`pynn_ext.standardmodels`.

How the types become Brian2 objects
    PyNN creates every ``NeuronGroup`` (through the cell type's ``brian2_model``) and every
    ``Synapses`` (from the synapse type's ``eqs``/``pre`` strings) itself and adds them to
    ``pyNN.brian2.simulator.state.network``.  The model strings and code blocks are those of
    :mod:`brian2_ext.equations` (original family) and :mod:`brian2_ext.equations_event` (event family),
    in Brian2's runtime mode.  What depends on the whole
    network (update interval and learning window from the readout, optimizer constants from the
    synapse type, the e-bar filter from the readout's ``tau_m``, the interval blocks, the per-step
    trace code, the spike-arrival order, the target table) is added by a :class:`NetworkGlue` right
    before each ``sim.run()``: it is registered among PyNN's recorders, whose ``_finalize`` PyNN calls
    before every run.  No second network runs.  This module hooks pyNN.brian2's
    ``Population._create_cells``, ``Projection.__init__``, the projection getters and setter and the
    recorder's signal/spike getters; nothing changes for PyNN's own types.

Weights: ``Projection.get("weight")`` of plastic synapses returns NEST's convention, the weight of each
synapse's last transmitted spike (``w_sent``, kept by :func:`sent_weight_step`; docs/pynn.rst).

Time stamps: those a script sees on pyNN.nest (NEST 3.10's, :data:`FAMILY_STAMPS`), so that one script
gives one result on both: a ``SpikeSourceArray`` spike at ``(n + 2) dt`` arrives at aligned step ``n``;
``target`` (and the event family's ``learning_window_signal``) element ``j`` belongs to the readout
potential recorded at ``j dt``; the state of step ``n`` is recorded at ``(n + 3) dt`` (recurrent neurons,
spikes), ``(n + 4) dt`` (readout potential), ``(n + 5) dt`` (readout signal, target, error; event family
``(n + 4) dt``), ``(n + 6) dt`` (learning signal; event family ``(n + 5) dt``).  Internally Brian2 step
``n + TIME_SHIFT[family]`` is aligned step ``n``: the e-prop synapses of a ``SpikeSourceArray`` read a
copy of its spikes shifted ``SHADOW_SHIFT[family]`` steps earlier (:meth:`NetworkGlue.shadow`).

Limits of this translation: one surrogate-gradient function per population; one feedback projection per recurrent population (Brian2 sums a learning signal from one
``Synapses`` only); all e-prop projections onto one population share one optimizer; the feedback
weights are fixed (no ``symmetric`` feedback); with ``SpikeSourcePoisson`` inputs the NEST 3.10
quirk of the last learning-signal term of an interval (docs/model.rst §3) cannot be known in
advance and is not applied.
"""

from __future__ import annotations

import contextlib
import functools
import sys
from dataclasses import dataclass, replace
from typing import Any

import brian2 as b2
import numpy as np
from pyNN.brian2 import simulator
from pyNN.brian2.populations import Population
from pyNN.brian2.projections import Projection
from pyNN.brian2.recording import Recorder
from pyNN.standardmodels import build_translations

from brian2_ext import equations as eq
from brian2_ext import equations_event as eqe
from brian2_ext.config import configure
from brian2_ext.event_functions import functions as event_functions
from brian2_ext.network_common import BIG, run_time_numbers, timed_array
from eprop_plugins.backends.nest_wiring.event import OFFSETS as NEST_EVENT_OFFSETS
from eprop_plugins.backends.nest_wiring.original import OFFSETS as NEST_ORIGINAL_OFFSETS
from eprop_plugins.parameters import ADAPTIVE_MODELS, ParameterError, to_steps
from eprop_plugins.reference.common import readout_constants, recurrent_constants

from . import standardmodels as sm

__all__ = ["NetworkGlue", "RecurrentGroup", "ReadoutGroup", "glue", "install_cell", "install_synapse",
           "projection_kind", "RECURRENT_RECORDABLES", "READOUT_RECORDABLES"]

#: NEST 3.10's time stamps (in steps) of what belongs to the aligned step n, per family; pyNN.brian2
#: reproduces the stamps a PyNN script sees on pyNN.nest (one home: the NEST wiring)
FAMILY_STAMPS = {"original": NEST_ORIGINAL_OFFSETS, "event": NEST_EVENT_OFFSETS}
#: those of the original family (the name the original-family code and the backend read)
STAMPS = NEST_ORIGINAL_OFFSETS
#: a ``SpikeSourceArray`` spike at ``(n + INPUT_LAG) dt`` arrives at aligned step n (on pyNN.nest the
#: generator's spike passes PyNN's parrot neuron: one step more than the wiring's generator offset)
INPUT_LAG = STAMPS.generator + 1
#: Brian2 step s is aligned step ``s - TIME_SHIFT[family]`` (event family: step 0 is the last pre-roll step,
#: brian2_ext.equations_event)
TIME_SHIFT = {"original": 0, "event": 1}
#: Brian2 steps by which the e-prop synapses of a ``SpikeSourceArray`` read its spikes earlier: original family,
#: a spike of Brian2 step n - 1 arrives at step n; event family, it is transmitted in the step it arrives
SHADOW_SHIFT = {"original": INPUT_LAG + 1, "event": INPUT_LAG}


def recording_stamps(family: str) -> dict[str, dict[str, int]]:
    """Recording stamp of each recordable (steps after its aligned step) in ``family``."""
    st = FAMILY_STAMPS[family]
    return {
        "recurrent": {"spikes": st.recurrent, "v": st.recurrent, "psi": st.recurrent, "adaptation": st.recurrent,
                      "v_th_adapt": st.recurrent, "learning_signal": st.learning_signal},
        "readout": {"v": st.readout, "readout_signal": st.signal, "target": st.signal, "error": st.signal},
    }


#: recording stamps of the original family
RECORDING_STAMPS = recording_stamps("original")

#: the name of the clock of every pyNN.brian2 network (see ``_eprop_state_clear``)
CLOCK_NAME = "pynn_clock"

#: the ISI cutoff "none" as a 32-bit step count (runs are far shorter; as brian2_ext's event network)
NO_CUTOFF = 2**30

#: prefix of the native parameter names: the canonical values are kept on the group as ``par_<name>``
#: (some canonical names, e.g. ``c_reg``, are also Brian2 variables holding derived constants)
NATIVE_PREFIX = "par_"

#: Brian2 variable of each recurrent recordable (``*_abs``: relative value + v_rest)
RECURRENT_RECORDABLES = {"v": "v_abs", "psi": "psi", "learning_signal": "L", "adaptation": "a",
                         "v_th_adapt": "thr_abs"}
#: Brian2 variable of each readout recordable
READOUT_RECORDABLES = {"v": "y_abs", "readout_signal": "sig", "target": "target_value", "error": "err"}
#: those of the event family: readout and target signal times the learning-window signal, as NEST records them
EVENT_READOUT_RECORDABLES = {**READOUT_RECORDABLES, "readout_signal": "sig_window", "target": "target_window"}


def _structure(**fields: Any) -> eq.Structure:
    """A :class:`brian2_ext.equations.Structure` for runtime-mode code (run-time numbers)."""
    base = dict(n_in=0, n_rec=2, n_out=0, steps=1, window=1, batch=1, loss="mean_squared_error",
                optimizer="gradient_descent", average_gradient=False, surrogates=("piecewise_linear",),
                symmetric_feedback=False, record=True, adaptive=True, sequences=0, shared_zbar=False)
    base.update(fields)
    return eq.Structure(**base)


def _event_structure(**fields: Any) -> eqe.EventStructure:
    """A :class:`brian2_ext.equations_event.EventStructure` for runtime-mode code (run-time numbers)."""
    base = dict(n_in=0, n_rec=2, n_out=0, steps=1, sequences=0, batch=1, optimizer="gradient_descent",
                each_step=False, surrogates=("piecewise_linear",), symmetric_feedback=False, record=False,
                weight_trace=False, adaptive=True)
    base.update(fields)
    return eqe.EventStructure(**base)


class _NativeParameters:
    """Mixin of the Brian2 groups: PyNN's native parameters kept as NumPy arrays on the group."""

    def _store_parameters(self, native: dict[str, Any]) -> None:
        for name, value in native.items():
            self.add_attribute(name)
            setattr(self, name, np.array(value, copy=True))
        self.add_attribute("initial_values")
        self.initial_values = {}

    def native(self, name: str) -> np.ndarray:
        """The values of canonical parameter ``name``, one per neuron."""
        return np.broadcast_to(getattr(self, NATIVE_PREFIX + name), (self.N,))

    def initialize(self) -> None:
        """E-prop state starts at rest (v = v_rest, no spikes, zero traces); nothing to assign."""


class RecurrentGroup(_NativeParameters, b2.NeuronGroup):
    """The Brian2 group of a recurrent e-prop population (original family; brian2_ext's model)."""

    def __init__(self, n: int, equations: Any = None, *, celltype: sm.EpropRecurrentType, **native: Any) -> None:
        configure("cython")
        self.celltype = celltype
        surrogates = (celltype.options["surrogate_gradient_function"],)
        if celltype.family == "event":
            model = eqe.recurrent_model(_event_structure(surrogates=surrogates), rt=True)
        else:
            model = eq.recurrent_model(_structure(surrogates=surrogates), rt=True)
        model += """
        v_rest_abs : 1 (constant)
        v_abs = v + v_rest_abs : 1
        thr_abs = thr + v_rest_abs : 1
        """
        b2.NeuronGroup.__init__(self, n, model, threshold="z > 0.5", reset="",
                                clock=simulator.state.network.clock, name=glue().object_name("recurrent"))
        self._store_parameters(native)
        self.add_attribute("eprop_index")
        self.eprop_index = glue().next_index()


class ReadoutGroup(_NativeParameters, b2.NeuronGroup):
    """The Brian2 group of an e-prop readout population (original family; brian2_ext's model)."""

    def __init__(self, n: int, equations: Any = None, *, celltype: sm.EpropReadout, **native: Any) -> None:
        configure("cython")
        self.celltype = celltype
        if celltype.family == "event":
            # NEST records the event family's readout and target signals times the learning-window signal
            model = eqe.readout_model(_event_structure()) + """
        sig_window = sig*lam(t, i) : 1
        target_window = target(t, i)*lam(t, i) : 1
        """
        else:
            model = eq.readout_model(_structure(loss=celltype.options["loss"]), rt=True)
        model += """
        target_value = target(t, i) : 1
        y_abs = y + v_rest_out : 1
        """
        b2.NeuronGroup.__init__(self, n, model, clock=simulator.state.network.clock, namespace={},
                                name=glue().object_name("readout"))
        self._store_parameters(native)
        self.add_attribute("eprop_index")
        self.eprop_index = glue().next_index()


def _state_translations(recordables: dict[str, str]) -> dict:
    """PyNN state-variable translations: recordable -> Brian2 variable, values unchanged (mV, 1/mV, ...)."""
    return build_translations(*[(name, var, lambda **p: p[next(iter(p))], lambda **p: p[next(iter(p))])
                                for name, var in recordables.items()])


def install_cell(celltype: sm.EpropCellType) -> None:
    """Give an e-prop cell type what pyNN.brian2 reads: translations, ``brian2_model``, synaptic variable.

    Native parameters keep the canonical names and units; the Brian2 group derives the e-prop
    constants from them before each run (:class:`NetworkGlue`).
    """
    if getattr(celltype, "brian2_model", None) is not None:
        return
    ps = celltype.parameter_space
    celltype.translations = build_translations(*[(n, NATIVE_PREFIX + n) for n in celltype.default_parameters])
    celltype.eqs = None
    celltype.voltage_based_synapses = True
    if isinstance(celltype, sm.EpropReadout):
        celltype.post_synaptic_variables = {"default": "syn_out"}
        celltype.state_variable_translations = _state_translations(
            EVENT_READOUT_RECORDABLES if celltype.family == "event" else READOUT_RECORDABLES)
        celltype.brian2_model = functools.partial(ReadoutGroup, celltype=celltype)
        celltype.default_initial_values = {"v": ps["v_rest"].base_value, "readout_signal": 0.0, "target": 0.0,
                                           "error": 0.0}
        return
    celltype.post_synaptic_variables = {"default": "syn"}
    celltype.state_variable_translations = _state_translations(
        {k: v for k, v in RECURRENT_RECORDABLES.items() if k in celltype.recordable})
    celltype.brian2_model = functools.partial(RecurrentGroup, celltype=celltype)
    initial = {"v": ps["v_rest"].base_value, "psi": 0.0, "learning_signal": 0.0}
    if celltype.model in ADAPTIVE_MODELS:
        initial.update(adaptation=0.0, v_th_adapt=ps["v_thresh"].base_value)
    celltype.default_initial_values = initial


def _translated_weight(**p):
    return p["weight"]


def _translated_delay(**p):
    return p["delay"]


def install_synapse(syntype: sm.EpropSynapseType, family: str) -> None:
    """Give an e-prop synapse type pyNN.brian2's model strings (weight ``w`` in mV, delay bookkeeping ``d_syn``).

    The connection delay of one step is the schedule itself (spikes of step n reach their targets'
    update of step n + 1), so the Brian2 pathway has no delay; ``d_syn`` keeps PyNN's value (ms).
    One model serves input, recurrent and readout synapses: each projection runs the code it needs
    (event family: its ``on_pre`` code, :func:`event_arrival`, is set per projection).
    """
    if getattr(syntype, "eqs", None) is not None:
        return
    syntype.translations = build_translations(("weight", "w"), ("delay", "d_syn"))
    syntype._set_target_type = lambda weight_units: None  # weights are plain numbers (mV)
    syntype.initial_conditions = {}
    syntype.post = None
    if isinstance(syntype, sm.FeedbackSynapse):
        syntype.eqs = """
        w : 1                         # feedback weight B (dimensionless)
        d_syn : 1 (constant)          # PyNN's delay (ms)
        L_post = w*err_pre : 1 (summed)
        """
        syntype.pre = ""
        return
    if family == "event":
        syntype.eqs = eqe.hidden_synapse_model(_event_structure(optimizer=syntype.optimizer.type), rt=True) + """
        w_sent : 1            # the weight NEST holds at the same time: that of the last transmitted spike (mV)
        w_tx : 1              # the weight of a spike transmitted in this step (mV)
        w_prev : 1            # the weight of a spike transmitted in the previous step (mV)
        sent_now : integer    # a spike was transmitted in this step
        sent_prev : integer   # a spike was transmitted in the previous step
        d_syn : 1 (constant)  # PyNN's delay (ms)
        """
        syntype.pre = ""  # per projection
        return
    st = _structure(optimizer=syntype.optimizer.type)
    syntype.eqs = eq.hidden_synapse_model(st, rt=True) + """
        w_sent : 1            # the weight NEST holds at the same time: that of the last transmitted spike (mV)
        w_before : 1          # the weight before the last optimizer step (mV)
        sent_hist : integer   # arrivals of the last few steps, one bit per step (sent_weight_step)
        zarr : 1              # a spike of the presynaptic source arrives in this step (0/1)
        znew : 1              # the source spiked in this step (it arrives in the next)
        d_syn : 1 (constant)  # PyNN's delay (ms)
        """
    syntype.pre = "%(syn_var)s_post += w\nznew = 1.0"


# ---------------------------------------------------------------------------------------------- glue
@dataclass
class _Pop:
    """Duck-typed scenario population for :func:`recurrent_constants` (one neuron)."""

    model: str
    params: dict[str, Any]
    size: int = 1


@dataclass
class _Pops:
    dt: float
    populations: list


def _scalar(values, name: str, where: str) -> float:
    arr = np.asarray(values, dtype=float)
    if arr.size and np.any(arr != arr.flat[0]):
        raise ParameterError(f"{where}: {name} must be the same for every neuron on pyNN.brian2 (got {arr!r})")
    return float(arr.flat[0])


class NetworkGlue:
    """The e-prop blocks of one pyNN.brian2 network, added right before each ``sim.run()``.

    PyNN calls ``_finalize()`` of everything in ``simulator.state.recorders`` before it runs the
    network; the glue is registered there (:func:`glue`) and builds, on the first run, the interval
    blocks and per-step trace code of every e-prop group and projection; on every run it sets the
    parameters (they may have been changed with ``Population.set``) and the tables.
    """

    def __init__(self) -> None:
        self.network = simulator.state.network
        self.built = False
        self.added: list[Any] = []
        self._count = 0
        self._names: dict[str, int] = {}  # role -> objects named so far (object_name)
        self.family: str | None = None  # the network's e-prop family (pynn_ext.standardmodels.join_family)
        self.shadows: dict[str, tuple[Any, Any]] = {}  # SpikeSourceArray group name -> (shadow, group)
        self.initialized = False  # initial states assigned (event family: the pre-roll state)
        self.family_owner = ""

    @staticmethod
    def sync_default_clock() -> None:
        """pyNN.brian2 creates SpikeSourceArray/SpikeSourcePoisson groups on Brian2's default clock: give
        it PyNN's time step, so that their spikes are emitted in the steps of the e-prop groups."""
        b2.defaultclock.dt = simulator.state.network.clock.dt

    def next_index(self) -> int:
        """Creation index of the next e-prop Synapses object."""
        self._count += 1
        return self._count

    def object_name(self, role: str) -> str:
        """The Brian2 name of the next e-prop object of ``role`` in this network: ``eprop_<role><k>``, k counting from
        0 per role and network.

        Brian2's Cython code names every array after its object, and its cache keys modules by the code: names that
        depend only on the network's structure (not on how many Brian2 objects the process made before, as
        Brian2's automatic names do) let networks of the same structure share compiled modules.
        """
        k = self._names.get(role, 0)
        self._names[role] = k + 1
        return f"eprop_{role}{k}"

    # PyNN's recorder protocol
    def _finalize(self) -> None:
        if simulator.state.network is self.network:
            self.prepare()

    def store_to_cache(self, annotations=None) -> None:
        pass

    # -------------------------------------------------------------------------- structure
    def groups(self, cls) -> list:
        """The e-prop groups of class ``cls`` in creation order."""
        return sorted((o for o in self.network.objects if isinstance(o, cls)), key=lambda o: o.eprop_index)

    def synapses(self) -> list:
        return sorted((o for o in self.network.objects if isinstance(o, b2.Synapses)
                       and hasattr(o, "eprop_type")), key=lambda o: o.eprop_index)

    def prepare(self) -> None:
        """Check the network, build its e-prop blocks (first run) and assign its values."""
        dt = simulator.state.dt
        self.sync_default_clock()
        recs, outs = self.groups(RecurrentGroup), self.groups(ReadoutGroup)
        syns = self.synapses()
        if not recs and not outs:
            return
        if not outs:
            raise ParameterError("e-prop network: no EpropReadout population (the update interval, learning window "
                                 "and error come from the readout)")
        for shadow, source in self.shadows.values():
            self._shadow_spikes(shadow, source)
        for s in syns:
            if isinstance(s.source, b2.PoissonGroup) and hasattr(s.source, "firing_rate"):
                # PyNN 0.13 keeps SpikeSourcePoisson.set(rate=...) in an attribute the group's code never reads
                s.source.rates = s.source.firing_rate
        if self.family == "event":
            self._prepare_event(recs, outs, syns, dt)
            return
        ro = outs[0].celltype.options
        T = to_steps(ro["sequence"], dt, "EpropReadout.sequence", allow_zero=False)
        TL = T if ro["learning_window"] is None else to_steps(ro["learning_window"], dt,
                                                              "EpropReadout.learning_window", allow_zero=False)
        for o in outs[1:]:
            if (o.celltype.options["sequence"], o.celltype.options["learning_window"]) != \
                    (ro["sequence"], ro["learning_window"]):
                raise ParameterError("EpropReadout: every readout of a network needs the same sequence and "
                                     "learning_window")
        plastic = [s for s in syns if isinstance(s.eprop_type, sm.EpropSynapse)]
        batch = {s.eprop_type.optimizer.complete("original")["batch_size"] for s in plastic} or {1}
        average = {bool(s.eprop_type.synapse_parameters("original")["average_gradient"]) for s in plastic} or {False}
        if len(batch) > 1 or len(average) > 1:
            raise ParameterError("EpropSynapse: batch_size and average_gradient must be the same for every "
                                 "projection of a network (one update interval per network)")
        st = _structure(steps=T, window=TL, batch=batch.pop(), average_gradient=average.pop())
        numbers = run_time_numbers(st, dt)
        if not self.built:
            self._build(recs, outs, syns, st, T, dt)
            self.built = True
        for g in recs:
            self._recurrent_values(g, outs[0], syns, dt)
            for name in eq.NUMBERS["recurrent"]:
                setattr(g, name, numbers[name])
        for g in outs:
            self._readout_values(g, dt, syns)
            for name in eq.NUMBERS["readout"]:
                setattr(g, name, numbers[name])
        for s in syns:
            if isinstance(s.eprop_type, sm.EpropSynapse):
                for name in eq.NUMBERS["synapse"]:
                    setattr(s, name, numbers[name])
                if s.eprop_kind == "in":
                    self._input_table(s, T)

    # -------------------------------------------------------------------------- event family
    def _prepare_event(self, recs, outs, syns, dt: float) -> None:
        """Event family: build the per-step code (first run), then assign parameters, numbers and tables."""
        if not self.built:
            self._build_event(recs, outs, syns)
            self.built = True
        first = not self.initialized
        for g in recs:
            self._event_recurrent_values(g, syns, dt, first)
        for g in outs:
            self._event_readout_values(g, syns, dt, first)
        for s in syns:
            if isinstance(s.eprop_type, sm.EpropSynapse):
                opt = s.eprop_type.optimizer.complete("event")
                numbers = run_time_numbers(_event_structure(batch=opt["batch_size"]), dt)
                for name in eqe.NUMBERS["hidden_synapse"]:
                    setattr(s, name, numbers[name])
        self.initialized = True

    def _build_event(self, recs, outs, syns) -> None:
        """brian2_ext's event-family schedule (:mod:`brian2_ext.equations_event`) on PyNN's groups and synapses."""
        for g in recs:
            gst = _event_structure(surrogates=(g.celltype.options["surrogate_gradient_function"],))
            g.run_regularly(eqe.recurrent_step(gst, True), when="groups", order=0, name=f"{g.name}_step")
        for g in outs:
            # the learning-window signal is a parameter of each readout (a table column per readout)
            g.run_regularly(eqe.readout_step().replace("lam(t)", "lam(t, i)"), when="after_synapses", order=0,
                            name=f"{g.name}_step")
        fed = set()
        for s in syns:
            if isinstance(s.eprop_type, sm.FeedbackSynapse):
                if s.target.name in fed:
                    raise ParameterError("FeedbackSynapse: one feedback projection per recurrent population on "
                                         "pyNN.brian2 (Brian2 sums a learning signal from one Synapses object)")
                fed.add(s.target.name)
                _schedule_summed(s, 1)
                continue
            # arrivals of one step: inputs, then recurrent populations in creation order, then readout synapses
            s.pre.order = (s.eprop_index if s.eprop_kind == "in"
                           else 1000 * (1 + (s.eprop_kind == "out")) + recs.index(s.source))
            sst = _event_synapse_structure(s.eprop_type, s.target)
            code = eqe.out_integrate(sst, True) if s.eprop_kind == "out" else eqe.hidden_integrate(sst, True)
            s.run_regularly(code + EVENT_SENT_STEP, when="after_synapses", order=5, name=f"{s.name}_trace")
            s.namespace.update(event_functions())
            s.ostep = 1
            if sst.optimizer == "adam":
                s.b1p, s.b2p = 1.0, 1.0
            s.w_sent, s.w_prev, s.w_tx = s.w[:], s.w[:], s.w[:]

    def _event_recurrent_values(self, g: RecurrentGroup, syns, dt: float, first: bool) -> None:
        c = recurrent_constants(_Pops(dt, self._pops(g)))
        v_min = np.maximum(c.v_min, -BIG)
        if np.any(np.maximum(0.0, c.v_min) >= c.v_th):
            raise ParameterError(f"{type(g.celltype).__name__}: v_min >= v_thresh makes a neuron fire before any "
                                 "input; allowed range is v_min < v_thresh")
        values = {
            "alpha": c.alpha, "p_i": c.p_i, "i_e": c.i_e, "v_th": c.v_th, "v_min": v_min, "v_max": np.full(g.N, BIG),
            "v_reset": c.v_reset, "n_ref": c.n_ref, "rho": c.rho, "beta": c.beta, "psc": c.psc_delta.astype(int),
            "adaptive": c.adaptive.astype(int), "h": c.h, "sg_w": c.w, "c_reg": c.c_reg, "f_target": c.f_target,
            "kappa": c.kappa, "kappa_reg": c.kappa_reg, "one_m_kappa_reg": 1.0 - c.kappa_reg,
            "cutoff": np.minimum(c.cutoff, NO_CUTOFF), "v_rest_abs": c.v_rest,
        }
        for name, val in values.items():
            setattr(g, name, val)
        if first:  # the state after NEST's pre-roll steps (brian2_ext.network_event); thr starts at v_th
            g.v = np.maximum(0.0, v_min)
            g.thr = c.v_th
        numbers = run_time_numbers(_event_structure(), dt)
        for name in eqe.NUMBERS["recurrent"]:
            setattr(g, name, numbers[name])
        self._optimizer_values(g, [s for s in syns if s.target is g and isinstance(s.eprop_type, sm.EpropSynapse)],
                               "event")

    def _event_readout_values(self, g: ReadoutGroup, syns, dt: float, first: bool) -> None:
        n = g.N
        consts = [readout_constants({"tau_m": float(np.asarray(g.native("tau_m"))[k]),
                                     "cm": float(np.asarray(g.native("cm"))[k]),
                                     "i_offset": float(np.asarray(g.native("i_offset"))[k])}, dt) for k in range(n)]
        kappa_out = np.array([c[0] for c in consts])
        g.kappa_out, g.p_i_out, g.i_e_out = kappa_out, np.array([c[1] for c in consts]), np.array([c[2] for c in consts])
        o = g.celltype.options
        v_rest = np.asarray(g.native("v_rest"), dtype=float)
        g.v_rest_out = v_rest
        v_min_out = np.full(n, -BIG) if o["v_min"] is None else o["v_min"] - v_rest
        g.v_min_out, g.v_max_out = v_min_out, BIG
        g.cutoff = NO_CUTOFF if o["isi_trace_cutoff"] is None else \
            min(to_steps(o["isi_trace_cutoff"], dt, "EpropReadout.isi_trace_cutoff", allow_zero=False), NO_CUTOFF)
        if first:  # two of the readout's three pre-roll steps (Brian2 step 0 is the third)
            y0 = np.zeros(n)
            for _ in range(2):
                y0 = np.maximum(0.0 + kappa_out * y0, v_min_out)
            g.y = y0
        # Brian2 step s >= 1 is aligned step s - 1, whose readout potential is recorded at (s - 1 + stamp) dt: the
        # signals' element s - 1 + stamp; step 0 (pre-roll) has a zero learning window
        lag = FAMILY_STAMPS["event"].readout - TIME_SHIFT["event"]
        g.namespace["target"] = self._signal_table(g, "target", lag, 0.0, "eprop_target")
        g.namespace["lam"] = self._signal_table(g, "learning_window_signal", lag, 1.0, "eprop_lam")
        self._optimizer_values(g, [s for s in syns if s.target is g and isinstance(s.eprop_type, sm.EpropSynapse)],
                               "event")

    @staticmethod
    def _signal_table(g, name: str, lag: int, empty: float, table_name: str):
        """TimedArray (Brian2 step, readout) of an event-family signal: row s is element ``s + lag``; an empty signal
        is ``empty`` throughout, a given one zero after its values; row 0 (the pre-roll step) is 0."""
        rows = [np.asarray(getattr(seq, "value", seq), dtype=float) for seq in g.native(name)]
        size = max((r.size for r in rows), default=0)
        table = np.zeros((max(size - lag, 1) + 2, g.N))
        for k, r in enumerate(rows):
            if r.size == 0:
                table[1:, k] = empty
            else:
                vals = r[lag:]
                table[: vals.size, k] = vals
        table[0] = 0.0
        return timed_array(table, simulator.state.dt * b2.ms, table_name, True)

    def _pops(self, g) -> list:
        """Duck-typed scenario populations of a group's neurons (one each: parameters may differ per neuron)."""
        opts = g.celltype.options
        pops = []
        for k in range(g.N):
            params = {name: float(np.asarray(g.native(name))[k]) for name in g.celltype.default_parameters}
            params.update(opts)
            pops.append(_Pop(g.celltype.model, params))
        return pops

    def _build(self, recs, outs, syns, st, T: int, dt: float) -> None:
        interval = T * dt * b2.ms
        for g in recs:
            gst = replace(st, surrogates=(g.celltype.options["surrogate_gradient_function"],))
            g.run_regularly(eq.recurrent_interval(gst, dt, True), dt=interval, when="start", order=0,
                            name=f"{g.name}_interval")
            g.run_regularly(eq.recurrent_step(gst), when="groups", order=0, name=f"{g.name}_step")
        for g in outs:
            ost = replace(st, loss=g.celltype.options["loss"])
            g.run_regularly(eq.readout_interval(ost, True), dt=interval, when="start", order=0,
                            name=f"{g.name}_interval")
            g.run_regularly(eq.readout_step(ost), when="after_synapses", order=0, name=f"{g.name}_step")
            g.run_regularly(eq.readout_signal(ost, True), when="after_synapses", order=2, name=f"{g.name}_signal")
            if ost.loss == "cross_entropy":
                norm = b2.Synapses(g, g, "usum_post = u_pre : 1 (summed)", name=f"{g.name}_softmax")
                pairs = [(q, k) for q in range(g.N) for k in range(g.N) if q != k]
                norm.connect(i=np.array([p[0] for p in pairs], dtype=int), j=np.array([p[1] for p in pairs], dtype=int))
                _schedule_summed(norm, 1)
                self.network.add(norm)
                self.added.append(norm)
        fed = {}
        for s in syns:
            if isinstance(s.eprop_type, sm.FeedbackSynapse):
                if s.target.name in fed:
                    raise ParameterError("FeedbackSynapse: one feedback projection per recurrent population on "
                                         "pyNN.brian2 (Brian2 sums a learning signal from one Synapses object)")
                fed[s.target.name] = s
                _schedule_summed(s, 3)
                continue
            sst = replace(st, optimizer=s.eprop_type.optimizer.type,
                                      adaptive=s.eprop_kind != "out" and s.target.celltype.model in ADAPTIVE_MODELS)
            # arrivals in [inputs, recurrent in ascending presynaptic index] order, as the reference sums
            # them (docs/model.rst §2): inputs first, then the recurrent populations in creation order
            s.pre.order = (s.eprop_index if s.eprop_kind == "in"
                           else 1000 * (1 + (s.eprop_kind == "out")) + recs.index(s.source))
            s.w_sent, s.w_before = s.w[:], s.w[:]
            if s.eprop_kind == "out":
                s.run_regularly(eq.out_trace_step() + sent_weight_step(s.eprop_kind), when="after_synapses", order=4,
                                name=f"{s.name}_trace")
                s.run_regularly(WEIGHT_BEFORE_UPDATE + eq.optimizer_block(sst, "grad", eq.OUT_RESET, True),
                                dt=interval, when="start", order=1, name=f"{s.name}_update")
                if sst.optimizer == "adam":
                    s.b1p, s.b2p = 1.0, 1.0
                continue
            code = eq.eligibility_step(sst, inputs=s.eprop_kind == "in") + sent_weight_step(s.eprop_kind)
            if s.eprop_kind == "in":
                # the source's arrival flag replaces brian2_ext's input raster; the quirk factor comes from a table
                code = code.replace("zp_pre", "zarr").replace("q_pre", "eprop_q_in(t, i)") + "zarr = znew\nznew = 0.0\n"
                s.namespace = {}
            s.run_regularly(code, when="after_synapses", order=5, name=f"{s.name}_trace")
            if sst.optimizer == "adam":  # powers of beta_1, beta_2 start at 1 (once: they persist between runs)
                s.b1p, s.b2p = 1.0, 1.0
            s.run_regularly(WEIGHT_BEFORE_UPDATE + eq.optimizer_block(sst, "grad + fr_post*sum_e", eq.hidden_reset(sst),
                                                                      True),
                            dt=interval, when="start", order=1, name=f"{s.name}_update")

    # -------------------------------------------------------------------------- values
    def _recurrent_values(self, g: RecurrentGroup, readout: ReadoutGroup, syns, dt: float) -> None:
        c = recurrent_constants(_Pops(dt, self._pops(g)))
        incoming = [s for s in syns if s.target is g and isinstance(s.eprop_type, sm.EpropSynapse)]
        tau_kappa = None
        for s in incoming:
            tau_kappa = s.eprop_type.synapse_parameters("original")["tau_m_readout"] or tau_kappa
        if tau_kappa is None:
            tau_kappa = _scalar(readout.native("tau_m"), "tau_m", "EpropReadout")
        values = {
            "alpha": c.alpha, "p_i": c.p_i, "i_e": c.i_e, "zeta": c.zeta, "v_th": c.v_th,
            "v_min": np.maximum(c.v_min, -BIG), "v_max": np.full(g.N, BIG), "n_ref": c.n_ref, "rho": c.rho,
            "beta": c.beta, "h": c.h, "sg_w": c.w, "c_reg": c.c_reg, "f_target": c.f_target, "v_rest_abs": c.v_rest,
        }
        for name, val in values.items():
            setattr(g, name, val)
        g.kappa = np.exp(-dt / tau_kappa)
        g.one_m_kappa = 1.0 - np.exp(-dt / tau_kappa)
        self._optimizer_values(g, incoming)

    def _readout_values(self, g: ReadoutGroup, dt: float, syns) -> None:
        o = g.celltype.options
        tau_m, cm = np.asarray(g.native("tau_m"), dtype=float), np.asarray(g.native("cm"), dtype=float)
        kappa_out = np.exp(-dt / tau_m)
        v_rest = np.asarray(g.native("v_rest"), dtype=float)
        g.kappa_out = kappa_out
        g.p_i_out = tau_m / cm * (1.0 - kappa_out)
        g.i_e_out = np.asarray(g.native("i_offset"), dtype=float)
        g.zeta_out = np.ones(g.N) if o["regular_spike_arrival"] else 1.0 - kappa_out
        g.v_rest_out = v_rest
        g.v_min_out = np.full(g.N, -BIG) if o["v_min"] is None else o["v_min"] - v_rest
        g.v_max_out = BIG
        # target of every aligned step n: element n + readout stamp (the readout potential recorded at that
        # time); zero after the given values (a TimedArray repeats its last row)
        rows = [np.asarray(getattr(seq, "value", seq), dtype=float)[STAMPS.readout:] for seq in g.native("target")]
        n = max((r.size for r in rows), default=0) + 1
        table = np.zeros((n, g.N))
        for k, r in enumerate(rows):
            table[: r.size, k] = r
        g.namespace["target"] = timed_array(table, simulator.state.dt * b2.ms, "eprop_target", True)
        self._optimizer_values(g, [s for s in syns if s.target is g and isinstance(s.eprop_type, sm.EpropSynapse)])

    @staticmethod
    def _optimizer_values(g, incoming, family: str = "original") -> None:
        if not incoming:
            return
        opts = [s.eprop_type.optimizer for s in incoming]
        if any(o != opts[0] for o in opts[1:]):
            raise ParameterError(f"EpropSynapse: the projections onto {g.name} use different optimizers "
                                 f"({', '.join(map(repr, opts))}); pyNN.brian2 keeps one optimizer per population")
        values = opts[0].complete(family)
        for name in ("eta", "beta_1", "beta_2", "epsilon", "w_min", "w_max"):
            setattr(g, name, values[name])

    def shadow(self, group):
        """The group e-prop synapses from a ``SpikeSourceArray`` group read: its spikes ``INPUT_LAG + 1``
        steps earlier, so that a spike at ``(n + INPUT_LAG) dt`` arrives at step n (as on pyNN.nest).

        PyNN's own group (its ``spike_times``, its recordings) stays as the user set it.
        """
        if group.name not in self.shadows:
            shadow = b2.SpikeGeneratorGroup(group.N, np.zeros(0, dtype=int), np.zeros(0) * b2.second,
                                            clock=self.network.clock, name=self.object_name("arrivals"))
            self.network.add(shadow)
            self.shadows[group.name] = (shadow, group)
        return self.shadows[group.name][0]

    def _shadow_spikes(self, shadow, source) -> None:
        dt = simulator.state.dt
        shift = SHADOW_SHIFT[self.family or "original"]
        steps = np.round(np.asarray(source.spike_time) / (dt * 1e-3)).astype(np.int64) - shift
        # spikes before this run's first step were delivered by earlier runs (Brian2 would ignore them, with
        # a warning per run); negative steps would arrive before the first step of all
        keep = steps >= max(0, int(round(simulator.state.t / dt)))
        shadow.set_spikes(np.asarray(source.neuron_index)[keep], steps[keep] * dt * b2.ms)

    def _input_table(self, s, T: int) -> None:
        """The NEST quirk factor of input synapses (``q`` of :func:`brian2_ext.equations.input_step`)."""
        src = s.source
        dt = simulator.state.dt
        steps = int(round(simulator.state.t / dt))  # first step of this run
        q = np.ones((1, src.N))
        if isinstance(src, b2.SpikeGeneratorGroup):
            emitted = np.round(np.asarray(src.spike_time) / (dt * 1e-3)).astype(np.int64)
            idx = np.asarray(src.neuron_index, dtype=np.int64)
            # a last row of ones: the table repeats its last row beyond its end
            q = np.ones((max(int(emitted.max()) + 2 if emitted.size else 1, steps + 1), src.N))
            # emitted at m + 1 = arrival at m + 2: the last step (position T - 1) of m's interval drops L
            m = emitted - 1
            hit = (m >= 0) & (m % T == T - 1)
            q[m[hit], idx[hit]] = 0.0
        s.namespace["eprop_q_in"] = timed_array(q, dt * b2.ms, "eprop_q_in", True)


#: steps by which pyNN.brian2 runs ahead of pyNN.nest in the arrivals of a projection kind: a transmitted spike of
#: aligned step n has the NEST stamp n + STAMPS.arrival (weight recorder) and has passed NEST's synapse by the end
#: of a run when that stamp is at most the last simulated step (measured on NEST 3.10 through PyNN 0.13)
SENT_LAG = {kind: lag - 1 for kind, lag in zip(("in", "rec", "out"), STAMPS.arrival)}

#: the weight in force before an optimizer step (prepended to the interval block; ``due`` as in the block)
WEIGHT_BEFORE_UPDATE = """
due_w = int(t_in_timesteps % n_BT_s == 0)*int(t_in_timesteps > 0)
w_before = due_w*w + (1 - due_w)*w_before
"""


def sent_weight_step(kind: str) -> str:
    """Per-step code keeping ``w_sent``, the weight NEST 3.10 holds for a synapse at the same time of a run.

    NEST applies the optimizer step of a finished update interval when the synapse's next spike passes;
    its stored weight is that of the last spike it transmitted.  Brian2 applies the step at the interval
    end and is ``SENT_LAG[kind]`` steps ahead of NEST in the spikes that have passed the synapses; it keeps
    the arrivals of those last steps in ``sent_hist`` (one bit per step): the arrival of ``SENT_LAG[kind]``
    steps ago, if any, sets ``w_sent`` to the weight then in force (``w``, or ``w_before`` when an
    optimizer step came in between; an update interval is longer than the lag).  The masks make every
    choice exact.
    """
    lag = SENT_LAG[kind]
    arrival = {"in": "zp_pre", "rec": "zp_pre", "out": "z_pre"}[kind]  # "in": replaced by the arrival flag
    return f"""
sent_hist = sent_hist*2 + int({arrival} > 0.5)
sent_old = sent_hist // {2 ** lag}
sent_hist = sent_hist - sent_old*{2 ** lag}
w_then = int(t_in_timesteps % n_BT_s >= {lag})*w + int(t_in_timesteps % n_BT_s < {lag})*w_before
w_sent = sent_old*w_then + (1 - sent_old)*w_sent
"""


#: event family, per step after the synapses: the transmission of the previous step becomes the weight NEST holds
#: (NEST's synapse stores the weight a spike carries when it passes it; Brian2 transmits the spike one step before
#: pyNN.nest has passed it by the same time of a run, in every projection kind; see SENT_LAG)
EVENT_SENT_STEP = """
w_sent = sent_prev*w_prev + (1 - sent_prev)*w_sent
sent_prev = sent_now
w_prev = w_tx
sent_now = 0
"""


def event_arrival(st: eqe.EventStructure, kind: str) -> str:
    """``on_pre`` of an event-family e-prop projection: brian2_ext's arrival code (decays owed, per-spike optimizer,
    transmission), then the transmitted weight kept for ``w_sent`` (:data:`EVENT_SENT_STEP`)."""
    return eqe.arrive_code(st, kind != "out", "%(syn_var)s_post += w", True) + "w_tx = w\nsent_now = 1\n"


def _schedule_summed(syn, order: int) -> None:
    """Summed variables after this step's readout update (as brian2_ext schedules them)."""
    for updater in syn.summed_updaters.values():
        updater.when = "after_synapses"
        updater.order = order


def glue() -> NetworkGlue:
    """The :class:`NetworkGlue` of PyNN's current Brian2 network (created and registered on first use)."""
    for rec in simulator.state.recorders:
        if isinstance(rec, NetworkGlue) and rec.network is simulator.state.network:
            return rec
    g = NetworkGlue()
    simulator.state.recorders.add(g)
    g.sync_default_clock()
    return g


# ---------------------------------------------------------------------------------------------- PyNN hooks
def projection_kind(pre, post, synapse_type) -> str:
    """``in``, ``rec``, ``out`` (plastic) or ``fb`` (feedback), after :func:`pynn_ext.standardmodels.check_projection`
    (roles, one family, one-step delay: PyNN-style errors)."""
    family = sm.check_projection(pre, post, synapse_type, simulator.state.dt)
    sm.join_family(glue(), family, "Projection")
    if getattr(pre, "celltype", None) is None or getattr(post, "celltype", None) is None:
        raise sm.EpropConnectionError(f"{type(synapse_type).__name__}: projections between Assemblies are not "
                                      "supported on pyNN.brian2; connect Populations or PopulationViews")
    if isinstance(synapse_type, sm.FeedbackSynapse):
        return "fb"
    if isinstance(post.celltype, sm.EpropReadout):
        return "out"
    return "rec" if isinstance(pre.celltype, sm.EpropRecurrentType) else "in"


_create_cells = Population._create_cells
_projection_init = Projection.__init__
_convergent_connect = Projection._convergent_connect
_get_attributes_as_arrays = Projection._get_attributes_as_arrays
_get_attributes_as_list = Projection._get_attributes_as_list
_set_attributes = Projection._set_attributes


def _eprop_create_cells(self) -> None:
    if isinstance(self.celltype, sm.EpropCellType):
        sm.join_family(glue(), self.celltype.family, f"Population {self.label!r}")
        install_cell(self.celltype)
    _create_cells(self)


def _eprop_projection_init(self, presynaptic_population, postsynaptic_population, connector, synapse_type=None,
                           *args, **kwargs) -> None:
    eprop = isinstance(synapse_type, sm.EpropSynapseType)
    if not eprop and isinstance(getattr(postsynaptic_population, "celltype", None), sm.EpropCellType):
        raise sm.EpropConnectionError(f"{type(postsynaptic_population.celltype).__name__}: connections onto e-prop "
                                      f"cells use EpropSynapse or FeedbackSynapse, not {type(synapse_type).__name__}")
    swapped = None
    if eprop:
        kind = projection_kind(presynaptic_population, postsynaptic_population, synapse_type)
        family = glue().family
        install_synapse(synapse_type, family)
        if family == "event" and isinstance(synapse_type, sm.EpropSynapse):
            synapse_type.pre = event_arrival(_event_synapse_structure(synapse_type, postsynaptic_population), kind)
        group = getattr(presynaptic_population, "brian2_group", None)
        if kind == "in" and isinstance(group, b2.SpikeGeneratorGroup):
            if not isinstance(presynaptic_population, Population):
                raise sm.EpropConnectionError(f"EpropSynapse: connect the whole SpikeSourceArray population "
                                              f"{presynaptic_population.label!r}, not a view of it, on pyNN.brian2")
            swapped = group
            presynaptic_population.brian2_group = glue().shadow(group)
    try:
        if eprop:
            self._eprop_pending = []  # the connector's per-neuron calls, made as one (_eprop_convergent_connect)
            with _named_synapses(glue().object_name(kind)):
                _projection_init(self, presynaptic_population, postsynaptic_population, connector, synapse_type,
                                 *args, **kwargs)
            _connect_pending(self)
        else:
            _projection_init(self, presynaptic_population, postsynaptic_population, connector, synapse_type, *args,
                             **kwargs)
    finally:
        if swapped is not None:
            presynaptic_population.brian2_group = swapped
    if eprop:
        g = glue()
        for row in self._brian2_synapses.values():
            for syn in row.values():
                for name in ("eprop_type", "eprop_kind", "eprop_index"):
                    syn.add_attribute(name)
                syn.eprop_type, syn.eprop_kind, syn.eprop_index = synapse_type, kind, g.next_index()


def _eprop_convergent_connect(self, presynaptic_indices, postsynaptic_index, location_selector=None,
                              **connection_parameters) -> None:
    """PyNN's connectors call this once per postsynaptic neuron; an e-prop projection keeps the call for
    :func:`_connect_pending`.

    pyNN.brian2 creates the synapses of each call with its own ``Synapses.connect`` (a code object
    each) and sets every value synapse by synapse: 19 s of the 27 s of task-evidence-event's network
    (404 calls, 14 200 synapses).  The synapses, their order and their values are the same made at once.
    """
    pending = getattr(self, "_eprop_pending", None)
    if pending is None:
        return _convergent_connect(self, presynaptic_indices, postsynaptic_index, location_selector,
                                   **connection_parameters)
    if location_selector is not None:
        raise NotImplementedError("Brian backend does not support multicompartmental models.")
    connection_parameters.pop("dendritic_delay_fraction", None)
    (pre,) = self._partition(np.asarray(presynaptic_indices))  # e-prop projections join Populations or views
    _, post = self._localize_index(postsynaptic_index)
    if pre.size:
        pending.append((np.asarray(pre, dtype=np.int64), int(post), connection_parameters))


def _connect_pending(self) -> None:
    """Create the kept synapses with one ``Synapses.connect`` in the order PyNN's calls gave them, then set their
    values (scalars broadcast, lists per synapse) as pyNN.brian2 does."""
    pending = self.__dict__.pop("_eprop_pending")
    if not pending:
        return
    syn = self._brian2_synapses[0][0]
    first = len(syn)
    pre = np.concatenate([i for i, _, _ in pending])
    post = np.concatenate([np.full(i.size, j, dtype=np.int64) for i, j, _ in pending])
    syn.connect(i=pre, j=post)
    self._n_connections += pre.size
    names = set().union(*(params.keys() for _, _, params in pending)) | set(self.synapse_type.initial_conditions)
    for name in sorted(names):
        parts = []
        for i, _, params in pending:
            value = params[name] if name in params else self.synapse_type.initial_conditions[name]
            parts.append(np.broadcast_to(np.asarray(value, dtype=float), i.shape))
        getattr(syn, name)[first: first + pre.size] = np.concatenate(parts)


def _event_synapse_structure(syntype: sm.EpropSynapse, post) -> eqe.EventStructure:
    """The structure of an event-family projection's code: its optimizer, and whether its targets adapt."""
    opt = syntype.optimizer.complete("event")
    celltype = getattr(post, "celltype", None)
    return _event_structure(optimizer=opt["type"], each_step=bool(opt["optimize_each_step"]),
                            adaptive=getattr(celltype, "model", None) in ADAPTIVE_MODELS)


class _Brian2WithNames:
    """The ``brian2`` module as a pyNN.brian2 module sees it while it creates an e-prop object: the ``Synapses`` or
    monitor it creates gets a name (:meth:`NetworkGlue.object_name`); everything else is Brian2's."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attr: str) -> Any:
        return getattr(b2, attr)

    def _named(self, cls: Any, args: tuple, kwargs: dict) -> Any:
        kwargs.setdefault("name", self._name)
        return cls(*args, **kwargs)

    def Synapses(self, *args: Any, **kwargs: Any) -> Any:  # noqa: N802 - Brian2's names
        return self._named(b2.Synapses, args, kwargs)

    def StateMonitor(self, *args: Any, **kwargs: Any) -> Any:  # noqa: N802
        return self._named(b2.StateMonitor, args, kwargs)

    def SpikeMonitor(self, *args: Any, **kwargs: Any) -> Any:  # noqa: N802
        return self._named(b2.SpikeMonitor, args, kwargs)


@contextlib.contextmanager
def _named_objects(module_name: str, name: str):
    """PyNN 0.13 names no ``Synapses`` or recording monitors (Brian2 then numbers them per process): give the one
    the pyNN.brian2 module ``module_name`` creates meanwhile ``name``."""
    module = sys.modules[module_name]
    module.brian2 = _Brian2WithNames(name)
    try:
        yield
    finally:
        module.brian2 = b2


def _named_synapses(name: str):
    return _named_objects(Projection.__module__, name)


def _is_eprop(projection) -> bool:
    return isinstance(projection.synapse_type, sm.EpropSynapseType) and hasattr(projection, "_brian2_synapses")


def _native_values(projection, name: str) -> np.ndarray:
    """Per-synapse values of native parameter ``name``; the weight of a plastic synapse is ``w_sent`` once the
    network has run (NEST's convention: the weight of the last transmitted spike, docs/pynn.rst)."""
    syn = projection._brian2_synapses[0][0]
    if name == "w" and isinstance(projection.synapse_type, sm.EpropSynapse) and glue().built:
        name = "w_sent"
    return np.asarray(getattr(syn, name)[:], dtype=float)


def _eprop_set_attributes(self, connection_parameters) -> None:
    """``Projection.set``: a plastic synapse's new weight is also the weight it holds and had (``w_sent``,
    ``w_before``), as when NEST's stored weight is set; the delay stays one time step."""
    if _is_eprop(self) and "d_syn" in connection_parameters.keys():
        connection_parameters.evaluate()
        d = np.asarray(connection_parameters["d_syn"], dtype=float).ravel()
        dt = simulator.state.dt
        if np.any(np.abs(d - dt) > 1e-9 * dt):
            bad = float(d[np.argmax(np.abs(d - dt))])
            raise ParameterError(f"{type(self.synapse_type).__name__}: delay = {bad} ms: e-prop connections have a "
                                 f"delay of one time step ({dt} ms)")
    _set_attributes(self, connection_parameters)
    if _is_eprop(self) and isinstance(self.synapse_type, sm.EpropSynapse) and "w" in connection_parameters.keys():
        syn = self._brian2_synapses[0][0]
        syn.w_sent = syn.w[:]
        syn.w_before = syn.w[:]


def _eprop_get_attributes_as_arrays(self, attribute_names, multiple_synapses="sum"):
    """``Projection.get(..., format="array")`` of e-prop connections (one per pair; NaN: none).

    PyNN passes native names (``w``, ``d_syn``: values in PyNN's units); pyNN.brian2's own version
    looks the translated values up by the native name, which works only where the names coincide."""
    if not _is_eprop(self):
        return _get_attributes_as_arrays(self, attribute_names, multiple_synapses)
    syn = self._brian2_synapses[0][0]
    i, j = np.asarray(syn.i[:]), np.asarray(syn.j[:])
    out = []
    for name in attribute_names:
        arr = np.full((self.pre.size, self.post.size), np.nan)
        arr[i, j] = _native_values(self, name)
        out.append(arr)
    return out


def _eprop_get_attributes_as_list(self, attribute_names):
    """``Projection.get(..., format="list")`` of e-prop connections (see :func:`_eprop_get_attributes_as_arrays`)."""
    if not _is_eprop(self):
        return _get_attributes_as_list(self, attribute_names)
    syn = self._brian2_synapses[0][0]
    columns = {"presynaptic_index": np.asarray(syn.i[:]), "postsynaptic_index": np.asarray(syn.j[:])}
    values = [columns[n] if n in columns else _native_values(self, n) for n in attribute_names]
    return [tuple(x) for x in np.array(values, dtype=object).T]


_get_all_signals = Recorder._get_all_signals
_get_spiketimes = Recorder._get_spiketimes
_create_device = Recorder._create_device


def _eprop_create_device(self, group, variable):
    """PyNN's recording monitors of e-prop populations, named after the group and the variable."""
    if not isinstance(getattr(self.population, "celltype", None), sm.EpropCellType):
        return _create_device(self, group, variable)
    with _named_objects(Recorder.__module__, f"{group.name}_rec_{variable.name}"):
        return _create_device(self, group, variable)


def _stamp(recorder, name: str) -> int | None:
    """NEST's stamp of recordable ``name`` of an e-prop population, in steps after the Brian2 step of its value."""
    celltype = getattr(recorder.population, "celltype", None)
    if not isinstance(celltype, sm.EpropCellType):
        return None
    role = "readout" if isinstance(celltype, sm.EpropReadout) else "recurrent"
    return recording_stamps(celltype.family)[role][name] - TIME_SHIFT[celltype.family]


def _eprop_get_all_signals(self, variable, ids, clear=False):
    """Signals of e-prop populations at NEST's stamps: the value of aligned step n at ``(n + stamp) dt``.

    PyNN's Brian2 recorder gives the value of step n at ``(n + 1) dt`` (sample 0: the initial value);
    the first samples repeat the initial value, the last ones are not stamped yet.
    """
    values, times = _get_all_signals(self, variable, ids, clear)
    stamp = _stamp(self, variable.name)
    if stamp is None or stamp <= 1:
        return values, times
    shift = stamp - 1
    shifted = np.concatenate([np.repeat(values[:1], shift, axis=0), values])[: len(values)]
    return shifted, times


def _eprop_get_spiketimes(self, requested_ids, clear=False):
    """Spike times of e-prop populations at NEST's stamps (a spike of aligned step n at ``(n + stamp) dt``)."""
    ids, times = _get_spiketimes(self, requested_ids, clear)
    stamp = _stamp(self, "spikes")
    if stamp is None:
        return ids, times
    times = np.asarray(times) + stamp * simulator.state.dt
    keep = times <= simulator.state.t + 1e-9 * simulator.state.dt
    return ids[keep], times[keep]


_state_clear = type(simulator.state).clear


def _eprop_state_clear(self) -> None:
    """PyNN's network reset (``setup``), with the network's clock named: Brian2 names the clock variables (t, dt)
    in every code object after their clock, and an automatic name ("clock_3") differs in every network."""
    _state_clear(self)
    self.network.clock = b2.Clock(self.network.clock.dt, name=CLOCK_NAME)


type(simulator.state).clear = _eprop_state_clear
if getattr(simulator.state.network.clock, "name", CLOCK_NAME) != CLOCK_NAME:
    simulator.state.network.clock = b2.Clock(simulator.state.network.clock.dt, name=CLOCK_NAME)
Recorder._get_all_signals = _eprop_get_all_signals
Recorder._create_device = _eprop_create_device
Recorder._get_spiketimes = _eprop_get_spiketimes
Population._create_cells = _eprop_create_cells
Projection.__init__ = _eprop_projection_init
Projection._convergent_connect = _eprop_convergent_connect
Projection._get_attributes_as_arrays = _eprop_get_attributes_as_arrays
Projection._get_attributes_as_list = _eprop_get_attributes_as_list
Projection._set_attributes = _eprop_set_attributes
