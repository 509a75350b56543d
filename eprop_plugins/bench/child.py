"""One benchmark measurement in a fresh child process: time per iteration, start-up and peak memory.

Every measurement runs in its own ``spawn`` process, so that no backend profits from another's
imports, loaded extension modules or heap, and the peak resident set size (``ru_maxrss``) is that
of this run alone.  The parent builds the scenario and sends it (pickled) with the job.
"""

from __future__ import annotations

import multiprocessing as mp
import queue as queue_module
import resource
import statistics
import time
import tracemalloc
from typing import Any, Callable

import numpy as np

from .machine import load_average
from .scenarios import job_scenario

__all__ = ["measure", "time_backend", "peak_mb", "ON_ROW", "NO_RECORDERS", "NO_RECORDERS_FLUSH", "FLUSH_MS", "PYTHON_BACKENDS", "DEFAULT_TIMEOUT"]

#: ``nest-builtin`` with the recurrent multimeters and the spike recorder switched off (``stop = 0``):
#: the losses come from the readout multimeter as usual.  A diagnostic of the memory section: what
#: NEST's e-prop needs without the per-step recording that ``nest-builtin`` always makes.
NO_RECORDERS = "nest-builtin/no-recorders"
#: :data:`NO_RECORDERS` with NEST's flush events every :data:`FLUSH_MS` instead of once per sequence
#: (event family; the numbers do not change): the e-prop history a neuron keeps for a silent
#: presynaptic partner then spans at most that long, not the whole sequence
NO_RECORDERS_FLUSH = "nest-builtin/no-recorders/flush"
#: ms between flush events of :data:`NO_RECORDERS_FLUSH`
FLUSH_MS = 100.0
#: pure NumPy/Python computations: their memory is also measured with ``tracemalloc`` (exact, no baseline)
PYTHON_BACKENDS = ("bptt", "reference")
#: seconds a child may take before it is stopped and its row records the timeout
DEFAULT_TIMEOUT = 1800.0
#: called with each finished row (``eprop bench`` saves its partial report there)
ON_ROW: list[Callable[[dict], None]] = []


def _status_mb(field: str) -> float | None:
    """A ``/proc/self/status`` memory field (``VmRSS``, ``VmHWM``) in MB, None where there is none."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024.0
    except (OSError, ValueError, IndexError):
        pass
    return None


def _reset_peak() -> bool:
    """Reset this process's peak RSS to its current RSS (Linux ``clear_refs`` 5); False where unsupported."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_mb() -> float:
    """Peak RSS (MB) of this process (since the last reset) and of the children it waited for (a standalone binary).

    ``VmHWM`` rather than ``ru_maxrss``: a spawned child's ``ru_maxrss`` keeps the peak of the
    parent's pages it shared before ``exec``, which would hide a small run under the parent's size.
    A child's own ``ru_maxrss`` (``RUSAGE_CHILDREN``) has the same floor, the RSS of this process at
    the fork, which is below this process's peak: the maximum of both stays right.
    """
    own = _status_mb("VmHWM")
    if own is None:
        own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    return max(own, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0)


def _import_simulator(backend: str) -> None:
    """Import what the backend will use, so that the memory baseline contains it."""
    if backend == "bptt":
        from .. import bptt  # noqa: F401
        return
    from .. import backends

    backends.get(backend.split("/")[0])
    if backend.startswith("nest"):
        import nest  # noqa: F401
    elif backend.startswith("brian2"):
        import brian2  # noqa: F401


def _run_nest_wiring(sc, on_iteration, *, threads: int = 1, recorders: bool = True,
                     flush_interval: float | None = None):
    """``nest-builtin``'s network through the public NEST wiring, with a thread count or without recorders.

    Without recorders only the readout multimeter records (the losses need it); the Result is not
    collected.  ``flush_interval``: ms between NEST's flush events (default one sequence).
    Returns ``(None, losses)``.
    """
    from ..backends import nest_builtin
    from ..backends import nest_wiring as nw

    nest_builtin.check()
    sc = sc.validated()
    losses: list[float] = []

    def step(i: int, loss: float) -> None:
        losses.append(float(loss))
        on_iteration(i, loss)

    with nw.nest_errors("nest-builtin", sc.name):
        nw.reset_kernel(sc, threads=threads)
        net = nw.create_network(sc, nw.layout(sc.family), record_weight_events=False,
                                flush_interval=flush_interval)
        if not recorders:
            for mm, _names, _nodes in net.multimeters:
                mm.set(stop=0.0)
            net.spike_recorder.set(stop=0.0)
        nw.simulate(net, sc, step)
    return None, losses


