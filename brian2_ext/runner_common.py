"""Pieces both Brian2 family runners share: start values, weight snapshots and events, trace arrays, the Result.

Imports neither :mod:`brian2_ext.runner_original` nor :mod:`brian2_ext.runner_event`.
"""

from __future__ import annotations

import time
from typing import Any, Sequence

import numpy as np

from eprop_plugins import connectivity as cn
from eprop_plugins.results import Result

__all__ = ["initial_weights", "make_result", "start_values", "synapse_trace_arrays", "weight_snapshots",
           "input_spike_pairs"]


def initial_weights(sc) -> dict[str, Any]:
    """The scenario's initial weights by projection (copies of dense matrices; sparse connection lists
    are immutable), ``fb`` the dense feedback in force, mV."""
    weights = {name: w if cn.is_sparse(w) else np.array(w, dtype=float) for name, w in sc.projections().items()}
    weights["fb"] = sc.effective_feedback()
    return weights


def start_values(m, sc, initial: dict[str, np.ndarray]) -> dict[Any, np.ndarray]:
    """Values to assign before the run: constants, then run values; empty projections left out."""
    values = dict(m.constant_values(sc))
    values.update(m.run_values(sc, initial))
    return {k: v for k, v in values.items() if np.size(v)}


def synapse_trace_arrays(n_steps: int, record_synapses: Sequence, names: Sequence[str]) -> dict[str, np.ndarray]:
    """Zero arrays ``(n_steps, n_record_synapses)`` for the named synapse traces (empty without synapses)."""
    if not record_synapses:
        return {}
    return {k: np.zeros((n_steps, len(record_synapses))) for k in names}


def weight_snapshots(sc, m, initial: dict[str, Any], sources: Sequence[tuple[str, str, str, str]]
                     ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Weights at the end of every sequence, as :class:`~eprop_plugins.results.Result` stores them.

    Dense projections ``(n_sequences, post, pre)``; sparse ones ``(n_sequences, n_connections)`` in
    the canonical connection order, with their ``(2, n_connections)`` ``(post, pre)`` pairs; the
    feedback ``w_fb`` is dense, ``(n_sequences, n_rec, n_out)``.

    Parameters
    ----------
    sc : Scenario
    m : EpropNetwork or EventNetwork
        The network after the run.
    initial : dict
        Initial weights (:func:`initial_weights`): a projection without synapses (no monitor) and
        feedback synapses of their own (:func:`brian2_ext.equations.feedback_apart`, constant B) keep them.
    sources : sequence of (str, str, str, str)
        ``(result key, projection, monitor name, variable)``: the monitor records the variable once
        per sequence (column ``s + 1`` at the end of sequence ``s``); the feedback ``B`` is stored
        per readout synapse ``(pre j, post k)`` and returned as ``w_fb[j, k]``.

    Returns
    -------
    snapshots, connections : dict of ndarray
        ``Result.weights`` and ``Result.weight_connections``.
    """
    snaps, pairs = {}, {}
    n_seq = sc.n_sequences
    for key, proj, mon_key, var in sources:
        mon = m.monitors.get(mon_key)
        syn = m.synapses[proj]
        if var == "B" and (mon is None or m.s_fb is not None):  # B constant (feedback synapses of their own)
            snaps[key] = np.broadcast_to(initial["fb"], (n_seq,) + initial["fb"].shape).copy()
            continue
        if mon is None:  # no synapses in this projection: constant
            first = cn.snapshot(initial[proj]) if syn.sparse else initial[proj]
            snaps[key] = np.broadcast_to(first, (n_seq,) + first.shape).copy()
        else:
            vals = np.asarray(getattr(mon, var))[:, 1 : n_seq + 1].T  # (sequence, synapse)
            if var == "B" and syn.sparse:  # B on the readout synapses (symmetric feedback), 0 elsewhere
                snaps[key] = np.broadcast_to(initial["fb"], (n_seq,) + initial["fb"].shape).copy()
                snaps[key][:, syn.pre, syn.post] = vals
            elif syn.sparse:
                snaps[key] = np.empty((n_seq, len(syn)))
                snaps[key][:, syn.canonical] = vals
            else:
                dense = np.stack([m.snapshot(proj, vals[s]) for s in range(n_seq)])
                snaps[key] = dense.transpose(0, 2, 1) if var == "B" else dense
        if syn.sparse and var != "B":
            pairs[key] = syn.connection_pairs()
    return snaps, pairs


def make_result(sc, *, backend: str, mode: str, session, losses: Sequence[float], traces: dict, synapse_traces: dict,
                weight_events: dict, weights: dict, run_seconds: float, t_start: float, record: bool,
                weight_connections: dict | None = None) -> Result:
    """The Result of one run, with the timings every backend reports in ``meta``.

    ``meta``: ``seconds`` (wall time of the whole run), ``compile_seconds`` (compilation in this run,
    0.0 on a cache hit), ``cached`` (no compilation was needed), ``build_seconds`` (network
    construction, code generation and compilation), ``run_seconds`` (the simulation),
    ``seconds_per_iteration`` (``run_seconds / iterations``), ``compiled`` (= not cached), ``mode``,
    ``structure`` (build key) and ``record``.
    """
    n_it = max(sc.n_iterations, 1)
    return Result(
        scenario=sc.name, family=sc.family, backend=backend, losses=np.array(losses), traces=traces,
        synapse_traces=synapse_traces, weight_events=weight_events, weights=weights,
        weight_connections=dict(weight_connections or {}),
        meta={"seconds": time.perf_counter() - t_start, "compile_seconds": float(session.compile_seconds),
              "cached": bool(session.cached), "build_seconds": session.build_seconds, "run_seconds": run_seconds,
              "seconds_per_iteration": run_seconds / n_it, "mode": mode, "compiled": not session.cached,
              "structure": session.key, "record": record},
    )


def input_spike_pairs(sc, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
    """``(step, input)`` of every input spike arriving at aligned steps ``lo <= step < hi``."""
    steps, pres = [], []
    for i, train in enumerate(sc.input_spikes):
        arr = np.asarray(train, dtype=np.int64)
        arr = arr[(arr >= lo) & (arr < hi)]
        steps.append(arr)
        pres.append(np.full(arr.size, i, dtype=np.int64))
    if not steps:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    return np.concatenate(steps), np.concatenate(pres)
