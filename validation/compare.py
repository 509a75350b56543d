"""Compare one backend's :class:`~eprop_plugins.results.Result` with the reference's, step by step.

What is compared (all in aligned time, the convention of :mod:`eprop_plugins.scenario`):

* spikes first: the recurrent spike trains (trace ``z``) must be identical.  The first step at
  which any spike differs is the *horizon*; nothing at or beyond it is compared at the scenario's
  tolerance (docs/model.rst §8), and the mismatch itself fails the comparison;
* every per-step trace both results contain (``traces/<name>``) and every recorded synapse trace
  (``synapse/<name>``), on the steps before the horizon;
* weight events (``weight_events``): the transmitted spikes (step, projection, pre, post) must be
  the same, and the weights they carried agree to the tolerance;
* weight snapshots (``weights/<name>``), for the sequences that end before the horizon: dense
  matrices, or for a sparse projection one vector per snapshot in the canonical connection order
  with its ``(post, pre)`` pairs in ``Result.weight_connections`` (:mod:`eprop_plugins.results`).
  The backend's pairs must be the reference's; a backend that reports a dense matrix for a sparse
  projection is compared on the connected pairs and fails if an unconnected pair holds a weight;
* losses, for the iterations that end before the horizon.

Error measure.  For a quantity with reference values ``r`` and backend values ``b``:
``abs_err = |b - r|`` and ``rel_err = abs_err / scale`` with ``scale = max |r|`` over the whole
reference quantity (1 if that is 0).  Normalising by the quantity's own magnitude keeps the measure
meaningful for traces that cross zero (membrane potentials relative to the threshold, surrogate
gradients, learning signals).  A quantity passes when ``rel_err <= rtol`` everywhere; its first
diverging step is the first step where it does not.  Losses are compared element-wise
(``|b - r| <= rtol |r|``).  Spike trains and event keys are compared exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from eprop_plugins.results import WEIGHT_EVENT_FIELDS, Result, sort_weight_events

__all__ = ["QuantityComparison", "Comparison", "compare_results", "UNITS"]

#: Units of the quantities, for reports (results.py's table).
UNITS = {
    "traces/v": "mV", "traces/z": "1", "traces/psi": "1/mV", "traces/adaptation": "1",
    "traces/v_th_adapt": "mV", "traces/learning_signal": "mV", "traces/fr_reg": "1",
    "traces/readout_v": "mV", "traces/y": "1", "traces/target": "1", "traces/error": "1",
    "synapse/zbar": "1", "synapse/e": "1/mV", "synapse/ebar": "1/mV", "synapse/ebar_reg": "1/mV",
    "weight_events/w": "mV", "weights/w_in": "mV", "weights/w_rec": "mV", "weights/w_out": "mV",
    "weights/w_fb": "1", "losses": "1",
}

#: Projection names by weight-event ``proj`` index.
PROJ_NAMES = ("in", "rec", "out")

#: Traces that hold one value per update interval (original family), set from the whole interval.
PER_INTERVAL = ("traces/fr_reg",)

#: Time shifts tried when a trace fails, to tell an offset error from a numerical one.
SHIFTS = (-2, -1, 1, 2)


@dataclass
class QuantityComparison:
    """The comparison of one quantity (a trace, the weight events, a weight snapshot or the losses)."""

    name: str
    status: str  # "pass", "fail", "missing" (not observed by the backend)
    unit: str = ""
    compared: int = 0  # number of values compared
    max_abs_err: float | None = None
    max_rel_err: float | None = None
    scale: float | None = None
    first_diverging_step: int | None = None
    first_diverging_index: int | None = None  # column (neuron, synapse, readout, event row) there
    worst_step: int | None = None
    worst_index: int | None = None  # column (neuron, synapse, readout, event row) of the largest error
    note: str = ""
    per_step_err: np.ndarray | None = field(default=None, repr=False)  # for plots (not in JSON)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "unit": self.unit,
            "compared": int(self.compared),
            "max_abs_err": _num(self.max_abs_err),
            "max_rel_err": _num(self.max_rel_err),
            "scale": _num(self.scale),
            "first_diverging_step": self.first_diverging_step,
            "first_diverging_index": self.first_diverging_index,
            "worst_step": self.worst_step,
            "worst_index": self.worst_index,
            "note": self.note,
        }


@dataclass
class Comparison:
    """Everything known about one backend against the reference on one scenario."""

    status: str  # "pass" or "fail"
    rtol: float
    n_steps: int
    horizon: int  # steps compared at rtol: [0, horizon)
    first_spike_mismatch: dict[str, Any] | None
    quantities: list[QuantityComparison]
    losses_reference: list[float]
    losses_backend: list[float]
    first_failure: dict[str, Any] | None

    def failures(self) -> list[QuantityComparison]:
        return [q for q in self.quantities if q.status == "fail"]

    def summary(self) -> str:
        """One line naming the first failure: quantity, first diverging step, error."""
        if self.status == "pass":
            worst = max((q.max_rel_err or 0.0 for q in self.quantities if q.status == "pass"), default=0.0)
            return f"pass (max rel err {worst:.2e} <= rtol {self.rtol:g} over {self.horizon} steps)"
        f = self.first_failure or {}
        parts = [f"{f.get('quantity')}"]
        if f.get("step") is not None:
            parts.append(f"first diverges at step {f['step']}")
        if f.get("index") is not None:
            parts.append(f"(index {f['index']})")
        if f.get("max_rel_err") is not None:
            at = f" (at step {f['worst_step']})" if f.get("worst_step") is not None else ""
            parts.append(f"max rel err {f['max_rel_err']:.3e}{at} > rtol {self.rtol:g}")
        if f.get("note"):
            parts.append(f"- {f['note']}")
        return " ".join(parts)

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "rtol": self.rtol,
            "n_steps": self.n_steps,
            "horizon": self.horizon,
            "first_spike_mismatch": self.first_spike_mismatch,
            "first_failure": self.first_failure,
            "summary": self.summary(),
            "losses_reference": [_num(x) for x in self.losses_reference],
            "losses_backend": [_num(x) for x in self.losses_backend],
            "quantities": [q.to_json() for q in self.quantities],
        }


def _num(x: Any) -> float | None:
    """JSON-safe float (NaN and inf become None; the status still says fail)."""
    if x is None:
        return None
    x = float(x)
    return x if np.isfinite(x) else None


def _as_2d(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a, dtype=float)
    return a.reshape(a.shape[0], -1) if a.ndim != 2 else a


def compare_array(name: str, ref: np.ndarray, got: np.ndarray, rtol: float, horizon: int,
                  *, step_axis: bool = True) -> QuantityComparison:
    """Compare a ``(steps, columns)`` array over its first ``horizon`` rows.

    Parameters
    ----------
    name : str
        Quantity name (``traces/v`` ...).
    ref, got : ndarray
        Reference and backend values; the first axis is the aligned step (or the row index if
        ``step_axis`` is False).
    rtol : float
        Tolerance on ``|got - ref| / max|ref|``.
    horizon : int
        Rows ``[0, horizon)`` are compared.
    """
    unit = UNITS.get(name, "")
    ref = _as_2d(ref)
    got = np.asarray(got, dtype=float)
    if got.shape != np.asarray(ref).shape and got.size == ref.size:
        got = got.reshape(ref.shape)
    got = _as_2d(got) if got.ndim else got
    if got.shape != ref.shape:
        return QuantityComparison(name, "fail", unit, note=f"shape {tuple(got.shape)} != reference {tuple(ref.shape)}",
                                  first_diverging_step=0)
    scale = float(np.max(np.abs(ref))) if ref.size else 0.0
    scale = scale if scale > 0 else 1.0
    r, g = ref[:horizon], got[:horizon]
    if r.size == 0:
        return QuantityComparison(name, "pass", unit, compared=0, max_abs_err=0.0, max_rel_err=0.0, scale=scale,
                                  note="nothing before the horizon")
    abs_err = np.abs(g - r)
    abs_err = np.where(np.isnan(abs_err), np.inf, abs_err)
    rel = abs_err / scale
    per_step = rel.max(axis=1)
    bad = np.nonzero(per_step > rtol)[0]
    worst_step, worst_col = np.unravel_index(int(np.argmax(rel)), rel.shape)
    q = QuantityComparison(
        name,
        "fail" if bad.size else "pass",
        unit,
        compared=int(r.size),
        max_abs_err=float(abs_err.max()),
        max_rel_err=float(rel.max()),
        scale=scale,
        first_diverging_step=int(bad[0]) if bad.size else None,
        first_diverging_index=int(np.argmax(rel[bad[0]])) if bad.size else None,
        worst_step=int(worst_step),
        worst_index=int(worst_col),
        per_step_err=per_step if step_axis else None,
    )
    if bad.size and step_axis:
        q.note = _shift_hint(ref, got, rtol, scale, horizon)
    return q


def _shift_hint(ref: np.ndarray, got: np.ndarray, rtol: float, scale: float, horizon: int) -> str:
    """If the backend's trace matches the reference shifted by a few steps, say so (a time-offset bug)."""
    for k in SHIFTS:
        lo, hi = max(0, -k), min(horizon, ref.shape[0] - k)
        if hi - lo < 4:
            continue
        err = np.abs(got[lo + k : hi + k] - ref[lo:hi]) / scale
        if np.all(err <= rtol) and np.any(ref[lo:hi] != ref[lo + k : hi + k]):
            return f"the backend's values equal the reference's {abs(k)} step(s) {'later' if k > 0 else 'earlier'}: a time-offset error"
    return ""


