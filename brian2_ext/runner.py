"""Run a scenario on an :class:`~brian2_ext.network.EpropNetwork`, in runtime mode or cpp_standalone.

Both modes follow one protocol: per iteration, set the values (weights, optimizer state, inputs,
targets, parameters), run ``batch * T + 1`` steps from t = 0, read weights, optimizer state and
monitors back.  Runtime mode restores the network stored at t = 0; cpp_standalone re-runs one cached
binary with ``run_args`` (no recompilation per iteration or per scenario of the same structure).
"""

from __future__ import annotations

import os
import time
from typing import Any, Callable

import numpy as np

from eprop_plugins.parameters import ParameterError
from eprop_plugins.reference.common import recurrent_constants
from eprop_plugins.results import Result, compute_losses, sort_weight_events

from .config import cache_dir, configure
from .network import EpropNetwork, structure_hash, structure_of

__all__ = ["run_scenario", "RuntimeSession", "StandaloneSession"]


class RuntimeSession:
    """An EpropNetwork in Brian2's runtime mode (``target`` 'cython' or 'numpy')."""

    def __init__(self, st, dt: float, record_synapses, target: str = "cython"):
        import brian2 as b2

        configure(target)
        b2.set_device("runtime")
        self.model = EpropNetwork(st, dt, record_synapses)
        self.model.net.store("initial")
        self.build_seconds = 0.0

    def run(self, values: dict[Any, np.ndarray]) -> None:
        import brian2 as b2

        m = self.model
        m.net.restore("initial")
        for key, val in values.items():
            if isinstance(key, b2.TimedArray):
                key.values[...] = val  # the generated code reads this buffer
            else:
                key[:] = val
        m.net.run(m.R * m.dt * b2.ms, namespace={})


class StandaloneSession:
    """An EpropNetwork compiled once with cpp_standalone into a cache directory keyed by its structure."""

    _active: "StandaloneSession | None" = None  # Brian2 holds one standalone project per process

    def __init__(self, st, dt: float, record_synapses, threads: int = 1):
        import brian2 as b2
        from brian2.devices import device_module

        t0 = time.perf_counter()
        self.key = structure_hash(st, dt, repr(list(record_synapses)) + f"threads={threads}")
        configure("cython", threads)
        dev = device_module.all_devices["cpp_standalone"]
        if StandaloneSession._active is not None:
            dev.reinit()
        b2.set_device("cpp_standalone", build_on_run=False)
        self.device = b2.get_device()
        self.directory = cache_dir("standalone", self.key)
        self.model = EpropNetwork(st, dt, record_synapses)
        self.model.net.run(self.model.R * dt * b2.ms, namespace={})
        from brian2.utils.filelock import FileLock

        # make rebuilds nothing when the generated sources are unchanged (cache hit)
        with FileLock(str(self.directory) + ".lock"):
            self.device.build(directory=str(self.directory), compile=True, run=False, with_output=False)
        self.results = f"results_{os.getpid()}"
        self.build_seconds = time.perf_counter() - t0
        b2.set_device("runtime")  # leave runtime mode active for other code in this process
        StandaloneSession._active = self

    @classmethod
    def get(cls, st, dt, record_synapses, threads: int = 1) -> "StandaloneSession":
        """The session of this structure, reusing the one built last in this process."""
        key = structure_hash(st, dt, repr(list(record_synapses)) + f"threads={threads}")
        if cls._active is not None and cls._active.key == key:
            return cls._active
        return cls(st, dt, record_synapses, threads)

    def run(self, values: dict[Any, np.ndarray]) -> None:
        self.device.run(directory=str(self.directory), results_directory=self.results, with_output=False,
                        run_args=values)
        # the static arrays written for run_args accumulate otherwise
        for fname in self.device.run_args_arrays:
            path = self.directory / "static_arrays" / fname
            if path.exists():
                path.unlink()


def _check_supported(sc) -> None:
    if sc.family != "original":
        raise ParameterError(
            f"network.family = {sc.family!r}: the Brian2 backends implement the 'original' family so far"
        )


