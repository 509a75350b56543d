"""E-prop derived from the user's own Brian2 equations (brian2_ext.derivation, brian2_ext.online) against an
independent oracle: stop-gradient back-propagation through time of the same discretised model, by JAX
automatic differentiation in float64.

For each non-canonical model (LIF with an exponentially decaying synaptic current, conductance-based LIF,
AdEx with 'euler', Izhikevich) the network is written as a Brian2 user writes it.  Brian2's generated code
runs one update interval with online e-prop (symmetric feedback, the readout in the TensorFlow form of
docs/model.rst §2, where e-prop is exact); JAX runs the same discretised model written here by hand, with
the same pseudo-derivative, the recurrent spikes' dependence on other neurons' past states stopped and no
gradient through the voltage reset (Bellec's choice).  The gradients agree to 1e-10 relative and the
forward spikes are identical.  Real Brian2 (numpy target: no compilation) and real JAX."""

from __future__ import annotations

import brian2 as b2
import jax  # a dev dependency (pip install -e '.[dev]'): missing, the tests fail, never skip
import jax.numpy as jnp
import numpy as np
import pytest
from brian2 import SpikeGeneratorGroup, Synapses, TimedArray, mV, ms, nA, nS, pF

from brian2_ext.derivation import derive
from brian2_ext.online import online_eprop

jax.config.update("jax_enable_x64", True)

RTOL = 1e-10
N_IN, N_REC, N_OUT = 6, 5, 2
b2.BrianLogger.suppress_name("unused_brian_object")


pytestmark = pytest.mark.usefixtures("numpy_target")


# ------------------------------------------------------------------------------------------------ models
# Each model: Brian2 equations as a user writes them, the same discrete step written by hand for JAX
# (SI units, floats), the threshold distance g, the reset, the variable on_pre increments, weight scales.
def _lif_isyn():
    ns = dict(tau=20 * ms, tau_s=5 * ms, v_th=1 * mV)
    eqs = "dv/dt = (I_syn - v)/tau : volt\ndI_syn/dt = -I_syn/tau_s : volt"
    tau, ts, dt = 20e-3, 5e-3, 1e-3

    def step(x):
        v, i = x["v"], x["I_syn"]
        v_new = i * ts * (-jnp.exp(dt / tau) + jnp.exp(dt / ts)) * jnp.exp(-dt / tau) * jnp.exp(-dt / ts) / (tau - ts) \
            + v * jnp.exp(-dt / tau)
        return {"v": v_new, "I_syn": i * jnp.exp(-dt / ts)}

    return dict(eqs=eqs, ns=ns, threshold="v > v_th", reset="v -= v_th", method="exact", on_pre="I_syn_post += w",
                w_unit=mV, w_scale=(3.0, 1.0), dt=1 * ms, step=step, g=lambda x: x["v"] - 1e-3,
                reset_fn=lambda x: {"v": x["v"] - 1e-3}, target="I_syn", init={"v": 0.0, "I_syn": 0.0},
                width=1 * mV, height=0.3 / mV, y_unit=mV)


def _coba_lif():
    ns = dict(tau=20 * ms, tau_g=5 * ms, E_e=0 * mV, E_L=-70 * mV, V_th=-50 * mV, V_r=-65 * mV, C=200 * pF)
    eqs = "dv/dt = (E_L - v)/tau + g*(E_e - v)/C : volt\ndg/dt = -g/tau_g : siemens"
    dt = 0.1e-3

    def step(x):
        v, g = x["v"], x["g"]
        return {"v": dt * ((-70e-3 - v) / 20e-3 + g * (0.0 - v) / 200e-12) + v, "g": -dt * g / 5e-3 + g}

    return dict(eqs=eqs, ns=ns, threshold="v > V_th", reset="v = V_r", method="euler", on_pre="g_post += w",
                w_unit=nS, w_scale=(15.0, 4.0), dt=0.1 * ms, step=step, g=lambda x: x["v"] - (-50e-3),
                reset_fn=lambda x: {"v": -65e-3 + 0.0 * x["v"]}, target="g", init={"v": -65e-3, "g": 0.0},
                width=5 * mV, height=0.3 / (5 * mV), y_unit=mV)


