"""Online e-prop in Brian2's generated code, for the user's own network and neuron equations.

:func:`online_eprop` takes the user's recurrent ``NeuronGroup``, its plastic ``Synapses`` and their
input groups (``PoissonGroup``, ``SpikeGeneratorGroup``, ``NeuronGroup``, used as they are),
derives the e-prop recursion of the neuron model (:func:`brian2_ext.derivation.derive`) and builds
Brian2 objects from the user's own definitions -- the same equations, method, threshold, reset,
refractoriness, namespace, schedule slots, delays and ``i``/``j`` connectivity -- with the e-prop
variables and code blocks of :mod:`brian2_ext.online_code` added: eligibility vectors, traces,
readouts, feedback, the learning signal as a ``(summed)`` variable, and the optimizer.
``learner.network.run(duration)`` learns for as long as it runs; :meth:`OnlineEprop.write_back`
copies the trained weights into the user's ``Synapses``.  Weights and states start as the user set
them.

Family ``original`` (``docs/model.rst §2``): update intervals of ``update_interval`` steps; the error
counts in the last ``learning_window`` of each; the gradient is ``G = sum_t L_t ebar_t + f_r sum_t
e_t`` with ``ebar`` filtered by the readout's ``kappa`` (the TensorFlow form, in which e-prop with
symmetric feedback is exactly stop-gradient BPTT).

Family ``event`` (``docs/model.rst §3``, NEST's ``eprop_synapse``): no intervals; each synapse
integrates its history step by step within the ISI cutoff after its presynaptic spikes, with
``ebar = kappa ebar + e``, ``ebar_reg = kappa_reg ebar_reg + (1 - kappa_reg) e`` and the gradient
``L ebar + f_r ebar_reg`` of every step going to NEST's optimizer (per step, or summed once per spike);
the readouts have ``y = kappa_out y + sum w z`` and ``err = (y - target) lambda``.  A step is processed
in the next one, after that step's arrivals (:mod:`brian2_ext.online_event`), so a transmitted weight
contains the gradient up to two steps before its arrival, as in NEST.

Where each block runs (original family), relative to the user's own code runners: the Jacobian of
the state update just before the state updater, the trace just after the threshold, the spike-mediated reset terms
just before the resetter, the input term inside ``on_pre``, the learning signal and the accumulation
in ``end``.  The weights change at the start of the next interval, or, with
``reset_state_on_update`` (NEST's ``eprop_reset_neurons_on_update``), in step 1 of the next interval
as NEST 3.10 does it (docs/model.rst §2, §6): the neuron state is reset after the arrivals of step 0
(which are dropped), and a synapse whose next spike arrives in step 1 leaves out the last step's
learning signal.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from eprop_plugins.parameters import ParameterError

from . import online_code as oc
from .attach_inspect import EPROP_SLOTS, IncompatibleModelError
from .derivation import NeuronDerivation, derive, to_code
from .online_replay import Recorder, record_input

__all__ = ["online_eprop", "OnlineEprop"]

#: optimizer settings and their defaults (docs/model.rst §4)
OPTIMIZER_DEFAULTS = {"type": "gradient_descent", "eta": 1e-4, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7,
                      "w_min": None, "w_max": None}


@dataclass
class OnlineEprop:
    """The Brian2 objects that learn with e-prop online; create them with :func:`online_eprop`.

    Attributes
    ----------
    network : brian2.Network
        The user's input groups, the e-prop copies of the recurrent group and its Synapses, the
        readout and the feedback; ``network.run(duration)`` learns.
    recurrent : brian2.NeuronGroup
        The copy of the user's group, with ``eprop_psi``, ``eprop_z`` and the learning signal ``eprop_L``
        (event family: also the firing-rate term ``eprop_fr``).
    synapses : dict of str -> brian2.Synapses
        The copies of the user's plastic Synapses, by the user's names.
    user_synapses : dict of str -> brian2.Synapses
    readout : brian2.NeuronGroup
        ``y`` and the error ``err`` (a subexpression).
    readout_synapses : brian2.Synapses
        Recurrent -> readout, weights ``w_out``.
    feedback : brian2.Synapses or None
        Readout -> recurrent with the feedback weights ``B`` (None for symmetric feedback).
    derivation : NeuronDerivation
    weight : str
    family : str
        ``'original'`` or ``'event'``.
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
    recorder: Recorder | None = None
    family: str = "original"

    def install(self, network) -> None:
        """Make the user's own ``network.run(...)`` learn: swap the user's recurrent group and plastic
        Synapses for their e-prop copies (input groups and other objects stay; monitors of the user's
        group then see nothing: monitor :attr:`recurrent` instead)."""
        for obj in [self.derivation.group, *self.user_synapses.values()]:
            if obj in network.objects:
                network.remove(obj)
        network.add(*[o for o in self.objects if o not in network.objects])

    def write_back(self) -> None:
        """Copy the trained weights into the user's Synapses (same synapse order)."""
        for name, syn in self.synapses.items():
            self.user_synapses[name].variables[self.weight].set_value(
                np.asarray(syn.variables[self.weight].get_value()))

    def run_standalone(self, duration, directory: str | None = None, *, monitors: Callable[[dict], list] | None = None,
                       read: Callable[[dict], Any] | None = None) -> dict[str, Any]:
        """Run the same learning in Brian2's cpp_standalone mode; return the final values.

        The objects are built again (from their recorded definitions and values) under
        ``set_device('cpp_standalone')``, compiled, run for ``duration`` and read back; the device
        is reset to runtime afterwards.  The runtime objects of :attr:`network` are not changed.

        Parameters
        ----------
        duration : Brian2 time
        directory : str, optional
            Build directory (default: a temporary one).
        monitors : callable, optional
            ``monitors(objects) -> [monitor, ...]`` with ``objects`` the rebuilt objects by name.
        read : callable, optional
            ``read(objects)``, called after the run while the values can still be read.

        Returns
        -------
        dict
            ``weights`` (per user Synapses name, the trained weights in synapse order, SI), ``w_out``
            (SI), ``monitors`` (their recorded values, as attributes of the same names) and ``read``.
        """
        import tempfile

        import brian2 as b2

        saved = b2.get_device()
        b2.set_device("cpp_standalone", directory=directory or tempfile.mkdtemp(prefix="eprop_online_"),
                      build_on_run=False)
        try:
            built = self.recorder.replay()
            by_name = {o.name: o for o in built}
            extra = list(monitors(by_name)) if monitors else []
            net = b2.Network(*built, *extra)
            net.run(duration)
            b2.device.build(directory=b2.device.project_dir, compile=True, run=True)
            out = {"weights": {name: np.asarray(by_name[syn.name].variables[self.weight].get_value())
                               for name, syn in self.synapses.items()},
                   "w_out": np.asarray(by_name[self.readout_synapses.name].variables["w_out"].get_value()),
                   "monitors": [_recorded(m) for m in extra], "read": read(by_name) if read else None}
        finally:
            b2.device.reinit()
            b2.set_device(saved)
        return out

    def gradients(self) -> dict[str, np.ndarray]:
        """Gradients accumulated in the current update interval (SI), per Synapses and ``'readout'``.

        Event family: the gradient accumulated for the next optimizer call (NEST's ``cumulative``,
        plus the sum since the last spike with one call per spike).
        """
        if self.family == "event":
            return {name: np.asarray(s.eprop_cum[:]) + np.asarray(s.eprop_grad[:])
                    for name, s in [*self.synapses.items(), ("readout", self.readout_synapses)]}
        out = {}
        for name, s in self.synapses.items():
            g = np.asarray(s.eprop_G[:])
            out[name] = g + np.asarray(s.eprop_G_last[:]) if "eprop_G_last" in s.variables else g
        out["readout"] = np.asarray(self.readout_synapses.eprop_G[:])
        return out


# ---------------------------------------------------------------------------------------------- helpers
def _b2():
    import brian2

    return brian2


def _q(value: float, dim):
    return _b2().Quantity(value, dim=dim)


def _dim(x):
    return _b2().get_dimensions(x)


