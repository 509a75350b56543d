"""Run the validation scenarios on every requested backend and compare each with the reference.

For every scenario: load it (saved JSON, or generated), run the reference once, then each backend,
and compare (:func:`validation.compare.compare_results`).  Each scenario x backend cell ends as

=================  ==============================================================================
``pass``           every compared trace, weight and loss within the scenario's tolerance
``fail``           a spike differs or a quantity exceeds the tolerance (the comparison names it)
``error``          the backend (or the reference) raised; the reason is the exception
``not installed``  ``eprop_plugins.backends.status(name)`` says the backend cannot run here
``n/a``            the backend cannot express the scenario (family, feedback mode, ...)
=================  ==============================================================================

Applicability.  A backend is not applicable to a scenario when its registry entry lacks the
scenario's family, when :data:`KNOWN_LIMITS` says so (facts of the simulators, e.g. NEST's fixed
feedback weights), or when its module defines ``unsupported(scenario) -> str | None`` and that
returns a reason.  Everything else a backend raises is an ``error``.

Hook for extra backends.  ``run_validation(..., extra_backends={name: obj})`` adds backends that are
not in the registry; ``obj`` has ``run(scenario, *, record_weight_events, on_iteration)`` and
optionally ``check()``, ``unsupported(scenario)``, ``families`` and ``summary``.  The suite's
self-test injects a deliberately perturbed reference this way (:mod:`validation.perturb`).
"""

from __future__ import annotations

import gc
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from eprop_plugins import backends as registry
from eprop_plugins.results import Result
from eprop_plugins.scenario import Scenario

from . import scenario_library as library
from .compare import Comparison, compare_results

__all__ = ["Cell", "ScenarioOutcome", "SuiteOutcome", "KNOWN_LIMITS", "run_validation", "STATUSES"]

#: Cell statuses, in the order the summary counts them.
STATUSES = ("pass", "fail", "error", "not installed", "n/a")

#: Limits of the simulators themselves: backend -> [(predicate on a validated scenario, reason)].
_NEST_FIXED_FEEDBACK = (
    lambda sc: sc.network.get("feedback") == "symmetric",
    "NEST's learning-signal connections carry fixed feedback weights: B cannot track W_out "
    "(docs/model.rst §3b)",
)
KNOWN_LIMITS: dict[str, list[tuple[Callable[[Scenario], bool], str]]] = {
    # the nestml backend uses NEST's own learning-signal connections, so it shares the limit
    "nest-builtin": [_NEST_FIXED_FEEDBACK],
    "nestml": [_NEST_FIXED_FEEDBACK],
}


@dataclass
class Cell:
    """The outcome of one backend on one scenario."""

    backend: str
    status: str
    reason: str = ""
    seconds: float | None = None
    comparison: Comparison | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "backend": self.backend,
            "status": self.status,
            "reason": self.reason,
            "seconds": self.seconds,
            "comparison": None if self.comparison is None else self.comparison.to_json(),
        }


@dataclass
class ScenarioOutcome:
    """One scenario: what it is, the reference run, and one cell per backend."""

    name: str
    family: str = ""
    description: str = ""
    tolerance: dict[str, Any] = field(default_factory=dict)
    source: str = ""
    n_steps: int = 0
    n_iterations: int = 0
    sizes: dict[str, int] = field(default_factory=dict)
    reference: dict[str, Any] = field(default_factory=dict)
    cells: dict[str, Cell] = field(default_factory=dict)
    plots: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "family": self.family,
            "description": self.description,
            "tolerance": self.tolerance,
            "source": self.source,
            "n_steps": self.n_steps,
            "n_iterations": self.n_iterations,
            "sizes": self.sizes,
            "reference": self.reference,
            "results": {b: c.to_json() for b, c in self.cells.items()},
            "plots": list(self.plots),
        }


@dataclass
class SuiteOutcome:
    """The whole run."""

    backends: list[dict[str, Any]]
    scenarios: list[ScenarioOutcome]
    required: list[str]
    started: str
    seconds: float = 0.0

    def counts(self) -> dict[str, int]:
        out = {s: 0 for s in STATUSES}
        for sc in self.scenarios:
            for c in sc.cells.values():
                out[c.status] += 1
        return out

    def missing_required(self) -> list[str]:
        return [b["name"] for b in self.backends if b["name"] in self.required and not b["available"]]

    def ok(self) -> bool:
        c = self.counts()
        return c["fail"] == 0 and c["error"] == 0 and not self.missing_required()

    def exit_status(self) -> int:
        """0 when every comparison passed and every required backend was there, else 1."""
        return 0 if self.ok() else 1

    def failures(self) -> list[tuple[str, Cell]]:
        return [(sc.name, c) for sc in self.scenarios for c in sc.cells.values() if c.status in ("fail", "error")]


class _Progress:
    """Callbacks of a run; the CLI's live display implements them (all optional)."""

    def start(self, total: int) -> None: ...
    def begin(self, scenario: str, backend: str) -> None: ...
    def iteration(self, scenario: str, backend: str, index: int, n_iterations: int, loss: float) -> None: ...
    def end(self, scenario: str, cell: Cell) -> None: ...
    def finish(self) -> None: ...


def _describe_backends(names: Sequence[str], extra: Mapping[str, Any], required: Sequence[str]) -> list[dict[str, Any]]:
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


