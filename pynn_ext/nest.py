"""pyNN.nest glue: the e-prop types of :mod:`pynn_ext.standardmodels` on NEST (translation tables and glue only).

Imported automatically when ``pynn_ext`` and ``pyNN.nest`` are both imported.  It

* wraps ``pyNN.nest.setup``: ``eprop_models="nestml"`` (default: the project's NESTML neurons, the
  module built on first use and installed into the fresh kernel) or ``"nest"`` (NEST 3.10's built-in
  ``eprop_*`` models); the spike precision defaults to ``"on_grid"`` and ``min_delay`` to the time step
  (e-prop connections have a delay of one step);
* makes ``sim.Population`` with an e-prop cell type an :class:`EpropPopulation` (NEST model names and
  parameter names from :mod:`eprop_plugins.backends.nest_translations`; the readout's ``target`` and
  ``learning_window_signal`` drive ``step_rate_generator`` nodes, as in
  :mod:`eprop_plugins.backends.nest_wiring`);
* makes ``sim.Projection`` with an e-prop synapse type an :class:`EpropProjection`: NEST has no ``_lbl``
  e-prop connections, so these projections find their connections by source, target and synapse
  model instead of PyNN's ``synapse_label`` (plastic projections get a ``CopyModel`` of NEST's model per
  optimizer setting, and a further copy when they connect neurons another projection of that model
  connects; copies give bit-identical numbers); ``get``/``set`` of ``weight`` work (mV, no unit factor);
* creates the NEST recording devices of e-prop populations at their first ``record`` (PyNN creates them
  with the population), so that consecutive populations get consecutive node ids.

Time base (NEST time stamps of a PyNN run): an input spike at ``t`` (``SpikeSourceArray``) reaches the
e-prop neurons in the next step; ``target`` element ``j`` is the target of the readout potential
recorded at ``t = j dt`` (the same for ``learning_window_signal``).
"""

from __future__ import annotations

import copy
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyNN.nest as pynn_nest

from pyNN import common as pynn_common
from pyNN import errors as pynn_errors
from pyNN.nest import simulator
from pyNN.nest.recording import Multimeter, SpikeDetector
from pyNN.nest.recording import Recorder as NestRecorder
from pyNN.recording import Recorder as BaseRecorder
from pyNN.parameters import LazyArray, ParameterSpace, Sequence
from pyNN.space import Space
from pyNN.standardmodels import build_translations

from eprop_plugins.backends import nest_translations as tr
from eprop_plugins.backends import nest_wiring as nw
from eprop_plugins.backends.nest_wiring import common as nest_common
from eprop_plugins.parameters import ParameterError
from nest_models import build

from .standardmodels import (
    EpropCellType,
    EpropConnectionError,
    EpropReadout,
    EpropSynapse,
    EpropSynapseType,
    FeedbackSynapse,
    check_projection,
    is_parameter,
    join_family,
)

__all__ = ["EpropPopulation", "EpropProjection", "setup", "prepare", "install_module", "eprop_state",
           "weight_recorder", "bind_cell", "NetworkState", "LazyRecorder", "MODEL_SETS",
           "NETWORK_STATE"]

#: ``setup(eprop_models=...)`` values
MODEL_SETS = ("nestml", "nest")

#: attribute of ``pyNN.nest.simulator.state`` holding :class:`NetworkState`
NETWORK_STATE = "eprop"

#: recordable -> NEST recordable, per role
RECURRENT_VARIABLES = {"v": "V_m", "psi": "surrogate_gradient", "learning_signal": "learning_signal",
                       "adaptation": "adaptation", "v_th_adapt": "V_th_adapt"}
READOUT_VARIABLES = {"v": "V_m", "readout_signal": "readout_signal", "target": "target_signal",
                     "error": "error_signal"}

_original_setup = pynn_nest.setup


