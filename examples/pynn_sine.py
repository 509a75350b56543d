"""Sine-wave regression with e-prop as a PyNN script: the same file runs on pyNN.nest and pyNN.brian2.

NEST 3.10's sine-wave test set-up (original family, seed 1: 100 frozen Poisson inputs, 100 LIF
neurons, one readout, gradient descent): the first five losses reproduce NEST's published numbers
(``eprop_plugins.reference_numbers.SINE_ORIGINAL_NEST``, docs/model.rst §5) to rtol 1e-8, and the
final weights (``Projection.get("weight")``, docs/pynn.rst "Weights after a run") are the same on
pyNN.nest and pyNN.brian2.

    python examples/pynn_sine.py --simulator nest
    python examples/pynn_sine.py --simulator brian2 --save weights.npz
    python examples/pynn_sine.py --simulator spinnaker   # in .venv-spinnaker (docs/spinnaker_pynn.rst)

The task data (input spike steps, initial weights, target) come from ``eprop_plugins.tasks.sine``;
everything else is ordinary PyNN.  Time base (docs/pynn.rst): the task's step ``n`` is an input spike
at ``t = (n + 2) dt`` and a readout potential recorded at ``t = (n + 4) dt``; ``target`` element ``j``
is the target of the readout potential recorded at ``j dt``.
"""

from __future__ import annotations

import argparse
import importlib
import sys

import numpy as np

from eprop_plugins import tasks
from eprop_plugins.reference_numbers import SINE_ORIGINAL_NEST
from pynn_ext import EpropIF, EpropReadout, EpropSynapse, FeedbackSynapse, GradientDescent

#: --simulator -> PyNN module
SIMULATORS = {"nest": "pyNN.nest", "brian2": "pyNN.brian2", "spinnaker": "pyNN.spiNNaker"}

#: PyNN time, in steps, of the task's step n: input spikes at n + INPUT_LAG, readout potential at n + READOUT_LAG
INPUT_LAG, READOUT_LAG = 2, 4


def train(simulator: str, iterations: int = 5) -> dict[str, np.ndarray]:
    """Build and run the network on ``pyNN.<simulator>``; return losses and final weights ``[pre, post]``."""
    sim = importlib.import_module(SIMULATORS[simulator])
    task = tasks.sine(family="original", iterations=iterations)  # NEST's test data (seed 1)
    dt, T = task.dt, task.steps_per_sequence
    rec_params, out_params = task.populations[0].params, task.readout

    sim.setup(timestep=dt)
    inputs = sim.Population(task.n_in, sim.SpikeSourceArray(
        spike_times=[sim.Sequence((np.asarray(s, dtype=float) + INPUT_LAG) * dt) for s in task.input_spikes]),
        label="inputs")
    rec = sim.Population(task.n_rec, EpropIF(family="original", **rec_params), label="recurrent")
    out = sim.Population(task.n_out, EpropReadout(family="original", sequence=T * dt, learning_window=T * dt,
                                                  **out_params), label="readout")
    out.set(target=sim.Sequence(np.concatenate([np.zeros(READOUT_LAG), task.target[0]])))

    optimizer = GradientDescent(eta=task.optimizer["eta"], batch_size=1, w_min=-100.0, w_max=100.0)

    def plastic(w: np.ndarray) -> EpropSynapse:  # task matrices are [post, pre], PyNN's [pre, post]
        return EpropSynapse(optimizer=optimizer, weight=np.asarray(w).T, tau_m_readout=out_params["tau_m"],
                            average_gradient=False)

    p_in = sim.Projection(inputs, rec, sim.AllToAllConnector(), plastic(task.w_in))
    p_rec = sim.Projection(rec, rec, sim.AllToAllConnector(allow_self_connections=False), plastic(task.w_rec))
    p_out = sim.Projection(rec, out, sim.AllToAllConnector(), plastic(task.w_out))
    sim.Projection(out, rec, sim.AllToAllConnector(), FeedbackSynapse(weight=task.effective_feedback().T))

    out.record(["v"])
    rec.record(["spikes"])
    n_steps = iterations * T
    sim.run((n_steps + READOUT_LAG + 1) * dt)

    v = np.asarray(out.get_data().segments[0].filter(name="v")[0])  # (time, readout), sample k at k dt
    if v.size == 0:  # a virtual SpiNNaker board maps the network but runs nothing: no recorded data
        sim.end()
        return {"losses": np.zeros(0), "recorded": False}
    y = v[READOUT_LAG : READOUT_LAG + n_steps, 0]
    losses = 0.5 * np.sum((y - task.target[0, :n_steps]).reshape(iterations, T) ** 2, axis=1)
    result = {"losses": losses, "w_in": p_in.get("weight", format="array"),
              "w_rec": p_rec.get("weight", format="array"), "w_out": p_out.get("weight", format="array"),
              "spikes": sum(len(s) for s in rec.get_data().segments[0].spiketrains)}
    sim.end()
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--simulator", choices=tuple(SIMULATORS), default="nest")
    parser.add_argument("--iterations", type=int, default=5)
    parser.add_argument("--save", help="write losses and final weights to this .npz file")
    args = parser.parse_args(argv)
    result = train(args.simulator, args.iterations)
    if not result.get("recorded", True):
        print(f"{SIMULATORS[args.simulator]}: the network was mapped, but the recorded data is empty (a virtual board "
              "runs nothing): no losses")
    for i, loss in enumerate(result["losses"]):
        line = f"iteration {i + 1}: loss {loss:.12f}"
        if i < len(SINE_ORIGINAL_NEST):
            nest = SINE_ORIGINAL_NEST[i]
            line += f"   NEST 3.10 {nest:.12f}   relative difference {abs(loss / nest - 1):.1e}"
        print(line)
    if args.save:
        np.savez(args.save, **result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