def _compare_events(ev_ref: dict[str, np.ndarray], ev_got: dict[str, np.ndarray], rtol: float,
                    horizon: int) -> QuantityComparison:
    """Weights carried by the transmitted spikes arriving before the horizon (same events on both sides)."""
    name = "weight_events/w"
    keep_r, keep_g = ev_ref["step"] < horizon, ev_got["step"] < horizon
    wr, wg = ev_ref["w"][keep_r], np.asarray(ev_got["w"][keep_g], dtype=float)
    if wr.shape != wg.shape:  # cannot happen before the horizon, which the event keys define
        return QuantityComparison(name, "fail", "mV", note="event lists differ", first_diverging_step=0)
    scale = float(np.max(np.abs(ev_ref["w"]))) if ev_ref["w"].size else 0.0
    scale = scale if scale > 0 else 1.0
    if wr.size == 0:
        return QuantityComparison(name, "pass", "mV", scale=scale, max_abs_err=0.0, max_rel_err=0.0,
                                  note="no event before the horizon")
    err = np.abs(wg - wr)
    err = np.where(np.isnan(err), np.inf, err)
    rel = err / scale
    bad = np.nonzero(rel > rtol)[0]
    worst = int(np.argmax(rel))
    steps = ev_ref["step"][keep_r]
    q = QuantityComparison(name, "fail" if bad.size else "pass", "mV", compared=int(wr.size),
                           max_abs_err=float(err.max()), max_rel_err=float(rel.max()), scale=scale,
                           worst_step=int(steps[worst]), worst_index=worst)
    if bad.size:
        row = int(bad[0])
        q.first_diverging_step = int(steps[row])
        q.first_diverging_index = row
        q.note = (f"first bad event (row {row}): proj {PROJ_NAMES[int(ev_ref['proj'][keep_r][row])]}, pre "
                  f"{int(ev_ref['pre'][keep_r][row])}, post {int(ev_ref['post'][keep_r][row])}")
    return q