@dataclass
class NetworkState:
    """E-prop bookkeeping of one PyNN/NEST network (reset by ``setup``)."""

    models: str = "nestml"
    family: str | None = None
    family_owner: str = ""
    synapse_models: dict[str, tuple] = field(default_factory=dict)  # NEST model -> settings it carries
    connected: list[tuple] = field(default_factory=list)  # (NEST model, pre node ids, post node ids) per projection
    weight_recorder: Any = None
    plastic: list[Any] = field(default_factory=list)  # EpropProjections of EpropSynapse
    readouts: list[Any] = field(default_factory=list)
    build_seconds: float = 0.0  # spent building the NESTML module for this network

    def layout(self) -> nw.Layout:
        return nw.layout(self.family, nestml=self.models == "nestml")


def eprop_state() -> NetworkState:
    """The e-prop state of the current pyNN.nest network (created by :func:`setup`)."""
    st = getattr(simulator.state, NETWORK_STATE, None)
    if st is None:
        st = NetworkState()
        setattr(simulator.state, NETWORK_STATE, st)
    return st


def setup(timestep: float = 0.1, min_delay: Any = None, *, eprop_models: str = "nestml",
          **extra_params: Any) -> int:
    """``pyNN.nest.setup`` plus the e-prop models: see the module docstring.

    Parameters
    ----------
    timestep : float
        ms.
    min_delay : float, optional
        ms; default the time step.
    eprop_models : {"nestml", "nest"}
        The project's NESTML neurons or NEST's built-in e-prop models.
    """
    if eprop_models not in MODEL_SETS:
        raise ParameterError(f"setup: eprop_models = {eprop_models!r}: allowed values are {', '.join(MODEL_SETS)}")
    extra_params.setdefault("spike_precision", "on_grid")
    rank = _original_setup(timestep, timestep if min_delay is None else min_delay, **extra_params)
    setattr(simulator.state, NETWORK_STATE, NetworkState(models=eprop_models))
    if eprop_models == "nestml":
        install_module()
    return rank


def install_module() -> float:
    """Install the project's NESTML module into the (empty) kernel; build it first if needed (with a message).

    Returns
    -------
    float
        Seconds spent building (0.0 when the cached module was used); also in ``eprop_state().build_seconds``.
    """
    built = build.is_built()
    if not built:
        print("pynn_ext: building the NESTML e-prop module (first use; one to two minutes) ...", file=sys.stderr,
              flush=True)
    t0 = time.perf_counter()
    build.load_module()
    seconds = 0.0 if built else time.perf_counter() - t0
    eprop_state().build_seconds += seconds
    return seconds


def prepare() -> None:
    """Make the connections PyNN defers to the first ``run`` (spike sources to their parrots, recorders), without
    simulating: for code that steps the kernel with ``nest.Simulate`` itself."""
    simulator.state.run(0.0)


def weight_recorder() -> Any:
    """A NEST ``weight_recorder`` attached to the plastic synapses of projections created after this call.

    One entry per spike a plastic synapse transmits (costly for long runs).
    """
    st = eprop_state()
    if st.weight_recorder is None:
        st.weight_recorder = nw.import_nest().Create("weight_recorder")
    return st.weight_recorder


# ---------------------------------------------------------------------------------------------- cells

def _translation_rows(table: tuple, names: list[str]) -> list[tuple]:
    rows = {row[0]: row for row in table}
    return [rows[name] if name in rows else (name, name) for name in names]