def _adex():
    ns = dict(EL=-70.6 * mV, DT=2 * mV, VT=-50.4 * mV, C=281 * pF, gL=30 * nS, a=4 * nS, tauw=144 * ms,
              b=0.0805 * nA, Vr=-70.6 * mV)
    eqs = ("dv/dt = (gL*(EL - v) + gL*DT*exp((v - VT)/DT) - wa)/C : volt\n"
           "dwa/dt = (a*(v - EL) - wa)/tauw : amp")
    dt = 0.1e-3
    EL, DT, VT, C, gL, a, tauw, b = -70.6e-3, 2e-3, -50.4e-3, 281e-12, 30e-9, 4e-9, 144e-3, 0.0805e-9

    def step(x):
        v, w = x["v"], x["wa"]
        return {"v": v + dt * (DT * gL * jnp.exp((-VT + v) / DT) + gL * (EL - v) - w) / C,
                "wa": dt * (a * (-EL + v) - w) / tauw + w}

    return dict(eqs=eqs, ns=ns, threshold="v > -40*mV", reset="v = Vr; wa += b", method="euler",
                on_pre="v_post += w", w_unit=mV, w_scale=(9.0, 2.0), dt=0.1 * ms, step=step,
                g=lambda x: x["v"] - (-40e-3), reset_fn=lambda x: {"v": EL + 0.0 * x["v"], "wa": x["wa"] + b},
                target="v", init={"v": -70.6e-3, "wa": 0.0}, width=5 * mV, height=0.3 / (5 * mV), y_unit=mV)


def _izhikevich():
    ns = dict(a=0.02 / ms, b=0.2 / ms, c=-65 * mV, d=8 * mV / ms)
    eqs = ("dv/dt = (0.04/ms/mV)*v**2 + (5/ms)*v + 140*mV/ms - u : volt\n"
           "du/dt = a*(b*v - u) : volt/second")
    dt = 0.1e-3

    def step(x):
        v, u = x["v"], x["u"]
        return {"v": dt * (140e-3 / 1e-3 - u + 5 * v / 1e-3 + 0.04 * v ** 2 / (1e-3 * 1e-3)) + v,
                "u": 0.02 / 1e-3 * dt * (0.2 / 1e-3 * v - u) + u}

    return dict(eqs=eqs, ns=ns, threshold="v >= 30*mV", reset="v = c; u += d", method="euler",
                on_pre="v_post += w", w_unit=mV, w_scale=(12.0, 3.0), dt=0.1 * ms, step=step,
                g=lambda x: x["v"] - 30e-3, reset_fn=lambda x: {"v": -65e-3 + 0.0 * x["v"], "u": x["u"] + 8.0},
                target="v", init={"v": -65e-3, "u": -13.0}, strict=False, width=10 * mV, height=0.3 / (10 * mV),
                y_unit=mV)


def _lif_isyn_refractory():
    """The current-based LIF with a 3 ms refractory period during which v is not integrated."""
    m = _lif_isyn()
    m.update(eqs="dv/dt = (I_syn - v)/tau : volt (unless refractory)\ndI_syn/dt = -I_syn/tau_s : volt",
             refractory=3 * ms, n_ref=3, unless=("v",), w_scale=(4.0, 1.0))
    return m


def _adex_delayed():
    """AdEx with recurrent delays of one step (a spike reaches the other neurons in the next step)."""
    m = _adex()
    m.update(rec_delay=0.1 * ms)
    return m


MODELS = {"lif_isyn": _lif_isyn, "coba_lif": _coba_lif, "adex": _adex, "izhikevich": _izhikevich,
          "lif_isyn_refractory": _lif_isyn_refractory, "adex_delayed": _adex_delayed}
T_STEPS = 200


