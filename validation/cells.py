"""One scenario on every backend: the reference run, each backend's cell, its comparison.

The backend cells of a large scenario run in processes of their own (:mod:`validation.isolated`);
every cell records the memory of its process (:mod:`validation.memory`).

:func:`run_scenario` is what a validation run does per scenario, in this process or in a worker
(:mod:`validation.workers`).
"""

from __future__ import annotations

import time
import traceback
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from eprop_plugins import backends as registry
from eprop_plugins.results import Result
from eprop_plugins.scenario import Scenario

from . import memory, scenario_library as library
from .compare import compare_results
from .isolated import picklable, run_isolated
from .outcomes import Cell, Progress, ScenarioOutcome
from .plots import for_plots

__all__ = ["check_expected_losses", "describe_backends", "not_applicable", "run_scenario"]


def describe_backends(names: Sequence[str], extra: Mapping[str, Any], required: Sequence[str]) -> list[dict[str, Any]]:
    """One entry per backend for the report: name, available, reason, families, required, extra.

    Registered backends answer through :func:`eprop_plugins.backends.status`; extra backends through
    their own ``check()`` (any exception makes them "not installed", with the exception as reason).
    """
    out = []
    for name in names:
        if name in extra:
            obj = extra[name]
            try:
                getattr(obj, "check", lambda: None)()
                ok, reason = True, getattr(obj, "summary", "extra backend")
            except Exception as exc:
                ok, reason = False, f"{type(exc).__name__}: {exc}"
            families = tuple(getattr(obj, "families", ("original", "event")))
        else:
            ok, reason = registry.status(name)
            families = registry.BACKENDS[name].families
        out.append({"name": name, "available": bool(ok), "reason": reason, "families": list(families),
                    "required": name in required, "extra": name in extra})
    return out


def not_applicable(name: str, backend: Any, families: Sequence[str], sc: Scenario) -> str | None:
    """Why backend ``name`` cannot express ``sc`` (None: it can).

    Registered backends: :func:`eprop_plugins.backends.unsupported`.  Extra backends: their
    ``families`` and their own ``unsupported(scenario)``, if they have one.
    """
    if name in registry.BACKENDS:
        return registry.unsupported(name, sc)
    if sc.family not in families:
        return f"implements only the {'/'.join(families)} famil{'y' if len(families) == 1 else 'ies'}"
    hook = getattr(backend, "unsupported", None)
    return hook(sc) if hook is not None else None


def check_expected_losses(name: str, losses: np.ndarray) -> dict[str, Any] | None:
    """The reference against public loss numbers, where the scenario has them."""
    if name not in library.EXPECTED_LOSSES:
        return None
    values, rtol, source = library.EXPECTED_LOSSES[name]
    exp = np.asarray(values)
    got = np.asarray(losses)[: exp.size]
    rel = np.abs(got - exp) / np.abs(exp) if got.size == exp.size else np.array([np.inf])
    return {"values": list(values), "rtol": rtol, "source": source, "max_rel_err": float(rel.max()),
            "status": "pass" if bool(np.all(rel <= rtol)) else "fail"}


def run_scenario(sname: str, names: Sequence[str], available: Mapping[str, dict[str, Any]], extra: Mapping[str, Any],
                 build_keys: Mapping[str, str], unbuilt: set[str], record_weight_events: bool, progress: Progress,
                 on_scenario: Callable[..., None] | None) -> ScenarioOutcome:
    """The reference, then every backend on one scenario, compared; the scenario's figures last.

    Parameters
    ----------
    sname : str
        Scenario name (:mod:`validation.scenario_library`).
    names : sequence of str
        Backends, in the report's column order.
    available : mapping
        Backend name -> its :func:`describe_backends` entry.
    extra : mapping
        Extra backends (name -> object), see :mod:`validation.runner`.
    build_keys : mapping
        Backend -> key of the build this scenario uses.
    unbuilt : set of str
        Backends whose build this scenario makes (announced with :meth:`Progress.build`).
    record_weight_events : bool
        Ask every backend for weight events.
    progress : Progress
        Display callbacks.
    on_scenario : callable or None
        ``on_scenario(scenario, outcome, reference_result, backend_results)``; the backend results
        hold only what the figures draw (:func:`validation.plots.for_plots`).
    """
    out = ScenarioOutcome(name=sname)
    last_peak = memory.peak_mb()
    ref_start = memory.current_mb()
    ref_result: Result | None = None
    results: dict[str, Result] = {}
    sc: Scenario | None = None
    problem = ""
    try:
        raw, out.source = library.get(sname)
        sc = raw.validated()
        out.family, out.description, out.tolerance = sc.family, sc.description, dict(sc.tolerance)
        out.n_steps, out.n_iterations = sc.n_steps, sc.n_iterations
        out.sizes = {"n_in": sc.n_in, "n_rec": sc.n_rec, "n_out": sc.n_out, "n_sequences": sc.n_sequences}
    except Exception as exc:
        problem = f"scenario could not be built: {type(exc).__name__}: {exc}"
    if sc is not None:
        t0 = time.perf_counter()
        progress.begin(sname, "(reference)")
        try:
            ref_result = registry.get("reference").run(
                sc, record_weight_events=record_weight_events,
                on_iteration=lambda i, loss: progress.iteration(sname, "(reference)", i, sc.n_iterations, loss))
            out.reference = {"status": "ok", "seconds": time.perf_counter() - t0,
                             "losses": [float(x) for x in ref_result.losses],
                             "expected_losses": check_expected_losses(sname, ref_result.losses)}
        except Exception as exc:
            problem = f"reference failed: {type(exc).__name__}: {exc}"
            out.reference = {"status": "error", "seconds": time.perf_counter() - t0, "reason": problem,
                             "traceback": traceback.format_exc(limit=6)}
    else:
        out.reference = {"status": "error", "reason": problem}

    for bname in names:
        if bname in unbuilt:
            progress.build(sname, bname, build_keys[bname])
        progress.begin(sname, bname)
        start = ref_start if bname == "reference" else memory.current_mb()
        cell = _run_cell(bname, available[bname], extra, sc, ref_result, problem, out, results,
                         record_weight_events, progress)
        cell.build_key = build_keys.get(bname)
        memory.release()  # what the backend freed must not stay resident under the next cell
        last_peak = _measure(cell, None if cell.isolated else start, last_peak)
        out.cells[bname] = cell
        progress.end(sname, cell)
    if on_scenario is not None and sc is not None:
        on_scenario(sc, out, ref_result, results)
    del ref_result, results
    memory.release()
    memory.freeze_survivors()  # the next scenario's collections skip what outlived this one
    peak = memory.peak_mb()
    out.memory = {"peak_rss_mb": peak, "rss_growth_mb": round(max(0.0, peak - last_peak), 1)}
    return out


