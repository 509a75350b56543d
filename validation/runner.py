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
other, announces every compilation as "building k of K" (:meth:`Progress.build`) and hands a
scenario whose build is under way in one worker to no other worker, so no build is made twice.
Cells report the compile time (``Result.meta["compile_seconds"]``) apart from their total time.

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

import gc
import inspect
import multiprocessing as mp
import os
import pickle
import queue
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from eprop_plugins import backends as registry
from eprop_plugins.results import Result
from eprop_plugins.scenario import Scenario

from . import scenario_library as library
from .compare import Comparison, compare_results

__all__ = ["Cell", "Progress", "ScenarioOutcome", "SuiteOutcome", "default_jobs", "run_validation", "STATUSES"]

#: Cell statuses, in the order the summary counts them.
STATUSES = ("pass", "fail", "error", "not installed", "n/a")

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


@dataclass
class Cell:
    """The outcome of one backend on one scenario.

    ``seconds`` is the cell's wall time (s), ``compile_seconds`` the part of it spent compiling
    (``Result.meta["compile_seconds"]``; None when the backend does not say), ``build_key`` the key
    of the compiled code it used (None: none).
    """

    backend: str
    status: str
    reason: str = ""
    seconds: float | None = None
    comparison: Comparison | None = None
    compile_seconds: float | None = None
    build_key: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "backend": self.backend,
            "status": self.status,
            "reason": self.reason,
            "seconds": self.seconds,
            "compile_seconds": self.compile_seconds,
            "build_key": self.build_key,
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
    """The whole run (``jobs``: worker processes used; 1 = this process)."""

    backends: list[dict[str, Any]]
    scenarios: list[ScenarioOutcome]
    required: list[str]
    started: str
    seconds: float = 0.0
    jobs: int = 1

    def counts(self) -> dict[str, int]:
        out = {s: 0 for s in STATUSES}
        for sc in self.scenarios:
            for c in sc.cells.values():
                out[c.status] += 1
        return out

    def timing(self) -> dict[str, dict[str, float | int]]:
        """Per backend: cells that ran, their total seconds, compile seconds and builds made."""
        out: dict[str, dict[str, float | int]] = {}
        for b in self.backends:
            cells = [s.cells[b["name"]] for s in self.scenarios if b["name"] in s.cells]
            ran = [c for c in cells if c.seconds is not None]
            compile_s = [c.compile_seconds for c in ran if c.compile_seconds]
            out[b["name"]] = {"cells": len(ran), "seconds": round(sum(c.seconds for c in ran), 3),
                              "compile_seconds": round(sum(compile_s), 3), "builds": len(compile_s)}
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


class Progress:
    """Callbacks of a run; the CLI's live display implements them (every method is optional)."""

    def start(self, total: int, builds: int) -> None:
        """``total`` cells will run, ``builds`` of them compile first."""

    def build(self, scenario: str, backend: str, key: str) -> None:
        """The next cell (``scenario`` x ``backend``) compiles build ``key`` first."""

    def begin(self, scenario: str, backend: str) -> None: ...
    def iteration(self, scenario: str, backend: str, index: int, n_iterations: int, loss: float) -> None: ...
    def end(self, scenario: str, cell: Cell) -> None: ...
    def note(self, text: str) -> None: ...
    def finish(self) -> None: ...


def describe_backends(names: Sequence[str], extra: Mapping[str, Any], required: Sequence[str]) -> list[dict[str, Any]]:
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


# ------------------------------------------------------------------------------------------ builds
def _call_with_options(hook: Callable[..., Any], sc: Scenario, record_weight_events: bool) -> Any:
    """``hook(sc)``, passing ``record_weight_events`` where the hook takes it (the build may depend on it)."""
    try:
        params = inspect.signature(hook).parameters
    except (TypeError, ValueError):
        params = {}
    return hook(sc, record_weight_events=record_weight_events) if "record_weight_events" in params else hook(sc)


