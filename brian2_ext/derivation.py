"""E-prop derived symbolically from a Brian2 NeuronGroup's own equations.

Bellec et al. (2020, Methods) define e-prop for any neuron with a hidden state ``h``: the
eligibility vector ``eps = dh/dW_ji`` (taken through the neuron's own dynamics only) and the
eligibility trace ``e = dz/dW_ji``.  :func:`derive` computes every piece of that recursion with sympy
from the objects a user built, *as Brian2 runs them*:

* the one-step map ``F`` is the abstract code of the group's own state updater (``exact``,
  ``euler``, ``rk4``, ... exactly as integrated), including the ``(unless refractory)`` writes;
* the spike is ``z = H(g(u))`` with ``g`` read from the threshold comparison (``v > v_th`` gives
  ``g = v - v_th``); its pseudo-derivative is ``psi(g)`` (one of the four surrogate functions of
  ``docs/model.rst §1``), 0 while refractory;
* the reset is ``h = u + z (R(u) - u)`` with ``R`` the reset statements applied in order;
* each plastic ``Synapses`` adds ``Delta(w)`` to the post variables named in ``on_pre``.

One Brian2 step is a sequence of operations on the state (state update, threshold, spike arrival,
reset, in the order of their schedule slots); each transforms the eligibility vector:

* state update ``u = F(h)``:            ``eps <- J_F(h) eps``;
* threshold ``z = H(g(u))``:             ``e = psi(g(u)) grad g(u) . eps`` (the trace of this step);
* spike arrival ``x += Delta(w)``:       ``eps <- eps + dDelta/dw`` (on a presynaptic spike);
* reset when ``z = 1``:                  ``eps <- (I + dR/du - I) eps + (R(u) - u)~ e``.

``(R(u) - u)~`` keeps the spike-mediated jump of every reset variable except the *stopped* ones:
by default the membrane potential (Bellec's choice: no gradient through the voltage reset), so an
adaptation ``a += 1`` or AdEx's ``w += b`` carries ``psi`` into the adaptation variable while
``v -= v_th`` carries nothing.  The eligibility vector keeps only the state variables the synaptic
input can reach through these operations (:attr:`NeuronDerivation.reach`).

Everything that cannot be derived raises :class:`~brian2_ext.attach_inspect.IncompatibleModelError`
naming the object and the reason; nothing is silently approximated.  See docs/brian2_own_model.rst.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import sympy

from .attach_inspect import IncompatibleModelError

__all__ = ["NeuronDerivation", "SynapticInput", "derive", "surrogate_expression", "NOT_REFRACTORY",
           "SMOOTH_FUNCTIONS"]

#: the symbol standing for ``int(not_refractory)`` of the current step in derived expressions
NOT_REFRACTORY = sympy.Symbol("eprop_not_refractory", real=True)

#: functions whose derivative is defined everywhere they are (the derivation refuses all others)
SMOOTH_FUNCTIONS = {"exp", "log", "sin", "cos", "tan", "sinh", "cosh", "tanh", "sqrt", "arcsin", "arccos",
                    "arctan", "asin", "acos", "atan", "log10", "expm1", "log1p", "exprel"}

def _sym(name: str):
    """A symbol as Brian2's parser makes it (real)."""
    return sympy.Symbol(name, real=True)


_ASSIGN = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=|\+=|-=|\*=|/=)\s*(.+?)\s*$")


def _statements(code: str, where: str) -> list[tuple[str, str, str]]:
    out = []
    for line in re.split(r"[\n;]", code or ""):
        line = line.split("#")[0].strip()
        if not line:
            continue
        m = _ASSIGN.match(line)
        if m is None:
            raise IncompatibleModelError(f"{where}: cannot read the statement '{line}' (expected 'x = ...', "
                                         f"'x += ...', 'x -= ...', 'x *= ...' or 'x /= ...')")
        out.append((m.group(1), m.group(2), m.group(3)))
    return out