def _run(job: dict, sc, on_iteration):
    """One run of the job's backend, losses only (``traces=False``); ``threads`` where the backend takes it."""
    backend, threads = job["backend"], job.get("threads", 1)
    if backend == "bptt":
        from .. import bptt

        net, x, target = bptt.network_from_scenario(sc)
        g = bptt.bptt_gradient(net, x, target)
        on_iteration(0, g["loss"])
        job["history_mb"] = g["history_bytes"] / 1e6
        return None, [g["loss"]]
    if backend == NO_RECORDERS:
        return _run_nest_wiring(sc, on_iteration, recorders=False)
    if backend == NO_RECORDERS_FLUSH:
        return _run_nest_wiring(sc, on_iteration, recorders=False, flush_interval=FLUSH_MS)
    from .. import backends

    if threads != 1 and backend == "nestml":
        res = backends.get(backend).run(sc, record_weight_events=False, on_iteration=on_iteration, threads=threads)
    elif "threads" in job and backend == "nest-builtin":  # its run() has no thread option: 1 and 2 alike here
        return _run_nest_wiring(sc, on_iteration, threads=threads)
    elif threads != 1 and backend == "brian2-standalone":
        from brian2_ext.runner import run_scenario

        res = run_scenario(sc, mode="standalone", record=False, record_weight_events=False,
                           on_iteration=on_iteration, threads=threads, backend=backend)
    elif threads != 1:
        raise ValueError(f"backend {backend!r}: no thread count option")
    else:
        res = backends.run(backend, sc, traces=False, on_iteration=on_iteration)
    return res, [float(v) for v in res.losses]


def _result_mb(res) -> float:
    """MB of the arrays a Result holds (traces, weight snapshots, weight events): the recording."""
    if res is None:
        return 0.0
    total = 0
    for group in ("traces", "weights", "weight_events"):
        for v in (getattr(res, group, None) or {}).values():
            total += np.asarray(v).nbytes
    return total / 1e6


def _child(job: dict, queue) -> None:
    sc = job.pop("scenario", None)  # built by the parent: the task's random draws are not the run's memory
    row: dict[str, Any] = dict(job)
    row["load_average"] = load_average()
    traced = job["backend"] in PYTHON_BACKENDS
    try:
        _import_simulator(job["backend"])
        sc = job_scenario(job) if sc is None else sc
        # the baseline: imports and the received scenario, resident now; the peak counts from here
        row["peak_reset"] = _reset_peak()
        row["baseline_rss_mb"] = _status_mb("VmRSS") if row["peak_reset"] else peak_mb()
        stamps: list[float] = []
        if traced:
            tracemalloc.start()
            traced_start = tracemalloc.get_traced_memory()[0]
        t0 = time.perf_counter()
        res, losses = _run(job, sc, lambda i, loss: stamps.append(time.perf_counter()))
        total = time.perf_counter() - t0
        if traced:
            row["traced_peak_mb"] = (tracemalloc.get_traced_memory()[1] - traced_start) / 1e6
            tracemalloc.stop()
    except Exception as exc:  # reported in the output, never hidden
        row["error"] = f"{type(exc).__name__}: {' '.join(str(exc).split())[:2000]}"
        queue.put(row)
        return
    if "history_mb" in job:
        row["history_mb"] = job["history_mb"]
    per_it = [b - a for a, b in zip(stamps, stamps[1:])]
    meta = dict(getattr(res, "meta", None) or {})
    startup = (stamps[0] - t0) if stamps else None
    if "seconds_per_iteration" in meta:  # one run for all iterations: the stamps come after it
        per_it = [float(meta["seconds_per_iteration"])]
        startup = meta.get("build_seconds", startup)
    elif len(stamps) > 1 and stamps[-1] - stamps[0] < 0.01 * total:
        # every callback after one run of all iterations, no timing of its own (spinnaker-host):
        # the run without compilation / iterations, an upper bound that includes its set-up
        per_it = [(total - float(meta.get("compile_seconds") or 0.0)) / len(stamps)]
        row["per_iteration_from"] = "(run time - compile time) / iterations: callbacks come after the run"
    if job["backend"] == "bptt":
        per_it = [total]
    seq_steps = int(round(float(sc.network["sequence"]) / float(sc.dt)))
    per_iteration = statistics.median(per_it) if per_it else None
    row.update({
        "scenario_name": sc.name,
        "per_iteration_s": per_iteration,
        "per_iteration_all_s": per_it,
        "startup_s": startup,
        "compile_s": meta.get("compile_seconds", 0.0 if res is None else None),
        "cached": meta.get("cached", True if res is None else None),
        "total_s": total,
        "sequence_steps": seq_steps,
        "n_rec": sum(p.size for p in sc.populations),
        "simulated_s_per_iteration": seq_steps * float(sc.dt) * 1e-3 * getattr(sc, "iteration_sequences", 1),
        "peak_rss_mb": peak_mb(),
        "peak_self_mb": _status_mb("VmHWM"),
        "peak_children_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0,
        "result_mb": _result_mb(res),
        "losses": losses,
        "load_average_end": load_average(),
    })
    row["memory_mb"] = row["peak_rss_mb"] - row["baseline_rss_mb"]
    if per_iteration is not None:
        row["s_per_simulated_s"] = per_iteration / row["simulated_s_per_iteration"]
    queue.put(row)


