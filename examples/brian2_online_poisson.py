"""Online e-prop on a plain Brian2 network, written the way Brian2's tutorials write one.

100 ``PoissonGroup`` inputs whose rates follow fixed random profiles (a ``TimedArray``, repeated
every second), 100 LIF neurons with dimensionless ``v`` and ``reset='v -= 1'``, 10 % random
recurrence (``connect(p=0.1)``).  Nothing in the model is e-prop specific: one call,
:func:`brian2_ext.online.online_eprop`, derives e-prop for these equations and adds readout,
feedback and optimizer in generated code; ``learner.network.run(...)`` then learns NEST's
sine-wave target online for as long as it runs.

Run ``python examples/brian2_online_poisson.py [iterations] [neurons]`` (one iteration = 1 s).
"""

from __future__ import annotations

import sys

import numpy as np
from brian2 import (Hz, NeuronGroup, PoissonGroup, StateMonitor, Synapses, TimedArray, defaultclock, mV, ms,
                    second, seed as brian2_seed)

from brian2_ext.online import online_eprop
from eprop_plugins.tasks.common import superimposed_sines


def build_model(n_in: int = 100, n_rec: int = 100, seed: int = 1):
    """The user's network: Poisson inputs with rate profiles, LIF neurons, sparse recurrence."""
    rng = np.random.default_rng(seed)
    brian2_seed(seed)  # the Poisson spikes too: the example is reproducible
    defaultclock.dt = 1 * ms
    # fixed random rate profiles over one second (smooth bumps), repeated every second
    centers = rng.uniform(0, 1000, n_in)
    t = np.arange(1000)
    profiles = 5 + 45 * np.exp(-0.5 * ((t[:, None] - centers[None, :]) / 60.0) ** 2)
    rate_profile = TimedArray(profiles * Hz, dt=1 * ms)
    inp = PoissonGroup(n_in, rates="rate_profile(t % (1*second), i)", namespace={"rate_profile": rate_profile},
                       name="inp")
    tau = 30 * ms
    rec = NeuronGroup(n_rec, "dv/dt = -v/tau : 1", threshold="v > 1", reset="v -= 1", method="exact",
                      namespace={"tau": tau}, name="rec")
    s_in = Synapses(inp, rec, "w : 1", on_pre="v_post += w", name="s_in")
    s_in.connect()
    s_in.w = rng.normal(0.05, 0.1, len(s_in)) * np.sqrt(100 / n_in)
    s_rec = Synapses(rec, rec, "w : 1", on_pre="v_post += w", name="s_rec")
    s_rec.connect(condition="i != j", p=0.1)
    s_rec.w = rng.normal(0, 1, len(s_rec)) * 0.1
    return inp, rec, s_in, s_rec


def sine_target(seed: int = 1) -> np.ndarray:
    """NEST's sine-wave target of one second (sum of four sines), in mV."""
    return superimposed_sines(np.random.RandomState(seed), 1000)


def attach(rec, s_in, s_rec, *, eta: float = 2e-3):
    """Online e-prop: update interval 1 s, TimedArray target repeated every second."""
    target = TimedArray(sine_target()[:, None] * mV, dt=1 * ms)
    return online_eprop(
        rec, [s_in, s_rec], n_out=1, target="sine(t % (1*second), i)", update_interval=1 * second,
        readout_tau=30 * ms, surrogate={"function": "piecewise_linear", "height": 0.3, "width": 1.0},
        c_reg=0.0, f_target=10 * Hz, optimizer={"type": "adam", "eta": eta, "eta_out": 0.01 * mV}, feedback="random",
        namespace={"sine": target, **rec.namespace}, seed=1)


def main(iterations: int = 20, n: int = 100):
    """Build, attach, learn; return the loss of every iteration (0.5 * sum of squared errors, mV²)."""
    inp, rec, s_in, s_rec = build_model(n, n)
    learner = attach(rec, s_in, s_rec)
    mon = StateMonitor(learner.readout, "err", record=True, dt=1 * ms)
    learner.network.add(mon)
    learner.network.run(iterations * second)
    err = np.asarray(mon.err / mV)[0]
    losses = 0.5 * np.sum(err[: iterations * 1000].reshape(iterations, 1000) ** 2, axis=1)
    learner.write_back()
    for k, loss in enumerate(losses, start=1):
        print(f"iteration {k}: loss {loss:.3f}")
    return losses, learner, (s_in, s_rec)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 20, int(sys.argv[2]) if len(sys.argv) > 2 else 100)