def bind_cell(celltype: EpropCellType, st: NetworkState) -> EpropCellType:
    """Give an abstract e-prop cell type its NEST names and translations (instance attributes)."""
    readout = isinstance(celltype, EpropReadout)
    table = tr.READOUT if readout else tr.RECURRENT
    params = [r.name for r in celltype.rows(celltype.family)
              if is_parameter(r) and r.name in celltype.default_parameters]
    celltype.translations = build_translations(*_translation_rows(table, params),
                                               *((s, s) for s in celltype.signals
                                                 if s in celltype.default_parameters))
    models = nw.layout(celltype.family, nestml=st.models == "nestml").models
    name = models["readout" if readout else celltype.model]
    celltype.nest_name = {"on_grid": name, "off_grid": name}
    options = {k: v for k, v in celltype.options.items() if k not in ("sequence", "learning_window")}
    if readout and celltype.family == "event":
        options.pop("loss", None)  # the event family's readout has mean squared error only
    celltype.extra_parameters = tr.to_nest(table, options)
    variables = READOUT_VARIABLES if readout else RECURRENT_VARIABLES
    celltype.variable_map = {k: v for k, v in variables.items() if k in celltype.recordable}
    celltype.scale_factors = {k: 1.0 for k in celltype.variable_map}
    celltype.standard_receptor_type = True
    return celltype


def _signal_values(ps: ParameterSpace, name: str, size: int) -> list[np.ndarray] | None:
    if name not in ps.keys():
        return None
    value = ps[name]
    value.shape = (size,)
    values = value.evaluate()
    if isinstance(values, Sequence):  # PyNN simplifies a single neuron's (or a homogeneous) Sequence
        values = [values] * size
    return [np.asarray(v.value if isinstance(v, Sequence) else v, dtype=float) for v in values]


class LazyRecorder(NestRecorder):
    """pyNN.nest's recorder with its NEST devices created at the first ``record`` instead of with the population,
    so that consecutive e-prop populations get consecutive NEST node ids (as one NEST network of the scenario)."""

    DEVICES = {"_multimeter": Multimeter, "_spike_detector": SpikeDetector}

    def __init__(self, population: Any, file: Any = None) -> None:
        BaseRecorder.__init__(self, population, file)
        self.recorded_all = defaultdict(set)

    def __getattr__(self, name: str) -> Any:
        if name in LazyRecorder.DEVICES:
            device = LazyRecorder.DEVICES[name]()
            setattr(self, name, device)
            if name == "_multimeter" and self.__dict__.get("pending_interval") is not None:
                nw.import_nest().SetStatus(device.device, {"interval": self.pending_interval})
            return device
        raise AttributeError(name)

    def _get_sampling_interval(self) -> float:
        if "_multimeter" in self.__dict__:
            return super()._get_sampling_interval()
        return self.__dict__.get("pending_interval", simulator.state.dt)

    def _set_sampling_interval(self, value: float | None) -> None:
        if "_multimeter" in self.__dict__:
            super()._set_sampling_interval(value)
        elif value is not None:
            self.pending_interval = value

    sampling_interval = property(fget=_get_sampling_interval, fset=_set_sampling_interval)


