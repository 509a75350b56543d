"""``eprop bench``: time per iteration, peak memory against sequence length, scaling and threads.

Every measurement runs in a fresh child process (``spawn``, :mod:`.child`), so no backend profits
from another's imports, loaded modules or memory.  Four sections (``--sections``; see
docs/benchmarks.rst):

``iteration``
    Seconds per training iteration of each backend next to ``nest-builtin`` of the same family, in
    the same run, ``--repeats`` fresh processes each (median and spread).  Time per iteration is
    measured between consecutive ``on_iteration`` callbacks, so start-up (imports, network
    construction, compiling or loading a build) is excluded and reported apart.  A backend that
    simulates all iterations in one run (``brian2-standalone``) reports
    ``Result.meta["seconds_per_iteration"]``, which is used when present.
``memory``
    Peak resident set size of one iteration against the sequence length T, per backend, for
    ``nest-builtin`` without its per-step recorders, and for the NumPy back-propagation-through-time
    baseline (:mod:`eprop_plugins.bptt`, full history; also measured with ``tracemalloc``).
``scaling``
    Sparse networks of 100 … 5 000 recurrent neurons, every projection 10 % connected
    (:func:`~eprop_plugins.bench.scenarios.sparse_scaling`): seconds per simulated second and peak memory.
``threads``
    NEST ``local_num_threads`` (``nest-builtin``, ``nestml``) and Brian2 standalone ``openmp_threads``
    (``brian2-standalone``) 1 and 2: time and whether the losses are identical.

Backends run with ``traces=False`` (losses only, :func:`eprop_plugins.backends.run`; the NEST
backends: only the readouts' multimeter; ``nest-builtin/no-recorders`` stops the recorders of a
recording network instead, and compares its losses).  A measurement that fails (an error, a crash, a timeout) is
a row with ``error`` and the run goes on.  Output: ``bench.json`` (fields in docs/benchmarks.rst),
PNG plots, and the goals met or missed (:func:`~eprop_plugins.bench.sections.goals`).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from ..backends import names
from .child import DEFAULT_TIMEOUT, NO_RECORDERS, ON_ROW, measure, time_backend
from .machine import load_average, machine
from .plots import write_plots
from .scenarios import SCALING_DENSITY, scaled_sine, sparse_scaling
from .sections import (goals, memory_summary, section_iteration, section_memory, section_scaling,
                       section_threads)
from .tables import report_tables

__all__ = ["add_arguments", "main", "merge_reports", "measure", "scaled_sine", "sparse_scaling", "machine", "time_backend",
           "SCHEMA", "NOTES", "NO_RECORDERS", "SPARSE_NOTE"]

SCHEMA = "eprop-bench/3"
#: what the numbers do not cover (written into every report)
NOTES = [
    "every backend runs with traces off (backends.run(traces=False): record=False where run() takes it); "
    "nest-builtin/no-recorders is nest-builtin's recording network with the recurrent multimeters and the spike "
    "recorder stopped",
    "Brian2 backends run with traces off (record=False)",
    "scaling: sparse networks (every projection 10 % connected, no dense n_rec x n_rec array anywhere)",
]
#: deprecated: sparse scenarios exist now; kept for code that imported it
SPARSE_NOTE = NOTES[2]
#: the iteration section of ``--quick`` (a full run: every registered backend)
QUICK_BACKENDS = ["reference", "nest-builtin", "brian2-standalone", "nestml"]
#: deprecated name of :data:`QUICK_BACKENDS`
DEFAULT_BACKENDS = QUICK_BACKENDS
#: backends of the memory and scaling sections unless given
LARGE_BACKENDS = ["nest-builtin", "nestml", "brian2-standalone"]
SECTIONS = ("iteration", "memory", "scaling", "threads")


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Options of ``eprop bench``."""
    p.add_argument("--task", default=None, choices=["sine", "evidence"], help="one task (default: sine and evidence)")
    p.add_argument("--family", default=None, choices=["original", "event"], help="one family (default: both)")
    p.add_argument("--backends", nargs="+", default=None,
                   help="iteration section (default: every registered backend; --quick: " + " ".join(QUICK_BACKENDS) + ")")
    p.add_argument("--iterations", type=int, default=6, help="iterations per run (the first is not timed)")
    p.add_argument("--repeats", type=int, default=3, help="fresh processes per backend and task")
    p.add_argument("--sequence-steps", type=int, default=None, help="override the sine sequence length (steps)")
    p.add_argument("--sections", nargs="+", default=["iteration"], choices=list(SECTIONS) + ["all"])
    p.add_argument("--lengths", nargs="+", type=int, default=[1000, 10000, 100000], help="memory: T in steps")
    p.add_argument("--memory-families", nargs="+", default=None, choices=["original", "event"],
                   help="memory: families (default: --family, else both)")
    p.add_argument("--memory-backends", nargs="+", default=None,
                   help="memory: backends (default: " + " ".join(LARGE_BACKENDS) + "; bptt always)")
    p.add_argument("--sizes", nargs="+", type=int, default=[100, 500, 1000, 2000, 5000],
                   help="scaling: recurrent neurons")
    p.add_argument("--density", type=float, default=SCALING_DENSITY, help="scaling: connection probability")
    p.add_argument("--scaling-iterations", type=int, default=3, help="scaling: iterations (0.1 s each)")
    p.add_argument("--scaling-backends", nargs="+", default=LARGE_BACKENDS)
    p.add_argument("--threads-backends", nargs="+", default=["nest-builtin", "nestml", "brian2-standalone"],
                   choices=["nest-builtin", "nestml", "brian2-standalone"])
    p.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, help="seconds per measurement")
    p.add_argument("--quick", action="store_true", help="every section at small sizes (a few minutes)")
    p.add_argument("--out", default=None, help="directory for bench.json and the plots")
    p.add_argument("--merge", nargs="+", default=None, metavar="BENCH_JSON",
                   help="merge the sections of finished runs (a later file's section replaces an earlier one's) "
                        "into --out/bench.json with new plots and goals; runs nothing")
    p.add_argument("--tables", default=None, metavar="BENCH_JSON",
                   help="print the reStructuredText tables of an existing bench.json and exit (runs nothing)")


