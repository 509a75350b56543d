"""Time per training iteration of the Brian2 backends (not a test: a measurement)."""

from __future__ import annotations

import time

__all__ = ["benchmark"]


def benchmark(task: str = "sine", iterations: int = 6, mode: str = "standalone", threads: int = 1) -> dict:
    """Seconds per iteration of ``task`` (original family), without per-step recording.

    The first iteration is not counted (it includes loading); a standalone build is reported
    separately (``build_seconds``: zero work on a cache hit beyond code generation).

    Parameters
    ----------
    task : {'sine', 'evidence'}
        ``sine`` is 100 inputs, 100 LIF neurons, 1 readout, 1000 steps per iteration.
    iterations : int
        Iterations to run (>= 2).
    mode : {'standalone', 'cython', 'numpy'}
    threads : int
        cpp_standalone threads.

    Returns
    -------
    dict
        ``seconds_per_iteration``, ``build_seconds``, ``losses``, ``mode``, ``task``.
    """
    from eprop_plugins.tasks import make_task

    from .runner import run_scenario

    sc = make_task(task, family="original", iterations=max(2, iterations))
    stamps: list[float] = []
    res = run_scenario(sc, mode=mode, record=False, record_weight_events=False, threads=threads,
                       on_iteration=lambda i, loss: stamps.append(time.perf_counter()),
                       backend="brian2-standalone" if mode == "standalone" else "brian2")
    per_it = (stamps[-1] - stamps[0]) / (len(stamps) - 1)
    return {"task": task, "mode": mode, "seconds_per_iteration": per_it,
            "build_seconds": res.meta["build_seconds"], "losses": list(res.losses)}
