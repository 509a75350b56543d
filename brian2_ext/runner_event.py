"""Run an event-family scenario on an :class:`~brian2_ext.network_event.EventNetwork` (runtime or cpp_standalone).

One simulation of ``n_steps + 2`` Brian2 steps (see :mod:`brian2_ext.equations_event` for the
time shift); traces are read from the monitors and put into aligned time.
"""

from __future__ import annotations

import math
import time
from typing import Any, Callable

import numpy as np

from eprop_plugins.parameters import ParameterError
from eprop_plugins.reference.common import recurrent_constants
from eprop_plugins.results import Result, compute_losses, sort_weight_events

from .network_event import EventNetwork, event_structure_of

__all__ = ["run_event_scenario"]


def run_event_scenario(sc, *, mode: str, record_weight_events: bool, record: bool,
                       on_iteration: Callable[[int, float], None] | None, threads: int, backend: str,
                       t_start: float) -> Result:
    """Simulate a validated event-family scenario; arguments as :func:`brian2_ext.runner.run_scenario`."""
    from .runner import RuntimeSession, StandaloneSession

    st = event_structure_of(sc, record=record, weight_trace=record_weight_events)
    rs = sc.record_synapses if record else []
    if mode == "standalone":
        session = StandaloneSession.get(st, sc.dt, rs, threads, network_cls=EventNetwork)
    elif mode in ("cython", "numpy"):
        t0 = time.perf_counter()
        session = RuntimeSession(st, sc.dt, rs, mode, network_cls=EventNetwork)
        session.build_seconds = time.perf_counter() - t0
    else:
        raise ParameterError(f"mode = {mode!r}: allowed values are cython, numpy, standalone")
    m = session.model
    initial = {"in": sc.w_in.copy(), "rec": sc.w_rec.copy(), "out": sc.w_out.copy(), "fb": sc.effective_feedback()}
    values = dict(m.constant_values(sc))
    values.update(m.run_values(sc, initial))
    values = {k: v for k, v in values.items() if np.size(v)}
    t0 = time.perf_counter()
    if mode == "standalone":
        session.run(values)
    else:
        session.set_values(values)
        session.advance(m.R)
    run_seconds = time.perf_counter() - t0

    N, T = m.n_steps, m.st.steps
    y = np.asarray(m.monitors["out"].sig)[:, 1 : N + 1].T
    losses = []
    it_len = sc.iteration_sequences * T
    for it in range(sc.n_iterations):
        sl = slice(it * it_len, (it + 1) * it_len)
        losses.append(float(compute_losses(sc, y[sl], sc.target[:, sl].T, sl.start)[0]))
        if on_iteration is not None:
            on_iteration(it, losses[-1])
    tr: dict[str, np.ndarray] = {}
    syn: dict[str, np.ndarray] = {}
    snaps: dict[str, np.ndarray] = {}
    wev = {k: np.zeros(0) for k in ("step", "proj", "pre", "post", "w")}
    if record:
        tr, syn, snaps = _recorded(sc, m, initial, y)
        if record_weight_events:
            wev = _weight_events(sc, m, tr["z"])
    else:
        tr = {"y": y, "target": sc.target[:, :N].T.copy()}
    n_it = max(sc.n_iterations, 1)
    return Result(
        scenario=sc.name, family=sc.family, backend=backend, losses=np.array(losses), traces=tr,
        synapse_traces=syn, weight_events=wev, weights=snaps,
        meta={"seconds": time.perf_counter() - t_start, "build_seconds": session.build_seconds,
              "run_seconds": run_seconds, "seconds_per_iteration": run_seconds / n_it, "mode": mode,
              "compiled": bool(session.compiled), "record": record},
    )


