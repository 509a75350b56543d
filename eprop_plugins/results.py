"""What a backend returns: traces in aligned time, weight events and losses.

Every backend fills the same :class:`Result`, so the validation compares like with like.

Per-step traces (shape ``(n_steps, n)``, aligned time, see :mod:`eprop_plugins.scenario`):

===================  =========  ==========================================================
name                 unit       meaning
===================  =========  ==========================================================
``v``                mV         recurrent membrane potential (absolute), after the update
``z``                1          recurrent spikes (0/1)
``psi``              1/mV       surrogate gradient
``adaptation``       1          adaptation variable a (0 for non-adaptive neurons)
``v_th_adapt``       mV         effective threshold (absolute)
``learning_signal``  mV         learning signal L_j,t (pairs with psi of the same step)
``fr_reg``           1          firing-rate regularisation term (event family: per step;
                                original family: the interval's value, on every step of it)
``readout_v``        mV         readout membrane potential (absolute)
``y``                1          readout signal (MSE: readout_v; cross-entropy: softmax)
``target``           1          target signal
``error``            1          error signal (0 outside the learning window)
===================  =========  ==========================================================

Per recorded synapse (shape ``(n_steps, n_record_synapses)``): ``zbar``, ``e``, ``ebar`` and,
in the event family, ``ebar_reg``.

Weight events (one row per spike transmitted by a plastic synapse, sorted by step, projection,
pre, post): ``step`` (aligned step of arrival), ``proj`` (0 in, 1 rec, 2 out), ``pre``, ``post``
and ``w`` (the weight the spike was transmitted with).  NEST's weight recorder gives these.
Only existing synapses transmit: a pair that a sparse projection does not list has no event.

Weight snapshots (``Result.weights``, at the end of every sequence), per projection ``w_in``,
``w_rec``, ``w_out`` (and ``w_fb``):

* dense projection: ``(n_sequences, n_post, n_pre)``, every pair (the autapse diagonal of
  ``w_rec`` holds 0);
* sparse projection (:class:`~eprop_plugins.connectivity.SparseWeights` in the scenario):
  ``(n_sequences, n_connections)``, one weight vector per snapshot in the canonical connection
  order of :mod:`eprop_plugins.connectivity` (sorted by post, then pre), and
  ``Result.weight_connections[name]`` the ``(2, n_connections)`` int64 array of its ``(post, pre)``
  pairs in that order, so that a saved Result describes itself.  No dense matrix is stored.

A backend that cannot read snapshots omits them; one that reads them from a simulator puts them in
this order with :func:`eprop_plugins.connectivity.connection_index`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["Result", "compute_losses", "WEIGHT_EVENT_FIELDS", "WeightEventLog", "sort_weight_events"]

WEIGHT_EVENT_FIELDS = ("step", "proj", "pre", "post", "w")


def sort_weight_events(ev: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Return weight events ordered by (step, proj, pre, post)."""
    order = np.lexsort((ev["post"], ev["pre"], ev["proj"], ev["step"]))
    return {k: np.asarray(ev[k])[order] for k in WEIGHT_EVENT_FIELDS}


class WeightEventLog:
    """Collects weight events (one row per spike transmitted by a plastic synapse) in blocks.

    Every backend that computes its weight events (rather than reading them from a simulator's
    recorder) appends blocks here; :meth:`arrays` returns the columns of
    :data:`WEIGHT_EVENT_FIELDS`, sorted by :func:`sort_weight_events`.
    """

    _DTYPES = {"step": np.int64, "proj": np.int8, "pre": np.int64, "post": np.int64, "w": float}

    def __init__(self) -> None:
        self._blocks: dict[str, list[np.ndarray]] = {k: [] for k in WEIGHT_EVENT_FIELDS}

    def add(self, step: Any, proj: int, pre: Any, post: Any, w: Any) -> None:
        """Append one block of events.

        Parameters
        ----------
        step, pre, post : int or array_like of int
            Aligned arrival step, presynaptic and postsynaptic index; scalars are broadcast to the
            block's length (the longest of the array arguments).
        proj : int
            Projection: 0 input, 1 recurrent, 2 readout (the order of ``scenario.PROJECTIONS``).
        w : float or array_like
            Weight used for the transmission, in mV.
        """
        n = max(np.size(step), np.size(pre), np.size(post), np.size(w))
        values = {"step": step, "proj": proj, "pre": pre, "post": post, "w": w}
        for k in WEIGHT_EVENT_FIELDS:
            col = np.asarray(values[k], dtype=self._DTYPES[k])
            self._blocks[k].append(np.broadcast_to(col, (n,)).copy() if col.size != n or col.ndim != 1 else col)

    def __len__(self) -> int:
        return int(sum(b.size for b in self._blocks["step"]))

    def arrays(self) -> dict[str, np.ndarray]:
        """The events as sorted columns (empty float arrays when there are none)."""
        if not self._blocks["step"]:
            return {k: np.zeros(0) for k in WEIGHT_EVENT_FIELDS}
        return sort_weight_events({k: np.concatenate(v) for k, v in self._blocks.items()})


