"""``eprop bench``: time per training iteration of several backends, measured in the same run.

Time per iteration is measured between consecutive ``on_iteration`` callbacks, so start-up work
(imports, network construction, compilation or loading a cached build) is excluded and reported
separately.  A backend that simulates all iterations in one run and calls ``on_iteration`` afterwards
(``brian2-standalone``) reports ``Result.meta["seconds_per_iteration"]`` (run time / iterations,
build and load excluded), which is preferred when present.  Backends whose ``run`` accepts
``record`` are asked for losses only (``record=False``).  Memory is the peak resident set size of a child process per backend.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import resource
import statistics
import time
from pathlib import Path

__all__ = ["add_arguments", "main", "time_backend"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--task", default="sine", choices=["sine", "evidence"])
    p.add_argument("--family", default="original", choices=["original", "event"])
    p.add_argument("--backends", nargs="+", default=["reference", "nest-builtin", "brian2-standalone", "nestml"])
    p.add_argument("--iterations", type=int, default=6, help="iterations per backend (the first is not timed)")
    p.add_argument("--sequence-steps", type=int, default=None, help="override the sequence length (steps)")
    p.add_argument("--out", default=None, help="write bench.json here")


def _child(backend: str, task: str, family: str, iterations: int, sequence_steps, queue) -> None:
    from . import backends
    from .tasks import make_task

    kwargs = {"family": family, "iterations": iterations}
    if sequence_steps:
        kwargs["sequence_steps"] = sequence_steps
    sc = make_task(task, **kwargs)
    stamps: list[float] = []
    t0 = time.perf_counter()
    try:
        res = backends.run(backend, sc, traces=False, on_iteration=lambda i, loss: stamps.append(time.perf_counter()))
    except Exception as exc:
        queue.put({"backend": backend, "error": f"{type(exc).__name__}: {exc}"})
        return
    per_it = [b - a for a, b in zip(stamps, stamps[1:])]
    per_iteration = statistics.median(per_it) if per_it else None
    startup = (stamps[0] - t0) if stamps else None
    meta = getattr(res, "meta", None) or {}
    if "seconds_per_iteration" in meta:  # one run for all iterations: the stamps come after it
        per_iteration = float(meta["seconds_per_iteration"])
        per_it = [per_iteration] * max(len(stamps), 1)
        startup = meta.get("build_seconds", startup)
    queue.put({
        "backend": backend,
        "startup_s": startup,
        "per_iteration_s": per_iteration,
        "iterations_timed": len(per_it),
        # the child's own peak and that of the processes it waited for (a standalone binary)
        "peak_rss_mb": max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                           resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024.0,
    })


def time_backend(backend: str, task: str = "sine", family: str = "original", iterations: int = 6,
                 sequence_steps: int | None = None) -> dict:
    """Run one backend in a fresh process and return its timings (seconds) and peak memory (MB)."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(backend, task, family, iterations, sequence_steps, queue))
    proc.start()
    result = queue.get()
    proc.join()
    return result


def main(args: argparse.Namespace) -> int:
    rows = []
    print(f"benchmark: {args.task}, {args.family} family, {args.iterations} iterations per backend (1 thread)")
    for name in args.backends:
        print(f"  running {name} ...", flush=True)
        rows.append(time_backend(name, args.task, args.family, args.iterations, args.sequence_steps))
    base = next((r for r in rows if r["backend"] == "nest-builtin" and r.get("per_iteration_s")), None)
    print(f"{'backend':<20} {'s/iteration':>12} {'vs nest-builtin':>16} {'start-up s':>11} {'peak MB':>9}")
    for r in rows:
        if "error" in r:
            print(f"{r['backend']:<20} failed: {r['error']}")
            continue
        ratio = r["per_iteration_s"] / base["per_iteration_s"] if base else float("nan")
        r["ratio_vs_nest_builtin"] = ratio
        print(f"{r['backend']:<20} {r['per_iteration_s']:>12.4f} {ratio:>16.2f} {r['startup_s']:>11.2f} "
              f"{r['peak_rss_mb']:>9.0f}")
    if args.out:
        Path(args.out).mkdir(parents=True, exist_ok=True)
        (Path(args.out) / "bench.json").write_text(json.dumps(rows, indent=1))
    return 0 if all("error" not in r for r in rows) else 1
