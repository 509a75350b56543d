"""The ``pynn-brian2`` backend: a scenario as a PyNN script on pyNN.brian2 with the :mod:`pynn_ext` types.

The network is built the way a PyNN user writes it (``SpikeSourceArray`` inputs, ``AllToAllConnector``
projections with :class:`~pynn_ext.EpropSynapse`, a :class:`~pynn_ext.FeedbackSynapse` projection,
``EpropReadout(target=...)``), run with ``sim.run`` and read back through ``get_data`` (neo); only
what PyNN does not record (firing-rate term, weight snapshots, synapse traces) comes from Brian2
monitors added to PyNN's network.  Both families; sparse projections are ``FromListConnector`` lists
(:mod:`pynn_ext.scenario_weights`).
"""

from __future__ import annotations

import gc
import hashlib
import math
import time
from pathlib import Path
from dataclasses import dataclass, field
from typing import Any, Callable

import brian2 as b2
import numpy as np
import pyNN.brian2 as sim
from pyNN.parameters import Sequence

from brian2_ext.builds import CythonCompiles, runtime_marker
from brian2_ext.network_common import fan_out
from brian2_ext.runner_common import input_spike_pairs
from brian2_ext.sessions import FirstStep
from brian2_ext.weight_windows import WeightWindows
from eprop_plugins import connectivity as cn
from eprop_plugins.cache import atomic_write
from eprop_plugins.backends import check_supported
from eprop_plugins.parameters import ADAPTIVE_MODELS, SYNAPSE, ParameterError
from eprop_plugins.reference.common import recurrent_constants
from eprop_plugins.results import Result, WeightEventLog, compute_losses

from . import brian2 as glue
from . import standardmodels as sm
from .scenario_weights import block_connector

__all__ = ["NAME", "PynnNetwork", "run", "check", "build_network", "unsupported_reason", "build_key", "is_built"]

NAME = "pynn-brian2"

#: the modules whose text decides the generated code of a network (with Brian2's version)
CODE_SOURCES = ("pynn_ext/brian2.py", "pynn_ext/backend_brian2.py", "brian2_ext/equations.py",
                "brian2_ext/equations_event.py", "brian2_ext/event_functions.py", "brian2_ext/network_common.py")


def _code_structure(sc) -> tuple:
    """What the generated code of a scenario's PyNN network depends on (numbers, sizes and weights do not).

    The Brian2 objects are named by role and count (:meth:`pynn_ext.brian2.NetworkGlue.object_name`), so this is
    the populations' models and surrogate functions, the readout's loss, the optimizer, which projection blocks
    have synapses, and which synapse traces are recorded.
    """
    blocks = []
    n_pop = len(sc.populations)
    offsets = np.cumsum([0] + [p.size for p in sc.populations])
    for kind, w in sc.projections().items():
        post, pre, _ = cn.connections(w, autapses=kind != "rec")
        pre_pop = np.searchsorted(offsets, pre, side="right") - 1 if kind != "in" else np.zeros_like(pre)
        post_pop = np.searchsorted(offsets, post, side="right") - 1 if kind != "out" else np.zeros_like(post)
        blocks.append((kind, sorted({(int(a), int(b)) for a, b in zip(pre_pop, post_pop)})))
    opt = sc.optimizer
    return (sc.family, tuple((p.model, p.params["surrogate_gradient_function"]) for p in sc.populations), n_pop,
            sc.n_out > 1, sc.readout.get("loss"), opt["type"], bool(opt.get("optimize_each_step", False)),
            tuple(blocks), tuple(sorted({r[0] for r in sc.record_synapses})),
            sc.family == "event" and sc.learning_window_signal is not None)


def build_key(scenario) -> str:
    """Key of the Cython modules a scenario's PyNN network needs (no code generation): its code structure and the
    sources that write the code."""
    root = Path(__file__).resolve().parents[1]
    h = hashlib.sha256(f"{b2.__version__}\0{_code_structure(scenario.validated())!r}".encode())
    for rel in CODE_SOURCES:
        h.update(hashlib.sha256((root / rel).read_bytes()).digest())
    return f"pynn-{h.hexdigest()[:16]}"


