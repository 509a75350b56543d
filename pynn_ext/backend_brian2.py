"""The ``pynn-brian2`` backend: a scenario as a PyNN script on pyNN.brian2 with the :mod:`pynn_ext` types.

The network is built the way a PyNN user writes it (``SpikeSourceArray`` inputs, ``AllToAllConnector``
projections with :class:`~pynn_ext.EpropSynapse`, a :class:`~pynn_ext.FeedbackSynapse` projection,
``EpropReadout(target=...)``), run with ``sim.run`` and read back through ``get_data`` (neo); only
what PyNN does not record (firing-rate term, weight snapshots, synapse traces) comes from Brian2
monitors added to PyNN's network.  Original family only (see :mod:`pynn_ext.brian2`).
"""

from __future__ import annotations

import time
from typing import Callable

import numpy as np

from eprop_plugins.backends import check_supported
from eprop_plugins.parameters import ADAPTIVE_MODELS, ParameterError
from eprop_plugins.results import Result, WeightEventLog, compute_losses

__all__ = ["NAME", "run", "check", "build_network", "unsupported_reason"]

NAME = "pynn-brian2"


def unsupported_reason(sc) -> str | None:
    """Why a validated scenario cannot be written with the PyNN types on pyNN.brian2 (None: it can)."""
    if sc.family != "original":
        return "pyNN.brian2 translation implements the original family only"
    if sc.network.get("feedback") == "symmetric":
        return ("network.feedback = 'symmetric': FeedbackSynapse weights are fixed, so B cannot track W_out; "
                "use 'symmetric_initial' or 'random'")
    models = {p.model for p in sc.populations}
    options = {(p.params["surrogate_gradient_function"], p.params.get("regular_spike_arrival", True),
                p.params.get("v_min")) for p in sc.populations}
    if len(models) > 1 or len(options) > 1:
        return ("recurrent populations of different models or options (surrogate function, regular_spike_arrival, "
                "v_min): one PyNN population per scenario here, and an option holds for a whole population")
    if any(np.any(np.asarray(t, dtype=np.int64) < 1) for t in sc.input_spikes):
        return "an input spike arrives at step 0: with a one-step delay it would be emitted before t = 0"
    return None


def build_network(sc, sim):
    """The PyNN populations and projections of a validated original-family scenario (``sim``: pyNN.brian2)."""
    from pyNN.parameters import Sequence

    from . import standardmodels as sm

    dt = sc.dt
    sim.setup(timestep=dt, min_delay=dt)
    inputs = sim.Population(sc.n_in, sim.SpikeSourceArray(
        spike_times=[Sequence((np.asarray(t, dtype=float) - 1.0) * dt) for t in sc.input_spikes]), label="inputs")
    model = sc.populations[0].model
    cls = sm.RECURRENT_TYPES[model]
    names = set(sc.populations[0].params)
    params = {}
    for name in names:
        row = cls.row(name) if any(r.name == name for r in cls.table) else None
        if row is None:
            continue
        if sm.is_parameter(row):
            params[name] = np.concatenate([np.full(p.size, float(p.params[name])) for p in sc.populations])
            if np.all(params[name] == params[name][0]):
                params[name] = float(params[name][0])
        else:
            params[name] = sc.populations[0].params[name]
    rec = sim.Population(sc.n_rec, cls(family="original", **{k: v for k, v in params.items()
                                                            if k in cls.defaults("original") or
                                                            not sm.is_parameter(cls.row(k))}), label="recurrent")
    ro = {k: v for k, v in sc.readout.items() if any(r.name == k for r in sm.EpropReadout.rows("original"))}
    out = sim.Population(sc.n_out, sm.EpropReadout(
        family="original", sequence=sc.network["sequence"], learning_window=sc.network.get("learning_window"),
        target=[Sequence(row) for row in np.asarray(sc.target)], **ro), label="readout")
    opt = {k: v for k, v in sc.optimizer.items() if k != "type"}
    optimizer = (sm.Adam if sc.optimizer["type"] == "adam" else sm.GradientDescent)(**opt)
    syn = {k: v for k, v in sc.synapse.items() if v is not None or k == "tau_m_readout"}

    def plastic(w):
        return sm.EpropSynapse(optimizer=optimizer, weight=np.asarray(w, dtype=float), delay=dt, **syn)

    projections = {
        "in": sim.Projection(inputs, rec, sim.AllToAllConnector(), plastic(sc.w_in.T), label="in"),
        "out": sim.Projection(rec, out, sim.AllToAllConnector(), plastic(sc.w_out.T), label="out"),
        "fb": sim.Projection(out, rec, sim.AllToAllConnector(),
                             sm.FeedbackSynapse(weight=np.asarray(sc.effective_feedback(), dtype=float).T, delay=dt),
                             label="feedback"),
    }
    if sc.n_rec > 1:
        projections["rec"] = sim.Projection(rec, rec, sim.AllToAllConnector(allow_self_connections=False),
                                            plastic(sc.w_rec.T), label="rec")
    return inputs, rec, out, projections


