"""The NEST wiring of e-prop scenarios: one layout per family, shared by every NEST-based backend.

``nest-builtin`` (NEST's own C++ models), ``nestml`` (the project's NESTML neurons) and
:func:`nest_models.pynest.add_eprop` (e-prop next to a user's network) all build their networks
here; they differ only in the :class:`Layout` (NEST model names).  A run is five steps::

    from eprop_plugins.backends import nest_wiring as nw

    sc = scenario.validated()
    lay = nw.layout(sc.family)                 # or nw.layout(sc.family, nestml=True)
    nw.reset_kernel(sc)                        # own kernel; in an existing one: nest.set(**nw.kernel_status(sc))
    net = nw.create_network(sc, lay)           # nodes, connections, stimuli
    nw.simulate(net, sc, on_iteration=print)   # on_iteration(index, loss) after each iteration
    result = nw.result(sc, nw.collect(net, sc), "nest-builtin")

:func:`run` does all of it, with timing and NEST's errors wrapped in
:class:`~eprop_plugins.errors.BackendError`.  The family modules :mod:`.original` and :mod:`.event`
hold the family's kernel settings, extra connections, stamp alignment and collection;
:mod:`.common` the skeleton both share.  Not observable in NEST (omitted from the Result):
``fr_reg``, the per-synapse traces and dense weight snapshots.
"""

from __future__ import annotations

import time
from typing import Any, Callable

from ...parameters import FAMILIES
from .. import nest_translations as tr
from . import common, event, original
from .common import Layout, NestNetwork, Offsets, Recording, concat, import_nest, nest_errors, result

__all__ = [
    "Layout",
    "NestNetwork",
    "Offsets",
    "Recording",
    "layout",
    "check_models",
    "kernel_status",
    "reset_kernel",
    "create_network",
    "simulate",
    "collect",
    "result",
    "run",
    "concat",
    "import_nest",
    "nest_errors",
]

_FAMILY = {"original": original, "event": event}


def _family(name: str):
    if name not in _FAMILY:
        raise ValueError(f"family = {name!r}: allowed values are {', '.join(FAMILIES)}")
    return _FAMILY[name]


def layout(family: str, nestml: bool = False) -> Layout:
    """The layout of a family with NEST's built-in models or (``nestml``) the project's NESTML neurons."""
    return _family(family).layout(nestml)


def check_models(nestml: bool = False) -> str:
    """Import NEST and confirm that the models of both families exist (NESTML ones: module installed).

    Returns
    -------
    str
        NEST's version string (for example ``"3.10.0"``).

    Raises
    ------
    ImportError
        NEST cannot be imported.
    RuntimeError
        A required model is missing.
    """
    nest = import_nest()
    available = set(nest.node_models) | set(nest.synapse_models)
    missing = [m for fam in FAMILIES for m in tr.model_names(fam, nestml).values() if m not in available]
    if missing:
        raise RuntimeError(f"NEST {nest.__version__} lacks the e-prop models {', '.join(missing)} "
                           "(NEST >= 3.10 needed)")
    return str(nest.__version__)


def kernel_status(sc) -> dict[str, Any]:
    """The kernel settings a scenario's family needs (set them before creating its network)."""
    return _family(sc.family).kernel_status(sc)


def reset_kernel(sc, *, threads: int = 1, after_reset: Callable[[], Any] | None = None) -> None:
    """Reset NEST for a validated scenario: resolution ``dt``, ``threads`` virtual processes, family settings.

    ``after_reset()`` runs after the reset, e.g. to install an extension module (a reset unloads them).
    """
    common.reset_kernel(sc, kernel_status(sc), threads=threads, after_reset=after_reset)


def create_network(sc, layout: Layout, *, record_weight_events: bool = True,
                   flush_interval: float | None = None, record: bool = True) -> NestNetwork:
    """Create nodes, connections and stimuli of a validated scenario in the current kernel.

    Parameters
    ----------
    sc : Scenario
        Validated scenario of ``layout.family``.
    layout : Layout
        From :func:`layout`.
    record_weight_events : bool
        Attach NEST's weight recorder to the plastic synapses (one entry per transmitted spike).
    flush_interval : float, optional
        ``flush_event_send_interval`` of the recurrent neurons, ms (default one sequence).
    record : bool
        Record the recurrent neurons every step (False: losses only; only the readouts' multimeter,
        and the recurrent spike recorder when ``record_weight_events``).
    """
    if sc.family != layout.family:
        raise ValueError(f"layout of family {layout.family!r} for a scenario of family {sc.family!r}")
    return _family(sc.family).create_network(sc, layout, record_weight_events=record_weight_events,
                                             flush_interval=flush_interval, record=record)


def simulate(net: NestNetwork, sc, on_iteration: Callable[[int, float], None] | None = None) -> None:
    """Simulate all iterations (kernel at time 0); ``on_iteration(index, loss)`` after each."""
    _family(net.layout.family).simulate(net, sc, on_iteration)


def collect(net: NestNetwork, sc, *, record_weight_events: bool = True, record: bool = True) -> Recording:
    """Read the recorders of a simulated network: aligned traces, weight events, notes.

    ``record`` False, for a network created with ``record=False``: losses and weight events, no traces.
    """
    return _family(net.layout.family).collect(net, sc, record_weight_events=record_weight_events, record=record)


def run(
    sc,
    layout: Layout,
    *,
    backend: str,
    record_weight_events: bool = True,
    on_iteration: Callable[[int, float], None] | None = None,
    threads: int = 1,
    after_reset: Callable[[], Any] | None = None,
    flush_interval: float | None = None,
    record: bool = True,
):
    """Reset the kernel, build, simulate and collect a validated scenario; return its Result.

    Parameters
    ----------
    sc : Scenario
        Validated scenario.
    layout : Layout
        From :func:`layout`.
    backend : str
        Backend name for the Result and for errors.
    record_weight_events : bool
        Record one weight event per spike transmitted by a plastic synapse.
    on_iteration : callable, optional
        ``on_iteration(index, loss)`` after each iteration.
    threads : int
        NEST virtual processes (the results do not depend on it).
    after_reset : callable, optional
        Run after the kernel reset (install an extension module).
    flush_interval : float, optional
        ``flush_event_send_interval``, ms (default one sequence).
    record : bool
        Record every step and return the traces.  False: losses only (the same numbers; no
        multimeter on the recurrent neurons, ``traces`` empty; weight events still when asked).

    Returns
    -------
    Result
        ``meta``: ``build_seconds`` (kernel and network), ``simulate_seconds``, ``nest_version``,
        ``threads``, ``record``, ``notes``.

    Raises
    ------
    BackendError
        NEST raised an error (``KernelException`` or a subclass) on the scenario.
    """
    t0 = time.perf_counter()
    with nest_errors(backend, sc.name):
        reset_kernel(sc, threads=threads, after_reset=after_reset)
        net = create_network(sc, layout, record_weight_events=record_weight_events, flush_interval=flush_interval,
                             record=record)
        t_build = time.perf_counter() - t0
        simulate(net, sc, on_iteration)
        t_sim = time.perf_counter() - t0 - t_build
        recording = collect(net, sc, record_weight_events=record_weight_events, record=record)
    meta = {"build_seconds": t_build, "simulate_seconds": t_sim, "nest_version": str(import_nest().__version__),
            "threads": threads, "record": record}
    return result(sc, recording, backend, meta)
