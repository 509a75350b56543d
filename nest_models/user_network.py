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

This module only reads the kernel; it creates nothing.  NEST reads connection properties slowly
(seconds per 100 000 connections): :func:`incoming` reads them once.
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
    "node_ids",
    "read_inputs",
    "uniform_status",
    "Incoming",
    "incoming",
    "connections",
    "foreign_sources",
]

#: input models whose spike times are read before the run (``spike_times``, ``origin``, ``start``, ``stop``)
FROZEN_SOURCES = ("spike_generator", "spike_train_injector")
#: parts of the names of NEST's devices that draw a spike train per target (Poisson, gamma, PPD, MIP, packets)
_SPIKE_DEVICES = ("poisson", "gamma_sup", "ppd_sup", "mip_generator", "pulsepacket")


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


def node_ids(collections: Sequence[Any]) -> np.ndarray:
    """The node ids of NodeCollections, concatenated in order."""
    return np.concatenate([np.asarray(c.tolist(), dtype=np.int64).reshape(-1) for c in collections])


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
            if kind == "stimulator" and any(word in model for word in _SPIKE_DEVICES):
                why = ("it sends every target its own spike train, while an e-prop input is one spike train for all "
                       "its targets: connect it to parrot_neurons and pass the parrots as inputs")
            elif kind == "stimulator":
                why = "it sends currents or rates, not spikes"
            else:
                why = "it is not a spike source"
            raise ParameterError(f"inputs: node {gid} ({model}, a {kind}) cannot be an input: {why}. Allowed inputs: "
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


@dataclass
class Incoming:
    """Every connection into the populations, one row each (read from NEST once: reading is slow).

    Attributes
    ----------
    source, target : ndarray of int
        NEST node ids.
    weight, delay : ndarray of float
        Weights and delays (ms).
    """

    source: np.ndarray
    target: np.ndarray
    weight: np.ndarray
    delay: np.ndarray


def incoming(nest: Any, targets: np.ndarray) -> Incoming:
    """All connections into the nodes ``targets`` (node ids), from any node."""
    conns = nest.GetConnections(target=nest.NodeCollection(np.unique(targets).tolist()))
    if len(conns) == 0:
        return Incoming(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0), np.zeros(0))
    st = conns.get(["source", "target", "weight", "delay"])
    return Incoming(*(np.atleast_1d(np.asarray(st[k], dtype=t))
                      for k, t in (("source", np.int64), ("target", np.int64), ("weight", float), ("delay", float))))


def connections(nest: Any, inc: Incoming, sources: np.ndarray, targets: np.ndarray, dt: float,
                what: str) -> cn.Weights:
    """The user's connections from ``sources`` to ``targets`` (node ids, in scenario order), as connected.

    Parameters
    ----------
    inc : Incoming
        The connections into ``targets`` (:func:`incoming`).

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
    rows = np.isin(inc.source, sources)
    src, tgt, delay = inc.source[rows], inc.target[rows], inc.delay[rows]
    bad = np.flatnonzero(np.abs(delay - dt) > 1e-9 * dt)
    if bad.size:
        k = int(bad[0])
        model = nest.GetConnections(source=nest.NodeCollection([int(src[k])]),
                                    target=nest.NodeCollection([int(tgt[k])])).get("synapse_model")
        raise ParameterError(f"{what}: the connection {src[k]} -> {tgt[k]} ({np.atleast_1d(model)[0]}) has delay "
                             f"{delay[k]:g} ms; e-prop's connections have a delay of one step: allowed {dt:g} ms (the "
                             "resolution)")
    same = np.flatnonzero(src == tgt)
    if same.size:
        raise ParameterError(f"{what}: node {src[same[0]]} is connected to itself; e-prop has no autapses "
                             "(connect with allow_autapses=False)")
    pre, post = _positions(sources, src), _positions(targets, tgt)
    key = post * len(sources) + pre
    uniq, counts = np.unique(key, return_counts=True)
    if np.any(counts > 1):
        k = int(np.flatnonzero(key == uniq[np.argmax(counts > 1)])[0])
        raise ParameterError(f"{what}: {src[k]} -> {tgt[k]} is connected more than once; e-prop has one weight per "
                             "pair (connect with allow_multapses=False)")
    sw = cn.SparseWeights.from_pairs(shape, post, pre, inc.weight[rows])
    onto_itself = np.array_equal(sources, targets)
    if sw.n_connections == shape[0] * shape[1] - (min(shape) if onto_itself else 0):
        return cn.to_dense(sw, force=True)  # every pair connected (the diagonal is 0 and no synapse)
    return sw


def foreign_sources(nest: Any, inc: Incoming, known: np.ndarray, what: str) -> None:
    """Refuse connections of ``inc`` from nodes outside ``known`` (recorders excepted).

    Raises
    ------
    ParameterError
        Naming the first such source node, its model and a target.
    """
    src, tgt = inc.source, inc.target
    unknown = ~np.isin(src, known)
    for gid in np.unique(src[unknown]):
        model = str(nest.NodeCollection([int(gid)]).get("model"))
        if _element_type(nest, model) == "recorder":  # multimeters, voltmeters: they only read the neurons
            continue
        k = int(np.flatnonzero(src == gid)[0])
        raise ParameterError(
            f"{what}: node {src[k]} ({model}) -> {tgt[k]} cannot be taken over: it is neither one of the inputs nor "
            "a neuron of the populations. Pass spiking sources (parrot_neuron, spike_generator, spike_train_injector) "
            "in inputs; currents become i_offset (recurrent={'i_offset': ...})")


def _positions(ids: np.ndarray, gids: np.ndarray) -> np.ndarray:
    """Position in ``ids`` of each node id in ``gids`` (all of them in ``ids``)."""
    order = np.argsort(ids)
    return order[np.searchsorted(ids[order], gids)]