def _first_spike_mismatch(ref: np.ndarray, got: np.ndarray) -> dict[str, Any] | None:
    ref = _as_2d(ref) != 0
    got = np.asarray(got)
    if got.shape != ref.shape:
        return {"step": 0, "neuron": None, "reference": None, "backend": None,
                "note": f"shape {tuple(got.shape)} != reference {tuple(ref.shape)}"}
    diff = ref != (got != 0)
    rows = np.nonzero(diff.any(axis=1))[0]
    if rows.size == 0:
        return None
    step = int(rows[0])
    neurons = np.nonzero(diff[step])[0]
    return {
        "step": step,
        "neuron": int(neurons[0]),
        "neurons": [int(j) for j in neurons[:20]],
        "reference": int(ref[step, neurons[0]]),
        "backend": int(got[step, neurons[0]] != 0),
        "n_mismatched_spikes": int(diff.sum()),
    }


def _event_spike_mismatch(ref_ev: dict[str, np.ndarray], got_ev: dict[str, np.ndarray]) -> int | None:
    """First step at which the transmitted spikes (step, proj, pre, post) differ; None if identical."""
    keys = ("step", "proj", "pre", "post")
    r = np.stack([np.asarray(ref_ev[k], dtype=np.int64) for k in keys], axis=1)
    g = np.stack([np.asarray(got_ev[k], dtype=np.int64) for k in keys], axis=1)
    n = min(len(r), len(g))
    diff = np.nonzero(np.any(r[:n] != g[:n], axis=1))[0]
    if diff.size:
        i = int(diff[0])
        return int(min(r[i, 0], g[i, 0]))
    if len(r) != len(g):
        longer = r if len(r) > len(g) else g
        return int(longer[n, 0])
    return None


