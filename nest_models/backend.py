"""The ``nestml`` backend: e-prop neurons written in NESTML, compiled into a NEST extension module.

The recurrent neurons and readouts are the project's NESTML models (``nest_models/*.nestml``, built
and cached by :mod:`nest_models.build`); the plastic synapses and feedback connections are NEST's
own ``eprop_synapse_bsshslm_2020`` and ``eprop_learning_signal_connection_bsshslm_2020`` (see
``docs/nestml.rst`` for why).  The network, its wiring, the stamp alignment and the collection of
recordings are exactly those of the ``nest-builtin`` backend
(:mod:`eprop_plugins.backends.nest_builtin` and ``nest_builtin_event``), reused with this
module's model names (the NESTML models record under NEST's names), so the two NEST backends
differ only in the neuron models.
"""

from __future__ import annotations

import time
from typing import Any, Callable

from eprop_plugins.backends import nest_builtin as nb
from eprop_plugins.parameters import ParameterError
from eprop_plugins.results import Result, compute_losses

from . import build

__all__ = ["MODEL_NAMES", "LAYOUT", "check", "run", "build_network"]

#: NESTML model names per family (``_neuron`` suffix: no clash with NEST's built-ins); the plastic
#: and feedback connections are NEST's own (an e-prop synapse in NESTML is not needed, see docs/nestml.rst)
MODEL_NAMES: dict[str, dict[str, str]] = {
    "original": {
        "iaf": "eprop_iaf_bsshslm_2020_neuron",
        "iaf_adapt": "eprop_iaf_adapt_bsshslm_2020_neuron",
        "readout": "eprop_readout_bsshslm_2020_neuron",
        "synapse": "eprop_synapse_bsshslm_2020",
        "feedback": "eprop_learning_signal_connection_bsshslm_2020",
    },
    "event": {
        "iaf": "eprop_iaf_neuron",
        "iaf_adapt": "eprop_iaf_adapt_neuron",
        "iaf_psc_delta": "eprop_iaf_psc_delta_neuron",
        "iaf_psc_delta_adapt": "eprop_iaf_psc_delta_adapt_neuron",
        "readout": "eprop_readout_neuron",
        "synapse": "eprop_synapse",
        "feedback": "eprop_learning_signal_connection",
    },
}

#: the nest-builtin wiring with the NESTML models (their recordables have NEST's names)
LAYOUT = nb.OriginalLayout(models=MODEL_NAMES["original"])


def check() -> str:
    """Raise unless the backend can run here; return the path of the (cached or buildable) module.

    A cached module for the current sources is enough; otherwise the build tool chain must be
    complete (:func:`nest_models.build.check_toolchain` names what is missing).
    """
    nb.check()
    so = build.cache_dir() / "nestml" / build.source_hash() / "lib" / f"{build.MODULE_NAME}.so"
    if so.is_file():
        return str(so)
    build.check_toolchain()
    return f"{so} (not built yet; the first run builds it)"


def build_network(sc, *, threads: int = 1, record_weight_events: bool = True) -> nb.NestNetwork:
    """Reset NEST, load the NESTML module and build the original-family network of a validated scenario.

    Parameters
    ----------
    sc : Scenario
        Validated scenario (original family).
    threads : int
        NEST ``local_num_threads`` (the results do not depend on it).
    record_weight_events : bool
        Attach NEST's weight recorder to the plastic synapses (costly: one entry per transmitted spike).
    """
    nb.setup_kernel(sc, extra={"total_num_virtual_procs": threads} if threads != 1 else None)
    build.load_module()
    net = nb.create_nodes(sc, LAYOUT)
    nb.connect_original(net, sc, LAYOUT, record_weight_events=record_weight_events)
    nb.set_stimuli(net, sc)
    return net


def run(
    scenario,
    *,
    record_weight_events: bool = True,
    on_iteration: Callable[[int, float], None] | None = None,
    threads: int = 1,
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

    Returns
    -------
    Result
        Traces ``v, z, psi, adaptation, v_th_adapt, learning_signal, readout_v, y, target, error`` in
        aligned time, weight events and losses (as ``nest-builtin``; event family: see
        ``nest_builtin_event`` for the learning-signal completion).

    Raises
    ------
    ParameterError
        ``feedback='symmetric'`` (NEST's learning-signal connections keep B fixed) or bad ``threads``.
    """
    sc = scenario.validated()
    if sc.network["feedback"] == "symmetric":
        raise ParameterError(
            "network.feedback = 'symmetric': NEST's e-prop learning-signal connections keep B fixed, so B cannot "
            "track W_out; use 'symmetric_initial' or 'random' on nestml, or another backend"
        )
    if not isinstance(threads, int) or threads < 1:
        raise ParameterError(f"threads = {threads!r}: allowed range is integer >= 1")
    if sc.family == "event":
        from eprop_plugins.backends.nest_builtin_event import run_event_nest

        res = run_event_nest(sc, record_weight_events=record_weight_events, on_iteration=on_iteration,
                             models=MODEL_NAMES["event"], threads=threads, after_reset=build.load_module,
                             backend="nestml")
        res.meta.update({"threads": threads, "module": str(build.load_module())})
        res.meta["notes"][:0] = ["neurons: NESTML models; synapses: NEST's eprop_synapse"]
        return res
    t0 = time.perf_counter()
    net = build_network(sc, threads=threads, record_weight_events=record_weight_events)
    t_build = time.perf_counter() - t0
    nb.simulate(net, sc, LAYOUT, on_iteration=on_iteration)
    t_sim = time.perf_counter() - t0 - t_build
    traces, events = nb.collect_original(net, sc, LAYOUT, record_weight_events=record_weight_events)
    losses = compute_losses(sc, traces["y"], traces["target"])
    meta: dict[str, Any] = {
        "seconds": time.perf_counter() - t0,
        "build_seconds": t_build,
        "simulate_seconds": t_sim,
        "threads": threads,
        "module": str(build.load_module()),
        "notes": [
            "neurons: NESTML models; synapses: NEST's eprop_synapse_bsshslm_2020",
            "weight recorder entries of NEST flush events were removed",
            "y outside the learning window is derived from the recorded readout potential",
            "fr_reg and per-synapse traces are not observable in NEST",
        ],
    }
    return Result(scenario=sc.name, family="original", backend="nestml", losses=losses, traces=traces,
                  weight_events=events, meta=meta)
