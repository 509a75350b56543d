"""The ``nest-builtin`` backend for the event family: NEST 3.10's ``eprop_iaf*``, ``eprop_readout``,
``eprop_synapse`` and ``eprop_learning_signal_connection``.

Wiring (as NEST's ``test_eprop_plasticity.py``): ``spike_generator -> parrot_neuron`` (static),
``eprop_synapse`` parrots -> recurrent (all to all), recurrent -> recurrent (no autapses) and
recurrent -> readout, ``eprop_learning_signal_connection`` readout -> recurrent with the weights B,
``step_rate_generator`` -> readout via ``rate_connection_delayed`` on receptor 2 (target) and one
``step_rate_generator`` -> all readouts on receptor 1 (learning-window signal).  Every delay is one
step; one virtual process; recurrent neurons send flush events after a silent sequence
(``flush_event_send_interval`` = sequence; flush events change no number, see
:mod:`eprop_plugins.reference.event`).

Alignment (NEST step <-> aligned step ``n``; measured, and tested against the reference):

=====================================================  ===========================
what                                                   NEST time stamp (steps)
=====================================================  ===========================
spike generator emission of an input arriving at n     ``n + 1``
recurrent update of step n (multimeter, spikes)        ``n + 3`` (NEST step n + 2)
readout update of step n (V_m, readout/error signal)   ``n + 4`` (NEST step n + 3)
target / learning-window amplitude used at step n      ``n + 3``
recurrent learning signal paired with psi of step n    ``n + 5`` (history read 2 back)
weight event of a spike arriving at n (rec / readout)  ``n + 2`` / ``n + 3``
=====================================================  ===========================

``I_e`` is switched on just in time (after NEST step 0 for ``eprop_iaf(_adapt)``, after step 1 for
the ``psc_delta`` models and the readouts) so that the constant current enters at aligned step 0,
as in the reference; before that the neurons run silent pre-roll steps.

The recorded learning signal is exact wherever NEST still held the history entry; entries that
NEST had already erased (no synapse needs them any more) record as 0 and are filled with
``B . error`` of the recorded readout errors, the value NEST had written there (checked on every
recorded entry).

Not observable in NEST (omitted): ``fr_reg``, per-synapse traces, dense weight snapshots.  The
recorded ``readout_signal``/``target_signal`` are multiplied by the learning-window signal in
NEST, so ``y`` is the recorded potential and ``target`` the scenario's target.
"""

from __future__ import annotations

import time
from typing import Any, Callable

import numpy as np

from ..parameters import ADAPTIVE_MODELS, PSC_DELTA_MODELS, ParameterError
from ..results import Result, compute_losses
from . import nest_translations as tr
from .nest_builtin import NestNetwork, _all, _grid, _nest, _weight_events, check

__all__ = ["run_event_nest", "create_network", "simulate", "check", "GEN_OFFSET", "REC_STAMP", "OUT_STAMP",
           "AMPLITUDE_OFFSET", "LEARNING_SIGNAL_STAMP"]

GEN_OFFSET = 1  # spike generator time of an input arriving at aligned n: n + 1
REC_STAMP = 3  # multimeter/spike recorder stamp of the recurrent update of aligned n
OUT_STAMP = 4  # multimeter stamp of the readout update of aligned n (V_m and the signals)
AMPLITUDE_OFFSET = 3  # step_rate_generator amplitude time of the target/lambda of aligned n
LEARNING_SIGNAL_STAMP = 5  # recorded learning signal paired with psi of aligned n
TAIL_STEPS = LEARNING_SIGNAL_STAMP + 1  # simulated after the last aligned step so every recording exists

_RECORDABLES = {"v": "V_m", "psi": "surrogate_gradient", "learning_signal": "learning_signal"}
_ADAPTIVE_RECORDABLES = {"adaptation": "adaptation", "v_th_adapt": "V_th_adapt"}
_READOUT_RECORDABLES = {"readout_v": "V_m", "error": "error_signal"}


def _recurrent_status(sc, pop, flush_interval: float) -> dict[str, Any]:
    status = tr.to_nest(tr.RECURRENT, pop.params)
    status.update({"V_m": pop.params["v_rest"], "I_e": 0.0, "flush_event_send_interval": flush_interval})
    return status


def _readout_status(sc) -> dict[str, Any]:
    status = tr.to_nest(tr.READOUT, {k: v for k, v in sc.readout.items() if k != "loss"})
    status.update({"V_m": sc.readout["v_rest"], "I_e": 0.0})
    return status


