"""Online e-prop in Brian2's generated code, for the user's own network and neuron equations.

:func:`online_eprop` takes the user's recurrent ``NeuronGroup``, its plastic ``Synapses`` and their
input groups (``PoissonGroup``, ``SpikeGeneratorGroup``, ``NeuronGroup``, used as they are),
derives the e-prop recursion of the neuron model (:func:`brian2_ext.derivation.derive`) and builds
Brian2 objects from the user's own definitions -- the same equations, method, threshold, reset,
refractoriness, namespace, schedule slots and ``i``/``j`` connectivity -- with the e-prop variables
and code blocks added: eligibility vectors, traces, readouts, feedback, the learning signal as a
``(summed)`` variable, and the optimizer.  ``learner.network.run(duration)`` then learns for as long
as it runs; :meth:`OnlineEprop.write_back` copies the trained weights into the user's
``Synapses``.  The weights and states start as the user set them.

Family ``original`` (``docs/model.rst §2``): update intervals of ``update_interval``; the error
counts in the last ``learning_window`` of each interval; the weights change at the end of each
interval; optionally the neuron state is reset to its initial values at each interval start (NEST's
``eprop_reset_neurons_on_update``).  The readout follows ``y <- kappa y + zeta sum w_out z`` and
the gradient is ``G = sum_t L_t ebar_t + f_r sum_t e_t`` with ``ebar`` filtered by the readout's
``kappa`` (the TensorFlow form in which e-prop is exact).

Where each block runs (Brian2 slots, relative to the user's own code runners): the Jacobian of the
state update just before the state updater, the trace just after the threshold, the spike-mediated
reset terms just before the resetter, the input term inside ``on_pre``, the learning signal and
the accumulation in ``end``, the optimizer in ``start`` of the next interval.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np
import sympy

from eprop_plugins.parameters import ParameterError

from .attach_inspect import IncompatibleModelError
from .derivation import NOT_REFRACTORY, NeuronDerivation, derive, to_code

__all__ = ["online_eprop", "OnlineEprop", "SURROGATE_CODE"]

#: psi(d) of docs/model.rst §1 as Brian2 code (``h`` height, ``w`` width, ``d`` the threshold distance)
SURROGATE_CODE = {
    "piecewise_linear": "eprop_height*clip(1 - abs({d})/eprop_width, 0, inf)",
    "exponential": "eprop_height*exp(-abs({d})/eprop_width)",
    "fast_sigmoid_derivative": "eprop_height*(1 + abs({d})/eprop_width)**(-2)",
    "arctan_derivative": "eprop_height/(1 + ({d}/eprop_width)**2)",
}

_BASE = ("metre", "kilogram", "second", "amp", "kelvin", "mole", "candle")


def _unit_string(dim) -> str:
    """A Brian2 equation unit for dimensions ``dim`` (SI base units with integer powers)."""
    powers = [int(round(p)) for p in dim._dims]
    parts = [f"{b}**{p}" if p != 1 else b for b, p in zip(_BASE, powers) if p]
    return "*".join(parts) if parts else "1"


def _q(value: float, dim):
    import brian2 as b2

    return b2.Quantity(value, dim=dim)


def _dim(x):
    import brian2 as b2

    return b2.get_dimensions(x)


def _post(expr, names: Sequence[str], extra: Mapping[str, str] | None = None) -> str:
    """Code of a neuron-side sympy expression evaluated from the synapse (``x`` -> ``x_post``)."""
    from brian2.utils.stringtools import word_substitute

    subs = {n: f"{n}_post" for n in names}
    subs.update(extra or {})
    return word_substitute(to_code(expr), subs)


@dataclass
class OnlineEprop:
    """The Brian2 objects that learn with e-prop online; create with :func:`online_eprop`.

    Attributes
    ----------
    network : brian2.Network
        Input groups (the user's objects), the e-prop copies of the recurrent group and its
        Synapses, the readout and the feedback; ``network.run(duration)`` learns.
    recurrent : brian2.NeuronGroup
        The copy of the user's group with ``eprop_psi``, ``eprop_z``, ``eprop_L``.
    synapses : dict of str -> brian2.Synapses
        The copies of the user's plastic Synapses, by the user's name.
    readout, readout_synapses, feedback : Brian2 objects
    derivation : NeuronDerivation
    """

    network: Any
    recurrent: Any
    synapses: dict[str, Any]
    user_synapses: dict[str, Any]
    readout: Any
    readout_synapses: Any
    feedback: Any
    derivation: NeuronDerivation
    weight: str
    objects: list[Any] = field(default_factory=list)

    def write_back(self) -> None:
        """Copy the trained weights into the user's Synapses (same i/j order)."""
        for name, syn in self.synapses.items():
            self.user_synapses[name].variables[self.weight].set_value(
                np.asarray(syn.variables[self.weight].get_value()))

    def gradients(self) -> dict[str, np.ndarray]:
        """The gradients accumulated in the current update interval (SI), per Synapses (and ``'readout'``)."""
        out = {name: np.asarray(s.eprop_G[:]) for name, s in self.synapses.items()}
        out["readout"] = np.asarray(self.readout_synapses.eprop_G[:])
        return out


def _copy_values(src, dst, names: Sequence[str]) -> None:
    for name in names:
        var = src.variables[name]
        if getattr(var, "read_only", False) or getattr(var, "scalar", False) and False:
            continue
        dst.variables[name].set_value(np.asarray(var.get_value()))


def _user_state_names(obj) -> list[str]:
    import brian2 as b2

    skip = {"i", "j", "N", "t", "dt", "t_in_timesteps", "N_incoming", "N_outgoing", "lastspike", "not_refractory",
            "_spikespace", "delay", "_synaptic_pre", "_synaptic_post", "_presynaptic_idx", "_postsynaptic_idx"}
    out = []
    for name, var in obj.variables.items():
        if name in skip or name.startswith("_") or not isinstance(var, b2.core.variables.ArrayVariable):
            continue
        if getattr(var, "read_only", False) or getattr(var, "constant", False) and name not in obj.equations.names:
            continue
        if name in obj.equations.names or name in getattr(obj.equations, "parameter_names", ()):
            out.append(name)
    return out


def online_eprop(recurrent, synapses: Sequence[Any], *, n_out: int = 1, target: Any,
                 update_interval: Any, learning_window: Any = None,
                 readout_tau: Any, readout_regular_spike_arrival: bool = False,
                 surrogate: Mapping[str, Any], c_reg: Any = 0.0, f_target: Any = 0.0,
                 optimizer: Mapping[str, Any] | None = None, feedback: str = "random",
                 w_out: Any = None, w_fb: Any = None, seed: int = 0, weight: str = "w",
                 voltage: str | None = None, stop_reset_gradient: Sequence[str] | None = None,
                 reset_state_on_update: bool = False, namespace: Mapping[str, Any] | None = None,
                 record: Sequence[str] = ()) -> OnlineEprop:
    """Build online e-prop learning for a user's Brian2 network (original family).

    Parameters
    ----------
    recurrent : brian2.NeuronGroup
        The user's recurrent group (any equations the derivation accepts).
    synapses : sequence of brian2.Synapses
        The user's plastic Synapses onto ``recurrent`` (from inputs of any kind, or recurrent).
    n_out : int
        Number of readouts.
    target : brian2.TimedArray or str
        The readout target: a TimedArray ``target(t, i)`` (2-D, ``[time, readout]``) or
        ``target(t)`` (1-D, one readout), or a Brian2 expression in ``t`` and ``i`` (the readout
        index), in the units of the readout weights.
    update_interval, learning_window : Brian2 times
        Length of an update interval and of its learning window (its last part; default: all).
    readout_tau : Brian2 time
        Readout membrane time constant (also the filter of ``ebar``, the TensorFlow form).
    readout_regular_spike_arrival : bool
        False: a spike adds ``(1 - kappa) w_out`` to the readout (TensorFlow form), True: ``w_out``.
    surrogate : mapping
        ``function`` (``docs/model.rst §1``), ``height`` (1/[g]) and ``width`` ([g]), with ``g`` the
        threshold expression's difference (e.g. ``v - v_th``: width in volt, height in 1/volt).
    c_reg : float or Quantity
        Firing-rate regularisation (loss units; a float is taken in mV² for a target in volt).
    f_target : Quantity
        Target rate (Hz).
    optimizer : mapping
        ``type`` ``'gradient_descent'`` (``eta``: dimensionless for voltage weights and a target in
        volt) or ``'adam'`` (``eta`` in the weight's units, ``beta_1``, ``beta_2``, ``epsilon``),
        ``w_min``, ``w_max`` (quantities; default unbounded).
    feedback : {'random', 'symmetric'}
        ``random``: fixed ``w_fb``; ``symmetric``: the learning signal uses the current readout
        weights (exact gradient).
    w_out, w_fb : Quantity arrays, optional
        ``(n_out, n_rec)`` readout weights and ``(n_rec, n_out)`` feedback weights (same units as
        ``w_out``); default ``N(0, 1)/sqrt(n_rec)`` in the target's units.
    reset_state_on_update : bool
        Reset the neuron state to its initial values at every interval start.
    record : sequence of str
        Nothing yet; use Brian2 monitors on the returned objects.

    Returns
    -------
    OnlineEprop

    Raises
    ------
    IncompatibleModelError
        The model cannot be derived (the message names the object and the reason).
    ParameterError
        A parameter is missing or out of range.
    """
    import brian2 as b2

    ns = dict(recurrent.namespace or {}) if namespace is None else dict(namespace)
    der = derive(recurrent, synapses, namespace=ns, weight=weight, voltage=voltage,
                 stop_reset_gradient=stop_reset_gradient)
    dt = recurrent.clock.dt
    T = int(round(float(update_interval / dt)))
    TL = T if learning_window is None else int(round(float(learning_window / dt)))
    if T < 1 or not 1 <= TL <= T:
        raise ParameterError(f"update_interval = {update_interval}, learning_window = {learning_window}: need "
                             f"0 < learning_window <= update_interval, whole numbers of dt = {dt}")
    fn = surrogate.get("function", "piecewise_linear")
    if fn not in SURROGATE_CODE:
        raise ParameterError(f"surrogate.function = {fn!r}: valid names are {', '.join(SURROGATE_CODE)}")
    g_dim = der.threshold_dimensions
    height, width = surrogate["height"], surrogate["width"]
    for name, val, dim in (("height", height, g_dim ** -1), ("width", width, g_dim)):
        if _dim(val) is not dim:
            raise ParameterError(f"surrogate.{name} = {val}: needs dimensions {dim} (of the threshold "
                                 f"expression '{to_code(der.threshold)}'{' inverted' if name == 'height' else ''})")
    opt = {"type": "gradient_descent", "eta": 1e-4, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7,
           **dict(optimizer or {})}
    n_rec = len(recurrent)
    name = recurrent.name

    # -------- units: err ~ target, w_out ~ target, L ~ err*w_out, G ~ L/[w]
    if w_out is None:
        rng = np.random.default_rng(seed)
        w_out_val = rng.standard_normal((n_out, n_rec)) / np.sqrt(n_rec)
        w_fb_default = rng.standard_normal((n_rec, n_out)) / np.sqrt(n_rec)
        y_dim = b2.volt.dim
        w_out = w_out_val * b2.mV
        if w_fb is None:
            w_fb = w_fb_default * b2.mV
    y_dim = _dim(w_out)
    if w_fb is None:
        w_fb = np.asarray(w_out).T * _q(1.0, y_dim)
    L_dim = y_dim ** 2
    c_reg_q = c_reg if isinstance(c_reg, b2.Quantity) and not _dim(c_reg) is b2.DIMENSIONLESS else (
        float(c_reg) * (b2.mV ** 2 if y_dim is b2.volt.dim else _q(1.0, L_dim)))

    # -------- the recurrent copy
    eq_extra = b2.Equations(f"""
        eprop_psi : {_unit_string(g_dim ** -1)}
        eprop_z : 1
        eprop_nspikes : 1
        eprop_L : {_unit_string(L_dim)}
    """)
    init_names = [s for s in der.states]
    eq_extra += b2.Equations("\n".join(f"eprop_init_{s} : {_unit_string(der.dimensions[s])}" for s in init_names))
    reset_code = recurrent.event_codes.get("spike", "") + "\neprop_nspikes += 1"
    space = {**ns, "eprop_height": height, "eprop_width": width}
    rec = b2.NeuronGroup(n_rec, recurrent.equations + eq_extra, threshold=recurrent.events["spike"],
                         reset=reset_code, refractory=recurrent._refractory,
                         method=recurrent.state_updater.method_choice, namespace=space, dt=dt, name=f"{name}_eprop")
    for src, dst in ((recurrent.state_updater, rec.state_updater), (recurrent.thresholder["spike"], rec.thresholder["spike"]),
                     (recurrent.resetter["spike"], rec.resetter["spike"])):
        dst.when, dst.order = src.when, src.order
    _copy_values(recurrent, rec, _user_state_names(recurrent))
    for s in init_names:
        rec.variables[f"eprop_init_{s}"].set_value(np.asarray(recurrent.variables[s].get_value()))
    refractory = recurrent._refractory is not False
    thr = recurrent.thresholder["spike"]
    z_code = "int(lastspike == t)" if refractory else f"int({recurrent.events['spike']})"
    active = "int(not_refractory or lastspike == t)" if refractory else "1"
    psi_code = SURROGATE_CODE[fn].format(d=f"({to_code(der.threshold)})")
    rec.run_regularly(f"eprop_z = {z_code}\neprop_psi = {active}*{psi_code}", when=thr.when, order=thr.order + 1,
                      name=f"{name}_eprop_psi")
    objects: list[Any] = [rec]
    if reset_state_on_update:
        code = "\n".join(f"{s} = eprop_init_{s}" for s in init_names) + "\neprop_z = 0"
        if refractory:
            code += "\nlastspike = -1e4*second\nnot_refractory = True"
        rec.run_regularly(code + "\neprop_nspikes = 0", dt=T * dt, when="start", order=1, name=f"{name}_eprop_restart")
    else:
        rec.run_regularly("eprop_nspikes = 0", dt=T * dt, when="start", order=1, name=f"{name}_eprop_restart")

    # -------- readout, error, learning signal
    window = f"int((t_in_timesteps % {T}) >= {T - TL})"
    if isinstance(target, b2.TimedArray):
        tcode = "eprop_target(t, i)" if target.values.ndim == 2 else "eprop_target(t)"
    elif isinstance(target, str):
        tcode = f"({target})"
    else:
        raise ParameterError(f"target = {type(target).__name__}: expected a brian2.TimedArray or an expression string")
    yu = _unit_string(y_dim)
    kappa_out = float(np.exp(-float(dt / readout_tau)))
    readout = b2.NeuronGroup(n_out, f"""
        dy/dt = -y/eprop_tau_out : {yu}
        err = (y - {tcode})*{window} : {yu}
    """, method="exact", namespace={**ns, "eprop_target": target, "eprop_tau_out": readout_tau}, dt=dt,
                             name=f"{name}_eprop_readout")
    if reset_state_on_update:
        readout.run_regularly("y = 0*y", dt=T * dt, when="start", order=1, name=f"{name}_eprop_readout_restart")
    zeta = "1" if readout_regular_spike_arrival else "(1 - exp(-dt/eprop_tau_out))"
    symmetric = feedback == "symmetric"
    ro_model = f"""
        w_out : {yu}
        eprop_zbar : 1
        eprop_G : {_unit_string(L_dim / y_dim)}
    """ + (f"eprop_L_pre = w_out*err_post : {_unit_string(L_dim)} (summed)" if symmetric else "")
    ro_syn = b2.Synapses(rec, readout, ro_model, on_pre=f"y_post += {zeta}*w_out\neprop_zbar += {zeta}",
                         namespace=dict(readout.namespace), dt=dt, name=f"{name}_eprop_readout_syn")
    ro_syn.connect()
    ro_syn.w_out = np.asarray(w_out)[ro_syn.j[:], ro_syn.i[:]] * _q(1.0, y_dim)
    ro_syn.run_regularly(f"eprop_zbar = {kappa_out!r}*eprop_zbar", when="before_groups", name=f"{name}_eprop_ro_decay")
    ro_syn.run_regularly("eprop_G += err_post*eprop_zbar", when="end", order=0, name=f"{name}_eprop_ro_grad")
    objects += [readout, ro_syn]
    fb = None
    if symmetric:
        ro_syn.summed_updaters["eprop_L_pre"].when = "end"
        ro_syn.summed_updaters["eprop_L_pre"].order = -10
    elif feedback == "random":
        fb = b2.Synapses(readout, rec, f"B : {yu}\neprop_L_post = B*err_pre : {_unit_string(L_dim)} (summed)",
                         namespace=dict(readout.namespace), dt=dt, name=f"{name}_eprop_feedback")
        fb.connect()
        fb.B = np.asarray(w_fb)[fb.j[:], fb.i[:]] * _q(1.0, y_dim)
        fb.summed_updaters["eprop_L_post"].when = "end"
        fb.summed_updaters["eprop_L_post"].order = -10
        objects.append(fb)
    else:
        raise ParameterError(f"feedback = {feedback!r}: valid values are 'random', 'symmetric'")

    # -------- plastic synapses
    reach = der.reach
    state_names = list(der.states) + ["not_refractory", "lastspike"]
    copies, users = {}, {}
    upd_w = _optimizer_code(opt, weight)
    for inp in der.inputs:
        s = inp.synapses
        w_dim = s.variables[weight].dim
        G_dim = L_dim / w_dim
        eps = {k: f"eprop_eps_{k}" for k in reach}
        model = s.equations + b2.Equations("\n".join(
            [f"{eps[k]} : {_unit_string(der.dimensions[k] / w_dim)}" for k in reach]
            + [f"eprop_e : {_unit_string(w_dim ** -1)}", f"eprop_ebar : {_unit_string(w_dim ** -1)}",
               f"eprop_esum : {_unit_string(w_dim ** -1)}", f"eprop_G : {_unit_string(G_dim)}",
               f"eprop_m : {_unit_string(G_dim)}", f"eprop_v2 : {_unit_string(G_dim ** 2)}"]))
        on_pre = s._pathways[0].code + "".join(
            f"\n{eps[k]} += {to_code(c)}" for k, c in inp.coefficients.items() if k in reach)
        source = rec if s.source is recurrent else s.source
        eta_dim = w_dim if opt["type"] == "adam" else w_dim / G_dim
        syn_ns = {**dict(s.namespace or {}), "eprop_eta": _q(float(opt["eta"]), eta_dim),
                  "eprop_eps_adam": _q(float(opt["epsilon"]), G_dim),
                  "eprop_w_min": opt.get("w_min", _q(-np.inf, w_dim)), "eprop_w_max": opt.get("w_max", _q(np.inf, w_dim)),
                  "eprop_c_reg": c_reg_q, "eprop_f_target": f_target if isinstance(f_target, b2.Quantity) else float(f_target) * b2.Hz, "eprop_T_steps": T, "eprop_height": height, "eprop_width": width}
        syn = b2.Synapses(source, rec, model, on_pre=on_pre, namespace={**ns, **syn_ns}, dt=dt,
                          method=s.state_updater.method_choice if hasattr(s, "state_updater") and s.state_updater
                          else ("exact", "euler", "heun"), name=f"{s.name}_eprop")
        syn.connect(i=np.asarray(s.i[:]), j=np.asarray(s.j[:]))
        syn._pathways[0].when, syn._pathways[0].order = s._pathways[0].when, s._pathways[0].order
        syn.delay = np.asarray(s.delay[:]) * b2.second if np.size(s.delay[:]) else 0 * b2.second
        _copy_values(s, syn, [n for n in _user_state_names(s)])
        su = recurrent.state_updater
        nr = f"int({der.refractory_code.replace('lastspike', 'lastspike_post')})" if der.refractory_code else "1"
        lines = [f"eprop_nr = {nr}"] if der.refractory_code else []
        for k in reach:
            terms = [f"({_post(e, state_names, {str(NOT_REFRACTORY): 'eprop_nr' if der.refractory_code else '1'})})*{eps[l]}"
                     for (kk, l), e in der.jacobian.items() if kk == k]
            lines.append(f"eprop_new_{k} = " + (" + ".join(terms) if terms else f"0*{eps[k]}"))
        lines += [f"{eps[k]} = eprop_new_{k}" for k in reach]
        syn.run_regularly("\n".join(lines), when=su.when, order=su.order - 1, name=f"{s.name}_eprop_jacobian")
        grad = " + ".join(f"({_post(e, state_names)})*{eps[k]}" for k, e in der.grad_threshold.items())
        syn.run_regularly(f"eprop_e = eprop_psi_post*({grad})", when=thr.when, order=thr.order + 2,
                          name=f"{s.name}_eprop_trace")
        rs = recurrent.resetter["spike"]
        rlines = []
        for k in reach:
            terms = [f"({_post(e, state_names)})*{eps[l]}" for (kk, l), e in der.reset_jacobian.items() if kk == k]
            line = f"eprop_new_{k} = {eps[k]}" + (f" + eprop_z_post*({' + '.join(terms)})" if terms else "")
            if k in der.reset_jump:  # through psi: in every step, spike or not (dz/dW = e)
                line += f" + ({_post(der.reset_jump[k], state_names)})*eprop_e"
            if terms or k in der.reset_jump:
                rlines.append(line)
        rlines += [f"{eps[k]} = eprop_new_{k}" for k in reach if f"eprop_new_{k} =" in "\n".join(rlines)]
        if rlines:
            syn.run_regularly("\n".join(rlines), when=rs.when, order=rs.order - 1, name=f"{s.name}_eprop_reset")
        syn.run_regularly(f"eprop_ebar = {kappa_out!r}*eprop_ebar + (1 - {kappa_out!r})*eprop_e\n"
                          f"eprop_G += eprop_L_post*eprop_ebar\neprop_esum += eprop_e\n"
                          # the firing-rate term f_r sum_t e_t of §2, in the interval's last step
                          f"eprop_G += int((t_in_timesteps % {T}) == {T - 1})*eprop_c_reg*"
                          f"(eprop_nspikes_post/{T} - eprop_f_target*dt)/{T}*eprop_esum", when="end", order=0,
                          name=f"{s.name}_eprop_accumulate")
        reg = ""
        restart = "\n".join([f"{eps[k]} = 0*{eps[k]}" for k in reach] + ["eprop_ebar = 0*eprop_ebar",
                                                                          "eprop_esum = 0*eprop_esum"])
        syn.run_regularly(f"{reg}{upd_w}\neprop_G = 0*eprop_G\n" + (restart if reset_state_on_update else
                                                                   "eprop_esum = 0*eprop_esum"),
                          dt=T * dt, when="start", order=0, name=f"{s.name}_eprop_optimize")
        copies[s.name], users[s.name] = syn, s
        objects.append(syn)
    # the readout learns by gradient descent with eta_out (default: the optimizer's eta)
    ro_syn.namespace.update({"eprop_eta": _q(float(opt.get("eta_out", opt["eta"])), y_dim / (L_dim / y_dim)),
                             "eprop_w_min": _q(-np.inf, y_dim), "eprop_w_max": _q(np.inf, y_dim)})
    ro_syn.run_regularly(_optimizer_code({**opt, "type": "gradient_descent"}, "w_out") + "\neprop_G = 0*eprop_G\neprop_zbar = " +
                         ("0*eprop_zbar" if reset_state_on_update else "eprop_zbar"),
                         dt=T * dt, when="start", order=0, name=f"{name}_eprop_ro_optimize")
    inputs = [s.source for s in synapses if s.source is not recurrent]
    net = b2.Network(*dict.fromkeys(inputs), *objects)
    return OnlineEprop(network=net, recurrent=rec, synapses=copies, user_synapses=users, readout=readout,
                       readout_synapses=ro_syn, feedback=fb, derivation=der, weight=weight, objects=objects)


def _optimizer_code(opt: Mapping[str, Any], weight: str) -> str:
    """The update of ``weight`` from ``eprop_G`` at an interval start (nothing at t = 0)."""
    first = "int(t > 0*second)"
    if opt["type"] == "gradient_descent":
        return f"{weight} = clip({weight} - {first}*eprop_eta*eprop_G, eprop_w_min, eprop_w_max)"
    if opt["type"] == "adam":
        b1, b2_ = float(opt["beta_1"]), float(opt["beta_2"])
        k = "clip(t_in_timesteps/eprop_T_steps, 1, inf)"  # the optimizer call index (never 0: no 0/0 at t = 0)
        return "\n".join([
            f"eprop_m = {b1!r}*eprop_m + (1 - {b1!r})*eprop_G",
            f"eprop_v2 = {b2_!r}*eprop_v2 + (1 - {b2_!r})*eprop_G**2",
            f"{weight} = clip({weight} - {first}*eprop_eta*sqrt(1 - {b2_!r}**{k})/(1 - {b1!r}**{k})*eprop_m/"
            f"(sqrt(eprop_v2) + eprop_eps_adam), eprop_w_min, eprop_w_max)"])
    raise ParameterError(f"optimizer.type = {opt['type']!r}: valid values are 'gradient_descent', 'adam'")