def _user_variables(obj) -> list[str]:
    """The user's own writable variables of a group or Synapses (state and parameters), to copy."""
    names = obj.equations.names if hasattr(obj.equations, "names") else set()
    return [n for n in obj.variables if n in names and not obj.variables[n].read_only
            and n in obj.equations and obj.equations[n].type != "subexpression"]


def _eta(value, dim, where: str):
    """A learning rate in ``dim``: a Quantity of those dimensions, or a number (its SI value)."""
    b2 = _b2()
    from brian2.units.fundamentalunits import DIMENSIONLESS

    if isinstance(value, b2.Quantity) and _dim(value) is not DIMENSIONLESS or dim is DIMENSIONLESS:
        if _dim(value) is not dim:
            raise ParameterError(f"{where} = {value}: needs dimensions '{dim}'")
        return value
    return _q(float(value), dim)


def _copy_values(rb, src, dst, names: Sequence[str]) -> None:
    for name in names:
        rb.values(dst, name, np.asarray(src.variables[name].get_value()))


def _slot_index(when: str) -> int:
    """Position of a schedule slot (``before_x`` < ``x`` < ``after_x``) in Brian2's default schedule."""
    base = list(_b2().Network().schedule)
    for prefix, offset in (("before_", 0), ("after_", 2)):
        if when.startswith(prefix):
            return 3 * base.index(when[len(prefix):]) + offset
    return 3 * base.index(when) + 1


@dataclass
class _Schedule:
    """Where the copies' code runners run: (when, order) of the user's, or the e-prop slots."""

    update: tuple[str, int]
    threshold: tuple[str, int]
    reset: tuple[str, int]
    pathways: dict[str, tuple[str, int]]

    @classmethod
    def of(cls, recurrent, synapses, eprop_slots: bool, family: str = "original") -> "_Schedule":
        su, thr, rs = recurrent.state_updater, recurrent.thresholder["spike"], recurrent.resetter["spike"]
        if eprop_slots and family == "event":  # arrivals after the leak, before the threshold; the reset stays
            return cls((su.when, su.order), (thr.when, thr.order), (rs.when, rs.order),
                       {s.name: (EPROP_SLOTS[0], 1) for s in synapses})
        if eprop_slots:  # as schedule_like_eprop(): reset and arrivals after the leak, before the threshold
            return cls((su.when, su.order), (thr.when, thr.order), (EPROP_SLOTS[0], 0),
                       {s.name: (EPROP_SLOTS[0], 1) for s in synapses})
        return cls((su.when, su.order), (thr.when, thr.order), (rs.when, rs.order),
                   {s.name: (s._pathways[0].when, s._pathways[0].order) for s in synapses})

    def last_pathway(self) -> tuple[str, int]:
        """The latest ``on_pre`` of the plastic Synapses."""
        return max(self.pathways.values(), key=lambda p: (_slot_index(p[0]), p[1]))


@dataclass
class _Settings:
    """Checked settings in Brian2 units."""

    T: int
    TL: int
    fn: str
    height: Any
    width: Any
    opt: dict[str, Any]
    y_dim: Any
    L_dim: Any
    c_reg: Any
    f_target: Any
    w_out: Any
    w_fb: Any
    grad_scale: str = ""  # "(1.0/T_L)*" with average_gradient
    batch_size: int = 1
    cross_entropy: bool = False


def _settings(der, dt, *, n_out, update_interval, learning_window, surrogate, optimizer, c_reg, f_target, w_out,
              w_fb, seed, loss="mean_squared_error") -> _Settings:
    b2 = _b2()
    if update_interval is None:  # the event family has no update intervals
        T = TL = 0
    else:
        T = int(round(float(update_interval / dt)))
        TL = T if learning_window is None else int(round(float(learning_window / dt)))
    if update_interval is not None and (T < 2 or not 1 <= TL <= T):
        raise ParameterError(f"update_interval = {update_interval}, learning_window = {learning_window}: need "
                             f"0 < learning_window <= update_interval (at least 2 steps), whole numbers of dt = {dt}")
    fn = surrogate.get("function", "piecewise_linear")
    if fn not in oc.SURROGATE_CODE:
        raise ParameterError(f"surrogate.function = {fn!r}: valid names are {', '.join(oc.SURROGATE_CODE)}")
    g_dim = der.threshold_dimensions
    for key, dim in (("height", g_dim ** -1), ("width", g_dim)):
        if key not in surrogate:
            raise ParameterError(f"surrogate.{key}: required")
        if _dim(surrogate[key]) is not dim:
            raise ParameterError(f"surrogate.{key} = {surrogate[key]}: needs dimensions '{dim}' (of the threshold "
                                 f"expression '{to_code(der.threshold)}'{', inverted' if key == 'height' else ''})")
    unknown = sorted(set(optimizer or {}) - set(OPTIMIZER_DEFAULTS) - {"eta_out", "optimize_each_step"})
    if unknown:
        raise ParameterError(f"optimizer.{unknown[0]}: unknown; valid names are "
                             f"{', '.join(OPTIMIZER_DEFAULTS)}, eta_out, optimize_each_step")
    opt = {**OPTIMIZER_DEFAULTS, **dict(optimizer or {})}
    n_rec = len(der.group)
    rng = np.random.default_rng(seed)
    w_out_default = rng.standard_normal((n_out, n_rec)) / np.sqrt(n_rec) * b2.mV
    w_fb_default = rng.standard_normal((n_rec, n_out)) / np.sqrt(n_rec) * b2.mV
    w_out = w_out_default if w_out is None else w_out
    y_dim = _dim(w_out)
    if w_fb is None:
        w_fb = w_fb_default if _dim(w_out) is b2.volt.dim else np.asarray(w_out).T * _q(1.0, y_dim)
    for key, arr, shape in (("w_out", w_out, (n_out, n_rec)), ("w_fb", w_fb, (n_rec, n_out))):
        if np.shape(arr) != shape:
            raise ParameterError(f"{key}: shape {np.shape(arr)}, expected {shape}")
        if _dim(arr) is not y_dim:
            raise ParameterError(f"{key}: dimensions '{_dim(arr)}', expected those of the target and w_out ('{y_dim}')")
    if loss not in ("mean_squared_error", "cross_entropy"):
        raise ParameterError(f"loss = {loss!r}: valid values are 'mean_squared_error', 'cross_entropy'")
    ce = loss == "cross_entropy"
    L_dim = y_dim if ce else y_dim ** 2  # L = B err: the error is a probability with cross-entropy
    from brian2.units.fundamentalunits import DIMENSIONLESS

    if not isinstance(c_reg, b2.Quantity) or _dim(c_reg) is DIMENSIONLESS:
        # canonical c_reg: the loss in mV² (mV with cross-entropy, docs/model.rst §2) when the readout is in volt
        c_reg = float(c_reg) * ((b2.mV if ce else b2.mV ** 2) if y_dim is b2.volt.dim else _q(1.0, L_dim))
    f_target = f_target if isinstance(f_target, b2.Quantity) else float(f_target) * b2.Hz
    return _Settings(T=T, TL=TL, fn=fn, height=surrogate["height"], width=surrogate["width"], opt=opt, y_dim=y_dim,
                     L_dim=L_dim, c_reg=c_reg, f_target=f_target, w_out=w_out, w_fb=w_fb, cross_entropy=ce)


def _group_copy(rb, recurrent, extra, st: _Settings, sched: _Schedule, ns):
    """The user's NeuronGroup built again with the e-prop variables ``extra``, in the copies' schedule, with the
    user's values."""
    b2 = _b2()
    name, dt = recurrent.name, recurrent.clock.dt
    own = b2.Equations([eq for eq in recurrent.equations.values()  # Brian2 adds these two for refractoriness
                        if eq.varname not in ("not_refractory", "lastspike")])
    rec = rb.new(b2.NeuronGroup, len(recurrent), own + extra, threshold=recurrent.events["spike"],
                 reset=recurrent.event_codes.get("spike", ""), refractory=recurrent._refractory,
                 method=recurrent.state_updater.method_choice,
                 namespace={**ns, "eprop_height": st.height, "eprop_width": st.width}, dt=dt, name=f"{name}_eprop")
    for slot, path in ((sched.update, ("state_updater",)), (sched.threshold, ("thresholder", ("spike",))),
                       (sched.reset, ("resetter", ("spike",)))):
        rb.set(rec, path, "when", slot[0])
        rb.set(rec, path, "order", slot[1])
    _copy_values(rb, recurrent, rec, _user_variables(recurrent))
    return rec


