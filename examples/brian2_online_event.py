"""Event-based e-prop online on a small plain Brian2 network (``online_eprop(..., family="event")``).

20 inputs (a ``SpikeGeneratorGroup`` replaying, every sequence, one pattern drawn from random rate
profiles), 30 LIF neurons with units (``dv/dt = -v/tau : volt``, ``method='exact'``,
``reset='v -= v_th'``), 20 % random recurrence (``connect(p=0.2)``), ``on_pre='v_post += w'``.
Nothing in the model is e-prop specific: one call, :func:`brian2_ext.online.online_eprop` with
``family="event"``, derives e-prop for these equations and adds NEST's event-based learning
(per-step updates within the ISI cutoff, docs/model.rst §3) in generated code; the network then
learns a sine-wave target (:func:`eprop_plugins.tasks.common.superimposed_sines`) for as long as it runs.

Run ``python examples/brian2_online_event.py [iterations]`` (one iteration = one sequence of 200 ms);
it prints the loss of every iteration and writes ``brian2_online_event.png``.
"""

from __future__ import annotations

import sys

import numpy as np
from brian2 import (NeuronGroup, SpikeGeneratorGroup, StateMonitor, Synapses, TimedArray, defaultclock, mV, ms,
                    seed as brian2_seed)

from brian2_ext.online import online_eprop
from eprop_plugins.tasks.common import superimposed_sines

#: one sequence (and one iteration), in time steps of 1 ms
STEPS = 200


def build_model(n_in: int = 20, n_rec: int = 30, seed: int = 1):
    """The user's network: a frozen input pattern, LIF neurons with units, sparse recurrence."""
    rng = np.random.default_rng(seed)
    brian2_seed(seed)  # connect(p=...) draws from Brian2's generator: the example is reproducible
    defaultclock.dt = 1 * ms
    # one frozen sequence drawn from random rate profiles (smooth bumps), replayed every sequence
    centers = rng.uniform(0, STEPS, n_in)
    t = np.arange(STEPS)
    rates = 5 + 75 * np.exp(-0.5 * ((t[:, None] - centers[None, :]) / 20.0) ** 2)  # Hz
    steps, indices = np.nonzero(rng.random((STEPS, n_in)) < rates * 1e-3)
    inp = SpikeGeneratorGroup(n_in, indices, steps * ms, period=STEPS * ms, name="inp")
    ns = {"tau": 20 * ms, "v_th": 10 * mV}
    rec = NeuronGroup(n_rec, "dv/dt = -v/tau : volt", threshold="v > v_th", reset="v -= v_th", method="exact",
                      namespace=ns, name="rec")
    s_in = Synapses(inp, rec, "w : volt", on_pre="v_post += w", name="s_in")
    s_in.connect()
    s_in.w = rng.normal(1.0, 1.0, len(s_in)) * mV
    s_rec = Synapses(rec, rec, "w : volt", on_pre="v_post += w", name="s_rec")
    s_rec.connect(condition="i != j", p=0.2)
    s_rec.w = rng.normal(0.0, 2.0, len(s_rec)) * mV
    return inp, rec, s_in, s_rec


def sine_target(seed: int = 1) -> np.ndarray:
    """A sum of two sines over one sequence, scaled to a maximum of 1 (in mV)."""
    return superimposed_sines(np.random.RandomState(seed), STEPS, periods=(200, 100))


def attach(rec, s_in, s_rec, *, eta: float = 1e-3, eta_out: float = 5e-3):
    """Event-based e-prop: gradient descent at every time step, ISI cutoff 100 ms, the target repeated.

    ``eta`` and ``eta_out`` are dimensionless: [w]/[G] with voltage weights and a readout in volt.
    """
    target = TimedArray(sine_target()[:, None] * mV, dt=1 * ms)
    return online_eprop(
        rec, [s_in, s_rec], n_out=1, family="event", target=f"sine(t % ({STEPS}*ms), i)", readout_tau=20 * ms,
        surrogate={"function": "piecewise_linear", "height": 0.3 / (10 * mV), "width": 10 * mV},
        isi_trace_cutoff=100 * ms, readout_isi_trace_cutoff=100 * ms,
        optimizer={"type": "gradient_descent", "eta": eta, "eta_out": eta_out}, feedback="random",
        namespace={"sine": target, **rec.namespace}, seed=1)


def main(iterations: int = 20, plot: bool = False):
    """Build, attach, learn; return the loss of every iteration (0.5 * sum of squared errors, mV²)."""
    inp, rec, s_in, s_rec = build_model()
    w_initial = {"s_in": np.asarray(s_in.w[:] / mV).copy(), "s_rec": np.asarray(s_rec.w[:] / mV).copy()}
    learner = attach(rec, s_in, s_rec)
    mon = StateMonitor(learner.readout, "err", record=True, dt=1 * ms)
    learner.network.add(mon)
    learner.network.run(iterations * STEPS * ms)
    err = np.asarray(mon.err / mV)[0]
    losses = 0.5 * np.sum(err[: iterations * STEPS].reshape(iterations, STEPS) ** 2, axis=1)
    learner.write_back()  # the trained weights into the user's s_in.w, s_rec.w
    for k, loss in enumerate(losses, start=1):
        print(f"iteration {k}: loss {loss:.3f}")
    if plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(5, 3))
        ax.plot(np.arange(1, iterations + 1), losses, marker="o")
        ax.xaxis.set_major_locator(plt.MaxNLocator(integer=True))
        ax.set(xlabel="iteration", ylabel="loss (mV²)", yscale="log", title="event-based e-prop in Brian2")
        fig.tight_layout()
        fig.savefig("brian2_online_event.png", dpi=100)
        print("wrote brian2_online_event.png")
    return losses, w_initial, (s_in, s_rec)


if __name__ == "__main__":
    from brian2 import BrianLogger

    BrianLogger.suppress_name("unused_brian_object")  # the user's objects stand aside: their e-prop copies run
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 20, plot=True)
