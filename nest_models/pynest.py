"""PyNEST helpers: give an ordinary NEST network (built with ``nest.Create``/``nest.Connect``) e-prop.

NEST cannot change the model of an existing node, so :func:`add_eprop` reads the user's network
(the spike trains of its ``spike_generator`` inputs, the size, parameters and initial weights of the
recurrent population) and builds its e-prop version in the same kernel, next to it: parrot neurons
fed by the user's spike trains, the NESTML e-prop neurons, readouts, plastic connections,
learning-signal (feedback) connections and the target generators, wired exactly as the ``nestml``
backend does (:mod:`eprop_plugins.backends.nest_wiring` with the NESTML layout).  Both families:
``family='original'`` (``eprop_iaf(_adapt)_bsshslm_2020_neuron``, ``eprop_synapse_bsshslm_2020``,
update intervals of one sequence) and ``family='event'`` (``eprop_iaf(_adapt)_neuron``,
``eprop_iaf_psc_delta(_adapt)_neuron``, ``eprop_synapse``, an optional per-step learning-window
signal).  The user's own nodes are left untouched.

Everything is described by a canonical :class:`~eprop_plugins.scenario.Scenario`
(``EpropAttachment.scenario``), so the trained network can be checked against the NumPy reference
or any other backend.  Parameters are the canonical ones (:mod:`eprop_plugins.parameters`); the
population's ``tau_m``, ``C_m``, ``E_L``, ``V_th``, ``t_ref``, ``I_e`` (and ``V_reset`` for the
event family's ``psc_delta`` models) are taken over unless given.

Topology: e-prop as specified is dense -- every input reaches every recurrent neuron and the
recurrent neurons are all-to-all (no autapses).  Pairs the user did not connect start with weight 0
and learn like the others.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from eprop_plugins import parameters as par
from eprop_plugins.backends import nest_translations as tr
from eprop_plugins.backends import nest_wiring as nw
from eprop_plugins.parameters import ParameterError
from eprop_plugins.results import Result
from eprop_plugins.scenario import Population, Scenario

from . import build

__all__ = ["install", "EpropAttachment", "network_scenario", "add_eprop"]

#: canonical parameters of an ordinary neuron that carry over to the e-prop neurons, where the e-prop
#: model has the parameter (``v_reset``: the event family's psc_delta models); NEST names and units
#: from the translation table
_INHERITED = ("tau_m", "cm", "v_rest", "v_thresh", "tau_refrac", "i_offset", "v_reset")


def install() -> None:
    """Install the NESTML e-prop module into NEST (building it on first use).

    NEST accepts extension modules only before any node exists: call this right after
    ``nest.ResetKernel()`` (and after setting the resolution), before building the network.
    """
    build.load_module()


@dataclass
class EpropAttachment:
    """The e-prop network added to a user's NEST network.

    Attributes
    ----------
    scenario : Scenario
        The validated canonical description (inputs, weights, parameters, target, family).
    net : NestNetwork
        NEST handles: ``parrots``, ``populations`` (the e-prop neurons), ``readouts``,
        ``target_generators``, recorders.
    """

    scenario: Scenario
    net: nw.NestNetwork

    @property
    def recurrent(self) -> Any:
        """The e-prop recurrent neurons (NodeCollection)."""
        return self.net.recurrent

    @property
    def readouts(self) -> Any:
        """The readout neurons (NodeCollection)."""
        return self.net.readouts

    def train(self, on_iteration: Callable[[int, float], None] | None = None) -> Result:
        """Simulate all iterations of the scenario and return traces and losses (aligned time).

        Parameters
        ----------
        on_iteration : callable, optional
            ``on_iteration(index, loss)`` after each iteration.

        Raises
        ------
        BackendError
            NEST failed during the simulation.
        """
        sc = self.scenario
        with nw.nest_errors("nestml-pynest", sc.name):
            nw.simulate(self.net, sc, on_iteration)
            recording = nw.collect(self.net, sc, record_weight_events=False)
        return nw.result(sc, recording, "nestml-pynest")


def _spike_steps(generator: Any, dt: float, family: str) -> np.ndarray:
    """Aligned steps of a user's generator spikes (as the e-prop parrots will emit them)."""
    times = np.asarray(generator.get("spike_times"), dtype=float)
    origin = float(generator.get("origin"))
    return np.rint((times + origin) / dt).astype(np.int64) - nw.layout(family, nestml=True).offsets.generator