def _unsupported(name: str, module: Any, families: Sequence[str], sc: Scenario) -> str | None:
    if sc.family not in families:
        return f"implements only the {'/'.join(families)} famil{'y' if len(families) == 1 else 'ies'}"
    for predicate, reason in KNOWN_LIMITS.get(name, []):
        if predicate(sc):
            return reason
    hook = getattr(module, "unsupported", None)
    if hook is not None:
        return hook(sc)
    return None


def _check_expected_losses(name: str, losses: np.ndarray) -> dict[str, Any] | None:
    """The reference against public loss numbers, where the scenario has them."""
    if name not in library.EXPECTED_LOSSES:
        return None
    values, rtol, source = library.EXPECTED_LOSSES[name]
    exp = np.asarray(values)
    got = np.asarray(losses)[: exp.size]
    rel = np.abs(got - exp) / np.abs(exp) if got.size == exp.size else np.array([np.inf])
    return {"values": list(values), "rtol": rtol, "source": source, "max_rel_err": float(rel.max()),
            "status": "pass" if bool(np.all(rel <= rtol)) else "fail"}


def run_validation(
    scenarios: Sequence[str] | None = None,
    backends: Sequence[str] | None = None,
    *,
    extra_backends: Mapping[str, Any] | None = None,
    require: Sequence[str] = (),
    progress: _Progress | None = None,
    on_scenario: Callable[[Scenario, ScenarioOutcome, Result | None, dict[str, Result]], None] | None = None,
    record_weight_events: bool = True,
) -> SuiteOutcome:
    """Validate backends against the reference.

    Parameters
    ----------
    scenarios : sequence of str, optional
        Scenario names (default: the whole library, :func:`validation.scenario_library.names`).
    backends : sequence of str, optional
        Backend names (default: every registered backend plus the extra ones).  Unknown names raise.
    extra_backends : mapping, optional
        Backends outside the registry, name -> backend-like object (see module docstring).
    require : sequence of str
        Backends whose absence fails the run.
    progress : object, optional
        Receives ``start/begin/iteration/end/finish`` callbacks (the CLI's live display).
    on_scenario : callable, optional
        Called after each scenario with ``(scenario, outcome, reference_result, backend_results)``
        while the results are still in memory (the report draws its plots here).
    record_weight_events : bool
        Ask every backend for weight events (and compare them).

    Returns
    -------
    SuiteOutcome
    """
    t_start = time.perf_counter()
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    extra = dict(extra_backends or {})
    names = list(backends) if backends else registry.names() + [n for n in extra if n not in registry.BACKENDS]
    for name in list(names) + list(require):
        if name not in registry.BACKENDS and name not in extra:
            raise ValueError(f"backend = {name!r}: allowed values are {', '.join(registry.names() + list(extra))}")
    scen_names = list(scenarios) if scenarios else library.names()
    for s in scen_names:
        if s not in library.LIBRARY:
            raise ValueError(f"scenario = {s!r}: known scenarios are {', '.join(library.names())}")
    described = _describe_backends(names, extra, require)
    available = {b["name"]: b for b in described}
    progress = progress or _Progress()
    progress.start(len(scen_names) * len(names))
    outcomes: list[ScenarioOutcome] = []

    for sname in scen_names:
        out = ScenarioOutcome(name=sname)
        outcomes.append(out)
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
                                 "expected_losses": _check_expected_losses(sname, ref_result.losses)}
            except Exception as exc:
                problem = f"reference failed: {type(exc).__name__}: {exc}"
                out.reference = {"status": "error", "seconds": time.perf_counter() - t0, "reason": problem,
                                 "traceback": traceback.format_exc(limit=6)}
        else:
            out.reference = {"status": "error", "reason": problem}

        for bname in names:
            info = available[bname]
            progress.begin(sname, bname)
            cell = _run_cell(bname, info, extra, sc, ref_result, problem, out, results, record_weight_events, progress)
            out.cells[bname] = cell
            progress.end(sname, cell)
        if on_scenario is not None and sc is not None:
            on_scenario(sc, out, ref_result, results)
        del ref_result, results
        gc.collect()
    progress.finish()
    return SuiteOutcome(backends=described, scenarios=outcomes, required=list(require), started=started,
                        seconds=time.perf_counter() - t_start)


def _run_cell(bname: str, info: dict[str, Any], extra: Mapping[str, Any], sc: Scenario | None,
              ref_result: Result | None, problem: str, out: ScenarioOutcome, results: dict[str, Result],
              record_weight_events: bool, progress: _Progress) -> Cell:
    if not info["available"]:
        return Cell(bname, "not installed", info["reason"])
    module = extra[bname] if bname in extra else registry.get(bname)
    if sc is not None:
        why = _unsupported(bname, module, info["families"], sc)
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
    try:
        result = module.run(
            sc, record_weight_events=record_weight_events,
            on_iteration=lambda i, loss: progress.iteration(sc.name, bname, i, sc.n_iterations, loss))
    except Exception as exc:
        return Cell(bname, "error", f"{type(exc).__name__}: {exc}", time.perf_counter() - t0)
    seconds = time.perf_counter() - t0
    results[bname] = result
    try:
        cmp = compare_results(sc, ref_result, result)
    except Exception as exc:  # a malformed Result is the backend's error
        return Cell(bname, "error", f"result could not be compared: {type(exc).__name__}: {exc}", seconds)
    return Cell(bname, cmp.status, cmp.summary(), seconds, cmp)