class EpropPopulation(pynn_nest.Population):
    """A pyNN.nest Population of an e-prop cell type (``sim.Population`` returns one for these types)."""

    _recorder_class = LazyRecorder

    def __init__(self, size: int, cellclass: Any, cellparams: dict | None = None, structure: Any = None,
                 initial_values: dict | None = None, label: str | None = None) -> None:
        if isinstance(cellclass, type):
            celltype = cellclass(**(cellparams or {}))
        else:  # one type object may serve several populations: each binds its own copy
            celltype = copy.copy(cellclass)
            celltype.__dict__.pop("translate", None)
            celltype.parameter_space = copy.deepcopy(cellclass.parameter_space)
            celltype.options = dict(cellclass.options)
            celltype.default_initial_values = {"v": celltype.parameter_space["v_rest"]}
        self.eprop_signals: dict[str, list[np.ndarray]] = {}
        self.eprop_generators: dict[str, Any] = {}
        self.eprop_signals_changed = False
        bind_cell(celltype, eprop_state())
        translate = type(celltype).translate

        def translate_without_signals(parameters: ParameterSpace, copy: bool = True) -> ParameterSpace:
            # the readout's signals drive generators, not NEST parameters of the readout
            return self._strip_signals(translate(celltype, parameters, copy))

        celltype.translate = translate_without_signals
        super().__init__(size, celltype, None, structure, initial_values or {}, label)
        # the t = 0 sample of signals that are state in NEST but not settable initial values
        for name in celltype.recordable:
            if name not in ("spikes", *self.initial_values):
                start = celltype.parameter_space["v_thresh"] if name == "v_th_adapt" else 0.0
                self.initial_values[name] = LazyArray(start, shape=(self.size,))

    # PyNN calls translate() and then these two; the readout's signals are taken out before NEST sees them
    def _strip_signals(self, native: ParameterSpace) -> ParameterSpace:
        for name in self.celltype.signals:
            values = _signal_values(native, name, self.size)
            if values is not None:
                native.pop(name)
                self.eprop_signals[name] = values
                self.eprop_signals_changed = True
        return native

    def _create_cells(self) -> None:
        st = eprop_state()
        ct = self.celltype
        join_family(st, ct.family, f"Population {self.label!r}")
        nest = nw.import_nest()
        model = ct.nest_name["on_grid"]
        if model not in nest.node_models:
            if st.models == "nestml" and nest.network_size == 0:
                install_module()
            else:
                raise pynn_errors.InvalidModelError(
                    f"NEST model {model!r} is not installed: call sim.setup(..., eprop_models='nestml') before "
                    "creating populations, or use eprop_models='nest'")
        if isinstance(ct, EpropReadout) and ct.family == "original":
            nest.set(**self.kernel_status())
        super()._create_cells()
        if isinstance(ct, EpropReadout):
            self._create_signal_sources()
            st.readouts.append(self)

    def kernel_status(self) -> dict[str, Any]:
        """Kernel settings of an original-family readout: update interval, learning window, reset."""
        opts = self.celltype.options
        window = opts["learning_window"] if opts["learning_window"] is not None else opts["sequence"]
        return {"eprop_update_interval": opts["sequence"], "eprop_learning_window": window,
                "eprop_reset_neurons_on_update": True}

    def _create_signal_sources(self) -> None:
        nest = nw.import_nest()
        ct, dt = self.celltype, simulator.state.dt
        gens = nest.Create("step_rate_generator", self.size)
        nest.Connect(gens, self.node_collection, "one_to_one",
                     {"synapse_model": "rate_connection_delayed", "delay": dt, "receptor_type": 2})
        self.eprop_generators["target"] = gens
        if ct.family == "event":
            window = nest.Create("step_rate_generator", self.size)
            nest.Connect(window, self.node_collection, "one_to_one",
                         {"synapse_model": "rate_connection_delayed", "delay": dt, "receptor_type": 1})
            self.eprop_generators["learning_window_signal"] = window
        elif ct.options["loss"] == "cross_entropy":
            nest.Connect(self.node_collection, self.node_collection, {"rule": "all_to_all", "allow_autapses": False},
                         {"synapse_model": "rate_connection_delayed", "delay": dt, "receptor_type": 1, "weight": 1.0})
        self._apply_signals()

    def _apply_signals(self) -> None:
        """Set the generators from the signals: element j pairs with the readout potential recorded at j dt."""
        off, dt = nw.layout(self.celltype.family).offsets, simulator.state.dt
        shift = off.amplitude - off.readout
        for name, gens in self.eprop_generators.items():
            values = self.eprop_signals.get(name) or [np.zeros(0)] * self.size
            status = []
            for v in values:
                first = max(0, 1 - shift)  # NEST takes amplitude times > 0
                if len(v) > first:
                    status.append(nest_common.amplitudes(v[first:], first + shift, dt))
                elif name == "learning_window_signal":  # empty: 1 throughout
                    status.append({"amplitude_times": [dt], "amplitude_values": [1.0]})
                else:
                    status.append({"amplitude_times": [], "amplitude_values": []})
            gens.set(status)

    def _set_parameters(self, parameter_space: ParameterSpace) -> None:
        self._strip_signals(parameter_space)
        if list(parameter_space.keys()):
            super()._set_parameters(parameter_space)
        if self.eprop_signals_changed and self.eprop_generators:
            self._apply_signals()
        self.eprop_signals_changed = False


