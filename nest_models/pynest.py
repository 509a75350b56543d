"""PyNEST helpers: give an ordinary NEST network (built with ``nest.Create``/``nest.Connect``) e-prop.

NEST cannot change the model of an existing node, so :func:`add_eprop` reads the user's network
(:mod:`nest_models.user_network`: its inputs, the recurrent populations with their parameters and
the connections as the user made them) and builds its e-prop version in the same kernel, next to
it: the NESTML e-prop neurons, readouts, plastic connections, learning-signal (feedback) connections
and the target generators, wired exactly as the ``nestml`` backend does
(:mod:`eprop_plugins.backends.nest_wiring` with the NESTML layout).  The user's own nodes are left
untouched.  Both families: ``family='original'`` (``eprop_iaf(_adapt)_bsshslm_2020_neuron``,
``eprop_synapse_bsshslm_2020``, update intervals of one sequence) and ``family='event'``
(``eprop_iaf(_adapt)_neuron``, ``eprop_iaf_psc_delta(_adapt)_neuron``, ``eprop_synapse``, an
optional per-step learning-window signal).

Inputs.  ``spike_generator`` and ``spike_train_injector`` nodes are frozen: their spike times are
the scenario's input spikes, fed to the wiring's spike generators.  Any other spiking node (the
``parrot_neuron`` s of NEST's tutorials, fed by a ``poisson_generator``) is live: the e-prop network
learns from its spikes as they come (online learning), through one relay per input, and records
them.  The relay (:data:`RELAY`, an ``iaf_psc_delta`` that fires once in every step in which at
least one spike arrives) passes one spike per step, as a scenario input carries (a parrot repeats
the two spikes a Poisson generator may send in one step); in the original family it also withholds
the spikes that would arrive in the first step of a sequence (NEST's ``*_bsshslm_2020`` neurons drop
those, the scenario format refuses them).  After :meth:`EpropAttachment.train`,
``EpropAttachment.scenario`` holds the recorded input, so the online run can be replayed on any
backend and compared with the reference step for step.

Connectivity is kept as connected: the scenario's weights are the user's connections (any rule,
any sparsity, their weights); several populations (one model and parameter set each) are one
recurrent network.  Everything is described by a canonical
:class:`~eprop_plugins.scenario.Scenario` (``EpropAttachment.scenario``).  Parameters are the
canonical ones (:mod:`eprop_plugins.parameters`); each population's ``tau_m``, ``C_m``, ``E_L``,
``V_th``, ``t_ref``, ``I_e`` (and ``V_reset`` for the event family's ``psc_delta`` models) are taken
over unless given.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from eprop_plugins import parameters as par
from eprop_plugins.backends import nest_translations as tr
from eprop_plugins.backends import nest_wiring as nw
from eprop_plugins.parameters import ParameterError
from eprop_plugins.results import Result
from eprop_plugins.scenario import Population, Scenario

from . import build
from . import user_network as un

__all__ = ["install", "EpropAttachment", "network_scenario", "add_eprop", "RELAY"]

#: canonical parameters of an ordinary neuron that carry over to the e-prop neurons, where the e-prop
#: model has the parameter (``v_reset``: the event family's psc_delta models); NEST names and units
#: from the translation table
_INHERITED = ("tau_m", "cm", "v_rest", "v_thresh", "tau_refrac", "i_offset", "v_reset")

#: the relay between a live input and the e-prop network: its potential is the input of the current
#: step only (tau_m far below any resolution: the previous value decays to 0), so it fires once in
#: every step in which a spike (weight 1 mV, any multiplicity) arrives and never otherwise
RELAY = {"E_L": 0.0, "V_m": 0.0, "V_reset": 0.0, "V_th": 0.5, "tau_m": 1e-6, "C_m": 1.0, "t_ref": 0.0, "I_e": 0.0}
#: weight of the relays' gate (original family), mV: far below any multiplicity of 1 mV inputs
_GATE_WEIGHT = -1e6


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
        The validated canonical description (inputs, weights, parameters, target, family).  With
        live inputs their spike trains are empty until :meth:`train` has run; then they are the
        recorded ones (the scenario replays the online run).
    net : NestNetwork
        NEST handles: ``parrots`` (the e-prop network's input neurons), ``populations`` (the e-prop
        neurons), ``readouts``, ``target_generators``, recorders.
    live : ndarray of bool
        ``(n_in,)``: inputs whose spikes are only known while the network runs.
    relays : NodeCollection or None
        One :data:`RELAY` per live input (user's node -> relay -> the e-prop network's parrot).
    input_recorder : NodeCollection or None
        ``spike_recorder`` on the e-prop network's parrots (live inputs only).
    record_weight_events : bool
        The plastic synapses report to NEST's weight recorder (``Result.weight_events``).
    """

    scenario: Scenario
    net: nw.NestNetwork
    live: np.ndarray
    relays: Any = None
    input_recorder: Any = None
    record_weight_events: bool = False

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

        With live inputs, ``scenario`` is afterwards the replay scenario of this run (the recorded
        input spikes), and the Result belongs to it.

        Parameters
        ----------
        on_iteration : callable, optional
            ``on_iteration(index, loss)`` after each iteration.

        Raises
        ------
        RuntimeError
            Called a second time.
        BackendError
            NEST failed during the simulation.
        """
        sc = self.scenario
        if self.net.simulated_steps:
            raise RuntimeError("train: this network has been trained already (NEST's clocks have moved on)")
        with nw.nest_errors("nestml-pynest", sc.name):
            nw.simulate(self.net, sc, on_iteration)
            recording = nw.collect(self.net, sc, record_weight_events=self.record_weight_events)
        if self.input_recorder is not None:
            self.scenario = dataclasses.replace(sc, input_spikes=self.recorded_inputs()).validated()
        return nw.result(self.scenario, recording, "nestml-pynest")

    def recorded_inputs(self) -> list[np.ndarray]:
        """The input spikes the e-prop network received, per input, in aligned steps (live inputs only).

        Raises
        ------
        RuntimeError
            No live input, or a recorded frozen input differs from its scenario spike train
            (alignment broken).
        """
        if self.input_recorder is None:
            raise RuntimeError("recorded_inputs: this network has no live input (its scenario holds every spike)")
        sc, off = self.scenario, self.net.layout.offsets
        ev = self.input_recorder.events
        # a parrot spike stamped n + generator + 1 reaches the e-prop neurons in aligned step n
        steps = np.rint(np.asarray(ev["times"]) / sc.dt).astype(np.int64) - (off.generator + 1)
        index = np.asarray(ev["senders"], dtype=np.int64) - self.net.first_parrot
        keep = (steps >= 0) & (steps < sc.n_steps)
        order = np.lexsort((steps[keep], index[keep]))  # by input, then step
        steps, index = steps[keep][order], index[keep][order]
        bounds = np.searchsorted(index, np.arange(sc.n_in + 1))
        trains = [np.unique(steps[bounds[i]:bounds[i + 1]]) for i in range(sc.n_in)]
        for i in np.flatnonzero(~self.live):
            if not np.array_equal(trains[i], sc.input_spikes[i]):
                raise RuntimeError(f"input {i}: the recorded spikes differ from its spike train (alignment broken)")
        return trains


def _per_population(value: Any, n: int, name: str, kind: type) -> list[Any]:
    """One ``value`` per population: a single value for all, or a sequence of ``n``."""
    if isinstance(value, kind) or value is None:
        return [value] * n
    values = list(value)
    if len(values) != n:
        raise ParameterError(f"{name}: {len(values)} values for {n} populations; allowed: one value or one per "
                             "population")
    return values


def _populations(population: Any) -> list[Any]:
    pops = list(population) if isinstance(population, (list, tuple)) else [population]
    if not pops or any(len(p) == 0 for p in pops):
        raise ParameterError("population: allowed values are a non-empty NodeCollection or a list of them")
    return pops


def _inherited(pop: Any, k: int, family: str, model: str, given: dict[str, Any]) -> dict[str, Any]:
    """Canonical parameters of population ``k`` taken over from its NEST status, then ``given``."""
    applicable = {row.name for row in par.RECURRENT if par.applies(row, family, model)}
    nest_names = {row[0]: row[1] for row in tr.RECURRENT if row[0] in _INHERITED and row[0] in applicable}
    names = [n for c, n in nest_names.items() if c not in given]
    found = un.uniform_status(pop, names, f"population[{k}]")
    return {**tr.from_nest(tr.RECURRENT, found), **given}


def _describe(
    inputs: Any,
    population: Any,
    target: np.ndarray,
    *,
    sequence: float,
    family: str = "original",
    learning_window: float | None = None,
    learning_window_signal: np.ndarray | None = None,
    model: str | Sequence[str] = "iaf",
    recurrent: dict[str, Any] | Sequence[dict[str, Any]] | None = None,
    readout: dict[str, Any] | None = None,
    optimizer: dict[str, Any] | None = None,
    synapse: dict[str, Any] | None = None,
    w_out: np.ndarray | None = None,
    w_fb: np.ndarray | None = None,
    seed: int = 0,
    name: str = "pynest-network",
) -> tuple[Scenario, un.Inputs]:
    """The scenario of :func:`network_scenario` and the classified inputs."""
    import nest

    if family not in par.FAMILIES:
        raise ParameterError(f"family = {family!r}: allowed values are {', '.join(par.FAMILIES)}")
    if family == "event" and learning_window is not None:
        raise ParameterError("learning_window: the event family takes a per-step learning_window_signal instead")
    dt = float(nest.resolution)
    ins = un.read_inputs(nest, inputs, dt)
    pops = _populations(population)
    models = _per_population(model, len(pops), "model", str)
    params = _per_population(recurrent, len(pops), "recurrent", dict)
    target = np.atleast_2d(np.asarray(target, dtype=float))
    n_out, n_steps = target.shape
    T = par.to_steps(sequence, dt, "sequence", allow_zero=False)
    if n_steps % T:
        raise ParameterError(f"target: {n_steps} steps is not a whole number of sequences of {T} steps")
    rec_ids = un.node_ids(pops)
    in_ids = un.node_ids(ins.nodes)
    if np.unique(rec_ids).size != rec_ids.size:
        raise ParameterError("population: a neuron belongs to two populations (or twice to one)")
    shared = np.intersect1d(rec_ids, in_ids)
    if shared.size:
        raise ParameterError(f"inputs: node {shared[0]} is also a neuron of the populations")
    inc = un.incoming(nest, rec_ids)
    un.foreign_sources(nest, inc, np.concatenate([rec_ids, in_ids]), "population")
    n_rec = rec_ids.size
    w_rec = un.connections(nest, inc, rec_ids, rec_ids, dt, "population -> population")
    w_in = un.connections(nest, inc, in_ids, rec_ids, dt, "inputs -> population")
    populations = []
    for k, (pop, m, p) in enumerate(zip(pops, models, params)):
        if m not in par.RECURRENT_MODELS:
            raise ParameterError(f"model = {m!r}: allowed values are {', '.join(par.RECURRENT_MODELS)}")
        populations.append(Population(m, len(pop), _inherited(pop, k, family, m, dict(p or {}))))
    rng = np.random.default_rng(seed)
    network = {"family": family, "dt": dt, "sequence": float(sequence), "feedback": "random"}
    if family == "original":
        network["learning_window"] = learning_window
    # a frozen source's spike at t is emitted by the wiring's generator at t: aligned step t/dt - offset
    offset = nw.layout(family, nestml=True).offsets.generator
    input_spikes = [np.rint(t / dt).astype(np.int64) - offset for t in ins.spikes]
    _check_frozen(ins, input_spikes, T, n_steps, family, dt)
    sc = Scenario(
        name=name,
        description="e-prop version of a user's PyNEST network (nest_models.pynest.add_eprop)",
        network=network,
        populations=populations,
        readout=dict(readout or {}),
        optimizer=dict(optimizer or {}),
        synapse=dict(synapse or {}),
        n_in=len(ins.nodes),
        n_out=n_out,
        n_sequences=n_steps // T,
        w_in=w_in,
        w_rec=w_rec,
        w_out=rng.normal(size=(n_out, n_rec)) / np.sqrt(n_rec) if w_out is None else w_out,
        w_fb=rng.normal(size=(n_rec, n_out)) / np.sqrt(n_rec) if w_fb is None else w_fb,
        input_spikes=input_spikes,
        target=target,
        learning_window_signal=learning_window_signal,
    )
    return sc.validated(), ins


def _check_frozen(ins: un.Inputs, steps: list[np.ndarray], T: int, n_steps: int, family: str, dt: float) -> None:
    """Refuse frozen spikes the scenario cannot hold, naming the node (the scenario would name the index)."""
    for node, arrival, times in zip(ins.nodes, steps, ins.spikes):
        late = np.flatnonzero(arrival >= n_steps)
        if late.size:
            raise ParameterError(
                f"inputs: node {node.global_id} ({node.get('model')}) spikes at {times[late[0]]:g} ms, which arrives "
                f"after the {n_steps} simulated steps (the target's length); allowed spike times up to "
                f"{n_steps * dt:g} ms")
        if family == "original":
            first = np.flatnonzero(arrival % T == 0)
            if first.size:
                raise ParameterError(
                    f"inputs: node {node.global_id} ({node.get('model')}) spikes at {times[first[0]]:g} ms, which "
                    "arrives in the first step of a sequence; the original family's neurons drop such spikes "
                    f"(NEST *_bsshslm_2020), so allowed spike times t have t/dt - 1 not a multiple of {T}")


def network_scenario(inputs: Any, population: Any, target: np.ndarray, **kwargs: Any) -> Scenario:
    """Describe the e-prop version of a user's NEST network as a validated canonical scenario.

    Parameters
    ----------
    inputs : NodeCollection
        The network's inputs, one scenario input per node (:mod:`nest_models.user_network`):
        ``spike_generator`` / ``spike_train_injector`` nodes (frozen: their spike times become the
        input spikes) or spiking nodes such as the ``parrot_neuron`` s behind a ``poisson_generator``
        (live: empty spike trains here, recorded by :meth:`EpropAttachment.train`).
    population : NodeCollection or list of NodeCollection
        The user's recurrent neurons (any neuron model), one collection per population.
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
    model : str or list of str
        Recurrent e-prop model (``iaf``, ``iaf_adapt``, ``iaf_psc_delta``, ``iaf_psc_delta_adapt``;
        the ``psc_delta`` models exist only in the event family), one for all populations or one each.
    recurrent : dict or list of dict, optional
        Canonical recurrent parameters (PyNN names and units, :mod:`eprop_plugins.parameters`), for
        all populations or one dict each; they override the values taken over from NEST.
    readout, optimizer, synapse : dict, optional
        Canonical parameters.
    w_out, w_fb : ndarray, optional
        Initial readout weights ``(n_out, n_rec)`` and feedback weights ``(n_rec, n_out)``; default
        normal with standard deviation ``1/sqrt(n_rec)``, drawn with ``seed``.
    seed : int
        Seed of the default ``w_out``/``w_fb``.
    name : str
        Scenario name.

    Raises
    ------
    ParameterError
        Inputs that are no spike sources, frozen spikes the format cannot hold (off the grid,
        repeated, outside the simulated time or, original family, at a sequence start), multapses,
        autapses, delays other than one step, connections from nodes that are not inputs,
        populations whose neurons differ in a taken-over parameter, a learning window of the other
        family, or canonical parameters out of range.
    """
    return _describe(inputs, population, target, **kwargs)[0]


def _connect_live(nest: Any, sc: Scenario, net: nw.NestNetwork, ins: un.Inputs) -> tuple[Any, Any]:
    """User's live node -> relay -> e-prop parrot, the original family's gate, and the parrots' recorder."""
    dt = sc.dt
    index = np.flatnonzero(ins.live)
    relays = nest.Create("iaf_psc_delta", index.size, RELAY)
    one = {"synapse_model": "static_synapse", "weight": 1.0, "delay": dt}
    # NEST connects arrays of node ids pair by pair (the user's live nodes need not be sorted)
    pairwise = {"synapse_model": "static_synapse", "weight": np.ones(index.size), "delay": np.full(index.size, dt)}
    sources = np.array([ins.nodes[i].global_id for i in index], dtype=np.int64)
    relay_ids = np.asarray(relays.tolist(), dtype=np.int64)
    nest.Connect(sources, relay_ids, "one_to_one", pairwise)
    nest.Connect(relay_ids, np.asarray(net.parrots.tolist(), dtype=np.int64)[index], "one_to_one", pairwise)
    if sc.family == "original" and sc.n_sequences > 1:
        # a live spike stamped k T reaches the e-prop neurons in aligned step k T, a sequence start:
        # the gate's spike at k T arrives at the relays in the same step and holds them below threshold
        T = sc.steps_per_sequence
        gate = nest.Create("spike_generator", 1, {"spike_times": np.arange(1, sc.n_sequences) * T * dt})
        nest.Connect(gate, relays, "all_to_all", {**one, "weight": _GATE_WEIGHT})
    recorder = nest.Create("spike_recorder")
    nest.Connect(net.parrots, recorder)
    return relays, recorder