def _sympy(expr: str, where: str):
    from brian2.parsing.sympytools import str_to_sympy

    try:
        return str_to_sympy(expr)
    except Exception as exc:  # brian2 raises SyntaxError/TypeError for expressions sympy cannot hold
        raise IncompatibleModelError(f"{where}: cannot turn '{expr}' into a sympy expression ({exc})") from exc


def to_code(expr) -> str:
    """A sympy expression as Brian2 code."""
    from brian2.parsing.sympytools import sympy_to_str

    return sympy_to_str(expr)


def _check_smooth(expr, where: str, what: str) -> None:
    """Refuse functions without a derivative everywhere (abs, clip, floor, sign, int of a state, ...)."""
    if any(type(f).__name__ in ("rand", "randn") for f in expr.atoms(sympy.Function)):
        raise IncompatibleModelError(f"{where}: {what} is random (rand/randn); e-prop needs a deterministic update")
    for f in expr.atoms(sympy.Function):
        name = type(f).__name__
        if name == "int_" and f.args[0].free_symbols <= {_sym("not_refractory")}:
            continue
        if name not in SMOOTH_FUNCTIONS:
            raise IncompatibleModelError(
                f"{where}: {what} uses '{to_code(f)}', which has no derivative where it switches (at an active "
                f"bound of clip, at 0 of abs/sign, at the steps of floor/int); e-prop would use a wrong gradient "
                f"there: write the model without it")
    switches = (sympy.Piecewise, sympy.core.relational.Relational, sympy.logic.boolalg.BooleanFunction)
    for sub in sympy.preorder_traversal(expr):
        if isinstance(sub, switches):
            raise IncompatibleModelError(f"{where}: {what} contains the condition '{to_code(sub)}'; a switch has "
                                         f"no derivative where it switches: write the model without it")


@dataclass
class SynapticInput:
    """What one plastic ``Synapses`` adds to its target per arriving spike: ``x_k += coefficient_k * w``."""

    synapses: Any
    weight: str
    coefficients: dict[str, Any]  # post variable -> sympy d(Delta x)/dw (state-independent)


