"""Time per training iteration of the ``nestml`` backend next to ``nest-builtin`` (target ratio <= 1.0).

Both backends run the same task in fresh processes (:func:`eprop_plugins.bench.measure`), alternating,
so start-up (building or loading the module, network construction) is excluded and reported
separately.  ``eprop bench`` shows the same numbers for more backends (docs/benchmarks.rst).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, Sequence

import statistics

from eprop_plugins.bench import measure

__all__ = ["benchmark", "main"]


def benchmark(task: str = "sine", family: str = "original", iterations: int = 6, repeats: int = 1,
              threads: int = 1) -> dict[str, Any]:
    """Seconds per iteration of ``nestml`` and ``nest-builtin`` (median over the repeats) and their ratio.

    Parameters
    ----------
    task : {'sine', 'evidence'}
    family : {'original', 'event'}
    iterations : int
        Iterations per run; the first is not timed (it contains start-up work).
    repeats : int
        Runs per backend (fresh processes), alternating; the median of the runs' medians is kept.
    threads : int
        NEST threads of the ``nestml`` run (``nest-builtin``'s ``run`` has no thread option: 1).

    Returns
    -------
    dict
        ``nestml_s``, ``nest_builtin_s`` (seconds per iteration, median), ``spread_s`` per backend
        (min, max), ``ratio`` (nestml / nest-builtin), ``startup_s`` per backend (median) and the raw rows.

    Raises
    ------
    RuntimeError
        A backend failed (its error message is included).
    """
    rows: dict[str, list[dict]] = {"nestml": [], "nest-builtin": []}
    for _ in range(repeats):
        for name in rows:
            row = measure({"backend": name, "task": task, "family": family, "iterations": iterations,
                           "threads": threads if name == "nestml" else 1})
            if "error" in row:
                raise RuntimeError(f"benchmark: backend {name} failed: {row['error']}")
            rows[name].append(row)
    best = {name: statistics.median(r["per_iteration_s"] for r in runs) for name, runs in rows.items()}
    return {
        "task": task,
        "family": family,
        "iterations": iterations,
        "nestml_s": best["nestml"],
        "nest_builtin_s": best["nest-builtin"],
        "ratio": best["nestml"] / best["nest-builtin"],
        "spread_s": {name: (min(r["per_iteration_s"] for r in runs), max(r["per_iteration_s"] for r in runs))
                     for name, runs in rows.items()},
        "startup_s": {name: statistics.median(r["startup_s"] for r in runs) for name, runs in rows.items()},
        "rows": rows,
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Print the benchmark; exit status 0."""
    p = argparse.ArgumentParser(prog="python -m nest_models.benchmark", description=__doc__.splitlines()[0])
    p.add_argument("--task", default="sine", choices=["sine", "evidence"])
    p.add_argument("--family", default="original", choices=["original", "event"])
    p.add_argument("--iterations", type=int, default=6)
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--threads", type=int, default=1, help="NEST threads of the nestml run")
    ns = p.parse_args(argv)
    r = benchmark(ns.task, ns.family, ns.iterations, ns.repeats, ns.threads)
    print(f"{ns.task}/{ns.family}: nestml {r['nestml_s']:.4f} s/iteration, nest-builtin {r['nest_builtin_s']:.4f} "
          f"s/iteration, ratio {r['ratio']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
