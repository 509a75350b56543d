"""Reading a PyNEST network as its user built it: input sources, recurrent populations, connections.

What :func:`nest_models.pynest.add_eprop` takes over from the user's nodes, and what it refuses
(with a :class:`~eprop_plugins.parameters.ParameterError` naming the node or connection and the
reason):

* **inputs**, one scenario input per node, in the order of the collection:

  - ``spike_generator`` and ``spike_train_injector`` nodes are *frozen*: their spike times are
    known before the run and become the scenario's input spikes (a spike emitted at ``t`` reaches
    the e-prop neurons in aligned step ``t/dt - 1``, the wiring's generator offset).  Refused:
    spike times off the grid, repeated times or multiplicities above 1 (a scenario input carries at
    most one spike per step);
  - any other spiking node (``parrot_neuron`` fed by a ``poisson_generator`` as in NEST's tutorials,
    a neuron of another population) is *live*: its spikes are seen while the network runs and are
    recorded for the replay;
  - devices that send each target its own spike train (``poisson_generator`` connected directly)
    or currents (``dc_generator``, ``noise_generator``) and recorders are refused;

* **populations**: size, and the parameters the e-prop model has (``tau_m``, ``C_m``, ``E_L``,
  ``V_th``, ``t_ref``, ``I_e``; ``V_reset`` for the event family's ``psc_delta`` models), which must
  be the same for every neuron of a population;
* **connections** from the inputs to the populations and among the populations, as connected
  (whatever rule made them): source, target, weight.  Refused: two connections of one pair
  (multapses), autapses, delays other than one step (e-prop's connections all have one), and
  connections into the populations from nodes that are neither inputs nor recorders.

This module only reads the kernel; it creates nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from eprop_plugins import connectivity as cn
from eprop_plugins.parameters import ParameterError

__all__ = [
    "FROZEN_SOURCES",
    "Inputs",
    "node_list",
    "read_inputs",
    "uniform_status",
    "connections",
    "foreign_sources",
]

#: input models whose spike times are read before the run (``spike_times``, ``origin``, ``start``, ``stop``)
FROZEN_SOURCES = ("spike_generator", "spike_train_injector")


@dataclass
class Inputs:
    """The user's input nodes, classified.

    Attributes
    ----------
    nodes : list of NodeCollection
        One single-node collection per scenario input, in order.
    live : ndarray of bool
        ``(n_in,)``: True for nodes whose spikes are only known while the network runs.
    spikes : list of ndarray
        Per input, the spike times of a frozen source (NEST ms, on the grid); empty for live inputs.
    """

    nodes: list[Any]
    live: np.ndarray
    spikes: list[np.ndarray]


def node_list(collection: Any) -> list[Any]:
    """The single-node collections of a NodeCollection, in its order."""
    return [collection[k] for k in range(len(collection))]


def _element_type(nest: Any, model: str) -> str:
    return str(nest.GetDefaults(model, "element_type"))


def _frozen_spike_times(node: Any, dt: float) -> np.ndarray:
    """Spike times (ms) a ``spike_generator``/``spike_train_injector`` emits, checked for the scenario format."""
    status = node.get()
    gid, model = status["global_id"], status["model"]
    origin, start, stop = float(status["origin"]), float(status["start"]), float(status["stop"])
    times = np.asarray(status["spike_times"], dtype=float) + origin
    mult = np.asarray(status.get("spike_multiplicities", []), dtype=float)
    if mult.size and np.any(mult != 1.0):
        k = int(np.flatnonzero(mult != 1.0)[0])
        raise ParameterError(f"inputs: node {gid} ({model}) has spike_multiplicities[{k}] = {mult[k]:g}; a scenario "
                             "input carries at most one spike per step (allowed: 1)")
    steps = times / dt
    off = np.flatnonzero(np.abs(steps - np.rint(steps)) > 1e-9 * np.maximum(1.0, np.abs(steps)))
    if off.size:
        raise ParameterError(f"inputs: node {gid} ({model}) has the spike time {times[off[0]]:g} ms off the "
                             f"simulation grid (resolution {dt:g} ms); allowed: whole multiples of the resolution")
    # NEST emits only spikes with origin + start < t <= origin + stop
    times = times[(times > origin + start) & (times <= origin + stop)]
    if np.any(np.diff(times) <= 0):
        raise ParameterError(f"inputs: node {gid} ({model}) emits two spikes at "
                             f"{times[np.flatnonzero(np.diff(times) <= 0)[0]]:g} ms; a scenario input carries at "
                             "most one spike per step (allowed: strictly increasing spike times)")
    return times


def read_inputs(nest: Any, inputs: Any, dt: float) -> Inputs:
    """Classify the user's input nodes (frozen spike sources or live spiking nodes); refuse the others.

    Raises
    ------
    ParameterError
        An input that is a device other than a frozen spike source, a recorder, or a frozen source
        whose spikes the scenario format cannot hold.
    """
    nodes = node_list(inputs)
    if not nodes:
        raise ParameterError("inputs: an empty NodeCollection; at least one input node is required")
    live, spikes = [], []
    for node in nodes:
        model = str(node.get("model"))
        gid = node.global_id
        if model in FROZEN_SOURCES:
            live.append(False)
            spikes.append(_frozen_spike_times(node, dt))
            continue
        kind = _element_type(nest, model)
        if kind != "neuron":
            why = ("it sends every target its own spike train, while an e-prop input is one spike train for all "
                   "its targets: connect it to parrot_neurons and pass the parrots as inputs"
                   if model.startswith("poisson_generator") or model.startswith("sinusoidal_poisson")
                   else "it is not a spike source")
            raise ParameterError(f"inputs: node {gid} is a {model} ({kind}); {why}. Allowed inputs: "
                                 f"{', '.join(FROZEN_SOURCES)} or spiking nodes (parrot_neuron, neurons)")
        live.append(True)
        spikes.append(np.zeros(0))
    return Inputs(nodes, np.asarray(live, dtype=bool), spikes)


def uniform_status(population: Any, names: Sequence[str], where: str) -> dict[str, float]:
    """The values of ``names`` (NEST names the model has) shared by all neurons of a population.

    Raises
    ------
    ParameterError
        Two neurons of the population differ in one of them (a scenario population has one
        parameter set).
    """
    status = population[0].get()
    present = [n for n in names if n in status]
    out: dict[str, float] = {}
    if not present:
        return out
    values = population.get(present) if len(present) > 1 else {present[0]: population.get(present[0])}
    for name in present:
        v = np.atleast_1d(np.asarray(values[name], dtype=float))
        differs = np.flatnonzero(v != v[0])
        if differs.size:
            k = int(differs[0])
            raise ParameterError(
                f"{where}: {name} of neuron {population[k].global_id} is {v[k]:g}, of neuron "
                f"{population[0].global_id} {v[0]:g}; a scenario population has one parameter set: split the "
                f"neurons into populations with one {name} each, or set it with recurrent={{...}}")
        if np.isfinite(v[0]):
            out[name] = float(v[0])
    return out


def connections(nest: Any, sources: list[Any], targets: list[Any], dt: float, what: str) -> cn.Weights:
    """The user's connections from ``sources`` to ``targets`` (lists of single-node collections), as connected.

    Returns
    -------
    ndarray or SparseWeights
        ``[post, pre]`` by position in ``targets`` and ``sources``: a dense matrix when the user
        connected every pair (every pair but the diagonal, for a population onto itself), else the
        connection list (:mod:`eprop_plugins.connectivity`: the other pairs have no synapse).

    Raises
    ------
    ParameterError
        A multapse, an autapse, or a delay other than one step (``dt``), naming the connection.
    """
    shape = (len(targets), len(sources))
    conns = nest.GetConnections(source=_collection(nest, sources), target=_collection(nest, targets))
    if len(conns) == 0:
        return cn.SparseWeights(shape, np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0))
    st = conns.get(["source", "target", "weight", "delay", "synapse_model"])
    src = np.atleast_1d(np.asarray(st["source"], dtype=np.int64))
    tgt = np.atleast_1d(np.asarray(st["target"], dtype=np.int64))
    delay = np.atleast_1d(np.asarray(st["delay"], dtype=float))
    models = np.atleast_1d(np.asarray(st["synapse_model"]))
    bad = np.flatnonzero(np.abs(delay - dt) > 1e-9 * dt)
    if bad.size:
        k = int(bad[0])
        raise ParameterError(f"{what}: the connection {src[k]} -> {tgt[k]} ({models[k]}) has delay {delay[k]:g} ms; "
                             f"e-prop's connections have a delay of one step: allowed {dt:g} ms (the resolution)")
    pre, post = _positions(sources, src), _positions(targets, tgt)
    same = np.flatnonzero(src == tgt)
    if same.size:
        raise ParameterError(f"{what}: node {src[same[0]]} is connected to itself; e-prop has no autapses "
                             "(connect with allow_autapses=False)")
    key = post * len(sources) + pre
    uniq, counts = np.unique(key, return_counts=True)
    if np.any(counts > 1):
        k = int(np.flatnonzero(key == uniq[np.argmax(counts > 1)])[0])
        raise ParameterError(f"{what}: {src[k]} -> {tgt[k]} is connected more than once; e-prop has one weight per "
                             "pair (connect with allow_multapses=False)")
    sw = cn.SparseWeights.from_pairs(shape, post, pre, np.atleast_1d(np.asarray(st["weight"], dtype=float)))
    onto_itself = sources is targets
    if sw.n_connections == shape[0] * shape[1] - (min(shape) if onto_itself else 0):
        return cn.to_dense(sw, force=True)  # every pair connected (the diagonal is 0 and no synapse)
    return sw


def foreign_sources(nest: Any, targets: list[Any], known: set[int], what: str) -> None:
    """Refuse connections into ``targets`` from nodes outside ``known`` (recorders excepted).

    Raises
    ------
    ParameterError
        Naming the first such source node, its model and a target.
    """
    conns = nest.GetConnections(target=_collection(nest, targets))
    if len(conns) == 0:
        return
    st = conns.get(["source", "target"])
    src = np.atleast_1d(np.asarray(st["source"], dtype=np.int64))
    tgt = np.atleast_1d(np.asarray(st["target"], dtype=np.int64))
    unknown = ~np.isin(src, np.fromiter(known, dtype=np.int64, count=len(known)))
    for gid in np.unique(src[unknown]):
        model = str(nest.NodeCollection([int(gid)]).get("model"))
        if _element_type(nest, model) == "recorder":  # multimeters, voltmeters: they only read the neurons
            continue
        k = int(np.flatnonzero(src == gid)[0])
        raise ParameterError(
            f"{what}: node {src[k]} ({model}) -> {tgt[k]} cannot be taken over: it is neither one of the inputs nor "
            "a neuron of the populations. Pass spiking sources (parrot_neuron, spike_generator, spike_train_injector) "
            "in inputs; currents become i_offset (recurrent={'i_offset': ...})")


def _positions(nodes: list[Any], gids: np.ndarray) -> np.ndarray:
    """Position in ``nodes`` of each node id in ``gids`` (all of them in ``nodes``)."""
    ids = np.array([n.global_id for n in nodes], dtype=np.int64)
    order = np.argsort(ids)
    return order[np.searchsorted(ids[order], gids)]


def _collection(nest: Any, nodes: list[Any]) -> Any:
    """One NodeCollection of single-node collections (NEST wants ascending, unique ids)."""
    return nest.NodeCollection(sorted({n.global_id for n in nodes}))
