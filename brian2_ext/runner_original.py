"""Run an original-family scenario on an :class:`~brian2_ext.network.EpropNetwork` (runtime or cpp_standalone).

A whole scenario (all iterations) is one simulation of ``n_sequences * T + 1`` steps; the optimizer
state lives in Brian2 variables between intervals.  Runtime mode runs it in chunks of one iteration
(so ``on_iteration`` is called as the run proceeds); cpp_standalone runs one cached binary once with
``run_args`` (no recompilation per scenario of the same structure) and calls ``on_iteration`` for
every iteration after the run.
"""

from __future__ import annotations

import time
from typing import Callable

import numpy as np

from eprop_plugins.reference.common import recurrent_constants
from eprop_plugins.results import Result, WeightEventLog, compute_losses

from .network import EpropNetwork, structure_of
from .network_common import network_synapses
from .runner_common import (initial_weights, input_spike_pairs, make_result, start_values, synapse_trace_arrays,
                            weight_snapshots)
from .sessions import open_session

__all__ = ["run_original_scenario"]

#: (result key, projection, monitor, variable) of the per-sequence weight monitors
_SNAPSHOTS = (("w_in", "in", "w_in", "w"), ("w_rec", "rec", "w_rec", "w"), ("w_out", "out", "w_out", "w"),
              ("w_fb", "out", "w_out", "B"))


def run_original_scenario(sc, *, mode: str, record_weight_events: bool, record: bool,
                          on_iteration: Callable[[int, float], None] | None, threads: int, backend: str,
                          t_start: float) -> Result:
    """Simulate a validated original-family scenario; arguments as :func:`brian2_ext.runner.run_scenario`."""
    st = structure_of(sc, record=record)
    session = open_session(mode, st, sc.dt, sc.record_synapses if record else [], threads=threads,
                           scenario=sc.name, backend=backend, synapses=network_synapses(sc))
    m = session.model
    initial = initial_weights(sc)
    values = start_values(m, sc, initial)
    t0 = time.perf_counter()
    if mode == "standalone":
        session.run(values)
        run_seconds = time.perf_counter() - t0
        losses = [float(x) for x in _losses(sc, m, record)]
        if on_iteration is not None:
            for it, loss in enumerate(losses):
                on_iteration(it, loss)
    else:
        losses = _advance_by_iteration(sc, session, values, record, on_iteration)
        run_seconds = time.perf_counter() - t0 - session.generation_seconds  # generated in the first run

    tr, syn, snaps, pairs, wev = {}, {}, {}, {}, WeightEventLog().arrays()
    if record:
        tr = _neuron_traces(sc, m)
        syn = _synapse_traces(sc, m, tr["error"])
        snaps, pairs = weight_snapshots(sc, m, initial, _SNAPSHOTS)
        if record_weight_events:
            wev = _weight_events(sc, m, tr["z"], initial)
    return make_result(sc, backend=backend, mode=mode, session=session, losses=losses, traces=tr, synapse_traces=syn,
                       weight_events=wev, weights=snaps, run_seconds=run_seconds, t_start=t_start, record=record,
                       weight_connections=pairs)


def _advance_by_iteration(sc, session, values, record: bool, on_iteration) -> list[float]:
    """Runtime mode: recording runs at once; losses-only runs one chunk per iteration, its loss as soon as it is finished.

    Each ``net.run`` regenerates every object's code before its first step (0.3-1.5 s per network),
    so a recording run (validation) is one run, its losses read from the recording afterwards; a
    losses-only run (training) reports each iteration's loss as it ends.
    """
    m = session.model
    session.set_values(values)
    if record:
        session.advance(sc.n_iterations * m.st.batch * m.st.steps + 1)  # + the optimizer of the last iteration
        losses = [float(x) for x in _losses(sc, m, record)]
        if on_iteration is not None:
            for it, loss in enumerate(losses):
                on_iteration(it, loss)
        return losses
    losses = []
    for it in range(sc.n_iterations):
        session.advance(m.st.batch * m.st.steps)
        # the accumulators hold the finished iteration until the next interval block
        loss = float(_losses(sc, m, record, it, np.asarray(m.out.lacc[:]))[0])
        losses.append(loss)
        if on_iteration is not None:
            on_iteration(it, loss)
    session.advance(1)  # the optimizer of the last iteration
    return losses


def _losses(sc, m: EpropNetwork, record: bool, it: int | None = None, lacc: np.ndarray | None = None) -> np.ndarray:
    """Losses of all iterations (``it`` None, after the run) or of iteration ``it`` (``lacc``: its accumulators).

    Recording runs compute them from the recorded readout signal (:func:`compute_losses`, as every
    backend); losses-only runs from the accumulators (sequential sums: equal to ~1e-15 relative).
    """
    T, Bt = m.st.steps, m.st.batch
    if record:
        mon = m.monitors["out"]
        sl = slice(0, m.n_steps) if it is None else slice(it * Bt * T, (it + 1) * Bt * T)
        y = np.asarray(mon.sig[:, sl]).T
        return compute_losses(sc, y, sc.target[:, sl].T)
    acc = np.asarray(m.monitors["loss"].lacc).T[1 : sc.n_iterations + 1] if lacc is None else lacc[None, :]
    if sc.readout["loss"] == "cross_entropy":
        return -np.sum(acc, axis=1) / (Bt * m.st.window)
    return 0.5 * np.sum(acc, axis=1) / Bt