def _sparse_snapshots(pairs: np.ndarray, got: np.ndarray, got_pairs: np.ndarray | None) -> tuple[np.ndarray, str]:
    """A backend's snapshots of a sparse projection as vectors over the reference's ``(post, pre)`` pairs.

    Returns the ``(n_snapshots, n_connections)`` array and an empty string, or a description of
    why they cannot be compared (other connections; a weight on an unconnected pair).
    """
    pairs = np.asarray(pairs, dtype=np.int64)
    if got_pairs is not None:
        got_pairs = np.asarray(got_pairs, dtype=np.int64)
        if got_pairs.shape != pairs.shape or not np.array_equal(got_pairs, pairs):
            return got, (f"the backend's snapshot lists {got_pairs.shape[-1]} connections (post, pre) that are not "
                         f"the scenario's {pairs.shape[1]} in the canonical order")
        return got, ""
    if got.ndim == 3:  # dense matrices for a sparse projection: the connected pairs, nothing elsewhere
        outside = got.copy()
        outside[:, pairs[0], pairs[1]] = 0.0
        if np.any(outside != 0):
            s, j, i = (int(x[0]) for x in np.nonzero(outside))
            return got, f"snapshot {s}: unconnected pair post {j}, pre {i} has weight {got[s, j, i]!r}"
        return got[:, pairs[0], pairs[1]], ""
    return got, ""


