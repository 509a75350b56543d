"""``eprop bench``: time per iteration, peak memory against sequence length, scaling and threads.

Every measurement runs in a fresh child process (``spawn``), so no backend profits from another's
imports, loaded modules or memory.  Four sections (``--sections``; see docs/benchmarks.rst):

``iteration``
    Seconds per training iteration of each backend next to ``nest-builtin`` of the same family, in
    the same run, ``--repeats`` fresh processes each (median and spread).  Time per iteration is
    measured between consecutive ``on_iteration`` callbacks, so start-up (imports, network
    construction, compiling or loading a build) is excluded and reported apart.  A backend that
    simulates all iterations in one run (``brian2-standalone``) reports
    ``Result.meta["seconds_per_iteration"]``, which is used when present.
``memory``
    Peak resident set size of one iteration against the sequence length T, per backend and for the
    NumPy back-propagation-through-time baseline (:mod:`eprop_plugins.bptt`, full history).  Peak
    RSS of the child (and of the processes it waited for, e.g. a standalone binary) minus the peak
    RSS of the same child after its imports, with the scenario (built by the parent and received
    pickled, so that the task's random draws do not count).
``scaling``
    The sine task with 100 … N recurrent neurons (dense connectivity): seconds per simulated second
    and peak memory.
``threads``
    NEST ``local_num_threads`` (``nestml``) and Brian2 standalone ``openmp_threads``
    (``brian2-standalone``) 1 and 2: time and whether the losses are identical.

Backends run with ``traces=False`` (losses only) where their ``run`` supports it (the Brian2
backends); the NEST backends record their per-step traces regardless, which is part of what their
memory numbers measure.  Output: ``bench.json`` (fields in docs/benchmarks.rst) and PNG plots.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing as mp
import os
import platform
import resource
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["add_arguments", "main", "measure", "scaled_sine", "machine", "time_backend", "SCHEMA", "SPARSE_NOTE"]

SCHEMA = "eprop-bench/2"
SPARSE_NOTE = ("5 000 recurrent neurons at 10 % connectivity wait for sparse scenarios: every scenario is dense "
               "today, and a dense 5 000-neuron network (25 M recurrent weights per copy) is not what the goal means")
DEFAULT_BACKENDS = ["reference", "nest-builtin", "brian2-standalone", "nestml"]
SECTIONS = ("iteration", "memory", "scaling", "threads")


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Options of ``eprop bench`` (``--backends`` etc. as before; sections and sizes added)."""
    p.add_argument("--task", default=None, choices=["sine", "evidence"], help="one task (default: sine and evidence)")
    p.add_argument("--family", default=None, choices=["original", "event"], help="one family (default: both)")
    p.add_argument("--backends", nargs="+", default=DEFAULT_BACKENDS)
    p.add_argument("--iterations", type=int, default=6, help="iterations per run (the first is not timed)")
    p.add_argument("--repeats", type=int, default=3, help="fresh processes per backend and task")
    p.add_argument("--sequence-steps", type=int, default=None, help="override the sine sequence length (steps)")
    p.add_argument("--sections", nargs="+", default=["iteration"], choices=list(SECTIONS) + ["all"])
    p.add_argument("--lengths", nargs="+", type=int, default=[1000, 10000, 100000], help="memory: T in steps")
    p.add_argument("--memory-backends", nargs="+", default=None,
                   help="memory: backends (default: those of --backends except reference; plus bptt always)")
    p.add_argument("--sizes", nargs="+", type=int, default=[100, 200, 500, 1000], help="scaling: recurrent neurons")
    p.add_argument("--scaling-backends", nargs="+", default=["nest-builtin", "nestml", "brian2-standalone"])
    p.add_argument("--threads-backends", nargs="+", default=["nestml", "brian2-standalone"],
                   choices=["nestml", "brian2-standalone"])
    p.add_argument("--quick", action="store_true", help="every section at small sizes (a few minutes)")
    p.add_argument("--out", default=None, help="directory for bench.json and the plots")


# ---------------------------------------------------------------------------------------------- scenarios