def _user_network(m, seed=3):
    """The user's Brian2 objects: a SpikeGeneratorGroup, the NeuronGroup, input and recurrent Synapses."""
    rng = np.random.default_rng(seed)
    b2.defaultclock.dt = m["dt"]
    rec = b2.NeuronGroup(N_REC, m["eqs"], threshold=m["threshold"], reset=m["reset"], method=m["method"],
                         refractory=m.get("refractory", False), namespace=m["ns"], name="rec")
    for k, v in m["init"].items():
        setattr(rec, k, v * rec.variables[k].unit)
    steps = rng.random((T_STEPS, N_IN)) < 0.08
    steps[0] = False
    t_idx, n_idx = np.nonzero(steps)
    inp = SpikeGeneratorGroup(N_IN, n_idx, t_idx * m["dt"], name="inp")
    s_in = Synapses(inp, rec, f"w : {repr(m['w_unit'].dim) if False else b2.get_unit(m['w_unit'].dim).name}",
                    on_pre=m["on_pre"], name="s_in")
    s_in.connect()
    s_in.w = rng.normal(m["w_scale"][0] / 2, m["w_scale"][0] / 2, len(s_in)) * m["w_unit"]
    s_rec = Synapses(rec, rec, f"w : {b2.get_unit(m['w_unit'].dim).name}", on_pre=m["on_pre"],
                     delay=m.get("rec_delay", 0 * ms), name="s_rec")
    s_rec.connect(condition="i != j")
    s_rec.w = rng.normal(0, m["w_scale"][1], len(s_rec)) * m["w_unit"]
    w_out = rng.normal(0, 1, (N_OUT, N_REC)) * m["y_unit"]
    target = rng.normal(0, 1, (T_STEPS, N_OUT)) * m["y_unit"]
    return dict(rec=rec, inp=inp, s_in=s_in, s_rec=s_rec, steps=steps, w_out=w_out, target=target)