def run_scenario(
    scenario,
    *,
    mode: str = "cython",
    record_weight_events: bool = True,
    record: bool = True,
    on_iteration: Callable[[int, float], None] | None = None,
    threads: int = 1,
    backend: str = "brian2",
) -> Result:
    """Simulate a scenario with Brian2.

    Parameters
    ----------
    scenario : Scenario
        Any scenario (validated here).
    mode : {'cython', 'numpy', 'standalone'}
    record_weight_events : bool
        Produce one weight event per transmitted spike (needs ``record``).
    record : bool
        Record per-step traces of the recurrent neurons (the readout signal is always recorded,
        for the losses).  ``False`` keeps memory independent of the sequence length.
    on_iteration : callable, optional
        ``on_iteration(index, loss)`` after each iteration.
    threads : int
        cpp_standalone OpenMP threads.
    backend : str
        Name stored in the Result.
    """
    t_start = time.perf_counter()
    sc = scenario.validated()
    _check_supported(sc)
    st = structure_of(sc, record=record)
    rs = sc.record_synapses if record else []
    if mode == "standalone":
        session = StandaloneSession.get(st, sc.dt, rs, threads)
    elif mode in ("cython", "numpy"):
        session = RuntimeSession(st, sc.dt, rs, mode)
    else:
        raise ParameterError(f"mode = {mode!r}: allowed values are cython, numpy, standalone")
    m = session.model
    c = recurrent_constants(sc)
    T, Bt = st.steps, st.batch
    n_it = sc.n_iterations
    N = sc.n_steps
    n_rec, n_out = sc.n_rec, sc.n_out

    weights = {"in": sc.w_in.copy(), "rec": sc.w_rec.copy(), "out": sc.w_out.copy(), "fb": sc.effective_feedback()}
    sizes = {"in": len(m.in_pre), "rec": len(m.rec_pre), "out": len(m.out_pre)}
    opt_state = {}
    for proj, size in sizes.items():
        opt_state.update({f"{proj}_m1": np.zeros(size), f"{proj}_m2": np.zeros(size),
                          f"{proj}_b1p": np.ones(size), f"{proj}_b2p": np.ones(size)})
    constants = m.constant_values(sc)

    tr: dict[str, np.ndarray] = {}
    if record:
        for k in ("v", "psi", "adaptation", "v_th_adapt", "learning_signal", "fr_reg"):
            tr[k] = np.zeros((N, n_rec))
        tr["z"] = np.zeros((N, n_rec), dtype=np.int8)
    for k in ("readout_v", "y", "target", "error"):
        tr[k] = np.zeros((N, n_out))
    syn = {k: np.zeros((N, len(rs))) for k in ("zbar", "e", "ebar")}
    snaps = {k: np.zeros((sc.n_sequences,) + weights[p].shape)
             for k, p in (("w_in", "in"), ("w_rec", "rec"), ("w_out", "out"), ("w_fb", "fb"))}
    events: dict[str, list[np.ndarray]] = {k: [] for k in ("step", "proj", "pre", "post", "w")}
    losses: list[float] = []
    run_seconds = 0.0

    for it in range(n_it):
        n0 = it * Bt * T
        sl = slice(n0, n0 + Bt * T)
        values = dict(constants)
        values.update(m.iteration_values(sc, it, weights, opt_state))
        values = {k: v for k, v in values.items() if np.size(v)}  # empty projections
        t0 = time.perf_counter()
        session.run(values)
        run_seconds += time.perf_counter() - t0
        w_before = {k: v.copy() for k, v in weights.items()}

        mon = m.monitors["out"]
        y = np.asarray(mon.y)[:, : Bt * T].T
        tr["readout_v"][sl] = y + sc.readout["v_rest"]
        tr["y"][sl] = np.asarray(mon.sig)[:, : Bt * T].T
        tr["error"][sl] = np.asarray(mon.err)[:, : Bt * T].T
        tr["target"][sl] = sc.target[:, sl].T
        if record:
            mr = m.monitors["rec"]
            tr["v"][sl] = np.asarray(mr.v)[:, : Bt * T].T + c.v_rest
            z = np.asarray(mr.z)[:, : Bt * T].T
            tr["z"][sl] = z.astype(np.int8)
            tr["psi"][sl] = np.asarray(mr.psi)[:, : Bt * T].T
            # a = z for rho = 0: non-adaptive neurons report 0, as the reference does
            tr["adaptation"][sl] = np.where(c.adaptive, np.asarray(mr.a)[:, : Bt * T].T, 0.0)
            tr["v_th_adapt"][sl] = np.asarray(mr.thr)[:, : Bt * T].T + c.v_rest
            tr["learning_signal"][sl] = np.asarray(mr.L)[:, : Bt * T].T
            fr = np.asarray(mr.fr)  # the interval block at step kT computed the term of interval k - 1
            for k in range(Bt):
                tr["fr_reg"][n0 + k * T : n0 + (k + 1) * T] = fr[:, (k + 1) * T]
            for q, (proj, pre, post) in enumerate(rs):
                ms = m.monitors[f"syn_{proj}"]
                row = list(ms.record).index(m.synapse_index(proj, pre, post))
                zb = np.asarray(ms.zbar)[row, : Bt * T]
                syn["zbar"][sl, q] = zb
                # readout synapses: e_t = err_k,t zbar_t (a product of two recorded values)
                syn["e"][sl, q] = (tr["error"][sl, post] * zb if proj == "out"
                                   else np.asarray(ms.elig)[row, : Bt * T])
                syn["ebar"][sl, q] = zb if proj == "out" else np.asarray(ms.ebar)[row, : Bt * T]
            if record_weight_events:
                _weight_events(events, sc, n0, Bt * T, T, z, w_before)

        for proj, s in (("in", m.s_in), ("rec", m.s_rec), ("out", m.s_out)):
            if sizes[proj] == 0:
                continue
            weights[proj] = m.dense(proj, np.asarray(s.w[:]))
            for name in ("m1", "m2", "b1p", "b2p"):
                opt_state[f"{proj}_{name}"] = np.asarray(getattr(s, name)[:]).copy()
        weights["fb"] = m.dense("out", np.asarray(m.s_out.B[:])).T
        for k in range(Bt):
            s_idx = it * Bt + k
            src = weights if k == Bt - 1 else w_before
            for key, p in (("w_in", "in"), ("w_rec", "rec"), ("w_out", "out"), ("w_fb", "fb")):
                snaps[key][s_idx] = src[p]
        loss = float(compute_losses(sc, tr["y"][sl], tr["target"][sl])[0])
        losses.append(loss)
        if on_iteration is not None:
            on_iteration(it, loss)

    wev = {k: (np.concatenate(v) if v else np.zeros(0)) for k, v in events.items()}
    if record and record_weight_events:
        wev = sort_weight_events(wev)
    return Result(
        scenario=sc.name,
        family=sc.family,
        backend=backend,
        losses=np.array(losses),
        traces=tr,
        synapse_traces=syn if rs else {},
        weight_events=wev,
        weights=snaps,
        meta={"seconds": time.perf_counter() - t_start, "build_seconds": session.build_seconds,
              "run_seconds": run_seconds, "seconds_per_iteration": run_seconds / max(n_it, 1), "mode": mode},
    )