def _build(sc, flush_interval: float, models: dict[str, str] | None = None, threads: int = 1,
           after_reset: Callable[[], Any] | None = None) -> NestNetwork:
    """Build the network; ``models`` (default NEST's) and ``after_reset`` let the nestml backend reuse it."""
    nest = _nest()
    nest.ResetKernel()
    nest.set(resolution=sc.dt, total_num_virtual_procs=threads, print_time=False)
    if after_reset is not None:
        after_reset()  # e.g. install an extension module (ResetKernel unloads modules)
    return create_network(sc, flush_interval, models)


def create_network(sc, flush_interval: float, models: dict[str, str] | None = None) -> NestNetwork:
    """Create and wire the network in the current kernel (``nest_models.pynest`` adds it to a user's network)."""
    nest = _nest()
    dt = sc.dt
    models = models or tr.MODEL_NAMES["event"]

    generators = nest.Create("spike_generator", sc.n_in)
    parrots = nest.Create("parrot_neuron", sc.n_in)
    pops = [nest.Create(models[p.model], p.size, _recurrent_status(sc, p, flush_interval)) for p in sc.populations]
    readouts = nest.Create(models["readout"], sc.n_out, _readout_status(sc))
    target_gen = nest.Create("step_rate_generator", sc.n_out)
    window_gen = nest.Create("step_rate_generator")
    multimeters = []
    for pop, nodes in zip(sc.populations, pops):
        names = dict(_RECORDABLES)
        if pop.model in ADAPTIVE_MODELS:
            names.update(_ADAPTIVE_RECORDABLES)
        mm = nest.Create("multimeter", {"interval": dt, "record_from": list(names.values())})
        nest.Connect(mm, nodes)
        multimeters.append((mm, list(names), nodes))
    mm_out = nest.Create("multimeter", {"interval": dt, "record_from": list(_READOUT_RECORDABLES.values())})
    nest.Connect(mm_out, readouts)
    sr = nest.Create("spike_recorder")
    rec = _all(pops)
    nest.Connect(rec, sr)
    wr = nest.Create("weight_recorder")
    first_rec = pops[0][0].global_id
    if rec[-1].global_id - first_rec != sc.n_rec - 1:
        raise RuntimeError("NEST did not create the recurrent populations with contiguous node ids")

    nest.SetDefaults(models["synapse"], {"optimizer": tr.to_nest(tr.OPTIMIZER, sc.optimizer), "weight_recorder": wr})
    plastic = {"synapse_model": models["synapse"], "delay": dt}
    all_to_all = {"rule": "all_to_all", "allow_autapses": False}
    rate = {"synapse_model": "rate_connection_delayed", "delay": dt}
    nest.Connect(generators, parrots, "one_to_one", {"synapse_model": "static_synapse", "delay": dt})
    # weight matrices are [post, pre], NEST's layout of all_to_all weight arrays
    nest.Connect(parrots, rec, all_to_all, {**plastic, "weight": np.asarray(sc.w_in, dtype=float)})
    if sc.n_rec > 1:
        nest.Connect(rec, rec, all_to_all, {**plastic, "weight": np.asarray(sc.w_rec, dtype=float)})
    nest.Connect(rec, readouts, all_to_all, {**plastic, "weight": np.asarray(sc.w_out, dtype=float)})
    nest.Connect(readouts, rec, all_to_all,
                 {"synapse_model": models["feedback"], "delay": dt, "weight": sc.effective_feedback()})
    nest.Connect(target_gen, readouts, "one_to_one", {**rate, "receptor_type": 2})
    nest.Connect(window_gen, readouts, "all_to_all", {**rate, "receptor_type": 1})

    generators.set([{"spike_times": (np.asarray(s, dtype=float) + GEN_OFFSET) * dt} for s in sc.input_spikes])
    target_gen.set([_amplitudes(np.asarray(sc.target[k], dtype=float), dt) for k in range(sc.n_out)])
    lam = np.ones(sc.n_steps) if sc.learning_window_signal is None else np.asarray(sc.learning_window_signal, float)
    window_gen.set(_amplitudes(lam, dt))
    return NestNetwork(
        generators=generators, parrots=parrots, populations=pops, readouts=readouts,
        target_generators=target_gen, multimeters=multimeters, readout_multimeter=mm_out,
        spike_recorder=sr, weight_recorder=wr, first_parrot=parrots[0].global_id,
        first_rec=first_rec, first_out=readouts[0].global_id,
    )


