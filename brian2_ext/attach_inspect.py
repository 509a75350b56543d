"""Read a user's Brian2 objects into canonical e-prop values, or explain why they do not fit.

:mod:`brian2_ext.attach` trains the canonical e-prop model; this module decides what that model is
for a given Brian2 network.  Every check raises :class:`IncompatibleModelError` (a
:class:`~eprop_plugins.parameters.ParameterError`) naming the Brian2 object, the offending string
or value, what the e-prop family needs instead, and what to write.

Values are read in SI (as Brian2 stores them) and divided by the canonical unit (``w / mV``): a
weight typed as ``W*mV`` can come back one ulp away from ``W`` (Brian2 multiplies by 0.001).  The
equivalent scenario uses the value as read, so training equals the reference for the model as
stored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from eprop_plugins.parameters import ParameterError

__all__ = ["IncompatibleModelError", "EPROP_SLOTS", "RecurrentModel", "read_recurrent", "read_synapses", "read_inputs",
           "quantity_to_canonical", "common_dt"]

#: canonical units (eprop_plugins.parameters) that Brian2 quantities are converted to
CANONICAL_UNITS = ("ms", "mV", "nA", "nF", "Hz", "1/mV")


def _unit(name: str):
    """The Brian2 unit of a canonical unit name."""
    b2 = _b2()
    return {"ms": b2.ms, "mV": b2.mV, "nA": b2.nA, "nF": b2.nF, "Hz": b2.Hz, "1/mV": 1 / b2.mV}[name]


#: Brian2 schedule slots between the state update and the threshold test: a reset or spike delivery
#: there acts after this step's decay on the previous step's spikes, as the original family does
EPROP_SLOTS = ("after_groups", "before_thresholds")


class IncompatibleModelError(ParameterError):
    """The user's Brian2 model is not one the attached e-prop family describes."""


def _b2():
    import brian2

    return brian2


def quantity_to_canonical(value: Any, unit: str, where: str) -> Any:
    """A number in the canonical unit from a Brian2 quantity (numbers pass through unchanged).

    Raises
    ------
    ParameterError
        If ``value`` is a quantity of another dimension than ``unit``.
    """
    b2 = _b2()
    if not isinstance(value, b2.Quantity):
        return value
    if unit not in CANONICAL_UNITS:
        if not value.is_dimensionless:
            raise ParameterError(f"{where} = {value}: expected a plain number ({unit or 'no unit'})")
        arr = np.asarray(value, dtype=float)
        return float(arr) if arr.ndim == 0 else arr
    target = _unit(unit)
    if value.dim is not target.dim:
        raise ParameterError(
            f"{where} = {value}: expected a quantity in {unit} (dimensions {b2.get_unit(target.dim)}), "
            f"got dimensions {b2.get_unit(value.dim)}"
        )
    arr = np.asarray(value) / float(target)
    return float(arr) if arr.ndim == 0 else arr


def _name(obj) -> str:
    return f"{type(obj).__name__} '{obj.name}'"


def _fmt(value) -> str:
    """A short display of a Brian2 quantity."""
    return str(value)


def _evaluate(owner, expr: str, namespace: Mapping[str, Any], where: str):
    """Value of an expression in the context of a Brian2 group: one scalar Quantity.

    Group variables must hold one value for all neurons (the e-prop parameters are per group).
    """
    b2 = _b2()
    from brian2.core.functions import Function
    from brian2.core.variables import Constant, Variable
    from brian2.utils.stringtools import get_identifiers

    ns: dict[str, Any] = {}
    for ident in sorted(get_identifiers(expr)):
        try:
            obj = owner._resolve(ident, run_namespace=namespace, user_identifier=False)
        except KeyError:
            raise IncompatibleModelError(
                f"{where}: '{ident}' in '{expr}' is neither a variable of {_name(owner)} nor in its namespace "
                f"(pass namespace=... to attach_eprop)"
            ) from None
        if isinstance(obj, Function):
            ns[ident] = obj.pyfunc
        elif isinstance(obj, Constant):
            ns[ident] = b2.Quantity(obj.value, dim=obj.dim)
        elif isinstance(obj, Variable):
            vals = np.asarray(obj.get_value()).ravel()
            if vals.size == 0:
                raise IncompatibleModelError(f"{where}: '{ident}' in '{expr}' has no values")
            if np.any(vals != vals[0]):
                raise IncompatibleModelError(
                    f"{where}: '{ident}' in '{expr}' differs across neurons ({vals.min()} .. {vals.max()}); "
                    f"the e-prop parameters hold one value per group: make it uniform or split the group"
                )
            ns[ident] = b2.Quantity(vals[0], dim=obj.dim)
        else:  # pragma: no cover - Brian2 resolves to one of the above
            ns[ident] = obj
    try:
        value = eval(expr, {"__builtins__": {}}, ns)  # noqa: S307 - Brian2 model strings of the user
    except Exception as exc:  # a dimension error, for example
        raise IncompatibleModelError(f"{where}: cannot evaluate '{expr}': {exc}") from None
    return value if isinstance(value, b2.Quantity) else b2.Quantity(value)