def _weights(nest: Any, sources: Any, targets: Any, what: str) -> np.ndarray:
    """Dense [post, pre] matrix of the user's connections (0 where none); refuses multapses."""
    w = np.zeros((len(targets), len(sources)))
    conns = nest.GetConnections(source=sources, target=targets)
    if len(conns) == 0:
        return w
    st = conns.get(["source", "target", "weight"])
    pre = np.asarray(st["source"], dtype=np.int64) - sources[0].global_id
    post = np.asarray(st["target"], dtype=np.int64) - targets[0].global_id
    if len(set(zip(pre.tolist(), post.tolist()))) != pre.size:
        raise ParameterError(f"{what}: a pair of neurons is connected more than once; e-prop needs one weight per pair")
    w[post, pre] = np.asarray(st["weight"], dtype=float)
    return w


def network_scenario(
    inputs: Any,
    population: Any,
    target: np.ndarray,
    *,
    sequence: float,
    family: str = "original",
    learning_window: float | None = None,
    learning_window_signal: np.ndarray | None = None,
    model: str = "iaf",
    recurrent: dict[str, Any] | None = None,
    readout: dict[str, Any] | None = None,
    optimizer: dict[str, Any] | None = None,
    synapse: dict[str, Any] | None = None,
    w_out: np.ndarray | None = None,
    w_fb: np.ndarray | None = None,
    seed: int = 0,
    name: str = "pynest-network",
) -> Scenario:
    """Describe the e-prop version of a user's NEST network as a validated canonical scenario.

    Parameters
    ----------
    inputs : NodeCollection
        The user's ``spike_generator`` nodes (contiguous ids), the network's inputs.
    population : NodeCollection
        The user's recurrent neurons (contiguous ids, any neuron model).
    target : ndarray
        ``(n_out, n_steps)`` target signal in aligned time (step n is compared with the readout of
        step n); ``n_steps`` must be a whole number of sequences.
    sequence : float
        Sequence length, ms (original family: also the e-prop update interval; event family: the
        interval after which a silent neuron sends a flush event and the unit of the losses).
    family : {'original', 'event'}
        E-prop family (docs/model.rst).
    learning_window : float, optional
        Original family: ms at the end of each sequence in which the error counts (default: the
        whole sequence).
    learning_window_signal : ndarray, optional
        Event family: ``(n_steps,)`` per-step factor on the error in aligned time (the readouts'
        learning-window signal; default all ones).
    model : {'iaf', 'iaf_adapt', 'iaf_psc_delta', 'iaf_psc_delta_adapt'}
        Recurrent e-prop model; the ``psc_delta`` models exist only in the event family.
    recurrent, readout, optimizer, synapse : dict, optional
        Canonical parameters (PyNN names and units, see :mod:`eprop_plugins.parameters`).
    w_out, w_fb : ndarray, optional
        Initial readout weights ``(n_out, n_rec)`` and feedback weights ``(n_rec, n_out)``; default
        normal with standard deviation ``1/sqrt(n_rec)``, drawn with ``seed``.
    seed : int
        Seed of the default ``w_out``/``w_fb``.

    Raises
    ------
    ParameterError
        Inputs that are not spike generators, spikes outside the simulated time or (original family)
        at a sequence start, multapses, autapses, a learning window of the other family, or
        canonical parameters out of range.
    """
    import nest

    if family not in par.FAMILIES:
        raise ParameterError(f"family = {family!r}: allowed values are {', '.join(par.FAMILIES)}")
    if family == "event" and learning_window is not None:
        raise ParameterError("learning_window: the event family takes a per-step learning_window_signal instead")
    dt = float(nest.resolution)
    if any(m != "spike_generator" for m in np.atleast_1d(inputs.get("model"))):
        raise ParameterError("inputs: must be spike_generator nodes (their spike trains are the e-prop inputs)")
    target = np.atleast_2d(np.asarray(target, dtype=float))
    n_out, n_steps = target.shape
    T = par.to_steps(sequence, dt, "sequence", allow_zero=False)
    if n_steps % T:
        raise ParameterError(f"target: {n_steps} steps is not a whole number of sequences of {T} steps")
    n_rec = len(population)
    status = population[0].get()
    # the user's values of the parameters the e-prop model has, translated back to canonical units
    applicable = {row.name for row in par.RECURRENT if par.applies(row, family, model)}
    nest_names = {row[0]: row[1] for row in tr.RECURRENT if row[0] in _INHERITED and row[0] in applicable}
    found = {n: float(status[n]) for n in nest_names.values() if n in status and np.isfinite(status[n])}
    params = {**tr.from_nest(tr.RECURRENT, found), **(recurrent or {})}
    rng = np.random.default_rng(seed)
    w_rec = _weights(nest, population, population, "population -> population")
    if np.any(np.diag(w_rec) != 0):
        raise ParameterError("population -> population: autapses are not supported by e-prop")
    network = {"family": family, "dt": dt, "sequence": float(sequence), "feedback": "random"}
    if family == "original":
        network["learning_window"] = learning_window
    sc = Scenario(
        name=name,
        description="e-prop version of a user's PyNEST network (nest_models.pynest.add_eprop)",
        network=network,
        populations=[Population(model, n_rec, params)],
        readout=dict(readout or {}),
        optimizer=dict(optimizer or {}),
        synapse=dict(synapse or {}),
        n_in=len(inputs),
        n_out=n_out,
        n_sequences=n_steps // T,
        w_in=_weights(nest, inputs, population, "inputs -> population"),
        w_rec=w_rec,
        w_out=rng.normal(size=(n_out, n_rec)) / np.sqrt(n_rec) if w_out is None else w_out,
        w_fb=rng.normal(size=(n_rec, n_out)) / np.sqrt(n_rec) if w_fb is None else w_fb,
        input_spikes=[_spike_steps(g, dt, family) for g in inputs],
        target=target,
        learning_window_signal=learning_window_signal,
    )
    return sc.validated()


