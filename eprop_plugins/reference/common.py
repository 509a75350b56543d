"""Pieces both families share: surrogate gradients, per-neuron constants, the weight optimizer, the recordings.

Each formula is written once, in the floating-point order of NEST 3.10's C++ (so that the reference
and NEST agree to the last bit wherever the inputs do).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from .. import connectivity as cn
from ..parameters import ADAPTIVE_MODELS, PSC_DELTA_MODELS, ParameterError, SURROGATE_FUNCTIONS, to_steps
from ..results import compute_losses

__all__ = ["c_exp", "readout_constants", "SURROGATES", "surrogate", "RecurrentConstants", "recurrent_constants",
           "Optimizer", "input_raster", "NEURON_TRACES", "READOUT_TRACES", "allocate_traces",
           "allocate_synapse_traces", "WeightSnapshots", "learning_signal", "iteration_loss", "Projections",
           "projections"]


# C's libm (as NEST's and Brian2's generated code use it): NumPy's SIMD exp/power differ in the last
# bit for a few per cent of arguments
_c_exp = np.vectorize(math.exp, otypes=[float])
_c_pow = np.vectorize(math.pow, otypes=[float])


def _piecewise_linear(d: np.ndarray, h: np.ndarray, w: np.ndarray) -> np.ndarray:
    return h * np.maximum(0.0, 1.0 - np.abs(d) / w)


def _exponential(d: np.ndarray, h: np.ndarray, w: np.ndarray) -> np.ndarray:
    return h * _c_exp(-np.abs(d) / w)


def _fast_sigmoid_derivative(d: np.ndarray, h: np.ndarray, w: np.ndarray) -> np.ndarray:
    return h * _c_pow(1.0 + np.abs(d) / w, -2.0)


def _arctan_derivative(d: np.ndarray, h: np.ndarray, w: np.ndarray) -> np.ndarray:
    return h / (1.0 + _c_pow(d / w, 2.0))


#: name -> psi(d, h, w) with d = v - threshold (docs/model.rst §1)
SURROGATES: dict[str, Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]] = {
    "piecewise_linear": _piecewise_linear,
    "exponential": _exponential,
    "fast_sigmoid_derivative": _fast_sigmoid_derivative,
    "arctan_derivative": _arctan_derivative,
}
assert tuple(SURROGATES) == SURROGATE_FUNCTIONS


def surrogate(name: str) -> Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]:
    """Look up a surrogate gradient function by name.

    Raises
    ------
    ParameterError
        For an unknown name; the message lists the known ones.
    """
    try:
        return SURROGATES[name]
    except KeyError:
        raise ParameterError(
            f"surrogate_gradient_function = {name!r}: allowed values are {', '.join(SURROGATES)}"
        ) from None


@dataclass
class RecurrentConstants:
    """Per-neuron constants of the recurrent population (vectors of length n_rec), derived once from dt."""

    alpha: np.ndarray  # exp(-dt/tau_m)
    p_i: np.ndarray  # tau_m/C_m (1 - alpha) in NEST's units, mV per pA (so that p_i * i_e rounds as in NEST)
    zeta: np.ndarray  # spike-arrival factor (1, or 1 - alpha in the original family without regular arrival)
    i_e: np.ndarray  # constant current, pA
    v_rest: np.ndarray
    v_th: np.ndarray  # relative to v_rest
    v_min: np.ndarray  # relative to v_rest (-inf: none)
    v_reset: np.ndarray  # relative to v_rest (psc_delta models)
    n_ref: np.ndarray  # refractory steps (int)
    rho: np.ndarray  # exp(-dt/tau_a) (0 for non-adaptive)
    beta: np.ndarray  # adaptation strength (0 for non-adaptive)
    adaptive: np.ndarray  # bool
    psc_delta: np.ndarray  # bool
    h: np.ndarray
    w: np.ndarray
    c_reg: np.ndarray
    f_target: np.ndarray  # spikes per ms
    kappa: np.ndarray
    kappa_reg: np.ndarray
    cutoff: np.ndarray  # ISI trace cutoff in steps (int64; a huge number = none)
    surrogate_groups: list[tuple[str, np.ndarray]]  # (function name, neuron indices)

    def psi(self, r: np.ndarray, d: np.ndarray) -> np.ndarray:
        """Surrogate gradient of every neuron at distance ``d`` = v - threshold; 0 while refractory."""
        out = np.empty_like(d)
        for name, idx in self.surrogate_groups:
            out[idx] = SURROGATES[name](d[idx], self.h[idx], self.w[idx])
        out[r > 0] = 0.0
        return out


def c_exp(x):
    """``exp`` of C's libm, element-wise (NEST and Brian2's generated code use it)."""
    return _c_exp(x) if np.ndim(x) else math.exp(x)


def readout_constants(readout: dict, dt: float) -> tuple[float, float, float]:
    """``(kappa_out, p_i_out, i_e_out)`` of a readout in NEST's units (mV per pA, pA)."""
    kappa_out = math.exp(-dt / readout["tau_m"])
    return kappa_out, readout["tau_m"] / (readout["cm"] * 1000.0) * (1.0 - kappa_out), readout["i_offset"] * 1000.0


