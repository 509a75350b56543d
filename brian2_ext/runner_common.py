"""Pieces both Brian2 family runners share: start values, weight snapshots, trace arrays, the Result.

Imports neither :mod:`brian2_ext.runner_original` nor :mod:`brian2_ext.runner_event`.
"""

from __future__ import annotations

import time
from typing import Any, Sequence

import numpy as np

from eprop_plugins.results import Result

__all__ = ["initial_weights", "make_result", "start_values", "synapse_trace_arrays", "weight_snapshots"]


def initial_weights(sc) -> dict[str, np.ndarray]:
    """Copies of the scenario's initial weights by projection (``fb``: the feedback in force), mV."""
    return {"in": sc.w_in.copy(), "rec": sc.w_rec.copy(), "out": sc.w_out.copy(), "fb": sc.effective_feedback()}


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


def weight_snapshots(sc, m, initial: dict[str, np.ndarray],
                     sources: Sequence[tuple[str, str, str, str]]) -> dict[str, np.ndarray]:
    """Dense weights at the end of every sequence, ``(n_sequences, post, pre)``.

    Parameters
    ----------
    sc : Scenario
    m : EpropNetwork
        The network after the run.
    initial : dict of ndarray
        Initial weights: a projection without synapses (no monitor) keeps them.
    sources : sequence of (str, str, str, str)
        ``(result key, projection, monitor name, variable)``: the monitor records the variable once
        per sequence (column ``s + 1`` at the end of sequence ``s``); the feedback ``B`` is stored
        ``(n_out, n_rec)`` per synapse and returned transposed, as ``w_fb``.
    """
    snaps = {}
    n_seq = sc.n_sequences
    for key, proj, mon_key, var in sources:
        mon = m.monitors.get(mon_key)
        if mon is None:  # no recurrent synapses: constant matrix
            snaps[key] = np.broadcast_to(initial[proj], (n_seq,) + initial[proj].shape).copy()
            continue
        vals = np.asarray(getattr(mon, var))[:, 1 : n_seq + 1]  # (synapse, sequence)
        dense = np.stack([m.dense(proj, vals[:, s]) for s in range(n_seq)])
        snaps[key] = dense.transpose(0, 2, 1) if var == "B" else dense
    return snaps


def make_result(sc, *, backend: str, mode: str, session, losses: Sequence[float], traces: dict, synapse_traces: dict,
                weight_events: dict, weights: dict, run_seconds: float, t_start: float, record: bool) -> Result:
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
        meta={"seconds": time.perf_counter() - t_start, "compile_seconds": float(session.compile_seconds),
              "cached": bool(session.cached), "build_seconds": session.build_seconds, "run_seconds": run_seconds,
              "seconds_per_iteration": run_seconds / n_it, "mode": mode, "compiled": not session.cached,
              "structure": session.key, "record": record},
    )