def add_eprop(inputs: Any, population: Any, target: np.ndarray, *, record_weight_events: bool = False,
              **kwargs: Any) -> EpropAttachment:
    """Add the e-prop version of a user's network to the running NEST kernel.

    Takes the arguments of :func:`network_scenario`.  The kernel must not have simulated yet (the
    e-prop update intervals and NEST's optimizer clocks start at time 0); its resolution is the
    scenario's ``dt``; the module must have been installed with :func:`install` before the network
    was created.  Original family: sets the kernel's ``eprop_update_interval``,
    ``eprop_learning_window`` and ``eprop_reset_neurons_on_update``.  Both families set the defaults
    of NEST's e-prop synapse model (the optimizer, and a default weight inside its bounds); the
    recurrent neurons send flush events after a silent sequence.  Live inputs are connected through
    relays and recorded (module doc).

    Parameters
    ----------
    record_weight_events : bool
        Record one weight event per spike transmitted by a plastic synapse (``Result.weight_events``;
        costly in long runs).

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
    sc, ins = _describe(inputs, population, target, **kwargs)
    relays = recorder = None
    with nw.nest_errors("nestml-pynest", sc.name):
        status = nw.kernel_status(sc)
        if status:
            nest.set(**status)
        net = nw.create_network(sc, nw.layout(sc.family, nestml=True), record_weight_events=record_weight_events)
        if ins.live.any():
            relays, recorder = _connect_live(nest, sc, net, ins)
    return EpropAttachment(sc, net, ins.live, relays, recorder, record_weight_events)