def _build_info(backend: Any, sc: Scenario, record_weight_events: bool) -> tuple[str | None, bool]:
    """``(key, built)`` of the compiled code ``sc`` needs on ``backend`` (``(None, True)``: nothing to build)."""
    key_hook = getattr(backend, "build_key", None)
    if key_hook is None:
        return None, True
    key = _call_with_options(key_hook, sc, record_weight_events)
    if key is None:
        return None, True
    built_hook = getattr(backend, "is_built", None)
    return str(key), bool(_call_with_options(built_hook, sc, record_weight_events)) if built_hook else False


@dataclass
class _Plan:
    """What the runner knows before it starts: each scenario's builds, and the order to run them in."""

    keys: dict[str, dict[str, str]]  # scenario -> backend -> build key (all builds it uses)
    todo: set[tuple[str, str]]  # (backend, key) not built yet
    building: dict[tuple[str, str], int] = field(default_factory=dict)  # build -> worker making it

    def unbuilt(self, sname: str) -> set[tuple[str, str]]:
        return {(b, k) for b, k in self.keys.get(sname, {}).items() if (b, k) in self.todo}

    def pick(self, remaining: list[str], last: str | None, worker: int) -> str | None:
        """The next scenario for ``worker`` (None: everything left waits for builds of other workers).

        First the scenario sharing most builds with the worker's last one (a build group runs
        consecutively), then library order; never one whose build another worker is making.
        """
        free = [s for s in remaining if all(self.building.get(b, worker) == worker for b in self.unbuilt(s))]
        if not free:
            return None
        last_keys = set(self.keys.get(last, {}).items()) if last else set()
        best = max(free, key=lambda s: (len(last_keys & set(self.keys.get(s, {}).items())), -remaining.index(s)))
        for b in self.unbuilt(best):
            self.building[b] = worker
        return best

    def finished(self, sname: str) -> None:
        for b in self.unbuilt(sname):
            self.todo.discard(b)
            self.building.pop(b, None)


def _plan(scen_names: Sequence[str], names: Sequence[str], available: Mapping[str, dict[str, Any]],
          extra: Mapping[str, Any], record_weight_events: bool) -> _Plan:
    """Read every scenario's build keys (nothing is compiled)."""
    keys: dict[str, dict[str, str]] = {}
    todo: set[tuple[str, str]] = set()
    for sname in scen_names:
        try:
            sc = library.get(sname)[0].validated()
        except Exception:  # reported when the scenario runs
            continue
        keys[sname] = {}
        for bname in names:
            if not available[bname]["available"] or bname == "reference":
                continue
            backend = extra[bname] if bname in extra else registry.get(bname)
            try:
                if not_applicable(bname, backend, available[bname]["families"], sc):
                    continue
                key, built = _build_info(backend, sc, record_weight_events)
            except Exception:  # the cell will report the error
                continue
            if key is not None:
                keys[sname][bname] = key
                if not built:
                    todo.add((bname, key))
    return _Plan(keys, todo)


