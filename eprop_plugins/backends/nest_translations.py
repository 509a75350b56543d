"""Canonical parameters -> NEST parameter names and units (shared by ``nest-builtin`` and ``nestml``).

PyNN's ``build_translations`` pattern: a row ``(canonical, nest_name)`` renames, a row
``(canonical, nest_name, factor)`` scales (NEST value = factor x canonical value).  E-prop weights
are voltage jumps and translate 1:1.  ``None`` values (no bound / no cutoff) are left at NEST's
default, which means the same thing.  NEST reads ``f_target`` back in spikes/ms: use
:func:`from_nest` to undo that.  The ×1000 unit factors (nA -> pA, nF -> pF) live only in these
tables.  :func:`model_names` derives the NEST model names from the canonical model list and
:func:`synapse_defaults` translates the optimizer so that NEST accepts every validated bound.
"""

from __future__ import annotations

from typing import Any

from ..parameters import FAMILIES, RECURRENT_MODELS

__all__ = [
    "RECURRENT",
    "READOUT",
    "OPTIMIZER",
    "SYNAPSE",
    "model_names",
    "to_nest",
    "synapse_defaults",
    "from_nest",
]

Row = tuple  # (canonical, nest[, factor])

RECURRENT: tuple[Row, ...] = (
    ("tau_m", "tau_m"),
    ("cm", "C_m", 1000.0),  # nF -> pF
    ("v_rest", "E_L"),
    ("v_thresh", "V_th"),
    ("v_min", "V_min"),
    ("v_reset", "V_reset"),
    ("tau_refrac", "t_ref"),
    ("i_offset", "I_e", 1000.0),  # nA -> pA
    ("surrogate_gradient_function", "surrogate_gradient_function"),
    ("surrogate_gradient_height", "surrogate_gradient_height"),
    ("surrogate_gradient_width", "surrogate_gradient_width"),
    ("c_reg", "c_reg"),
    ("f_target", "f_target"),
    ("kappa", "kappa"),
    ("kappa_reg", "kappa_reg"),
    ("regular_spike_arrival", "regular_spike_arrival"),
    ("tau_a", "adapt_tau"),
    ("beta", "adapt_beta"),
    ("isi_trace_cutoff", "eprop_isi_trace_cutoff"),
)

READOUT: tuple[Row, ...] = (
    ("tau_m", "tau_m"),
    ("cm", "C_m", 1000.0),
    ("v_rest", "E_L"),
    ("v_min", "V_min"),
    ("i_offset", "I_e", 1000.0),
    ("loss", "loss"),
    ("regular_spike_arrival", "regular_spike_arrival"),
    ("isi_trace_cutoff", "eprop_isi_trace_cutoff"),
)

OPTIMIZER: tuple[Row, ...] = (
    ("type", "type"),
    ("eta", "eta"),
    ("batch_size", "batch_size"),
    ("beta_1", "beta_1"),
    ("beta_2", "beta_2"),
    ("epsilon", "epsilon"),
    ("w_min", "Wmin"),
    ("w_max", "Wmax"),
    ("optimize_each_step", "optimize_each_step"),
)

SYNAPSE: tuple[Row, ...] = (
    ("average_gradient", "average_gradient"),
    ("tau_m_readout", "tau_m_readout"),
)

def model_names(family: str, nestml: bool = False) -> dict[str, str]:
    """NEST model names of one family, derived from :data:`~eprop_plugins.parameters.RECURRENT_MODELS`.

    The rule: NEST names a model ``eprop_<model>``, with the suffix ``_bsshslm_2020`` in the original
    family (the model of Bellec et al. 2020); the project's NESTML models add ``_neuron`` (no clash
    with NEST's built-ins).  The plastic synapse and the learning-signal connection are always NEST's
    own, also for NESTML (docs/nestml.rst).

    Parameters
    ----------
    family : {"original", "event"}
        The e-prop family.
    nestml : bool
        Names of the NESTML neuron models instead of NEST's built-in ones.

    Returns
    -------
    dict
        Keys: the canonical recurrent models of ``family``, ``"readout"``, ``"synapse"`` and
        ``"feedback"``; values: NEST model names.
    """
    if family not in FAMILIES:
        raise ValueError(f"family = {family!r}: allowed values are {', '.join(FAMILIES)}")
    suffix = "_bsshslm_2020" if family == "original" else ""
    neuron = suffix + ("_neuron" if nestml else "")
    names = {model: f"eprop_{model}{neuron}" for model, families in RECURRENT_MODELS.items() if family in families}
    names["readout"] = f"eprop_readout{neuron}"
    names["synapse"] = f"eprop_synapse{suffix}"
    names["feedback"] = f"eprop_learning_signal_connection{suffix}"
    return names


# optimizer keys that only exist for one optimizer type in NEST
_ADAM_ONLY = ("beta_1", "beta_2", "epsilon")


def to_nest(table: tuple[Row, ...], values: dict[str, Any]) -> dict[str, Any]:
    """Translate validated canonical values to a NEST status dictionary.

    Parameters not present in ``values`` (for example family-specific ones) and ``None`` values are
    omitted.  For the optimizer table, Adam-only keys are dropped for gradient descent.
    """
    out: dict[str, Any] = {}
    for row in table:
        name, nest_name = row[0], row[1]
        if name not in values or values[name] is None:
            continue
        if table is OPTIMIZER and name in _ADAM_ONLY and values.get("type") != "adam":
            continue
        value = values[name]
        if len(row) == 3:
            value = value * row[2]
        out[nest_name] = value
    return out


#: NEST's default weight of a connection model (the e-prop synapses check it against Wmin/Wmax)
NEST_DEFAULT_WEIGHT = 1.0


def synapse_defaults(optimizer: dict[str, Any]) -> dict[str, Any]:
    """``SetDefaults`` status of NEST's e-prop synapse models for a validated canonical optimizer.

    When the bounds change, NEST checks the model's default weight against them and refuses bounds
    that exclude it (``BadProperty: weight ≤ maximal weight Wmax required.`` for ``w_max < 1``).
    The default weight is therefore set inside ``[w_min, w_max]`` in the same call (NEST sets the
    optimizer first, then checks the weight); every connection gets its own weight, so the default
    is never used and any bounds the scenario accepts run.

    Returns
    -------
    dict
        ``{"optimizer": ..., "weight": ...}``.
    """
    weight = NEST_DEFAULT_WEIGHT
    if optimizer.get("w_min") is not None:
        weight = max(weight, optimizer["w_min"])
    if optimizer.get("w_max") is not None:
        weight = min(weight, optimizer["w_max"])
    return {"optimizer": to_nest(OPTIMIZER, optimizer), "weight": float(weight)}


def from_nest(table: tuple[Row, ...], status: dict[str, Any]) -> dict[str, Any]:
    """Translate a NEST status dictionary back to canonical names and units.

    ``f_target`` is read back by NEST in spikes/ms; it is converted to Hz here.
    """
    out: dict[str, Any] = {}
    for row in table:
        name, nest_name = row[0], row[1]
        if nest_name not in status:
            continue
        value = status[nest_name]
        if len(row) == 3:
            value = value / row[2]
        if name == "f_target":
            value = value * 1000.0
        out[name] = value
    return out