def _recorded(sc, m: EventNetwork, initial: dict[str, np.ndarray], y: np.ndarray):
    """Aligned traces, conceptual synapse traces (owed decays applied) and weight snapshots."""
    c = recurrent_constants(sc)
    N, T = m.n_steps, m.st.steps
    mr, mo = m.monitors["rec"], m.monitors["out"]
    rows = slice(1, N + 1)  # Brian2 step s = aligned step s - 1

    def rec(var):
        return np.asarray(getattr(mr, var))[:, rows].T

    tr: dict[str, np.ndarray] = {
        "v": rec("v") + c.v_rest, "z": rec("z").astype(np.int8), "psi": rec("psi"), "adaptation": rec("a"),
        "v_th_adapt": rec("thr") + c.v_rest, "learning_signal": rec("L"), "fr_reg": rec("fr"),
        "readout_v": y.copy(), "y": y, "error": np.asarray(mo.err)[:, rows].T, "target": sc.target[:, :N].T.copy(),
    }
    rs = sc.record_synapses
    if rs:
        syn = {k: np.zeros((N, len(rs))) for k in ("zbar", "e", "ebar", "ebar_reg")}
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
    else:
        syn = {}
    snaps = {}
    n_seq = sc.n_sequences
    for key, proj, mon_key, var in (("w_in", "in", "snap_in", "wsnap"), ("w_rec", "rec", "snap_rec", "wsnap"),
                                    ("w_out", "out", "snap_out", "w"), ("w_fb", "out", "snap_out", "B")):
        mon = m.monitors.get(mon_key)
        if mon is None:  # no recurrent synapses
            snaps[key] = np.broadcast_to(initial[proj], (n_seq,) + initial[proj].shape).copy()
            continue
        vals = np.asarray(getattr(mon, var))[:, 1 : n_seq + 1]
        dense = np.stack([m.dense(proj, vals[:, s]) for s in range(n_seq)])
        snaps[key] = dense.transpose(0, 2, 1) if var == "B" else dense
    return tr, syn, snaps


def _weight_events(sc, m: EventNetwork, z: np.ndarray) -> dict[str, np.ndarray]:
    """One event per transmitted spike with the weight it carried (per-step weight monitors)."""
    n_rec, n_out, N = sc.n_rec, sc.n_out, m.n_steps
    events: dict[str, list[np.ndarray]] = {k: [] for k in ("step", "proj", "pre", "post", "w")}

    def add(step, proj, pre, post, weight):
        events["step"].append(np.asarray(step, dtype=np.int64))
        events["proj"].append(np.full(np.size(step), proj, dtype=np.int8))
        events["pre"].append(np.asarray(pre, dtype=np.int64))
        events["post"].append(np.asarray(post, dtype=np.int64))
        events["w"].append(np.asarray(weight, dtype=float))

    w_in = np.asarray(m.monitors["w_in"].w)  # (synapse, Brian2 step)
    for i, train in enumerate(sc.input_spikes):
        arr = np.asarray(train, dtype=np.int64)
        arr = arr[arr < N]
        if arr.size:  # an input arriving at aligned n is transmitted in Brian2 step n
            post = np.tile(np.arange(n_rec), arr.size)
            steps = np.repeat(arr, n_rec)
            add(steps, 0, np.full(post.size, i), post, w_in[[m.synapse_index("in", i, j) for j in post], steps])
    t_sp, j_sp = np.nonzero(z)
    if m.s_rec is not None:
        w_rec = np.asarray(m.monitors["w_rec"].w)
        ok = t_sp + 1 < N
        ta, ja = t_sp[ok] + 1, j_sp[ok]
        post = np.tile(np.arange(n_rec), ta.size)
        pre = np.repeat(ja, n_rec)
        steps = np.repeat(ta, n_rec)
        keep = post != pre
        post, pre, steps = post[keep], pre[keep], steps[keep]
        idx = np.array([m.synapse_index("rec", a, b) for a, b in zip(pre.tolist(), post.tolist())], dtype=np.int64)
        add(steps, 1, pre, post, w_rec[idx, steps] if idx.size else np.zeros(0))
    w_out = np.asarray(m.monitors["w_out"].w)
    post = np.tile(np.arange(n_out), t_sp.size)
    pre = np.repeat(j_sp, n_out)
    steps = np.repeat(t_sp, n_out)
    idx = np.array([m.synapse_index("out", a, b) for a, b in zip(pre.tolist(), post.tolist())], dtype=np.int64)
    add(steps, 2, pre, post, w_out[idx, steps + 1] if idx.size else np.zeros(0))
    wev = {k: (np.concatenate(v) if v else np.zeros(0)) for k, v in events.items()}
    return sort_weight_events(wev)
