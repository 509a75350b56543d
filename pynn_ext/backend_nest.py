"""The ``pynn-nest`` backend: a scenario built as a PyNN script on pyNN.nest with the e-prop types of ``pynn_ext``.

The network is made of PyNN objects only: a ``SpikeSourceArray`` population carrying the scenario's
input spikes, one e-prop population per scenario population (:data:`pynn_ext.standardmodels.RECURRENT_TYPES`),
an :class:`~pynn_ext.standardmodels.EpropReadout` with the target (and learning-window) signal, and
``sim.Projection`` objects with ``AllToAllConnector`` and the dense initial weight matrices (``FromListConnector``
with the listed synapses for a sparse projection, :mod:`pynn_ext.scenario_weights`).  The neurons
are the project's NESTML models (``eprop_models="nestml"``, as the ``nestml`` backend) and the synapses
NEST's own e-prop connections.

To compare trace by trace, the backend then reads NEST's recorders in aligned time with the shared NEST
wiring (:mod:`eprop_plugins.backends.nest_wiring`): it attaches NEST multimeters, a spike recorder and a
weight recorder to the PyNN populations (``node_collection``) and steps the kernel with
:func:`~eprop_plugins.backends.nest_wiring.simulate`, which also switches the event family's constant
currents on at the aligned step 0 (the populations are created with ``i_offset = 0`` there).

Time base: a scenario input spike arriving at aligned step ``s`` is a ``SpikeSourceArray`` spike at
``(s + 2) dt`` (the generator emits one step earlier, PyNN's parrot delay); target element ``j`` of the
readout pairs with the readout potential recorded at ``j dt`` (``pynn_ext.nest``), so the scenario's
target of step ``n`` is element ``n + readout offset``.
"""

from __future__ import annotations

import time
from typing import Any, Callable

import numpy as np
import pyNN
import pyNN.nest as sim

from eprop_plugins.backends import check_supported
from eprop_plugins.backends import nest_wiring as nw
from eprop_plugins.errors import BackendError
from eprop_plugins.parameters import ADAPTIVE_MODELS
from eprop_plugins.results import Result
from nest_models import build

from . import nest as glue
from . import standardmodels as types
from .scenario_weights import block_connector

__all__ = ["NAME", "MODELS", "check", "build_key", "is_built", "build_network", "run"]

NAME = "pynn-nest"
#: ``setup(eprop_models=...)`` of this backend: the project's NESTML neurons
MODELS = "nestml"


def check() -> str:
    """Raise unless pyNN.nest and NEST's e-prop models import and the NESTML module is built or buildable.

    Returns
    -------
    str
        PyNN's version and where the NESTML module is (or that the first run builds it).
    """
    nw.check_models()
    if not build.is_built():
        build.check_toolchain()
        return f"PyNN {pyNN.__version__} ({sim.__name__}); NESTML module not built yet (the first run builds it)"
    return f"PyNN {pyNN.__version__} ({sim.__name__}); NESTML module {build.module_directory()}"


def build_key(scenario) -> str:
    """The compiled artefact a scenario needs: the NESTML module (one for all scenarios)."""
    return build.source_hash()


def is_built(scenario) -> bool:
    """Whether the NESTML module of the current sources is in the cache."""
    return build.is_built()


def _input_times(sc, off) -> list[np.ndarray]:
    return [(np.asarray(s, dtype=float) + off.generator + 1) * sc.dt for s in sc.input_spikes]


def _signal(values: np.ndarray, lead: int) -> np.ndarray:
    """A per-step signal as the readout's ``Sequence``: ``lead`` leading zeros, then one value per aligned step."""
    return np.concatenate([np.zeros(lead), np.asarray(values, dtype=float)])


