"""The ``nest-builtin`` backend: NEST 3.10's own C++ e-prop models, the external anchor.

Original family (``*_bsshslm_2020``): the network is wired the way NEST's own tests do it
(``testsuite/pytests/synapses/test_eprop_bsshslm_2020_plasticity.py``):

* ``spike_generator -> parrot_neuron`` (static synapse), parrots own the plastic input synapses;
* ``eprop_synapse_bsshslm_2020`` from parrots and recurrent neurons to recurrent neurons (no
  autapses) and from recurrent neurons to readouts;
* ``eprop_learning_signal_connection_bsshslm_2020`` readout -> recurrent with the weights B;
* ``step_rate_generator -> readout`` via ``rate_connection_delayed`` on receptor 2 (the target);
* cross-entropy: readout <-> readout ``rate_connection_delayed`` on receptor 1, weight 1;
* every delay is one step; kernel ``eprop_update_interval`` = sequence, ``eprop_learning_window``,
  ``eprop_reset_neurons_on_update``, one virtual process; recurrent neurons send flush events
  every sequence (``flush_event_send_interval``).

Alignment (NEST step -> aligned step ``n``, spec §0/§2, measured and tested): a spike generator
emitting at ``n + 1`` reaches the recurrent neurons at aligned step ``n``; the recurrent update
of aligned step ``n`` is NEST step ``n + 2`` (history shift 2) and is recorded with time stamp
``n + 3``, the readout update of step ``n`` is NEST step ``n + 3`` (shift 3), stamped ``n + 4``;
the readout, target and error signals of step ``n`` are stamped ``n + 5`` (they lag the readout
potential by one step), and a recurrent neuron's recorded learning signal of step ``n`` is stamped
``n + 6`` (NEST reads it from its history three steps back).  The target value of step ``n`` is
set on the ``step_rate_generator`` at ``n + 4``.

NEST quirks handled here (documented in ``Result.meta``):

* the weight recorder also logs *flush events* (recurrent neurons that were silent for a whole
  sequence send one; no spike is transmitted) with a meaningless target; they are dropped by
  matching each recurrent sender's time stamp with its recorded spikes;
* NEST zeroes ``readout_signal`` and ``target_signal`` outside the learning window: there ``y``
  is derived from the recorded readout potential (mean squared error: the potential itself;
  cross-entropy: its softmax, summed in NEST's order) and ``target`` is the scenario's target.

Not observable in NEST (omitted from the Result): ``fr_reg``, the per-synapse traces
(``synapse_traces``) and dense weight snapshots.

The wiring helpers take the model names and recordables as arguments so that the ``nestml``
backend can reuse them with its own models.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from ..parameters import ADAPTIVE_MODELS, ParameterError
from ..results import Result, compute_losses, sort_weight_events
from . import nest_translations as tr

__all__ = [
    "check",
    "check_original_supported",
    "run",
    "OriginalLayout",
    "ORIGINAL_LAYOUT",
    "NestNetwork",
    "build_original",
    "simulate",
    "collect_original",
]


# ------------------------------------------------------------------------------------------ timing
#: Stamp offsets (NEST steps) of the original family, relative to the aligned step (see module doc).
GEN_OFFSET = 1  # spike generator emission stamp of an input arriving at aligned n
TARGET_OFFSET = 4  # step_rate_generator amplitude time of target[n]
REC_STAMP = 3  # recorded recurrent state and spikes of aligned n
OUT_STAMP = 4  # recorded readout potential of aligned n
SIGNAL_STAMP = 5  # recorded readout/target/error signal of aligned n
LEARNING_SIGNAL_STAMP = 6  # recorded learning signal of aligned n (history read 3 steps back)
PARROT_TO_ARRIVAL = 2  # parrot spike stamp - aligned arrival step at the recurrent neurons
REC_TO_REC_ARRIVAL = 2  # recurrent spike stamp - aligned arrival step at other recurrent neurons
REC_TO_OUT_ARRIVAL = 3  # recurrent spike stamp - aligned arrival step at the readouts
#: Extra steps simulated after the last aligned step so that every delayed recording exists.
TAIL_STEPS = LEARNING_SIGNAL_STAMP  # + 1: a multimeter collects the last step one step later


def _nest():
    """Import NEST quietly (the import prints a banner once)."""
    import nest  # noqa: PLC0415 - imported only when the backend is used

    nest.verbosity = nest.VerbosityLevel.WARNING
    return nest


def check() -> str:
    """Import NEST and confirm the built-in e-prop models exist.

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
    nest = _nest()
    available = set(nest.node_models) | set(nest.synapse_models)
    missing = [m for fam in tr.MODEL_NAMES.values() for m in fam.values() if m not in available]
    if missing:
        raise RuntimeError(f"NEST {nest.__version__} lacks the e-prop models {', '.join(missing)} (NEST >= 3.10 needed)")
    return str(nest.__version__)