NO_CUTOFF = np.iinfo(np.int64).max // 4


def recurrent_constants(scenario) -> RecurrentConstants:
    """Vectorise the validated scenario's population parameters."""
    dt = scenario.dt
    cols: dict[str, list] = {k: [] for k in RecurrentConstants.__dataclass_fields__ if k != "surrogate_groups"}
    names: list[str] = []
    for pop in scenario.populations:
        p = pop.params
        alpha = math.exp(-dt / p["tau_m"])  # C's exp, as NEST's std::exp
        vals = {
            "alpha": alpha,
            "p_i": p["tau_m"] / (p["cm"] * 1000.0) * (1.0 - alpha),
            "zeta": 1.0 if p.get("regular_spike_arrival", True) else 1.0 - alpha,
            "i_e": p["i_offset"] * 1000.0,
            "v_rest": p["v_rest"],
            "v_th": p["v_thresh"] - p["v_rest"],
            "v_min": -np.inf if p["v_min"] is None else p["v_min"] - p["v_rest"],
            "v_reset": p.get("v_reset", p["v_rest"]) - p["v_rest"],
            "n_ref": to_steps(p["tau_refrac"], dt, "tau_refrac"),
            "rho": math.exp(-dt / p["tau_a"]) if pop.model in ADAPTIVE_MODELS else 0.0,
            "beta": p["beta"] if pop.model in ADAPTIVE_MODELS else 0.0,
            "adaptive": pop.model in ADAPTIVE_MODELS,
            "psc_delta": pop.model in PSC_DELTA_MODELS,
            "h": p["surrogate_gradient_height"],
            "w": p["surrogate_gradient_width"],
            "c_reg": p["c_reg"],
            "f_target": p["f_target"] / 1000.0,
            "kappa": p.get("kappa", 0.0),
            "kappa_reg": p.get("kappa_reg", 0.0),
            "cutoff": NO_CUTOFF if p.get("isi_trace_cutoff") is None else
            to_steps(p["isi_trace_cutoff"], dt, "isi_trace_cutoff", allow_zero=False),
        }
        for k, v in vals.items():
            cols[k] += [v] * pop.size
        names += [p["surrogate_gradient_function"]] * pop.size
    arrays = {k: np.array(v) for k, v in cols.items()}
    arrays["n_ref"] = arrays["n_ref"].astype(np.int64)
    arrays["cutoff"] = arrays["cutoff"].astype(np.int64)
    names_arr = np.array(names)
    groups = [(name, np.nonzero(names_arr == name)[0]) for name in SURROGATES if np.any(names_arr == name)]
    return RecurrentConstants(surrogate_groups=groups, **arrays)


def input_raster(scenario) -> np.ndarray:
    """Boolean ``(n_steps, n_in)`` array of input arrivals."""
    x = np.zeros((scenario.n_steps, scenario.n_in), dtype=bool)
    for i, train in enumerate(scenario.input_spikes):
        x[np.asarray(train, dtype=np.int64), i] = True
    return x