def scaled_sine(family: str, n_rec: int, iterations: int, seed: int = 7, sequence_steps: int | None = None):
    """The sine task with ``n_rec`` recurrent neurons (dense; weights drawn as the task's, scaled by 1/sqrt(n)).

    Parameters
    ----------
    family : {'original', 'event'}
    n_rec : int
        Recurrent neurons (the task has 100).
    iterations : int
    seed : int
        Seed of the new weight draws (the inputs and the target stay the task's).
    sequence_steps : int, optional
        Sequence length in steps (the task's default if None).
    """
    from .tasks import make_task
    from .tasks.common import float32_values

    sc = make_task("sine", family=family, iterations=iterations, sequence_steps=sequence_steps)
    if n_rec == sc.populations[0].size:
        return sc
    rng = np.random.RandomState(seed)
    n_in, n_out = sc.n_in, sc.n_out
    w_rec = float32_values(rng.randn(n_rec, n_rec) / np.sqrt(n_rec))  # the tasks' weights are float32 values
    np.fill_diagonal(w_rec, 0.0)
    pop = dataclasses.replace(sc.populations[0], size=n_rec)
    return dataclasses.replace(
        sc, name=f"{sc.name}-n{n_rec}", populations=[pop], record_synapses=[],
        w_in=float32_values(rng.randn(n_rec, n_in) / np.sqrt(n_in)), w_rec=w_rec,
        w_out=float32_values(rng.randn(n_out, n_rec) / np.sqrt(n_rec)),
        w_fb=float32_values(rng.randn(n_rec, n_out) / np.sqrt(n_rec)))


def _scenario(job: dict):
    from .tasks import make_task

    if job.get("n_rec"):
        return scaled_sine(job["family"], job["n_rec"], job["iterations"], sequence_steps=job.get("sequence_steps"))
    kwargs: dict[str, Any] = {"family": job["family"], "iterations": job["iterations"]}
    if job.get("sequence_steps") and job["task"] == "sine":
        kwargs["sequence_steps"] = job["sequence_steps"]
    return make_task(job["task"], **kwargs)


# ---------------------------------------------------------------------------------------------- child process

def _peak_mb() -> float:
    """Peak RSS (MB) of this process and of the children it waited for (a standalone binary)."""
    return max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
               resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024.0


def _import_simulator(backend: str) -> None:
    """Import what the backend will use, so that the memory baseline contains it."""
    if backend == "bptt":
        from . import bptt  # noqa: F401
        return
    from . import backends

    backends.get(backend)
    if backend.startswith("nest") or backend == "nestml":
        import nest  # noqa: F401
    elif backend.startswith("brian2"):
        import brian2  # noqa: F401


def _run(job: dict, sc, on_iteration):
    """One run of the job's backend with losses only where supported; ``threads`` where accepted."""
    backend, threads = job["backend"], job.get("threads", 1)
    if backend == "bptt":
        from . import bptt

        net, x, target = bptt.network_from_scenario(sc)
        g = bptt.bptt_gradient(net, x, target)
        on_iteration(0, g["loss"])
        return None, [g["loss"]]
    from . import backends

    if threads != 1 and backend == "nestml":
        res = backends.get(backend).run(sc, record_weight_events=False, on_iteration=on_iteration, threads=threads)
    elif threads != 1 and backend == "brian2-standalone":
        from brian2_ext.runner import run_scenario

        res = run_scenario(sc, mode="standalone", record=False, record_weight_events=False,
                           on_iteration=on_iteration, threads=threads, backend=backend)
    elif threads != 1:
        raise ValueError(f"backend {backend!r}: no thread count option")
    else:
        res = backends.run(backend, sc, traces=False, on_iteration=on_iteration)
    return res, [float(v) for v in res.losses]


def _child(job: dict, queue) -> None:
    sc = job.pop("scenario", None)  # built by the parent: the task's random draws are not the run's memory
    row: dict[str, Any] = dict(job)
    try:
        _import_simulator(job["backend"])
        row["baseline_rss_mb"] = _peak_mb()
        sc = _scenario(job) if sc is None else sc
        stamps: list[float] = []
        t0 = time.perf_counter()
        res, losses = _run(job, sc, lambda i, loss: stamps.append(time.perf_counter()))
        total = time.perf_counter() - t0
    except Exception as exc:  # reported in the output, never hidden
        row["error"] = f"{type(exc).__name__}: {exc}"
        queue.put(row)
        return
    per_it = [b - a for a, b in zip(stamps, stamps[1:])]
    meta = dict(getattr(res, "meta", None) or {})
    startup = (stamps[0] - t0) if stamps else None
    if "seconds_per_iteration" in meta:  # one run for all iterations: the stamps come after it
        per_it = [float(meta["seconds_per_iteration"])]
        startup = meta.get("build_seconds", startup)
    if job["backend"] == "bptt":
        per_it = [total]
    seq_steps = int(round(float(sc.network["sequence"]) / float(sc.dt)))
    per_iteration = statistics.median(per_it) if per_it else None
    row.update({
        "per_iteration_s": per_iteration,
        "per_iteration_all_s": per_it,
        "startup_s": startup,
        "compile_s": meta.get("compile_seconds"),
        "cached": meta.get("cached"),
        "total_s": total,
        "sequence_steps": seq_steps,
        "n_rec": sum(p.size for p in sc.populations),
        "simulated_s_per_iteration": seq_steps * float(sc.dt) * 1e-3 * getattr(sc, "iteration_sequences", 1),
        "peak_rss_mb": _peak_mb(),
        "peak_self_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        "peak_children_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0,
        "losses": losses,
    })
    row["memory_mb"] = row["peak_rss_mb"] - row["baseline_rss_mb"]
    if per_iteration is not None:
        row["s_per_simulated_s"] = per_iteration / row["simulated_s_per_iteration"]
    queue.put(row)