# ------------------------------------------------------------------------------------------ layout
@dataclass(frozen=True)
class OriginalLayout:
    """Model names and recordables of an original-family NEST network.

    Attributes
    ----------
    models : dict
        ``iaf``, ``iaf_adapt``, ``readout``, ``synapse``, ``feedback`` -> NEST model name.
    recordables : dict
        NEST recordable per Result trace name, for ``recurrent`` (all recurrent neurons),
        ``adaptive`` (adaptive recurrent neurons only) and ``readout``.
    """

    models: dict[str, str]
    recordables: dict[str, dict[str, str]] = field(
        default_factory=lambda: {
            "recurrent": {"v": "V_m", "psi": "surrogate_gradient", "learning_signal": "learning_signal"},
            "adaptive": {"v_th_adapt": "V_th_adapt", "adaptation": "adaptation"},
            "readout": {"readout_v": "V_m", "y": "readout_signal", "target": "target_signal", "error": "error_signal"},
        }
    )


#: NEST 3.10's built-in models
ORIGINAL_LAYOUT = OriginalLayout(models=dict(tr.MODEL_NAMES["original"]))


@dataclass
class NestNetwork:
    """Handles of a built network (NEST NodeCollections) and the index maps of its nodes."""

    generators: Any
    parrots: Any
    populations: list[Any]  # one NodeCollection per scenario population
    readouts: Any
    target_generators: Any
    multimeters: list[tuple[Any, list[str], Any]]  # (multimeter, trace names, recorded population)
    readout_multimeter: Any
    spike_recorder: Any
    weight_recorder: Any
    first_parrot: int
    first_rec: int
    first_out: int
    simulated_steps: int = 0


# ------------------------------------------------------------------------------------------ building
def setup_kernel(sc, *, extra: dict[str, Any] | None = None) -> None:
    """Reset NEST and set resolution, e-prop interval, learning window and one virtual process."""
    nest = _nest()
    nest.ResetKernel()
    params = {
        "resolution": sc.dt,
        "total_num_virtual_procs": 1,
        "print_time": False,
        "eprop_update_interval": sc.steps_per_sequence * sc.dt,
        "eprop_learning_window": sc.learning_window_steps() * sc.dt,
        "eprop_reset_neurons_on_update": True,
    }
    params.update(extra or {})
    nest.set(**params)


def recurrent_status(sc, pop) -> dict[str, Any]:
    """NEST status of one recurrent population: translated parameters, V_m at rest, flush interval."""
    status = tr.to_nest(tr.RECURRENT, pop.params)
    status["V_m"] = pop.params["v_rest"]
    # a silent neuron still closes its synapses' update interval once per sequence (as NEST's tests)
    status["flush_event_send_interval"] = sc.steps_per_sequence * sc.dt
    return status


def readout_status(sc) -> dict[str, Any]:
    """NEST status of the readouts."""
    status = tr.to_nest(tr.READOUT, sc.readout)
    status["V_m"] = sc.readout["v_rest"]
    return status


def create_nodes(sc, layout: OriginalLayout) -> NestNetwork:
    """Create generators, parrots, recurrent populations (contiguous ids), readouts and recorders."""
    nest = _nest()
    generators = nest.Create("spike_generator", sc.n_in)
    parrots = nest.Create("parrot_neuron", sc.n_in)
    pops = [nest.Create(layout.models[p.model], p.size, recurrent_status(sc, p)) for p in sc.populations]
    readouts = nest.Create(layout.models["readout"], sc.n_out, readout_status(sc))
    target_generators = nest.Create("step_rate_generator", sc.n_out)

    multimeters = []
    for pop, nodes in zip(sc.populations, pops):
        names = dict(layout.recordables["recurrent"])
        if pop.model in ADAPTIVE_MODELS:
            names.update(layout.recordables["adaptive"])
        mm = nest.Create("multimeter", {"interval": sc.dt, "record_from": list(names.values())})
        nest.Connect(mm, nodes)
        multimeters.append((mm, list(names), nodes))
    mm_out = nest.Create("multimeter", {"interval": sc.dt, "record_from": list(layout.recordables["readout"].values())})
    nest.Connect(mm_out, readouts)
    sr = nest.Create("spike_recorder")
    for nodes in pops:
        nest.Connect(nodes, sr)
    wr = nest.Create("weight_recorder")
    first_rec = pops[0][0].global_id
    if any(nodes[0].global_id != first_rec + sum(len(q) for q in pops[:k]) for k, nodes in enumerate(pops)):
        raise RuntimeError("NEST did not create the recurrent populations with contiguous node ids")
    return NestNetwork(
        generators=generators,
        parrots=parrots,
        populations=pops,
        readouts=readouts,
        target_generators=target_generators,
        multimeters=multimeters,
        readout_multimeter=mm_out,
        spike_recorder=sr,
        weight_recorder=wr,
        first_parrot=parrots[0].global_id,
        first_rec=first_rec,
        first_out=readouts[0].global_id,
    )


