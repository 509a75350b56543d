"""The Brian2 code blocks of online e-prop, generated from a :class:`~brian2_ext.derivation.NeuronDerivation`.

Every function returns abstract code (strings) for a ``run_regularly`` block or an ``on_pre``
addition of the e-prop copy of a user's ``Synapses``; :mod:`brian2_ext.online` places them in the
schedule.  Neuron variables are read from the synapse as ``x_post``; the eligibility vector's
components are ``eprop_eps_<x>``.  See docs/brian2_own_model.rst for the math.
"""

from __future__ import annotations

from typing import Mapping, Sequence

from .derivation import NOT_REFRACTORY, NeuronDerivation, to_code

__all__ = ["SURROGATE_CODE", "BASE_UNITS", "unit_string", "eps_name", "post_code", "jacobian_code", "trace_code",
           "reset_code", "input_code", "accumulate_code", "optimizer_code"]

#: psi(d) of docs/model.rst §1 as Brian2 code (``eprop_height``, ``eprop_width``, ``d`` the threshold distance)
SURROGATE_CODE = {
    "piecewise_linear": "eprop_height*clip(1 - abs({d})/eprop_width, 0, inf)",
    "exponential": "eprop_height*exp(-abs({d})/eprop_width)",
    "fast_sigmoid_derivative": "eprop_height*(1 + abs({d})/eprop_width)**(-2)",
    "arctan_derivative": "eprop_height/(1 + ({d}/eprop_width)**2)",
}

#: SI base units in the order of Brian2's dimension vector
BASE_UNITS = ("metre", "kilogram", "second", "amp", "kelvin", "mole", "candle")


def unit_string(dim) -> str:
    """A Brian2 equation unit for dimensions ``dim`` (SI base units with integer powers)."""
    powers = [int(round(p)) for p in dim._dims]
    parts = [f"{b}**{p}" if p != 1 else b for b, p in zip(BASE_UNITS, powers) if p]
    return "*".join(parts) if parts else "1"


def eps_name(var: str) -> str:
    """The synapse variable holding the eligibility vector's component along ``var``."""
    return f"eprop_eps_{var}"


def post_code(expr, der: NeuronDerivation, extra: Mapping[str, str] | None = None) -> str:
    """Code of a neuron-side sympy expression evaluated from the synapse (``x`` -> ``x_post``)."""
    from brian2.utils.stringtools import word_substitute

    subs = {n: f"{n}_post" for n in list(der.states) + ["not_refractory", "lastspike"]}
    subs.update(extra or {})
    return word_substitute(to_code(expr), subs)


def _simultaneous(new: Sequence[tuple[str, str]]) -> list[str]:
    """Assign all components from the old values (temporaries first)."""
    return [f"eprop_new_{k} = {rhs}" for k, rhs in new] + [f"{eps_name(k)} = eprop_new_{k}" for k, _ in new]


def jacobian_code(der: NeuronDerivation) -> str:
    """``eps <- J_F(h) eps`` just before the state updater (``h`` is still the previous step's state)."""
    lines = []
    nr = "1"
    if der.refractory_code:  # not_refractory of *this* step, as the state updater will compute it
        lines.append(f"eprop_nr = int({der.refractory_code.replace('lastspike', 'lastspike_post')})")
        nr = "eprop_nr"
    new = []
    for k in der.reach:
        terms = [f"({post_code(e, der, {str(NOT_REFRACTORY): nr})})*{eps_name(l)}"
                 for (kk, l), e in der.jacobian.items() if kk == k]
        new.append((k, " + ".join(terms) if terms else f"0*{eps_name(k)}"))
    return "\n".join(lines + _simultaneous(new))


def trace_code(der: NeuronDerivation) -> str:
    """``e = psi grad g . eps`` just after the threshold (``eprop_psi_post`` is 0 while refractory)."""
    grad = " + ".join(f"({post_code(e, der)})*{eps_name(k)}" for k, e in der.grad_threshold.items())
    return f"eprop_e = eprop_psi_post*({grad})"