# ------------------------------------------------------------------------------------------ one scenario
def _run_scenario(sname: str, names: Sequence[str], available: Mapping[str, dict[str, Any]], extra: Mapping[str, Any],
                  build_keys: Mapping[str, str], unbuilt: set[str], record_weight_events: bool, progress: Progress,
                  on_scenario: Callable[..., None] | None) -> ScenarioOutcome:
    """Reference, then every backend on one scenario; ``unbuilt``: backends whose build this scenario makes."""
    out = ScenarioOutcome(name=sname)
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
        if bname in unbuilt:
            progress.build(sname, bname, build_keys[bname])
        progress.begin(sname, bname)
        cell = _run_cell(bname, available[bname], extra, sc, ref_result, problem, out, results,
                         record_weight_events, progress)
        cell.build_key = build_keys.get(bname)
        out.cells[bname] = cell
        progress.end(sname, cell)
    if on_scenario is not None and sc is not None:
        on_scenario(sc, out, ref_result, results)
    del ref_result, results
    gc.collect()
    return out


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
    try:
        result = backend.run(
            sc, record_weight_events=record_weight_events,
            on_iteration=lambda i, loss: progress.iteration(sc.name, bname, i, sc.n_iterations, loss))
    except Exception as exc:
        return Cell(bname, "error", f"{type(exc).__name__}: {exc}", time.perf_counter() - t0)
    seconds = time.perf_counter() - t0
    compile_seconds = result.meta.get("compile_seconds") if isinstance(getattr(result, "meta", None), dict) else None
    compile_seconds = None if compile_seconds is None else float(compile_seconds)
    results[bname] = result
    try:
        cmp = compare_results(sc, ref_result, result)
    except Exception as exc:  # a malformed Result is the backend's error
        return Cell(bname, "error", f"result could not be compared: {type(exc).__name__}: {exc}", seconds,
                    compile_seconds=compile_seconds)
    return Cell(bname, cmp.status, cmp.summary(), seconds, cmp, compile_seconds)


# ------------------------------------------------------------------------------------------ workers
class _QueueProgress(Progress):
    """A worker's progress, sent to the parent process (which owns the display)."""

    def __init__(self, channel: Any):
        self.channel = channel

    def build(self, scenario: str, backend: str, key: str) -> None:
        self.channel.put(("build", scenario, backend, key))

    def begin(self, scenario: str, backend: str) -> None:
        self.channel.put(("begin", scenario, backend))

    def iteration(self, scenario: str, backend: str, index: int, n_iterations: int, loss: float) -> None:
        self.channel.put(("iteration", scenario, backend, index, n_iterations, float(loss)))

    def end(self, scenario: str, cell: Cell) -> None:
        self.channel.put(("end", scenario, cell))


def _worker_main(tasks: Any, channel: Any, names: list[str], available: dict[str, dict[str, Any]],
                 extra: dict[str, Any], record_weight_events: bool, on_scenario: Callable[..., None] | None) -> None:
    """Worker process: run the scenarios it is sent until it gets None."""
    progress = _QueueProgress(channel)
    while True:
        job = tasks.get()
        if job is None:
            return
        sname, build_keys, unbuilt = job
        try:
            out = _run_scenario(sname, names, available, extra, build_keys, unbuilt, record_weight_events, progress,
                                on_scenario)
        except BaseException as exc:  # anything else is a bug of the runner: report it as the cells' error
            out = _crashed(sname, names, f"validation worker failed: {type(exc).__name__}: {exc}")
        channel.put(("done", sname, out))


def _crashed(sname: str, names: Sequence[str], reason: str) -> ScenarioOutcome:
    out = ScenarioOutcome(name=sname, reference={"status": "error", "reason": reason})
    out.cells = {b: Cell(b, "error", reason) for b in names}
    return out


def _picklable(*objects: Any) -> bool:
    try:
        pickle.dumps(objects)
    except Exception:
        return False
    return True


class _Pool:
    """``jobs`` worker processes fed one scenario at a time by the plan."""

    def __init__(self, jobs: int, args: tuple[Any, ...]):
        self.ctx = mp.get_context("spawn")
        self.channel = self.ctx.Queue()
        self.args = args
        self.workers: dict[int, tuple[Any, Any]] = {}  # id -> (process, task queue)
        self.busy: dict[int, str] = {}  # id -> scenario
        self.last: dict[int, str | None] = {}
        self.next_id = 0
        for _ in range(jobs):
            self.spawn()

    def spawn(self) -> int:
        wid = self.next_id
        self.next_id += 1
        tasks = self.ctx.Queue()
        proc = self.ctx.Process(target=_worker_main, args=(tasks, self.channel, *self.args), daemon=True,
                                name=f"eprop-validate-{wid}")
        proc.start()
        self.workers[wid] = (proc, tasks)
        self.last[wid] = None
        return wid

    def idle(self) -> list[int]:
        return [w for w in self.workers if w not in self.busy]

    def send(self, wid: int, job: tuple[Any, ...]) -> None:
        self.busy[wid] = job[0]
        self.last[wid] = job[0]
        self.workers[wid][1].put(job)

    def dead(self) -> list[tuple[int, str, int | None]]:
        """Busy workers that died: (id, scenario, exit code); each is replaced by a new worker."""
        out = []
        for wid, (proc, _) in list(self.workers.items()):
            if wid in self.busy and not proc.is_alive():
                out.append((wid, self.busy.pop(wid), proc.exitcode))
                del self.workers[wid]
                self.spawn()
        return out

    def worker_of(self, sname: str) -> int | None:
        return next((w for w, s in self.busy.items() if s == sname), None)

    def close(self) -> None:
        for proc, tasks in self.workers.values():
            tasks.put(None)
        for proc, _ in self.workers.values():
            proc.join(timeout=30)
            if proc.is_alive():
                proc.terminate()