def _amplitudes(values: np.ndarray, dt: float) -> dict[str, np.ndarray]:
    """step_rate_generator parameters: the value of aligned step n from time n + AMPLITUDE_OFFSET on."""
    changes = np.concatenate([[0], np.nonzero(np.diff(values))[0] + 1])  # only where the value changes
    return {"amplitude_times": (changes + AMPLITUDE_OFFSET) * dt, "amplitude_values": values[changes]}


def _switch_on_currents(net: NestNetwork, sc, psc: bool) -> None:
    """Set I_e of the recurrent models of one kind (psc_delta or not) and, with psc, of the readouts."""
    for pop, nodes in zip(sc.populations, net.populations):
        if (pop.model in PSC_DELTA_MODELS) == psc and pop.params["i_offset"] != 0.0:
            nodes.set(I_e=pop.params["i_offset"] * 1000.0)
    if psc and sc.readout["i_offset"] != 0.0:
        net.readouts.set(I_e=sc.readout["i_offset"] * 1000.0)


def _collect(net: NestNetwork, sc, *, record_weight_events: bool) -> tuple[dict[str, np.ndarray], dict, int]:
    N, dt, n_rec = sc.n_steps, sc.dt, sc.n_rec
    traces: dict[str, np.ndarray] = {}
    stamps = {"learning_signal": LEARNING_SIGNAL_STAMP}
    names_all = {**_RECORDABLES, **_ADAPTIVE_RECORDABLES}
    offset = 0
    for pop, (mm, names, nodes) in zip(sc.populations, net.multimeters):
        ev = mm.events
        first = nodes[0].global_id
        for name in names:
            block = _grid(ev, names_all[name], first, len(nodes), stamps.get(name, REC_STAMP), N, dt)
            traces.setdefault(name, np.zeros((N, n_rec)))[:, offset: offset + len(nodes)] = block
        if pop.model not in ADAPTIVE_MODELS:  # fixed threshold, no adaptation
            traces.setdefault("adaptation", np.zeros((N, n_rec)))
            traces.setdefault("v_th_adapt", np.zeros((N, n_rec)))[:, offset: offset + len(nodes)] = \
                pop.params["v_thresh"]
        offset += len(nodes)
    sev = net.spike_recorder.events
    s_stamp = np.rint(np.asarray(sev["times"]) / dt).astype(np.int64)
    s_idx = np.asarray(sev["senders"], dtype=np.int64) - net.first_rec
    s_step = s_stamp - REC_STAMP
    keep = (s_step >= 0) & (s_step < N)
    z = np.zeros((N, n_rec), dtype=np.int8)
    z[s_step[keep], s_idx[keep]] = 1
    traces["z"] = z
    ev = net.readout_multimeter.events
    for name, nest_name in _READOUT_RECORDABLES.items():
        traces[name] = _grid(ev, nest_name, net.first_out, sc.n_out, OUT_STAMP, N, dt)
    traces["y"] = traces["readout_v"].copy()
    traces["target"] = np.asarray(sc.target, dtype=float).T.copy()
    traces["learning_signal"], filled = _complete_learning_signal(traces["learning_signal"], traces["error"],
                                                                  sc.effective_feedback())
    events = _weight_events(net, sc, s_stamp, s_idx) if record_weight_events else {}
    return traces, events, filled


def _complete_learning_signal(recorded: np.ndarray, error: np.ndarray, B: np.ndarray) -> tuple[np.ndarray, int]:
    """Fill the learning-signal entries NEST could not record.

    A neuron records the learning signal from its e-prop history two steps back; NEST erases a
    history entry as soon as no incoming synapse needs it any more, and then records 0.  Every entry
    NEST wrote is ``sum_k B_jk error_k`` (readouts in ascending order) of the recorded errors: this
    is checked on the recorded entries, and used for the erased ones.

    Returns
    -------
    (ndarray, int)
        The learning signal ``(n_steps, n_rec)`` and the number of filled entries.
    """
    derived = np.zeros_like(recorded)
    for k in range(B.shape[1]):
        derived += B[None, :, k] * error[:, k : k + 1]
    differs = recorded != derived
    wrong = differs & (recorded != 0.0)
    if wrong.any():
        t, j = (int(x[0]) for x in np.nonzero(wrong))
        raise RuntimeError(f"NEST's recorded learning signal of neuron {j} at aligned step {t} is {recorded[t, j]!r}, "
                           f"not B . error = {derived[t, j]!r}: recording alignment broken")
    return derived, int(differs.sum())


