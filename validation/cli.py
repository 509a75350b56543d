"""``eprop validate``: run the cross-simulator validation and write the report.

:mod:`eprop_plugins.cli` wires :func:`add_arguments` and :func:`main` as the ``validate``
subcommand; ``python -m validation`` runs the same thing.
"""

from __future__ import annotations

import argparse
import fnmatch
import sys
import time
from pathlib import Path
from typing import IO, Any

from eprop_plugins import backends as registry
from eprop_plugins.parameters import ParameterError

from . import scenario_library as library
from .runner import Cell, Progress, default_jobs, run_validation

__all__ = ["add_arguments", "main", "LiveProgress"]

DEFAULT_OUT = "validation-report"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``validate`` options to ``parser``."""
    parser.add_argument("--backends", nargs="+", metavar="NAME",
                        help=f"backends to validate (default: all registered: {', '.join(registry.names())}); "
                             "one that is not installed is reported as such")
    parser.add_argument("--scenarios", nargs="+", metavar="NAME",
                        help="scenarios to run (default: all; see --list); shell patterns select several, e.g. 'orig-*'")
    parser.add_argument("--out", default=DEFAULT_OUT, metavar="DIR",
                        help=f"directory for report.json, report.html and plots/ (default: {DEFAULT_OUT})")
    parser.add_argument("--require", nargs="+", default=[], metavar="NAME",
                        help="backends that must be installed: their absence fails the run")
    parser.add_argument("--perturb", action="append", default=[], metavar="PATH*FACTOR",
                        help="self-test: add a backend 'perturbed-N' = the reference run with one scenario value "
                             "changed (PATH*FACTOR, PATH+DELTA or PATH=VALUE, e.g. populations.0.params.tau_m*1.000001); "
                             "the suite must then fail")
    parser.add_argument("--no-plots", action="store_true", help="skip the PNG plots (report.html has tables only)")
    parser.add_argument("--no-weight-events", action="store_true",
                        help="do not record or compare per-spike weight events (faster, less thorough)")
    parser.add_argument("--jobs", type=int, default=None, metavar="N",
                        help=f"worker processes (default here: {default_jobs()}, from the CPUs available, at most 2); "
                             "scenarios run whole in one worker, so the results equal those of --jobs 1")
    parser.add_argument("--compare-to", metavar="OLD_REPORT",
                        help="afterwards, compare the new report.json with OLD_REPORT (statuses and maximum errors "
                             "per cell, see python -m validation.compare_reports); a difference fails the run")
    parser.add_argument("--list", action="store_true", help="list scenarios and backends (with status) and exit")
    parser.add_argument("--schema", action="store_true", help="print the JSON schema of report.json and exit")


class LiveProgress(Progress):
    """Progress on a stream: one rewritten status line on a terminal, one line per cell otherwise.

    Before a cell that compiles it prints ``building k of K (<backend>, <key>)`` with an estimate: the
    mean compile time of this backend's builds so far in the run (none before its first), and the
    time the builds left would take at the mean of all builds so far.
    """

    def __init__(self, stream: IO[str] = sys.stderr):
        self.stream = stream
        self.tty = bool(getattr(stream, "isatty", lambda: False)())
        self.done = 0
        self.total = 0
        self.builds_total = 0
        self.builds_started = 0
        self.compile_times: dict[str, list[float]] = {}
        self.t0 = time.perf_counter()
        self.last = 0.0

    def _status(self, text: str) -> None:
        if self.tty:
            self.stream.write("\r\033[K" + text[:150])
            self.stream.flush()

    def _line(self, text: str) -> None:
        if self.tty:
            self.stream.write("\r\033[K")
        self.stream.write(text[:400] + "\n")
        self.stream.flush()

    def start(self, total: int, builds: int = 0) -> None:
        self.total = total
        self.builds_total = builds
        self.t0 = time.perf_counter()
        if builds:
            self._line(f"{total} cells; {builds} build(s) to compile first (cached afterwards)")

    def _estimate(self, backend: str) -> str:
        times = self.compile_times.get(backend)
        if not times:
            return "first build of this backend in this run, no estimate yet"
        return f"about {sum(times) / len(times):.0f} s (mean of {len(times)} build(s) so far)"

    def build(self, scenario: str, backend: str, key: str) -> None:
        self.builds_started += 1
        line = (f"building {self.builds_started} of {self.builds_total} ({backend}, {key}) for {scenario}: "
                f"{self._estimate(backend)}")
        done = [t for times in self.compile_times.values() for t in times]
        left = self.builds_total - self.builds_started + 1
        if done and left > 1:
            line += f"; about {left * sum(done) / len(done) / 60:.0f} min for the {left} builds left"
        self._line(line)

    def note(self, text: str) -> None:
        self._line(text)

    def begin(self, scenario: str, backend: str) -> None:
        self._status(f"[{self.done}/{self.total}] {scenario} x {backend} ...")

    def iteration(self, scenario: str, backend: str, index: int, n_iterations: int, loss: float) -> None:
        now = time.perf_counter()
        if now - self.last > 0.1:
            self.last = now
            self._status(f"[{self.done}/{self.total}] {scenario} x {backend}: iteration {index + 1}/{n_iterations}, "
                         f"loss {loss:.6g}")

    def end(self, scenario: str, cell: Cell) -> None:
        self.done += 1
        if cell.compile_seconds:
            self.compile_times.setdefault(cell.backend, []).append(cell.compile_seconds)
        secs = "" if cell.seconds is None else f" {cell.seconds:6.2f}s"
        line = f"[{self.done:3d}/{self.total}] {cell.status.upper():13s}{secs:8s} {scenario} x {cell.backend}"
        if cell.compile_seconds:
            line += f" (compiled in {cell.compile_seconds:.1f} s)"
        if cell.status in ("fail", "error"):
            line += f": {cell.reason}"
        self._line(line)

    def finish(self) -> None:
        self._line(f"done in {time.perf_counter() - self.t0:.1f} s")


def _select_scenarios(patterns: list[str] | None) -> list[str]:
    if not patterns:
        return library.names()
    out: list[str] = []
    for p in patterns:
        hits = [n for n in library.names() if fnmatch.fnmatchcase(n, p)]
        if not hits:
            raise ParameterError(f"--scenarios {p!r}: no such scenario; known: {', '.join(library.names())}")
        out += [h for h in hits if h not in out]
    return out


def _command_line() -> list[str]:
    """The command as typed: ``eprop validate ...`` or ``python -m validation ...``."""
    if not sys.argv:
        return []
    head = ["python", "-m", "validation"] if sys.argv[0].endswith("__main__.py") else [Path(sys.argv[0]).name]
    return head + sys.argv[1:]


def _list(stream: IO[str]) -> None:
    stream.write("Backends:\n")
    for name in registry.names():
        ok, reason = registry.status(name)
        stream.write(f"  {name:18s} {'available' if ok else 'not installed'}: {reason}\n")
    stream.write("Scenarios:\n")
    for name in library.names():
        where = "saved" if library.saved(name).exists() else "generated on the fly"
        stream.write(f"  {name:32s} ({where})\n")


def main(args: argparse.Namespace, *, stream: IO[str] = sys.stdout, progress_stream: IO[str] = sys.stderr,
         extra_backends: dict[str, Any] | None = None) -> int:
    """Run ``eprop validate``; returns the exit status (0 = every comparison passed).

    ``extra_backends`` is the runner's hook for backends outside the registry (used by the tests).
    """
    import json

    if args.schema:
        from .schema import REPORT_SCHEMA

        stream.write(json.dumps(REPORT_SCHEMA, indent=1) + "\n")
        return 0
    if args.list:
        _list(stream)
        return 0
    try:
        scenarios = _select_scenarios(args.scenarios)
        extra = dict(extra_backends or {})
        if args.perturb:
            from .perturb import PerturbedBackend

            for i, spec in enumerate(args.perturb, 1):
                extra[f"perturbed-{i}"] = PerturbedBackend.from_spec(spec)
        backends = list(args.backends) if args.backends else None
        if backends is not None:
            backends += [n for n in extra if n not in backends]
        for name in (backends or []) + list(args.require):
            if name not in registry.BACKENDS and name not in extra:
                raise ParameterError(f"backend {name!r}: allowed values are {', '.join(registry.names())}")
    except ParameterError as exc:
        stream.write(f"error: {exc}\n")
        return 2

    jobs = default_jobs() if args.jobs is None else args.jobs
    if jobs < 1:
        stream.write(f"error: --jobs {jobs}: allowed values are integers >= 1\n")
        return 2
    old_report = None
    if args.compare_to:
        from .compare_reports import load_report

        try:
            old_report = load_report(args.compare_to)  # read first: the new report may replace it
        except (OSError, ValueError) as exc:
            stream.write(f"error: --compare-to {args.compare_to}: {exc}\n")
            return 2

    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    on_scenario = None
    if not args.no_plots:
        from .plots import PlotHook

        on_scenario = PlotHook(out_dir, "plots")

    suite = run_validation(scenarios, backends, extra_backends=extra, require=args.require,
                           progress=LiveProgress(progress_stream), on_scenario=on_scenario,
                           record_weight_events=not args.no_weight_events, jobs=jobs)
    from .report import failure_lines, summary_table, to_json, write_html, write_json

    doc = to_json(suite, command=_command_line())
    json_path = write_json(doc, out_dir / "report.json")
    html_path = write_html(doc, out_dir)
    stream.write("\n" + summary_table(suite) + "\n")
    lines = failure_lines(suite)
    if lines:
        stream.write("\n" + "\n".join(lines) + "\n")
    stream.write(f"\nreport: {json_path}  {html_path}\n")
    status = suite.exit_status()
    if old_report is not None:
        from .compare_reports import compare_reports

        diff = compare_reports(old_report, doc, factor=1.0)
        stream.write(f"\ncompared with {args.compare_to}:\n{diff.text()}\n")
        status = status or (0 if diff.same else 1)
    stream.write(("PASSED" if status == 0 else "FAILED") + "\n")
    return status


def run(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m validation``."""
    parser = argparse.ArgumentParser(prog="python -m validation", description=__doc__.split("\n")[0])
    add_arguments(parser)
    return main(parser.parse_args(argv))