def _brian2_eprop(m, net, c_reg=0.0, regular_arrival=False, full_window=False):
    dt = m["dt"]
    learner = online_eprop(net["rec"], [net["s_in"], net["s_rec"]], n_out=N_OUT,
                           target=TimedArray(net["target"], dt=dt), update_interval=T_STEPS * dt,
                           learning_window=(T_STEPS if full_window else T_STEPS // 2) * dt, readout_tau=10 * ms,
                           readout_regular_spike_arrival=regular_arrival,
                           surrogate={"function": "piecewise_linear", "height": m["height"], "width": m["width"]},
                           c_reg=c_reg, f_target=10 * b2.Hz, optimizer={"eta": 0.0}, feedback="symmetric",
                           w_out=net["w_out"])
    mon = b2.SpikeMonitor(learner.recurrent)
    learner.network.add(mon)
    learner.network.run(T_STEPS * dt)
    z = np.zeros((T_STEPS, N_REC), dtype=bool)
    z[np.round(np.asarray(mon.t / dt)).astype(int), np.asarray(mon.i)] = True
    return learner, z


def _jax_bptt(m, net, c_reg_si=0.0, f_target_dt=0.0):
    """Stop-gradient BPTT of the same discretised model: gradient of the loss with respect to W_in, W_rec, W_out."""
    dt = float(m["dt"])
    kappa = np.exp(-dt / 10e-3)
    height, width = float(m["height"]), float(m["width"])
    strict = m.get("strict", True)
    s_in, s_rec = net["s_in"], net["s_rec"]
    W_in0 = np.zeros((N_REC, N_IN))
    W_in0[s_in.j[:], s_in.i[:]] = np.asarray(s_in.w[:])
    W_rec0 = np.zeros((N_REC, N_REC))
    W_rec0[s_rec.j[:], s_rec.i[:]] = np.asarray(s_rec.w[:])
    W_out0 = np.asarray(net["w_out"])
    x_spk = jnp.asarray(net["steps"], dtype=float)
    tgt = jnp.asarray(np.asarray(net["target"]))
    window = (np.arange(T_STEPS) >= T_STEPS - T_STEPS // 2).astype(float)

    @jax.custom_jvp
    def spike(g):
        return jnp.where(g > 0, 1.0, 0.0) if strict else jnp.where(g >= 0, 1.0, 0.0)

    @spike.defjvp
    def _spike_jvp(primals, tangents):
        (g,), (g_dot,) = primals, tangents
        return spike(g), height * jnp.maximum(0.0, 1.0 - jnp.abs(g) / width) * g_dot

    def loss(W_in, W_rec, W_out):
        delayed = "rec_delay" in m

        def step(carry, xs):
            x, y, counts, last, total, z_prev = carry
            t, spk, target, win = xs
            nr = (t - last >= m.get("n_ref", 0)).astype(float)
            u = dict(m["step"](x))
            for k in m.get("unless", ()):  # Brian2 does not write these while refractory
                u[k] = nr * u[k] + (1 - nr) * x[k]
            z = spike(m["g"](u)) * nr  # no spike and psi = 0 while refractory
            last = jnp.where(jax.lax.stop_gradient(z) > 0.5, t, last)  # refractoriness: no gradient through it
            # arrivals of step t: input spikes and this step's recurrent spikes (stopped: other neurons' states)
            z_rec = jax.lax.stop_gradient(z_prev if delayed else z)
            u[m["target"]] = u[m["target"]] + W_in @ spk + W_rec @ z_rec
            r = m["reset_fn"](u)
            for k, val in r.items():
                gate = jax.lax.stop_gradient(z) if k == "v" else z  # Bellec: no gradient through the voltage reset
                u[k] = u[k] + gate * (val - u[k])
            y = kappa * y + (1 - kappa) * (W_out @ z)
            err = (y - target) * win
            return (u, y, counts + z, last, total + 0.5 * jnp.sum(err ** 2), z), z

        x0 = {k: jnp.full(N_REC, float(v)) for k, v in m["init"].items()}
        carry = (x0, jnp.zeros(N_OUT), jnp.zeros(N_REC), jnp.full(N_REC, -10 ** 6), jnp.asarray(0.0), jnp.zeros(N_REC))
        xs = (jnp.arange(T_STEPS), x_spk, tgt, jnp.asarray(window))
        (_, _, counts, _, total, _), zs = jax.lax.scan(step, carry, xs)
        total = total + 0.5 * c_reg_si * jnp.sum((counts / T_STEPS - f_target_dt) ** 2)
        return total, zs

    (value, zs), grads = jax.jit(jax.value_and_grad(loss, argnums=(0, 1, 2), has_aux=True))(W_in0, W_rec0, W_out0)
    return grads, np.asarray(zs) > 0.5


def _rel(got, want):
    return float(np.max(np.abs(got - want)) / max(float(np.max(np.abs(want))), 1e-300))


@pytest.mark.parametrize("name", list(MODELS))
@pytest.mark.parametrize("c_reg", [300.0])  # the learning signal and the firing-rate term
def test_gradient_of_one_interval_equals_jax_bptt(name, c_reg):
    m = MODELS[name]()
    net = _user_network(m)
    learner, z_b2 = _brian2_eprop(m, net, c_reg=c_reg)
    (g_in, g_rec, g_out), z_jax = _jax_bptt(m, net, c_reg_si=c_reg * 1e-6, f_target_dt=10.0 * float(m["dt"]))
    first = np.nonzero((z_b2 != z_jax).any(1))[0][:1]
    assert np.array_equal(z_b2, z_jax), f"forward spikes differ (first at step {first})"
    assert 0.02 < z_b2.mean() < 0.5, f"spiking too little or too much to test the reset terms: {z_b2.mean()}"
    grads = learner.gradients()
    s_in, s_rec = learner.synapses["s_in"], learner.synapses["s_rec"]
    G_in = np.zeros((N_REC, N_IN))
    G_in[s_in.j[:], s_in.i[:]] = grads["s_in"]
    G_rec = np.zeros((N_REC, N_REC))
    G_rec[s_rec.j[:], s_rec.i[:]] = grads["s_rec"]
    G_out = np.zeros((N_OUT, N_REC))
    ro = learner.readout_synapses
    G_out[ro.j[:], ro.i[:]] = grads["readout"]
    assert np.max(np.abs(np.asarray(g_in))) > 0
    g_rec = np.asarray(g_rec) * (1 - np.eye(N_REC))  # no autapses: BPTT's diagonal has no synapse
    for label, got, want in (("input", G_in, g_in), ("recurrent", G_rec, g_rec), ("readout", G_out, g_out)):
        assert _rel(got, np.asarray(want)) <= RTOL, (label, _rel(got, np.asarray(want)))


def test_eligibility_vector_keeps_only_what_the_input_reaches():
    """AdEx: v and the adaptation current (spike-mediated reset through psi); LIF-I_syn: I_syn and v, no reset terms."""
    m = _adex()
    net = _user_network(m)
    d = derive(net["rec"], [net["s_in"], net["s_rec"]])
    assert d.reach == ("v", "wa") and set(d.reset_jump) == {"wa"} and d.stopped == ("v",)
    m = _lif_isyn()
    net = _user_network(m)
    d = derive(net["rec"], [net["s_in"]])
    assert d.reach == ("v", "I_syn") or set(d.reach) == {"v", "I_syn"}
    assert not d.reset_jump and not d.reset_jacobian


# ------------------------------------------------------------------------------------------------ errors
def _group(eqs="dv/dt = -v/(10*ms) : volt", threshold="v > 1*mV", reset="v -= 1*mV", method="exact",
           on_pre="v_post += w", syn_model="w : volt"):
    b2.defaultclock.dt = 1 * ms
    rec = b2.NeuronGroup(3, eqs, threshold=threshold, reset=reset, method=method, name="rec")
    inp = SpikeGeneratorGroup(2, [0], [1] * ms, name="inp")
    syn = Synapses(inp, rec, syn_model, on_pre=on_pre, name="syn")
    syn.connect()
    return rec, syn


@pytest.mark.parametrize("kwargs, message", [
    ({"threshold": "v > 1*mV and v < 5*mV"}, "NeuronGroup 'rec': threshold 'v > 1\\*mV and v < 5\\*mV' is not one "
                                             "comparison of two differentiable expressions"),
    ({"threshold": "abs(v) > 1*mV"}, "NeuronGroup 'rec': the threshold 'abs\\(v\\) > 1\\*mV' uses 'abs\\(v\\)', which "
                                     "has no derivative"),
    ({"reset": "v = rand()*mV"},
     "NeuronGroup 'rec': reset 'v = rand\\(\\)\\*mV' is not a function of the neuron's state"),
    ({"reset": "v = t*mV/ms"}, "reset 'v = t\\*mV/ms' is not a function of the neuron's state \\(t\\)"),
    ({"eqs": "dv/dt = (clip(I, 0*mV, 1*mV) - v)/(10*ms) : volt\nI : volt", "method": "euler"},
     "the update of v \\(method 'euler'\\) uses 'clip\\(I, 0, 0.001\\)|uses 'clip"),
    ({"eqs": "dv/dt = -v/(10*ms) + xi*mV/sqrt(ms) : volt", "method": "euler"}, "the equations are stochastic"),
    ({"on_pre": "v_post += w*(1*mV - v_post)/mV"}, "Synapses 'syn': on_pre 'v_post \\+= w\\*\\(1\\*mV - v_post\\)/mV' "
                                                    "adds an amount that depends on v_post"),
    ({"on_pre": "v_post += w**2/mV"}, "Synapses 'syn': on_pre 'v_post \\+= w\\*\\*2/mV' is not proportional to w"),
    ({"on_pre": "v_post *= w/mV"}, "is not an increment"),
    ({"threshold": "I > 1*mV", "eqs": "dv/dt = -v/(10*ms) : volt\nI : volt", "reset": "I = 0*mV"},
     "never reaches the threshold"),
])
def test_what_cannot_be_derived_is_named(kwargs, message):
    from brian2_ext.attach_inspect import IncompatibleModelError

    rec, syn = _group(**kwargs)
    with pytest.raises(IncompatibleModelError, match=message):
        derive(rec, [syn])


def test_summed_variables_are_refused():
    from brian2_ext.attach_inspect import IncompatibleModelError

    b2.defaultclock.dt = 1 * ms
    rec = b2.NeuronGroup(3, "dv/dt = (I - v)/(10*ms) : volt\nI : volt", threshold="v > 1*mV", reset="v -= 1*mV",
                         method="exact", name="rec")
    inp = SpikeGeneratorGroup(2, [0], [1] * ms, name="inp")
    syn = Synapses(inp, rec, "w : volt\nI_post = w : volt (summed)", on_pre="v_post += w", name="syn")
    syn.connect()
    with pytest.raises(IncompatibleModelError, match="Synapses 'syn': sets the \\(summed\\) variable\\(s\\) I_post; "
                                                     "the derivation cannot see through a summed variable"):
        derive(rec, [syn])


def test_worked_adex_example_of_the_docs():
    """docs/brian2_own_model.rst prints derive(...).describe() for AdEx: the page shows what the code derives."""
    from pathlib import Path

    ns = dict(EL=-70.6 * mV, DT=2 * mV, VT=-50.4 * mV, C=281 * pF, gL=30 * nS, a=4 * nS, tauw=144 * ms,
              b=0.0805 * nA, Vr=-70.6 * mV)
    eqs = ("dv/dt = (gL*(EL - v) + gL*DT*exp((v - VT)/DT) - wa)/C : volt\n"
           "dwa/dt = (a*(v - EL) - wa)/tauw : amp")
    b2.defaultclock.dt = 0.1 * ms
    rec = b2.NeuronGroup(3, eqs, threshold="v > -40*mV", reset="v = Vr; wa += b", method="euler", namespace=ns,
                         name="adex")
    inp = SpikeGeneratorGroup(2, [0], [1] * ms, name="inp")
    syn = Synapses(inp, rec, "w : volt", on_pre="v_post += w", name="syn")
    syn.connect()
    text = derive(rec, [syn]).describe()
    page = (Path(__file__).resolve().parents[1] / "docs" / "brian2_own_model.rst").read_text()
    assert "\n".join("    " + line for line in text.splitlines()) in page


# ------------------------------------------------------------------ the event family on the same models
@pytest.mark.parametrize("name", ["lif_isyn", "lif_isyn_refractory", "adex", "izhikevich"])
def test_event_family_gradient_is_the_original_familys(name):
    """Event family (no ISI cutoff, eta 0, the optimizer never due): the gradient summed over the steps equals the
    original family's of one interval (which equals the JAX oracle above) divided by ``1 - kappa``: the event
    family filters ``ebar`` without the factor ``1 - kappa`` (docs/model.rst §3).  The user's own schedule
    (arrivals after the threshold), hard resets and spike-mediated adaptation jumps, processed one step late."""
    m = MODELS[name]()
    dt = m["dt"]
    original, z_original = _brian2_eprop(m, _user_network(m), regular_arrival=True, full_window=True)
    net = _user_network(m)
    learner = online_eprop(net["rec"], [net["s_in"], net["s_rec"]], n_out=N_OUT, family="event",
                           target=TimedArray(net["target"], dt=dt), readout_tau=10 * ms,
                           surrogate={"function": "piecewise_linear", "height": m["height"], "width": m["width"]},
                           optimizer={"eta": 0.0}, batch_size=10**9, feedback="symmetric", w_out=net["w_out"])
    mon = b2.SpikeMonitor(learner.recurrent)
    learner.network.add(mon)
    learner.network.run((T_STEPS + 1) * dt)  # history step T - 1 is processed in step T
    t_spk = np.round(np.asarray(mon.t / dt)).astype(int)
    z = np.zeros((T_STEPS + 1, N_REC), dtype=bool)
    z[t_spk, np.asarray(mon.i)] = True
    assert np.array_equal(z[:T_STEPS], z_original) and z_original.sum() > 5
    kappa = float(np.exp(-float(dt / (10 * ms))))
    want, got = original.gradients(), learner.gradients()
    for key in ("s_in", "s_rec"):
        assert _rel(got[key] * (1 - kappa), want[key]) <= RTOL, (key, _rel(got[key] * (1 - kappa), want[key]))
        assert np.max(np.abs(want[key])) > 0
    assert _rel(got["readout"], want["readout"]) <= RTOL