def measure(job: dict, timeout: float = DEFAULT_TIMEOUT) -> dict:
    """Run one job in a fresh process and return its row (``error`` set if it failed, crashed or timed out).

    Parameters
    ----------
    job : dict
        ``backend`` (a backend name, ``"bptt"`` or :data:`NO_RECORDERS`), ``task``, ``family``,
        ``iterations``, and optionally ``sequence_steps``, ``n_rec`` (resized dense sine),
        ``n_rec`` with ``density`` (sparse scaling network), ``threads``.
    timeout : float
        Seconds; a child still running then is stopped (its row says so).

    Returns
    -------
    dict
        The job's fields and the measured numbers (docs/benchmarks.rst), or ``error``.  A failure of
        the child (an exception, a crash such as running out of memory, a timeout) never raises here.
    """
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    try:
        scenario = job_scenario(job)
    except Exception as exc:  # a scenario that cannot be built is the job's error
        row = {**job, "error": f"{type(exc).__name__}: {exc}"}
        for hook in ON_ROW:
            hook(row)
        return row
    proc = ctx.Process(target=_child, args=({**job, "scenario": scenario}, q))
    del scenario
    t0 = time.monotonic()
    proc.start()
    row = None
    try:
        while row is None:
            try:
                row = q.get(timeout=2.0)
            except queue_module.Empty:
                if not proc.is_alive():
                    try:
                        row = q.get(timeout=2.0)
                    except queue_module.Empty:
                        row = {**job, "error": f"the measuring process ended with exit code {proc.exitcode} "
                                               "without a result (a negative code is the signal that ended it; "
                                               "-9: killed, often for lack of memory)"}
                elif time.monotonic() - t0 > timeout:
                    proc.terminate()
                    row = {**job, "error": f"timeout: still running after {timeout:.0f} s, stopped"}
    finally:
        proc.join(30)
        if proc.is_alive():
            proc.kill()
            proc.join()
    row["wall_s"] = time.monotonic() - t0
    for hook in ON_ROW:
        hook(row)
    return row


def time_backend(backend: str, task: str = "sine", family: str = "original", iterations: int = 6,
                 sequence_steps: int | None = None) -> dict:
    """Run one backend in a fresh process; its row: ``per_iteration_s``, ``startup_s`` (s), ``peak_rss_mb``."""
    return measure({"backend": backend, "task": task, "family": family, "iterations": iterations,
                    "sequence_steps": sequence_steps})
