"""The Brian2 code blocks of online e-prop in the event family (docs/model.rst §3), from a derivation.

Event-based e-prop (NEST ``eprop_synapse``) integrates a synapse's history step ``t`` only when the
spike arriving at ``t + 1`` (or later) has passed, and only within the ISI cutoff after the
presynaptic spike; the weight a spike carries contains gradient terms up to two steps before its
arrival.  In the user's own network this is done one step late:

* the recurrent neurons store, during each step, the coefficients of their derived recursion (the
  Jacobian ``J_F`` before the state updater, ``psi`` and ``grad g`` after the threshold, ``dR/du - I``
  and the spike-mediated jumps before the resetter, the firing-rate term) and copy them, with the
  learning signal, into ``eprop_h_*`` at the end of the step;
* each plastic synapse processes the previous step in one block placed after its own ``on_pre``:
  the eligibility vector through the operations in the order of their schedule slots, the trace
  ``e = c psi grad g . eps`` (``c`` = 1 inside the cutoff window), the filtered traces
  ``ebar = kappa ebar + e`` and ``ebar_reg = kappa_reg ebar_reg + (1 - kappa_reg) e``, the
  increment ``L ebar + f_r ebar_reg`` and NEST's optimizer call;
* the arrival (``on_pre``) opens the window and, with ``optimize_each_step = False``, calls the
  optimizer with the summed gradient.

Outside the window the vector keeps its own dynamics (``J_F``) with ``e = 0``, which for LIF and
ALIF is NEST's decay of z-bar and epsilon.  The window logic, NEST's spike buffers, the optimizer
(Adam counting time steps, catching up missed ones) and its loop functions are those of the
event-family backend (:func:`brian2_ext.equations_event.window_step`,
:func:`~brian2_ext.equations_event.optimizer_call`, :mod:`brian2_ext.event_functions`), renamed
into the ``eprop_`` namespace and given units.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Mapping, Sequence

import sympy
from brian2.utils.stringtools import word_substitute

from .derivation import NOT_REFRACTORY, NeuronDerivation, to_code
from .equations_event import optimizer_call, window_step
from .online_code import eps_name

__all__ = ["NO_CUTOFF", "OPERATIONS", "coefficients", "snapshot", "neuron_jacobian_code", "neuron_threshold_code",
           "neuron_reset_code", "neuron_snapshot_code", "history_code", "readout_history_code", "arrival_code",
           "optimizer_code", "optimizer_step_code"]

#: the ISI cutoff "none" as a 32-bit step count
NO_CUTOFF = 2**30

#: the operations of one Brian2 step on the eligibility vector (the input is placed by its slot)
OPERATIONS = ("update", "input", "threshold", "reset")

#: names of the event-family backend's optimizer code -> the online learner's
_NAMES = {"oc": "eprop_oc", "cum": "eprop_cum", "cur": "eprop_cur", "due": "eprop_due", "cumd": "eprop_cumd",
          "nk": "eprop_nk", "w_ad": "eprop_w_ad", "m1": "eprop_m1", "m2": "eprop_m2", "b1p": "eprop_b1p",
          "b2p": "eprop_b2p", "ostep": "eprop_ostep", "eta_post": "eprop_eta", "w_min_post": "eprop_w_min",
          "w_max_post": "eprop_w_max", "beta_1_post": "eprop_beta_1", "beta_2_post": "eprop_beta_2",
          "epsilon_post": "eprop_eps_adam", "c": "eprop_c", "zcur": "eprop_zcur", "zpb": "eprop_zpb",
          "zcb": "eprop_zcb", "rem": "eprop_rem", "dec": "eprop_dec", "opened": "eprop_opened"}
#: Adam's loop functions take plain numbers: the arguments in SI divided by a unit constant (exactly 1.0)
_ADAM_ARGS = {"cumd": "(eprop_cumd/eprop_gu)", "eta_post": "(eprop_eta/eprop_wu)",
              "epsilon_post": "(eprop_eps_adam/eprop_gu)"}


def coefficients(der: NeuronDerivation) -> dict[str, tuple[str, object]]:
    """The per-neuron coefficient variables: name -> (kind, dimensions), kinds ``J``, ``dg``, ``dR``, ``jump``."""
    dims, g = der.dimensions, der.threshold_dimensions
    out: dict[str, tuple[str, object]] = {}
    for k, l in der.jacobian:
        out[f"eprop_J_{k}_{l}"] = ("J", dims[k] / dims[l])
    for k in der.grad_threshold:
        out[f"eprop_dg_{k}"] = ("dg", g / dims[k])
    for k, l in der.reset_jacobian:
        out[f"eprop_dR_{k}_{l}"] = ("dR", dims[k] / dims[l])
    for k in der.reset_jump:
        out[f"eprop_jump_{k}"] = ("jump", dims[k])
    return out


def _neuron(expr) -> str:
    return to_code(expr.subs(NOT_REFRACTORY, sympy.Symbol("eprop_nr", real=True)))


def neuron_jacobian_code(der: NeuronDerivation) -> str:
    """Just before the state updater: ``J_F`` at the state it is about to update (not_refractory of this step)."""
    lines = []
    if der.refractory_code:
        lines.append(f"eprop_nr = int({der.refractory_code})")
    lines += [f"eprop_J_{k}_{l} = {_neuron(e)}" for (k, l), e in der.jacobian.items()]
    return "\n".join(lines)


def neuron_threshold_code(der: NeuronDerivation) -> str:
    """After the threshold: ``grad g`` and the firing-rate term ``f_r`` (docs/model.rst §3 step 6)."""
    lines = [f"eprop_dg_{k} = {_neuron(e)}" for k, e in der.grad_threshold.items()]
    lines += ["eprop_fbar = eprop_kappa_reg*eprop_fbar + (1 - eprop_kappa_reg)*eprop_z/dt",
              "eprop_fr = eprop_c_reg*(eprop_fbar - eprop_f_target)*dt"]
    return "\n".join(lines)


def neuron_reset_code(der: NeuronDerivation) -> str:
    """Just before the resetter, on the state it resets: ``dR/du - I``, the jumps and the spike it acts on."""
    lines = ["eprop_zr = eprop_z"]
    lines += [f"eprop_dR_{k}_{l} = {_neuron(e)}" for (k, l), e in der.reset_jacobian.items()]
    lines += [f"eprop_jump_{k} = {_neuron(e)}" for k, e in der.reset_jump.items()]
    return "\n".join(lines)


def neuron_snapshot_code(der: NeuronDerivation) -> str:
    """At the end of a step: what the synapses read when they process this step in the next one."""
    names = list(coefficients(der)) + ["eprop_psi", "eprop_zr", "eprop_L", "eprop_fr"]
    return "\n".join(f"{snapshot(n)} = {n}" for n in names)


def snapshot(name: str) -> str:
    """The end-of-step copy of a neuron variable ``eprop_x``: ``eprop_h_x``."""
    return "eprop_h_" + name[len("eprop_"):]


def _post(name: str) -> str:
    return f"{snapshot(name)}_post"


def history_code(der: NeuronDerivation, input_coefficients: Mapping[str, object], order: Sequence[str]) -> str:
    """One history step of a plastic synapse onto the recurrent group (the previous Brian2 step).

    ``order`` lists :data:`OPERATIONS` as the group's schedule runs them (the threshold before the
    reset).  Leaves ``eprop_e`` (the trace of the step, 0 outside the window), the filtered traces
    and ``eprop_inc`` (the gradient increment, used where ``eprop_c`` is 1).
    """
    reach = der.reach
    lines: list[str] = []
    for op in order:
        if op == "update":
            new = []
            for k in reach:
                terms = [f"{_post(f'eprop_J_{kk}_{l}')}*{eps_name(l)}" for (kk, l) in der.jacobian if kk == k]
                new.append((k, " + ".join(terms) if terms else f"0*{eps_name(k)}"))
            lines += _simultaneous(new)
        elif op == "input":
            lines += [f"{eps_name(k)} = {eps_name(k)} + eprop_c*eprop_zcur*({to_code(coef)})"
                      for k, coef in input_coefficients.items() if k in reach]
        elif op == "threshold":
            grad = " + ".join(f"{_post(f'eprop_dg_{k}')}*{eps_name(k)}" for k in der.grad_threshold)
            lines.append(f"eprop_e = eprop_c*{_post('eprop_psi')}*({grad})")
        elif op == "reset":
            new = []
            for k in reach:
                terms = [f"{_post(f'eprop_dR_{kk}_{l}')}*{eps_name(l)}" for (kk, l) in der.reset_jacobian if kk == k]
                rhs = eps_name(k) + (f" + {_post('eprop_zr')}*({' + '.join(terms)})" if terms else "")
                if k in der.reset_jump:
                    rhs += f" + {_post(f'eprop_jump_{k}')}*eprop_e"
                if terms or k in der.reset_jump:
                    new.append((k, rhs))
            lines += _simultaneous(new)
    lines += ["eprop_ebar = eprop_kappa_post*eprop_ebar + eprop_e",
              "eprop_ebar_reg = eprop_kappa_reg_post*eprop_ebar_reg + (1 - eprop_kappa_reg_post)*eprop_e",
              f"eprop_inc = {_post('eprop_L')}*eprop_ebar + {_post('eprop_fr')}*eprop_ebar_reg"]
    return _window("\n".join(lines))


def readout_history_code() -> str:
    """One history step of a readout synapse: ``zbar = kappa_out zbar + z``, increment ``err zbar`` (§3)."""
    return _window("eprop_zbar = eprop_kappa_out_post*eprop_zbar + eprop_c*eprop_zcur\n"
                   "eprop_inc = eprop_errp_post*eprop_zbar")


def arrival_code(opt: Mapping[str, object], weight: str, idx: str, each_step: bool, batch_size: int) -> str:
    """Added before the user's ``on_pre``: the per-spike optimizer call (``optimize_each_step = False``), then
    the window opens (the cutoff counter restarts, the arrival enters NEST's current-step buffer)."""
    code = "" if each_step else optimizer_code(opt, weight, idx, "eprop_grad", "eprop_opened", batch_size)
    return code + _rename("rem = eprop_cutoff_post\neprop_grad = 0*eprop_grad\nzcb = 1.0\nopened = 1\n")


def optimizer_code(opt: Mapping[str, object], weight: str, idx: str, grad: str, mask: str, batch_size: int) -> str:
    """NEST's ``optimized_weight(idx, grad, w)`` where ``mask`` is 1 (docs/model.rst §4; the backend's code)."""
    st = SimpleNamespace(batch=int(batch_size), optimizer=opt["type"])
    lines = []
    for line in optimizer_call(st, idx, grad, mask).splitlines():
        lhs, rhs = line.split("=", 1)
        if "adam_" in rhs or "mulk" in rhs:  # plain numbers into the loop functions
            rhs = word_substitute(rhs, {**_ADAM_ARGS, "w": f"({weight}/eprop_wu)"})
        rhs = word_substitute(rhs, {"w_ad": "(eprop_w_ad*eprop_wu)"})
        lhs = lhs.strip()
        lines.append(f"{weight if lhs == 'w' else _NAMES.get(lhs, lhs)} = "
                     f"{word_substitute(rhs, {**_NAMES, 'w': weight}).strip()}")
    return "\n".join(lines) + "\n"


def optimizer_step_code(opt: Mapping[str, object], weight: str, idx: str, each_step: bool, batch_size: int) -> str:
    """After a history step: the per-step optimizer call, or the increment summed for the next spike."""
    if each_step:
        return optimizer_code(opt, weight, idx, "eprop_inc", "eprop_c", batch_size)
    return "eprop_grad = eprop_grad + eprop_c*eprop_inc\n"


def _simultaneous(new: Sequence[tuple[str, str]]) -> list[str]:
    return [f"eprop_new_{k} = {rhs}" for k, rhs in new] + [f"{eps_name(k)} = eprop_new_{k}" for k, _ in new]


def _window(body: str) -> str:
    """The backend's window step around ``body`` (written in the online names, so that it is not renamed)."""
    return _rename(window_step("EPROP_BODY")).replace("EPROP_BODY\n", body + "\n")


def _rename(code: str) -> str:
    return "\n".join(word_substitute(line.strip(), _NAMES) for line in code.splitlines() if line.strip()) + "\n"