def add_eprop(inputs: Any, population: Any, target: np.ndarray, **kwargs: Any) -> EpropAttachment:
    """Add the e-prop version of a user's network to the running NEST kernel.

    Takes the arguments of :func:`network_scenario`.  The kernel must not have simulated yet (the
    e-prop update intervals and NEST's optimizer clocks start at time 0); its resolution is the
    scenario's ``dt``; the module must have been installed with :func:`install` before the network
    was created.  Original family: sets the kernel's ``eprop_update_interval``,
    ``eprop_learning_window`` and ``eprop_reset_neurons_on_update``.  Both families set the defaults
    of NEST's e-prop synapse model (the optimizer, and a default weight inside its bounds); the
    recurrent neurons send flush events after a silent sequence.

    Returns
    -------
    EpropAttachment
        Call ``.train()`` to simulate and get the losses.

    Raises
    ------
    ParameterError
        A kernel that has simulated, a missing module, or a bad network or parameter (see
        :func:`network_scenario`).
    BackendError
        NEST refused the e-prop network.
    """
    import nest

    if nest.biological_time != 0.0:
        raise ParameterError(
            f"add_eprop: the kernel has already simulated {nest.biological_time} ms; add e-prop before simulating"
        )
    missing = [m for m in build.MODELS if m not in nest.node_models]
    if missing:
        raise ParameterError(
            f"add_eprop: the NESTML e-prop models ({', '.join(missing)}) are not installed; call "
            "nest_models.pynest.install() right after nest.ResetKernel(), before creating the network"
        )
    sc = network_scenario(inputs, population, target, **kwargs)
    with nw.nest_errors("nestml-pynest", sc.name):
        status = nw.kernel_status(sc)
        if status:
            nest.set(**status)
        net = nw.create_network(sc, nw.layout(sc.family, nestml=True), record_weight_events=False)
    return EpropAttachment(sc, net)