class Optimizer:
    """NEST's ``WeightOptimizer`` for a whole weight array at once (docs/model.rst §4).

    ``step(idx, gradient, w)`` mirrors ``optimized_weight(idx_current_update, gradient, weight)``:
    the gradient is accumulated; when ``1 + idx // batch_size`` exceeds the optimisation step the
    accumulated gradient is divided by the batch size and applied (Adam catches up missed steps
    with zero gradient), then clipped to [w_min, w_max].

    Parameters
    ----------
    params : dict
        Canonical optimizer parameters.
    shape : tuple
        Shape of the weight array.
    mask : ndarray of bool, optional
        Elements that exist (e.g. no autapses); others are never changed.
    """

    def __init__(self, params: dict, shape: tuple[int, ...], mask: np.ndarray | None = None):
        self.kind = params["type"]
        self.eta = params["eta"]
        self.batch_size = params["batch_size"]
        self.beta_1 = params["beta_1"]
        self.beta_2 = params["beta_2"]
        self.epsilon = params["epsilon"]
        self.w_min = params["w_min"]
        self.w_max = params["w_max"]
        self.cumulative = np.zeros(shape)
        self.optimization_step = np.ones(shape, dtype=np.int64)
        self.m = np.zeros(shape)
        self.v = np.zeros(shape)
        self.beta_1_power = np.ones(shape)
        self.beta_2_power = np.ones(shape)
        self.mask = np.ones(shape, dtype=bool) if mask is None else mask

    def step(self, idx: int | np.ndarray, gradient: np.ndarray, w: np.ndarray, where: np.ndarray | None = None) -> np.ndarray:
        """Accumulate ``gradient`` and update ``w`` where an optimisation step is due.

        ``idx`` is NEST's ``idx_current_update`` (scalar or per element); ``where`` restricts the
        call to some elements (the others are left untouched, as if not called).  Only the selected
        elements are touched, so per-step calls on a few synapses stay cheap.
        """
        sel = np.flatnonzero(self.mask if where is None else (self.mask & where))
        if sel.size == 0:
            return w
        cum = self.cumulative.reshape(-1)
        step = self.optimization_step.reshape(-1)
        cum[sel] += gradient.reshape(-1)[sel]
        current = 1 + np.asarray(idx, dtype=np.int64) // self.batch_size
        current = np.broadcast_to(current, w.shape).reshape(-1)[sel] if np.ndim(current) else np.full(sel.size, int(current))
        due_mask = step[sel] < current
        if not due_mask.any():
            return w
        due = sel[due_mask]
        target = current[due_mask]
        w = w.copy()
        wf = w.reshape(-1)
        cum[due] /= self.batch_size
        if self.kind == "gradient_descent":
            wf[due] -= self.eta * cum[due]
            cum[due] = 0.0
        else:
            self._adam(due, target, wf)
        wf[due] = np.clip(wf[due], self.w_min, self.w_max)
        step[due] = target
        return w

    def _adam(self, due: np.ndarray, target: np.ndarray, wf: np.ndarray) -> None:
        """Adam steps ``optimization_step .. target - 1`` for the flat indices ``due`` (zero gradient after the first)."""
        b1, b2, eps = self.beta_1, self.beta_2, self.epsilon
        cum = self.cumulative.reshape(-1)
        m, v = self.m.reshape(-1), self.v.reshape(-1)
        p1, p2 = self.beta_1_power.reshape(-1), self.beta_2_power.reshape(-1)
        step = self.optimization_step.reshape(-1)[due].copy()
        idx = due
        while idx.size:
            p1[idx] *= b1
            p2[idx] *= b2
            alpha = self.eta * np.sqrt(1.0 - p2[idx]) / (1.0 - p1[idx])
            g = cum[idx]
            m[idx] = b1 * m[idx] + (1.0 - b1) * g
            v[idx] = b2 * v[idx] + (1.0 - b2) * g * g
            wf[idx] -= alpha * m[idx] / (np.sqrt(v[idx]) + eps)
            cum[idx] = 0.0
            step += 1
            keep = step < target
            idx, step, target = idx[keep], step[keep], target[keep]


#: per-step float traces of the recurrent neurons (``z`` is stored apart, as int8)
NEURON_TRACES = ("v", "psi", "adaptation", "v_th_adapt", "learning_signal", "fr_reg")
#: per-step traces of the readouts
READOUT_TRACES = ("readout_v", "y", "target", "error")


def allocate_traces(n_steps: int, n_rec: int, n_out: int) -> dict[str, np.ndarray]:
    """Zeroed per-step traces of a run (names and units: :mod:`eprop_plugins.results`)."""
    traces = {k: np.zeros((n_steps, n_rec)) for k in NEURON_TRACES}
    traces["z"] = np.zeros((n_steps, n_rec), dtype=np.int8)
    for k in READOUT_TRACES:
        traces[k] = np.zeros((n_steps, n_out))
    return traces