def is_built(scenario) -> bool:
    """True if a network of this scenario's code structure ran here before (a marker file; no compilation)."""
    return runtime_marker(build_key(scenario)).is_file()


def unsupported_reason(sc) -> str | None:
    """Why a validated scenario cannot be written with the PyNN types on pyNN.brian2 (None: it can)."""
    if sc.network.get("feedback") == "symmetric":
        return ("network.feedback = 'symmetric': FeedbackSynapse weights are fixed, so B cannot track W_out; "
                "use 'symmetric_initial' or 'random'")
    if sc.family == "original" and any(np.any(np.asarray(t, dtype=np.int64) < 1) for t in sc.input_spikes):
        return ("an input spike arrives at step 0: pyNN.brian2's e-prop synapses receive input spikes one step "
                "after their emission, from step 0 on")
    return None


@dataclass
class PynnNetwork:
    """The PyNN objects of a scenario: one recurrent Population per scenario population.

    ``offsets[a]`` is the first scenario index of ``recurrent[a]``; ``projections`` are keyed
    ``("in", a)``, ``("rec", a, b)`` (a -> b), ``("out", a)``, ``("fb", a)``.
    """

    inputs: Any
    recurrent: list
    offsets: list
    readout: Any
    projections: dict = field(default_factory=dict)

    def block(self, a: int) -> slice:
        return slice(self.offsets[a], self.offsets[a] + self.recurrent[a].size)


def _cell_type(pop, family: str):
    cls = sm.RECURRENT_TYPES[pop.model]
    names = {r.name for r in cls.rows(family)}
    return cls(family=family, **{k: v for k, v in pop.params.items() if k in names})


def _readout_sequence(values, family: str) -> Sequence:
    """A per-step scenario signal as a readout ``Sequence``: element j pairs with the potential recorded at j dt."""
    return Sequence(np.concatenate([np.zeros(glue.FAMILY_STAMPS[family].readout), np.asarray(values, dtype=float)]))


def _readout_type(sc) -> sm.EpropReadout:
    names = {r.name for r in sm.EpropReadout.rows(sc.family)} - set(sm.READOUT_NETWORK_ROWS)
    kwargs = {k: v for k, v in sc.readout.items() if k in names}
    if sc.family == "original":
        kwargs.update(sequence=sc.network["sequence"], learning_window=sc.network.get("learning_window"))
    elif sc.learning_window_signal is not None:
        kwargs["learning_window_signal"] = [_readout_sequence(sc.learning_window_signal, "event")] * sc.n_out
    return sm.EpropReadout(family=sc.family, target=[_readout_sequence(row, sc.family) for row in np.asarray(sc.target)],
                           **kwargs)