def _psi_code(recurrent, der, st: _Settings) -> str:
    """``eprop_z`` of this step and ``eprop_psi`` on the state the threshold saw (0 while refractory; the
    thresholder has already marked this step's spikes as refractory, hence ``lastspike == t``)."""
    refractory = recurrent._refractory is not False
    z = "int(lastspike == t)" if refractory else f"int({recurrent.events['spike']})"
    active = "int(not_refractory or lastspike == t)" if refractory else "1"
    psi = oc.SURROGATE_CODE[st.fn].format(d=f"({to_code(der.threshold)})")
    return f"eprop_z = {z}\neprop_psi = {active}*{psi}"


# ---------------------------------------------------------------------------------------------- objects
def _recurrent_copy(rb, recurrent, der, st: _Settings, sched: _Schedule, ns, restart_at, restart_values,
                    lower_bounds):
    """The user's NeuronGroup with the e-prop neuron variables and blocks."""
    b2 = _b2()
    extra = b2.Equations(f"""
        eprop_psi : {oc.unit_string(der.threshold_dimensions ** -1)}
        eprop_z : 1
        eprop_nspikes : 1
        eprop_L : {oc.unit_string(st.L_dim)}
    """) + b2.Equations("\n".join(f"eprop_init_{s} : {oc.unit_string(der.dimensions[s])}" for s in der.states)
                         + "".join(f"\neprop_lower_{s} : {oc.unit_string(der.dimensions[s])}" for s in der.states
                                   if s in (lower_bounds or {})))
    name, dt = recurrent.name, recurrent.clock.dt
    rec = _group_copy(rb, recurrent, extra, st, sched, ns)
    for s in der.states:
        value = restart_values[s] if s in (restart_values or {}) else recurrent.variables[s].get_value()
        rb.values(rec, f"eprop_init_{s}", np.broadcast_to(np.asarray(value), len(recurrent)))
    refractory = recurrent._refractory is not False
    rb.call(rec, "run_regularly", _psi_code(recurrent, der, st) + "\neprop_nspikes += eprop_z",
            when=sched.threshold[0], order=sched.threshold[1] + 1, name=f"{name}_eprop_psi")
    rb.call(rec, "run_regularly", "eprop_nspikes = 0", dt=st.T * dt, when="start", order=1, name=f"{name}_eprop_count")
    bounds = _lower_bounds(rb, rec, der, lower_bounds)
    if bounds:  # the clamp of docs/model.rst §2 step 3: after the reset and the arrivals, before the threshold
        rb.call(rec, "run_regularly", bounds, when=sched.threshold[0], order=sched.threshold[1] - 1,
                name=f"{name}_eprop_clamp")
    if restart_at is not None:
        code = "\n".join(f"{s} = eprop_init_{s}" for s in der.states) + "\neprop_z = 0"
        if bounds:  # a restart after the clamp's slot (the user's schedule) is clamped too
            code += "\n" + bounds
        if refractory:
            code += "\nlastspike = -1e4*second\nnot_refractory = True"
        rb.call(rec, "run_regularly", code, dt=st.T * dt, when=restart_at[0], order=restart_at[1],
                name=f"{name}_eprop_restart")
    return rec


def _softmax_constants(softmax, y_dim) -> dict[str, Any]:
    """``eprop_offset`` and ``eprop_scale`` of the softmax.

    ``pi_k = exp((y_k + offset)/scale) / sum_l exp((y_l + offset)/scale)``.
    """
    b2 = _b2()
    unknown = sorted(set(softmax or {}) - {"offset", "scale"})
    if unknown:
        raise ParameterError(f"softmax.{unknown[0]}: unknown; valid names are offset, scale")
    scale = (softmax or {}).get("scale", b2.mV if y_dim is b2.volt.dim else _q(1.0, y_dim))
    offset = (softmax or {}).get("offset", _q(0.0, y_dim))
    for key, value in (("scale", scale), ("offset", offset)):
        if _dim(value) is not y_dim:
            raise ParameterError(f"softmax.{key} = {value}: needs the dimensions of the readout ('{y_dim}')")
    return {"eprop_offset": offset, "eprop_scale": scale}


def _batch_due(st: _Settings) -> str:
    """Factor of an optimizer mask at an interval boundary: due after every ``batch_size`` intervals (§4)."""
    return "" if st.batch_size == 1 else f"*int(((t_in_timesteps // {st.T}) % {st.batch_size}) == 0)"


def _batch_scale(st: _Settings) -> str:
    """The mean over the batch: ``cumulative /= batch_size`` (docs/model.rst §4)."""
    return "" if st.batch_size == 1 else f"(1.0/{st.batch_size})*"


def _lower_bounds(rb, rec, der, lower_bounds) -> str:
    """Code clamping states at their lower bounds (``eprop_lower_<x>`` per neuron); no gradient through it."""
    lines = []
    for var, bound in (lower_bounds or {}).items():
        if var not in der.states:
            raise ParameterError(f"lower_bounds: '{var}' is not a state variable of NeuronGroup '{der.group.name}' "
                                 f"(its states are {', '.join(der.states)})")
        if _dim(bound) is not der.dimensions[var]:
            raise ParameterError(f"lower_bounds['{var}'] = {bound}: needs dimensions '{der.dimensions[var]}'")
        rb.values(rec, f"eprop_lower_{var}", np.broadcast_to(np.asarray(bound), len(rec)))
        # the int() form leaves a value above its bound bit for bit (np.maximum of the reference)
        low = f"eprop_lower_{var}"
        lines.append(f"{var} = {var}*int({var} >= {low}) + {low}*int({var} < {low})")
    return "\n".join(lines)


def _target_code(target) -> str:
    """The readout target as code: a TimedArray ``eprop_target(t, i)`` (or ``(t)``), or the expression."""
    b2 = _b2()
    if isinstance(target, b2.TimedArray):
        return "eprop_target(t, i)" if target.values.ndim == 2 else "eprop_target(t)"
    if isinstance(target, str):
        return f"({target})"
    raise ParameterError(f"target = {type(target).__name__}: expected a brian2.TimedArray or an expression string")