def _say(*parts, end: str = "\n") -> None:
    print(*parts, end=end, flush=True)


def _plan(args: argparse.Namespace) -> dict[str, Any]:
    """Sections, tasks, families, sizes and backends of this run (``--quick``: every section, small)."""
    plan: dict[str, Any] = {
        "sections": SECTIONS if ("all" in args.sections or args.quick) else tuple(args.sections),
        "tasks": [args.task] if args.task else ["sine", "evidence"],
        "families": [args.family] if args.family else ["original", "event"],
        "iterations": args.iterations, "repeats": args.repeats, "lengths": args.lengths, "sizes": args.sizes,
        "backends": args.backends or names(),
        "memory_backends": args.memory_backends or list(LARGE_BACKENDS),
        "memory_families": args.memory_families or ([args.family] if args.family else ["original", "event"]),
        "scaling_backends": args.scaling_backends, "threads_backends": args.threads_backends,
    }
    if args.quick:  # the same scenarios as a full run (no new builds), fewer of them; NEST only where it compiles
        plan.update(backends=args.backends or list(QUICK_BACKENDS), tasks=[args.task or "sine"], families=[args.family or "original"], repeats=1,
                    lengths=[1000, 10000], sizes=[100, 200], memory_backends=args.memory_backends or ["nest-builtin"],
                    memory_families=args.memory_families or [args.family or "original"],
                    scaling_backends=["nest-builtin", "nestml"], threads_backends=["nest-builtin", "nestml"])
    return plan


_JOB_FIELDS = ("task", "family", "backend", "sequence_steps", "n_rec", "density", "threads")


def merge_reports(reports: list[dict]) -> dict[str, Any]:
    """One report from several runs: the rows of every section, a later run's row replacing an earlier
    one of the same job (task, family, backend, T, size, density, threads); ``runs`` lists every run's
    time stamps, plan and load; the machine is the first run's with the last run's final load."""
    merged: dict[str, Any] = {"schema": SCHEMA, "started": min(r["started"] for r in reports),
                              "finished": max(r["finished"] for r in reports), "machine": dict(reports[0]["machine"]),
                              "notes": list(NOTES), "runs": []}
    merged["machine"]["load_average_end"] = reports[-1]["machine"].get("load_average_end")
    for r in reports:
        present = [s for s in SECTIONS if s in r]
        merged["runs"].append({"started": r["started"], "finished": r["finished"], "sections": present,
                               "plan": r.get("plan"), "arguments": r.get("arguments"),
                               "load_average_start": r["machine"].get("load_average_start"),
                               "load_average_end": r["machine"].get("load_average_end")})
        for s in present:
            rows = {tuple(x.get(k) for k in _JOB_FIELDS): x for x in merged.get(s, [])}
            rows.update({tuple(x.get(k) for k in _JOB_FIELDS): x for x in r[s]})
            merged[s] = list(rows.values())
    if "memory" in merged:
        merged["memory_summary"] = memory_summary(merged["memory"])
    merged["goals"] = goals(merged)
    return merged