def _weight_events(events, sc, n0: int, n_steps: int, T: int, z: np.ndarray, w: dict[str, np.ndarray]) -> None:
    """One event per transmitted spike of a plastic synapse, with the weight in force (constant per iteration).

    Recurrent spikes of the last step of an interval arrive at interval position 0 and are dropped.
    """
    n_rec, n_out = sc.n_rec, sc.n_out

    def add(step, proj, pre, post, weight):
        events["step"].append(np.asarray(step, dtype=np.int64))
        events["proj"].append(np.full(np.size(step), proj, dtype=np.int8))
        events["pre"].append(np.asarray(pre, dtype=np.int64))
        events["post"].append(np.asarray(post, dtype=np.int64))
        events["w"].append(np.asarray(weight, dtype=float))

    for i, train in enumerate(sc.input_spikes):
        arr = np.asarray(train, dtype=np.int64)
        arr = arr[(arr >= n0) & (arr < n0 + n_steps)]
        if arr.size:
            post = np.tile(np.arange(n_rec), arr.size)
            add(np.repeat(arr, n_rec), 0, np.full(post.size, i), post, w["in"][post, i])
    t_sp, j_sp = np.nonzero(z)
    arrive = t_sp + 1
    ok = (arrive < n_steps) & (arrive % T != 0)
    ta, ja = arrive[ok], j_sp[ok]
    post = np.tile(np.arange(n_rec), ta.size)
    pre = np.repeat(ja, n_rec)
    keep = post != pre
    add(n0 + np.repeat(ta, n_rec)[keep], 1, pre[keep], post[keep], w["rec"][post[keep], pre[keep]])
    post = np.tile(np.arange(n_out), t_sp.size)
    pre = np.repeat(j_sp, n_out)
    add(n0 + np.repeat(t_sp, n_out), 2, pre, post, w["out"][post, pre])