def _readout(rb, rec, st: _Settings, target, readout_tau, regular_arrival: bool, feedback: str, ns, restart: bool,
             trace_tau, softmax, drive, lower_bound):
    """Readout neurons, their plastic synapses and the learning signal (a summed variable)."""
    b2 = _b2()
    name, dt, T = rec.name, rec.clock.dt, st.T
    tcode = _target_code(target)
    yu = oc.unit_string(st.y_dim)
    space = {**ns, "eprop_target": target, "eprop_tau_out": readout_tau}
    window = f"int((t_in_timesteps % {T}) >= {T - st.TL})"
    leak = "-y/eprop_tau_out"
    for key, value in (("readout_drive", drive), ("readout_lower_bound", lower_bound)):
        if value is not None and _dim(value) is not st.y_dim:
            raise ParameterError(f"{key} = {value}: needs the dimensions of the readout ('{st.y_dim}')")
    if drive is not None:  # a constant current: y relaxes to the drive (P_i I_e per step, docs/model.rst §2)
        space["eprop_y_drive"] = drive
        leak = "(eprop_y_drive - y)/eprop_tau_out"
    if st.cross_entropy:  # err = pi - target with pi the softmax of the potentials (docs/model.rst §2)
        space.update(_softmax_constants(softmax, st.y_dim))
        eqs = f"""
        dy/dt = {leak} : {yu}
        eprop_norm : 1
        eprop_pi = exp((y + eprop_offset)/eprop_scale)/eprop_norm : 1
        err = (eprop_pi - {tcode})*{window} : 1
        """
    else:
        eqs = f"""
        dy/dt = {leak} : {yu}
        err = (y - {tcode})*{window} : {yu}
        """
    if lower_bound is not None:
        eqs += f"eprop_y_min : {yu}\n"
    readout = rb.new(b2.NeuronGroup, st.w_out.shape[0], eqs, method="exact", namespace=space, dt=dt,
                     name=f"{name}_readout")
    zeta = "1" if regular_arrival else "(1 - exp(-dt/eprop_tau_out))"
    symmetric = feedback == "symmetric"
    if feedback not in ("random", "symmetric"):
        raise ParameterError(f"feedback = {feedback!r}: valid values are 'random', 'symmetric'")
    G_dim = st.L_dim / st.y_dim
    model = (f"w_out : {yu}\neprop_zbar : 1\neprop_G : {oc.unit_string(G_dim)}\neprop_m : {oc.unit_string(G_dim)}\n"
             f"eprop_v2 : {oc.unit_string(G_dim ** 2)}\neprop_step : 1\n") + (
        f"eprop_L_pre = w_out*err_post : {oc.unit_string(st.L_dim)} (summed)" if symmetric else "")
    adam = st.opt["type"] == "adam"
    syn_ns = {**space, "eprop_eta": _eta(st.opt.get("eta_out", st.opt["eta"]), st.y_dim if adam else st.y_dim / G_dim,
                                      "optimizer.eta_out"),
              "eprop_eps_adam": _eta(st.opt["epsilon"], G_dim, "optimizer.epsilon"),
              "eprop_w_min": st.opt["w_min"] if st.opt["w_min"] is not None else _q(-np.inf, st.y_dim),
              "eprop_w_max": st.opt["w_max"] if st.opt["w_max"] is not None else _q(np.inf, st.y_dim)}
    ro_syn = rb.new(b2.Synapses, rec, readout, model, on_pre=f"y_post += {zeta}*w_out\neprop_zbar += {zeta}",
                         namespace=syn_ns, dt=dt, name=f"{name}_readout_syn")
    rb.call(ro_syn, "connect")
    rb.values(ro_syn, "w_out", np.asarray(st.w_out)[ro_syn.j[:], ro_syn.i[:]])
    kappa_out = float(np.exp(-float(dt / readout_tau)))
    kappa = float(np.exp(-float(dt / (trace_tau if trace_tau is not None else readout_tau))))
    rb.call(ro_syn, "run_regularly", f"eprop_zbar = {kappa_out!r}*eprop_zbar", when="before_groups",
            name=f"{name}_readout_decay")
    rb.call(ro_syn, "run_regularly", "eprop_G += err_post*eprop_zbar", when="end", order=0, name=f"{name}_readout_grad")
    # the readout learns with the same optimizer (eta_out, default eta), at each interval start
    code = oc.optimizer_code(st.opt, "w_out", "int(t_in_timesteps > 0)" + _batch_due(st),
                             gradient=_batch_scale(st) + st.grad_scale + "eprop_G")
    code += "\neprop_G = (1 - eprop_apply)*eprop_G"
    rb.call(ro_syn, "run_regularly", code + ("\neprop_zbar = 0*eprop_zbar" if restart else ""), dt=T * dt, when="start",
                         order=0, name=f"{name}_readout_optimize")
    objects = [readout, ro_syn]
    if lower_bound is not None:  # the readout's v_min: after this step's arrivals, before its error is used
        rb.values(readout, "eprop_y_min", np.broadcast_to(np.asarray(lower_bound), len(readout)))
        rb.call(readout, "run_regularly", "y = y*int(y >= eprop_y_min) + eprop_y_min*int(y < eprop_y_min)",
                when="end", order=-30, name=f"{name}_readout_clamp")
    if st.cross_entropy:  # the readouts exchange u = exp(v) (NEST's rate connections): the softmax normaliser
        norm = rb.new(b2.Synapses, readout, readout,
                      "eprop_norm_post = exp((y_pre + eprop_offset)/eprop_scale) : 1 (summed)", namespace=space,
                      dt=dt, name=f"{name}_readout_norm")
        rb.call(norm, "connect")
        rb.set(norm, ("summed_updaters", ("eprop_norm_post",)), "when", "end")  # this step's potentials
        rb.set(norm, ("summed_updaters", ("eprop_norm_post",)), "order", -20)  # before the learning signal
        objects.append(norm)
    if restart:
        rb.call(readout, "run_regularly", "y = 0*y", dt=T * dt, when="start", order=1, name=f"{name}_readout_restart")
    fb = None
    if symmetric:
        owner, key = ro_syn, "eprop_L_pre"
    else:
        fb = rb.new(b2.Synapses, readout, rec,
                    f"B : {yu}\neprop_L_post = B*err_pre : {oc.unit_string(st.L_dim)} (summed)",
                         namespace=space, dt=dt, name=f"{name}_feedback")
        rb.call(fb, "connect")
        rb.values(fb, "B", np.asarray(st.w_fb)[fb.j[:], fb.i[:]])
        owner, key = fb, "eprop_L_post"
        objects.append(fb)
    rb.set(owner, ("summed_updaters", (key,)), "when", "end")  # after the readout received this step's spikes
    rb.set(owner, ("summed_updaters", (key,)), "order", -10)
    return readout, ro_syn, fb, objects, kappa


