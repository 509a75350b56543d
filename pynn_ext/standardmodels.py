"""Abstract PyNN standard types of e-prop: cells, synapses, optimizers (plain PyNN, no simulator).

The types follow PyNN's ``StandardCellType`` / ``StandardSynapseType`` pattern and are generated from
the parameter tables of :mod:`eprop_plugins.parameters` (defaults, units and documentation are never
written a second time here).  A simulator's glue module (``pynn_ext.nest``, ``pynn_ext.brian2``) adds
the translations; this module imports no simulator.

Parameters and options
    A table row whose default is a real number is a PyNN parameter: it lives in the type's
    ``parameter_space``, may differ between neurons, and ``Population.set``/``get`` reach it.  A row
    whose default is a name, a flag or ``None`` (``surrogate_gradient_function``, ``loss``,
    ``regular_spike_arrival``, ``v_min``, ``isi_trace_cutoff``, ...) is an *option* of the whole
    population: a keyword of the constructor, validated there, held in ``options``.  ``family`` is an
    option of every type ("original": Bellec et al. 2020, NEST ``*_bsshslm_2020``; "event": NEST 3.10
    ``eprop_*``); one network uses one family.

Signals
    The target signal and the event family's learning-window signal are per-readout time series,
    given as PyNN ``Sequence`` parameters of :class:`EpropReadout`: ``target`` holds the target of
    each time step from t = 0 (one value per step, ``out.set(target=Sequence(values))`` or one
    ``Sequence`` per readout), ``learning_window_signal`` the per-step factor on the error (event
    family; empty = 1 throughout).  The update interval and learning window of the original family
    (``sequence``, ``learning_window``, from the network table) are options of :class:`EpropReadout`.

Units
    PyNN's: ms, mV, nA, nF, Hz.  E-prop weights are voltage jumps in mV, feedback weights are
    dimensionless; the delay of every e-prop connection is one time step.
"""

from __future__ import annotations

import sys
from typing import Any

from pyNN.errors import ConnectionError as PyNNConnectionError
from pyNN.errors import NonExistentParameterError
from pyNN.parameters import Sequence
from pyNN.standardmodels import StandardCellType, StandardSynapseType
from pyNN.standardmodels.cells import SpikeSourceArray, SpikeSourcePoisson

from eprop_plugins.parameters import (
    ADAPTIVE_MODELS,
    FAMILIES,
    NETWORK,
    OPTIMIZER,
    READOUT,
    RECURRENT,
    RECURRENT_MODELS,
    SYNAPSE,
    Parameter,
    ParameterError,
    applies,
    complete,
)

__all__ = [
    "EpropCellType",
    "EpropRecurrentType",
    "EpropIF",
    "EpropIFAdaptive",
    "EpropIFPscDelta",
    "EpropIFPscDeltaAdaptive",
    "EpropReadout",
    "EpropOptimizer",
    "GradientDescent",
    "Adam",
    "EpropSynapseType",
    "EpropSynapse",
    "FeedbackSynapse",
    "RECURRENT_TYPES",
    "is_parameter",
    "time_step",
    "note_setup",
    "UnknownParameterError",
    "EpropConnectionError",
    "check_projection",
    "join_family",
]

#: network-table rows that are options of the readout (original family: update interval and window)
READOUT_NETWORK_ROWS = ("sequence", "learning_window")


class UnknownParameterError(ParameterError, NonExistentParameterError):
    """An unknown parameter name: PyNN's ``NonExistentParameterError`` and the project's ``ParameterError``.

    The message names the parameter, the type and the valid names.
    """

    def __init__(self, parameter_name: str, model_name: str, valid_parameter_names: list[str], detail: str = ""):
        self.parameter_name, self.model_name = parameter_name, model_name
        self.valid_parameter_names = sorted(valid_parameter_names)
        ValueError.__init__(self, f"{model_name}: {parameter_name!r} is not a parameter of {model_name}{detail}; "
                                  f"valid names are {', '.join(self.valid_parameter_names)}")

    def __str__(self) -> str:
        return str(self.args[0])


def is_parameter(row: Parameter) -> bool:
    """A row with a real-number default is a PyNN parameter; names, flags and None defaults are options."""
    return isinstance(row.default, (int, float)) and not isinstance(row.default, bool)