@dataclass
class NeuronDerivation:
    """The e-prop recursion of one NeuronGroup, as sympy expressions in its own symbols.

    Attributes
    ----------
    group : brian2.NeuronGroup
    states : tuple of str
        Variables the one-step map changes (differential equations, reset and ``on_pre`` targets).
    update : dict of str -> sympy.Expr
        The one-step map ``F`` (Brian2's state updater; :data:`NOT_REFRACTORY` stands for
        ``int(not_refractory)`` of the step).
    refractory_code : str or None
        Brian2's code of ``not_refractory`` for the step (None: no refractoriness).
    threshold : sympy.Expr
        ``g``: the neuron spikes when ``g >= 0`` (``> 0`` if ``strict``); ``psi`` is taken on ``g``.
    strict : bool
    reset : dict of str -> sympy.Expr
        ``R``: each reset variable's value after the reset statements, in terms of the state before.
    stopped : tuple of str
        Reset variables whose spike-mediated jump carries no gradient (default: the membrane
        potential, Bellec's choice).
    inputs : list of SynapticInput
    reach : tuple of str
        The eligibility vector's components: the state variables the synaptic input reaches.
    jacobian : dict of (str, str) -> sympy.Expr
        ``dF_k/dx_l`` for k, l in :attr:`reach` (non-zero entries only).
    grad_threshold : dict of str -> sympy.Expr
        ``dg/dx_k`` for k in :attr:`reach` (non-zero entries only).
    reset_jacobian : dict of (str, str) -> sympy.Expr
        ``dR_k/dx_l - delta_kl`` for reset variables k in :attr:`reach` (non-zero entries only).
    reset_jump : dict of str -> sympy.Expr
        ``R_k - x_k`` for the reset variables in :attr:`reach` that are not stopped (non-zero only).
    dimensions : dict of str -> brian2 Dimension
        Of every state variable.
    unless_refractory : tuple of str
        Variables Brian2 does not integrate while refractory.
    threshold_dimensions : brian2 Dimension
        Of ``g`` (the surrogate width has them, the height their inverse).
    """

    group: Any
    states: tuple[str, ...]
    update: dict[str, Any]
    refractory_code: str | None
    threshold: Any
    strict: bool
    reset: dict[str, Any]
    stopped: tuple[str, ...]
    inputs: list[SynapticInput]
    reach: tuple[str, ...] = ()
    jacobian: dict[tuple[str, str], Any] = field(default_factory=dict)
    grad_threshold: dict[str, Any] = field(default_factory=dict)
    reset_jacobian: dict[tuple[str, str], Any] = field(default_factory=dict)
    reset_jump: dict[str, Any] = field(default_factory=dict)
    dimensions: dict[str, Any] = field(default_factory=dict)
    unless_refractory: tuple[str, ...] = ()
    threshold_dimensions: Any = None

    def describe(self) -> str:
        """A readable summary of the derived recursion (for users and the docs)."""
        lines = [f"NeuronGroup '{self.group.name}': eligibility vector over {', '.join(self.reach) or '(none)'}"]
        for (k, l), e in sorted(self.jacobian.items()):
            lines.append(f"  dF_{k}/d{l} = {to_code(e)}")
        for k, e in sorted(self.grad_threshold.items()):
            lines.append(f"  dg/d{k} = {to_code(e)}   (g = {to_code(self.threshold)})")
        for (k, l), e in sorted(self.reset_jacobian.items()):
            lines.append(f"  reset: dR_{k}/d{l} - delta = {to_code(e)}")
        for k, e in sorted(self.reset_jump.items()):
            lines.append(f"  reset jump through psi: R_{k} - {k} = {to_code(e)}")
        lines.append(f"  no gradient through the reset of: {', '.join(self.stopped) or '(nothing)'}")
        return "\n".join(lines)


def surrogate_expression(function: str, d, height, width):
    """``psi(d)`` of ``docs/model.rst §1`` as a sympy expression (``height``, ``width`` symbols or numbers)."""
    a = sympy.Abs(d) / width
    forms = {
        "piecewise_linear": lambda: height * sympy.Max(0, 1 - a),
        "exponential": lambda: height * sympy.exp(-a),
        "fast_sigmoid_derivative": lambda: height * (1 + a) ** -2,
        "arctan_derivative": lambda: height / (1 + (d / width) ** 2),
    }
    if function not in forms:
        from eprop_plugins.parameters import ParameterError

        raise ParameterError(f"surrogate_gradient_function = {function!r}: valid names are {', '.join(forms)}")
    return forms[function]()


def _state_update(group, namespace: Mapping[str, Any]) -> tuple[dict[str, Any], str | None, tuple[str, ...]]:
    """The one-step map of Brian2's own state updater, composed from its abstract code."""
    where = f"NeuronGroup '{group.name}'"
    if group.equations.stochastic_variables:
        raise IncompatibleModelError(f"{where}: the equations are stochastic (xi); e-prop needs a deterministic "
                                     f"update")
    su = group.state_updater
    su.update_abstract_code(run_namespace=dict(namespace))
    lines = [ln for ln in su.abstract_code.splitlines() if ln.strip()]
    refractory_code = None
    if lines and lines[0].startswith("not_refractory"):
        import brian2 as b2

        if not isinstance(group._refractory, b2.Quantity):
            raise IncompatibleModelError(
                f"{where}: refractory={group._refractory!r} is an expression; the derivation needs a duration "
                f"(e.g. refractory=2*ms)")
        # Brian2's own test, with the duration as a name (the abstract code carries it as a bare number)
        refractory_code = "timestep(t - lastspike, dt) >= timestep(eprop_refractory, dt)"
        lines = lines[1:]
    nr = sympy.Function("int_")(_sym("not_refractory"))
    temps: dict[Any, Any] = {}
    update: dict[str, Any] = {}
    for name, op, rhs in _statements("\n".join(lines), where):
        if op != "=":
            raise IncompatibleModelError(f"{where}: unexpected state-updater statement '{name} {op} {rhs}'")
        expr = _sympy(rhs, where).subs(temps).subs(nr, NOT_REFRACTORY)
        if name.startswith("_"):
            temps[_sym(name)] = expr
        else:
            update[name] = expr
    unless = tuple(eq.varname for eq in group.equations.values()
                   if eq.type == "differential equation" and "unless refractory" in eq.flags
                   and group._refractory is not False)
    for name in unless:  # Brian2 writes these only when not refractory (conditional write)
        update[name] = NOT_REFRACTORY * update[name] + (1 - NOT_REFRACTORY) * _sym(name)
    for name, expr in update.items():
        _check_smooth(expr, where, f"the update of {name} (method '{su.method_choice}')")
    return update, refractory_code, unless