def _plastic_copy(rb, inp, der, recurrent, rec, source, st: _Settings, sched: _Schedule, ns, weight: str, kappa: float,
                  restart_at, nest_boundary):
    """The user's Synapses with the eligibility vector, traces, gradient and optimizer."""
    b2 = _b2()
    s = inp.synapses
    dt, T = rec.clock.dt, st.T
    w_dim = s.variables[weight].dim
    G_dim = st.L_dim / w_dim
    reach = der.reach
    model = s.equations + b2.Equations("\n".join(
        [f"{oc.eps_name(k)} : {oc.unit_string(der.dimensions[k] / w_dim)}" for k in reach]
        + [f"eprop_e : {oc.unit_string(w_dim ** -1)}", f"eprop_ebar : {oc.unit_string(w_dim ** -1)}",
           f"eprop_esum : {oc.unit_string(w_dim ** -1)}", f"eprop_G : {oc.unit_string(G_dim)}",
           f"eprop_G_last : {oc.unit_string(G_dim)}", f"eprop_m : {oc.unit_string(G_dim)}",
           f"eprop_v2 : {oc.unit_string(G_dim ** 2)}", "eprop_step : 1", "eprop_arrival : second"]))
    user_path = s._pathways[0]
    path_when, path_order = sched.pathways[s.name]
    on_pre = {"pre": user_path.code + oc.input_code(der, inp.coefficients), "eprop_arrive": "eprop_arrival = t"}
    opt = st.opt
    syn_ns = {**dict(s.namespace or {}), **ns,
              "eprop_eta": _eta(opt["eta"], w_dim if opt["type"] == "adam" else w_dim / G_dim, "optimizer.eta"),
              "eprop_eps_adam": _eta(opt["epsilon"], G_dim, "optimizer.epsilon"),
              "eprop_w_min": opt["w_min"] if opt["w_min"] is not None else _q(-np.inf, w_dim),
              "eprop_w_max": opt["w_max"] if opt["w_max"] is not None else _q(np.inf, w_dim),
              "eprop_c_reg": st.c_reg, "eprop_f_target": st.f_target,
              "eprop_refractory": recurrent._refractory if recurrent._refractory is not False else 0 * b2.second}
    syn = rb.new(b2.Synapses, source, rec, model, on_pre=on_pre, namespace=syn_ns, dt=dt, name=f"{s.name}_eprop")
    rb.call(syn, "connect", i=np.asarray(s.i[:]), j=np.asarray(s.j[:]))
    rb.set(syn, ("pre",), "when", path_when)
    rb.set(syn, ("pre",), "order", path_order)
    rb.set(syn, ("eprop_arrive",), "when", path_when)
    rb.set(syn, ("eprop_arrive",), "order", path_order - 3)
    delays = np.asarray(s.delay[:])
    if delays.size and np.any(delays != 0):
        for path in ("pre", "eprop_arrive"):
            rb.set(syn, (path,), "delay", delays * b2.second)
    _copy_values(rb, s, syn, _user_variables(s))
    (su_when, su_order), (thr_when, thr_order), (rs_when, rs_order) = sched.update, sched.threshold, sched.reset
    rb.call(syn, "run_regularly", oc.jacobian_code(der), when=su_when, order=su_order - 1,
            name=f"{s.name}_eprop_jacobian")
    rb.call(syn, "run_regularly", oc.trace_code(der), when=thr_when, order=thr_order + 2, name=f"{s.name}_eprop_trace")
    code = oc.reset_code(der)
    if code:
        rb.call(syn, "run_regularly", code, when=rs_when, order=rs_order - 1, name=f"{s.name}_eprop_reset")
    rb.call(syn, "run_regularly", oc.accumulate_code(T, kappa, split_last=nest_boundary), when="end", order=0,
                      name=f"{s.name}_eprop_accumulate")
    restart = "\n".join([f"{oc.eps_name(k)} = 0*{oc.eps_name(k)}" for k in reach]
                        + ["eprop_ebar = 0*eprop_ebar", "eprop_esum = 0*eprop_esum"])
    if nest_boundary:
        rb.call(syn, "run_regularly", restart, dt=T * dt, when=restart_at[0], order=restart_at[1],
                name=f"{s.name}_eprop_restart")
        # NEST applies an interval's update when the synapse's next spike passes it; one arriving in
        # step 1 of the next interval comes before the last step's learning signal (docs/model.rst §6)
        early = "int(eprop_arrival == t)" if s.source is not recurrent else "0"
        boundary = f"int((t_in_timesteps % {T}) == 1 and t_in_timesteps > {T})"
        if st.batch_size == 1:
            code = oc.optimizer_code(opt, weight, boundary,
                                     gradient=f"{st.grad_scale}(eprop_G + (1 - {early})*eprop_G_last)")
            code += "\neprop_G = (1 - eprop_apply)*eprop_G\neprop_G_last = (1 - eprop_apply)*eprop_G_last"
        else:  # every interval's gradient is complete at its boundary; the optimizer is due every B intervals
            code = (f"eprop_boundary = {boundary}\n"
                    f"eprop_G = eprop_G + eprop_boundary*(1 - {early})*eprop_G_last\n"
                    "eprop_G_last = (1 - eprop_boundary)*eprop_G_last\n")
            code += oc.optimizer_code(opt, weight, "eprop_boundary" + _batch_due(st),
                                      gradient=_batch_scale(st) + st.grad_scale + "eprop_G")
            code += "\neprop_G = (1 - eprop_apply)*eprop_G"
        rb.call(syn, "run_regularly", code, when=path_when, order=path_order - 2, name=f"{s.name}_eprop_optimize")
    else:
        code = oc.optimizer_code(opt, weight, "int(t_in_timesteps > 0)" + _batch_due(st),
                                 gradient=_batch_scale(st) + st.grad_scale + "eprop_G")
        rb.call(syn, "run_regularly", code + "\neprop_G = (1 - eprop_apply)*eprop_G\neprop_esum = 0*eprop_esum",
                          dt=T * dt, when="start", order=0, name=f"{s.name}_eprop_optimize")
    return syn


# ---------------------------------------------------------------------------------------------- event family
@dataclass
class _EventSettings:
    """Settings of the event family (docs/model.rst §3)."""

    kappa: Any
    kappa_reg: Any
    cutoff: Any  # steps per recurrent neuron
    readout_cutoff: Any  # steps per readout
    each_step: bool
    step_offset: int
    lam: Any  # TimedArray of the learning-window signal, or None (1)


def _per_neuron(value, n: int, key: str, *, default):
    """A number or one per neuron (``default`` when None), checked."""
    arr = np.broadcast_to(np.asarray(default if value is None else value, dtype=float), (n,)) \
        if np.ndim(value) == 0 or np.shape(value) == (n,) else None
    if arr is None:
        raise ParameterError(f"{key}: shape {np.shape(value)}, expected a number or one per neuron ({n})")
    return arr


def _cutoff_steps(value, n: int, dt, key: str) -> np.ndarray:
    """An ISI cutoff (Brian2 time, one or per neuron; None: none) in whole steps >= 1."""
    from .online_event import NO_CUTOFF

    if value is None:
        return np.full(n, NO_CUTOFF, dtype=np.int64)
    if _dim(value) is not _b2().second.dim:
        raise ParameterError(f"{key} = {value}: needs a time")
    steps = np.broadcast_to(np.round(np.asarray(value / dt, dtype=float)), (n,))
    if np.any(steps < 1):
        raise ParameterError(f"{key} = {value}: allowed range is >= dt")
    return np.minimum(steps, NO_CUTOFF).astype(np.int64)


def _event_order(sched: _Schedule, path: tuple[str, int], group_name: str) -> tuple[str, ...]:
    """The operations of one step in the order of their schedule slots (the threshold before the reset)."""
    slots = {"update": sched.update, "input": path, "threshold": sched.threshold, "reset": sched.reset}
    order = tuple(sorted(slots, key=lambda k: (_slot_index(slots[k][0]), slots[k][1])))
    if order.index("threshold") > order.index("reset"):
        raise IncompatibleModelError(
            f"NeuronGroup '{group_name}': the reset runs before the threshold ('{sched.reset[0]}' before "
            f"'{sched.threshold[0]}'), so it acts on the previous step's spike; the event family resets in the "
            f"step of the spike (docs/model.rst §3): keep the reset after the threshold")
    return order


def _recurrent_event(rb, recurrent, der, st: _Settings, ev: _EventSettings, sched: _Schedule, ns):
    """The user's NeuronGroup with the event family's per-step coefficients and their end-of-step copies."""
    from . import online_event as oe

    b2 = _b2()
    coef = oe.coefficients(der)
    lines = [f"eprop_psi : {oc.unit_string(der.threshold_dimensions ** -1)}", "eprop_z : 1", "eprop_zr : 1",
             f"eprop_L : {oc.unit_string(st.L_dim)}", "eprop_fbar : Hz", f"eprop_fr : {oc.unit_string(st.L_dim)}",
             "eprop_kappa : 1 (constant)", "eprop_kappa_reg : 1 (constant)", "eprop_cutoff : integer (constant)"]
    lines += [f"{n} : {oc.unit_string(d)}" for n, (_, d) in coef.items()]
    snap = {**{n: d for n, (_, d) in coef.items()}, "eprop_psi": der.threshold_dimensions ** -1,
            "eprop_zr": b2.units.fundamentalunits.DIMENSIONLESS, "eprop_L": st.L_dim, "eprop_fr": st.L_dim}
    lines += [f"{oe.snapshot(n)} : {oc.unit_string(d)}" for n, d in snap.items()]
    refractory = recurrent._refractory if recurrent._refractory is not False else 0 * b2.second
    ns = {**ns, "eprop_c_reg": st.c_reg, "eprop_f_target": st.f_target, "eprop_refractory": refractory}
    rec = _group_copy(rb, recurrent, b2.Equations("\n".join(lines)), st, sched, ns)
    name = recurrent.name
    for var, value in (("eprop_kappa", ev.kappa), ("eprop_kappa_reg", ev.kappa_reg), ("eprop_cutoff", ev.cutoff)):
        rb.values(rec, var, value)
    (su_when, su_order), (thr_when, thr_order), (rs_when, rs_order) = sched.update, sched.threshold, sched.reset
    code = oe.neuron_jacobian_code(der)
    if code:
        rb.call(rec, "run_regularly", code, when=su_when, order=su_order - 1, name=f"{name}_eprop_jacobian")
    rb.call(rec, "run_regularly", _psi_code(recurrent, der, st) + "\n" + oe.neuron_threshold_code(der),
            when=thr_when, order=thr_order + 1, name=f"{name}_eprop_psi")
    rb.call(rec, "run_regularly", oe.neuron_reset_code(der), when=rs_when, order=rs_order - 1,
            name=f"{name}_eprop_reset")
    rb.call(rec, "run_regularly", oe.neuron_snapshot_code(der), when="end", order=50, name=f"{name}_eprop_history")
    return rec