def _run_pool(jobs: int, plan: _Plan, scen_names: list[str], names: list[str], available: dict[str, dict[str, Any]],
              extra: dict[str, Any], record_weight_events: bool, progress: Progress,
              on_scenario: Callable[..., None] | None) -> dict[str, ScenarioOutcome]:
    pool = _Pool(jobs, (names, available, extra, record_weight_events, on_scenario))
    remaining = list(scen_names)
    outcomes: dict[str, ScenarioOutcome] = {}
    try:
        while remaining or pool.busy:
            for wid in pool.idle():
                if not remaining:
                    break
                sname = plan.pick(remaining, pool.last[wid], wid)
                if sname is None:
                    break
                remaining.remove(sname)
                unbuilt = {b for b, _ in plan.unbuilt(sname)}
                pool.send(wid, (sname, plan.keys.get(sname, {}), unbuilt))
            try:
                msg = pool.channel.get(timeout=1.0)
            except queue.Empty:
                for wid, sname, code in pool.dead():
                    reason = f"validation worker process died (exit code {code}) while running this scenario"
                    outcomes[sname] = _crashed(sname, names, reason)
                    for cell in outcomes[sname].cells.values():
                        progress.end(sname, cell)
                    plan.finished(sname)
                continue
            kind = msg[0]
            if kind == "done":
                _, sname, out = msg
                outcomes[sname] = out
                wid = pool.worker_of(sname)
                if wid is not None:
                    del pool.busy[wid]
                plan.finished(sname)
            else:
                getattr(progress, kind)(*msg[1:])
    finally:
        pool.close()
    return outcomes


# ------------------------------------------------------------------------------------------ the run
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
        while the results are still in memory (the report draws its plots here); with ``jobs > 1``
        it runs in the worker process, and what it adds to ``outcome`` comes back with it.
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
    plan = _plan(scen_names, names, available, extra, record_weight_events)
    jobs = min(int(jobs), len(scen_names))
    if jobs > 1 and not _picklable(extra, on_scenario):
        progress.note("one process: the extra backends or the on_scenario hook cannot be sent to worker processes")
        jobs = 1
    progress.start(len(scen_names) * len(names), len(plan.todo))

    if jobs > 1:
        outcomes = _run_pool(jobs, plan, scen_names, names, available, extra, record_weight_events, progress,
                             on_scenario)
    else:
        outcomes = {}
        remaining, last = list(scen_names), None
        while remaining:
            sname = plan.pick(remaining, last, 0)
            remaining.remove(sname)
            unbuilt = {b for b, _ in plan.unbuilt(sname)}
            outcomes[sname] = _run_scenario(sname, names, available, extra, plan.keys.get(sname, {}), unbuilt,
                                            record_weight_events, progress, on_scenario)
            plan.finished(sname)
            last = sname
    progress.finish()
    return SuiteOutcome(backends=described, scenarios=[outcomes[s] for s in scen_names], required=list(require),
                        started=started, seconds=time.perf_counter() - t_start, jobs=jobs)