def build_network(sc) -> PynnNetwork:
    """The PyNN populations and projections of a validated scenario on pyNN.brian2."""
    dt = sc.dt
    # The objects of an earlier network in this process may still be cyclic garbage: while they are, Brian2
    # names the new clocks of PyNN's recorders "<name>_clock_1", the generated code changes with the name and
    # every Cython module that reads such a clock is compiled again.  Collected first, the names repeat.
    gc.collect()
    sim.setup(timestep=dt, min_delay=dt)
    inputs = sim.Population(sc.n_in, sim.SpikeSourceArray(
        spike_times=[Sequence((np.asarray(t, dtype=float) + glue.INPUT_LAG) * dt) for t in sc.input_spikes]),
        label="inputs")
    recs, offsets, off = [], [], 0
    for a, pop in enumerate(sc.populations):
        recs.append(sim.Population(pop.size, _cell_type(pop, sc.family), label=f"recurrent{a}"))
        offsets.append(off)
        off += pop.size
    out = sim.Population(sc.n_out, _readout_type(sc), label="readout")
    net = PynnNetwork(inputs, recs, offsets, out)
    opt = {k: v for k, v in sc.optimizer.items() if k != "type"}
    optimizer = (sm.Adam if sc.optimizer["type"] == "adam" else sm.GradientDescent)(**opt)
    syn = {k: v for k, v in sc.synapse.items() if k in {r.name for r in SYNAPSE}}

    P = net.projections

    def connect(key, pre, post, w, rows, cols, autapses=True):
        made = block_connector(sim, w, rows, cols, autapses=autapses)
        if made is not None:  # a sparse block without synapses has no projection
            conn, weight = made
            P[key] = sim.Projection(pre, post, conn, sm.EpropSynapse(optimizer=optimizer, weight=weight, delay=dt,
                                                                     **syn))

    fb = np.asarray(sc.effective_feedback(), dtype=float)
    for a, pa in enumerate(recs):
        connect(("in", a), inputs, pa, sc.w_in, net.block(a), slice(None))
    for b, pb in enumerate(recs):
        for a, pa in enumerate(recs):
            if a == b and pa.size == 1:
                continue  # no autapses
            connect(("rec", a, b), pa, pb, sc.w_rec, net.block(b), net.block(a), autapses=a != b)
    for a, pa in enumerate(recs):
        connect(("out", a), pa, out, sc.w_out, slice(None), net.block(a))
    for a, pa in enumerate(recs):
        P[("fb", a)] = sim.Projection(out, pa, sim.AllToAllConnector(),
                                      sm.FeedbackSynapse(weight=fb[net.block(a)].T, delay=dt))
    return net


def _synapses(proj):
    return proj._brian2_synapses[0][0]


def _global_slices(net: PynnNetwork, key) -> tuple[slice, slice]:
    """(post, pre) rows/columns of a projection in the scenario's dense ``[post, pre]`` matrix."""
    kind = key[0]
    if kind == "in":
        return net.block(key[1]), slice(None)
    if kind == "rec":
        return net.block(key[2]), net.block(key[1])
    return slice(None), net.block(key[1])  # out


def _dense(net: PynnNetwork, kind: str, values: dict, shape) -> np.ndarray:
    """Scenario ``[post, pre]`` matrix of per-synapse values of all blocks of a projection kind (0: none)."""
    mat = np.zeros(shape)
    for key, proj in net.projections.items():
        if key[0] != kind:
            continue
        s = _synapses(proj)
        block = np.zeros((proj.post.size, proj.pre.size))
        block[np.asarray(s.j[:]), np.asarray(s.i[:])] = values[key]
        rows, cols = _global_slices(net, key)
        mat[rows, cols] = block
    return mat


SHAPES = {"in": lambda sc: (sc.n_rec, sc.n_in), "rec": lambda sc: (sc.n_rec, sc.n_rec),
          "out": lambda sc: (sc.n_out, sc.n_rec)}