def _threshold(group, states: Sequence[str]):
    where = f"NeuronGroup '{group.name}'"
    code = group.events.get("spike")
    if code is None:
        raise IncompatibleModelError(f"{where}: no threshold; e-prop needs spikes 'z = H(g(state))'")
    rel = _sympy(code, f"{where} threshold")
    if not isinstance(rel, (sympy.StrictGreaterThan, sympy.GreaterThan, sympy.StrictLessThan, sympy.LessThan)):
        raise IncompatibleModelError(
            f"{where}: threshold '{code}' is not one comparison of two differentiable expressions "
            f"(such as 'v > v_th' or 'v > v_th + beta*a'); e-prop takes the pseudo-derivative on their "
            f"difference")
    g = rel.lhs - rel.rhs if isinstance(rel, (sympy.StrictGreaterThan, sympy.GreaterThan)) else rel.rhs - rel.lhs
    _check_smooth(g, where, f"the threshold '{code}'")
    if not {str(s) for s in g.free_symbols} & set(states):
        raise IncompatibleModelError(f"{where}: threshold '{code}' does not depend on a state variable")
    return g, isinstance(rel, (sympy.StrictGreaterThan, sympy.StrictLessThan))


def _reset(group, states: Sequence[str]):
    where = f"NeuronGroup '{group.name}'"
    code = group.event_codes.get("spike", "")
    values: dict[str, Any] = {}
    current = {_sym(s): _sym(s) for s in states}
    for name, op, rhs in _statements(code, f"{where} reset"):
        expr = _sympy(rhs, f"{where} reset")
        names = {str(s) for s in expr.free_symbols}
        bad = sorted(names & {"t", "i", "lastspike", "t_in_timesteps"})
        if bad or any(type(f).__name__ in ("rand", "randn") for f in expr.atoms(sympy.Function)):
            raise IncompatibleModelError(
                f"{where}: reset '{name} {op} {rhs}' is not a function of the neuron's state "
                f"({', '.join(bad) or 'random'}); e-prop differentiates the reset as a map of the state")
        _check_smooth(expr, where, f"the reset '{name} {op} {rhs}'")
        expr = expr.subs(current, simultaneous=True)
        sym = _sym(name)
        old = current.get(sym, sym)
        new = {"=": expr, "+=": old + expr, "-=": old - expr, "*=": old * expr, "/=": old / expr}[op]
        current[sym] = new
        values[name] = new
    return values


