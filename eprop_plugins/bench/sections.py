"""The four sections of ``eprop bench`` and the goals the results are checked against.

Each section appends its rows to a list as they are measured (so that a partial report can be
saved) and prints one line per measurement.  A failed measurement is a row with ``error``: the
section goes on.
"""

from __future__ import annotations

import statistics
from typing import Any

import numpy as np

from .child import NO_RECORDERS, NO_RECORDERS_FLUSH, measure
from .scenarios import SCALING_DENSITY

__all__ = ["summary", "section_iteration", "section_memory", "section_scaling", "section_threads",
           "memory_summary", "goals", "GOALS", "FLAT_TOLERANCE"]

#: goals of the time per iteration, as ratios to ``nest-builtin`` of the same family (at most)
GOALS = {("brian2-standalone", "original"): 0.10, ("brian2-standalone", "event"): 0.25,
         ("nestml", "original"): 1.0, ("nestml", "event"): 1.0}
#: e-prop's peak memory counts as flat when it changes by at most this fraction from the shortest T to the longest
FLAT_TOLERANCE = 0.05


def _say(*parts) -> None:
    print(*parts, flush=True)


def summary(rows: list[dict], key: str = "per_iteration_s") -> dict[str, Any]:
    """``{median, min, max, n}`` of ``key`` over the rows that have it."""
    vals = [r[key] for r in rows if r.get(key) is not None]
    if not vals:
        return {"median": None, "min": None, "max": None, "n": 0}
    return {"median": statistics.median(vals), "min": min(vals), "max": max(vals), "n": len(vals)}


def section_iteration(backends: list[str], tasks: list[str], families: list[str], iterations: int,
                      repeats: int, sequence_steps: int | None, out: list[dict] | None = None,
                      timeout: float | None = None) -> list[dict]:
    """One row per task, family and backend: medians and spreads over ``repeats`` fresh processes,
    ratio to ``nest-builtin`` (always run, first, alternating with the others)."""
    from ..backends import BACKENDS

    out = [] if out is None else out
    kw = {} if timeout is None else {"timeout": timeout}
    for task in tasks:
        for family in families:
            names = list(dict.fromkeys(["nest-builtin"] + list(backends)))  # nest-builtin always, first
            for name in [n for n in names if n in BACKENDS and family not in BACKENDS[n].families]:
                names.remove(name)  # a family the backend does not implement: a row that says so
                out.append({"task": task, "family": family, "backend": name, "per_iteration_s": summary([]),
                            "startup_s": summary([]), "compile_s": [], "peak_rss_mb": summary([]),
                            "ratio_vs_nest_builtin": None, "load_average": [], "errors": [],
                            "skipped": f"implements the families {', '.join(BACKENDS[name].families)}"})
            runs: dict[str, list[dict]] = {n: [] for n in names}
            for _ in range(repeats):  # alternate backends: load changes hit all alike
                for name in names:
                    runs[name].append(measure({"backend": name, "task": task, "family": family,
                                               "iterations": iterations, "sequence_steps": sequence_steps}, **kw))
            base = summary(runs["nest-builtin"])["median"]
            for name in names:
                ok = [r for r in runs[name] if "error" not in r]
                s = summary(ok)
                row = {"task": task, "family": family, "backend": name, "per_iteration_s": s,
                       "startup_s": summary(ok, "startup_s"), "compile_s": [r.get("compile_s") for r in ok],
                       "peak_rss_mb": summary(ok, "peak_rss_mb"),
                       "ratio_vs_nest_builtin": (s["median"] / base) if (base and s["median"]) else None,
                       "load_average": [r.get("load_average") for r in runs[name]],
                       "errors": [r["error"] for r in runs[name] if "error" in r]}
                out.append(row)
                med = f"{s['median']:.4f}" if s["median"] else "failed"
                ratio = f"{row['ratio_vs_nest_builtin']:.3f}" if row["ratio_vs_nest_builtin"] else "-"
                _say(f"  {task:<8} {family:<8} {name:<18} {med:>9} s/it  [{s['min'] or 0:.4f} .. {s['max'] or 0:.4f}]"
                     f"  x{ratio} of nest-builtin  {'; '.join(row['errors'])}")
    return out