# ------------------------------------------------------------------------------------------ synapses

SYNAPSE_TRANSLATIONS = build_translations(("weight", "weight"), ("delay", "delay"))


class EpropProjection(pynn_nest.Projection):
    """A pyNN.nest Projection of an e-prop synapse type (``sim.Projection`` returns one for these types).

    Connections are found by source, target and NEST synapse model (NEST has no ``_lbl`` e-prop
    connections), afresh at every access; the plastic synapses of one projection share its optimizer, set
    as the common properties of its copy of the NEST synapse model (one copy per optimizer setting).
    """

    def __init__(self, presynaptic_population: Any, postsynaptic_population: Any, connector: Any,
                 synapse_type: EpropSynapseType | None = None, source: Any = None, receptor_type: Any = None,
                 space: Any = Space(), label: str | None = None) -> None:
        st = eprop_state()
        family = check_projection(presynaptic_population, postsynaptic_population, synapse_type,
                                  simulator.state.dt)
        join_family(st, family, "Projection")
        synapse_type.translations = SYNAPSE_TRANSLATIONS
        pynn_common.Projection.__init__(self, presynaptic_population, postsynaptic_population, connector,
                                        synapse_type, source, receptor_type, space, label)
        self.family = family
        self.nest_synapse_model = self._synapse_model(st)
        self.nest_synapse_label = None
        self._sources = set()
        self._common_synapse_properties = {}
        self._common_synapse_property_names = None
        self.extra_connection_parameters = self._connection_parameters(st)
        connector.connect(self)
        if isinstance(synapse_type, EpropSynapse):
            st.plastic.append(self)
        else:
            self._close_network(st)

    def _guess_receptor_type(self) -> None:
        self.receptor_type = "default"

    def _synapse_model(self, st: NetworkState) -> str:
        """The NEST model of this projection: a copy of the family's synapse model carrying this optimizer's settings
        as its common properties, shared with earlier projections of the same settings unless one of them connects
        the same neurons (connections are told apart by source, target and model); feedback projections use the
        family's feedback model itself (or a copy when their neurons coincide with another's).

        Plastic projections never use the family's model itself, and every copy is made from the model as NEST
        defines it: measured on NEST 3.10, a copy made of the model after it was given settings (``SetDefaults``) and
        connections applies its first weight update with the original's learning rate instead of its own (a readout projection with
        ``eta = 2e-2`` beside others with ``1e-2`` then moved by 0.01 mV in its first update)."""
        nest = nw.import_nest()
        models = st.layout().models
        if isinstance(self.synapse_type, FeedbackSynapse):
            base, defaults = models["feedback"], {}
        else:
            base = models["synapse"]
            defaults = dict(tr.synapse_defaults(self.synapse_type.optimizer.complete(self.family)))
            if self.family == "original":
                defaults["average_gradient"] = self.synapse_type.synapse_parameters(self.family)["average_gradient"]
            if st.weight_recorder is not None:
                defaults["weight_recorder"] = st.weight_recorder
        key = (base, repr(sorted((k, v) for k, v in defaults.items() if k != "weight_recorder")),
               None if st.weight_recorder is None else int(st.weight_recorder.global_id))
        pre, post = set(self.pre.node_collection.tolist()), set(self.post.node_collection.tolist())
        for name, settings in st.synapse_models.items():
            overlap = any(m == name and (pre & p) and (post & q) for m, p, q in st.connected)
            if settings == key and not overlap:
                break
        else:
            used = [n for n in st.synapse_models if n == base or n.startswith(f"{base}_pynn")]
            name = base if not used and not defaults else f"{base}_pynn{len(used) + 1}"  # copies of a pristine base
            if name != base:
                nest.CopyModel(base, name)
            if defaults:
                nest.SetDefaults(name, defaults)
            st.synapse_models[name] = key
        st.connected.append((name, pre, post))
        return name

    def _connection_parameters(self, st: NetworkState) -> dict[str, Any]:
        if isinstance(self.synapse_type, EpropSynapse) and self.family == "original":
            tau = self.synapse_type.synapse_parameters(self.family)["tau_m_readout"]
            if tau is None and st.readouts:
                tau = st.readouts[-1].celltype.parameter_space["tau_m"].evaluate(simplify=True)
            return {"tau_m_readout": float(tau)} if tau is not None else {}
        return {}

    def _close_network(self, st: NetworkState) -> None:
        """A feedback projection closes the loop: plastic synapses without ``tau_m_readout`` get the readout's
        ``tau_m``; original-family recurrent neurons send flush events every update interval."""
        readout = self.pre
        if self.family != "original":
            return
        tau = float(readout.celltype.parameter_space["tau_m"].evaluate(simplify=True))
        for proj in st.plastic:
            if "tau_m_readout" not in proj.extra_connection_parameters and len(proj):
                proj.nest_connections.set(tau_m_readout=tau)
                proj.extra_connection_parameters["tau_m_readout"] = tau
        self.post.node_collection.set(flush_event_send_interval=readout.celltype.options["sequence"])

    # -- connections: PyNN's connectors call these; no synapse_label anywhere
    def _check_delays(self, delays: Any) -> None:
        d = np.atleast_1d(np.asarray(delays, dtype=float)).ravel()
        dt = simulator.state.dt
        if np.any(np.abs(d - dt) > 1e-9 * dt):
            bad = float(d[np.argmax(np.abs(d - dt))])
            raise ParameterError(f"{type(self.synapse_type).__name__}: delay = {bad} ms: e-prop connections have a "
                                 f"delay of one time step ({dt} ms)")

    def _connect(self, rule_params: dict, syn_params: dict) -> None:
        nest = nw.import_nest()
        syn_params = dict(syn_params)
        syn_params.pop("synapse_label", None)
        self._check_delays(syn_params.get("delay", simulator.state.dt))
        syn_params.update(self.extra_connection_parameters)
        nest.Connect(self.pre.node_collection, self.post.node_collection, rule_params, syn_params)
        self._sources.update(self.pre.node_collection.tolist())

    def _convergent_connect(self, presynaptic_indices: np.ndarray, postsynaptic_index: int,
                            location_selector: Any = None, **connection_parameters: Any) -> None:
        nest = nw.import_nest()
        if len(presynaptic_indices) == 0:
            return
        order = np.argsort(presynaptic_indices, kind="stable")
        idx = np.asarray(presynaptic_indices)[order]
        if len(np.unique(idx)) != len(idx):
            raise pynn_errors.ConnectionError("e-prop projections allow one synapse per pair of neurons")
        weights = np.broadcast_to(np.asarray(connection_parameters["weight"], dtype=float), idx.shape)
        if np.ndim(connection_parameters["weight"]):
            weights = np.asarray(connection_parameters["weight"], dtype=float)[order]
        self._check_delays(connection_parameters["delay"])
        syn = {"synapse_model": self.nest_synapse_model, "delay": simulator.state.dt,
               "weight": np.array([weights]), **self.extra_connection_parameters}
        pre = self.pre.node_collection[idx]
        nest.Connect(pre, self.post.node_collection[int(postsynaptic_index)], "all_to_all", syn)
        self._sources.update(pre.tolist())

    @property
    def nest_connections(self) -> Any:
        """This projection's NEST connections, looked up afresh on every access.

        A ``SynapseCollection`` addresses connections by their position in NEST's connection tables, and any
        later ``Connect`` (of any projection) or the sorting before the first ``Simulate`` moves them: a kept
        collection would then read or set other projections' connections.  The lookup by source population,
        target population and synapse model is exact because :meth:`_synapse_model` gives two projections
        whose neuron pairs could coincide different models.
        """
        return nw.import_nest().GetConnections(self.pre.node_collection, self.post.node_collection,
                                               synapse_model=self.nest_synapse_model)

    def __len__(self) -> int:
        return len(self.nest_connections)

    def _identify_common_synapse_properties(self) -> None:
        self._common_synapse_property_names = ["optimizer", "weight_recorder", "average_gradient"]

    def _set_attributes(self, parameter_space: ParameterSpace) -> None:
        parameter_space.evaluate(mask=(slice(None), self.post._mask_local))
        conns = self.nest_connections
        if len(conns) == 0:
            return
        src = self.pre.id_to_index(np.fromiter(conns.sources(), dtype=np.int64))
        tgt = self.post.id_to_index(np.fromiter(conns.targets(), dtype=np.int64))
        for name, value in parameter_space.items():
            if name == "delay":
                self._check_delays(value)
                continue
            value = np.broadcast_to(np.asarray(value, dtype=float), (self.pre.size, self.post.size))
            conns.set({name: value[src, tgt].tolist()})

    def _values(self, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        conns = self.nest_connections
        if len(conns) == 0:
            return np.zeros(0, int), np.zeros(0, int), np.zeros(0)
        got = conns.get(["source", "target", name], output="")
        return (self.pre.id_to_index(np.asarray(got["source"])), self.post.id_to_index(np.asarray(got["target"])),
                np.asarray(got[name], dtype=float))

    def _get_attributes_as_arrays(self, names: list[str], multiple_synapses: str = "sum") -> list[np.ndarray]:
        out = []
        for name in names:
            attr = name[:-1] if name.endswith("s") and name[:-1] in ("weight", "delay") else name
            arr = np.full((self.pre.size, self.post.size), np.nan)
            i, j, v = self._values(attr)
            arr[i, j] = v
            out.append(arr)
        return out

    def _get_attributes_as_list(self, names: list[str]) -> list[tuple]:
        columns = []
        for name in names:
            if name in ("presynaptic_index", "postsynaptic_index"):
                i, j, _ = self._values("weight")
                columns.append(i if name == "presynaptic_index" else j)
            else:
                columns.append(self._values(name)[2])
        return list(zip(*(c.tolist() for c in columns)))


# ---------------------------------------------------------------------------------------------- hooks

def _population_new(cls: type, *args: Any, **kwargs: Any) -> Any:
    cellclass = args[1] if len(args) > 1 else kwargs.get("cellclass")
    eprop = isinstance(cellclass, EpropCellType) or (isinstance(cellclass, type) and issubclass(cellclass,
                                                                                                 EpropCellType))
    return object.__new__(EpropPopulation if cls is pynn_nest.Population and eprop else cls)


def _projection_new(cls: type, *args: Any, **kwargs: Any) -> Any:
    synapse_type = args[3] if len(args) > 3 else kwargs.get("synapse_type")
    eprop = isinstance(synapse_type, EpropSynapseType)
    post = args[1] if len(args) > 1 else kwargs.get("postsynaptic_population")
    if not eprop and any(isinstance(getattr(p, "celltype", None), EpropCellType)
                         for p in getattr(post, "populations", [post])):
        raise EpropConnectionError(f"{type(synapse_type).__name__}: postsynaptic population "
                                   f"{getattr(post, 'label', post)!r} has an e-prop cell type; connections onto "
                                   "e-prop cells use EpropSynapse or FeedbackSynapse")
    return object.__new__(EpropProjection if cls is pynn_nest.Projection and eprop else cls)


pynn_nest.Population.__new__ = _population_new  # type: ignore[assignment]
pynn_nest.Projection.__new__ = _projection_new  # type: ignore[assignment]
pynn_nest.setup = setup