def _synapses(proj):
    return proj._brian2_synapses[0][0]


def run(scenario, *, record_weight_events: bool = True,
        on_iteration: Callable[[int, float], None] | None = None) -> Result:
    """Run a scenario as a PyNN script on pyNN.brian2 and return every trace the validation compares."""
    t_start = time.perf_counter()
    sc = scenario.validated()
    check_supported(NAME, sc)
    reason = unsupported_reason(sc)
    if reason is not None:
        raise ParameterError(f"{reason} (backend {NAME})")
    import brian2 as b2
    import pyNN.brian2 as sim

    from brian2_ext.config import cache_dir

    from . import brian2 as glue  # noqa: F401 - teaches pyNN.brian2 the e-prop types

    modules_before = sum(1 for p in cache_dir("cython").glob("*.so"))
    T, N, dt = sc.steps_per_sequence, sc.n_steps, sc.dt
    B = sc.optimizer["batch_size"]
    inputs, rec, out, projs = build_network(sc, sim)
    adaptive = sc.populations[0].model in ADAPTIVE_MODELS
    rec.record(["spikes", "v", "psi", "learning_signal"] + (["adaptation"] if adaptive else []))
    out.record(["v", "readout_signal", "target", "error"])
    net = sim.simulator.state.network
    g_rec, g_out = rec.brian2_group, out.brian2_group
    mons = {"rec": b2.StateMonitor(g_rec, ["fr", "thr_abs"], record=True, when="end"),
            "sig": b2.StateMonitor(g_out, ["sig"], record=True, when="end")}
    interval = T * dt * b2.ms
    for key, proj in projs.items():
        if key != "fb":
            mons[f"w_{key}"] = b2.StateMonitor(_synapses(proj), "w", record=True, dt=interval, when="end")
    syn_index = {}
    for proj_name in ("in", "rec", "out"):
        wanted = [(pre, post) for p, pre, post in sc.record_synapses if p == proj_name]
        if not wanted or proj_name not in projs:
            continue
        s = _synapses(projs[proj_name])
        i, j = np.asarray(s.i[:]), np.asarray(s.j[:])
        idx = [int(np.flatnonzero((i == pre) & (j == post))[0]) for pre, post in wanted]
        syn_index.update({(proj_name, pre, post): q for q, (pre, post) in enumerate(wanted)})
        mons[f"syn_{proj_name}"] = b2.StateMonitor(s, ["zbar"] if proj_name == "out" else ["zbar", "elig", "ebar"],
                                                   record=idx, when="end")
    net.add(*mons.values())
    t_run = time.perf_counter()
    losses = []
    for it in range(sc.n_iterations):
        sim.run(B * T * dt)
        if on_iteration is not None or True:
            lo = it * B * T
            y = np.asarray(mons["sig"].sig).T[lo: lo + B * T]
            losses.append(float(compute_losses(sc, y, sc.target[:, lo: lo + B * T].T, start=lo)[0]))
            if on_iteration is not None:
                on_iteration(it, losses[-1])
    sim.run(dt)  # the optimizer of the last iteration acts in the interval block of the extra step
    run_seconds = time.perf_counter() - t_run

    traces = _traces(sc, rec, out, mons, adaptive)
    synapse_traces = _synapse_traces(sc, mons, syn_index, traces["error"])
    weights = _weight_snapshots(sc, projs, mons)
    wev = _weight_events(sc, projs, traces["z"], weights) if record_weight_events else WeightEventLog().arrays()
    sim.end()
    compiled = sum(1 for p in cache_dir("cython").glob("*.so")) > modules_before
    total = time.perf_counter() - t_start
    return Result(scenario=sc.name, family=sc.family, backend=NAME, losses=np.array(losses), traces=traces,
                  synapse_traces=synapse_traces, weight_events=wev, weights=weights,
                  meta={"seconds": total, "compile_seconds": (total - run_seconds) if compiled else 0.0,
                        "cached": not compiled, "run_seconds": run_seconds,
                        "seconds_per_iteration": run_seconds / max(sc.n_iterations, 1), "mode": "pynn-brian2"})


def _signal(block, name: str, N: int) -> np.ndarray:
    """Aligned steps 0..N-1 of a recorded neo signal (sample k + 1 = end of step k)."""
    sig = next(s for s in block.segments[0].analogsignals if s.name == name)
    return np.asarray(sig.magnitude)[1: N + 1]