def _measure_built(job: dict, **kw) -> dict:
    """:func:`measure`, again if the run compiled: the compiler's peak would count as the run's memory."""
    row = measure(job, **kw)
    if row.get("cached") is False and "error" not in row:
        first = row
        row = measure(job, **kw)
        row["first_run_compile_s"] = first.get("compile_s")
    return row


def _mb(r: dict) -> str:
    traced = f", Python allocations {r['traced_peak_mb']:.1f} MB" if "traced_peak_mb" in r else ""
    return (f"peak {r['peak_rss_mb']:.0f} MB, {r['memory_mb']:.1f} MB above a {r['baseline_rss_mb']:.0f} MB "
            f"baseline{traced} ({r['total_s']:.1f} s)")


def section_memory(backends: list[str], lengths: list[int], out: list[dict] | None = None,
                   timeout: float | None = None, families: tuple[str, ...] = ("original",)) -> list[dict]:
    """Rows of one sine iteration per family, backend and sequence length T, then ``bptt`` (original family).

    With ``nest-builtin`` among the backends, :data:`~eprop_plugins.bench.child.NO_RECORDERS` is
    measured next to it; its rows say whether its losses equal ``nest-builtin``'s
    (``losses_equal_to_nest_builtin``).
    """
    out = [] if out is None else out
    names = list(backends)
    if "nest-builtin" in names and NO_RECORDERS not in names:
        names.insert(names.index("nest-builtin") + 1, NO_RECORDERS)
    kw = {} if timeout is None else {"timeout": timeout}
    for family in families:
        for name in names + (["bptt"] if family == "original" else []):
            for T in lengths:
                r = _measure_built({"backend": name, "task": "sine", "family": family, "iterations": 1,
                                    "sequence_steps": T}, **kw)
                if name in (NO_RECORDERS, NO_RECORDERS_FLUSH):
                    full = next((x for x in out if x["backend"] == "nest-builtin" and x["family"] == family
                                 and x.get("sequence_steps") == T and "error" not in x), None)
                    if full is not None and "error" not in r:
                        r["losses_equal_to_nest_builtin"] = full["losses"] == r["losses"]
                out.append(r)
                _say(f"  memory {family:<8} {name:<26} T={T:>6}: " + (r.get("error") or _mb(r)))
    return out


def memory_summary(rows: list[dict]) -> list[dict]:
    """Per backend and family: peak RSS and growth above the baseline at each T, and the change of the
    peak from the shortest T to the longest (``peak_change``, a fraction; ``flat``: within
    :data:`FLAT_TOLERANCE`).  The peak is the process's RSS; for the Python computations (``bptt``)
    the ``tracemalloc`` peak."""
    out = []
    for name, family in dict.fromkeys((r["backend"], r["family"]) for r in rows):
        ok = sorted((r for r in rows if r["backend"] == name and r["family"] == family and "error" not in r),
                    key=lambda r: r["sequence_steps"])
        if len(ok) < 2:
            continue
        first, last = ok[0], ok[-1]
        key = "traced_peak_mb" if "traced_peak_mb" in first else "peak_rss_mb"
        change = last[key] / first[key] - 1.0 if first[key] else None
        out.append({"backend": name, "family": family, "lengths": [r["sequence_steps"] for r in ok],
                    "peak_rss_mb": [r["peak_rss_mb"] for r in ok], "memory_mb": [r["memory_mb"] for r in ok],
                    "traced_peak_mb": [r.get("traced_peak_mb") for r in ok], "measure": key,
                    "peak_change": change, "flat": change is not None and abs(change) <= FLAT_TOLERANCE})
    return out