def _unit(unit: str) -> str:
    """A table unit as a ``quantities`` unit string (PyNN's ``units``)."""
    return "dimensionless" if unit in ("", "1") else unit


def _check_family(type_name: str, family: Any, allowed: tuple[str, ...]) -> str:
    if family not in allowed:
        raise ParameterError(f"{type_name}: family = {family!r}: allowed values are {', '.join(allowed)}")
    return family


def _split(type_name: str, rows: tuple[Parameter, ...], given: dict[str, Any], family: str,
           model: str | None, extra: tuple[str, ...] = ()) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split user keywords into PyNN parameters and options; unknown names list the valid ones."""
    valid = [r.name for r in rows if applies(r, family, model)] + list(extra)
    for name in given:
        if name not in valid:
            raise UnknownParameterError(name, type_name, ["family", *valid], f" (family {family!r})")
    options = {r.name: given[r.name] for r in rows if r.name in given and not is_parameter(r)}
    params = {r.name: given[r.name] for r in rows if r.name in given and is_parameter(r)}
    return params, options


class EpropCellType(StandardCellType):
    """Base of the e-prop cell types: family-dependent defaults generated from a parameter table.

    ``default_parameters``, ``units`` and ``recordable`` are set per instance because they depend on
    the family; the class attributes hold those of the class's default family.
    """

    table: tuple[Parameter, ...] = ()
    table_name = ""
    model: str | None = None
    families: tuple[str, ...] = FAMILIES
    default_family = "original"
    receptor_types = ("default",)
    conductance_based = False
    #: Sequence parameters besides the table's (the readout's signals)
    signals: tuple[str, ...] = ()
    #: recordable name -> unit (``None``: the unit of the readout signal, which depends on the loss)
    recordable_units: dict[str, str | None] = {}

    @classmethod
    def rows(cls, family: str) -> tuple[Parameter, ...]:
        """The table rows of this type in ``family``."""
        return tuple(r for r in cls.table if applies(r, family, cls.model))

    @classmethod
    def defaults(cls, family: str) -> dict[str, Any]:
        """PyNN default parameters in ``family`` (rows with real defaults)."""
        return {r.name: r.default for r in cls.rows(family) if is_parameter(r)}

    def __init__(self, family: str | None = None, **parameters: Any) -> None:
        name = type(self).__name__
        self.family = _check_family(name, self.default_family if family is None else family, self.families)
        params, options = _split(name, self.rows(self.family), parameters, self.family, self.model, self.signals)
        # validate everything at once, with the canonical checks (ranges, allowed names)
        self.options = {k: v for k, v in self.canonical(params, options).items()
                        if k in options or not is_parameter(self.row(k))}
        self.default_parameters = self.defaults(self.family)
        self.units = self.make_units()
        self.recordable = list(self.recordable_units)
        StandardCellType.__init__(self, **params)
        # the membrane starts at rest, as in the model contract (docs/model.rst §1)
        self.default_initial_values = {"v": self.parameter_space["v_rest"]}

    @classmethod
    def row(cls, name: str) -> Parameter:
        """The table row of ``name``."""
        return next(r for r in cls.table if r.name == name)

    def canonical(self, params: dict[str, Any], options: dict[str, Any]) -> dict[str, Any]:
        """Validated canonical values (parameters given as scalars are checked; arrays per neuron are
        checked by the glue when they are evaluated)."""
        scalars = {k: v for k, v in params.items() if isinstance(v, (int, float))}
        return complete(self.table_name, {**scalars, **options}, family=self.family, model=self.model,
                        where=type(self).__name__)

    def make_units(self) -> dict[str, str]:
        """Units of parameters and recordables."""
        units = {r.name: _unit(r.unit) for r in self.rows(self.family)}
        for name, unit in self.recordable_units.items():
            units[name] = unit if unit is not None else self.signal_unit()
        return units

    def signal_unit(self) -> str:
        """Unit of the readout and learning signals: mV (mean squared error) or dimensionless."""
        return "mV"

    def has_parameter(self, name: str) -> bool:  # type: ignore[override]  # family-dependent
        return name in self.default_parameters

    def get_parameter_names(self) -> list[str]:  # type: ignore[override]  # family-dependent
        return list(self.default_parameters)

    def describe(self, template: str = "modeltype_default.txt", engine: str = "default") -> Any:
        return f"{type(self).__name__}(family={self.family!r}, options={self.options!r})"


RECURRENT_RECORDABLES_DOC = (
    "Recordables: ``spikes``, ``v`` (mV), ``psi`` (surrogate gradient, 1/mV), ``learning_signal`` (the unit "
    "of the readout signal) and, for adaptive types, ``adaptation`` (dimensionless) and ``v_th_adapt`` "
    "(adapted threshold, mV).")


class EpropRecurrentType(EpropCellType):
    """A recurrent e-prop neuron: LIF membrane, surrogate gradient, eligibility traces, learning signal.

    See ``RECURRENT_RECORDABLES_DOC`` for the recordables and the generated class docstrings for the
    parameters.
    """

    table = RECURRENT
    table_name = "recurrent"
    recordable_units = {"spikes": "dimensionless", "v": "mV",
                        "psi": _unit(next(r.unit for r in RECURRENT if r.name == "surrogate_gradient_height")),
                        "learning_signal": None}

    def make_units(self) -> dict[str, str]:
        units = super().make_units()
        if self.model in ADAPTIVE_MODELS:
            units["adaptation"] = "dimensionless"
            units["v_th_adapt"] = units["v_thresh"]
        return units

    def __init__(self, family: str | None = None, **parameters: Any) -> None:
        super().__init__(family, **parameters)
        if self.model in ADAPTIVE_MODELS:
            self.recordable += ["adaptation", "v_th_adapt"]


def _recurrent_type(class_name: str, model: str, summary: str) -> type[EpropRecurrentType]:
    families = RECURRENT_MODELS[model]
    rows = tuple(r for r in RECURRENT if applies(r, None, model))
    lines = [f"    {r.name} : {r.unit or '-'} (default {r.default!r}{'' if is_parameter(r) else ', option'})"
             f"{' [' + '/'.join(r.families) + ']' if r.families else ''}\n        {r.doc}" for r in rows]
    doc = (f"{summary} (canonical model ``{model}``; families {', '.join(families)}).\n\n"
           f"{RECURRENT_RECORDABLES_DOC}\n\nParameters\n----------\n"
           + "\n".join(lines) + "\n")
    return type(class_name, (EpropRecurrentType,),
                {"__doc__": doc, "model": model, "families": families, "default_family": families[0],
                 "default_parameters": {r.name: r.default for r in rows
                                        if is_parameter(r) and applies(r, families[0], model)},
                 "__module__": __name__})


EpropIF = _recurrent_type("EpropIF", "iaf", "Recurrent e-prop LIF neuron")
EpropIFAdaptive = _recurrent_type("EpropIFAdaptive", "iaf_adapt", "Recurrent e-prop adaptive LIF neuron (ALIF)")
EpropIFPscDelta = _recurrent_type("EpropIFPscDelta", "iaf_psc_delta",
                                  "Recurrent e-prop LIF neuron with delta synapses and v_reset")
EpropIFPscDeltaAdaptive = _recurrent_type("EpropIFPscDeltaAdaptive", "iaf_psc_delta_adapt",
                                          "Recurrent e-prop adaptive LIF neuron with delta synapses and v_reset")

#: canonical recurrent model -> its PyNN type
RECURRENT_TYPES: dict[str, type[EpropRecurrentType]] = {
    t.model: t for t in (EpropIF, EpropIFAdaptive, EpropIFPscDelta, EpropIFPscDeltaAdaptive)  # type: ignore[misc]
}

_READOUT_ROWS = READOUT + tuple(r for r in NETWORK if r.name in READOUT_NETWORK_ROWS)


class EpropReadout(EpropCellType):
    """E-prop readout neuron: leaky integrator, readout signal, error and learning signal source.

    Parameters are the readout table of :mod:`eprop_plugins.parameters` plus the original family's
    ``sequence`` (update interval, ms) and ``learning_window`` (ms) options, and two ``Sequence``
    parameters: ``target`` (target signal of each time step from t = 0; one-hot class for
    cross-entropy) and ``learning_window_signal`` (event family: per-step factor on the error; empty
    means 1).  Recordables: ``v`` (mV), ``readout_signal`` and ``target`` and ``error`` (mV for mean
    squared error, dimensionless for cross-entropy).
    """

    table = _READOUT_ROWS
    table_name = "readout"
    signals = ("target", "learning_window_signal")
    recordable_units = {"v": "mV", "readout_signal": None, "target": None, "error": None}
    default_parameters = {**{r.name: r.default for r in READOUT if is_parameter(r)},
                          "target": Sequence([]), "learning_window_signal": Sequence([])}

    @classmethod
    def rows(cls, family: str) -> tuple[Parameter, ...]:
        return tuple(r for r in cls.table if applies(r, family, None)
                     and (r.name not in READOUT_NETWORK_ROWS or family == "original"))

    @classmethod
    def defaults(cls, family: str) -> dict[str, Any]:
        out = {r.name: r.default for r in cls.rows(family) if is_parameter(r) and r.name not in READOUT_NETWORK_ROWS}
        out["target"] = Sequence([])
        if family == "event":
            out["learning_window_signal"] = Sequence([])
        return out

    def __init__(self, family: str | None = None, **parameters: Any) -> None:
        fam = self.default_family if family is None else family
        signals = {k: parameters.pop(k) for k in ("target", "learning_window_signal") if k in parameters}
        if "learning_window_signal" in signals and fam != "event":
            raise ParameterError("EpropReadout: 'learning_window_signal' is a parameter of the event family only; "
                                 "the original family uses the 'learning_window' option")
        network = {k: parameters.pop(k) for k in READOUT_NETWORK_ROWS if k in parameters}
        if network and fam != "original":
            raise ParameterError(f"EpropReadout: {', '.join(map(repr, network))} are options of the original "
                                 "family (its update interval and learning window); the event family uses "
                                 "'learning_window_signal'")
        super().__init__(family, **parameters)
        net = complete("network", {"family": self.family, **network}) if self.family == "original" else {}
        self.options.update({k: net[k] for k in READOUT_NETWORK_ROWS if k in net})
        if self.options["loss"] == "cross_entropy" and self.family != "original":
            raise ParameterError("EpropReadout: loss = 'cross_entropy' exists in the original family only; "
                                 "allowed values in the event family are mean_squared_error")
        self.units = self.make_units()
        if signals:
            self.parameter_space.update(**{k: (Sequence(v) if not isinstance(v, Sequence) and _is_flat(v) else v)
                                           for k, v in signals.items()})

    def canonical(self, params: dict[str, Any], options: dict[str, Any]) -> dict[str, Any]:
        scalars = {k: v for k, v in params.items() if isinstance(v, (int, float))}
        opts = {k: v for k, v in options.items() if k not in READOUT_NETWORK_ROWS}
        return complete("readout", {**scalars, **opts}, family=self.family, where="EpropReadout")

    def signal_unit(self) -> str:
        return "mV" if getattr(self, "options", {}).get("loss", "mean_squared_error") == "mean_squared_error" \
            else "dimensionless"

    def make_units(self) -> dict[str, str]:
        units = super().make_units()
        units["target"] = units["learning_window_signal"] = self.signal_unit()
        units["learning_window_signal"] = "dimensionless"
        return units


#: PyNN simulator modules whose ``simulator.state.dt`` gives the time step of ``delay=None``
SIMULATORS = ("pyNN.nest", "pyNN.brian2", "pyNN.spiNNaker", "spynnaker.pyNN")


#: the PyNN simulator module whose ``setup`` ran last (``note_setup``): decides when several are imported
LAST_SETUP: dict[str, str | None] = {"simulator": None}


def note_setup(simulator: str) -> None:
    """Record that ``simulator`` (for example ``"pyNN.nest"``) was just set up (the package's glue calls this)."""
    LAST_SETUP["simulator"] = simulator


def time_step() -> float:
    """The time step of the PyNN simulator in use, ms (e-prop delays are one step).

    The one PyNN simulator imported in this process or, when several are, the one set up last.

    Raises
    ------
    ParameterError
        No PyNN simulator is imported, or several are and none was set up (then give ``delay`` explicitly).
    """
    loaded = [m for m in SIMULATORS if m in sys.modules
              and hasattr(getattr(sys.modules[m], "simulator", None), "state")]
    if len(loaded) > 1 and LAST_SETUP["simulator"] in loaded:
        loaded = [LAST_SETUP["simulator"]]
    if len(loaded) != 1:
        raise ParameterError("delay = None: the time step is ambiguous before exactly one PyNN simulator is set up; "
                             "give delay = the time step (ms) explicitly")
    return float(sys.modules[loaded[0]].simulator.state.dt)


def _is_flat(value: Any) -> bool:
    """True for a flat sequence of numbers (one time series for every readout)."""
    try:
        return all(isinstance(x, (int, float)) for x in value)
    except TypeError:
        return False


class EpropOptimizer:
    """Weight optimizer of an :class:`EpropSynapse`: canonical optimizer parameters, validated.

    ``family``-specific names (``optimize_each_step``: event family) are checked when the synapse
    joins a network of a family (:meth:`complete`).
    """

    type = "gradient_descent"
    _names = tuple(r.name for r in OPTIMIZER if r.name != "type")

    def __init__(self, **parameters: Any) -> None:
        self.parameters = dict(parameters)
        complete("optimizer", {"type": self.type, **self.parameters}, where=type(self).__name__)

    def complete(self, family: str) -> dict[str, Any]:
        """All canonical optimizer values of ``family`` (the scenario's ``optimizer`` dictionary)."""
        return complete("optimizer", {"type": self.type, **self.parameters}, family=family,
                        where=type(self).__name__)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.parameters.items())
        return f"{type(self).__name__}({args})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, EpropOptimizer) and (self.type, self.parameters) == (other.type, other.parameters)