def _in_unit(value, unit_name: str, where: str, what: str) -> float:
    """A scalar quantity as a number in a canonical unit, with a dimension check."""
    b2 = _b2()
    unit = _unit(unit_name)
    if b2.get_dimensions(value) is not unit.dim:
        raise IncompatibleModelError(f"{where}: {what} has dimensions {b2.get_dimensions(value)}, expected those of {unit_name}")
    return float(np.asarray(value) / float(unit))


def common_dt(objects) -> float:
    """The one resolution of all objects, in ms."""
    b2 = _b2()
    dts = {(o.name, float(o.clock.dt_)) for o in objects}
    values = {d for _, d in dts}
    if len(values) != 1:
        listing = ", ".join(f"{n}: {d / 1e-3} ms" for n, d in sorted(dts))
        raise IncompatibleModelError(f"the objects run on different clocks ({listing}); e-prop needs one dt")
    return float(np.asarray(next(iter(objects)).clock.dt) / float(b2.ms))


# ----------------------------------------------------------------------------- statements
_STATEMENT = re.compile(r"^\s*([A-Za-z_]\w*)\s*(\+=|-=|\*=|/=|=)\s*(.+?)\s*$")


def _statements(code: str) -> list[tuple[str, str, str]]:
    out = []
    for line in code.splitlines():
        line = line.split("#", 1)[0].strip()
        for part in filter(None, (p.strip() for p in line.split(";"))):
            m = _STATEMENT.match(part)
            out.append((m.group(1), m.group(2), m.group(3)) if m else ("", "?", part))
    return out


# ----------------------------------------------------------------------------- recurrent group
@dataclass
class RecurrentModel:
    """What the user's recurrent NeuronGroup means in canonical e-prop terms.

    ``params`` holds the canonical recurrent parameters read from the model (ms, mV, nA, nF);
    ``notes`` lists what differs when Brian2 itself simulates the user's group (documentation).
    """

    model: str
    params: dict[str, Any]
    voltage: str
    notes: list[str] = field(default_factory=list)


def _sympy(expr: str):
    from brian2.parsing.sympytools import str_to_sympy

    return str_to_sympy(expr)


def _to_str(expr) -> str:
    from brian2.parsing.sympytools import sympy_to_str

    return sympy_to_str(expr)