#: called with each finished row (``main`` saves the partial report there)
_ON_ROW: list = []


def measure(job: dict) -> dict:
    """Run one job in a fresh process and return its row (``error`` set if it failed).

    ``job``: ``backend`` (a backend name or ``"bptt"``), ``task``, ``family``, ``iterations``, and
    optionally ``sequence_steps``, ``n_rec`` (scaled sine), ``threads``.
    """
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=({**job, "scenario": _scenario(job)}, queue))
    proc.start()
    try:
        row = queue.get()
    finally:
        proc.join()
    for hook in _ON_ROW:
        hook(row)
    return row


def time_backend(backend: str, task: str = "sine", family: str = "original", iterations: int = 6,
                 sequence_steps: int | None = None) -> dict:
    """Run one backend in a fresh process; its row: ``per_iteration_s``, ``startup_s`` (s), ``peak_rss_mb``."""
    return measure({"backend": backend, "task": task, "family": family, "iterations": iterations,
                    "sequence_steps": sequence_steps})


# ---------------------------------------------------------------------------------------------- machine

def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def machine() -> dict[str, Any]:
    """CPU model, cores, memory, load average and versions of the simulators."""
    from importlib import metadata

    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gb = None
    try:
        mem_gb = round(int(Path("/proc/meminfo").read_text().split()[1]) / 1024 ** 2, 1)
    except (OSError, ValueError, IndexError):
        pass
    versions = {}
    for dist in ("eprop-plugins", "numpy", "nest-simulator", "nestml", "brian2", "pyNN"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = None
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gb": mem_gb, "python": platform.python_version(),
            "platform": platform.platform(), "versions": versions, "load_average_start": _load()}


# ---------------------------------------------------------------------------------------------- sections

def _summary(rows: list[dict], key: str = "per_iteration_s") -> dict[str, Any]:
    vals = [r[key] for r in rows if r.get(key) is not None]
    if not vals:
        return {"median": None, "min": None, "max": None, "n": 0}
    return {"median": statistics.median(vals), "min": min(vals), "max": max(vals), "n": len(vals)}


def _say(*parts) -> None:
    print(*parts, flush=True)


def section_iteration(backends: list[str], tasks: list[str], families: list[str], iterations: int,
                      repeats: int, sequence_steps: int | None, out: list[dict] | None = None) -> list[dict]:
    """One row per task, family and backend: medians and spreads over ``repeats`` fresh processes,
    ratio to ``nest-builtin`` (always run, first, alternating with the others)."""
    out = [] if out is None else out
    names = list(dict.fromkeys(["nest-builtin"] + list(backends)))  # nest-builtin always, first
    for task in tasks:
        for family in families:
            runs: dict[str, list[dict]] = {n: [] for n in names}
            for _ in range(repeats):  # alternate backends: load changes hit all alike
                for name in names:
                    runs[name].append(measure({"backend": name, "task": task, "family": family,
                                               "iterations": iterations, "sequence_steps": sequence_steps}))
            base = _summary(runs["nest-builtin"])["median"]
            for name in names:
                ok = [r for r in runs[name] if "error" not in r]
                s = _summary(ok)
                row = {"task": task, "family": family, "backend": name, "per_iteration_s": s,
                       "startup_s": _summary(ok, "startup_s"), "compile_s": [r.get("compile_s") for r in ok],
                       "peak_rss_mb": _summary(ok, "peak_rss_mb"),
                       "ratio_vs_nest_builtin": (s["median"] / base) if (base and s["median"]) else None,
                       "errors": [r["error"] for r in runs[name] if "error" in r]}
                out.append(row)
                med = f"{s['median']:.4f}" if s["median"] else "failed"
                ratio = f"{row['ratio_vs_nest_builtin']:.3f}" if row["ratio_vs_nest_builtin"] else "-"
                _say(f"  {task:<8} {family:<8} {name:<18} {med:>9} s/it  [{s['min'] or 0:.4f} .. {s['max'] or 0:.4f}]"
                     f"  x{ratio} of nest-builtin  {'; '.join(row['errors'])}")
    return out