def _optimizer_doc(kind: str) -> str:
    rows = [r for r in OPTIMIZER if r.name != "type" and (kind == "adam" or not r.name.startswith(("beta_", "eps")))]
    return "\n".join(f"    {r.name} : {r.unit or '-'} (default {r.default!r})\n        {r.doc}" for r in rows)


class GradientDescent(EpropOptimizer):
    __doc__ = "Plain gradient descent, w <- w - eta * g, clipped to [w_min, w_max].\n\nParameters\n----------\n" \
              + _optimizer_doc("gradient_descent")
    type = "gradient_descent"


class Adam(EpropOptimizer):
    __doc__ = "Adam (TF1 form, epsilon added to sqrt(v)), clipped to [w_min, w_max].\n\nParameters\n----------\n" \
              + _optimizer_doc("adam")
    type = "adam"


class EpropSynapseType(StandardSynapseType):
    """Base of the e-prop synapse types: ``weight`` (per connection), ``delay`` (one time step)."""

    default_parameters = {"weight": 0.0, "delay": None}
    units = {"weight": "mV", "delay": "ms"}
    parameter_checks: dict[str, Any] = {}  # weights of either sign; the delay is checked by the glue

    def __init__(self, **parameters: Any) -> None:
        unknown = [k for k in parameters if k not in self.default_parameters]
        if unknown:
            raise UnknownParameterError(unknown[0], type(self).__name__,
                                        [*self.default_parameters, *self.option_names()])
        StandardSynapseType.__init__(self, **parameters)

    @classmethod
    def option_names(cls) -> list[str]:
        return []

    def _get_minimum_delay(self) -> float:  # PyNN's hook for ``delay=None``: one time step
        return time_step()