def build_network(sc, *, record_weight_events: bool = True) -> tuple[nw.NestNetwork, dict[str, Any]]:
    """Build a validated scenario as a PyNN network on pyNN.nest; return the wiring's view of it and the PyNN objects.

    ``sim.setup`` must not have been called for another network that is still needed (it resets NEST).
    """
    fam, dt = sc.family, sc.dt
    sim.setup(timestep=dt, min_delay=dt, eprop_models=MODELS)
    lay = nw.layout(fam, nestml=MODELS == "nestml")
    off = lay.offsets
    event = fam == "event"
    inputs = sim.Population(sc.n_in, sim.SpikeSourceArray(spike_times=[sim.Sequence(t) for t in
                                                                       _input_times(sc, off)]), label="input")
    pops = []
    for k, p in enumerate(sc.populations):
        params = dict(p.params)
        if event:
            params["i_offset"] = 0.0  # switched on at aligned step 0 by nest_wiring.simulate
        pops.append(sim.Population(p.size, types.RECURRENT_TYPES[p.model](family=fam, **params), label=f"rec{k}"))
    readout = dict(sc.readout)
    if event:
        readout["i_offset"] = 0.0
    signals = {"target": [sim.Sequence(_signal(sc.target[k], off.readout)) for k in range(sc.n_out)]}
    if event:
        lam = np.ones(sc.n_steps) if sc.learning_window_signal is None else sc.learning_window_signal
        signals["learning_window_signal"] = sim.Sequence(_signal(lam, off.readout))
    else:
        readout.update(sequence=sc.network["sequence"], learning_window=sc.network["learning_window"])
    out = sim.Population(sc.n_out, types.EpropReadout(family=fam, **readout), label="readout")
    out.set(**signals)
    wr = glue.weight_recorder() if record_weight_events else nw.import_nest().Create("weight_recorder")
    opt = dict(sc.optimizer)
    optimizer = (types.Adam if opt.pop("type") == "adam" else types.GradientDescent)(**opt)
    synapse = dict(sc.synapse)
    rec = pops[0] if len(pops) == 1 else sim.Assembly(*pops)

    projections = {}

    def connect(name: str, pre: Any, post: Any, w: Any, autapses: bool = True) -> None:
        made = block_connector(sim, w, autapses=autapses)
        if made is not None:  # a sparse projection without synapses has no Projection
            conn, weight = made
            projections[name] = sim.Projection(pre, post, conn, types.EpropSynapse(
                optimizer=optimizer, weight=weight, delay=dt, **synapse))

    connect("input", inputs, rec, sc.w_in)
    if sc.n_rec > 1:
        connect("recurrent", rec, rec, sc.w_rec, autapses=False)
    connect("readout", rec, out, sc.w_out)
    projections["feedback"] = sim.Projection(out, rec, sim.AllToAllConnector(),
                                             types.FeedbackSynapse(weight=sc.effective_feedback().T, delay=dt))
    nest = nw.import_nest()
    if event:  # as the wiring: silent neurons flush once per sequence
        for pop in pops:
            pop.node_collection.set(flush_event_send_interval=sc.steps_per_sequence * dt)
    multimeters = []
    for p, pop in zip(sc.populations, pops):
        names = dict(lay.recordables["recurrent"])
        if p.model in ADAPTIVE_MODELS:
            names.update(lay.recordables["adaptive"])
        mm = nest.Create("multimeter", {"interval": dt, "record_from": list(names.values())})
        nest.Connect(mm, pop.node_collection)
        multimeters.append((mm, list(names), pop.node_collection))
    mm_out = nest.Create("multimeter", {"interval": dt, "record_from": list(lay.recordables["readout"].values())})
    nest.Connect(mm_out, out.node_collection)
    sr = nest.Create("spike_recorder")
    nest.Connect(nw.concat([p.node_collection for p in pops]), sr)
    glue.prepare()  # PyNN connects the spike sources' parrots (deferred until the delays are known)
    net = nw.NestNetwork(
        layout=lay, generators=inputs.node_collection_source, parrots=inputs.node_collection,
        populations=[p.node_collection for p in pops], readouts=out.node_collection,
        target_generators=out.eprop_generators["target"], multimeters=multimeters, readout_multimeter=mm_out,
        spike_recorder=sr, weight_recorder=wr, first_parrot=inputs.node_collection[0].global_id,
        first_rec=pops[0].node_collection[0].global_id, first_out=out.node_collection[0].global_id,
        window_generator=out.eprop_generators.get("learning_window_signal"),
    )
    return net, {"sim": sim, "inputs": inputs, "populations": pops, "readout": out, "projections": projections}


def run(scenario, *, record_weight_events: bool = True,
        on_iteration: Callable[[int, float], None] | None = None) -> Result:
    """Run a scenario as a PyNN script on pyNN.nest (NESTML neurons); return the Result in aligned time.

    Parameters
    ----------
    scenario : Scenario
        Any scenario; validated first.
    record_weight_events : bool
        Record one weight event per spike transmitted by a plastic synapse.
    on_iteration : callable, optional
        ``on_iteration(index, loss)`` after each simulated iteration.

    Returns
    -------
    Result
        Traces ``v, z, psi, adaptation, v_th_adapt, learning_signal, readout_v, y, target, error``, weight
        events and losses, as the ``nestml`` backend; ``meta``: ``seconds``, ``compile_seconds`` (the
        NESTML module build if this run built it), ``cached``, ``build_seconds``, ``simulate_seconds``,
        ``pynn_version``, ``nest_version``, ``notes``.

    Raises
    ------
    ParameterError
        ``feedback='symmetric'`` (NEST's learning-signal connections keep B fixed).
    BackendError
        The NESTML module cannot be built or NEST failed on the scenario.
    """
    t0 = time.perf_counter()
    sc = scenario.validated()
    check_supported(NAME, sc)
    try:
        with nw.nest_errors(NAME, sc.name):
            net, objects = build_network(sc, record_weight_events=record_weight_events)
            t_build = time.perf_counter() - t0
            nw.simulate(net, sc, on_iteration)
            t_sim = time.perf_counter() - t0 - t_build
            recording = nw.collect(net, sc, record_weight_events=record_weight_events)
    except build.BuildError as exc:
        raise BackendError("the NESTML e-prop module could not be built or loaded", backend=NAME, scenario=sc.name,
                           hint="Run `eprop build-nest --force --verbose` to see the whole build log",
                           original=exc) from exc
    compile_seconds = glue.eprop_state().build_seconds
    meta = {"seconds": time.perf_counter() - t0, "compile_seconds": compile_seconds,
            "cached": compile_seconds == 0.0, "build_seconds": t_build, "simulate_seconds": t_sim,
            "pynn_version": pyNN.__version__, "nest_version": str(nw.import_nest().__version__),
            "notes": [f"PyNN {pyNN.__version__} script on {sim.__name__} (NESTML neurons, NEST's e-prop synapses); "
                      "NEST's recorders read in aligned time by the NEST wiring"]}
    return nw.result(sc, recording, NAME, meta)