def _measure_built(job: dict) -> dict:
    """:func:`measure`, again if the run compiled: the compiler's peak would count as the run's memory."""
    row = measure(job)
    if row.get("cached") is False and "error" not in row:
        first = row
        row = measure(job)
        row["first_run_compile_s"] = first.get("compile_s")
    return row


def section_memory(backends: list[str], lengths: list[int], out: list[dict] | None = None) -> list[dict]:
    """Rows of one sine iteration (original family) per backend and sequence length, plus ``bptt``."""
    out = [] if out is None else out
    for name in list(backends) + ["bptt"]:
        for T in lengths:
            r = _measure_built({"backend": name, "task": "sine", "family": "original", "iterations": 1,
                                "sequence_steps": T})
            out.append(r)
            _say(f"  memory {name:<18} T={T:>6}: " + (r.get("error") or
                 f"{r['memory_mb']:.1f} MB above a {r['baseline_rss_mb']:.0f} MB baseline ({r['total_s']:.1f} s)"))
    return out


def section_scaling(backends: list[str], sizes: list[int], families: list[str], iterations: int,
                    out: list[dict] | None = None) -> list[dict]:
    """Rows of :func:`measure` for the sine task with each size of recurrent population (dense)."""
    out = [] if out is None else out
    for family in families:
        for n in sizes:
            for name in backends:
                r = _measure_built({"backend": name, "task": "sine", "family": family, "iterations": iterations,
                                    "n_rec": n})
                out.append(r)
                _say(f"  scaling {family:<8} n={n:>5} {name:<18}: " + (r.get("error") or
                     f"{r['s_per_simulated_s']:.3f} s per simulated s, {r['memory_mb']:.0f} MB"))
    return out


def section_threads(backends: list[str], families: list[str], iterations: int,
                    out: list[dict] | None = None) -> list[dict]:
    """Rows for 1 and 2 threads per backend (sine), each with ``losses_identical_across_threads``."""
    out = [] if out is None else out
    for family in families:
        for name in backends:
            rows = [measure({"backend": name, "task": "sine", "family": family, "iterations": iterations,
                             "threads": k}) for k in (1, 2)]
            same = all("error" not in r for r in rows) and rows[0]["losses"] == rows[1]["losses"]
            for r in rows:
                r["losses_identical_across_threads"] = same
                out.append(r)
                _say(f"  threads {family:<8} {name:<18} {r['threads']}: " + (r.get("error") or
                     f"{r['per_iteration_s']:.4f} s/it, losses identical to the other count: {same}"))
    return out


# ---------------------------------------------------------------------------------------------- plots

def _plots(report: dict, out: Path) -> list[str]:
    import io

    import matplotlib

    matplotlib.use("Agg")  # files only
    import matplotlib.pyplot as plt

    from .cache import atomic_write

    written = []

    def save(fig, name):
        buf = io.BytesIO()
        fig.tight_layout()
        fig.savefig(buf, format="png", dpi=110)
        plt.close(fig)
        written.append(str(atomic_write(out / name, buf.getvalue())))

    if report.get("iteration"):
        rows = [r for r in report["iteration"] if r["per_iteration_s"]["median"]]
        groups = sorted({(r["task"], r["family"]) for r in rows})
        names = list(dict.fromkeys(r["backend"] for r in rows))
        fig, ax = plt.subplots(figsize=(7, 3.5))
        width = 0.8 / max(len(names), 1)
        for j, name in enumerate(names):
            ys, errs = [], [[], []]
            for g in groups:
                r = next((r for r in rows if (r["task"], r["family"]) == g and r["backend"] == name), None)
                s = r["per_iteration_s"] if r else {"median": np.nan, "min": np.nan, "max": np.nan}
                ys.append(s["median"])
                errs[0].append(s["median"] - s["min"])
                errs[1].append(s["max"] - s["median"])
            ax.bar(np.arange(len(groups)) + j * width, ys, width, yerr=errs, label=name)
        ax.set_xticks(np.arange(len(groups)) + 0.4 - width / 2, [f"{t}\n{f}" for t, f in groups])
        ax.set_yscale("log")
        ax.set_ylabel("s per iteration (median, min-max)")
        ax.legend(fontsize=7)
        save(fig, "bench_iteration.png")
    if report.get("memory"):
        fig, ax = plt.subplots(figsize=(5, 3.5))
        for name in dict.fromkeys(r["backend"] for r in report["memory"]):
            pts = [(r["sequence_steps"], r["memory_mb"]) for r in report["memory"]
                   if r["backend"] == name and "error" not in r]
            if pts:
                ax.plot(*zip(*pts), "o-", label=name)
        ax.set_xscale("log")
        ax.set_xlabel("sequence length T (steps)")
        ax.set_ylabel("peak RSS above baseline (MB)")
        ax.legend(fontsize=7)
        save(fig, "bench_memory.png")
    if report.get("scaling"):
        fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
        keys = dict.fromkeys((r["backend"], r["family"]) for r in report["scaling"])
        for name, family in keys:
            pts = [(r["n_rec"], r["s_per_simulated_s"], r["memory_mb"]) for r in report["scaling"]
                   if r["backend"] == name and r["family"] == family and "error" not in r]
            if pts:
                n, t, m = zip(*pts)
                axes[0].plot(n, t, "o-", label=f"{name} ({family})")
                axes[1].plot(n, m, "o-", label=f"{name} ({family})")
        for ax, lab in zip(axes, ("s per simulated s", "peak RSS above baseline (MB)")):
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel("recurrent neurons (dense)")
            ax.set_ylabel(lab)
        axes[0].legend(fontsize=7)
        save(fig, "bench_scaling.png")
    return written