class EpropSynapse(EpropSynapseType):
    """Plastic e-prop synapse (input -> recurrent, recurrent -> recurrent, recurrent -> readout).

    Parameters
    ----------
    weight : mV
        Initial weight (voltage jump), per connection.
    delay : ms
        Must be one time step (None: the time step).
    optimizer : EpropOptimizer
        :class:`GradientDescent` (default) or :class:`Adam`; shared by the projection's synapses.
    average_gradient, tau_m_readout : options
        Synapse table of :mod:`eprop_plugins.parameters` (original family).
    """

    def __init__(self, optimizer: EpropOptimizer | None = None, **parameters: Any) -> None:
        syn_names = [r.name for r in SYNAPSE]
        self.synapse_options = {k: parameters.pop(k) for k in syn_names if k in parameters}
        if optimizer is not None and not isinstance(optimizer, EpropOptimizer):
            raise ParameterError(f"EpropSynapse: optimizer = {optimizer!r}: allowed values are GradientDescent(...) "
                                 "or Adam(...)")
        self.optimizer = optimizer if optimizer is not None else GradientDescent()
        complete("synapse", self.synapse_options, where="EpropSynapse")
        super().__init__(**parameters)

    @classmethod
    def option_names(cls) -> list[str]:
        return ["optimizer", *(r.name for r in SYNAPSE)]

    def synapse_parameters(self, family: str) -> dict[str, Any]:
        """Canonical synapse options of ``family`` (the scenario's ``synapse`` dictionary)."""
        return complete("synapse", self.synapse_options, family=family, where="EpropSynapse")


