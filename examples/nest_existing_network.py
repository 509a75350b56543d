"""Train the plain PyNEST network of NEST's tutorials with e-prop (nest_models.pynest.add_eprop).

1. Build the network as NEST's tutorials do: a ``poisson_generator`` into 100 ``parrot_neuron`` s
   (every parrot repeats its own Poisson spike train), 100 ``iaf_psc_delta`` neurons, the parrots
   connected to the neurons all to all and the neurons among themselves sparsely
   (``pairwise_bernoulli``, p = 0.1), weights drawn by NEST (``nest.random.normal``).  The only
   addition: ``install()`` right after ``nest.ResetKernel()`` (NEST loads extension modules only
   before the first node exists).
2. ``add_eprop`` adds the e-prop version of that network to the same kernel: NESTML e-prop neurons
   with the population's tau_m, C_m, E_L, V_th, t_ref and I_e (and V_reset for the event family's
   psc_delta model), the connections as the user made them, a readout, plastic and feedback
   connections, a target generator.  The parrots are live inputs: e-prop learns online from the
   spikes they emit while the network runs.
3. ``train()`` simulates and returns the loss of every iteration (one sequence each); afterwards
   ``eprop.scenario`` holds the recorded input, so the online run can be replayed (and compared
   with the NumPy reference, as ``tests/test_nestml_pynest.py`` does).

Two variants: ``--family original`` (default; ``eprop_iaf_bsshslm_2020_neuron``, update intervals
of one sequence, neurons reset at every sequence start; input spikes that would arrive in the first
step of a sequence are withheld, see nest_models.pynest; 40 iterations: the loss falls from 111 to
about 45) and ``--family event`` (the user's ``iaf_psc_delta`` neurons become
``eprop_iaf_psc_delta_neuron``, the error counts in the second half of each sequence; without the
resets the stationary input leaves the readout little to learn: the loss fluctuates around 15).

Run: ``python examples/nest_existing_network.py [--iterations N] [--family original|event]``.  The
first run builds the NESTML module (one to three minutes); later runs load it from the cache in well
under a second.
"""

from __future__ import annotations

import argparse

import nest
import numpy as np

from nest_models.pynest import add_eprop, install

#: the user's neurons (NEST parameters: mV, ms, pF) and the e-prop settings per family (canonical parameters)
SETTINGS = {
    "original": {
        "neurons": {"tau_m": 30.0, "C_m": 1.0, "E_L": 0.0, "V_m": 0.0, "V_th": 0.03, "V_reset": 0.0, "t_ref": 0.0},
        "weights": {"input": 0.1, "recurrent": 0.1},  # standard deviations, mV
        # NEST's sine-wave task (TensorFlow-equivalent spike arrival)
        "add_eprop": {
            "recurrent": {"surrogate_gradient_height": 0.3 / 0.03, "surrogate_gradient_width": 0.03, "c_reg": 300.0,
                          "f_target": 10.0, "regular_spike_arrival": False},
            "readout": {"tau_m": 30.0, "cm": 0.001, "v_rest": 0.0, "regular_spike_arrival": False},
            "optimizer": {"type": "gradient_descent", "eta": 1e-2},
        },
    },
    "event": {
        # threshold and reset of NEST's event-family psc_delta test; weights are voltage jumps in mV
        "neurons": {"tau_m": 30.0, "C_m": 1.0, "E_L": 0.0, "V_m": 0.0, "V_th": 0.5, "V_reset": -0.5, "t_ref": 0.0},
        "weights": {"input": 0.2, "recurrent": 0.2},
        "add_eprop": {
            "model": "iaf_psc_delta",
            "recurrent": {"surrogate_gradient_height": 10.0, "surrogate_gradient_width": 0.03, "c_reg": 0.01,
                          "f_target": 10.0, "kappa": 0.97, "kappa_reg": 0.97, "isi_trace_cutoff": 100.0},
            "readout": {"tau_m": 30.0, "cm": 0.001, "v_rest": 0.0},
            "optimizer": {"type": "gradient_descent", "eta": 1e-4, "optimize_each_step": True},
        },
    },
}


def build_tutorial_network(n_in: int = 100, n_rec: int = 100, rate: float = 20.0, p: float = 0.1,
                           family: str = "original", seed: int = 1, threads: int = 1):
    """NEST's tutorial network: poisson_generator -> parrots -> iaf_psc_delta, sparse static recurrence.

    Parameters
    ----------
    n_in, n_rec : int
        Parrots and neurons.
    rate : float
        Poisson rate of every parrot's spike train, Hz.
    p : float
        Connection probability of the recurrent ``pairwise_bernoulli`` connections.
    family : str
        Selects the neuron parameters and weight scales of ``SETTINGS``.
    seed : int
        NEST's random seed (the Poisson spikes, the drawn connections and weights).
    threads : int
        NEST threads (the Poisson spikes and drawn connections depend on it).

    Returns
    -------
    (NodeCollection, NodeCollection)
        The parrots and the neurons.
    """
    nest.ResetKernel()
    nest.set(resolution=1.0, rng_seed=seed, local_num_threads=threads, print_time=False)
    install()  # NEST takes extension modules only before the first node is created
    settings = SETTINGS[family]
    noise = nest.Create("poisson_generator", params={"rate": rate})
    parrots = nest.Create("parrot_neuron", n_in)
    neurons = nest.Create("iaf_psc_delta", n_rec, settings["neurons"])
    nest.Connect(noise, parrots)
    w = settings["weights"]
    nest.Connect(parrots, neurons, "all_to_all",
                 {"weight": nest.random.normal(mean=0.0, std=w["input"])})
    nest.Connect(neurons, neurons, {"rule": "pairwise_bernoulli", "p": p, "allow_autapses": False},
                 {"weight": nest.random.normal(mean=0.0, std=w["recurrent"])})
    return parrots, neurons


def main(iterations: int = 20, family: str = "original", steps: int = 200, n_in: int = 100, n_rec: int = 100,
         record_weight_events: bool = False):
    """Build the tutorial network, add e-prop, train online; return the attachment and the result."""
    parrots, neurons = build_tutorial_network(n_in, n_rec, family=family)
    # the live input is stationary noise: what the readout can learn is the level of the target and
    # the part of its shape the activity predicts after each sequence start
    target = np.tile(1.0 + 0.5 * np.sin(np.linspace(0.0, 2.0 * np.pi, steps)), iterations)[None, :]
    extra = {}
    if family == "event":
        # the error counts in the second half of each sequence (the readouts' learning-window signal)
        extra["learning_window_signal"] = np.tile(np.arange(steps) >= steps // 2, iterations).astype(float)
    eprop = add_eprop(parrots, neurons, target, sequence=float(steps), family=family,
                      record_weight_events=record_weight_events, **SETTINGS[family]["add_eprop"], **extra)
    result = eprop.train(on_iteration=lambda i, loss: print(f"iteration {i}: loss {loss:.6f}"))
    return eprop, result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=40)
    parser.add_argument("--family", choices=sorted(SETTINGS), default="original")
    args = parser.parse_args()
    main(args.iterations, family=args.family)