def connect_original(net: NestNetwork, sc, layout: OriginalLayout, *, record_weight_events: bool = True) -> None:
    """Wire the plastic, feedback, target and normalisation connections (spec §0, §2)."""
    nest = _nest()
    dt = sc.dt
    models = layout.models
    defaults = {"optimizer": tr.to_nest(tr.OPTIMIZER, sc.optimizer), "average_gradient": sc.synapse["average_gradient"]}
    if record_weight_events:
        defaults["weight_recorder"] = net.weight_recorder
    nest.SetDefaults(models["synapse"], defaults)
    tau_kappa = sc.synapse["tau_m_readout"] or sc.readout["tau_m"]
    plastic = {"synapse_model": models["synapse"], "delay": dt, "tau_m_readout": tau_kappa}
    all_to_all = {"rule": "all_to_all", "allow_autapses": False}
    rec = _all(net.populations)
    nest.Connect(net.generators, net.parrots, "one_to_one", {"synapse_model": "static_synapse", "delay": dt})
    # weight matrices are [post, pre], which is NEST's layout for all_to_all weight arrays
    nest.Connect(net.parrots, rec, all_to_all, {**plastic, "weight": np.asarray(sc.w_in, dtype=float)})
    if sc.n_rec > 1:
        nest.Connect(rec, rec, all_to_all, {**plastic, "weight": np.asarray(sc.w_rec, dtype=float)})
    nest.Connect(rec, net.readouts, all_to_all, {**plastic, "weight": np.asarray(sc.w_out, dtype=float)})
    nest.Connect(net.readouts, rec, all_to_all,
                 {"synapse_model": models["feedback"], "delay": dt, "weight": sc.effective_feedback()})
    nest.Connect(net.target_generators, net.readouts, "one_to_one",
                 {"synapse_model": "rate_connection_delayed", "delay": dt, "receptor_type": 2})
    if sc.readout["loss"] == "cross_entropy":
        nest.Connect(net.readouts, net.readouts, all_to_all,
                     {"synapse_model": "rate_connection_delayed", "delay": dt, "receptor_type": 1, "weight": 1.0})


def set_stimuli(net: NestNetwork, sc) -> None:
    """Input spike times and target amplitudes, shifted from aligned time to NEST time."""
    dt = sc.dt
    net.generators.set([{"spike_times": (np.asarray(s, dtype=float) + GEN_OFFSET) * dt} for s in sc.input_spikes])
    params = []
    for k in range(sc.n_out):
        values = np.asarray(sc.target[k], dtype=float)
        changes = np.concatenate([[0], np.nonzero(np.diff(values))[0] + 1])  # only where the target changes
        params.append({"amplitude_times": (changes + TARGET_OFFSET) * dt, "amplitude_values": values[changes]})
    net.target_generators.set(params)


def build_original(sc, layout: OriginalLayout = ORIGINAL_LAYOUT, *, record_weight_events: bool = True) -> NestNetwork:
    """Reset NEST and build the complete original-family network of a validated scenario."""
    setup_kernel(sc)
    net = create_nodes(sc, layout)
    connect_original(net, sc, layout, record_weight_events=record_weight_events)
    set_stimuli(net, sc)
    return net


def _all(collections: list[Any]) -> Any:
    out = collections[0]
    for c in collections[1:]:
        out = out + c
    return out


