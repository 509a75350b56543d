"""Small random e-prop networks that exercise every feature, for backend-equivalence tests.

``random_scenario(family, seed)`` builds a network of 3-8 inputs, 4-10 recurrent neurons and 1-2
readouts, trained for 2-4 sequences of 40-120 steps, with weights scaled so that the recurrent
neurons spike regularly.  Which features a seed exercises is a deterministic function of the seed,
:func:`coverage`; every other number (sizes, time constants, weights, spikes, targets) is drawn
from ``numpy.random.default_rng`` seeded with the seed and the family.

Each feature cycles through its options with its own period (``FEATURES``): option
``options[(seed // stride + phase) % len(options)]``, so that any 20 consecutive seeds cover every
option of every feature, in varied combinations.

Design constraints, so that the networks test what they should:

* no input spike arrives in the first step of a sequence (the original family drops those, and an
  event-family arrival at step 0 would need an emission before the simulation starts);
* ``i_offset`` is at most a third of the threshold distance (as a stationary potential), so a
  recurrent neuron never spikes in the first step of an update interval (original family), where
  NEST's bookkeeping of late spikes is not reproduced by the reference;
* voltages are absolute and differ from NEST's defaults (``v_rest`` -70..-60 mV), capacitances and
  currents are non-trivial, so the canonical-to-NEST translation is exercised;
* ``connectivity = "sparse"`` draws the connected pairs (:data:`SPARSE_DENSITY`) from a generator
  of its own, after the dense weights are drawn, and keeps the recorded synapses connected: the
  other numbers of a seed are the same as with dense connectivity, and each neuron's input weights
  are scaled by ``n_in / (its connected inputs)`` to keep its mean drive.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import connectivity as cn
from .parameters import FAMILIES, ParameterError
from .scenario import Population, Scenario

__all__ = ["FEATURES", "SPARSE_DENSITY", "coverage", "random_scenario", "random_connections", "sparse_network"]

#: feature -> (family or None for both, options, stride, phase); see the module docstring
FEATURES: dict[str, tuple[str | None, tuple[Any, ...], int, int]] = {
    "model": (None, ("iaf", "iaf_adapt", "mixed"), 1, 0),
    "event_model": ("event", ("iaf", "iaf_adapt", "iaf_psc_delta", "iaf_psc_delta_adapt", "mixed"), 1, 0),
    "tau_refrac": (None, (0.0, 2.0, 5.0), 2, 0),
    "surrogate_gradient_function": (
        None, ("piecewise_linear", "exponential", "fast_sigmoid_derivative", "arctan_derivative"), 1, 1),
    "regular_spike_arrival": ("original", (True, False), 3, 0),
    "optimizer": (None, ("gradient_descent", "adam"), 1, 0),
    "batch_size": ("original", (1, 2), 2, 1),
    "loss": ("original", ("mean_squared_error", "cross_entropy"), 5, 0),
    "feedback": (None, ("random", "symmetric_initial"), 4, 1),
    "c_reg": (None, ("zero", "non-zero"), 2, 1),
    "short_learning_window": ("original", (False, True), 3, 1),
    "average_gradient": ("original", (False, True), 7, 0),
    "isi_trace_cutoff": ("event", ("none", "finite"), 3, 0),
    "optimize_each_step": ("event", (True, False), 2, 1),
    "learning_window_signal": ("event", ("none", "recall"), 5, 2),
    "record_synapses": (None, (False, True), 3, 2),
    "i_offset": (None, ("zero", "small"), 4, 0),
    "v_min": (None, ("none", "finite"), 6, 1),
    "connectivity": (None, ("dense", "sparse"), 4, 0),
}

#: Connection probability of each projection when ``connectivity == "sparse"``: the recurrent
#: projection is 10 % connected; inputs and readouts half, so that most neurons are still driven
SPARSE_DENSITY = {"in": 0.7, "rec": 0.1, "out": 0.5}


def coverage(seed: int, family: str = "original") -> dict[str, Any]:
    """The features a seed exercises (deterministic; see :data:`FEATURES`).

    Parameters
    ----------
    seed : int
        Non-negative seed.
    family : {'original', 'event'}

    Returns
    -------
    dict
        Feature name -> option.  For the event family ``model`` holds the ``event_model`` option.
    """
    if family not in FAMILIES:
        raise ParameterError(f"family = {family!r}: allowed values are {', '.join(FAMILIES)}")
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ParameterError(f"seed = {seed!r}: allowed range is integer >= 0")
    out: dict[str, Any] = {}
    for name, (fam, options, stride, phase) in FEATURES.items():
        if fam is not None and fam != family:
            continue
        out[name] = options[(int(seed) // stride + phase) % len(options)]
    if family == "event":
        out["model"] = out.pop("event_model")
    return out


def random_scenario(family: str, seed: int, **overrides: Any) -> Scenario:
    """A small random network exercising the features :func:`coverage` assigns to ``seed``.

    Parameters
    ----------
    family : {'original', 'event'}
    seed : int
        Non-negative seed; it fixes the features and every random draw.
    **overrides
        Replace a feature of :func:`coverage` (for example ``loss='cross_entropy'``).

    Returns
    -------
    Scenario
        Validated-ready scenario (``float32_weights`` False: float64 weights).

    Raises
    ------
    ParameterError
        Unknown family, bad seed, or an override that is not a feature of the family.
    """
    feat = coverage(seed, family)
    for name, value in overrides.items():
        if name not in feat:
            raise ParameterError(f"{name}: not a feature of family {family!r}; features are {', '.join(sorted(feat))}")
        feat[name] = value
    rng = np.random.default_rng([int(seed), FAMILIES.index(family)])
    original = family == "original"

    dt = 1.0
    T = int(rng.integers(40, 121))
    batch = feat["batch_size"] if original else 1
    n_seq = batch * int(rng.integers(2, 5 if batch == 1 else 3))  # 2-4 sequences
    n_in = int(rng.integers(3, 9))
    n_rec = int(rng.integers(4, 11))
    cross_entropy = original and feat["loss"] == "cross_entropy"
    n_out = 2 if cross_entropy else int(rng.integers(1, 3))

    # ----------------------------------------------------------------- recurrent populations
    if feat["model"] == "mixed":
        models = ["iaf", "iaf_adapt"] if original else ["iaf_psc_delta", "iaf_adapt"]
        sizes = [n_rec // 2, n_rec - n_rec // 2]
    else:
        models, sizes = [feat["model"]], [n_rec]
    surrogates = list(FEATURES["surrogate_gradient_function"][1])
    first_sg = surrogates.index(feat["surrogate_gradient_function"])
    populations = []
    drive = []  # per population: (theta, alpha, zeta) to scale the weights
    for k, (model, size) in enumerate(zip(models, sizes)):
        tau_m = float(rng.uniform(10.0, 30.0))
        cm = float(rng.uniform(0.1, 1.0))
        v_rest = float(rng.uniform(-70.0, -60.0))
        theta = float(rng.uniform(0.5, 2.0))  # threshold above rest, mV
        alpha = np.exp(-dt / tau_m)
        p_i = tau_m / cm * (1.0 - alpha)  # mV per nA per step
        params: dict[str, Any] = {
            "tau_m": tau_m,
            "cm": cm,
            "v_rest": v_rest,
            "v_thresh": v_rest + theta,
            "tau_refrac": feat["tau_refrac"],
            # stationary potential of the offset alone: at most theta / 3 (see module docstring)
            "i_offset": 0.0 if feat["i_offset"] == "zero" else float(rng.uniform(0.05, 0.3)) * theta * (1 - alpha) / p_i,
            "surrogate_gradient_function": surrogates[(first_sg + k) % len(surrogates)],
            "surrogate_gradient_height": float(rng.uniform(0.2, 0.5)) / theta,
            "surrogate_gradient_width": float(rng.uniform(0.5, 1.5)) * theta,
            "c_reg": 0.0 if feat["c_reg"] == "zero" else float(rng.uniform(1.0, 50.0)),
            "f_target": float(rng.uniform(5.0, 50.0)),
        }
        if feat["v_min"] == "finite":
            params["v_min"] = v_rest - float(rng.uniform(0.5, 2.0)) * theta
        if model in ("iaf_adapt", "iaf_psc_delta_adapt"):
            params["tau_a"] = float(rng.uniform(20.0, 200.0))
            params["beta"] = float(rng.uniform(0.05, 0.5)) * theta
        if model in ("iaf_psc_delta", "iaf_psc_delta_adapt"):
            params["v_reset"] = v_rest - float(rng.uniform(0.0, 0.5)) * theta
        if original:
            params["regular_spike_arrival"] = feat["regular_spike_arrival"]
            zeta = 1.0 if feat["regular_spike_arrival"] else 1.0 - alpha
        else:
            params["kappa"] = float(rng.uniform(0.9, 0.99))
            params["kappa_reg"] = float(rng.uniform(0.9, 0.99))
            if feat["isi_trace_cutoff"] == "finite":
                params["isi_trace_cutoff"] = float(rng.integers(5, 30)) * dt
            zeta = 1.0
        populations.append(Population(model, int(size), params))
        drive += [(theta, alpha, zeta)] * size
    theta_j, alpha_j, zeta_j = (np.array(x) for x in zip(*drive))

    # ----------------------------------------------------------------- readout
    tau_out = float(rng.uniform(10.0, 30.0))
    readout: dict[str, Any] = {
        "tau_m": tau_out,
        "cm": float(rng.uniform(0.1, 1.0)),
        "v_rest": 0.0 if cross_entropy else float(rng.uniform(-1.0, 1.0)),
        "i_offset": 0.0,
        "loss": "cross_entropy" if cross_entropy else "mean_squared_error",
    }
    if original:
        readout["regular_spike_arrival"] = bool(rng.integers(0, 2))
    elif feat["isi_trace_cutoff"] == "finite":
        readout["isi_trace_cutoff"] = float(rng.integers(5, 30)) * dt

    # ----------------------------------------------------------------- inputs and weights
    rate = rng.uniform(0.05, 0.2, size=n_in)  # spike probability per step
    raster = rng.random((n_seq * T, n_in)) < rate
    raster[::T] = False  # nothing arrives in the first step of a sequence
    input_spikes = [np.nonzero(raster[:, i])[0].astype(np.int64) for i in range(n_in)]
    # inputs alone hold the mean potential at about 1.5 thresholds: the neurons fire regularly
    mean_in = 1.5 * theta_j * (1.0 - alpha_j) / (zeta_j * n_in * rate.mean())
    w_in = mean_in[:, None] * rng.uniform(0.2, 1.8, size=(n_rec, n_in))
    w_rec = (0.5 * theta_j * (1.0 - alpha_j) / zeta_j)[:, None] * rng.normal(0.0, 1.0, size=(n_rec, n_rec)) * 3.0
    np.fill_diagonal(w_rec, 0.0)
    zeta_out = 1.0 if (not original or readout["regular_spike_arrival"]) else 1.0 - np.exp(-dt / tau_out)
    w_out = rng.normal(0.0, 1.0, size=(n_out, n_rec)) * (1.0 - np.exp(-dt / tau_out)) / zeta_out
    w_fb = rng.normal(0.0, 1.0, size=(n_rec, n_out)) / np.sqrt(n_rec)

    # ----------------------------------------------------------------- targets
    steps = np.arange(n_seq * T)
    if cross_entropy:
        target = np.zeros((n_out, n_seq * T))
        for s, k in enumerate(rng.integers(0, n_out, size=n_seq)):
            target[k, s * T : (s + 1) * T] = 1.0
    else:
        periods = rng.uniform(0.3, 1.0, size=(n_out, 2)) * T
        phases = rng.uniform(0, 2 * np.pi, size=(n_out, 2))
        pos = (steps % T)[None, :]
        target = readout["v_rest"] + 0.5 * (np.sin(2 * np.pi * pos / periods[:, :1] + phases[:, :1])
                                            + 0.5 * np.sin(2 * np.pi * pos / periods[:, 1:] + phases[:, 1:]))

    # ----------------------------------------------------------------- learning
    opt_type = feat["optimizer"]
    optimizer: dict[str, Any] = {
        "type": opt_type,
        "eta": float(rng.uniform(1e-3, 1e-2)) if opt_type == "gradient_descent" else float(rng.uniform(1e-3, 5e-3)),
        "batch_size": batch,
        "w_min": -100.0,
        "w_max": 100.0,
    }
    if opt_type == "adam":
        optimizer.update(beta_1=0.9, beta_2=0.999, epsilon=float(rng.choice([1e-7, 1e-8])))
    if not original:
        optimizer["optimize_each_step"] = feat["optimize_each_step"]
    network: dict[str, Any] = {"family": family, "dt": dt, "sequence": T * dt, "feedback": feat["feedback"]}
    synapse: dict[str, Any] = {}
    learning_window_signal = None
    if original:
        if feat["short_learning_window"]:
            network["learning_window"] = float(rng.integers(T // 4, T)) * dt
        synapse = {"average_gradient": feat["average_gradient"],
                   "tau_m_readout": None if rng.integers(0, 2) else float(rng.uniform(10.0, 30.0))}
    elif feat["learning_window_signal"] == "recall":
        window = np.zeros(T)
        window[-int(rng.integers(T // 4, T // 2)) :] = 1.0
        learning_window_signal = np.tile(window, n_seq)

    record = []
    if feat["record_synapses"]:
        pre_rec = int(rng.integers(0, n_rec))
        record = [("in", int(rng.integers(0, n_in)), int(rng.integers(0, n_rec))),
                  ("rec", pre_rec, (pre_rec + 1 + int(rng.integers(0, n_rec - 1))) % n_rec),
                  ("out", int(rng.integers(0, n_rec)), int(rng.integers(0, n_out)))]

    if feat["connectivity"] == "sparse":
        w_in, w_rec, w_out = _sparsify(np.random.default_rng([int(seed), FAMILIES.index(family), 1]),
                                       w_in, w_rec, w_out, record)

    summary = ", ".join(f"{k}={v}" for k, v in feat.items())
    return Scenario(
        name=f"random-{family}-{seed}",
        description=f"Random small network (seed {seed}): {summary}.",
        network=network,
        populations=populations,
        readout=readout,
        optimizer=optimizer,
        synapse=synapse,
        n_in=n_in,
        n_out=n_out,
        n_sequences=n_seq,
        iteration_sequences=batch,
        w_in=w_in,
        w_rec=w_rec,
        w_out=w_out,
        w_fb=w_fb if feat["feedback"] == "random" else None,
        input_spikes=input_spikes,
        target=target,
        learning_window_signal=learning_window_signal,
        record_synapses=record,
        tolerance={"rtol": 1e-10, "why": "float64 throughout"},
    )


def _sparsify(rng: np.random.Generator, w_in: np.ndarray, w_rec: np.ndarray, w_out: np.ndarray,
              record: list[tuple[str, int, int]]) -> tuple[cn.SparseWeights, cn.SparseWeights, cn.SparseWeights]:
    """Keep a random subset of the pairs of each projection (:data:`SPARSE_DENSITY`) and the recorded synapses.

    Every recurrent neuron keeps at least one input synapse and every readout one synapse.
    """
    out = []
    for name, w in (("in", w_in), ("rec", w_rec), ("out", w_out)):
        mask = rng.random(w.shape) < SPARSE_DENSITY[name]
        if name != "rec":  # every recurrent neuron gets input, every readout gets a synapse
            empty = np.flatnonzero(~mask.any(axis=1))
            mask[empty, rng.integers(0, w.shape[1], size=empty.size)] = True
        for proj, pre, post in record:
            if proj == name:
                mask[post, pre] = True
        # an input row keeps its mean drive: scaled by (inputs) / (connected inputs)
        scale = (w.shape[1] / mask.sum(axis=1))[:, None] if name == "in" else 1.0
        out.append(cn.from_dense(w * scale, mask, autapses=name != "rec"))
    return out[0], out[1], out[2]


def random_connections(rng: np.random.Generator, shape: tuple[int, int], density: float, *,
                       autapses: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """``(post, pre)`` pairs of a Bernoulli(``density``) projection, drawn row by row in the canonical order.

    No ``(n_post, n_pre)`` array is made: each row draws its number of synapses (binomial) and then
    that many distinct presynaptic indices; every row gets at least one synapse.
    """
    n_post, n_pre = shape
    n_choice = n_pre - (0 if autapses else 1)
    counts = np.maximum(rng.binomial(n_choice, density, size=n_post), 1 if n_choice else 0)
    posts, pres = [], []
    for j in range(n_post):
        pre = np.sort(rng.choice(n_choice, size=int(counts[j]), replace=False)).astype(np.int64)
        if not autapses:
            pre[pre >= j] += 1  # skip the diagonal
        posts.append(np.full(pre.size, j, dtype=np.int64))
        pres.append(pre)
    return np.concatenate(posts), np.concatenate(pres)


def sparse_network(family: str, n_rec: int, density: float = 0.1, *, seed: int = 0, n_in: int = 100,
                   n_out: int = 2, steps: int = 100, n_sequences: int = 2) -> Scenario:
    """A large randomly connected LIF network whose projections are all sparse (no dense weight matrix).

    Each pair of every projection (input, recurrent, readout) is connected with probability
    ``density``; the input weights hold the mean potential at about 1.2 thresholds, the recurrent
    ones are balanced (zero mean).  For memory and speed measurements at scale (the 5 000-neuron,
    10 % network): building, validating and saving it allocate nothing of size ``n_rec x n_rec``.

    Parameters
    ----------
    family : {'original', 'event'}
    n_rec : int
        Recurrent neurons (one ``iaf`` population).
    density : float
        Connection probability of every projection, 0 < density <= 1.
    seed : int
        Seed of every draw.
    n_in, n_out : int
        Inputs (Poisson, 5 % spike probability per step) and MSE readouts.
    steps, n_sequences : int
        Sequence length (steps of 1 ms) and number of sequences.
    """
    if family not in FAMILIES:
        raise ParameterError(f"family = {family!r}: allowed values are {', '.join(FAMILIES)}")
    if not 0.0 < density <= 1.0:
        raise ParameterError(f"density = {density!r}: allowed range is 0 < density <= 1")
    rng = np.random.default_rng([int(seed), FAMILIES.index(family), n_rec])
    dt, tau_m, theta, rate = 1.0, 20.0, 15.0, 0.05
    alpha = float(np.exp(-dt / tau_m))
    params: dict[str, Any] = {"tau_m": tau_m, "cm": 0.25, "v_rest": -70.0, "v_thresh": -70.0 + theta,
                              "tau_refrac": 2.0, "i_offset": 0.0, "surrogate_gradient_height": 0.3 / theta,
                              "surrogate_gradient_width": theta, "c_reg": 0.0}
    readout: dict[str, Any] = {"tau_m": 20.0, "cm": 0.25, "v_rest": 0.0, "i_offset": 0.0}
    if family == "event":
        params.update(kappa=0.95, kappa_reg=0.95)
    n_steps = steps * n_sequences
    raster = rng.random((n_steps, n_in)) < rate
    raster[::steps] = False  # nothing arrives in the first step of a sequence
    weights = {}
    for name, shape, autapses in (("in", (n_rec, n_in), True), ("rec", (n_rec, n_rec), False),
                                  ("out", (n_out, n_rec), True)):
        post, pre = random_connections(rng, shape, density, autapses=autapses)
        if name == "in":
            k_in = np.bincount(post, minlength=n_rec)[post]  # inputs of each synapse's neuron
            w = 1.2 * theta * (1.0 - alpha) / (k_in * rate) * rng.uniform(0.5, 1.5, size=post.size)
        elif name == "rec":
            w = rng.normal(0.0, 1.0, size=post.size) * theta * (1.0 - alpha) / np.sqrt(density * n_rec)
        else:
            w = rng.normal(0.0, 1.0, size=post.size) / np.sqrt(density * n_rec)
        weights[name] = cn.SparseWeights(shape, post, pre, w)
    t = np.arange(n_steps) % steps
    target = np.array([np.sin(2 * np.pi * (k + 1) * t / steps) for k in range(n_out)])
    return Scenario(
        name=f"sparse-{family}-{n_rec}-{density:g}",
        description=f"{n_rec} LIF neurons, every projection {100 * density:g} % connected (seed {seed}).",
        network={"family": family, "dt": dt, "sequence": float(steps), "feedback": "random"},
        populations=[Population("iaf", n_rec, params)],
        readout=readout,
        optimizer={"type": "gradient_descent", "eta": 1e-4, "batch_size": 1},
        synapse={},
        n_in=n_in,
        n_out=n_out,
        n_sequences=n_sequences,
        w_in=weights["in"],
        w_rec=weights["rec"],
        w_out=weights["out"],
        w_fb=rng.normal(0.0, 1.0, size=(n_rec, n_out)) / np.sqrt(n_rec),
        input_spikes=[np.flatnonzero(raster[:, i]).astype(np.int64) for i in range(n_in)],
        target=target,
    )