def _traces(sc, rec, out, mons, adaptive: bool) -> dict[str, np.ndarray]:
    N, T, dt = sc.n_steps, sc.steps_per_sequence, sc.dt
    rb, ob = rec.get_data(), out.get_data()
    tr: dict[str, np.ndarray] = {"v": _signal(rb, "v", N)}
    z = np.zeros((N, sc.n_rec), dtype=np.int8)
    for j, st in enumerate(rb.segments[0].spiketrains):
        steps = np.round(np.asarray(st.rescale("ms").magnitude) / dt).astype(np.int64)
        z[steps[steps < N], j] = 1
    tr["z"] = z
    tr["psi"] = _signal(rb, "psi", N)
    tr["adaptation"] = _signal(rb, "adaptation", N) if adaptive else np.zeros((N, sc.n_rec))
    tr["v_th_adapt"] = np.asarray(mons["rec"].thr_abs)[:, :N].T
    tr["learning_signal"] = _signal(rb, "learning_signal", N)
    fr = np.asarray(mons["rec"].fr)[:, T: N + 1: T].T
    tr["fr_reg"] = np.repeat(fr, T, axis=0)
    tr["readout_v"] = _signal(ob, "v", N)
    tr["y"] = _signal(ob, "readout_signal", N)
    tr["error"] = _signal(ob, "error", N)
    tr["target"] = _signal(ob, "target", N)
    return tr


def _synapse_traces(sc, mons, syn_index, error) -> dict[str, np.ndarray]:
    rs, N = sc.record_synapses, sc.n_steps
    if not rs:
        return {}
    syn = {k: np.zeros((N, len(rs))) for k in ("zbar", "e", "ebar")}
    for q, (proj, pre, post) in enumerate(rs):
        m = mons[f"syn_{proj}"]
        row = syn_index[(proj, pre, post)]
        zb = np.asarray(m.zbar)[row, :N]
        syn["zbar"][:, q] = zb
        # readout synapses: e_t = err_k,t zbar_t and e-bar = z-bar (as brian2_ext reports them)
        syn["e"][:, q] = error[:, post] * zb if proj == "out" else np.asarray(m.elig)[row, :N]
        syn["ebar"][:, q] = zb if proj == "out" else np.asarray(m.ebar)[row, :N]
    return syn


def _dense(proj, values) -> np.ndarray:
    """``[post, pre]`` matrix of per-synapse values (zero where there is no synapse)."""
    s = _synapses(proj)
    mat = np.zeros((proj.post.size, proj.pre.size))
    mat[np.asarray(s.j[:]), np.asarray(s.i[:])] = values
    return mat


def _weight_snapshots(sc, projs, mons) -> dict[str, np.ndarray]:
    """Dense weights at the end of every sequence (row s + 1 of a per-interval monitor = end of sequence s)."""
    n_seq = sc.n_sequences
    snaps = {}
    for key, name in (("in", "w_in"), ("rec", "w_rec"), ("out", "w_out")):
        if key not in projs:
            snaps[name] = np.broadcast_to(sc.w_rec, (n_seq,) + sc.w_rec.shape).copy()
            continue
        vals = np.asarray(mons[f"w_{key}"].w)[:, 1: n_seq + 1]
        snaps[name] = np.stack([_dense(projs[key], vals[:, s]) for s in range(n_seq)])
    fb = np.asarray(projs["fb"].get("weight", format="array"), dtype=float)  # (pre = readout, post = recurrent)
    snaps["w_fb"] = np.broadcast_to(fb.T, (n_seq,) + fb.T.shape).copy()
    return snaps


def _weight_events(sc, projs, z, snaps) -> dict[str, np.ndarray]:
    """One event per transmitted spike of a plastic synapse, with the weight in force in its iteration.

    Recurrent spikes of an interval's last step arrive at interval position 0, where they are dropped.
    """
    log = WeightEventLog()
    T = sc.steps_per_sequence
    L = sc.optimizer["batch_size"] * T
    exists = {k: _dense(p, 1.0) > 0 for k, p in projs.items() if k != "fb"}
    for it in range(sc.n_iterations):
        n0 = it * L
        if it == 0:
            w = {"in": sc.w_in, "rec": sc.w_rec, "out": sc.w_out}
        else:
            s = it * sc.optimizer["batch_size"] - 1
            w = {"in": snaps["w_in"][s], "rec": snaps["w_rec"][s], "out": snaps["w_out"][s]}
        zi = z[n0: n0 + L]
        for i, train in enumerate(sc.input_spikes):
            arr = np.asarray(train, dtype=np.int64)
            arr = arr[(arr >= n0) & (arr < n0 + L)]
            post = np.flatnonzero(exists["in"][:, i])
            if arr.size and post.size:
                log.add(np.repeat(arr, post.size), 0, i, np.tile(post, arr.size), np.tile(w["in"][post, i], arr.size))
        t_sp, j_sp = np.nonzero(zi)
        arrive = t_sp + 1
        ok = (arrive < L) & (arrive % T != 0)
        for proj, code, steps, pres in (("rec", 1, n0 + arrive[ok], j_sp[ok]), ("out", 2, n0 + t_sp, j_sp)):
            if proj not in exists:
                continue
            for step, pre in zip(steps, pres):
                post = np.flatnonzero(exists[proj][:, pre])
                if post.size:
                    log.add(step, code, pre, post, w[proj][post, pre])
    return log.arrays()


def check() -> None:
    """Raise ImportError when pyNN.brian2 or the e-prop types cannot be imported here."""
    import pyNN.brian2  # noqa: F401

    from . import brian2  # noqa: F401