class FeedbackSynapse(EpropSynapseType):
    """Learning-signal connection readout -> recurrent neuron with a fixed feedback weight B.

    Parameters
    ----------
    weight : dimensionless
        Feedback weight B_jk, per connection.
    delay : ms
        Must be one time step (None: the time step).
    """

    units = {"weight": "dimensionless", "delay": "ms"}


class EpropConnectionError(ParameterError, PyNNConnectionError):
    """A projection e-prop cannot use: PyNN's ``ConnectionError`` and the project's ``ParameterError``."""


def _role(population: Any) -> str:
    parts = getattr(population, "populations", None)  # an Assembly: the role of all its populations
    if parts is not None:
        roles = {_role(p) for p in parts}
        return roles.pop() if len(roles) == 1 else "mixed"
    celltype = getattr(population, "celltype", None)
    if isinstance(celltype, EpropRecurrentType):
        return "recurrent"
    if isinstance(celltype, EpropReadout):
        return "readout"
    if isinstance(celltype, (SpikeSourceArray, SpikeSourcePoisson)):
        return "input"
    return "other"


def _celltypes(population: Any) -> list[Any]:
    parts = getattr(population, "populations", None)
    return [p.celltype for p in parts] if parts is not None else [getattr(population, "celltype", None)]


def join_family(state: Any, family: str, where: str) -> None:
    """Record the network's family on ``state`` (attributes ``family``, ``family_owner``); refuse a second one.

    Raises
    ------
    ParameterError
        ``family`` differs from the family the network already uses.
    """
    if state.family is None:
        state.family, state.family_owner = family, where
    elif state.family != family:
        raise ParameterError(f"{where}: family = {family!r}, but this network uses family {state.family!r} "
                             f"(from {state.family_owner}); one network uses one e-prop family")


