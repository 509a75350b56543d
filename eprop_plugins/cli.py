"""The ``eprop`` command: dispatches to the library, prints progress, writes results and figures.

Subcommands: ``info``, ``train``, ``run``, ``scenario``, ``validate``, ``bench``, ``build-nest``.
Every user error is printed as one line ``eprop: error: ...`` with exit status 2 (``EPROP_DEBUG=1``
shows the traceback instead); see docs/cli.rst.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Sequence

from . import __version__, backends
from .cache import atomic_write
from .errors import BackendError
from .parameters import FAMILIES, ParameterError
from .reference_numbers import nest_reference_losses
from .scenario import load
from .tasks import TASKS, make_task, nest_test_losses
from .train_plots import write_training_plots

__all__ = ["main", "UsageError", "DEBUG_VARIABLE"]

#: environment variable: set to 1 to see the Python traceback of an error instead of the one-line message
DEBUG_VARIABLE = "EPROP_DEBUG"


class UsageError(Exception):
    """Bad command-line arguments (argparse's message, printed as one line)."""


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser that raises :class:`UsageError` instead of printing the usage and exiting."""

    def error(self, message: str):  # noqa: D401 - argparse's hook
        raise UsageError(f"{self.prog}: {message} (see {self.prog} --help)")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: allowed values are integers >= 1") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value}: allowed range is integer >= 1")
    return value


def _cmd_info(args: argparse.Namespace) -> int:
    print(f"eprop-plugins {__version__}")
    width = max(len(n) for n in backends.names())
    for name in backends.names():
        ok, reason = backends.status(name)
        fams = "/".join(backends.BACKENDS[name].families)
        mark = "usable " if ok else "missing"
        print(f"  {name:<{width}}  {mark}  [{fams}]  {reason}")
    return 0


#: runs with at most this many recorded values per step kind (steps x neurons) keep their traces for the
#: readout and raster figures; longer runs are run with ``traces=False`` and get the loss figure only
TRACE_VALUES_LIMIT = 20_000_000


def _run_and_report(scenario, backend_name: str, out: Path, extra: dict) -> int:
    scenario = scenario.validated()  # the one validation, before any backend runs
    backends.check_supported(backend_name, scenario)
    n_it = scenario.n_iterations
    t_start = time.perf_counter()
    last = [t_start]

    def progress(i: int, loss: float) -> None:
        now = time.perf_counter()
        print(f"iteration {i + 1:>4}/{n_it}  loss {loss:.12g}  ({now - last[0]:.2f} s)", flush=True)
        last[0] = now

    # per-step traces for the figures (bounded memory), and always where the report needs them
    # (NEST's event-family loss definition of the sine task)
    need_y = scenario.family == "event" and extra.get("task") == "sine"
    traces = need_y or scenario.n_steps * (scenario.n_rec + scenario.n_out) <= TRACE_VALUES_LIMIT
    result = backends.run(backend_name, scenario, traces=traces, on_iteration=progress)
    seconds = time.perf_counter() - t_start
    spi = result.meta.get("seconds_per_iteration")
    if spi is not None:  # backends that simulate all iterations in one run report after it
        print(f"simulation: {spi:.4f} s per iteration (the lines above were printed after the run)")
    losses = [float(x) for x in result.losses]
    if scenario.family == "event" and extra.get("task") == "sine" and "y" in result.traces:
        # NEST's event-family test measures the loss one step earlier; report it that way too
        extra["nest_test_definition_losses"] = [float(x) for x in nest_test_losses(scenario, result.traces["y"])]
    # compare like with like: where NEST defines its loss differently, plot this run by NEST's definition
    shown = extra.get("nest_test_definition_losses", losses)
    plots = write_training_plots(out, scenario, shown, result.traces if traces else {},
                                 f"{scenario.name} on {backend_name}", extra.get("nest_reference_losses"))
    payload = {
        **extra,
        "family": scenario.family,
        "backend": backend_name,
        "scenario": scenario.name,
        "iterations": n_it,
        "losses": losses,
        "seconds": seconds,
        "compile_seconds": result.meta.get("compile_seconds"),
        "plots": plots,
    }
    atomic_write(out / "result.json", json.dumps(payload, indent=1))
    print(f"wrote {out / 'result.json'} and {', '.join(str(out / p) for p in plots)}  ({seconds:.1f} s in total)")
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    kwargs = dict(family=args.family, iterations=args.iterations, batch_size=args.batch_size, seed=args.seed)
    if args.model:
        kwargs["model"] = args.model
    if args.optimizer:
        kwargs["optimizer"] = args.optimizer
    scenario = make_task(args.task, **kwargs)
    ref = nest_reference_losses(args.task, args.family, args.batch_size, args.seed, model=args.model,
                                optimizer=args.optimizer)
    extra = {"task": args.task, "batch_size": args.batch_size, "seed": args.seed}
    if ref is not None:
        extra["nest_reference_losses"] = ref[: args.iterations]
    print(f"training {args.task} ({args.family} family) on {args.backend}: {scenario.n_iterations} iterations of "
          f"{scenario.iteration_sequences} x {scenario.steps_per_sequence} steps", flush=True)
    return _run_and_report(scenario, args.backend, Path(args.out), extra)


def _cmd_run(args: argparse.Namespace) -> int:
    scenario = load(args.scenario)
    return _run_and_report(scenario, args.backend, Path(args.out), {"task": None})


def _cmd_scenario(args: argparse.Namespace) -> int:
    scenario = make_task(args.task, family=args.family, iterations=args.iterations, batch_size=args.batch_size,
                         seed=args.seed)
    path = scenario.save(args.out)
    print(f"wrote {path}")
    return 0


def _cmd_validate(args: argparse.Namespace) -> int:
    from validation.cli import main as validate_main

    return validate_main(args)


def _cmd_bench(args: argparse.Namespace) -> int:
    from .bench import main as bench_main

    return bench_main(args)


def _cmd_build_nest(args: argparse.Namespace) -> int:
    from nest_models.build import main as build_main

    return build_main(args.rest)


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="eprop", description="e-prop learning across simulators, validated step by step.",
                epilog=f"Errors are printed as one line 'eprop: error: ...' (exit status 2); set "
                       f"{DEBUG_VARIABLE}=1 for the Python traceback.")
    p.add_argument("--version", action="version", version=f"eprop-plugins {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    sub.add_parser("info", help="which backends are installed and usable").set_defaults(func=_cmd_info)

    t = sub.add_parser("train", help="train a task on one backend; writes DIR/result.json, DIR/losses.png, "
                                     "DIR/readout.png and DIR/spikes.png")
    t.add_argument("task", choices=list(TASKS))
    t.add_argument("--family", choices=FAMILIES, default="original")
    t.add_argument("--backend", choices=backends.names(), default="reference")
    t.add_argument("--iterations", type=_positive_int, default=5)
    t.add_argument("--batch-size", type=_positive_int, default=1)
    t.add_argument("--seed", type=int, default=1)
    t.add_argument("--model", default=None, help="event-family sine: iaf, iaf_adapt, iaf_psc_delta, iaf_psc_delta_adapt")
    t.add_argument("--optimizer", default=None, help="event-family sine: gradient_descent or adam")
    t.add_argument("--out", default="runs/train")
    t.set_defaults(func=_cmd_train)

    r = sub.add_parser("run", help="run a scenario file on one backend")
    r.add_argument("scenario")
    r.add_argument("--backend", choices=backends.names(), default="reference")
    r.add_argument("--out", default="runs/run")
    r.set_defaults(func=_cmd_run)

    s = sub.add_parser("scenario", help="write a task as a scenario file (JSON)")
    s.add_argument("task", choices=list(TASKS))
    s.add_argument("--family", choices=FAMILIES, default="original")
    s.add_argument("--iterations", type=_positive_int, default=5)
    s.add_argument("--batch-size", type=_positive_int, default=1)
    s.add_argument("--seed", type=int, default=1)
    s.add_argument("--out", required=True)
    s.set_defaults(func=_cmd_scenario)

    v = sub.add_parser("validate", help="run the cross-simulator validation suite and write its report")
    try:
        from validation.cli import add_arguments
    except ImportError:  # validation package missing: the subcommand reports it when used
        add_arguments = None
    if add_arguments is not None:
        add_arguments(v)
    v.set_defaults(func=_cmd_validate)

    b = sub.add_parser("bench", help="benchmarks: time per iteration (sine, evidence; both families), memory against sequence length, scaling, threads")
    from .bench import add_arguments as bench_args

    bench_args(b)
    b.set_defaults(func=_cmd_bench)

    n = sub.add_parser("build-nest", help="generate, compile and install the NESTML e-prop module (cached)")
    n.add_argument("rest", nargs=argparse.REMAINDER, help="options passed to the build (see --help there)")
    n.set_defaults(func=_cmd_build_nest)
    return p


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``eprop`` console script.

    Every user error (bad arguments, a missing or invalid scenario file, a
    :class:`~eprop_plugins.parameters.ParameterError`, a :class:`~eprop_plugins.errors.BackendError`,
    a backend that is not installed, a file that cannot be written) is printed to stderr as one line
    ``eprop: error: ...`` and gives exit status 2; with ``EPROP_DEBUG=1`` it is raised instead (the
    traceback is shown).
    """
    os.environ.setdefault("PYNEST_QUIET", "1")  # no NEST banner in the middle of our output
    debug = os.environ.get(DEBUG_VARIABLE, "") not in ("", "0")
    try:
        args = _parser().parse_args(argv)
        return int(args.func(args) or 0)
    except (UsageError, ParameterError, BackendError, ValueError, ImportError, OSError) as exc:
        if debug:
            raise
        print(f"eprop: error: {_one_line(exc)}", file=sys.stderr, flush=True)
        return 2
    except KeyboardInterrupt:
        if debug:
            raise
        print("eprop: error: interrupted", file=sys.stderr, flush=True)
        return 130


if __name__ == "__main__":
    sys.exit(main())
