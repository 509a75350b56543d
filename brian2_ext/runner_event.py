"""Run an event-family scenario on an :class:`~brian2_ext.network_event.EventNetwork` (runtime or cpp_standalone).

One simulation of ``n_steps + 2`` Brian2 steps (see :mod:`brian2_ext.equations_event` for the
time shift), in both modes; ``on_iteration`` is called after it.  Traces are read from the
monitors and put into aligned time.
"""

from __future__ import annotations

import math
import time
from typing import Callable

import numpy as np

from eprop_plugins.reference.common import recurrent_constants
from eprop_plugins.results import Result, WeightEventLog, compute_losses

from .network_common import network_synapses
from .network_event import EventNetwork, event_structure_of
from .runner_common import (initial_weights, input_spike_pairs, make_result, start_values, synapse_trace_arrays,
                            weight_snapshots)
from .sessions import open_session
from .weight_windows import WeightWindows, read_standalone_windows

__all__ = ["run_event_scenario"]

#: (result key, projection, monitor, variable) of the per-sequence weight monitors
_SNAPSHOTS = (("w_in", "in", "snap_in", "wsnap"), ("w_rec", "rec", "snap_rec", "wsnap"),
              ("w_out", "out", "snap_out", "w"), ("w_fb", "out", "snap_out", "B"))


def run_event_scenario(sc, *, mode: str, record_weight_events: bool, record: bool,
                       on_iteration: Callable[[int, float], None] | None, threads: int, backend: str,
                       t_start: float) -> Result:
    """Simulate a validated event-family scenario; arguments as :func:`brian2_ext.runner.run_scenario`."""
    st = event_structure_of(sc, record=record, weight_trace=record_weight_events)
    session = open_session(mode, st, sc.dt, sc.record_synapses if record else [], threads=threads,
                           network_cls=EventNetwork, scenario=sc.name, backend=backend,
                           synapses=network_synapses(sc))
    m = session.model
    initial = initial_weights(sc)
    values = start_values(m, sc, initial)
    weights = [(proj, m.monitors[f"w_{proj}"]) for proj in ("in", "rec", "out") if f"w_{proj}" in m.monitors]
    events = _WeightEvents(sc, m) if record and record_weight_events else None
    t0 = time.perf_counter()
    if mode == "standalone":
        session.run(values)
        if events is not None:
            z = np.asarray(m.monitors["rec"].z_)  # read from the results once
            events.spikes = lambda a, b: z[:, a:b]
            read_standalone_windows(session.device, dict(weights), "w", events.window)
    else:
        session.set_values(values)
        windows = None
        if events is not None:
            events.spikes = lambda a, b: m.monitors["rec"].z_[:, a:b]
            windows = WeightWindows(dict(weights), "w", events.window)
            m.net.add(windows.operation())
        session.advance(m.R)
        if windows is not None:
            windows.finish()
    run_seconds = time.perf_counter() - t0 - getattr(session, "generation_seconds", 0.0)  # runtime: in the run

    N, T = m.n_steps, m.st.steps
    y = np.asarray(m.monitors["out"].sig)[:, 1 : N + 1].T
    losses = []
    it_len = sc.iteration_sequences * T
    for it in range(sc.n_iterations):
        sl = slice(it * it_len, (it + 1) * it_len)
        losses.append(float(compute_losses(sc, y[sl], sc.target[:, sl].T, sl.start)[0]))
        if on_iteration is not None:
            on_iteration(it, losses[-1])
    syn: dict[str, np.ndarray] = {}
    snaps: dict[str, np.ndarray] = {}
    pairs: dict[str, np.ndarray] = {}
    wev = WeightEventLog().arrays()
    if record:
        tr = _neuron_traces(sc, m, y)
        syn = _synapse_traces(sc, m)
        snaps, pairs = weight_snapshots(sc, m, initial, _SNAPSHOTS)
        if events is not None:
            wev = events.log.arrays()
    else:
        tr = {"y": y, "target": sc.target[:, :N].T.copy()}
    return make_result(sc, backend=backend, mode=mode, session=session, losses=losses, traces=tr, synapse_traces=syn,
                       weight_events=wev, weights=snaps, run_seconds=run_seconds, t_start=t_start, record=record,
                       weight_connections=pairs)