def _merge(args: argparse.Namespace) -> int:
    from ..cache import atomic_write

    if not args.out:
        raise ValueError("--merge needs --out (the directory of the merged bench.json and its plots)")
    merged = merge_reports([json.loads(Path(p).read_text()) for p in args.merge])
    out = Path(args.out)
    merged["plots"] = write_plots(merged, out)
    atomic_write(out / "bench.json", json.dumps(merged, indent=1, default=float))
    _say(f"wrote {out / 'bench.json'} ({len(merged['runs'])} runs) and {len(merged['plots'])} plots")
    return 0


def main(args: argparse.Namespace) -> int:
    """Run the chosen sections, print tables, write ``bench.json`` and plots to ``--out``; exit 1 on a failure."""
    if args.tables:
        _say(report_tables(json.loads(Path(args.tables).read_text())), end="")
        return 0
    if args.merge:
        return _merge(args)
    plan = _plan(args)
    sections, families, timeout = plan["sections"], plan["families"], args.timeout
    report: dict[str, Any] = {"schema": SCHEMA, "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                              "machine": machine(), "arguments": {k: v for k, v in vars(args).items() if k != "func"},
                              "plan": {k: list(v) if isinstance(v, tuple) else v for k, v in plan.items()},
                              "notes": list(NOTES)}

    def checkpoint(row=None) -> None:
        if args.out:
            report["last_row"] = row  # called before the section appends it
            from ..cache import atomic_write

            atomic_write(Path(args.out) / "bench.partial.json", json.dumps(report, indent=1, default=float))

    ON_ROW[:] = [checkpoint]
    _say(f"benchmark: sections {', '.join(sections)}; load average {report['machine']['load_average_start']}")
    if "iteration" in sections:
        _say(f"time per iteration ({plan['iterations']} iterations, {plan['repeats']} fresh processes each):")
        report["iteration"] = []
        section_iteration(plan["backends"], plan["tasks"], families, plan["iterations"], plan["repeats"],
                          args.sequence_steps, out=report["iteration"], timeout=timeout)
    if "memory" in sections:
        _say("peak memory of one iteration of T steps (sine):")
        report["memory"] = []
        section_memory(plan["memory_backends"], plan["lengths"], out=report["memory"], timeout=timeout,
                       families=tuple(plan["memory_families"]))
        report["memory_summary"] = memory_summary(report["memory"])
    if "scaling" in sections:
        _say(f"scaling (sparse, {100 * args.density:g} % connected, {args.scaling_iterations} iterations of 0.1 s):")
        report["scaling"] = []
        section_scaling(plan["scaling_backends"], plan["sizes"], families, args.scaling_iterations,
                        out=report["scaling"], density=args.density, timeout=timeout)
    if "threads" in sections:
        _say("threads:")
        report["threads"] = []
        section_threads(plan["threads_backends"], families, plan["iterations"], out=report["threads"],
                        timeout=timeout)
    report["goals"] = goals(report)
    for g in report["goals"]:
        state = {True: "met", False: "MISSED", None: "no number"}[g["met"]]
        value = "-" if g["measured"] is None else f"{g['measured']:.3f}"
        _say(f"  goal: {g['goal']}: {value} -> {state}")
    report["machine"]["load_average_end"] = load_average()
    report["finished"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    failed = [r for part in SECTIONS for r in report.get(part, []) if r.get("error") or r.get("errors")]
    if args.out:
        from ..cache import atomic_write

        out = Path(args.out)
        report["plots"] = write_plots(report, out)
        atomic_write(out / "bench.json", json.dumps(report, indent=1, default=float))
        _say(f"wrote {out / 'bench.json'} and {len(report['plots'])} plots")
    if failed:
        _say(f"{len(failed)} measurements failed (their rows hold the error)")
    return 1 if failed else 0