def read_recurrent(group, namespace: Mapping[str, Any], voltage: str = "v", family: str = "original") -> RecurrentModel:
    """Check a recurrent NeuronGroup and read its canonical parameters.

    Parameters
    ----------
    group : brian2.NeuronGroup
    namespace : mapping
        External names of the user's model strings (Brian2's run namespace).
    voltage : str
        Name of the membrane potential.
    family : str
        'original' (the only family brian2_ext runs so far).

    Raises
    ------
    IncompatibleModelError
        Naming what is missing or incompatible and what to write instead.
    """
    b2 = _b2()
    import sympy

    where = _name(group)
    if not isinstance(group, b2.NeuronGroup):
        raise IncompatibleModelError(f"recurrent: expected a brian2.NeuronGroup, got {type(group).__name__}")
    eqs = group.user_equations
    if voltage not in eqs.diff_eq_names:
        raise IncompatibleModelError(
            f"{where}: no differential equation for '{voltage}' (found {sorted(eqs.diff_eq_names) or 'none'}); "
            f"e-prop needs a leaky membrane, e.g. 'd{voltage}/dt = (v_rest - {voltage})/tau_m : volt' "
            f"(pass voltage='...' if the potential has another name)"
        )
    eq = eqs[voltage]
    if eq.dim is not b2.volt.dim:
        raise IncompatibleModelError(f"{where}: '{voltage}' has dimensions {eq.dim}; the e-prop membrane potential is a voltage")
    notes: list[str] = []

    # ---- dv/dt = (v_rest - v)/tau_m + i_offset/cm, nothing else
    method = getattr(group.state_updater, "method_choice", None)
    if method not in (None, "exact", "linear", "independent"):
        raise IncompatibleModelError(
            f"{where}: method={method!r} does not integrate the leak exactly; e-prop's leak factor is "
            f"exp(-dt/tau_m): use method='exact'"
        )
    f = _sympy(str(eq.expr))
    sub_names = {name for name in eqs.subexpr_names}
    for _ in range(10):  # expand subexpressions (possibly nested)
        used = {str(s) for s in f.free_symbols} & sub_names
        if not used:
            break
        f = f.subs({sympy.Symbol(n, real=True): _sympy(str(eqs[n].expr)) for n in used})
        f = f.subs({sympy.Symbol(n): _sympy(str(eqs[n].expr)) for n in used})
    v = next((s for s in f.free_symbols if str(s) == voltage), None)
    others = sorted(str(s) for s in f.free_symbols if str(s) in eqs.diff_eq_names and str(s) != voltage)
    if others:
        raise IncompatibleModelError(
            f"{where}: d{voltage}/dt depends on the state variable(s) {', '.join(others)}; e-prop's LIF has "
            f"delta synapses (a spike adds w to {voltage}) and no other dynamics in the membrane equation"
        )
    if v is None:
        raise IncompatibleModelError(f"{where}: d{voltage}/dt = {eq.expr} has no leak; e-prop needs (v_rest - {voltage})/tau_m")
    f = sympy.expand(f)
    a = sympy.diff(f, v)
    if v in a.free_symbols:
        raise IncompatibleModelError(f"{where}: d{voltage}/dt = {eq.expr} is not linear in {voltage}")
    # evaluate tau_m itself (not 1/(1/tau_m), which can be one ulp off) and v_rest as (term * tau_m)
    tau_expr = sympy.simplify(-1 / a)
    tau = _evaluate(group, _to_str(tau_expr), namespace, where)
    if b2.get_dimensions(tau) is not b2.second.dim or float(tau) <= 0:
        raise IncompatibleModelError(f"{where}: the leak of d{voltage}/dt = {eq.expr} must be -{voltage}/tau_m with tau_m > 0")
    tau_m = _in_unit(tau, "ms", where, "tau_m")
    v_rest, i_offset, cm = 0.0, 0.0, None
    for term in sympy.Add.make_args(sympy.expand(f.subs(v, 0))):
        if term == 0:
            continue
        value = _evaluate(group, _to_str(term), namespace, where)
        currents = [s for s in term.free_symbols
                    if b2.get_dimensions(_evaluate(group, str(s), namespace, where)) is b2.amp.dim]
        if len(currents) == 1 and cm is None and i_offset == 0.0:
            i = _evaluate(group, str(currents[0]), namespace, where)
            i_offset = _in_unit(i, "nA", where, f"current '{currents[0]}'")
            if i_offset != 0.0:  # the capacitance matters only through the current: term = I/cm
                cm = _in_unit(i / value, "nF", where, f"capacitance of the term '{_to_str(term)}'")
        elif not currents:
            rest = _evaluate(group, _to_str(sympy.simplify(term * tau_expr)), namespace, where)
            v_rest += _in_unit(rest, "mV", where, f"the term '{_to_str(term)}' times tau_m")
        else:
            raise IncompatibleModelError(
                f"{where}: cannot read the input term '{_to_str(term)}' of d{voltage}/dt; e-prop's LIF takes "
                f"(v_rest - {voltage})/tau_m plus one constant current I/C"
            )

    # ---- refractoriness
    dt = float(np.asarray(group.clock.dt) / float(b2.ms))
    ref = group._refractory
    if ref is False:
        tau_refrac = 0.0
    elif isinstance(ref, b2.Quantity):
        tau_refrac = _in_unit(ref, "ms", where, "refractory")
    else:
        raise IncompatibleModelError(
            f"{where}: refractory={ref!r} is an expression; e-prop's refractory period is a fixed number of "
            f"steps: pass a duration, e.g. refractory=2*ms"
        )
    n_ref = tau_refrac / dt
    if abs(n_ref - round(n_ref)) > 1e-9 * max(1.0, n_ref):
        raise IncompatibleModelError(
            f"{where}: refractory={ref} is not a whole number of dt = {dt} ms (e-prop counts refractory steps)")
    tau_refrac = round(n_ref) * dt
    if "unless refractory" in eq.flags and round(n_ref) > 0:
        if family == "original":
            raise IncompatibleModelError(
                f"{where}: '(unless refractory)' freezes {voltage} for {ref}; the original e-prop family keeps "
                f"integrating {voltage} while refractory (only spikes and the surrogate gradient are blocked): "
                f"remove the flag, or use refractory=0*ms"
            )

    # ---- threshold: v > v_th or v >= v_th
    thr_code = group.events.get("spike")
    if thr_code is None:
        raise IncompatibleModelError(f"{where}: no threshold; e-prop neurons spike at '{voltage} >= v_thresh'")
    rel = _sympy(thr_code)
    ok = isinstance(rel, (sympy.StrictGreaterThan, sympy.GreaterThan, sympy.StrictLessThan, sympy.LessThan))
    if ok and isinstance(rel, (sympy.StrictGreaterThan, sympy.GreaterThan)):
        lhs, rhs = rel.lhs, rel.rhs
    elif ok:
        lhs, rhs = rel.rhs, rel.lhs
    if not ok or lhs != v or v in rhs.free_symbols:
        raise IncompatibleModelError(
            f"{where}: threshold '{thr_code}' must compare {voltage} with the threshold parameter v_thresh, "
            f"as '{voltage} >= v_thresh' (or '>'), nothing else"
        )
    thr_val = _evaluate(group, _to_str(rhs), namespace, where)
    v_thresh = _in_unit(thr_val, "mV", where, f"threshold '{_to_str(rhs)}'")
    if isinstance(rel, (sympy.StrictGreaterThan, sympy.StrictLessThan)):
        notes.append(f"threshold '{thr_code}' uses '>': e-prop spikes at v >= v_thresh (differs only at equality)")

    # ---- reset: v -= (v_thresh - v_rest), one statement
    reset_code = group.event_codes.get("spike", "")
    stmts = _statements(reset_code)
    advice_original = (f"the original e-prop family subtracts the threshold one step later: use "
                       f"reset='{voltage} -= {_to_str(rhs)}'" + (" (minus v_rest)" if v_rest else ""))
    if not stmts:
        raise IncompatibleModelError(f"{where}: no reset; {advice_original}")
    if len(stmts) > 1 or stmts[0][0] != voltage:
        raise IncompatibleModelError(
            f"{where}: reset '{reset_code.strip()}' must be one statement on {voltage} "
            f"(adaptation and other reset variables are not supported yet); {advice_original}"
        )
    _, op, rhs_code = stmts[0]
    amount = None
    if op == "-=":
        amount = rhs_code
    elif op == "=":
        expr = _sympy(rhs_code)
        if v in expr.free_symbols:
            rest = sympy.expand(v - expr)
            if v not in rest.free_symbols:
                amount = _to_str(rest)
        else:
            raise IncompatibleModelError(
                f"{where}: reset '{reset_code.strip()}' is a hard reset; {advice_original} "
                f"(a hard reset to v_reset is the event family's iaf_psc_delta, which brian2_ext does not run yet)"
            )
    if amount is None:
        raise IncompatibleModelError(f"{where}: reset '{reset_code.strip()}' is not a subtractive reset; {advice_original}")
    sub = _in_unit(_evaluate(group, amount, namespace, where), "mV", where, f"reset amount '{amount}'")
    if not np.isclose(sub, v_thresh - v_rest, rtol=1e-9, atol=0.0):
        raise IncompatibleModelError(
            f"{where}: reset '{reset_code.strip()}' subtracts {sub} mV; e-prop subtracts the threshold above rest, "
            f"v_thresh - v_rest = {v_thresh - v_rest} mV"
        )
    if group.resetter["spike"].when not in EPROP_SLOTS:
        notes.append(
            f"reset '{reset_code.strip()}' runs in Brian2's '{group.resetter['spike'].when}' slot, in the step of "
            f"the spike, so it decays once; the original family subtracts v_thresh - v_rest one step later, "
            f"undecayed (schedule_like_eprop() moves the reset to 'after_groups', which is exactly that)"
        )
    params = {"tau_m": tau_m, "v_rest": v_rest, "v_thresh": v_thresh, "tau_refrac": tau_refrac, "i_offset": i_offset}
    if cm is not None:
        params["cm"] = cm
    return RecurrentModel(model="iaf", params=params, voltage=voltage, notes=notes)


