"""Resident memory of the validation's processes: what each cell leaves as its process's peak.

A validation run checks its own memory goal (:data:`GOAL_MB`): every cell records the peak resident
set size of the process that ran it (``resource.getrusage(RUSAGE_SELF).ru_maxrss``, the number
``/usr/bin/time -v`` reports for that process) and of that process's finished child processes
(compilers, Brian2 standalone binaries: ``RUSAGE_CHILDREN``), both as they stand when the cell
ends.  The peak only grows, so the cell that raised it (``rss_growth_mb > 0``) is the one whose
arrays, simulator state or compiler made it; :func:`largest` names the largest process of the run
and that cell.  The peak is read, never reset, so an outside measurement of the run sees the same.

Between cells :func:`release` returns freed memory to the operating system (a cell's large
arrays would otherwise stay resident as free heap under the next cell's).

All sizes are in MB (10^6 bytes), as the goal is stated.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import os
import resource
import sys
from typing import Any, Iterable

__all__ = ["GOAL_MB", "LARGE_SIZE", "current_mb", "freeze_survivors", "is_large", "largest", "size_of", "own_peak_mb", "peak_mb", "children_peak_mb",
           "release"]

#: The goal for the largest process of a validation run (README command 1): 2 GB.
GOAL_MB = 2000.0

#: a scenario is large when ``n_steps * (n_in + n_rec + n_out)`` reaches this (the long tasks are
#: 1e6-1.6e6, the hand-made scenarios below 2e4): its backend cells run in processes of their own
#: (:mod:`validation.isolated`) and the large scenarios start first
#: (:class:`validation.builds.BuildPlan`)
LARGE_SIZE = 200_000


def size_of(sc: Any) -> float:
    """The size :data:`LARGE_SIZE` is measured in: ``n_steps * (n_in + n_rec + n_out)`` of a validated scenario."""
    return float(sc.n_steps * (sc.n_in + sc.n_rec + sc.n_out))


def is_large(sc: Any) -> bool:
    """Whether the validated scenario ``sc`` is large (:data:`LARGE_SIZE`)."""
    return size_of(sc) >= LARGE_SIZE


#: ``ru_maxrss`` unit in bytes: kibibytes on Linux, bytes on macOS.
_MAXRSS_UNIT = 1 if sys.platform == "darwin" else 1024


def _mb(n_bytes: float) -> float:
    return round(n_bytes / 1e6, 1)


def peak_mb() -> float:
    """Peak resident set size of this process so far (MB)."""
    return _mb(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * _MAXRSS_UNIT)


def own_peak_mb() -> float:
    """Peak resident set size of this process since it started its program (MB).

    ``VmHWM`` of ``/proc/self/status`` where there is one: ``ru_maxrss`` of a process started by
    fork and exec also counts what its parent held at the fork.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return _mb(int(line.split()[1]) * 1024)
    except (OSError, ValueError, IndexError):
        pass
    return peak_mb()


def children_peak_mb() -> float:
    """Largest peak resident set size among this process's finished child processes (MB; 0: none)."""
    return _mb(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * _MAXRSS_UNIT)


def current_mb() -> float | None:
    """Resident set size of this process now (MB), from ``/proc/self/statm`` (None where there is none)."""
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return _mb(pages * os.sysconf("SC_PAGE_SIZE"))


def _libc() -> Any:
    name = ctypes.util.find_library("c")
    try:
        lib = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    return lib if lib is not None and hasattr(lib, "malloc_trim") else None


_LIBC = _libc() if sys.platform.startswith("linux") else None


def release() -> None:
    """Collect garbage and give the freed heap back to the operating system (glibc ``malloc_trim``).

    Large NumPy arrays freed by a cell may sit in the C heap below live objects; without the trim
    they stay resident and add to the next cell's peak.
    """
    gc.collect()
    if _LIBC is not None:
        _LIBC.malloc_trim(0)


def freeze_survivors() -> None:
    """Collect garbage, then exclude everything still alive from later collections (``gc.freeze``).

    Brian2 collects garbage at every ``Network.run`` and :func:`release` after every cell; a worker
    that has imported every simulator and run a few scenarios holds 230 000-260 000 objects
    (modules, SymPy's and Brian2's caches), and each collection took 0.11-0.13 s, about 2 s per
    scenario.  Called after each scenario, when its networks and results are gone, it leaves the
    collector the objects of the next scenario only.  Objects frozen here are still freed when their
    last reference goes; only a reference cycle among them would stay (none is large: the runs'
    arrays belong to networks created and dropped within a cell).
    """
    gc.collect()
    gc.freeze()


def largest(scenarios: Iterable[Any], main_peak_mb: float | None = None) -> dict[str, Any]:
    """The run's largest process and the cell that made its peak.

    Parameters
    ----------
    scenarios : iterable of ScenarioOutcome
        The run's scenarios: cells with ``worker_peak_mb``, ``rss_growth_mb``, ``child_peak_mb``,
        ``isolated`` and ``peak_rss_mb``,
        and the scenario's ``memory`` after its figures (``peak_rss_mb``, ``rss_growth_mb``).
    main_peak_mb : float, optional
        Peak of the process that started the workers (with one process, the cells' process).

    Returns
    -------
    dict
        ``largest_process_mb`` (the largest of the processes that ran cells, their own processes
        included, and the main process); ``scenario`` and ``backend`` of the cell that raised it to
        its peak (``"(figures)"``: the scenario's plots; None: the main process, or no cell ran);
        ``largest_worker_mb``, ``main_process_mb``; ``largest_child_mb``, the largest peak of their
        other child processes (compilers, standalone binaries) -- an upper bound only, since a
        process forked from a large one counts that one's size, hence not in the goal; ``goal_mb``
        and ``within_goal``.
    """
    steps: list[tuple[float, float, str, str]] = []  # (peak, growth, scenario, backend)
    child = 0.0
    for s in scenarios:
        for c in s.cells.values():
            if c.worker_peak_mb is not None:
                steps.append((c.worker_peak_mb, c.rss_growth_mb or 0.0, s.name, c.backend))
                child = max(child, c.child_peak_mb or 0.0)
            if c.isolated and c.peak_rss_mb is not None:  # a process of its own: all of its peak is the cell's
                steps.append((c.peak_rss_mb, c.peak_rss_mb, s.name, c.backend))
        if s.memory.get("peak_rss_mb") is not None:
            steps.append((s.memory["peak_rss_mb"], s.memory.get("rss_growth_mb") or 0.0, s.name, "(figures)"))
    worker = max((p for p, _, _, _ in steps), default=0.0)
    # the peak only grows: the first step that reached the largest value is the one that raised it
    raised = next(((sname, b) for p, g, sname, b in steps if p == worker and g > 0), (None, None))
    main = float(main_peak_mb or 0.0)
    top = max(worker, main)
    scenario, backend = raised if top == worker else (None, None)
    return {"largest_process_mb": top, "scenario": scenario, "backend": backend, "largest_worker_mb": worker,
            "main_process_mb": main, "largest_child_mb": child, "goal_mb": GOAL_MB,
            "within_goal": bool(top < GOAL_MB)}