def _optimizer_namespace(opt, w_dim, G_dim, eta_key: str = "eta") -> dict[str, Any]:
    """Constants of the optimizer code in the weight's and gradient's units (docs/model.rst §4)."""
    from .event_functions import functions

    adam = opt["type"] == "adam"
    return {**functions(), "eprop_eta": _eta(opt.get(eta_key, opt["eta"]), w_dim if adam else w_dim / G_dim,
                                             f"optimizer.{eta_key}"),
            "eprop_eps_adam": _eta(opt["epsilon"], G_dim, "optimizer.epsilon"),
            "eprop_beta_1": float(opt["beta_1"]), "eprop_beta_2": float(opt["beta_2"]),
            "eprop_w_min": opt["w_min"] if opt["w_min"] is not None else _q(-np.inf, w_dim),
            "eprop_w_max": opt["w_max"] if opt["w_max"] is not None else _q(np.inf, w_dim),
            "eprop_wu": _q(1.0, w_dim), "eprop_gu": _q(1.0, G_dim)}


def _window_model(G_dim) -> list[str]:
    """Synapse variables of the window, NEST's buffers and the optimizer (docs/model.rst §3, §4)."""
    g = oc.unit_string(G_dim)
    return ["eprop_zpb : 1", "eprop_zcb : 1", "eprop_opened : integer", "eprop_rem : integer", "eprop_dec : integer",
            f"eprop_inc : {g}", f"eprop_grad : {g}", f"eprop_cum : {g}", "eprop_ostep : integer", "eprop_m1 : 1",
            "eprop_m2 : 1", "eprop_b1p : 1", "eprop_b2p : 1", "eprop_w_ad : 1"]


def _start_optimizer(rb, syn) -> None:
    n = len(syn)
    rb.values(syn, "eprop_ostep", np.ones(n, dtype=np.int32))
    rb.values(syn, "eprop_b1p", np.ones(n))
    rb.values(syn, "eprop_b2p", np.ones(n))


def _plastic_event(rb, inp, der, rec, source, st: _Settings, ev: _EventSettings, sched: _Schedule, ns, weight: str):
    """The user's Synapses with the event family's history step, window and optimizer."""
    from . import online_event as oe

    b2 = _b2()
    s = inp.synapses
    w_dim = s.variables[weight].dim
    G_dim = st.L_dim / w_dim
    model = s.equations + b2.Equations("\n".join(
        [f"{oc.eps_name(k)} : {oc.unit_string(der.dimensions[k] / w_dim)}" for k in der.reach]
        + [f"eprop_{x} : {oc.unit_string(w_dim ** -1)}" for x in ("e", "ebar", "ebar_reg")] + _window_model(G_dim)))
    B, off = st.batch_size, ev.step_offset
    arrive = oe.arrival_code(st.opt, weight, f"t_in_timesteps + {off - 1}", ev.each_step, B)
    user_path = s._pathways[0]
    path_when, path_order = sched.pathways[s.name]
    syn_ns = {**dict(s.namespace or {}), **ns, **_optimizer_namespace(st.opt, w_dim, G_dim)}
    syn = rb.new(b2.Synapses, source, rec, model, on_pre={"pre": arrive + user_path.code}, namespace=syn_ns,
                 dt=rec.clock.dt, name=f"{s.name}_eprop")
    rb.call(syn, "connect", i=np.asarray(s.i[:]), j=np.asarray(s.j[:]))
    rb.set(syn, ("pre",), "when", path_when)
    rb.set(syn, ("pre",), "order", path_order)
    delays = np.asarray(s.delay[:])
    if delays.size and np.any(delays != 0):
        rb.set(syn, ("pre",), "delay", delays * b2.second)
    _copy_values(rb, s, syn, _user_variables(s))
    _start_optimizer(rb, syn)
    code = oe.history_code(der, inp.coefficients, _event_order(sched, (path_when, path_order), rec.name))
    code += oe.optimizer_step_code(st.opt, weight, f"t_in_timesteps + {off}", ev.each_step, B)
    # the previous step, once this step's arrivals have opened their windows (docs/model.rst §3)
    rb.call(syn, "run_regularly", code, when=path_when, order=path_order + 2, name=f"{s.name}_eprop_history")
    return syn


def _readout_event(rb, rec, st: _Settings, ev: _EventSettings, target, readout_tau, feedback: str, ns):
    """Readouts of the event family: ``y = kappa y + sum w z``, ``err = (y - target) lambda``, their synapses'
    windows and optimizer, and the learning signal (docs/model.rst §3)."""
    from . import online_event as oe

    b2 = _b2()
    name, dt = rec.name, rec.clock.dt
    tcode = _target_code(target)
    if feedback not in ("random", "symmetric"):
        raise ParameterError(f"feedback = {feedback!r}: valid values are 'random', 'symmetric'")
    yu = oc.unit_string(st.y_dim)
    space = {**ns, "eprop_target": target, "eprop_tau_out": readout_tau}
    lam = "1"
    if ev.lam is not None:
        if not isinstance(ev.lam, b2.TimedArray):
            raise ParameterError("learning_window: the event family takes a brian2.TimedArray of the learning-window "
                                 "signal lambda(t) (docs/model.rst §3), or None")
        space["eprop_lambda"], lam = ev.lam, "eprop_lambda(t)"
    eqs = f"""
    dy/dt = -y/eprop_tau_out : {yu}
    err = (y - {tcode})*{lam} : {yu}
    eprop_errp : {yu}
    eprop_kappa_out : 1 (constant)
    eprop_cutoff : integer (constant)
    """
    n_out = st.w_out.shape[0]
    readout = rb.new(b2.NeuronGroup, n_out, eqs, method="exact", namespace=space, dt=dt, name=f"{name}_readout")
    rb.values(readout, "eprop_kappa_out", np.full(n_out, float(np.exp(-float(dt / readout_tau)))))
    rb.values(readout, "eprop_cutoff", ev.readout_cutoff)
    rb.call(readout, "run_regularly", "eprop_errp = err", when="end", order=50, name=f"{name}_readout_history")
    G_dim = st.L_dim / st.y_dim
    symmetric = feedback == "symmetric"
    model = "\n".join([f"w_out : {yu}", "eprop_zbar : 1"] + _window_model(G_dim)) + (
        f"\neprop_B : {yu}\neprop_B_next : {yu}\n"
        f"eprop_L_pre = eprop_B*err_post : {oc.unit_string(st.L_dim)} (summed)" if symmetric else "")
    B, off = st.batch_size, ev.step_offset
    arrive = oe.arrival_code(st.opt, "w_out", f"t_in_timesteps + {off}", ev.each_step, B)
    ro_syn = rb.new(b2.Synapses, rec, readout, model, on_pre=arrive + "y_post += w_out",
                    namespace={**space, **_optimizer_namespace(st.opt, st.y_dim, G_dim, "eta_out")}, dt=dt,
                    name=f"{name}_readout_syn")
    rb.call(ro_syn, "connect")
    w_out = np.asarray(st.w_out)[ro_syn.j[:], ro_syn.i[:]]
    rb.values(ro_syn, "w_out", w_out)
    _start_optimizer(rb, ro_syn)
    code = oe.readout_history_code() + oe.optimizer_step_code(st.opt, "w_out", f"t_in_timesteps + {off + 1}",
                                                               ev.each_step, B)
    rb.call(ro_syn, "run_regularly", code, when="after_synapses", order=0, name=f"{name}_readout_grad")
    objects = [readout, ro_syn]
    fb = None
    if symmetric:  # B is W_out as the previous step left it, before this step's history step (docs/model.rst §3b)
        rb.values(ro_syn, "eprop_B", w_out)
        rb.values(ro_syn, "eprop_B_next", w_out)
        rb.call(ro_syn, "run_regularly", "eprop_B_next = w_out", when="after_synapses", order=-1,
                name=f"{name}_readout_feedback_copy")
        rb.call(ro_syn, "run_regularly", "eprop_B = eprop_B_next", when="end", order=0,
                name=f"{name}_readout_feedback")
        owner, key = ro_syn, "eprop_L_pre"
    else:
        fb = rb.new(b2.Synapses, readout, rec,
                    f"B : {yu}\neprop_L_post = B*err_pre : {oc.unit_string(st.L_dim)} (summed)", namespace=space,
                    dt=dt, name=f"{name}_feedback")
        rb.call(fb, "connect")
        rb.values(fb, "B", np.asarray(st.w_fb)[fb.j[:], fb.i[:]])
        owner, key = fb, "eprop_L_post"
        objects.append(fb)
    rb.set(owner, ("summed_updaters", (key,)), "when", "end")  # this step's error
    rb.set(owner, ("summed_updaters", (key,)), "order", -10)
    return readout, ro_syn, fb, objects


