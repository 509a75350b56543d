"""Run a scenario on an :class:`~brian2_ext.network.EpropNetwork`, in runtime mode or cpp_standalone.

A whole scenario (all iterations) is one simulation of ``n_sequences * T + 1`` steps; the optimizer
state lives in Brian2 variables between intervals.  Runtime mode runs it in chunks of one iteration
(so ``on_iteration`` is called as the run proceeds); cpp_standalone runs one cached binary once with
``run_args`` (no recompilation per scenario of the same structure) and calls ``on_iteration`` for
every iteration after the run.  Event-family scenarios go to :mod:`brian2_ext.runner_event`
(one run of the whole scenario, ``on_iteration`` after it in both modes).
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

    def __init__(self, st, dt: float, record_synapses, target: str = "cython", network_cls=EpropNetwork):
        import brian2 as b2

        configure(target)
        b2.set_device("runtime")
        self.model = network_cls(st, dt, record_synapses)
        self.build_seconds = 0.0
        self.compiled = False

    def set_values(self, values: dict[Any, np.ndarray]) -> None:
        """Assign parameters, initial weights, inputs and targets before the first step."""
        import brian2 as b2

        for key, val in values.items():
            if isinstance(key, b2.TimedArray):
                key.values[...] = val  # the generated code reads this buffer
            else:
                key[:] = val

    def advance(self, steps: int) -> None:
        """Simulate ``steps`` more steps (state carries over)."""
        import brian2 as b2

        m = self.model
        m.net.run(steps * m.dt * b2.ms, namespace={})


class StandaloneSession:
    """An EpropNetwork compiled once with cpp_standalone into a cache directory keyed by its structure."""

    _active: "StandaloneSession | None" = None  # Brian2 holds one standalone project per process

    def __init__(self, st, dt: float, record_synapses, threads: int = 1, network_cls=EpropNetwork):
        import brian2 as b2
        from brian2.devices import device_module

        t0 = time.perf_counter()
        self.key = structure_hash(st, dt, repr(list(record_synapses)) + f"threads={threads}")
        configure("cython", threads, standalone=True)
        dev = device_module.all_devices["cpp_standalone"]
        if StandaloneSession._active is not None:
            dev.reinit()
            # Brian2 suffixes the name of a code object whose name is still in use ("_1"): free the old
            # network first, so that the generated sources (and the cache hit) do not depend on history
            StandaloneSession._active = None
            import gc

            gc.collect()
        # the device records the default clock's dt when it is set: make it the same in every session
        b2.defaultclock.dt = dt * b2.ms
        b2.set_device("cpp_standalone", build_on_run=False)
        self.device = b2.get_device()
        self.directory = cache_dir("standalone", self.key)
        self.model = network_cls(st, dt, record_synapses)
        # no report: with one, Brian2's main loop calls std::clock() (a clock_gettime system call for
        # process CPU time) before every object in every step, 26 per step here: ~0.5 M calls and about
        # as much wall time as the simulation itself on the sine task
        self.model.net.run(self.model.R * dt * b2.ms, namespace={})
        from brian2.utils.filelock import FileLock

        binary = self.directory / "main"
        before = binary.stat().st_mtime_ns if binary.exists() else None
        # make rebuilds nothing when the generated sources are unchanged (cache hit)
        with FileLock(str(self.directory) + ".lock"):
            main_cpp = self.directory / "main.cpp"
            old = (main_cpp.read_text(), main_cpp.stat()) if main_cpp.exists() else None
            self.device.build(directory=str(self.directory), compile=False, run=False, with_output=False)
            _keep_equivalent_main(main_cpp, old)
            from brian2.codegen.cpp_prefs import get_compiler_and_args

            self.device.compile_source(str(self.directory), get_compiler_and_args()[0], False, False)
        self.compiled = before is None or binary.stat().st_mtime_ns != before
        self.results = f"results_{os.getpid()}"
        self.build_seconds = time.perf_counter() - t0
        b2.set_device("runtime")  # leave runtime mode active for other code in this process
        StandaloneSession._active = self

    @classmethod
    def get(cls, st, dt, record_synapses, threads: int = 1, network_cls=EpropNetwork) -> "StandaloneSession":
        """The session of this structure, reusing the one built last in this process."""
        key = structure_hash(st, dt, repr(list(record_synapses)) + f"threads={threads}")
        if cls._active is not None and cls._active.key == key:
            cls._active.compiled = False
            return cls._active
        return cls(st, dt, record_synapses, threads, network_cls)

    def run(self, values: dict[Any, np.ndarray]) -> None:
        """One run of the binary over the whole scenario."""
        self.device.run(directory=str(self.directory), results_directory=self.results, with_output=False,
                        run_args=values)
        # the static arrays written for run_args accumulate otherwise
        for fname in self.device.run_args_arrays:
            path = self.directory / "static_arrays" / fname
            if path.exists():
                path.unlink()


def _keep_equivalent_main(main_cpp, old) -> None:
    """Undo a rewrite of ``main.cpp`` that only reorders lines.

    Brian2 initialises the clocks in set order, which changes between processes; restoring the
    previous text and time stamp lets ``make`` skip recompiling and relinking on a cache hit.
    """
    if old is None:
        return
    text, stat = old
    new = main_cpp.read_text()
    if new != text and sorted(new.splitlines()) == sorted(text.splitlines()):
        main_cpp.write_text(text)
        os.utime(main_cpp, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    elif new == text:
        os.utime(main_cpp, ns=(stat.st_atime_ns, stat.st_mtime_ns))


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
    """Simulate a scenario with Brian2: all iterations in one simulation.

    Parameters
    ----------
    scenario : Scenario
        Any scenario (validated here).
    mode : {'cython', 'numpy', 'standalone'}
    record_weight_events : bool
        Produce one weight event per transmitted spike (needs ``record``).
    record : bool
        Record per-step traces, weight snapshots and synapse traces.  ``False`` (losses only, as
        for training) records one accumulated loss per readout and iteration: memory does not grow
        with the sequence length, and ``Result.traces``, ``weights`` and ``weight_events`` are empty.
    on_iteration : callable, optional
        ``on_iteration(index, loss)`` for every iteration: as the run proceeds in runtime mode,
        after the single run of the binary in cpp_standalone.
    threads : int
        cpp_standalone OpenMP threads.
    backend : str
        Name stored in the Result.

    Returns
    -------
    Result
        ``meta`` holds ``build_seconds`` (network construction and, standalone, code generation and
        a compilation or cache hit), ``run_seconds`` (the simulation), ``seconds_per_iteration``
        (``run_seconds / iterations``) and ``compiled`` (whether a binary was compiled).
    """
    t_start = time.perf_counter()
    sc = scenario.validated()
    if sc.family == "event":
        from .runner_event import run_event_scenario

        return run_event_scenario(sc, mode=mode, record_weight_events=record_weight_events, record=record,
                                  on_iteration=on_iteration, threads=threads, backend=backend, t_start=t_start)
    _check_supported(sc)
    st = structure_of(sc, record=record)
    rs = sc.record_synapses if record else []
    if mode == "standalone":
        session = StandaloneSession.get(st, sc.dt, rs, threads)
    elif mode in ("cython", "numpy"):
        t0 = time.perf_counter()
        session = RuntimeSession(st, sc.dt, rs, mode)
        session.build_seconds = time.perf_counter() - t0
    else:
        raise ParameterError(f"mode = {mode!r}: allowed values are cython, numpy, standalone")
    m = session.model
    T, Bt = st.steps, st.batch
    n_it = sc.n_iterations
    L = Bt * T  # steps per iteration
    initial = {"in": sc.w_in.copy(), "rec": sc.w_rec.copy(), "out": sc.w_out.copy(), "fb": sc.effective_feedback()}
    values = dict(m.constant_values(sc))
    values.update(m.run_values(sc, initial))
    values = {k: v for k, v in values.items() if np.size(v)}  # empty projections

    losses: list[float] = []
    t0 = time.perf_counter()
    if mode == "standalone":
        session.run(values)
        run_seconds = time.perf_counter() - t0
        losses = list(_losses(sc, m, record))
        if on_iteration is not None:
            for it, loss in enumerate(losses):
                on_iteration(it, loss)
    else:
        session.set_values(values)
        for it in range(n_it):
            session.advance(L)
            # the accumulators hold the finished iteration until the next interval block
            loss = float(_losses(sc, m, record, it, np.asarray(m.out.lacc[:]))[0])
            losses.append(loss)
            if on_iteration is not None:
                on_iteration(it, loss)
        session.advance(1)  # the optimizer of the last iteration
        run_seconds = time.perf_counter() - t0

    tr, syn, snaps, wev = {}, {}, {}, {k: np.zeros(0) for k in ("step", "proj", "pre", "post", "w")}
    if record:
        tr, syn, snaps = _recorded(sc, m, initial)
        if record_weight_events:
            wev = _all_weight_events(sc, m, tr["z"], initial, snaps)
    return Result(
        scenario=sc.name,
        family=sc.family,
        backend=backend,
        losses=np.array(losses),
        traces=tr,
        synapse_traces=syn,
        weight_events=wev,
        weights=snaps,
        meta={"seconds": time.perf_counter() - t_start, "build_seconds": session.build_seconds,
              "run_seconds": run_seconds, "seconds_per_iteration": run_seconds / max(n_it, 1), "mode": mode,
              "compiled": bool(session.compiled), "record": record},
    )


def _losses(sc, m: EpropNetwork, record: bool, it: int | None = None, lacc: np.ndarray | None = None) -> np.ndarray:
    """Losses of all iterations (``it`` None, after the run) or of iteration ``it`` (``lacc``: its accumulators).

    Recording runs compute them from the recorded readout signal (:func:`compute_losses`, as every
    backend); losses-only runs from the accumulators (sequential sums: equal to ~1e-15 relative).
    """
    T, Bt = m.st.steps, m.st.batch
    if record:
        mon = m.monitors["out"]
        sl = slice(0, m.n_steps) if it is None else slice(it * Bt * T, (it + 1) * Bt * T)
        y = np.asarray(mon.sig[:, sl]).T
        return compute_losses(sc, y, sc.target[:, sl].T)
    acc = np.asarray(m.monitors["loss"].lacc).T[1 : sc.n_iterations + 1] if lacc is None else lacc[None, :]
    if sc.readout["loss"] == "cross_entropy":
        return -np.sum(acc, axis=1) / (Bt * m.st.window)
    return 0.5 * np.sum(acc, axis=1) / Bt


def _recorded(sc, m: EpropNetwork, initial: dict[str, np.ndarray]):
    """Per-step traces, synapse traces and weight snapshots from the monitors of a recording run."""
    c = recurrent_constants(sc)
    N, T = m.n_steps, m.st.steps
    tr: dict[str, np.ndarray] = {}
    mr, mo = m.monitors["rec"], m.monitors["out"]
    tr["v"] = np.asarray(mr.v)[:, :N].T + c.v_rest
    z = np.asarray(mr.z)[:, :N].T
    tr["z"] = z.astype(np.int8)
    tr["psi"] = np.asarray(mr.psi)[:, :N].T
    # a = z for rho = 0: non-adaptive neurons report 0, as the reference does
    tr["adaptation"] = np.where(c.adaptive, np.asarray(mr.a)[:, :N].T, 0.0)
    tr["v_th_adapt"] = np.asarray(mr.thr)[:, :N].T + c.v_rest
    tr["learning_signal"] = np.asarray(mr.L)[:, :N].T
    # the interval block at step kT computed the term of interval k - 1
    fr = np.asarray(mr.fr)[:, T : N + 1 : T].T
    tr["fr_reg"] = np.repeat(fr, T, axis=0)
    tr["readout_v"] = np.asarray(mo.y)[:, :N].T + sc.readout["v_rest"]
    tr["y"] = np.asarray(mo.sig)[:, :N].T
    tr["error"] = np.asarray(mo.err)[:, :N].T
    tr["target"] = sc.target[:, :N].T.copy()
    rs = sc.record_synapses
    syn = {k: np.zeros((N, len(rs))) for k in ("zbar", "e", "ebar")} if rs else {}
    for q, (proj, pre, post) in enumerate(rs):
        ms = m.monitors[f"syn_{proj}"]
        row = list(ms.record).index(m.synapse_index(proj, pre, post))
        if f"ztr_{proj}" in m.monitors:  # z-bar kept per presynaptic neuron
            mz = m.monitors[f"ztr_{proj}"]
            zb = np.asarray(mz.ztr)[list(mz.record).index(pre), :N]
        else:
            zb = np.asarray(ms.zbar)[row, :N]
        syn["zbar"][:, q] = zb
        # readout synapses: e_t = err_k,t zbar_t (a product of two recorded values), e-bar = z-bar
        syn["e"][:, q] = tr["error"][:, post] * zb if proj == "out" else np.asarray(ms.elig)[row, :N]
        syn["ebar"][:, q] = zb if proj == "out" else np.asarray(ms.ebar)[row, :N]
    snaps = {}
    n_seq = sc.n_sequences
    for key, proj, var in (("w_in", "in", "w"), ("w_rec", "rec", "w"), ("w_out", "out", "w"), ("w_fb", "out", "B")):
        mon = m.monitors.get(f"w_{proj}")
        if mon is None:  # no recurrent synapses: constant zero matrix
            snaps[key] = np.broadcast_to(initial[proj], (n_seq,) + initial[proj].shape).copy()
            continue
        vals = np.asarray(getattr(mon, var))[:, 1 : n_seq + 1]  # (synapse, sequence)
        dense = np.stack([m.dense(proj, vals[:, s]) for s in range(n_seq)])
        snaps[key] = dense.transpose(0, 2, 1) if var == "B" else dense
    return tr, syn, snaps


def _all_weight_events(sc, m: EpropNetwork, z: np.ndarray, initial, snaps) -> dict[str, np.ndarray]:
    """Weight events of all iterations: the weights in force are constant within an iteration."""
    events: dict[str, list[np.ndarray]] = {k: [] for k in ("step", "proj", "pre", "post", "w")}
    L = m.st.batch * m.st.steps
    for it in range(sc.n_iterations):
        if it == 0:
            w = initial
        else:
            s = it * m.st.batch - 1
            w = {"in": snaps["w_in"][s], "rec": snaps["w_rec"][s], "out": snaps["w_out"][s]}
        _weight_events(events, sc, it * L, L, m.st.steps, z[it * L : (it + 1) * L], w)
    wev = {k: (np.concatenate(v) if v else np.zeros(0)) for k, v in events.items()}
    return sort_weight_events(wev)


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
