"""Train an ordinary PyNEST network with e-prop (nest_models.pynest.add_eprop).

1. Build a plain NEST network as usual: frozen Poisson spike trains in ``spike_generator`` nodes,
   a population of ``iaf_psc_delta`` neurons, static all-to-all input and recurrent connections.
   The only addition: ``install()`` right after ``nest.ResetKernel()`` (NEST loads extension
   modules only before the first node exists).
2. ``add_eprop`` adds the e-prop version of that network to the same kernel (NESTML e-prop
   neurons with the population's tau_m, C_m, E_L, V_th, t_ref and I_e -- and V_reset for the
   event family's psc_delta model; the same initial weights; a readout; plastic and feedback
   connections; a target generator).
3. ``train()`` simulates and returns the loss of every iteration (one sequence each).

Two variants: ``--family original`` (default; eprop_iaf_bsshslm_2020_neuron, update intervals of one
sequence, error counted over the whole sequence) and ``--family event`` (eprop_iaf_psc_delta_neuron,
the event family's per-step e-prop with a learning-window signal: the error counts in the second
half of each sequence only).

Run: ``python examples/nest_existing_network.py [--iterations N] [--family original|event]``.  The
first run builds the NESTML module (one to three minutes); later runs load it from the cache in well
under a second.
"""

from __future__ import annotations

import argparse

import nest
import numpy as np

from nest_models.pynest import add_eprop, install


#: the user's population and its e-prop settings per family (canonical parameters)
SETTINGS = {
    "original": {
        "population": {"tau_m": 30.0, "C_m": 1.0, "E_L": 0.0, "V_m": 0.0, "V_th": 0.03, "V_reset": 0.0,
                       "t_ref": 0.0},
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
        "population": {"tau_m": 30.0, "C_m": 1.0, "E_L": 0.0, "V_m": 0.0, "V_th": 0.5, "V_reset": -0.5,
                       "t_ref": 0.0},
        "add_eprop": {
            "model": "iaf_psc_delta",
            "recurrent": {"surrogate_gradient_height": 10.0, "surrogate_gradient_width": 0.03, "c_reg": 0.01,
                          "f_target": 10.0, "kappa": 0.97, "kappa_reg": 0.97, "isi_trace_cutoff": 100.0},
            "readout": {"tau_m": 30.0, "cm": 0.001, "v_rest": 0.0},
            "optimizer": {"type": "gradient_descent", "eta": 3e-4, "optimize_each_step": True},
        },
    },
}


def build_plain_network(n_in: int = 20, n_rec: int = 30, steps: int = 200, repeats: int = 1, seed: int = 1,
                        family: str = "original"):
    """An ordinary PyNEST network: spike generators -> iaf_psc_delta population, all-to-all.

    The inputs repeat one frozen Poisson pattern of ``steps`` ms ``repeats`` times; the population's
    parameters are those of ``SETTINGS[family]``.
    """
    rng = np.random.default_rng(seed)
    nest.ResetKernel()
    nest.set(resolution=1.0, print_time=False)
    install()  # NEST takes extension modules only before the first node is created
    spikes = rng.random((n_in, steps)) < 0.05
    spikes[:, 0] = False  # the original e-prop family drops input in the first step of a sequence
    # a spike generator fires at t = n + 1 ms for an input that reaches the neurons in step n
    starts = np.arange(repeats) * steps
    inputs = nest.Create("spike_generator", n_in, [
        {"spike_times": np.concatenate([np.nonzero(s)[0] + 1.0 + t0 for t0 in starts]).tolist()} for s in spikes])
    population = nest.Create("iaf_psc_delta", n_rec, SETTINGS[family]["population"])
    w_in = rng.normal(size=(n_rec, n_in)) / np.sqrt(n_in)
    w_rec = rng.normal(size=(n_rec, n_rec)) / np.sqrt(n_rec)
    np.fill_diagonal(w_rec, 0.0)
    nest.Connect(inputs, population, "all_to_all", {"weight": w_in, "delay": 1.0})
    nest.Connect(population, population, {"rule": "all_to_all", "allow_autapses": False},
                 {"weight": w_rec, "delay": 1.0})  # [post, pre]; the diagonal is skipped
    return inputs, population, steps


def main(iterations: int = 5, n_in: int = 20, n_rec: int = 30, steps: int = 200, family: str = "original"):
    """Build the plain network, add e-prop, train; return the attachment and the result."""
    inputs, population, T = build_plain_network(n_in, n_rec, steps, repeats=iterations, family=family)
    target = np.tile(np.sin(np.linspace(0.0, 2.0 * np.pi, T)), iterations)[None, :]
    extra = {}
    if family == "event":
        # the error counts in the second half of each sequence (the readouts' learning-window signal)
        extra["learning_window_signal"] = np.tile(np.arange(T) >= T // 2, iterations).astype(float)
    eprop = add_eprop(inputs, population, target, sequence=float(T), family=family,
                      **SETTINGS[family]["add_eprop"], **extra)
    result = eprop.train(on_iteration=lambda i, loss: print(f"iteration {i}: loss {loss:.6f}"))
    return eprop, result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=60)
    parser.add_argument("--family", choices=sorted(SETTINGS), default="original")
    args = parser.parse_args()
    main(args.iterations, family=args.family)