# ------------------------------------------------------------------------------------------ running
def simulate(
    net: NestNetwork,
    sc,
    layout: OriginalLayout = ORIGINAL_LAYOUT,
    on_iteration: Callable[[int, float], None] | None = None,
) -> None:
    """Simulate iteration by iteration; after each, report its loss from the recorded readout."""
    nest = _nest()
    steps_it = sc.steps_per_sequence * sc.iteration_sequences
    for it in range(sc.n_iterations):
        end = (it + 1) * steps_it + TAIL_STEPS  # the readout signal of the last step is stamped later
        nest.Simulate((end - net.simulated_steps) * sc.dt)
        net.simulated_steps = end
        if on_iteration is not None:
            y, target = _readout_signals(net, sc, layout, (it + 1) * steps_it)
            sl = slice(it * steps_it, (it + 1) * steps_it)
            on_iteration(it, float(compute_losses(sc, y[sl], target[sl], sl.start)[0]))


def _grid(events: dict, name: str, first_gid: int, n: int, stamp: int, n_steps: int, dt: float) -> np.ndarray:
    """Place multimeter values on the aligned (n_steps, n) grid; every cell must be recorded once."""
    steps = np.rint(np.asarray(events["times"]) / dt).astype(np.int64) - stamp
    cols = np.asarray(events["senders"], dtype=np.int64) - first_gid
    keep = (steps >= 0) & (steps < n_steps) & (cols >= 0) & (cols < n)
    out = np.full((n_steps, n), np.nan)
    out[steps[keep], cols[keep]] = np.asarray(events[name], dtype=float)[keep]
    if np.isnan(out).any():
        raise RuntimeError(f"NEST recorded no {name!r} for some aligned steps (alignment or recording broken)")
    return out


def _readout_signals(net: NestNetwork, sc, layout: OriginalLayout, n_steps: int) -> tuple[np.ndarray, np.ndarray]:
    """``y`` and ``target`` (n_steps, n_out) in aligned time (see module doc for the window)."""
    rn = layout.recordables["readout"]
    ev = net.readout_multimeter.events
    v = _grid(ev, rn["readout_v"], net.first_out, sc.n_out, OUT_STAMP, n_steps, sc.dt)
    y = _grid(ev, rn["y"], net.first_out, sc.n_out, SIGNAL_STAMP, n_steps, sc.dt)
    target = _grid(ev, rn["target"], net.first_out, sc.n_out, SIGNAL_STAMP, n_steps, sc.dt)
    T = sc.steps_per_sequence
    outside = (np.arange(n_steps) % T) < T - sc.learning_window_steps()
    if outside.any():
        y[outside] = _readout_signal_from_potential(v[outside], sc.readout["loss"])
        target[outside] = sc.target[:, :n_steps].T[outside]
    return y, target


def _readout_signal_from_potential(v: np.ndarray, loss: str) -> np.ndarray:
    """NEST's readout signal for recorded absolute potentials ``v`` (steps, n_out).

    Mean squared error: ``v``.  Cross-entropy: ``u_k / (sum_{q != k} u_q + u_k)`` with ``u = exp(v)``,
    the other readouts summed in ascending order as NEST delivers their rate events.
    """
    if loss != "cross_entropy":
        return v.copy()
    u = np.exp(v)
    out = np.empty_like(u)
    for k in range(u.shape[1]):
        others = np.zeros(u.shape[0])
        for q in range(u.shape[1]):
            if q != k:
                others += u[:, q]
        out[:, k] = u[:, k] / (others + u[:, k])
    return out


