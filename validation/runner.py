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

Applicability.  A registered backend is not applicable to a scenario when
:func:`eprop_plugins.backends.unsupported` gives a reason (the registry is the one home of the
families a backend implements and of its simulator's limits, e.g. NEST's fixed feedback weights).
Everything else a backend raises is an ``error``.

Builds.  A backend module may expose ``build_key(scenario) -> str | None`` (the key of the compiled
code the scenario needs; None: nothing to compile) and ``is_built(scenario) -> bool``.  The runner
reads them before anything runs, orders the scenarios so that those sharing a build follow each
other, announces every compilation as "building k of K" (:meth:`Progress.build`), never lets two
workers make the same build, and starts the long tasks first (their backend cells run in processes
of their own), so no build is made twice and no process exceeds 2 GB (:class:`validation.builds.BuildPlan`).
Cells report the compile time (``Result.meta["compile_seconds"]``) apart from their total time,
and the peak memory of their process (:mod:`validation.memory`); the suite names its largest
process and checks it against the 2 GB goal (:meth:`SuiteOutcome.memory`).

Worker processes.  ``jobs > 1`` runs scenarios in that many worker processes (``spawn``), each
scenario entirely in one worker (reference, every backend, the ``on_scenario`` hook), so that every
number is the one a single process computes; the outcomes are returned in the scenarios' order.  A
worker that dies (a simulator crash) turns its scenario's cells into errors and is replaced.

Hook for extra backends.  ``run_validation(..., extra_backends={name: obj})`` adds backends that are
not in the registry; ``obj`` has ``run(scenario, *, record_weight_events, on_iteration)`` and
optionally ``check()``, ``unsupported(scenario)``, ``families``, ``summary``, ``build_key`` and
``is_built``.  The suite's self-test injects a deliberately perturbed reference this way
(:mod:`validation.perturb`).  With ``jobs > 1`` the extra backends and ``on_scenario`` must be
picklable; otherwise the run falls back to one process (and says so).
"""

from __future__ import annotations

import os
import time
from typing import Any, Callable, Mapping, Sequence

from eprop_plugins import backends as registry
from eprop_plugins.results import Result
from eprop_plugins.scenario import Scenario

from . import memory, scenario_library as library
from .builds import plan_builds
from .cells import describe_backends, not_applicable, run_scenario
from .outcomes import STATUSES, Cell, Progress, ScenarioOutcome, SuiteOutcome
from .workers import picklable, run_in_workers

__all__ = ["Cell", "Progress", "ScenarioOutcome", "SuiteOutcome", "STATUSES", "default_jobs", "describe_backends",
           "not_applicable", "run_validation"]

#: Most worker processes :func:`default_jobs` chooses (each may hold NEST, Brian2 and a large
#: task's results: two keep the peak memory of a full run under 2 GB).
MAX_DEFAULT_JOBS = 2


def default_jobs() -> int:
    """Worker processes by default: the CPUs this process may use, at most :data:`MAX_DEFAULT_JOBS`."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, MAX_DEFAULT_JOBS))


def run_validation(
    scenarios: Sequence[str] | None = None,
    backends: Sequence[str] | None = None,
    *,
    extra_backends: Mapping[str, Any] | None = None,
    require: Sequence[str] = (),
    progress: Progress | None = None,
    on_scenario: Callable[[Scenario, ScenarioOutcome, Result | None, dict[str, Result]], None] | None = None,
    record_weight_events: bool = True,
    jobs: int = 1,
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
    progress : Progress, optional
        Receives the :class:`Progress` callbacks (the CLI's live display).
    on_scenario : callable, optional
        Called after each scenario with ``(scenario, outcome, reference_result, backend_results)``
        while the results are in memory (the report draws its plots here); the backend results hold
        only what the figures draw (:func:`validation.plots.for_plots`).  With ``jobs > 1`` it runs
        in the worker process, and what it adds to ``outcome`` comes back with it.
    record_weight_events : bool
        Ask every backend for weight events (and compare them).
    jobs : int
        Worker processes (1: run everything in this process).  The outcomes are the same.

    Returns
    -------
    SuiteOutcome
        Scenarios in the order given, whatever order they ran in.
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
    if int(jobs) < 1:
        raise ValueError(f"jobs = {jobs!r}: allowed values are integers >= 1")
    described = describe_backends(names, extra, require)
    available = {b["name"]: b for b in described}
    progress = progress or Progress()
    plan = plan_builds(scen_names, names, available, extra, record_weight_events)
    jobs = min(int(jobs), len(scen_names))
    if jobs > 1 and not picklable(extra, on_scenario):
        progress.note("one process: the extra backends or the on_scenario hook cannot be sent to worker processes")
        jobs = 1
    progress.start(len(scen_names) * len(names), len(plan.todo))

    if jobs > 1:
        outcomes = run_in_workers(jobs, plan, scen_names, names, available, extra, record_weight_events, progress,
                                  on_scenario)
    else:
        outcomes = {}
        remaining, last = list(scen_names), None
        while remaining:
            sname = plan.pick(remaining, last, 0)
            assert sname is not None  # one worker never waits for another
            remaining.remove(sname)
            unbuilt = {b for b, _ in plan.unbuilt(sname)}
            outcomes[sname] = run_scenario(sname, names, available, extra, plan.keys.get(sname, {}), unbuilt,
                                           record_weight_events, progress, on_scenario)
            plan.finished(sname)
            last = sname
    progress.finish()
    return SuiteOutcome(backends=described, scenarios=[outcomes[s] for s in scen_names], required=list(require),
                        started=started, seconds=time.perf_counter() - t_start, jobs=jobs,
                        main_peak_mb=memory.peak_mb())