# ---------------------------------------------------------------------------------------------- main

def main(args: argparse.Namespace) -> int:
    """Run the chosen sections, print tables, write ``bench.json`` and plots to ``--out``; exit 1 on a failure."""
    sections = SECTIONS if "all" in args.sections or args.quick else tuple(args.sections)
    tasks = [args.task] if args.task else ["sine", "evidence"]
    families = [args.family] if args.family else ["original", "event"]
    iterations, repeats, lengths, sizes = args.iterations, args.repeats, args.lengths, args.sizes
    mem_backends = args.memory_backends or [b for b in args.backends if b != "reference"]
    if args.quick:  # every section, small: the whole run in a few minutes
        tasks, iterations, repeats = [args.task or "sine"], 3, 1
        lengths, sizes = [200, 2000], [50, 100]
        mem_backends = args.memory_backends or ["nest-builtin"]
    scaling_backends, threads_backends = args.scaling_backends, args.threads_backends
    if args.quick:  # no new Brian2 binaries to compile: NEST backends for scaling and threads, one family
        scaling_backends, threads_backends, other_families = ["nest-builtin", "nestml"], ["nestml"], ["original"]
    else:
        other_families = families
    report: dict[str, Any] = {"schema": SCHEMA, "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                              "machine": machine(), "arguments": {k: v for k, v in vars(args).items() if k != "func"},
                              "notes": [SPARSE_NOTE,
                                        "NEST backends record their per-step traces (no losses-only mode), "
                                        "Brian2 backends run with traces off"]}
    def checkpoint(_row=None) -> None:
        if args.out:
            from .cache import atomic_write

            atomic_write(Path(args.out) / "bench.partial.json", json.dumps(report, indent=1, default=float))

    _ON_ROW[:] = [checkpoint]
    _say(f"benchmark: sections {', '.join(sections)}; load average {report['machine']['load_average_start']}")
    _say(f"note: {SPARSE_NOTE}")
    if "iteration" in sections:
        _say(f"time per iteration ({iterations} iterations, {repeats} fresh processes each):")
        report["iteration"] = []
        section_iteration(args.backends, tasks, families, iterations, repeats, args.sequence_steps,
                          out=report["iteration"])
    if "memory" in sections:
        _say("peak memory of one iteration against T (original family, sine):")
        report["memory"] = []
        section_memory(mem_backends, lengths, out=report["memory"])
    if "scaling" in sections:
        _say("scaling (sine, dense):")
        report["scaling"] = []
        section_scaling(scaling_backends, sizes, other_families, max(2, iterations // 2), out=report["scaling"])
    if "threads" in sections:
        _say("threads:")
        report["threads"] = []
        section_threads(threads_backends, other_families, max(2, iterations // 2), out=report["threads"])
    report["machine"]["load_average_end"] = _load()
    report["finished"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    failed = [r for part in SECTIONS for r in report.get(part, []) if r.get("error") or r.get("errors")]
    if args.out:
        from .cache import atomic_write

        out = Path(args.out)
        report["plots"] = _plots(report, out)
        atomic_write(out / "bench.json", json.dumps(report, indent=1, default=float))
        _say(f"wrote {out / 'bench.json'} and {len(report['plots'])} plots")
    return 1 if failed else 0