# ----------------------------------------------------------------------------- synapses
@dataclass
class SynapseReading:
    """A plastic projection read from user Synapses: dense ``[post, pre]`` weights in mV and the arrival factor."""

    weights: np.ndarray
    regular_spike_arrival: bool
    synapses: Any
    notes: list[str] = field(default_factory=list)


def read_synapses(syn, source, target, *, recurrent: bool, voltage: str, tau_m: float, namespace, weight: str = "w"
                  ) -> SynapseReading:
    """Check user Synapses (delta synapses, delay 0, all-to-all) and read their weights.

    Raises
    ------
    IncompatibleModelError
    """
    b2 = _b2()
    import sympy

    where = _name(syn)
    kind = "recurrent" if recurrent else "input"
    if not isinstance(syn, b2.Synapses):
        raise IncompatibleModelError(f"synapses ({kind}): expected brian2.Synapses, got {type(syn).__name__}")
    if syn.source is not source or syn.target is not target:
        raise IncompatibleModelError(
            f"{where}: connects '{syn.source.name}' -> '{syn.target.name}'; the {kind} synapses must connect "
            f"'{source.name}' -> '{target.name}'"
        )
    if weight not in syn.variables or syn.variables[weight].dim is not b2.volt.dim:
        raise IncompatibleModelError(
            f"{where}: needs a weight '{weight} : volt' (an e-prop weight is a voltage jump in mV)")
    paths = [p for p in syn._pathways]
    if len(paths) != 1 or paths[0].prepost != "pre":
        raise IncompatibleModelError(
            f"{where}: has pathways {[p.prepost for p in paths]}; e-prop synapses have one on_pre and no on_post "
            f"(the weight changes come from e-prop)")
    code = paths[0].code
    stmts = _statements(code)
    form = f"on_pre='{voltage}_post += {weight}' (or '{voltage}_post += (1 - exp(-dt/tau_m))*{weight}', TensorFlow form)"
    if len(stmts) != 1 or stmts[0][0] not in (f"{voltage}_post", voltage) or stmts[0][1] != "+=":
        raise IncompatibleModelError(f"{where}: on_pre '{code.strip()}' is not an e-prop delta synapse; use {form}")
    expr = _sympy(stmts[0][2])
    w = next((s for s in expr.free_symbols if str(s) == weight), None)
    coef = sympy.simplify(expr / w) if w is not None else None
    if coef is None or w in coef.free_symbols:
        raise IncompatibleModelError(f"{where}: on_pre '{code.strip()}' is not proportional to '{weight}'; use {form}")
    factor = _evaluate(syn, _to_str(coef), namespace, where)
    if not factor.is_dimensionless:
        raise IncompatibleModelError(f"{where}: on_pre '{code.strip()}' multiplies {weight} by a quantity with units")
    factor = float(factor)
    dt = float(np.asarray(syn.clock.dt) / float(b2.ms))
    tf_factor = 1.0 - np.exp(-dt / tau_m)
    if factor == 1.0:
        regular = True
    elif np.isclose(factor, tf_factor, rtol=1e-12, atol=0.0):
        regular = False
    else:
        raise IncompatibleModelError(
            f"{where}: on_pre '{code.strip()}' adds {factor:g}*{weight}; e-prop adds {weight} (regular spike "
            f"arrival) or (1 - exp(-dt/tau_m))*{weight} = {tf_factor:g}*{weight}; use {form}")
    delays = np.atleast_1d(np.asarray(syn.delay[:]))
    if delays.size and np.any(delays != 0):
        raise IncompatibleModelError(
            f"{where}: delay {syn.delay[:].max()}; e-prop connections have NEST's minimal delay of one step, which "
            f"in Brian2's schedule is delay=0*ms (a spike changes the target after this step's threshold test, "
            f"so it is first seen in the next step): set delay=0*ms")
    i, j = np.asarray(syn.i[:]), np.asarray(syn.j[:])
    n_pre, n_post = len(source), len(target)
    count = np.zeros((n_post, n_pre), dtype=np.int64)
    np.add.at(count, (j, i), 1)
    want = np.ones((n_post, n_pre), dtype=np.int64)
    if recurrent:
        np.fill_diagonal(want, 0)
        if np.any(np.diag(count)):
            raise IncompatibleModelError(
                f"{where}: has autapses (i == j); e-prop's recurrent synapses exclude them: connect(condition='i != j')")
    if np.any(count > 1):
        raise IncompatibleModelError(f"{where}: several synapses per pair; e-prop has one synapse per pair")
    if not np.array_equal(count, want):
        missing = int(np.sum(want - count))
        how = "connect(condition='i != j')" if recurrent else "connect()"
        raise IncompatibleModelError(
            f"{where}: {missing} of {int(want.sum())} pairs are not connected; the e-prop projections are "
            f"all-to-all (a missing synapse would be learned too): {how}, with w = 0*mV where you want no input")
    weights = np.zeros((n_post, n_pre))
    weights[j, i] = np.asarray(syn.variables[weight].get_value()) / float(b2.mV)
    notes = []
    if paths[0].when not in EPROP_SLOTS:
        notes.append(
            f"{where} deliver spikes in Brian2's '{paths[0].when}' slot, after the threshold test, so an arriving "
            f"weight decays once before it is tested; e-prop adds it undecayed in the next step "
            f"(schedule_like_eprop() moves on_pre to 'after_groups', which is exactly that)")
    return SynapseReading(weights=weights, regular_spike_arrival=regular, synapses=syn, notes=notes)


