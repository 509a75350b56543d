"""The canonical e-prop parameter vocabulary.

One table per concept (recurrent neuron, readout, optimizer, synapse, network).  Each row holds
name, default, unit, allowed range and meaning; defaults, validation, the documentation tables and
the per-backend translation tables are all derived from these rows, never written again.

Names follow PyNN where PyNN has a word (``tau_m``, ``cm``, ``v_rest``, ``v_thresh``,
``tau_refrac``, ``i_offset``) and NEST's e-prop names elsewhere (``c_reg``, ``f_target``,
``kappa``, ``surrogate_gradient_*``, ``eta``, ``batch_size``), in snake case.  Units are PyNN's:
ms, mV, nA, nF, Hz.  Voltages are absolute (as in PyNN); the models work relative to ``v_rest``.
E-prop weights are voltage jumps in mV and feedback weights are dimensionless.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping

__all__ = [
    "ParameterError",
    "Parameter",
    "RECURRENT",
    "READOUT",
    "OPTIMIZER",
    "SYNAPSE",
    "NETWORK",
    "RECURRENT_MODELS",
    "SURROGATE_FUNCTIONS",
    "LOSSES",
    "OPTIMIZERS",
    "FAMILIES",
    "FEEDBACK_MODES",
    "applies",
    "complete",
    "to_steps",
    "parameter_table_rst",
]


class ParameterError(ValueError):
    """An e-prop parameter has a value outside its allowed range, or an unknown name."""


@dataclass(frozen=True)
class Parameter:
    """One row of a parameter table.

    Attributes
    ----------
    name : str
        Canonical name.
    default : Any
        Default value (``None`` where the row says what ``None`` means).
    unit : str
        Unit of the value ("ms", "mV", "nA", "nF", "Hz", "1" for dimensionless, "" for flags/names).
    allowed : str
        Human-readable allowed range, used verbatim in error messages.
    check : callable
        Returns True for an allowed value.
    doc : str
        Meaning.
    models : tuple of str or None
        Recurrent models the row applies to (None: all).
    families : tuple of str or None
        Families the row applies to (None: both).
    """

    name: str
    default: Any
    unit: str
    allowed: str
    check: Callable[[Any], bool]
    doc: str
    models: tuple[str, ...] | None = None
    families: tuple[str, ...] | None = None


def _real(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _positive(x: Any) -> bool:
    return _real(x) and x > 0


def _non_negative(x: Any) -> bool:
    return _real(x) and x >= 0


def _unit_interval(x: Any) -> bool:
    return _real(x) and 0.0 <= x <= 1.0


def _open_unit_interval(x: Any) -> bool:
    return _real(x) and 0.0 <= x < 1.0


def _bool(x: Any) -> bool:
    return isinstance(x, bool)


def _one_of(*names: str) -> Callable[[Any], bool]:
    return lambda x: x in names


def _optional(check: Callable[[Any], bool]) -> Callable[[Any], bool]:
    return lambda x: x is None or check(x)


def _positive_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) and x >= 1


FAMILIES = ("original", "event")
RECURRENT_MODELS = {
    # model name: families it exists in
    "iaf": ("original", "event"),
    "iaf_adapt": ("original", "event"),
    "iaf_psc_delta": ("event",),
    "iaf_psc_delta_adapt": ("event",),
}
ADAPTIVE_MODELS = ("iaf_adapt", "iaf_psc_delta_adapt")
PSC_DELTA_MODELS = ("iaf_psc_delta", "iaf_psc_delta_adapt")
SURROGATE_FUNCTIONS = ("piecewise_linear", "exponential", "fast_sigmoid_derivative", "arctan_derivative")
LOSSES = ("mean_squared_error", "cross_entropy")
OPTIMIZERS = ("gradient_descent", "adam")
FEEDBACK_MODES = ("random", "symmetric_initial", "symmetric")

P = Parameter

RECURRENT: tuple[Parameter, ...] = (
    P("tau_m", 10.0, "ms", "> 0", _positive, "Membrane time constant."),
    P("cm", 0.25, "nF", "> 0", _positive, "Membrane capacitance (scales only i_offset)."),
    P("v_rest", -70.0, "mV", "finite", _real, "Leak (resting) potential E_L; voltages below are absolute."),
    P("v_thresh", -55.0, "mV", "finite, >= v_min", _real, "Spike threshold (base threshold if adaptive)."),
    P("v_min", None, "mV", "finite or None (no lower bound)", _optional(_real), "Lower clamp of the membrane potential."),
    P("v_reset", -70.0, "mV", "finite", _real, "Reset potential after a spike (hard reset).", models=PSC_DELTA_MODELS),
    P("tau_refrac", 2.0, "ms", ">= 0, a whole number of dt", _non_negative, "Refractory period."),
    P("i_offset", 0.0, "nA", "finite", _real, "Constant input current (NEST I_e)."),
    P("surrogate_gradient_function", "piecewise_linear", "", "one of " + ", ".join(SURROGATE_FUNCTIONS),
      _one_of(*SURROGATE_FUNCTIONS), "Surrogate gradient (pseudo-derivative) psi(v - threshold)."),
    P("surrogate_gradient_height", 0.3, "1/mV", "> 0", _positive, "Height h of the surrogate gradient."),
    P("surrogate_gradient_width", 1.0, "mV", "> 0", _positive, "Width w of the surrogate gradient."),
    P("c_reg", 0.0, "1", ">= 0", _non_negative, "Firing-rate regularisation strength."),
    P("f_target", 10.0, "Hz", ">= 0", _non_negative, "Target firing rate of the regularisation."),
    P("kappa", 0.97, "1", "0 <= kappa <= 1", _unit_interval,
      "Low-pass factor of the eligibility trace filter (event family).", families=("event",)),
    P("kappa_reg", 0.97, "1", "0 <= kappa_reg <= 1", _unit_interval,
      "Low-pass factor of the firing-rate estimate (event family).", families=("event",)),
    P("regular_spike_arrival", True, "", "True or False", _bool,
      "True: an arriving spike adds w to v; False: (1 - exp(-dt/tau_m)) w (TensorFlow form).",
      families=("original",)),
    P("tau_a", 10.0, "ms", "> 0", _positive, "Adaptation time constant.", models=ADAPTIVE_MODELS),
    P("beta", 1.0, "mV", ">= 0", _non_negative, "Adaptation strength (threshold increase per unit of a).",
      models=ADAPTIVE_MODELS),
    P("isi_trace_cutoff", None, "ms", "> 0 or None (no cutoff)", _optional(_positive),
      "Integrate eligibility traces at most this long after each presynaptic spike (event family).",
      families=("event",)),
)

READOUT: tuple[Parameter, ...] = (
    P("tau_m", 10.0, "ms", "> 0", _positive, "Readout membrane time constant."),
    P("cm", 0.25, "nF", "> 0", _positive, "Readout capacitance (scales only i_offset)."),
    P("v_rest", -70.0, "mV", "finite", _real,
      "Readout leak potential E_L; the mean-squared-error readout signal is the absolute potential."),
    P("v_min", None, "mV", "finite or None (no lower bound)", _optional(_real), "Lower clamp of the readout potential."),
    P("i_offset", 0.0, "nA", "finite", _real, "Constant input current."),
    P("loss", "mean_squared_error", "", "one of " + ", ".join(LOSSES), _one_of(*LOSSES),
      "Loss: mean squared error (regression) or softmax cross-entropy (classification, original family)."),
    P("regular_spike_arrival", True, "", "True or False", _bool,
      "As for recurrent neurons (original family).", families=("original",)),
    P("isi_trace_cutoff", None, "ms", "> 0 or None (no cutoff)", _optional(_positive),
      "ISI trace cutoff of the readout synapses (event family).", families=("event",)),
)

OPTIMIZER: tuple[Parameter, ...] = (
    P("type", "gradient_descent", "", "one of " + ", ".join(OPTIMIZERS), _one_of(*OPTIMIZERS), "Weight optimizer."),
    P("eta", 1e-4, "1", ">= 0", _non_negative, "Learning rate."),
    P("batch_size", 1, "1", "integer >= 1", _positive_int,
      "Gradients averaged per update: sequences (original family) or time steps (event family)."),
    P("beta_1", 0.9, "1", "0 <= beta_1 < 1", _open_unit_interval, "Adam: first-moment decay."),
    P("beta_2", 0.999, "1", "0 <= beta_2 < 1", _open_unit_interval, "Adam: second-moment decay."),
    P("epsilon", 1e-7, "1", ">= 0", _non_negative, "Adam: added to sqrt(v) (TF1 form)."),
    P("w_min", -100.0, "mV", "finite, <= w_max", _real, "Lower weight bound."),
    P("w_max", 100.0, "mV", "finite, >= w_min", _real, "Upper weight bound."),
    P("optimize_each_step", True, "", "True or False", _bool,
      "Event family: run the optimizer every time step (True) or once per presynaptic spike.",
      families=("event",)),
)

SYNAPSE: tuple[Parameter, ...] = (
    P("average_gradient", False, "", "True or False", _bool,
      "Original family: divide the gradient by the learning-window length.", families=("original",)),
    P("tau_m_readout", None, "ms", "> 0 or None (the readout tau_m)", _optional(_positive),
      "Original family: time constant of the eligibility-trace filter kappa = exp(-dt/tau_m_readout).",
      families=("original",)),
)

NETWORK: tuple[Parameter, ...] = (
    P("family", "original", "", "one of " + ", ".join(FAMILIES), _one_of(*FAMILIES),
      "Model family: 'original' (NEST *_bsshslm_2020, TensorFlow-equivalent) or 'event' (NEST eprop_*)."),
    P("dt", 1.0, "ms", "> 0", _positive, "Simulation resolution."),
    P("sequence", 1000.0, "ms", "> 0, a whole number of dt", _positive,
      "Length of one sequence; in the original family also the update interval (neurons reset at its start)."),
    P("learning_window", None, "ms", "0 < learning_window <= sequence, or None (= sequence)", _optional(_positive),
      "Original family: the error counts only in the last learning_window of each sequence."),
    P("feedback", "random", "", "one of " + ", ".join(FEEDBACK_MODES), _one_of(*FEEDBACK_MODES),
      "Feedback weights B: 'random' (given), 'symmetric_initial' (B = initial W_out^T) or 'symmetric' "
      "(B tracks W_out^T after every update; not expressible with NEST's built-in models)."),
)

TABLES: dict[str, tuple[Parameter, ...]] = {
    "recurrent": RECURRENT,
    "readout": READOUT,
    "optimizer": OPTIMIZER,
    "synapse": SYNAPSE,
    "network": NETWORK,
}


def applies(row: Parameter, family: str | None, model: str | None) -> bool:
    """True if the row exists for this family and recurrent model (None: any)."""
    if row.families is not None and family is not None and family not in row.families:
        return False
    if row.models is not None and model is not None and model not in row.models:
        return False
    return True


def complete(
    table: str,
    values: Mapping[str, Any] | None = None,
    *,
    family: str | None = None,
    model: str | None = None,
    where: str | None = None,
) -> dict[str, Any]:
    """Validate ``values`` against a table and fill in defaults.

    The whole dictionary is checked before anything is returned (NEST's ``ptmp`` pattern).

    Parameters
    ----------
    table : str
        One of ``recurrent``, ``readout``, ``optimizer``, ``synapse``, ``network``.
    values : mapping, optional
        User values, in the canonical units of the table.
    family : str, optional
        Model family; rows of the other family are rejected if given.
    model : str, optional
        Recurrent model name (``iaf``, ``iaf_adapt``, ``iaf_psc_delta``, ``iaf_psc_delta_adapt``).
    where : str, optional
        Prefix for error messages (for example ``"populations[1].params"``).

    Returns
    -------
    dict
        All applicable parameters with values.

    Raises
    ------
    ParameterError
        For an unknown name, a name that does not apply to the family/model, or a value out of range.
    """
    if table not in TABLES:
        raise ParameterError(f"table = {table!r}: allowed values are {', '.join(TABLES)}")
    rows = TABLES[table]
    prefix = f"{where or table}."
    if values is not None and not isinstance(values, Mapping):
        raise ParameterError(f"{where or table} = {values!r}: allowed values are a mapping of parameter names to values")
    values = dict(values or {})
    by_name = {row.name: row for row in rows}
    out: dict[str, Any] = {}
    for name in values:
        if not isinstance(name, str):
            raise ParameterError(f"{prefix}{name!r}: parameter names are strings; valid names are {', '.join(sorted(by_name))}")
        if name not in by_name:
            valid = sorted(row.name for row in rows if applies(row, family, model))
            raise ParameterError(f"{prefix}{name}: unknown parameter; valid names are {', '.join(valid)}")
        row = by_name[name]
        if not applies(row, family, model):
            scope = f"family {family!r}" if row.families and family not in row.families else f"model {model!r}"
            raise ParameterError(f"{prefix}{name}: does not apply to {scope}")
    for row in rows:
        if not applies(row, family, model):
            continue
        value = values.get(row.name, row.default)
        if isinstance(value, int) and not isinstance(value, bool) and row.unit not in ("", "1") and _real(value):
            value = float(value)
        if isinstance(row.default, float) and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not row.check(value):
            unit = f" {row.unit}" if row.unit not in ("", "1") else ""
            raise ParameterError(f"{prefix}{row.name} = {value!r}{unit}: allowed range is {row.allowed}")
        out[row.name] = value
    return out


def to_steps(duration_ms: float, dt: float, name: str, *, allow_zero: bool = True) -> int:
    """Convert a duration to a whole number of time steps.

    Raises
    ------
    ParameterError
        If the duration is not a number, not a whole multiple of ``dt`` (to 1e-9 relative) or is negative.
    """
    if not _real(duration_ms):
        raise ParameterError(f"{name} = {duration_ms!r}: allowed values are finite numbers of ms")
    if not _positive(dt):
        raise ParameterError(f"dt = {dt!r} ms: allowed range is > 0")
    steps = duration_ms / dt
    n = int(round(steps))
    if duration_ms < 0 or abs(steps - n) > 1e-9 * max(1.0, abs(steps)) or (n == 0 and not allow_zero):
        need = "a positive" if not allow_zero else "a non-negative"
        raise ParameterError(f"{name} = {duration_ms!r} ms: must be {need} whole number of dt = {dt} ms")
    return n


def parameter_table_rst(table: str) -> str:
    """Render one table as an RST list-table for the documentation."""
    lines = [
        ".. list-table::",
        "   :header-rows: 1",
        "",
        "   * - name",
        "     - default",
        "     - unit",
        "     - allowed",
        "     - meaning",
    ]
    for row in TABLES[table]:
        scope = []
        if row.families:
            scope.append("family " + "/".join(row.families))
        if row.models:
            scope.append("models " + ", ".join(row.models))
        meaning = row.doc + (f" ({'; '.join(scope)})" if scope else "")
        lines += [
            f"   * - ``{row.name}``",
            f"     - ``{row.default!r}``",
            f"     - {row.unit or '-'}",
            f"     - {row.allowed}",
            f"     - {meaning}",
        ]
    return "\n".join(lines) + "\n"
