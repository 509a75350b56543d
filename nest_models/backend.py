"""The ``nestml`` backend: e-prop neurons written in NESTML, compiled into a NEST extension module.

The recurrent neurons and readouts are the project's NESTML models (``nest_models/*.nestml``, built
and cached by :mod:`nest_models.build`; names from
:func:`eprop_plugins.backends.nest_translations.model_names` with ``nestml=True``); the plastic
synapses and feedback connections are NEST's own ``eprop_synapse(_bsshslm_2020)`` and
``eprop_learning_signal_connection(_bsshslm_2020)`` (see ``docs/nestml.rst`` for why).  The network,
its wiring, the stamp alignment and the collection of recordings are the shared NEST wiring
(:mod:`eprop_plugins.backends.nest_wiring`) with the NESTML layout (the NESTML models record under
NEST's names), so the two NEST backends differ only in the neuron models.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

from eprop_plugins.backends import check_supported
from eprop_plugins.backends import nest_wiring as nw
from eprop_plugins.errors import BackendError
from eprop_plugins.parameters import ParameterError
from eprop_plugins.results import Result

from . import build

__all__ = ["check", "build_key", "is_built", "run"]

NAME = "nestml"


def _module_path() -> Path:
    """Where the module of the current sources is cached (it may not exist yet)."""
    return build.module_directory() / build.MODULE_FILE


def check() -> str:
    """Raise unless the backend can run here; return the path of the (cached or buildable) module.

    A cached module for the current sources is enough; otherwise the build tool chain must be
    complete (:func:`nest_models.build.check_toolchain` names what is missing).
    """
    nw.check_models()
    so = _module_path()
    if build.is_built():
        return str(so)
    build.check_toolchain()
    return f"{so} (not built yet; the first run builds it)"


def build_key(scenario) -> str:
    """The key of the compiled module a scenario needs: the hash of the NESTML sources (one module for all)."""
    return build.source_hash()


def is_built(scenario) -> bool:
    """Whether the module for the current sources is installed in the cache (no compilation)."""
    return build.is_built()


class _Installer:
    """``after_reset`` hook: install the module into the fresh kernel, building it first if needed.

    ``first_seconds`` is the time of the first call (the build, if one was needed); ``path`` the
    module that was loaded.
    """

    def __init__(self, scenario: str) -> None:
        self.scenario = scenario
        self.first_seconds: float | None = None
        self.path: Path | None = None

    def __call__(self) -> None:
        t = time.perf_counter()
        try:
            self.path = build.load_module()
        except build.BuildError as exc:
            raise BackendError("the NESTML e-prop module could not be built or loaded", backend=NAME,
                               scenario=self.scenario, hint="Run `eprop build-nest --force --verbose` to see the "
                               "whole build log", original=exc) from exc
        if self.first_seconds is None:
            self.first_seconds = time.perf_counter() - t


def run(
    scenario,
    *,
    record_weight_events: bool = True,
    on_iteration: Callable[[int, float], None] | None = None,
    threads: int = 1,
    record: bool = True,
) -> Result:
    """Run a scenario with the NESTML neurons in NEST.

    Parameters
    ----------
    scenario : Scenario
        Any scenario; validated first.
    record_weight_events : bool
        Record one weight event per spike transmitted by a plastic synapse.
    on_iteration : callable, optional
        ``on_iteration(index, loss)`` after each simulated iteration.
    threads : int
        NEST threads (virtual processes); results are identical for any value.
    record : bool
        Record every step.  False: losses only (bit-identical to a recording run), empty
        ``traces``, no multimeter on the recurrent neurons; weight events still when
        ``record_weight_events``.

    Returns
    -------
    Result
        Traces ``v, z, psi, adaptation, v_th_adapt, learning_signal, readout_v, y, target, error`` in
        aligned time (``record``), weight events and losses (as ``nest-builtin``); ``meta``:
        ``seconds`` (all of the run), ``compile_seconds`` (the module build if this run built it,
        else 0.0), ``cached``, ``module``, ``threads``, ``build_seconds``, ``simulate_seconds``,
        ``record``, ``notes``.

    Raises
    ------
    ParameterError
        ``feedback='symmetric'`` (NEST's learning-signal connections keep B fixed) or bad ``threads``.
    BackendError
        The module cannot be built or loaded, or NEST failed on the scenario.
    """
    t0 = time.perf_counter()
    sc = scenario.validated()
    check_supported(NAME, sc)
    if not isinstance(threads, int) or isinstance(threads, bool) or threads < 1:
        raise ParameterError(f"threads = {threads!r}: allowed range is integer >= 1")
    cached, started = is_built(sc), time.time()
    install = _Installer(sc.name)
    res = nw.run(sc, nw.layout(sc.family, nestml=True), backend=NAME, record_weight_events=record_weight_events,
                 on_iteration=on_iteration, threads=threads, after_reset=install, record=record)
    # built in this run: the cache lacked it and the loaded module file was written after the run began
    # (a module this process had loaded before, from any cache, is older)
    built_here = not cached and install.path is not None and install.path.stat().st_mtime >= started
    synapse = nw.layout(sc.family).models["synapse"]
    res.meta.update({
        "seconds": time.perf_counter() - t0,
        "compile_seconds": install.first_seconds if built_here else 0.0,
        "cached": not built_here,
        "module": str(install.path),
    })
    res.meta["notes"][:0] = [f"neurons: NESTML models; synapses: NEST's {synapse}"]
    return res