def check_projection(pre: Any, post: Any, synapse_type: Any, dt: float) -> str:
    """Check an e-prop projection (roles of the populations, one family, delay of one step); return the family.

    Plastic :class:`EpropSynapse`: from inputs (``SpikeSourceArray``, ``SpikeSourcePoisson``) or
    recurrent e-prop neurons onto recurrent neurons or readouts.  :class:`FeedbackSynapse`: from
    readouts onto recurrent neurons.

    Raises
    ------
    EpropConnectionError
        A population of the wrong kind, two families, or a delay other than ``dt``.
    """
    name = type(synapse_type).__name__
    pre_role, post_role = _role(pre), _role(post)
    pre_type, post_type = (type(getattr(p, "celltype", p)).__name__ for p in (pre, post))
    if isinstance(synapse_type, FeedbackSynapse):
        if pre_role != "readout":
            raise EpropConnectionError(f"{name}: presynaptic population {pre.label!r} has cell type {pre_type}; "
                                       "feedback (learning-signal) synapses come from an EpropReadout")
        if post_role != "recurrent":
            raise EpropConnectionError(f"{name}: postsynaptic population {post.label!r} has cell type {post_type}; "
                                       "feedback synapses go to recurrent e-prop neurons (EpropIF, ...)")
    else:
        if post_role not in ("recurrent", "readout"):
            raise EpropConnectionError(f"{name}: postsynaptic population {post.label!r} has cell type {post_type}, "
                                       "not an e-prop cell type (EpropIF, EpropIFAdaptive, ..., EpropReadout)")
        if pre_role not in ("input", "recurrent"):
            raise EpropConnectionError(f"{name}: presynaptic population {pre.label!r} has cell type {pre_type}; "
                                       "plastic e-prop synapses come from SpikeSourceArray, SpikeSourcePoisson or "
                                       "recurrent e-prop neurons")
    families = {c.family for c in (*_celltypes(pre), *_celltypes(post)) if isinstance(c, EpropCellType)}
    if len(families) > 1:
        raise EpropConnectionError(f"{name}: the populations use the families {', '.join(sorted(families))}; "
                                   "one network uses one e-prop family")
    delay = synapse_type.parameter_space["delay"]
    if isinstance(delay.base_value, (int, float)) and not delay.operations:
        value = float(delay.base_value)
        if abs(value - dt) > 1e-9 * dt:
            raise EpropConnectionError(f"{name}: delay = {value} ms: e-prop connections have a delay of one time "
                                       f"step ({dt} ms)")
    return families.pop()