def _synaptic_input(syn, group, weight: str) -> SynapticInput:
    where = f"Synapses '{syn.name}'"
    if syn.target is not group:
        raise IncompatibleModelError(f"{where}: targets '{syn.target.name}', not NeuronGroup '{group.name}'")
    if weight not in syn.variables:
        raise IncompatibleModelError(f"{where}: has no weight variable '{weight}'")
    paths = list(syn._pathways)
    if len(paths) != 1 or paths[0].prepost != "pre":
        raise IncompatibleModelError(f"{where}: has pathways {[p.prepost for p in paths]}; a plastic e-prop "
                                     f"synapse has one on_pre and no on_post (e-prop changes its weight)")
    if syn.summed_updaters:
        raise IncompatibleModelError(
            f"{where}: sets the (summed) variable(s) {', '.join(syn.summed_updaters)}; the derivation cannot see "
            f"through a summed variable (its value depends on synaptic state outside the neuron): use on_pre "
            f"increments")
    w = _sym(weight)
    coefficients: dict[str, Any] = {}
    post_states = set(group.variables)
    for name, op, rhs in _statements(paths[0].code, f"{where} on_pre"):
        target = name[:-5] if name.endswith("_post") else name
        if target == weight or target not in post_states or name in syn.equations.names:
            raise IncompatibleModelError(
                f"{where}: on_pre statement '{name} {op} {rhs}' does not increment a variable of "
                f"'{group.name}'; e-prop synapses only add to the postsynaptic state")
        expr = _sympy(rhs, f"{where} on_pre")
        if op == "=":
            expr = expr - _sym(name)
        elif op == "-=":
            expr = -expr
        elif op != "+=":
            raise IncompatibleModelError(f"{where}: on_pre '{name} {op} {rhs}' is not an increment ('+=' or '-=')")
        coef = sympy.diff(expr, w)
        if sympy.simplify(expr - coef * w) != 0 or w in coef.free_symbols:
            raise IncompatibleModelError(f"{where}: on_pre '{name} {op} {rhs}' is not proportional to {weight}")
        names = {str(s) for s in coef.free_symbols}
        dep = sorted(n for n in names if n.endswith("_post") or n.endswith("_pre") or n in syn.equations.names)
        if dep:
            raise IncompatibleModelError(
                f"{where}: on_pre '{name} {op} {rhs}' adds an amount that depends on {', '.join(dep)}; the "
                f"derivation supports increments c*{weight} with a constant c")
        coefficients[target] = coefficients.get(target, 0) + coef
    if not coefficients:
        raise IncompatibleModelError(f"{where}: on_pre '{paths[0].code}' adds nothing to '{group.name}'")
    return SynapticInput(synapses=syn, weight=weight, coefficients=coefficients)


def _nonzero(expr) -> bool:
    return sympy.simplify(expr) != 0