def compare_results(scenario: Any, ref: Result, got: Result, rtol: float | None = None,
                    spike_horizon: int | None = None) -> Comparison:
    """Compare a backend's result with the reference's on one (validated) scenario.

    Parameters
    ----------
    scenario : Scenario
        The validated scenario both results belong to.
    ref, got : Result
        Reference and backend results.
    rtol : float, optional
        Tolerance (default: ``scenario.tolerance["rtol"]``).
    spike_horizon : int, optional
        A backend's stated spike horizon (its ``tolerance(scenario)["horizon"]``): a first spike
        mismatch at or after this step does not fail the comparison (the quantities are still
        compared only before the mismatch).  Default: spikes must agree over the whole run.

    Returns
    -------
    Comparison
    """
    rtol = float(scenario.tolerance["rtol"] if rtol is None else rtol)
    N = scenario.n_steps
    T = scenario.steps_per_sequence
    quantities: list[QuantityComparison] = []

    # ---- spikes define the horizon
    spike_mm = None
    if "z" in got.traces and "z" in ref.traces:
        spike_mm = _first_spike_mismatch(ref.traces["z"], got.traces["z"])
    ev_ok = bool(ref.weight_events) and bool(got.weight_events) and len(ref.weight_events.get("step", [])) > 0
    ev_ref = ev_got = None
    if ev_ok:
        ev_ref = sort_weight_events(ref.weight_events)
        ev_got = sort_weight_events({k: np.asarray(got.weight_events[k]) for k in WEIGHT_EVENT_FIELDS})
        ev_step = _event_spike_mismatch(ev_ref, ev_got)
        if ev_step is not None and (spike_mm is None or ev_step < spike_mm["step"]):
            spike_mm = {"step": ev_step, "neuron": None, "source": "weight_events",
                        "note": "the transmitted spikes (step, projection, pre, post) differ"}
    horizon = N if spike_mm is None else int(spike_mm["step"])
    if spike_mm is not None:
        spike_mm.setdefault("source", "traces/z")
        stated = spike_horizon is not None and horizon >= spike_horizon
        quantities.append(QuantityComparison(
            "spikes", "pass" if stated else "fail", "1", first_diverging_step=None if stated else horizon,
            first_diverging_index=None if stated else spike_mm.get("neuron"), compared=horizon if stated else 0,
            note=f"first spike mismatch at step {horizon}" + (f", neuron {spike_mm['neuron']}" if spike_mm.get("neuron") is not None else "")
            + (f" (the backend's stated horizon is {spike_horizon})" if stated else "")))
    elif "z" in got.traces or ev_ok:
        quantities.append(QuantityComparison("spikes", "pass", "1", compared=N, max_abs_err=0.0, max_rel_err=0.0))
    else:
        quantities.append(QuantityComparison("spikes", "missing", "1", note="the backend records neither z nor weight events"))

    # ---- per-step traces
    for group, ref_d, got_d in (("traces", ref.traces, got.traces), ("synapse", ref.synapse_traces, got.synapse_traces)):
        for key in ref_d:
            name = f"{group}/{key}"
            if key == "z":
                continue
            if key not in got_d:
                quantities.append(QuantityComparison(name, "missing", UNITS.get(name, ""), note="not observed by the backend"))
                continue
            # a per-interval value recorded at every step (the firing-rate term) depends on the whole
            # interval: compare the intervals that end before the horizon
            upto = (horizon // T) * T if name in PER_INTERVAL and scenario.family == "original" else horizon
            quantities.append(compare_array(name, ref_d[key], got_d[key], rtol, upto))

    # ---- weight events: weights carried by the spikes before the horizon
    if ev_ok:
        quantities.append(_compare_events(ev_ref, ev_got, rtol, horizon))
    elif ref.weight_events and len(ref.weight_events.get("step", [])) > 0:
        quantities.append(QuantityComparison("weight_events/w", "missing", "mV", note="not recorded by the backend"))

    # ---- weight snapshots at sequence ends
    n_full = horizon // T  # sequences that end before the horizon
    for key, w_ref in ref.weights.items():
        name = f"weights/{key}"
        if key not in got.weights:
            quantities.append(QuantityComparison(name, "missing", UNITS.get(name, ""), note="not recorded by the backend"))
            continue
        ra = np.asarray(w_ref, dtype=float).reshape(len(w_ref), -1)
        ga = np.asarray(got.weights[key], dtype=float)
        if key in ref.weight_connections:
            ga, problem = _sparse_snapshots(ref.weight_connections[key], ga, got.weight_connections.get(key))
            if problem:
                quantities.append(QuantityComparison(name, "fail", UNITS.get(name, ""), note=problem,
                                                     first_diverging_step=0))
                continue
        ga = ga.reshape(len(ga), -1) if ga.size else ga
        q = compare_array(name, ra, ga, rtol, n_full, step_axis=False)
        if q.compared:  # rows are sequences: report the last step of the sequence
            if q.first_diverging_step is not None:
                q.first_diverging_step = (q.first_diverging_step + 1) * T - 1
                q.note = "snapshot at the end of the sequence that ends at this step"
            q.worst_step = (q.worst_step + 1) * T - 1
        quantities.append(q)

    # ---- losses of the iterations that end before the horizon
    it_steps = T * scenario.iteration_sequences
    n_it = min(len(ref.losses), horizon // it_steps)
    lr = np.asarray(ref.losses, dtype=float)
    lg = np.asarray(got.losses, dtype=float)
    if lg.shape != lr.shape:
        quantities.append(QuantityComparison("losses", "fail", "1", note=f"{lg.size} losses, reference has {lr.size}",
                                             first_diverging_step=0))
    else:
        err = np.abs(lg[:n_it] - lr[:n_it])
        err = np.where(np.isnan(err), np.inf, err)
        rel = err / np.maximum(np.abs(lr[:n_it]), np.finfo(float).tiny)
        bad = np.nonzero(~(rel <= rtol))[0]
        quantities.append(QuantityComparison(
            "losses", "fail" if bad.size else "pass", "1", compared=int(n_it),
            max_abs_err=float(err.max()) if n_it else 0.0, max_rel_err=float(rel.max()) if n_it else 0.0,
            first_diverging_step=int((bad[0] + 1) * it_steps - 1) if bad.size else None,
            first_diverging_index=int(bad[0]) if bad.size else None,
            worst_index=int(np.argmax(rel)) if n_it else None,
            note="element-wise relative error; index = iteration",
        ))

    compared = [q for q in quantities if q.status in ("pass", "fail") and q.name != "spikes"]
    failing = [q for q in quantities if q.status == "fail"]
    first_failure = None
    if failing:
        # the earliest divergence names the cause; spikes win ties (they define the horizon)
        def key(q: QuantityComparison) -> tuple[int, int]:
            step = q.first_diverging_step if q.first_diverging_step is not None else N
            return (step, 0 if q.name == "spikes" else 1)

        q0 = min(failing, key=key)
        first_failure = {"quantity": q0.name, "step": q0.first_diverging_step, "index": q0.first_diverging_index,
                         "max_rel_err": _num(q0.max_rel_err), "worst_step": q0.worst_step, "note": q0.note}
    elif not compared:
        first_failure = {"quantity": None, "step": None, "index": None, "max_rel_err": None, "worst_step": None,
                         "note": "nothing comparable: the backend returned no trace, weight or loss the reference has"}
    status = "pass" if first_failure is None else "fail"
    return Comparison(
        status=status,
        rtol=rtol,
        n_steps=N,
        horizon=horizon,
        first_spike_mismatch=spike_mm,
        quantities=quantities,
        losses_reference=[float(x) for x in lr],
        losses_backend=[float(x) for x in lg],
        first_failure=first_failure,
    )