def collect_original(net: NestNetwork, sc, layout: OriginalLayout = ORIGINAL_LAYOUT,
                     *, record_weight_events: bool = True) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Read all recorders and return ``(traces, weight_events)`` in aligned time."""
    N, dt, n_rec = sc.n_steps, sc.dt, sc.n_rec
    traces: dict[str, np.ndarray] = {}
    stamps = {"learning_signal": LEARNING_SIGNAL_STAMP}
    offset = 0
    for k, (mm, names, nodes) in enumerate(net.multimeters):
        ev = mm.events
        first = nodes[0].global_id
        rec_names = {**layout.recordables["recurrent"], **layout.recordables["adaptive"]}
        for name in names:
            block = _grid(ev, rec_names[name], first, len(nodes), stamps.get(name, REC_STAMP), N, dt)
            traces.setdefault(name, np.zeros((N, n_rec)))[:, offset : offset + len(nodes)] = block
        pop = sc.populations[k]
        if pop.model not in ADAPTIVE_MODELS:  # fixed threshold, no adaptation
            traces.setdefault("adaptation", np.zeros((N, n_rec)))
            traces.setdefault("v_th_adapt", np.zeros((N, n_rec)))[:, offset : offset + len(nodes)] = pop.params["v_thresh"]
        offset += len(nodes)

    sev = net.spike_recorder.events
    s_steps = np.rint(np.asarray(sev["times"]) / dt).astype(np.int64) - REC_STAMP
    s_idx = np.asarray(sev["senders"], dtype=np.int64) - net.first_rec
    keep = (s_steps >= 0) & (s_steps < N)
    z = np.zeros((N, n_rec), dtype=np.int8)
    z[s_steps[keep], s_idx[keep]] = 1
    traces["z"] = z

    rn = layout.recordables["readout"]
    ev = net.readout_multimeter.events
    traces["readout_v"] = _grid(ev, rn["readout_v"], net.first_out, sc.n_out, OUT_STAMP, N, dt)
    traces["y"], traces["target"] = _readout_signals(net, sc, layout, N)
    traces["error"] = _grid(ev, rn["error"], net.first_out, sc.n_out, SIGNAL_STAMP, N, dt)

    events = _weight_events(net, sc, s_steps + REC_STAMP, s_idx) if record_weight_events else {}
    return traces, events


def _weight_events(net: NestNetwork, sc, spike_stamps: np.ndarray, spike_idx: np.ndarray) -> dict[str, np.ndarray]:
    """Weight recorder -> (aligned arrival step, proj, pre, post, w), without NEST's flush events."""
    ev = net.weight_recorder.events
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
    step = stamp - np.where(from_input, PARROT_TO_ARRIVAL, np.where(to_out, REC_TO_OUT_ARRIVAL, REC_TO_REC_ARRIVAL))
    # a recurrent sender's entry is a transmitted spike only if the sender spiked at that stamp
    spiked = np.zeros((int(max(stamp.max(initial=0), spike_stamps.max(initial=0))) + 1, n_rec), dtype=bool)
    spiked[spike_stamps, spike_idx] = True
    real = from_input.copy()
    real[~from_input] = spiked[stamp[~from_input], pre[~from_input]]
    keep = real & (step >= 0) & (step < sc.n_steps)
    if np.any((pre[keep] < 0) | (pre[keep] >= np.where(from_input[keep], sc.n_in, n_rec))):
        raise RuntimeError("weight recorder: a sender is not part of the scenario's network")
    return sort_weight_events({"step": step[keep], "proj": proj[keep], "pre": pre[keep], "post": post[keep], "w": w[keep]})


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


def run(scenario, *, record_weight_events: bool = True, on_iteration: Callable[[int, float], None] | None = None) -> Result:
    """Run a scenario on NEST's built-in e-prop models.

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
        Traces ``v, z, psi, adaptation, v_th_adapt, learning_signal, readout_v, y, target, error``
        in aligned time, weight events and losses.

    Raises
    ------
    ParameterError
        The scenario asks for something NEST's built-in models cannot do (``feedback='symmetric'``).
    """
    sc = scenario.validated()
    if sc.network["feedback"] == "symmetric":
        raise ParameterError(
            "network.feedback = 'symmetric': NEST's built-in e-prop models keep the feedback weights B fixed, "
            "so B cannot track W_out; use 'symmetric_initial' (B = initial W_out^T) or 'random' on nest-builtin, "
            "or another backend"
        )
    if sc.family == "event":
        from .nest_builtin_event import run_event_nest  # noqa: PLC0415 - written alongside, loaded on demand

        return run_event_nest(sc, record_weight_events=record_weight_events, on_iteration=on_iteration)
    check_original_supported(sc)
    t0 = time.perf_counter()
    version = check()
    net = build_original(sc, record_weight_events=record_weight_events)
    t_build = time.perf_counter() - t0
    simulate(net, sc, on_iteration=on_iteration)
    t_sim = time.perf_counter() - t0 - t_build
    traces, events = collect_original(net, sc, record_weight_events=record_weight_events)
    losses = compute_losses(sc, traces["y"], traces["target"])
    return Result(
        scenario=sc.name,
        family="original",
        backend="nest-builtin",
        losses=losses,
        traces=traces,
        weight_events=events,
        meta={
            "seconds": time.perf_counter() - t0,
            "build_seconds": t_build,
            "simulate_seconds": t_sim,
            "nest_version": version,
            "notes": [
                "weight recorder entries of NEST flush events were removed",
                "y outside the learning window is derived from the recorded readout potential "
                "(NEST zeroes readout_signal there); target there is the scenario's target",
                "fr_reg and per-synapse traces are not observable in NEST",
            ],
        },
    )