def _neuron_traces(sc, m: EventNetwork, y: np.ndarray) -> dict[str, np.ndarray]:
    """Per-step traces in aligned time (Brian2 step s = aligned step s - 1); ``y``: the readout signal."""
    c = recurrent_constants(sc)
    N = m.n_steps
    mr, mo = m.monitors["rec"], m.monitors["out"]
    rows = slice(1, N + 1)

    def rec(var):
        return np.asarray(getattr(mr, var))[:, rows].T

    return {
        "v": rec("v") + c.v_rest, "z": rec("z").astype(np.int8), "psi": rec("psi"), "adaptation": rec("a"),
        "v_th_adapt": rec("thr") + c.v_rest, "learning_signal": rec("L"), "fr_reg": rec("fr"),
        "readout_v": y.copy(), "y": y, "error": np.asarray(mo.err)[:, rows].T, "target": sc.target[:, :N].T.copy(),
    }


def _synapse_traces(sc, m: EventNetwork) -> dict[str, np.ndarray]:
    """Conceptual synapse traces of the recorded synapses: the decays still owed applied."""
    c = recurrent_constants(sc)
    N, rs = m.n_steps, sc.record_synapses
    syn = synapse_trace_arrays(N, rs, ("zbar", "e", "ebar", "ebar_reg"))
    kappa_out = math.exp(-sc.dt / sc.readout["tau_m"])
    for q, (proj, pre, post) in enumerate(rs):
        ms = m.monitors[f"syn_{proj}"]
        row = list(ms.record).index(m.synapse_index(proj, pre, post))
        # history step t is integrated in Brian2 step t + 1 (hidden) or t + 2 (readout)
        sl = slice(1, N + 1) if proj != "out" else slice(2, N + 2)
        dec = np.asarray(ms.dec)[row, sl]
        zb = np.asarray(ms.zbar)[row, sl]
        if proj == "out":
            f = np.array([math.pow(kappa_out, int(k)) for k in dec])
            syn["zbar"][:, q] = zb * f
            syn["ebar"][:, q] = zb * f
        else:
            col = post
            f = np.array([math.pow(c.alpha[col], int(k)) for k in dec])
            syn["zbar"][:, q] = zb * f
            syn["ebar"][:, q] = np.asarray(ms.ebar)[row, sl] * [math.pow(c.kappa[col], int(k)) for k in dec]
            syn["ebar_reg"][:, q] = np.asarray(ms.ebar_reg)[row, sl] * [math.pow(c.kappa_reg[col], int(k))
                                                                        for k in dec]
        syn["e"][:, q] = np.asarray(ms.elig)[row, sl]
    return syn


class _WeightEvents:
    """One event per spike transmitted by an existing synapse, with the weight it carried, read window by window
    from the per-step weight monitors (:mod:`brian2_ext.weight_windows`).

    Brian2 step ``s`` is aligned step ``s - 1``.  An input arriving at aligned ``n`` is transmitted in Brian2
    step ``n``; a recurrent spike of aligned ``t`` (recorded in Brian2 step ``t + 1``) reaches the recurrent
    neurons at aligned ``t + 1`` (the reference delivers none at ``N``) and the readout, both in Brian2
    step ``t + 1``.  ``spikes(a, b)`` gives the recorded ``z`` of Brian2 steps ``a .. b - 1`` (neurons x steps).
    """

    def __init__(self, sc, m: EventNetwork) -> None:
        self.n_steps, self.synapses = m.n_steps, m.synapses
        self.inputs = input_spike_pairs(sc, 0, m.n_steps)
        self.log = WeightEventLog()
        self.spikes: Callable[[int, int], np.ndarray] | None = None

    def window(self, first: int, blocks: dict) -> None:
        """Events transmitted in Brian2 steps ``first ..`` (``blocks[proj]``: weights, synapses x steps)."""
        N = self.n_steps
        last = first + next(iter(blocks.values())).shape[1]
        lo = max(first, 1)  # Brian2 step 0 is the pre-roll step
        j_sp, s_sp = np.nonzero(self.spikes(lo, last)) if last > lo else (np.zeros(0, int), np.zeros(0, int))
        t_sp = s_sp + lo - 1  # aligned steps of the spikes transmitted in the window
        at, pre = self.inputs
        inside = (at >= first) & (at < last)
        rec, out = t_sp + 1 < N, t_sp < N
        sent = {"in": (at[inside], pre[inside], at[inside]), "rec": (t_sp[rec] + 1, j_sp[rec], t_sp[rec] + 1),
                "out": (t_sp[out], j_sp[out], t_sp[out] + 1)}  # (event step, presynaptic neuron, Brian2 step)
        for code, proj in enumerate(("in", "rec", "out")):
            if proj in blocks:
                steps, pres, brian2_step = sent[proj]
                spike, idx = self.synapses[proj].outgoing(pres)
                self.log.add(steps[spike], code, pres[spike], self.synapses[proj].post[idx],
                             blocks[proj][idx, brian2_step[spike] - first])