def allocate_synapse_traces(n_steps: int, n_record: int, names: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Zeroed ``(n_steps, n_record)`` traces of the recorded synapses, one per name."""
    return {k: np.zeros((n_steps, n_record)) for k in names}


@dataclass
class Projections:
    """The plastic projections of a scenario as dense arrays and the masks of the synapses that exist.

    For code that computes with ``[post, pre]`` matrices (the reference itself keeps one entry per
    synapse, :mod:`eprop_plugins.reference.synapses`).  A sparse projection becomes a dense matrix with 0 where there is no synapse and a mask that is
    False there: unconnected pairs add an exact ``+0.0`` to every sum, the optimizer never touches
    them (its mask) and they emit no weight event, so the numbers are those of the connected
    synapses alone.  A dense projection has an all-true mask (without the ``w_rec`` diagonal).
    """

    w_in: np.ndarray
    w_rec: np.ndarray
    w_out: np.ndarray
    mask_in: np.ndarray
    mask_rec: np.ndarray
    mask_out: np.ndarray
    sparse: dict[str, cn.SparseWeights]  # the sparse ones by snapshot name (w_in, w_rec, w_out)


def projections(sc) -> Projections:
    """Dense arrays and masks of a validated scenario's plastic projections.

    Raises
    ------
    ParameterError
        A sparse projection whose dense form would exceed
        :data:`eprop_plugins.connectivity.DENSE_LIMIT` entries (the reference computes with dense
        arrays; such networks run on the NEST backends).
    """
    dense: dict[str, np.ndarray] = {}
    masks: dict[str, np.ndarray] = {}
    sparse: dict[str, cn.SparseWeights] = {}
    for name, w in (("w_in", sc.w_in), ("w_rec", sc.w_rec), ("w_out", sc.w_out)):
        autapses = name != "w_rec"
        if cn.is_sparse(w):
            n_post, n_pre = w.shape
            if n_post * n_pre > cn.DENSE_LIMIT:
                raise ParameterError(
                    f"{name}: a sparse projection of shape {w.shape} ({n_post * n_pre} pairs); the reference "
                    f"computes with dense arrays of at most DENSE_LIMIT = {cn.DENSE_LIMIT} entries; run this "
                    f"network on a NEST backend (nestml, nest-builtin)")
            sparse[name] = w
        dense[name] = cn.to_dense(w)
        masks[name] = cn.mask_of(w, autapses=autapses)
    return Projections(dense["w_in"], dense["w_rec"], dense["w_out"], masks["w_in"], masks["w_rec"], masks["w_out"],
                       sparse)


class WeightSnapshots:
    """The weights at the end of every sequence: ``w_in``, ``w_rec``, ``w_out``, ``w_fb``, from dense arrays.

    For code that holds ``[post, pre]`` matrices (the reference uses
    :class:`~eprop_plugins.reference.synapses.SynapseSnapshots`).  Dense projections are stored as matrices, sparse ones as vectors in the canonical connection
    order (:mod:`eprop_plugins.results`).

    Parameters
    ----------
    n_sequences : int
        Number of snapshots.
    n_in, n_rec, n_out : int
        Sizes (``w_fb`` is ``(n_rec, n_out)``).
    sparse : dict, optional
        The sparse projections by name (from :class:`Projections`).
    """

    def __init__(self, n_sequences: int, n_in: int, n_rec: int, n_out: int,
                 sparse: dict[str, cn.SparseWeights] | None = None) -> None:
        self.sparse = dict(sparse or {})
        shapes = {"w_in": (n_rec, n_in), "w_rec": (n_rec, n_rec), "w_out": (n_out, n_rec), "w_fb": (n_rec, n_out)}
        for name, w in self.sparse.items():
            shapes[name] = (w.n_connections,)
        self.arrays = {k: np.zeros((n_sequences,) + shape) for k, shape in shapes.items()}
        self.connections = {k: np.stack([w.post, w.pre]) for k, w in self.sparse.items()}

    def record(self, sequence: int, w_in: np.ndarray, w_rec: np.ndarray, w_out: np.ndarray, w_fb: np.ndarray) -> None:
        """Store the weights in force at the end of ``sequence`` (dense arrays; sparse ones are gathered)."""
        for k, w in (("w_in", w_in), ("w_rec", w_rec), ("w_out", w_out), ("w_fb", w_fb)):
            sp = self.sparse.get(k)
            self.arrays[k][sequence] = w if sp is None else w[sp.post, sp.pre]


def learning_signal(B: np.ndarray, err: np.ndarray) -> np.ndarray:
    """``L_j = sum_k B_jk err_k``, the readouts added in ascending order (NEST's delivery order)."""
    L = np.zeros(B.shape[0])
    for k in range(B.shape[1]):
        L += B[:, k] * err[k]
    return L


def iteration_loss(scenario, traces: dict[str, np.ndarray], sequence: int) -> float | None:
    """The loss of the iteration that ends with ``sequence``, or None if the iteration goes on.

    Computed from the recorded ``y`` and ``target`` of the iteration's steps by
    :func:`eprop_plugins.results.compute_losses`.
    """
    per_iteration = scenario.iteration_sequences
    if (sequence + 1) % per_iteration:
        return None
    T = scenario.steps_per_sequence
    sl = slice((sequence + 1 - per_iteration) * T, (sequence + 1) * T)
    return float(compute_losses(scenario, traces["y"][sl], traces["target"][sl], sl.start)[0])
