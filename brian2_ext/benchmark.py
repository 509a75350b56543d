"""Time per training iteration of the Brian2 backends (not a test: a measurement)."""

from __future__ import annotations

from eprop_plugins.tasks import make_task

from .runner import run_scenario

__all__ = ["benchmark"]


def benchmark(task: str = "sine", iterations: int = 6, mode: str = "standalone", threads: int = 1) -> dict:
    """Seconds per iteration of ``task`` (original family), without per-step recording.

    All iterations are one simulation; the time per iteration is the simulation time divided by the
    iterations (loading the inputs and writing the results of a standalone run included).  The build
    is reported separately (``build_seconds``: network construction and code generation, and on a
    first use the compilation, also given as ``compile_seconds``).

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
        ``seconds_per_iteration``, ``build_seconds``, ``compile_seconds``, ``losses``, ``mode``, ``task``.
    """
    sc = make_task(task, family="original", iterations=max(2, iterations))
    res = run_scenario(sc, mode=mode, record=False, record_weight_events=False, threads=threads,
                       backend="brian2-standalone" if mode == "standalone" else "brian2")
    return {"task": task, "mode": mode, "seconds_per_iteration": res.meta["seconds_per_iteration"],
            "build_seconds": res.meta["build_seconds"], "compile_seconds": res.meta["compile_seconds"],
            "losses": list(res.losses)}