def run(scenario, *, record_weight_events: bool = True,
        on_iteration: Callable[[int, float], None] | None = None) -> Result:
    """Run a scenario as a PyNN script on pyNN.brian2 and return every trace the validation compares.

    The scenario is one ``sim.run``.  ``meta["compile_seconds"]``: the code generation at its start
    when Brian2 compiled modules there, else 0.0; ``meta["run_seconds"]``: the rest of the run.
    ``on_iteration`` is called after the run, once per iteration.
    """
    t_start = time.perf_counter()
    sc = scenario.validated()
    check_supported(NAME, sc)
    reason = unsupported_reason(sc)
    if reason is not None:
        raise ParameterError(f"{reason} (backend {NAME})")
    compiles = CythonCompiles()
    T, N, dt = sc.steps_per_sequence, sc.n_steps, sc.dt
    L = sc.iteration_sequences * T  # steps per iteration
    event = sc.family == "event"
    shift = glue.TIME_SHIFT[sc.family]  # Brian2 step s is aligned step s - shift
    net = build_network(sc)
    for pop, model in zip(net.recurrent, sc.populations):
        pop.record(["spikes", "v", "psi", "learning_signal"] + (["adaptation"] if model.model in ADAPTIVE_MODELS
                                                               else []))
    net.readout.record(["v", "readout_signal", "target", "error"])
    # monitors named by role (Brian2's Cython modules are keyed by code that names them: see build_key)
    mons = {("rec", a): b2.StateMonitor(p.brian2_group, ["fr", "thr_abs"], record=True, when="end",
                                        name=f"eprop_mon_rec{a}") for a, p in enumerate(net.recurrent)}
    mons["sig"] = b2.StateMonitor(net.readout.brian2_group, ["sig"], record=True, when="end", name="eprop_mon_sig")
    interval = T * dt * b2.ms
    for key, proj in net.projections.items():
        if key[0] == "fb":
            continue
        name = "eprop_mon_w_" + "_".join(map(str, key))
        if event:  # every step, after the arrivals and before the per-step optimizer (brian2_ext's schedule)
            mons[("w",) + key] = b2.StateMonitor(_synapses(proj), "w", record=True, when="after_synapses", order=4,
                                                 name=name)
        else:
            mons[("w",) + key] = b2.StateMonitor(_synapses(proj), "w", record=True, dt=interval, when="end",
                                                 name=name)
    syn_rows = _synapse_monitors(sc, net, mons)
    sim.simulator.state.network.add(*mons.values())
    windows = None
    if event:  # the per-step weights are read in windows while the network runs (brian2_ext.weight_windows)
        weights_read = _EventWeights(sc, net, record_weight_events)
        windows = WeightWindows({k[1:]: m for k, m in mons.items() if k[0] == "w"}, "w", weights_read.window)
        sim.simulator.state.network.add(windows.operation())
    # One run: every sim.run regenerates the code of each object before its first step (0.3-1.4 s for these
    # networks), so the whole scenario is one run, and an operation at the start of the first step tells how long
    # generating (and on a first use compiling) took: compile_seconds.  The optimizer of the last iteration acts in
    # the interval block of the extra step; the recordings of the last steps are stamped up to
    # STAMPS.learning_signal steps later (event family: the readout synapses integrate the last history step
    # two steps later).
    first_step = FirstStep()
    sim.simulator.state.network.add(first_step.operation(sim.simulator.state.network.clock))
    t_run = time.perf_counter()
    sim.run((sc.n_iterations * L + shift + 1 + glue.FAMILY_STAMPS[sc.family].learning_signal) * dt)
    first_seconds = first_step.seconds_since(t_run)
    if windows is not None:
        windows.finish()
    run_seconds = time.perf_counter() - t_run - first_seconds
    y_all = np.asarray(mons["sig"].sig).T
    losses = []
    for it in range(sc.n_iterations):
        lo = it * L
        losses.append(float(compute_losses(sc, y_all[lo + shift: lo + L + shift], sc.target[:, lo: lo + L].T,
                                           start=lo)[0]))
        if on_iteration is not None:
            on_iteration(it, losses[-1])
    del y_all

    traces = _traces(sc, net, mons)
    if event:
        synapse_traces = _event_synapse_traces(sc, net, mons, syn_rows)
        weights = weights_read.snapshots()
        wev = weights_read.log.arrays()
    else:
        synapse_traces = _synapse_traces(sc, mons, syn_rows, traces["error"])
        weights = _weight_snapshots(sc, net, mons)
        wev = _weight_events(sc, net, traces["z"], weights) if record_weight_events else WeightEventLog().arrays()
    sim.end()
    sim.simulator.state.clear()  # pyNN.brian2 keeps the network (its recordings) until the next setup()
    _release(net)
    compiled = compiles.any()
    atomic_write(runtime_marker(build_key(sc)), f"{sc.name}\n")
    return Result(scenario=sc.name, family=sc.family, backend=NAME, losses=np.array(losses), traces=traces,
                  synapse_traces=synapse_traces, weight_events=wev, weights=weights,
                  meta={"seconds": time.perf_counter() - t_start,
                        "compile_seconds": first_seconds if compiled else 0.0,
                        "cached": not compiled, "run_seconds": run_seconds,
                        "seconds_per_iteration": run_seconds / max(sc.n_iterations, 1), "mode": "pynn-brian2"})


