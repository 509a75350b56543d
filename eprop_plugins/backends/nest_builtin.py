"""The ``nest-builtin`` backend: NEST 3.10's own C++ e-prop models, the external anchor.

Both families run on the shared NEST wiring (:mod:`eprop_plugins.backends.nest_wiring`) with NEST's
built-in models: ``eprop_iaf(_adapt)_bsshslm_2020``, ``eprop_readout_bsshslm_2020``,
``eprop_synapse_bsshslm_2020`` and ``eprop_learning_signal_connection_bsshslm_2020`` in the original
family; ``eprop_iaf(_adapt)``, ``eprop_iaf_psc_delta(_adapt)``, ``eprop_readout``, ``eprop_synapse``
and ``eprop_learning_signal_connection`` in the event family.  The wiring, the stamp alignment and
how the recordings become aligned traces are documented in :mod:`.nest_wiring.original` and
:mod:`.nest_wiring.event`.

NEST quirks handled by the wiring (listed in ``Result.meta["notes"]``): the weight recorder also
logs flush events (dropped); NEST zeroes or windows the recorded readout signals (``y`` is derived
from the recorded readout potential); the event family's learning signal is completed where NEST
had erased its history.  Not observable in NEST (omitted from the Result): ``fr_reg``, the
per-synapse traces and dense weight snapshots.
"""

from __future__ import annotations

import time
from typing import Callable

import numpy as np

from ..parameters import ParameterError
from ..results import Result
from . import check_supported
from . import nest_wiring as nw

__all__ = ["check", "check_original_supported", "build_key", "is_built", "run"]

NAME = "nest-builtin"


def check() -> str:
    """Import NEST and confirm the built-in e-prop models of both families exist.

    Returns
    -------
    str
        NEST's version string (for example ``"3.10.0"``).

    Raises
    ------
    ImportError
        NEST cannot be imported.
    RuntimeError
        A required e-prop model is missing from this NEST build.
    """
    return nw.check_models()


def build_key(scenario) -> None:
    """Nothing is compiled for this backend: always None."""
    return None


def is_built(scenario) -> bool:
    """Nothing is compiled for this backend: always True."""
    return True


def check_original_supported(sc) -> None:
    """Refuse original-family scenarios that NEST 3.10's ``*_bsshslm_2020`` models cannot simulate.

    A constant current that alone lifts a reset neuron over threshold makes it spike in the first step
    of every update interval and once before the first interval starts; NEST then fails inside
    ``Simulate`` (``KernelException: Expected ... e-prop history entry``).

    Raises
    ------
    ParameterError
        Naming the population's ``i_offset`` and the allowed range.
    """
    for k, pop in enumerate(sc.populations):
        p = pop.params
        alpha = np.exp(-sc.dt / p["tau_m"])
        limit = (p["v_thresh"] - p["v_rest"]) * p["cm"] / (p["tau_m"] * (1.0 - alpha))
        if p["i_offset"] >= limit:
            raise ParameterError(
                f"populations[{k}].params.i_offset = {p['i_offset']!r} nA: allowed range on nest-builtin (original "
                f"family) is < {limit:.6g} nA; a larger offset alone makes a reset neuron spike in the first step "
                f"of an update interval, which NEST 3.10's *_bsshslm_2020 models cannot simulate"
            )


def run(scenario, *, record_weight_events: bool = True, on_iteration: Callable[[int, float], None] | None = None,
        flush_event_send_interval: float | None = None, record: bool = True) -> Result:
    """Run a scenario on NEST's built-in e-prop models.

    Parameters
    ----------
    scenario : Scenario
        Any scenario; validated first.
    record_weight_events : bool
        Record one weight event per spike transmitted by a plastic synapse.
    on_iteration : callable, optional
        ``on_iteration(index, loss)`` after each simulated iteration.
    flush_event_send_interval : float, optional
        ms; default one sequence, as NEST's tests.  Flush events do not change any number.
    record : bool
        Record every step.  False: losses only (bit-identical to a recording run), empty
        ``traces``, no multimeter on the recurrent neurons (memory no longer grows with the
        recording); weight events still when ``record_weight_events``.

    Returns
    -------
    Result
        Traces ``v, z, psi, adaptation, v_th_adapt, learning_signal, readout_v, y, target, error``
        in aligned time (``record``), weight events and losses; ``meta``: ``seconds``,
        ``compile_seconds`` (0.0), ``cached`` (True: nothing to compile), ``build_seconds``,
        ``simulate_seconds``, ``nest_version``, ``record``, ``notes``.

    Raises
    ------
    ParameterError
        The scenario asks for something NEST's built-in models cannot do (``feedback='symmetric'``;
        original family: an ``i_offset`` that alone makes a reset neuron spike).
    BackendError
        NEST failed on the scenario anyway.
    """
    t0 = time.perf_counter()
    sc = scenario.validated()
    check_supported(NAME, sc)
    if sc.family == "original":
        check_original_supported(sc)
    check()
    res = nw.run(sc, nw.layout(sc.family), backend=NAME, record_weight_events=record_weight_events,
                 on_iteration=on_iteration, flush_interval=flush_event_send_interval, record=record)
    res.meta.update({"seconds": time.perf_counter() - t0, "compile_seconds": 0.0, "cached": True})
    return res