def compute_losses(scenario: Any, y: np.ndarray, target: np.ndarray, start: int = 0) -> np.ndarray:
    """Loss per iteration, as NEST's tests define it.

    Mean squared error: ``0.5 * sum_t (y - y*)^2`` over the learning window of a sequence, summed over
    readouts and averaged over the sequences of an iteration; in the event family each step is weighted
    by the learning-window signal (so only the steps that are learned from count).  Cross-entropy:
    ``-mean_{sequences, t in window} sum_k y*_k log(pi_k)``.

    Parameters
    ----------
    scenario : Scenario
        Validated scenario.
    y, target : ndarray
        ``(n_steps, n_out)`` readout signal and target in aligned time, covering whole iterations.
    start : int
        Aligned step of ``y[0]`` (a slice of the run gives the losses of its iterations).
    """
    T = scenario.steps_per_sequence
    lw = scenario.learning_window_steps() if scenario.family == "original" else T
    B = scenario.iteration_sequences
    n_out = np.shape(y)[1]
    y = np.asarray(y).reshape(-1, B, T, n_out)[:, :, T - lw :, :]
    tg = np.asarray(target).reshape(-1, B, T, n_out)[:, :, T - lw :, :]
    if scenario.readout["loss"] == "cross_entropy":
        return -np.mean(np.sum(tg * np.log(y), axis=3), axis=(1, 2))
    sq = (y - tg) ** 2
    lws = getattr(scenario, "learning_window_signal", None)
    if lws is not None:
        sq = sq * np.asarray(lws)[start : start + y.shape[0] * B * T].reshape(-1, B, T, 1)[:, :, T - lw :]
    return 0.5 * np.mean(np.sum(np.sum(sq, axis=2), axis=2), axis=1)


@dataclass
class Result:
    """Everything one backend recorded for one scenario.

    Attributes
    ----------
    scenario : str
        Scenario name.
    family, backend : str
    losses : ndarray
        Loss per iteration.
    traces : dict of ndarray
        Per-step traces (see module docstring); a backend may omit traces it cannot observe.
    synapse_traces : dict of ndarray
        ``zbar``, ``e``, ``ebar`` (, ``ebar_reg``) for the scenario's recorded synapses.
    weight_events : dict of ndarray
        Columns ``step, proj, pre, post, w``.
    weights : dict of ndarray
        Optional snapshots ``w_in``, ``w_rec``, ``w_out`` (and ``w_fb``) at the end of every
        sequence: ``(n_sequences, post, pre)`` for a dense projection, ``(n_sequences,
        n_connections)`` in the canonical connection order for a sparse one (module docstring).
    weight_connections : dict of ndarray
        For each sparse projection in ``weights``: its ``(2, n_connections)`` ``(post, pre)`` pairs.
    meta : dict
        Timings and backend details.
    """

    scenario: str
    family: str
    backend: str
    losses: np.ndarray
    traces: dict[str, np.ndarray] = field(default_factory=dict)
    synapse_traces: dict[str, np.ndarray] = field(default_factory=dict)
    weight_events: dict[str, np.ndarray] = field(default_factory=dict)
    weights: dict[str, np.ndarray] = field(default_factory=dict)
    weight_connections: dict[str, np.ndarray] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    def save_npz(self, path: str | Path) -> Path:
        """Save all arrays to one ``.npz`` file (prefixes ``trace/``, ``syn/``, ``wev/``, ``w/``, ``wconn/``)."""
        arrays: dict[str, np.ndarray] = {"losses": np.asarray(self.losses)}
        for prefix, group in (
            ("trace", self.traces),
            ("syn", self.synapse_traces),
            ("wev", self.weight_events),
            ("w", self.weights),
            ("wconn", self.weight_connections),
        ):
            for k, v in group.items():
                arrays[f"{prefix}/{k}"] = np.asarray(v)
        path = Path(path)
        np.savez_compressed(path, **arrays)
        path.with_suffix(".json").write_text(
            json.dumps({"scenario": self.scenario, "family": self.family, "backend": self.backend, "meta": self.meta},
                       indent=1, default=str)
        )
        return path