def _release(net: PynnNetwork) -> None:
    """Break the cycle that keeps a finished PyNN network alive for good.

    A PyNN ``Population`` holds its cells' IDs in a NumPy object array and every ID points back to its
    population; NumPy arrays are invisible to Python's cycle collector, so without this the
    populations, their Brian2 groups and recorders (with every recording) outlive the run.  The
    recorders' clocks then keep their names, the next network's are named ``<name>_clock_1``, and
    the Cython code that reads them is compiled again in every later cell of a validation worker.
    """
    for pop in [net.inputs, *net.recurrent, net.readout]:
        for cell in pop.all_cells:
            cell.parent = None
        pop.all_cells = np.array([], dtype=object)


def _synapse_monitors(sc, net: PynnNetwork, mons) -> dict:
    """Monitors of the recorded synapses; returns (proj, pre, post) -> (monitor key, row)."""
    wanted: dict = {}
    for proj_name, pre, post in sc.record_synapses:
        for key, proj in net.projections.items():
            if key[0] != proj_name:
                continue
            rows, cols = _global_slices(net, key)
            r0 = rows.start or 0
            c0 = cols.start or 0
            if rows.start is not None and not (rows.start <= post < rows.stop):
                continue
            if cols.start is not None and not (cols.start <= pre < cols.stop):
                continue
            s = _synapses(proj)
            hit = np.flatnonzero((np.asarray(s.i[:]) == pre - c0) & (np.asarray(s.j[:]) == post - r0))
            if hit.size:
                wanted.setdefault(key, []).append(((proj_name, pre, post), int(hit[0])))
    rows = {}
    for key, items in wanted.items():
        idx = sorted({k for _, k in items})
        if sc.family == "event":
            variables = ["zbar", "elig", "dec"] + ([] if key[0] == "out" else ["ebar", "ebar_reg"])
        else:
            variables = ["zbar"] if key[0] == "out" else ["zbar", "elig", "ebar"]
        mons[("syn",) + key] = b2.StateMonitor(_synapses(net.projections[key]), variables, record=idx, when="end",
                                               name="eprop_mon_syn_" + "_".join(map(str, key)))
        for name, k in items:
            rows[name] = (("syn",) + key, idx.index(k))
    return rows


def _recorded(block, name: str, N: int, kind: str, family: str) -> np.ndarray:
    """Aligned steps 0..N-1 of a recorded neo signal (aligned step n at sample n + its stamp)."""
    stamp = glue.recording_stamps(family)[kind][name]
    sig = next(s for s in block.segments[0].analogsignals if s.name == name)
    return np.asarray(sig.magnitude)[stamp: N + stamp]


def _traces(sc, net: PynnNetwork, mons) -> dict[str, np.ndarray]:
    N, T, dt, fam = sc.n_steps, sc.steps_per_sequence, sc.dt, sc.family
    shift = glue.TIME_SHIFT[fam]
    cols: dict[str, list] = {k: [] for k in ("v", "z", "psi", "adaptation", "v_th_adapt", "learning_signal", "fr")}
    stamp = glue.recording_stamps(fam)["recurrent"]["spikes"]

    def _signal(block, name, n, kind):
        return _recorded(block, name, n, kind, fam)

    for a, (pop, model) in enumerate(zip(net.recurrent, sc.populations)):
        rb = pop.get_data()
        cols["v"].append(_signal(rb, "v", N, "recurrent"))
        z = np.zeros((N, pop.size), dtype=np.int8)
        for j, train in enumerate(rb.segments[0].spiketrains):
            steps = np.round(np.asarray(train.rescale("ms").magnitude) / dt).astype(np.int64) - stamp
            z[steps[(steps >= 0) & (steps < N)], j] = 1
        cols["z"].append(z)
        cols["psi"].append(_signal(rb, "psi", N, "recurrent"))
        cols["adaptation"].append(_signal(rb, "adaptation", N, "recurrent") if model.model in ADAPTIVE_MODELS
                                  else np.zeros((N, pop.size)))
        cols["learning_signal"].append(_signal(rb, "learning_signal", N, "recurrent"))
        m = mons[("rec", a)]
        cols["v_th_adapt"].append(np.asarray(m.thr_abs)[:, shift: N + shift].T)
        # firing-rate term: per step (event family), or of each interval, known at its end (original)
        cols["fr"].append(np.asarray(m.fr)[:, 1: N + 1].T if fam == "event" else np.asarray(m.fr)[:, T: N + 1: T].T)
    tr = {k: np.concatenate(v, axis=1) for k, v in cols.items()}
    tr["fr_reg"] = tr.pop("fr") if fam == "event" else np.repeat(tr.pop("fr"), T, axis=0)
    ob = net.readout.get_data()
    tr["readout_v"] = _signal(ob, "v", N, "readout")
    tr["error"] = _signal(ob, "error", N, "readout")
    if fam == "event":  # PyNN records readout and target signal times the learning window, as NEST does
        tr["y"] = np.asarray(mons["sig"].sig)[:, shift: N + shift].T
        tr["target"] = sc.target[:, :N].T.copy()
    else:
        tr["y"] = _signal(ob, "readout_signal", N, "readout")
        tr["target"] = _signal(ob, "target", N, "readout")
    return tr