def simulate(net: NestNetwork, sc, on_iteration: Callable[[int, float], None] | None = None) -> None:
    """Simulate all iterations of a network from :func:`create_network` (kernel at time 0), then the tail.

    ``on_iteration(index, loss)`` after each iteration (NEST then runs iteration by iteration).
    """
    nest = _nest()
    dt = sc.dt
    # pre-roll: I_e of eprop_iaf(_adapt) enters v one step after it is set, that of psc_delta at once
    nest.Simulate(dt)
    _switch_on_currents(net, sc, psc=False)
    nest.Simulate(dt)
    _switch_on_currents(net, sc, psc=True)
    done = 2
    N = sc.n_steps
    steps_it = sc.steps_per_sequence * sc.iteration_sequences
    if on_iteration is not None:
        for it in range(sc.n_iterations):
            end = (it + 1) * steps_it + OUT_STAMP  # readout of the iteration's last step is recorded
            nest.Simulate((end - done) * dt)
            done = end
            ev = net.readout_multimeter.events
            n = (it + 1) * steps_it
            y = _grid(ev, "V_m", net.first_out, sc.n_out, OUT_STAMP, n, dt)
            sl = slice(it * steps_it, n)
            on_iteration(it, float(compute_losses(sc, y[sl], np.asarray(sc.target, float).T[sl], sl.start)[0]))
    nest.Simulate((N + TAIL_STEPS - done) * dt)


def run_event_nest(
    scenario,
    *,
    record_weight_events: bool = True,
    on_iteration: Callable[[int, float], None] | None = None,
    flush_event_send_interval: float | None = None,
    models: dict[str, str] | None = None,
    threads: int = 1,
    after_reset: Callable[[], Any] | None = None,
    backend: str = "nest-builtin",
) -> Result:
    """Run an event-family scenario on NEST's built-in e-prop models.

    Parameters
    ----------
    scenario : Scenario
        Event-family scenario (validated here).
    record_weight_events : bool
        Record one weight event per spike transmitted by a plastic synapse.
    on_iteration : callable, optional
        ``on_iteration(index, loss)`` after each iteration (NEST is then run iteration by iteration).
    flush_event_send_interval : float, optional
        ms; default one sequence, as NEST's test.  Flush events do not change any number.
    models, threads, after_reset, backend
        For the ``nestml`` backend, which runs the same network with its own neuron models
        (same recordable names): model names, NEST threads, a hook run after the kernel reset and
        the backend name put into the Result.

    Returns
    -------
    Result
        Traces ``v, z, psi, adaptation, v_th_adapt, learning_signal, readout_v, y, target, error``
        in aligned time, weight events and losses.

    Raises
    ------
    ParameterError
        ``feedback = 'symmetric'`` (NEST's feedback weights are fixed) or a non-event scenario.
    """
    sc = scenario.validated()
    if sc.family != "event":
        raise ParameterError(f"network.family = {sc.family!r}: run_event_nest runs only the 'event' family")
    if sc.network["feedback"] == "symmetric":
        raise ParameterError(
            "network.feedback = 'symmetric': NEST's built-in e-prop models keep the feedback weights B fixed; "
            "use 'symmetric_initial' or 'random' on nest-builtin")
    t0 = time.perf_counter()
    version = check()
    dt = sc.dt
    net = _build(sc, flush_event_send_interval or sc.steps_per_sequence * dt, models, threads, after_reset)
    t_build = time.perf_counter() - t0
    simulate(net, sc, on_iteration)
    t_sim = time.perf_counter() - t0 - t_build
    traces, events, filled = _collect(net, sc, record_weight_events=record_weight_events)
    return Result(
        scenario=sc.name,
        family="event",
        backend=backend,
        losses=compute_losses(sc, traces["y"], traces["target"]),
        traces=traces,
        weight_events=events,
        meta={
            "seconds": time.perf_counter() - t0,
            "build_seconds": t_build,
            "simulate_seconds": t_sim,
            "nest_version": version,
            "notes": [
                "weight recorder entries of NEST flush events were removed",
                f"learning_signal: {filled} entries NEST had erased from its history before recording them "
                "(it records 0 there) were filled with B . error (checked equal on all recorded entries)",
                "y is the recorded readout potential (NEST multiplies readout_signal by the learning window)",
                "fr_reg, per-synapse traces and weight snapshots are not observable in NEST",
            ],
        },
    )