def online_eprop(recurrent, synapses: Sequence[Any], *, n_out: int = 1, target: Any, update_interval: Any = None,
                 learning_window: Any = None, readout_tau: Any, readout_regular_spike_arrival: bool = False,
                 surrogate: Mapping[str, Any], c_reg: Any = 0.0, f_target: Any = 0.0,
                 optimizer: Mapping[str, Any] | None = None, feedback: str = "random", w_out: Any = None,
                 w_fb: Any = None, seed: int = 0, weight: str = "w", voltage: str | None = None,
                 stop_reset_gradient: Sequence[str] | None = None, reset_state_on_update: bool = False,
                 namespace: Mapping[str, Any] | None = None, inputs: Mapping[Any, Any] | None = None,
                 eprop_schedule: bool = False, restart_values: Mapping[str, Any] | None = None,
                 average_gradient: bool = False, trace_tau: Any = None, batch_size: int = 1,
                 lower_bounds: Mapping[str, Any] | None = None, loss: str = "mean_squared_error",
                 softmax: Mapping[str, Any] | None = None, readout_drive: Any = None,
                 readout_lower_bound: Any = None, family: str = "original", kappa: Any = None,
                 kappa_reg: Any = None, isi_trace_cutoff: Any = None, readout_isi_trace_cutoff: Any = None,
                 step_offset: int = 0) -> OnlineEprop:
    """Build online e-prop learning (original or event family) for a user's Brian2 network.

    Parameters
    ----------
    recurrent : brian2.NeuronGroup
        The user's recurrent group (any equations the derivation accepts).
    synapses : sequence of brian2.Synapses
        The user's plastic Synapses onto ``recurrent`` (from input groups of any kind, or recurrent).
    n_out : int
        Number of readouts.
    target : brian2.TimedArray or str
        The readout target: a TimedArray ``target(t, i)`` (2-D, ``[time, readout]``) or ``target(t)``
        (1-D, one readout), or a Brian2 expression in ``t`` and ``i`` (readout index), in the units
        of the readout weights.
    update_interval, learning_window : Brian2 times
        Original family: length of an update interval and of its learning window (its last part;
        default: all).  Event family: no ``update_interval``; ``learning_window`` is a TimedArray of
        the learning-window signal ``lambda(t)`` that multiplies the error (default 1, docs/model.rst §3).
    readout_tau : Brian2 time
        Readout membrane time constant (original family: also the filter of ``ebar``, the TensorFlow form).
    readout_regular_spike_arrival : bool
        False: a spike adds ``(1 - kappa) w_out`` to the readout (TensorFlow form); True: ``w_out``.
    surrogate : mapping
        ``function`` (docs/model.rst §1, default ``piecewise_linear``), ``height`` (1/[g]) and
        ``width`` ([g]) with ``g`` the threshold's difference (``v - v_th``: width in volt).
    c_reg : float or Quantity
        Firing-rate regularisation in loss units (a float is taken in mV² for a readout in volt,
        as the canonical ``c_reg``).
    f_target : Quantity or float
        Target rate (Hz).
    optimizer : mapping
        ``type`` ``'gradient_descent'`` (``eta`` in [w]/[G]: dimensionless for voltage weights and a
        readout in volt, then equal to the canonical ``eta``) or ``'adam'`` (``eta`` in the weight's
        units, ``beta_1``, ``beta_2``, ``epsilon``); ``w_min``, ``w_max`` (quantities); ``eta_out``
        for the readout's gradient descent (default ``eta``).  Event family: ``optimize_each_step``
        (default True; False: one call per presynaptic spike with the gradient summed since the last).
    feedback : {'random', 'symmetric'}
        ``random``: fixed ``w_fb``; ``symmetric``: the learning signal uses the current readout weights.
    w_out, w_fb : Quantity arrays, optional
        ``(n_out, n_rec)`` readout and ``(n_rec, n_out)`` feedback weights (the units of the target);
        default ``N(0, 1)/sqrt(n_rec)`` mV drawn with ``seed``.
    weight, voltage, stop_reset_gradient
        See :func:`brian2_ext.derivation.derive`.
    reset_state_on_update : bool
        NEST's interval boundary: reset the neuron and readout state to their initial values at each
        interval start (after the arrivals of its first step, which are dropped) and apply the
        update in step 1 as NEST 3.10 does (docs/model.rst §6).
    namespace : mapping, optional
        External names of the model strings (the objects' own namespaces take precedence, as in Brian2).
    inputs : mapping, optional
        Input groups to use instead of the user's (``{user_group: other_group}``, same size).
    eprop_schedule : bool
        Run the copies' reset and ``on_pre`` in the e-prop slots (as :func:`brian2_ext.schedule_like_eprop`)
        whatever the user's schedule; event family: only ``on_pre`` (after the leak, before the
        threshold; the reset stays in the step of the spike).
    restart_values : mapping, optional
        State values at each interval start (default: the values the user set).
    average_gradient : bool
        Divide the gradients by the learning window's length (docs/model.rst §2).
    trace_tau : Brian2 time, optional
        Time constant of the ``ebar`` filter (default ``readout_tau``).
    batch_size : int
        Update intervals (event family: time steps) per optimizer call: the gradients of
        ``batch_size`` consecutive intervals are averaged and applied once (docs/model.rst §4).
    lower_bounds : mapping, optional
        ``{state: Quantity}`` (a value or one per neuron): the state is clamped at its bound after
        the reset and the arrivals, before the threshold (``v_min`` of docs/model.rst §2 step 3);
        like NEST and the reference, no gradient flows through the clamp.
    loss : {'mean_squared_error', 'cross_entropy'}
        ``cross_entropy``: the error is ``pi - target`` with ``pi`` the softmax of the readouts
        (docs/model.rst §2) and ``target`` the class probabilities (dimensionless); the learning
        signal then has the units of the feedback weights.
    softmax : mapping, optional
        ``scale`` (default 1 mV) and ``offset`` (default 0) of the softmax,
        ``pi_k = exp((y_k + offset)/scale) / sum_l exp((y_l + offset)/scale)``.
    readout_drive : Quantity, optional
        A constant input of the readouts as the value they relax to, ``dy/dt = (drive - y)/readout_tau``
        (``i_offset tau_m / C_m`` of docs/model.rst §2; units of the readout weights).
    readout_lower_bound : Quantity, optional
        The readouts' clamp (``v_min``): ``y`` is held at it after the step's arrivals, before the
        error is taken.
    family : {'original', 'event'}
        The e-prop family (docs/model.rst §2, §3).  The event family has a mean squared error,
        regular spike arrival at the readouts and none of ``reset_state_on_update``,
        ``restart_values``, ``average_gradient``, ``trace_tau``, ``lower_bounds``, ``softmax``,
        ``readout_drive``, ``readout_lower_bound``.
    kappa, kappa_reg : float or array, optional
        Event family: the filters of ``ebar`` and ``ebar_reg`` and of the firing-rate average
        (NEST's ``kappa``, ``kappa_reg``; one value or one per neuron; default ``exp(-dt/readout_tau)``).
    isi_trace_cutoff, readout_isi_trace_cutoff : Brian2 time, optional
        Event family: the ISI cutoff of the recurrent neurons and of the readouts (one value or one per
        neuron; default none): after a presynaptic spike only that many history steps are integrated.
    step_offset : int
        Event family: the optimizer's step index of the network's step 0 for the recurrent neurons
        (2 reproduces NEST's wiring, docs/model.rst §0): Adam counts time steps from it and catches up
        the ones without a call (zero gradient), and ``batch_size`` groups steps by it (docs/model.rst §4).

    Raises
    ------
    IncompatibleModelError
        The model cannot be derived (naming the object and the reason).
    ParameterError
        A setting is missing, has the wrong dimensions or is out of range.
    """
    b2 = _b2()
    if family not in ("original", "event"):
        raise ParameterError(f"family = {family!r}: valid values are 'original', 'event'")
    if family == "original" and update_interval is None:
        raise ParameterError("update_interval: required in the original family")
    ns = {**dict(namespace or {}), **dict(recurrent.namespace or {})}  # the group's own names take precedence
    ns = {k: v for k, v in ns.items() if not k.startswith("_")}  # Brian2 reserves these (a caller's locals)
    der = derive(recurrent, synapses, namespace=ns, weight=weight, voltage=voltage,
                 stop_reset_gradient=stop_reset_gradient)
    dt = recurrent.clock.dt
    st = _settings(der, dt, n_out=n_out, update_interval=update_interval if family == "original" else None,
                   learning_window=learning_window if family == "original" else None,
                   surrogate=surrogate, optimizer=optimizer, c_reg=c_reg, f_target=f_target, w_out=w_out, w_fb=w_fb,
                   seed=seed, loss=loss)
    if average_gradient:
        st.grad_scale = f"(1.0/{st.TL})*"
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ParameterError(f"batch_size = {batch_size!r}: allowed range is integer >= 1")
    st.batch_size = int(batch_size)
    rb = Recorder()
    replace = dict(inputs or {})
    groups = list(dict.fromkeys(replace.get(s.source, s.source) for s in synapses if s.source is not recurrent))
    for group in groups:
        rb.adopt(group, _input_rebuild(group))
    sched = _Schedule.of(recurrent, synapses, eprop_schedule, family)
    if family == "event":
        return _online_event(rb, recurrent, der, st, sched, ns, groups, replace, synapses, target=target,
                             readout_tau=readout_tau, feedback=feedback, weight=weight, learning_window=learning_window,
                             kappa=kappa, kappa_reg=kappa_reg, isi_trace_cutoff=isi_trace_cutoff,
                             readout_isi_trace_cutoff=readout_isi_trace_cutoff, step_offset=step_offset,
                             refused={"reset_state_on_update": reset_state_on_update, "restart_values": restart_values,
                                      "average_gradient": average_gradient, "trace_tau": trace_tau,
                                      "lower_bounds": lower_bounds, "loss": loss != "mean_squared_error",
                                      "softmax": softmax, "readout_drive": readout_drive,
                                      "readout_lower_bound": readout_lower_bound})
    if "optimize_each_step" in st.opt:
        raise ParameterError("optimizer.optimize_each_step: the original family optimizes once per update interval")
    restart_at = None
    if reset_state_on_update:
        when, order = sched.last_pathway()
        restart_at = (when, order + 1)
    rec = _recurrent_copy(rb, recurrent, der, st, sched, ns, restart_at, restart_values, lower_bounds)
    readout, ro_syn, fb, ro_objects, kappa = _readout(rb, rec, st, target, readout_tau, readout_regular_spike_arrival,
                                                      feedback, ns, reset_state_on_update, trace_tau, softmax,
                                                      readout_drive, readout_lower_bound)
    copies, users = {}, {}
    for inp in der.inputs:
        source = rec if inp.synapses.source is recurrent else replace.get(inp.synapses.source, inp.synapses.source)
        copies[inp.synapses.name] = _plastic_copy(rb, inp, der, recurrent, rec, source, st, sched, ns, weight, kappa,
                                                  restart_at,
                                                  reset_state_on_update)
        users[inp.synapses.name] = inp.synapses
    objects = [rec, *ro_objects, *copies.values()]
    net = b2.Network(*groups, *objects)
    return OnlineEprop(network=net, recurrent=rec, synapses=copies, user_synapses=users, readout=readout,
                       readout_synapses=ro_syn, feedback=fb, derivation=der, weight=weight, objects=objects,
                       recorder=rb)