def _synapse_traces(sc, mons, syn_rows, error) -> dict[str, np.ndarray]:
    rs, N = sc.record_synapses, sc.n_steps
    if not rs:
        return {}
    syn = {k: np.zeros((N, len(rs))) for k in ("zbar", "e", "ebar")}
    for q, (proj, pre, post) in enumerate(rs):
        key, row = syn_rows[(proj, pre, post)]
        m = mons[key]
        zb = np.asarray(m.zbar)[row, :N]
        syn["zbar"][:, q] = zb
        # readout synapses: e_t = err_k,t zbar_t and e-bar = z-bar (as brian2_ext reports them)
        syn["e"][:, q] = error[:, post] * zb if proj == "out" else np.asarray(m.elig)[row, :N]
        syn["ebar"][:, q] = zb if proj == "out" else np.asarray(m.ebar)[row, :N]
    return syn


def _event_synapse_traces(sc, net: PynnNetwork, mons, syn_rows) -> dict[str, np.ndarray]:
    """Event family: the recorded synapses' traces with the decays they still owe applied (as brian2_ext reports
    them); history step t is integrated in Brian2 step t + 1 (input, recurrent) or t + 2 (readout)."""
    rs, N = sc.record_synapses, sc.n_steps
    if not rs:
        return {}
    c = recurrent_constants(sc)
    kappa_out = math.exp(-sc.dt / sc.readout["tau_m"])
    syn = {k: np.zeros((N, len(rs))) for k in ("zbar", "e", "ebar", "ebar_reg")}
    for q, (proj, pre, post) in enumerate(rs):
        key, row = syn_rows[(proj, pre, post)]
        m = mons[key]
        sl = slice(2, N + 2) if proj == "out" else slice(1, N + 1)
        dec = np.asarray(m.dec)[row, sl]
        zb = np.asarray(m.zbar)[row, sl]

        def owed(base, _dec=dec):
            return np.array([math.pow(base, int(k)) for k in _dec])

        if proj == "out":
            syn["zbar"][:, q] = zb * owed(kappa_out)
            syn["ebar"][:, q] = syn["zbar"][:, q]
        else:
            syn["zbar"][:, q] = zb * owed(c.alpha[post])
            syn["ebar"][:, q] = np.asarray(m.ebar)[row, sl] * owed(c.kappa[post])
            syn["ebar_reg"][:, q] = np.asarray(m.ebar_reg)[row, sl] * owed(c.kappa_reg[post])
        syn["e"][:, q] = np.asarray(m.elig)[row, sl]
    return syn