def reset_code(der: NeuronDerivation) -> str:
    """Just before the resetter: ``eps <- eps + z (dR/du - I) eps + (R(u) - u)~ e`` (empty if nothing to do).

    The spike-mediated jump acts in every step, spike or not: ``e = dz/dW`` is non-zero near the
    threshold.  ``eprop_z_post`` and ``eprop_e`` are those of the spike the resetter acts on (this
    step's, or the previous step's when the reset runs before the threshold).
    """
    new = []
    for k in der.reach:
        terms = [f"({post_code(e, der)})*{eps_name(l)}" for (kk, l), e in der.reset_jacobian.items() if kk == k]
        rhs = eps_name(k) + (f" + eprop_z_post*({' + '.join(terms)})" if terms else "")
        if k in der.reset_jump:
            rhs += f" + ({post_code(der.reset_jump[k], der)})*eprop_e"
        if terms or k in der.reset_jump:
            new.append((k, rhs))
    return "\n".join(_simultaneous(new)) if new else ""


def input_code(der: NeuronDerivation, coefficients: Mapping[str, object]) -> str:
    """Lines appended to ``on_pre``: ``eps_k += dDelta_k/dw`` (the arrival's direct effect)."""
    return "".join(f"\n{eps_name(k)} += {to_code(c)}" for k, c in coefficients.items() if k in der.reach)


def accumulate_code(T: int, kappa: float, split_last: bool) -> str:
    """In ``end``: ``ebar`` (filtered by the readout's kappa), ``G += L ebar``, the firing-rate term at the last step.

    ``split_last`` keeps the last step's ``L ebar`` in ``eprop_G_last`` (NEST drops it for synapses
    whose next spike arrives in step 1 of the next interval, docs/model.rst §6).
    """
    last = f"int((t_in_timesteps % {T}) == {T - 1})"
    lines = [f"eprop_ebar = {kappa!r}*eprop_ebar + (1 - {kappa!r})*eprop_e"]
    if split_last:
        lines += [f"eprop_G += (1 - {last})*(eprop_L_post*eprop_ebar)",
                  f"eprop_G_last = {last}*(eprop_L_post*eprop_ebar) + (1 - {last})*eprop_G_last"]
    else:
        lines.append("eprop_G += eprop_L_post*eprop_ebar")
    lines += ["eprop_esum += eprop_e",
              f"eprop_G += {last}*(eprop_c_reg*(eprop_nspikes_post/{T} - eprop_f_target*dt)/{T}*eprop_esum)"]
    return "\n".join(lines)


def optimizer_code(opt: Mapping[str, object], weight: str, apply: str, gradient: str = "eprop_G") -> str:
    """One optimizer call (docs/model.rst §4) on ``weight`` with the gradient ``gradient`` (code) where ``apply`` is 1.

    The caller zeroes its accumulators afterwards (``eprop_apply`` holds the mask).

    Written as ``apply*new + (1 - apply)*old`` so that a masked call leaves every value bit for bit.
    Adam (TensorFlow-1 form) counts its calls in ``eprop_step``.
    """
    lines = [f"eprop_apply = {apply}", f"eprop_g = {gradient}"]
    if opt["type"] == "gradient_descent":
        lines.append(f"{weight} = eprop_apply*clip({weight} - eprop_eta*eprop_g, eprop_w_min, eprop_w_max) + "
                     f"(1 - eprop_apply)*{weight}")
    elif opt["type"] == "adam":
        b1, b2 = float(opt["beta_1"]), float(opt["beta_2"])
        lines += [
            "eprop_step += eprop_apply",
            f"eprop_m = eprop_apply*({b1!r}*eprop_m + (1 - {b1!r})*eprop_g) + (1 - eprop_apply)*eprop_m",
            f"eprop_v2 = eprop_apply*({b2!r}*eprop_v2 + (1 - {b2!r})*eprop_g**2) + (1 - eprop_apply)*eprop_v2",
            "eprop_k = clip(eprop_step, 1, inf)",
            f"eprop_alpha = eprop_eta*sqrt(1 - {b2!r}**eprop_k)/(1 - {b1!r}**eprop_k)",
            f"{weight} = eprop_apply*clip({weight} - eprop_alpha*eprop_m/(sqrt(eprop_v2) + eprop_eps_adam), "
            f"eprop_w_min, eprop_w_max) + (1 - eprop_apply)*{weight}"]
    else:
        from eprop_plugins.parameters import ParameterError

        raise ParameterError(f"optimizer.type = {opt['type']!r}: valid values are 'gradient_descent', 'adam'")
    return "\n".join(lines)