def _online_event(rb, recurrent, der, st: _Settings, sched: _Schedule, ns, groups, replace, synapses, *, target,
                  readout_tau, feedback, weight, learning_window, kappa, kappa_reg, isi_trace_cutoff,
                  readout_isi_trace_cutoff, step_offset, refused) -> OnlineEprop:
    """The event family's objects (docs/model.rst §3) for :func:`online_eprop`."""
    b2 = _b2()
    for key, value in refused.items():
        if value not in (None, False, {}, ()):
            raise ParameterError(f"{key}: not a setting of the event family (docs/model.rst §3)"
                                 + ("; its loss is mean_squared_error" if key == "loss" else ""))
    if isinstance(step_offset, bool) or not isinstance(step_offset, (int, np.integer)):
        raise ParameterError(f"step_offset = {step_offset!r}: allowed range is an integer")
    n, n_out, dt = len(recurrent), st.w_out.shape[0], recurrent.clock.dt
    kappa_out = float(np.exp(-float(dt / readout_tau)))
    ev = _EventSettings(kappa=_per_neuron(kappa, n, "kappa", default=kappa_out),
                        kappa_reg=_per_neuron(kappa_reg, n, "kappa_reg", default=kappa_out),
                        cutoff=_cutoff_steps(isi_trace_cutoff, n, dt, "isi_trace_cutoff"),
                        readout_cutoff=_cutoff_steps(readout_isi_trace_cutoff, n_out, dt, "readout_isi_trace_cutoff"),
                        each_step=bool(st.opt.get("optimize_each_step", True)), step_offset=int(step_offset),
                        lam=learning_window)
    rec = _recurrent_event(rb, recurrent, der, st, ev, sched, ns)
    readout, ro_syn, fb, ro_objects = _readout_event(rb, rec, st, ev, target, readout_tau, feedback, ns)
    copies, users = {}, {}
    for inp in der.inputs:
        source = rec if inp.synapses.source is recurrent else replace.get(inp.synapses.source, inp.synapses.source)
        copies[inp.synapses.name] = _plastic_event(rb, inp, der, rec, source, st, ev, sched, ns, weight)
        users[inp.synapses.name] = inp.synapses
    objects = [rec, *ro_objects, *copies.values()]
    return OnlineEprop(network=b2.Network(*groups, *objects), recurrent=rec, synapses=copies, user_synapses=users,
                       readout=readout, readout_synapses=ro_syn, feedback=fb, derivation=der, weight=weight,
                       objects=objects, recorder=rb, family="event")


def _recorded(monitor):
    """A monitor's recorded values as plain attributes (readable after the standalone device is reset)."""
    from types import SimpleNamespace

    import brian2 as b2

    if isinstance(monitor, b2.SpikeMonitor):
        return SimpleNamespace(t=monitor.t[:], i=np.asarray(monitor.i[:]))
    if isinstance(monitor, b2.StateMonitor):
        return SimpleNamespace(t=monitor.t[:], **{v: getattr(monitor, v)[:] for v in monitor.record_variables})
    raise TypeError(f"monitor {monitor.name}: only SpikeMonitor and StateMonitor values are read back")


def _input_rebuild(group):
    """How to build an input group again for cpp_standalone (the error is raised only if it is needed)."""
    try:
        return record_input(group)
    except IncompatibleModelError as exc:
        def refuse(exc=exc):
            raise exc
        return refuse