# ----------------------------------------------------------------------------- inputs
def read_inputs(group, sequence_steps: int, dt: float) -> list[np.ndarray]:
    """Emission steps of each input within one sequence, from a SpikeGeneratorGroup.

    Returns
    -------
    list of ndarray
        For each input, the steps (0 .. T-2) at which it emits; the spike arrives one step later.

    Raises
    ------
    IncompatibleModelError
    """
    b2 = _b2()
    where = _name(group)
    if not isinstance(group, b2.SpikeGeneratorGroup):
        raise IncompatibleModelError(
            f"inputs: {type(group).__name__} '{getattr(group, 'name', '?')}' is not supported; e-prop's inputs are "
            f"frozen spike trains: use a SpikeGeneratorGroup"
        )
    T = sequence_steps
    period = float(np.asarray(group.period) / float(b2.ms))
    if period and not np.isclose(period, T * dt, rtol=1e-9):
        raise IncompatibleModelError(
            f"{where}: period {group.period} differs from the sequence ({T * dt} ms); the input pattern is "
            f"replayed once per sequence")
    idx = np.asarray(group._neuron_index, dtype=np.int64)
    times = np.asarray(group._spike_time, dtype=float) / (dt * 1e-3)
    steps = np.round(times).astype(np.int64)
    if np.any(np.abs(times - steps) > 1e-6):
        raise IncompatibleModelError(f"{where}: spike times must be multiples of dt = {dt} ms")
    if np.any(steps >= T):
        raise IncompatibleModelError(
            f"{where}: spikes at t >= {T * dt} ms (the sequence); give one sequence of input, it is replayed "
            f"every sequence")
    late = np.nonzero(steps == T - 1)[0]
    if late.size:
        raise IncompatibleModelError(
            f"{where}: input {idx[late[0]]} spikes at t = {(T - 1) * dt} ms, the last step of the sequence; it would "
            f"arrive in the first step of the next sequence, which the original family drops (NEST "
            f"*_bsshslm_2020): remove it")
    return [np.sort(steps[idx == k]) for k in range(len(group))]
