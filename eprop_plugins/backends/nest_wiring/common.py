"""What both families' NEST networks share: layout types, kernel reset, nodes, connections, grids, results.

A NEST e-prop network of a scenario has the same skeleton in both families (docs/model.rst §0, §2):

* ``spike_generator -> parrot_neuron`` (static synapse, one step delay); the parrots own the plastic
  input synapses;
* the plastic synapse model from parrots and recurrent neurons to recurrent neurons (all to all, no
  autapses) and from recurrent neurons to readouts; weight matrices are ``[post, pre]``, NEST's
  layout of ``all_to_all`` weight arrays.  A sparse projection
  (:class:`~eprop_plugins.connectivity.SparseWeights`) is connected ``one_to_one`` from its
  connection list, so only its listed synapses exist in NEST;
* the learning-signal connection model readout -> recurrent with the feedback weights B;
* one ``step_rate_generator`` per readout -> readout through ``rate_connection_delayed`` on
  receptor 2 (the target);
* multimeters on every recurrent population and on the readouts, one spike recorder on the
  recurrent neurons, one weight recorder for the plastic synapses.  A losses-only network
  (``record=False``) has only the readouts' multimeter (the losses come from it) and, for weight
  events, the spike recorder (it tells spikes from flush events).

Every delay is one step.  The families differ in the neuron parameters they set, the extra
connections (cross-entropy normalisation, learning-window signal), the kernel settings, the stamp
offsets and how NEST's recordings become the aligned traces: see :mod:`.original` and :mod:`.event`.
This module imports neither.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import numpy as np

from ... import connectivity as cn
from ...errors import BackendError
from ...parameters import ADAPTIVE_MODELS
from ...results import Result, compute_losses, sort_weight_events
from .. import nest_translations as tr

__all__ = [
    "Offsets",
    "Layout",
    "NestNetwork",
    "Recording",
    "import_nest",
    "reset_kernel",
    "concat",
    "create_nodes",
    "connect",
    "connect_projection",
    "set_inputs",
    "amplitudes",
    "grid",
    "recurrent_traces",
    "recurrent_spikes",
    "weight_events",
    "result",
    "nest_errors",
]

#: the recorded recurrent state per Result trace name, for all recurrent neurons
RECURRENT_RECORDABLES = {"v": "V_m", "psi": "surrogate_gradient", "learning_signal": "learning_signal"}


@dataclass(frozen=True)
class Offsets:
    """NEST time stamps (in steps) of what belongs to the aligned step ``n`` (docs/model.rst §0).

    Attributes
    ----------
    generator : int
        A ``spike_generator`` emitting at ``n + generator`` reaches the recurrent neurons at ``n``.
    amplitude : int
        A ``step_rate_generator`` value in force from ``n + amplitude`` on is used at ``n``.
    recurrent : int
        Stamp of the recorded recurrent state and spikes of ``n``.
    readout : int
        Stamp of the recorded readout potential of ``n``.
    signal : int
        Stamp of the recorded readout, target and error signals of ``n``.
    learning_signal : int
        Stamp of the recorded learning signal paired with the surrogate gradient of ``n``.
    arrival : tuple of int
        Weight-recorder stamp minus the aligned arrival step, per projection (input, recurrent, readout).
    tail : int
        Steps simulated after the last aligned step so that every delayed recording exists.
    """

    generator: int
    amplitude: int
    recurrent: int
    readout: int
    signal: int
    learning_signal: int
    arrival: tuple[int, int, int]
    tail: int


@dataclass(frozen=True)
class Layout:
    """What a NEST network of one family is made of: model names, recordables and stamp offsets.

    NEST's built-in models and the project's NESTML models of a family share the recordables and
    offsets and differ only in ``models``.

    Attributes
    ----------
    family : str
        ``"original"`` or ``"event"``.
    models : dict
        Canonical recurrent models, ``readout``, ``synapse``, ``feedback`` -> NEST model name
        (:func:`~eprop_plugins.backends.nest_translations.model_names`).
    recordables : dict
        NEST recordable per Result trace name, for ``recurrent`` (all recurrent neurons), ``adaptive``
        (adaptive recurrent neurons only) and ``readout``.
    offsets : Offsets
        The family's stamp alignment.
    """

    family: str
    models: dict[str, str]
    recordables: dict[str, dict[str, str]]
    offsets: Offsets


@dataclass
class NestNetwork:
    """Handles of a network in the NEST kernel (NodeCollections) and the index maps of its nodes."""

    layout: Layout
    generators: Any
    parrots: Any
    populations: list[Any]  # one NodeCollection per scenario population
    readouts: Any
    target_generators: Any
    multimeters: list[tuple[Any, list[str], Any]]  # (multimeter, trace names, recorded population); [] losses only
    readout_multimeter: Any
    spike_recorder: Any  # None in a losses-only network without weight events
    weight_recorder: Any
    first_parrot: int
    first_rec: int
    first_out: int
    window_generator: Any = None  # event family: the learning-window signal
    simulated_steps: int = 0  # NEST steps simulated so far

    @property
    def recurrent(self) -> Any:
        """All recurrent neurons (one NodeCollection, contiguous ids)."""
        return concat(self.populations)


@dataclass
class Recording:
    """What :func:`collect` read from a network: aligned traces, weight events and notes for ``Result.meta``.

    ``losses`` is set by a losses-only collection (``traces`` then empty); otherwise :func:`result`
    computes them from ``traces["y"]`` and ``traces["target"]``.
    """

    traces: dict[str, np.ndarray]
    weight_events: dict[str, np.ndarray] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    losses: np.ndarray | None = None


def import_nest() -> Any:
    """Import NEST quietly (the import prints a banner once); warnings only."""
    import nest  # noqa: PLC0415 - imported only when a NEST backend is used

    nest.verbosity = nest.VerbosityLevel.WARNING
    return nest


def reset_kernel(sc, kernel_status: dict[str, Any], *, threads: int = 1,
                 after_reset: Callable[[], Any] | None = None) -> None:
    """Reset NEST, set resolution, virtual processes and ``kernel_status``, then call ``after_reset``.

    ``after_reset`` installs extension modules, for example (``nest.ResetKernel`` unloads them).
    """
    nest = import_nest()
    nest.ResetKernel()
    nest.set(resolution=sc.dt, total_num_virtual_procs=threads, print_time=False, **kernel_status)
    if after_reset is not None:
        after_reset()


def concat(collections: list[Any]) -> Any:
    """One NodeCollection of several (in order)."""
    out = collections[0]
    for c in collections[1:]:
        out = out + c
    return out


def create_nodes(sc, layout: Layout, recurrent_status: list[dict[str, Any]], readout_status: dict[str, Any],
                 *, window: bool = False, record: bool = True, spikes: bool = True) -> NestNetwork:
    """Create generators, parrots, the recurrent populations (contiguous ids), readouts and recorders.

    Parameters
    ----------
    sc : Scenario
        Validated scenario.
    layout : Layout
        Models and recordables.
    recurrent_status : list of dict
        NEST status of each population.
    readout_status : dict
        NEST status of the readouts.
    window : bool
        Also create one ``step_rate_generator`` for the learning-window signal.
    record : bool
        Put a multimeter on every recurrent population (False: losses only, none).
    spikes : bool
        With ``record`` False: still record the recurrent spikes (needed for weight events).
    """
    nest = import_nest()
    generators = nest.Create("spike_generator", sc.n_in)
    parrots = nest.Create("parrot_neuron", sc.n_in)
    pops = [nest.Create(layout.models[p.model], p.size, status) for p, status in zip(sc.populations, recurrent_status)]
    readouts = nest.Create(layout.models["readout"], sc.n_out, readout_status)
    target_generators = nest.Create("step_rate_generator", sc.n_out)
    window_generator = nest.Create("step_rate_generator") if window else None
    multimeters = []
    for pop, nodes in zip(sc.populations if record else [], pops):
        names = dict(layout.recordables["recurrent"])
        if pop.model in ADAPTIVE_MODELS:
            names.update(layout.recordables["adaptive"])
        mm = nest.Create("multimeter", {"interval": sc.dt, "record_from": list(names.values())})
        nest.Connect(mm, nodes)
        multimeters.append((mm, list(names), nodes))
    mm_out = nest.Create("multimeter", {"interval": sc.dt, "record_from": list(layout.recordables["readout"].values())})
    nest.Connect(mm_out, readouts)
    sr = None
    if record or spikes:
        sr = nest.Create("spike_recorder")
        nest.Connect(concat(pops), sr)
    wr = nest.Create("weight_recorder")
    first_rec = pops[0][0].global_id
    if any(nodes[0].global_id != first_rec + sum(len(q) for q in pops[:k]) for k, nodes in enumerate(pops)):
        raise RuntimeError("NEST did not create the recurrent populations with contiguous node ids")
    return NestNetwork(
        layout=layout, generators=generators, parrots=parrots, populations=pops, readouts=readouts,
        target_generators=target_generators, multimeters=multimeters, readout_multimeter=mm_out,
        spike_recorder=sr, weight_recorder=wr, first_parrot=parrots[0].global_id, first_rec=first_rec,
        first_out=readouts[0].global_id, window_generator=window_generator,
    )


def connect(net: NestNetwork, sc, synapse_status: dict[str, Any], plastic: dict[str, Any],
            *, record_weight_events: bool = True) -> None:
    """Wire inputs, plastic, feedback and target connections (the skeleton in the module doc).

    Parameters
    ----------
    net : NestNetwork
        From :func:`create_nodes`.
    sc : Scenario
        Validated scenario.
    synapse_status : dict
        The family's common properties of the plastic synapse model, set with ``SetDefaults`` together
        with the optimizer (:func:`~eprop_plugins.backends.nest_translations.synapse_defaults`) and,
        when ``record_weight_events``, the weight recorder.
    plastic : dict
        Extra per-connection parameters of the plastic synapses (besides model, delay and weight).
    record_weight_events : bool
        Attach the weight recorder (one entry per transmitted spike: costly).
    """
    nest = import_nest()
    dt = sc.dt
    models = net.layout.models
    defaults = {**tr.synapse_defaults(sc.optimizer), **synapse_status}
    if record_weight_events:
        defaults["weight_recorder"] = net.weight_recorder
    nest.SetDefaults(models["synapse"], defaults)
    plastic = {"synapse_model": models["synapse"], "delay": dt, **plastic}
    rec = net.recurrent
    nest.Connect(net.generators, net.parrots, "one_to_one", {"synapse_model": "static_synapse", "delay": dt})
    connect_projection(net.parrots, rec, sc.w_in, plastic)
    if sc.n_rec > 1:
        connect_projection(rec, rec, sc.w_rec, plastic, autapses=False)
    connect_projection(rec, net.readouts, sc.w_out, plastic)
    nest.Connect(net.readouts, rec, {"rule": "all_to_all", "allow_autapses": False},
                 {"synapse_model": models["feedback"], "delay": dt, "weight": sc.effective_feedback()})
    nest.Connect(net.target_generators, net.readouts, "one_to_one",
                 {"synapse_model": "rate_connection_delayed", "delay": dt, "receptor_type": 2})


def connect_projection(pre: Any, post: Any, w: cn.Weights, syn_spec: dict[str, Any], *,
                       autapses: bool = True) -> None:
    """Connect one plastic projection: ``all_to_all`` for a dense matrix, ``one_to_one`` for a sparse list.

    Parameters
    ----------
    pre, post : NodeCollection
        Presynaptic and postsynaptic nodes, each with contiguous node ids (index ``i`` is node
        ``pre[0] + i``).
    w : ndarray or SparseWeights
        ``[post, pre]`` weights.
    syn_spec : dict
        Synapse model, delay and the per-connection parameters (scalars).
    autapses : bool
        False for the recurrent projection.
    """
    nest = import_nest()
    if not cn.is_sparse(w):
        nest.Connect(pre, post, {"rule": "all_to_all", "allow_autapses": autapses},
                     {**syn_spec, "weight": np.asarray(w, dtype=float)})
        return
    if w.n_connections == 0:
        return
    n = w.n_connections
    # connect_arrays: node ids per connection, weights and delays as arrays, other parameters broadcast
    spec = {**syn_spec, "weight": w.weight, "delay": np.full(n, float(syn_spec["delay"]))}
    nest.Connect(np.int64(pre[0].global_id) + w.pre, np.int64(post[0].global_id) + w.post, "one_to_one", spec)


def amplitudes(values: np.ndarray, offset: int, dt: float) -> dict[str, np.ndarray]:
    """``step_rate_generator`` parameters: the value of aligned step n in force from ``n + offset`` on."""
    changes = np.concatenate([[0], np.nonzero(np.diff(values))[0] + 1])  # only where the value changes
    return {"amplitude_times": (changes + offset) * dt, "amplitude_values": values[changes]}


def set_inputs(net: NestNetwork, sc) -> None:
    """Input spike times and target amplitudes, shifted from aligned time to NEST time."""
    off, dt = net.layout.offsets, sc.dt
    net.generators.set([{"spike_times": (np.asarray(s, dtype=float) + off.generator) * dt} for s in sc.input_spikes])
    net.target_generators.set([amplitudes(np.asarray(sc.target[k], dtype=float), off.amplitude, dt)
                               for k in range(sc.n_out)])


def grid(events: dict, name: str, first_gid: int, n: int, stamp: int, n_steps: int, dt: float) -> np.ndarray:
    """Place multimeter values on the aligned ``(n_steps, n)`` grid; every cell must be recorded once.

    Parameters
    ----------
    events : dict
        A multimeter's ``events``.
    name : str
        NEST recordable.
    first_gid, n : int
        First node id and number of the recorded nodes (columns).
    stamp : int
        NEST time stamp (steps) of aligned step 0.
    n_steps : int
        Aligned steps (rows).
    dt : float
        Resolution, ms.
    """
    steps = np.rint(np.asarray(events["times"]) / dt).astype(np.int64) - stamp
    cols = np.asarray(events["senders"], dtype=np.int64) - first_gid
    keep = (steps >= 0) & (steps < n_steps) & (cols >= 0) & (cols < n)
    out = np.full((n_steps, n), np.nan)
    out[steps[keep], cols[keep]] = np.asarray(events[name], dtype=float)[keep]
    if np.isnan(out).any():
        raise RuntimeError(f"NEST recorded no {name!r} for some aligned steps (alignment or recording broken)")
    return out


def recurrent_traces(net: NestNetwork, sc) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """Recurrent traces ``v, psi, learning_signal, adaptation, v_th_adapt, z`` as NEST recorded them.

    Neurons without adaptation get ``adaptation = 0`` and ``v_th_adapt = v_thresh``.  The learning
    signal is as recorded (the event family completes it).

    Returns
    -------
    (dict, ndarray, ndarray)
        The traces ``(n_steps, n_rec)``, and the NEST stamp and recurrent index of every recorded spike.
    """
    N, dt, n_rec = sc.n_steps, sc.dt, sc.n_rec
    off = net.layout.offsets
    stamps = {"learning_signal": off.learning_signal}
    nest_names = {**net.layout.recordables["recurrent"], **net.layout.recordables["adaptive"]}
    traces: dict[str, np.ndarray] = {}
    offset = 0
    for pop, (mm, names, nodes) in zip(sc.populations, net.multimeters):
        ev = mm.events
        first = nodes[0].global_id
        for name in names:
            block = grid(ev, nest_names[name], first, len(nodes), stamps.get(name, off.recurrent), N, dt)
            traces.setdefault(name, np.zeros((N, n_rec)))[:, offset : offset + len(nodes)] = block
        if pop.model not in ADAPTIVE_MODELS:  # fixed threshold, no adaptation
            traces.setdefault("adaptation", np.zeros((N, n_rec)))
            v_th = traces.setdefault("v_th_adapt", np.zeros((N, n_rec)))
            v_th[:, offset : offset + len(nodes)] = pop.params["v_thresh"]
        offset += len(nodes)
    s_stamp, s_idx = recurrent_spikes(net, sc)
    s_step = s_stamp - off.recurrent
    keep = (s_step >= 0) & (s_step < N)
    z = np.zeros((N, n_rec), dtype=np.int8)
    z[s_step[keep], s_idx[keep]] = 1
    traces["z"] = z
    return traces, s_stamp, s_idx


def weight_events(net: NestNetwork, sc, spike_stamps: np.ndarray, spike_idx: np.ndarray) -> dict[str, np.ndarray]:
    """Weight recorder -> columns ``step`` (aligned arrival), ``proj``, ``pre``, ``post``, ``w``, sorted.

    The weight recorder also logs NEST's *flush events* (a recurrent neuron silent for a whole
    sequence sends one; no spike is transmitted): a recurrent sender's entry is kept only if the
    sender spiked at that stamp (``spike_stamps``, ``spike_idx`` from :func:`recurrent_traces`).
    """
    ev = net.weight_recorder.events
    arrival = net.layout.offsets.arrival
    stamp = np.rint(np.asarray(ev["times"]) / sc.dt).astype(np.int64)
    sender = np.asarray(ev["senders"], dtype=np.int64)
    target = np.asarray(ev["targets"], dtype=np.int64)
    w = np.asarray(ev["weights"], dtype=float)
    n_rec = sc.n_rec
    from_input = sender < net.first_rec
    pre = np.where(from_input, sender - net.first_parrot, sender - net.first_rec)
    to_out = target >= net.first_out
    post = np.where(to_out, target - net.first_out, target - net.first_rec)
    proj = np.where(from_input, 0, np.where(to_out, 2, 1)).astype(np.int8)
    step = stamp - np.where(from_input, arrival[0], np.where(to_out, arrival[2], arrival[1]))
    spiked = np.zeros((int(max(stamp.max(initial=0), spike_stamps.max(initial=0))) + 1, n_rec), dtype=bool)
    spiked[spike_stamps, spike_idx] = True
    real = from_input.copy()
    real[~from_input] = spiked[stamp[~from_input], pre[~from_input]]
    keep = real & (step >= 0) & (step < sc.n_steps)
    if np.any((pre[keep] < 0) | (pre[keep] >= np.where(from_input[keep], sc.n_in, n_rec))):
        raise RuntimeError("weight recorder: a sender is not part of the scenario's network")
    columns = {"step": step, "proj": proj, "pre": pre, "post": post, "w": w}
    return sort_weight_events({k: v[keep] for k, v in columns.items()})


def recurrent_spikes(net: NestNetwork, sc) -> tuple[np.ndarray, np.ndarray]:
    """NEST stamp and recurrent index of every spike the spike recorder holds."""
    sev = net.spike_recorder.events
    s_stamp = np.rint(np.asarray(sev["times"]) / sc.dt).astype(np.int64)
    return s_stamp, np.asarray(sev["senders"], dtype=np.int64) - net.first_rec


def result(sc, recording: Recording, backend: str, meta: dict[str, Any] | None = None) -> Result:
    """The :class:`~eprop_plugins.results.Result` of a recording: losses from ``y`` and ``target``.

    A losses-only recording (``recording.losses`` set) gives its losses and no traces.

    ``meta`` gets the recording's notes under ``"notes"`` (after any notes already in ``meta``).
    """
    meta = dict(meta or {})
    meta["notes"] = [*meta.get("notes", []), *recording.notes]
    traces = recording.traces
    losses = recording.losses if recording.losses is not None else compute_losses(sc, traces["y"], traces["target"])
    return Result(scenario=sc.name, family=sc.family, backend=backend, losses=losses, traces=traces,
                  weight_events=recording.weight_events, meta=meta)


@contextlib.contextmanager
def nest_errors(backend: str, scenario: str) -> Iterator[None]:
    """Re-raise NEST's errors (``KernelException`` and subclasses) as :class:`~eprop_plugins.errors.BackendError`."""
    nest = import_nest()
    try:
        yield
    except nest.NESTError as exc:
        raise BackendError(
            "NEST failed on a scenario that passed validation",
            backend=backend,
            scenario=scenario,
            hint="This is a limit of NEST's e-prop models that the project does not check for yet: run the scenario "
                 "on another backend (for example 'reference') and report it with the NEST message below",
            original=exc,
        ) from exc