def _neuron_traces(sc, m: EpropNetwork) -> dict[str, np.ndarray]:
    """Per-step traces of the recurrent neurons and readouts from the monitors of a recording run."""
    c = recurrent_constants(sc)
    N, T = m.n_steps, m.st.steps
    tr: dict[str, np.ndarray] = {}
    mr, mo = m.monitors["rec"], m.monitors["out"]
    tr["v"] = np.asarray(mr.v)[:, :N].T + c.v_rest
    z = np.asarray(mr.z)[:, :N].T
    tr["z"] = z.astype(np.int8)
    tr["psi"] = np.asarray(mr.psi)[:, :N].T
    # a = z for rho = 0: non-adaptive neurons report 0, as the reference does
    tr["adaptation"] = np.where(c.adaptive, np.asarray(mr.a)[:, :N].T, 0.0)
    tr["v_th_adapt"] = np.asarray(mr.thr)[:, :N].T + c.v_rest
    tr["learning_signal"] = np.asarray(mr.L)[:, :N].T
    # the interval block at step kT computed the term of interval k - 1
    fr = np.asarray(mr.fr)[:, T : N + 1 : T].T
    tr["fr_reg"] = np.repeat(fr, T, axis=0)
    tr["readout_v"] = np.asarray(mo.y)[:, :N].T + sc.readout["v_rest"]
    tr["y"] = np.asarray(mo.sig)[:, :N].T
    tr["error"] = np.asarray(mo.err)[:, :N].T
    tr["target"] = sc.target[:, :N].T.copy()
    return tr


def _synapse_traces(sc, m: EpropNetwork, error: np.ndarray) -> dict[str, np.ndarray]:
    """z-bar, e and e-bar of the recorded synapses (``error``: the readouts' error trace)."""
    N, rs = m.n_steps, sc.record_synapses
    syn = synapse_trace_arrays(N, rs, ("zbar", "e", "ebar"))
    for q, (proj, pre, post) in enumerate(rs):
        ms = m.monitors[f"syn_{proj}"]
        row = list(ms.record).index(m.synapse_index(proj, pre, post))
        if f"ztr_{proj}" in m.monitors:  # z-bar kept per presynaptic neuron
            mz = m.monitors[f"ztr_{proj}"]
            zb = np.asarray(mz.ztr)[list(mz.record).index(pre), :N]
        else:
            zb = np.asarray(ms.zbar)[row, :N]
        syn["zbar"][:, q] = zb
        # readout synapses: e_t = err_k,t zbar_t (a product of two recorded values), e-bar = z-bar
        syn["e"][:, q] = error[:, post] * zb if proj == "out" else np.asarray(ms.elig)[row, :N]
        syn["ebar"][:, q] = zb if proj == "out" else np.asarray(ms.ebar)[row, :N]
    return syn


def _weight_events(sc, m: EpropNetwork, z: np.ndarray, initial) -> dict[str, np.ndarray]:
    """Weight events of all iterations: the weights in force are constant within an iteration."""
    log = WeightEventLog()
    B, L = m.st.batch, m.st.batch * m.st.steps
    # per-synapse weights at the end of sequence s: column s + 1 of the weight monitors
    recorded = {proj: np.asarray(m.monitors[f"w_{proj}"].w) for proj in ("in", "rec", "out")
                if f"w_{proj}" in m.monitors}
    for it in range(sc.n_iterations):
        if it == 0:
            w = {proj: m.flat(proj, initial[proj]) for proj in recorded}
        else:
            w = {proj: vals[:, it * B] for proj, vals in recorded.items()}
        _iteration_weight_events(log, sc, m, it * L, L, m.st.steps, z[it * L : (it + 1) * L], w)
    return log.arrays()


def _iteration_weight_events(log: WeightEventLog, sc, m: EpropNetwork, n0: int, n_steps: int, T: int,
                             z: np.ndarray, w: dict[str, np.ndarray]) -> None:
    """One event per transmitted spike of an existing synapse in one iteration, with the weight in force.

    ``w``: per-synapse weights (synapse order) of the projections that have synapses.  Recurrent
    spikes of the last step of an interval arrive at interval position 0 and are dropped.
    """
    syn = m.synapses
    t_sp, j_sp = np.nonzero(z)
    arrive = t_sp + 1
    ok = (arrive < n_steps) & (arrive % T != 0)
    steps, pres = input_spike_pairs(sc, n0, n0 + n_steps)
    spikes = {"in": (steps, pres), "rec": (n0 + arrive[ok], j_sp[ok]), "out": (n0 + t_sp, j_sp)}
    for code, proj in enumerate(("in", "rec", "out")):
        if proj in w:  # the projection has synapses
            at, pre = spikes[proj]
            spike, idx = syn[proj].outgoing(pre)
            log.add(at[spike], code, pre[spike], syn[proj].post[idx], w[proj][idx])
