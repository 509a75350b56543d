"""Run a scenario with Brian2: the family's runner on a session of the chosen mode.

:func:`run_scenario` validates the scenario and dispatches to :mod:`brian2_ext.runner_original` or
:mod:`brian2_ext.runner_event`; both run it on a session of :mod:`brian2_ext.sessions` (runtime mode
with the Cython or numpy target, or a cached cpp_standalone binary).  ``RuntimeSession`` and
``StandaloneSession`` are re-exported here for code that imported them from this module.
"""

from __future__ import annotations

import time
from typing import Callable

from eprop_plugins.parameters import ParameterError
from eprop_plugins.results import Result

from .builds import MODES
from .runner_event import run_event_scenario
from .runner_original import run_original_scenario
from .sessions import RuntimeSession, StandaloneSession

__all__ = ["run_scenario", "RuntimeSession", "StandaloneSession"]


def run_scenario(
    scenario,
    *,
    mode: str = "cython",
    record_weight_events: bool = True,
    record: bool = True,
    on_iteration: Callable[[int, float], None] | None = None,
    threads: int = 1,
    backend: str = "brian2",
) -> Result:
    """Simulate a scenario with Brian2: all iterations in one simulation.

    Parameters
    ----------
    scenario : Scenario
        Any scenario (validated here).
    mode : {'cython', 'numpy', 'standalone'}
        Runtime mode with a code-generation target, or a cpp_standalone binary (cached per structure).
    record_weight_events : bool
        Produce one weight event per transmitted spike (needs ``record``).
    record : bool
        Record per-step traces, weight snapshots and synapse traces.  ``False`` (losses only, as
        for training): the original family records one accumulated loss per readout and iteration
        (memory does not grow with the sequence length; ``Result.traces``, ``weights`` and
        ``weight_events`` are empty), the event family only the readout signal.
    on_iteration : callable, optional
        ``on_iteration(index, loss)`` for every iteration: as the run proceeds in runtime mode for the
        original family, after the single run otherwise.
    threads : int
        cpp_standalone OpenMP threads.
    backend : str
        Name stored in the Result and in error messages.

    Returns
    -------
    Result
        ``meta`` holds ``seconds`` (the whole call), ``compile_seconds`` (compilation in this call, 0.0
        when the build was cached), ``cached``, ``build_seconds`` (network construction, code
        generation and any compilation), ``run_seconds`` (the simulation), ``seconds_per_iteration``
        (``run_seconds / iterations``), ``compiled`` (= not ``cached``) and ``structure`` (build key).

    Raises
    ------
    ParameterError
        The scenario or ``mode`` is invalid.
    BackendError
        Brian2's code generation, the C++ compiler or the standalone binary failed.
    """
    t_start = time.perf_counter()
    if mode not in MODES:
        raise ParameterError(f"mode = {mode!r}: allowed values are {', '.join(MODES)}")
    sc = scenario.validated()
    run = run_event_scenario if sc.family == "event" else run_original_scenario
    return run(sc, mode=mode, record_weight_events=record_weight_events, record=record, on_iteration=on_iteration,
               threads=threads, backend=backend, t_start=t_start)