class _EventWeights:
    """Event family: weight snapshots and weight events from the per-step weight monitors, window by window.

    Column ``c`` of a window starting at ``first`` is Brian2 step ``first + c``; Brian2 step ``s`` is aligned
    step ``s - 1``.  An input arriving at ``n`` and a recurrent spike arriving at ``n`` pass in Brian2 step
    ``n``; a spike of ``n`` reaches the readout in Brian2 step ``n + 1``.  Snapshots: the weights at the end of
    every sequence, Brian2 step ``(s + 1) T - 1`` for input and recurrent synapses, ``(s + 1) T`` for readout
    synapses (the arrivals of the sequence's last step).  Spikes are read from PyNN's spike recorders, which
    hold every step before the window's end.
    """

    def __init__(self, sc, net: PynnNetwork, events: bool) -> None:
        self.sc, self.net = sc, net
        T, n_seq = sc.steps_per_sequence, sc.n_sequences
        self.log = WeightEventLog()
        self.events = events
        self.snaps: dict = {}
        self.fanout: dict = {}
        for key, proj in net.projections.items():
            if key[0] == "fb":
                continue
            s = _synapses(proj)
            pre = np.asarray(s.i[:], dtype=np.int64)
            self.snaps[key] = np.zeros((pre.size, n_seq))
            order = np.argsort(pre, kind="stable")  # PyNN creates them post by post
            start = np.concatenate([[0], np.cumsum(np.bincount(pre, minlength=proj.pre.size))])
            self.fanout[key] = (order, start, np.asarray(s.j[:], dtype=np.int64))
        self.snap_steps = {kind: np.arange(1, n_seq + 1) * T - (0 if kind == "out" else 1) for kind in ("in", "rec", "out")}
        self.inputs = input_spike_pairs(sc, 0, sc.n_steps)  # (arrival step, input) of every input spike

    def _outgoing(self, key, pres: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(spike of each transmission, synapse index) of presynaptic spikes ``pres`` (local indices)."""
        order, start, _ = self.fanout[key]
        spike, position = fan_out(start, pres)
        return spike, order[position]

    def _spikes(self, a: int, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
        """(aligned step, local neuron) of population ``a``'s spikes in Brian2 steps ``lo .. hi - 1``."""
        mon = self.net.recurrent[a].recorder._devices["spikes"]
        steps = np.round(np.asarray(mon.t_) / (self.sc.dt * 1e-3)).astype(np.int64)
        keep = (steps >= lo) & (steps < hi)
        return steps[keep] - 1, np.asarray(mon.i_, dtype=np.int64)[keep]

    def window(self, first: int, blocks: dict) -> None:
        last = first + next(iter(blocks.values())).shape[1]
        for key, w in blocks.items():
            at = self.snap_steps[key[0]]
            inside = (at >= first) & (at < last)
            self.snaps[key][:, inside] = w[:, at[inside] - first]
        if not self.events:
            return
        N = self.sc.n_steps
        for key, w in blocks.items():
            rows, cols = _global_slices(self.net, key)
            r0, c0 = rows.start or 0, cols.start or 0
            if key[0] == "in":
                steps, pres = self.inputs
                inside = (steps >= first) & (steps < last)
                steps, pres, column, code = steps[inside], pres[inside], steps[inside], 0
            else:  # spikes of aligned t, transmitted in Brian2 step t + 1
                t, pres = self._spikes(key[1], max(first, 1), last)
                if key[0] == "rec":
                    ok = t + 1 < N  # the reference delivers no spike arriving at N
                    steps, pres, column, code = t[ok] + 1, pres[ok], t[ok] + 1, 1
                else:
                    ok = t < N
                    steps, pres, column, code = t[ok], pres[ok], t[ok] + 1, 2
            spike, idx = self._outgoing(key, pres)
            post = self.fanout[key][2]
            self.log.add(steps[spike], code, pres[spike] + c0, post[idx] + r0, w[idx, column[spike] - first])

    def snapshots(self) -> dict[str, np.ndarray]:
        """Dense weights at the end of every sequence (``(n_sequences, n_post, n_pre)`` per projection kind)."""
        sc, n_seq = self.sc, self.sc.n_sequences
        snaps = {}
        for kind, name in (("in", "w_in"), ("rec", "w_rec"), ("out", "w_out")):
            keys = [k for k in self.snaps if k[0] == kind]
            snaps[name] = np.stack([_dense(self.net, kind, {k: self.snaps[k][:, s] for k in keys}, SHAPES[kind](sc))
                                    for s in range(n_seq)])
        snaps["w_fb"] = _feedback_snapshots(sc, self.net)
        return snaps


def _feedback_snapshots(sc, net: PynnNetwork) -> np.ndarray:
    """The fixed feedback weights ``(n_sequences, n_rec, n_out)``."""
    fb = np.zeros((sc.n_rec, sc.n_out))
    for a in range(len(net.recurrent)):
        w = np.asarray(net.projections[("fb", a)].get("weight", format="array"), dtype=float)  # (readout, rec)
        fb[net.block(a)] = np.nan_to_num(w.T)
    return np.broadcast_to(fb, (sc.n_sequences,) + fb.shape).copy()


def _weight_snapshots(sc, net: PynnNetwork, mons) -> dict[str, np.ndarray]:
    """Dense weights at the end of every sequence (row s + 1 of a per-interval monitor = end of sequence s)."""
    n_seq = sc.n_sequences
    snaps = {}
    for kind, name in (("in", "w_in"), ("rec", "w_rec"), ("out", "w_out")):
        keys = [k for k in net.projections if k[0] == kind]
        vals = {k: np.asarray(mons[("w",) + k].w)[:, 1: n_seq + 1] for k in keys}
        snaps[name] = np.stack([_dense(net, kind, {k: v[:, s] for k, v in vals.items()}, SHAPES[kind](sc))
                                for s in range(n_seq)])
    snaps["w_fb"] = _feedback_snapshots(sc, net)
    return snaps


def _weight_events(sc, net: PynnNetwork, z, snaps) -> dict[str, np.ndarray]:
    """One event per transmitted spike of a plastic synapse, with the weight in force in its iteration.

    Recurrent spikes of an interval's last step arrive at interval position 0, where they are dropped.
    """
    log = WeightEventLog()
    T = sc.steps_per_sequence
    L = sc.optimizer["batch_size"] * T
    exists = {kind: _dense(net, kind, {k: 1.0 for k in net.projections if k[0] == kind}, SHAPES[kind](sc)) > 0
              for kind in ("in", "rec", "out")}
    for it in range(sc.n_iterations):
        n0 = it * L
        if it == 0:
            w = {"in": cn.to_dense(sc.w_in), "rec": cn.to_dense(sc.w_rec), "out": cn.to_dense(sc.w_out)}
        else:
            s = it * sc.optimizer["batch_size"] - 1
            w = {"in": snaps["w_in"][s], "rec": snaps["w_rec"][s], "out": snaps["w_out"][s]}
        for i, train in enumerate(sc.input_spikes):
            arr = np.asarray(train, dtype=np.int64)
            arr = arr[(arr >= n0) & (arr < n0 + L)]
            post = np.flatnonzero(exists["in"][:, i])
            if arr.size and post.size:
                log.add(np.repeat(arr, post.size), 0, i, np.tile(post, arr.size), np.tile(w["in"][post, i], arr.size))
        t_sp, j_sp = np.nonzero(z[n0: n0 + L])
        arrive = t_sp + 1
        ok = (arrive < L) & (arrive % T != 0)
        for kind, code, steps, pres in (("rec", 1, n0 + arrive[ok], j_sp[ok]), ("out", 2, n0 + t_sp, j_sp)):
            for step, pre in zip(steps, pres):
                post = np.flatnonzero(exists[kind][:, pre])
                if post.size:
                    log.add(step, code, pre, post, w[kind][post, pre])
    return log.arrays()


def check() -> None:
    """Raise RuntimeError unless pyNN.brian2 carries the e-prop glue (importing this module needs both)."""
    if sim.simulator is not glue.simulator:
        raise RuntimeError("pyNN.brian2 is not the simulator module the e-prop glue hooks")
