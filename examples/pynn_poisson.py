"""Online e-prop learning on live Poisson input, one plain PyNN script for any simulator.

Each trial the 40 ``SpikeSourcePoisson`` inputs fire at 5 or 40 Hz (fresh spikes every trial) and the
readout must hold 0.2 or 0.8: ``python examples/pynn_poisson.py --simulator nest|brian2`` prints the
mean loss of the first and the last 10 trials.  The best output blind to the input rate (0.5
throughout) costs 0.5 * 200 * 0.3^2 = 9 per trial.
"""

from __future__ import annotations

import argparse
import importlib

import numpy as np


def poisson_rate_task(sim, trials: int = 40, steps: int = 200, seed: int = 0) -> np.ndarray:
    """Train on ``trials`` trials of ``steps`` ms with the PyNN module ``sim``; return the loss of every trial."""
    from pynn_ext import Adam, EpropIF, EpropReadout, EpropSynapse, FeedbackSynapse

    lag = 4  # the readout potential of a trial's step n is recorded at n + 4 (docs/pynn.rst, time base)
    rng = np.random.default_rng(seed)
    sim.setup(timestep=1.0, rng_seed=3)
    inputs = sim.Population(40, sim.SpikeSourcePoisson(rate=10.0))
    rec = sim.Population(40, EpropIF(tau_m=20.0, v_rest=0.0, v_thresh=1.0, surrogate_gradient_height=0.6,
                                     surrogate_gradient_width=0.5))
    out = sim.Population(1, EpropReadout(tau_m=20.0, v_rest=0.0, sequence=float(steps)))
    rates = rng.choice([5.0, 40.0], trials)
    target = np.repeat(np.where(rates > 10.0, 0.8, 0.2), steps)
    out.set(target=sim.Sequence(np.concatenate([np.zeros(lag), target])))
    opt = Adam(eta=5e-3)
    sim.Projection(inputs, rec, sim.AllToAllConnector(),
                   EpropSynapse(optimizer=opt, weight=rng.normal(0, 0.3, (40, 40)), delay=1.0))
    sim.Projection(rec, rec, sim.AllToAllConnector(allow_self_connections=False),
                   EpropSynapse(optimizer=opt, weight=rng.normal(0, 0.1, (40, 40)), delay=1.0))
    sim.Projection(rec, out, sim.AllToAllConnector(),
                   EpropSynapse(optimizer=opt, weight=rng.normal(0, 0.02, (40, 1)), delay=1.0))
    sim.Projection(out, rec, sim.AllToAllConnector(), FeedbackSynapse(weight=rng.normal(0, 0.1, (1, 40)), delay=1.0))
    out.record(["v"])
    for k in range(trials):
        inputs.set(rate=rates[k])
        sim.run(float(steps) + (lag + 1.0 if k == trials - 1 else 0.0))
    v = np.asarray(out.get_data().segments[0].filter(name="v")[0])[lag : lag + trials * steps, 0]
    sim.end()
    return 0.5 * np.sum((v - target).reshape(trials, steps) ** 2, axis=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--simulator", choices=("nest", "brian2"), default="nest")
    sim = importlib.import_module("pyNN." + parser.parse_args().simulator)
    losses = poisson_rate_task(sim)
    print(f"mean loss, first 10 trials: {losses[:10].mean():.3f}; last 10: {losses[-10:].mean():.3f}")


if __name__ == "__main__":
    main()