def section_scaling(backends: list[str], sizes: list[int], families: list[str], iterations: int,
                    out: list[dict] | None = None, density: float = SCALING_DENSITY,
                    timeout: float | None = None) -> list[dict]:
    """Rows for the sparse scaling network (:func:`~eprop_plugins.bench.scenarios.sparse_scaling`) per size,
    family and backend; ``ratio_vs_nest_builtin`` of seconds per simulated second where both ran."""
    out = [] if out is None else out
    kw = {} if timeout is None else {"timeout": timeout}
    for family in families:
        for n in sizes:
            rows = []
            for name in backends:
                r = _measure_built({"backend": name, "task": "sparse", "family": family, "iterations": iterations,
                                    "n_rec": n, "density": density}, **kw)
                rows.append(r)
                out.append(r)
                _say(f"  scaling {family:<8} n={n:>5} {name:<18}: " + (r.get("error") or
                     f"{r['s_per_simulated_s']:.3f} s per simulated s, peak {r['peak_rss_mb']:.0f} MB "
                     f"({r['memory_mb']:.0f} above baseline), start-up {r['startup_s']:.1f} s"))
            base = next((r for r in rows if r["backend"] == "nest-builtin" and r.get("s_per_simulated_s")), None)
            for r in rows:
                if base is not None and r.get("s_per_simulated_s"):
                    r["ratio_vs_nest_builtin"] = r["s_per_simulated_s"] / base["s_per_simulated_s"]
    return out


def section_threads(backends: list[str], families: list[str], iterations: int, out: list[dict] | None = None,
                    timeout: float | None = None) -> list[dict]:
    """Rows for 1 and 2 threads per backend (sine), each with ``losses_identical_across_threads``."""
    out = [] if out is None else out
    kw = {} if timeout is None else {"timeout": timeout}
    for family in families:
        for name in backends:
            rows = [_measure_built({"backend": name, "task": "sine", "family": family, "iterations": iterations,
                                    "threads": k}, **kw) for k in (1, 2)]
            ok = all("error" not in r for r in rows)
            same = ok and rows[0]["losses"] == rows[1]["losses"]
            rel = None
            if ok:
                a, b = (np.asarray(r["losses"], float) for r in rows)
                rel = float(np.max(np.abs(a - b) / np.maximum(np.abs(a), 1e-300))) if a.shape == b.shape else np.inf
            for r in rows:
                r["losses_identical_across_threads"] = same
                r["losses_max_rel_diff_across_threads"] = rel
                out.append(r)
                _say(f"  threads {family:<8} {name:<18} {r['threads']}: " + (r.get("error") or
                     f"{r['per_iteration_s']:.4f} s/it, losses identical to the other count: {same} "
                     f"(max relative difference {rel:.1e})"))
    return out


def goals(report: dict) -> list[dict]:
    """The goals of docs/benchmarks.rst against this report: one entry per goal with ``measured`` and ``met``
    (None when the report has no number for it)."""
    out = []
    for (name, family), limit in GOALS.items():
        row = next((r for r in report.get("iteration", []) if r["task"] == "sine" and r["family"] == family
                    and r["backend"] == name), None)
        ratio = row["ratio_vs_nest_builtin"] if row else None
        out.append({"goal": f"{name} time per iteration <= {limit:g}x nest-builtin ({family} family, sine, 100 neurons)",
                    "measured": ratio, "met": None if ratio is None else ratio <= limit})
        scaling = [r for r in report.get("scaling", []) if r["backend"] == name and r["family"] == family]
        if scaling:
            n = max(r["n_rec"] for r in scaling)
            r = next(r for r in scaling if r["n_rec"] == n)
            ratio = r.get("ratio_vs_nest_builtin")
            out.append({"goal": f"{name} time per simulated second <= {limit:g}x nest-builtin ({family} family, "
                                f"{n} neurons, {100 * r.get('density', 0):g} % connected)",
                        "measured": ratio, "met": None if ratio is None else ratio <= limit,
                        "error": r.get("error")})
    for m in memory_summary(report.get("memory", [])):
        if m["backend"] == "bptt":
            out.append({"goal": "BPTT's peak memory grows with T", "measured": m["peak_change"],
                        "met": m["peak_change"] is not None and m["peak_change"] > FLAT_TOLERANCE})
        else:
            out.append({"goal": f"{m['backend']} ({m['family']} family) peak memory flat (+-{100 * FLAT_TOLERANCE:g} %) from T = "
                                f"{m['lengths'][0]} to {m['lengths'][-1]}",
                        "measured": m["peak_change"], "met": m["flat"]})
    return out