def derive(group, synapses: Sequence[Any], *, namespace: Mapping[str, Any] | None = None, weight: str = "w",
           voltage: str | None = None, stop_reset_gradient: Sequence[str] | None = None) -> NeuronDerivation:
    """Derive the e-prop recursion of ``group`` for plastic input through ``synapses``.

    Parameters
    ----------
    group : brian2.NeuronGroup
        The recurrent group (its equations, method, threshold, reset, refractory as given).
    synapses : sequence of brian2.Synapses
        The plastic Synapses targeting ``group`` (their ``on_pre`` must add ``c * weight`` to post
        variables, c constant).
    namespace : mapping, optional
        External names of the model strings (as for ``Network.run``); default: the group's own.
    weight : str
        Name of the plastic weight in every Synapses.
    voltage : str, optional
        The membrane potential (default: ``'v'`` if it is a state variable, else the threshold's
        only reset variable).
    stop_reset_gradient : sequence of str, optional
        Reset variables whose spike-mediated jump carries no gradient; default ``(voltage,)``
        (Bellec's choice); ``()`` differentiates every reset.

    Raises
    ------
    IncompatibleModelError
        Naming the object and the reason, for anything that cannot be derived.
    """
    import brian2 as b2

    where = f"NeuronGroup '{getattr(group, 'name', '?')}'"
    if not isinstance(group, b2.NeuronGroup):
        raise IncompatibleModelError(f"{where}: expected a brian2.NeuronGroup, got {type(group).__name__}")
    ns = dict(group.namespace or {}) if namespace is None else dict(namespace)
    update, refractory_code, unless = _state_update(group, ns)
    inputs = [_synaptic_input(s, group, weight) for s in synapses]
    reset_vars = [n for n, _, _ in _statements(group.event_codes.get("spike", ""), f"{where} reset")]
    states = list(update)
    for name in reset_vars + [k for inp in inputs for k in inp.coefficients]:
        if name not in states:
            if name not in group.variables or getattr(group.variables[name], "read_only", False):
                raise IncompatibleModelError(f"{where}: '{name}' is not a writable variable of the group")
            states.append(name)
            update[name] = _sym(name)  # not integrated: constant between resets and arrivals
    g, strict = _threshold(group, states)
    reset = _reset(group, states)
    if voltage is None:
        thr_vars = [s for s in states if _sym(s) in g.free_symbols]
        voltage = "v" if "v" in states else (thr_vars[0] if len(thr_vars) == 1 else None)
        if voltage is None:
            raise IncompatibleModelError(f"{where}: cannot tell the membrane potential among {', '.join(states)}: "
                                         f"pass voltage='<name>'")
    elif voltage not in states:
        raise IncompatibleModelError(f"{where}: voltage '{voltage}' is not a state variable ({', '.join(states)})")
    stopped = tuple(stop_reset_gradient) if stop_reset_gradient is not None else (voltage,)
    syms = {s: _sym(s) for s in states}

    def d(expr, var):
        return sympy.diff(expr, syms[var])

    # reach: the input's variables, closed under the update, the reset and the spike-mediated jumps
    jump_all = {k: sympy.simplify(reset[k] - syms[k]) for k in reset if k not in stopped}
    reach = {k for inp in inputs for k, c in inp.coefficients.items() if _nonzero(c)}
    while True:
        new = set(reach)
        for l in reach:
            new |= {k for k in states if _nonzero(d(update[k], l))}
            new |= {k for k in reset if _nonzero(d(reset[k], l) - (1 if k == l else 0))}
            if _nonzero(d(g, l)):
                new |= {k for k, j in jump_all.items() if _nonzero(j)}
        if new == reach:
            break
        reach = new
    order = tuple(s for s in states if s in reach)
    jac = {(k, l): d(update[k], l) for k in order for l in order if _nonzero(d(update[k], l))}
    grad_g = {k: d(g, k) for k in order if _nonzero(d(g, k))}
    rjac = {(k, l): d(reset[k], l) - (1 if k == l else 0) for k in reset if k in reach for l in order
            if _nonzero(d(reset[k], l) - (1 if k == l else 0))}
    rjump = {k: j for k, j in jump_all.items() if k in reach and _nonzero(j)}
    dims = {s: group.variables[s].dim for s in states}
    out = NeuronDerivation(group=group, states=tuple(states), update=update, refractory_code=refractory_code,
                           threshold=g, strict=strict, reset=reset, stopped=stopped, inputs=inputs, reach=order,
                           jacobian=jac, grad_threshold=grad_g, reset_jacobian=rjac, reset_jump=rjump,
                           dimensions=dims, unless_refractory=unless,
                           threshold_dimensions=_dimensions_of(group, g, ns))
    if not grad_g:
        raise IncompatibleModelError(
            f"{where}: the synaptic input ({', '.join(sorted({k for i in inputs for k in i.coefficients}))}) never "
            f"reaches the threshold '{group.events['spike']}'; the gradient would be 0")
    return out


def _dimensions_of(group, expr, namespace: Mapping[str, Any]):
    """Physical dimensions of a sympy expression in the group's variables and namespace."""
    from brian2.parsing.expressions import parse_expression_dimensions

    names = {str(s) for s in expr.free_symbols}
    variables = group.resolve_all(names, dict(namespace), user_identifiers=set())
    return parse_expression_dimensions(to_code(expr), variables)