def _measure(cell: Cell, start_mb: float | None, last_peak: float) -> float:
    """Put the memory of the cell's processes into ``cell``; return this process's peak (:mod:`validation.memory`).

    A cell run in a process of its own (``cell.isolated``) already holds that process's peak; here
    it records what its comparison added to this process.
    """
    peak = memory.peak_mb()
    cell.child_peak_mb = memory.children_peak_mb()
    cell.worker_peak_mb = peak
    cell.rss_growth_mb = round(max(0.0, peak - last_peak), 1)
    if not cell.isolated:
        cell.rss_start_mb, cell.peak_rss_mb = start_mb, peak
    return peak


def _run_cell(bname: str, info: dict[str, Any], extra: Mapping[str, Any], sc: Scenario | None,
              ref_result: Result | None, problem: str, out: ScenarioOutcome, results: dict[str, Result],
              record_weight_events: bool, progress: Progress) -> Cell:
    if not info["available"]:
        return Cell(bname, "not installed", info["reason"])
    backend = extra[bname] if bname in extra else registry.get(bname)
    if sc is not None:
        why = not_applicable(bname, backend, info["families"], sc)
        if why:
            return Cell(bname, "n/a", why)
    if sc is None or ref_result is None:
        return Cell(bname, "error", problem)
    if bname == "reference":
        exp = out.reference.get("expected_losses")
        if exp is None:
            return Cell(bname, "pass", "the oracle; no public reference numbers for this scenario",
                        out.reference.get("seconds"))
        status = exp["status"]
        return Cell(bname, status, f"losses vs {exp['source']}: max rel err {exp['max_rel_err']:.2e} "
                                   f"(rtol {exp['rtol']:g})", out.reference.get("seconds"))
    t0 = time.perf_counter()
    on_iteration = lambda i, loss: progress.iteration(sc.name, bname, i, sc.n_iterations, loss)  # noqa: E731
    # a large scenario's cell runs in a process of its own, which takes its memory with it
    own = None if bname in registry.BACKENDS else backend
    isolated = memory.is_large(sc) and (own is None or picklable(own))
    child_peak = None
    try:
        if isolated:
            result, child_peak = run_isolated(bname, own, sc, record_weight_events=record_weight_events,
                                              on_iteration=on_iteration)
        else:
            result = backend.run(sc, record_weight_events=record_weight_events, on_iteration=on_iteration)
    except Exception as exc:
        return Cell(bname, "error", f"{type(exc).__name__}: {exc}", time.perf_counter() - t0, isolated=isolated)
    seconds = time.perf_counter() - t0
    compile_seconds = result.meta.get("compile_seconds") if isinstance(getattr(result, "meta", None), dict) else None
    compile_seconds = None if compile_seconds is None else float(compile_seconds)
    try:
        # a backend may state its own tolerance and spike horizon (fixed-point backends)
        tol = getattr(backend, "tolerance", None)
        stated = tol(sc) if callable(tol) else {}
        cmp = compare_results(sc, ref_result, result, rtol=stated.get("rtol"), spike_horizon=stated.get("horizon"))
        results[bname] = for_plots(result)  # the full result is not kept beyond its comparison
    except Exception as exc:  # a malformed Result is the backend's error
        return Cell(bname, "error", f"result could not be compared: {type(exc).__name__}: {exc}", seconds,
                    compile_seconds=compile_seconds, isolated=isolated, peak_rss_mb=child_peak)
    return Cell(bname, cmp.status, cmp.summary(), seconds, cmp, compile_seconds, isolated=isolated,
                peak_rss_mb=child_peak)
