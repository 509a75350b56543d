"""Family B (event-based e-prop, NEST ``eprop_iaf*``/``eprop_readout``/``eprop_synapse``) in float64 NumPy.

Follows docs/model.rst §3 and, where it is more precise, NEST 3.10's C++ (NEST wins): the
neuron updates of ``eprop_iaf``, ``eprop_iaf_adapt``, ``eprop_iaf_psc_delta`` and
``eprop_iaf_psc_delta_adapt``, the readout ``eprop_readout`` with its learning-window signal, and
the event-driven gradient of ``eprop_synapse`` (``compute_gradient`` of each target model), all in
NEST's order of floating-point operations.

Time bookkeeping
----------------
Aligned step ``n`` (see :mod:`eprop_plugins.scenario`) is NEST step ``n + 2`` of the recurrent
neurons and ``n + 3`` of the readouts (generator -> parrot -> neuron, one step each; rec -> readout
one step).  NEST's optimizer index ``idx_current_update`` counts NEST steps, so a recurrent-target
synapse integrating history step ``t`` calls the optimizer with ``t + 3`` and a readout synapse with
``t + 4`` (``optimize_each_step``); once per spike arriving at ``n`` it uses ``n + 1`` and ``n + 2``.
Before aligned step 0 the neurons run 2 (recurrent) and 3 (readout) silent steps without input
current (the ``nest-builtin`` backend switches ``I_e`` on just in time); they only matter through
``v_min`` clamping.

The synapse is simulated time-driven but operation for operation as NEST's event-driven code: the
history step ``t`` of every synapse whose presynaptic neuron has spiked is processed at aligned step
``t + 2``, just before the spikes arriving at ``t + 2`` are transmitted (NEST processes the steps
``[t_prev - 1, t_spike - 1)`` when the spike at ``t_spike`` passes, so a transmitted weight contains
gradient terms up to ``t_spike - 2``).  The per-synapse state is NEST's: ``z_previous_buffer`` /
``z_current_buffer``, z-bar, e-bar, e-bar-reg, epsilon, the summed gradient, the steps left before
the ISI cutoff and the decay steps owed after it (applied with ``pow`` at the next spike).

NEST 3.10 behaviour reproduced (docs/model.rst §3 and §6, and where the contract is silent or differs)
------------------------------------------------------------------------------------------------------
* ``eprop_iaf(_adapt)``: ``v = (P_i i_in + z_in) + alpha v``; psi on the pre-reset v; the reset
  subtracts ``V_th`` (not the adaptive threshold); v keeps integrating while refractory.
* ``eprop_iaf_psc_delta(_adapt)``: ``v = (P_i (i_in + I_e) + alpha v) + z_in`` only when not
  refractory (input arriving during refractoriness is dropped); the refractory counter is
  decremented *before* psi is computed; the spike test has no ``r == 0`` condition; hard reset to
  ``V_reset``.  The adaptive version updates ``a`` and the threshold only in non-refractory steps
  and clears the spike variable every step, so with ``t_ref > 0`` the adaptation is never raised
  (docs/model.rst §6) and psi uses the stale threshold during refractoriness.
* Firing-rate regulariser per step: ``f_av = kappa_reg f_av + (1 - kappa_reg) z / dt``,
  ``fr = c_reg (f_av - f_target dt)`` with ``f_target`` in spikes/ms.
* Readout: ``error = (v + E_L - target) * lambda`` with the learning-window signal lambda.
* Learning signal: ``L_j,t = sum_k B_jk error_k,t`` (the readouts in ascending order), written
  into the recurrent history two steps late, before the spikes of that step are delivered.
* The first history step of every window (``t_spike - 1``) is integrated with a zero trace, but in
  ``optimize_each_step`` mode it still calls the optimizer (Adam's step counter advances).
* ISI cutoff ``c`` steps (post neuron's ``isi_trace_cutoff``): after a spike at ``a`` only steps
  ``[a - 1, a - 1 + c)`` are integrated; later steps are owed as decay and applied with
  ``pow(alpha, k)`` when the next spike arrives.  With ``c = 1`` NEST's one-step spike buffer keeps
  the spike and feeds it into step ``a_next - 1`` of the next window (reproduced).
* ``optimize_each_step = False``: the summed gradient of a window goes to the optimizer once, when
  the next spike arrives (``idx = t_spike - 1``); for Adam this differs from per-step updates.
* Flush events (``flush_event_send_interval``) only split a window into two calls of
  ``compute_gradient`` with identical arithmetic (no decay and no optimizer call at a flush,
  gradient and cutoff counter carried over), so they change no number and are not simulated here.
* Batching (``batch_size`` > 1) follows NEST's index ``1 + idx // batch_size`` in NEST steps, so
  recurrent-target and readout synapses start their batches one step apart.
* Adam counts NEST time steps, not updates: the first optimizer call of a synapse catches up every
  step since the start of the simulation (zero gradient after the first), as does every call after a
  silent stretch.  Absolute time therefore matters: the same network shifted by one step learns
  differently (see :mod:`eprop_plugins.tasks.event`).
* Spike arrivals are summed in NEST's delivery order: inputs, then recurrent neurons, ascending.
* Propagators and the surrogate functions use C's ``exp`` and ``pow``, element-wise, as NEST's C++
  (:mod:`eprop_plugins.reference.common`; NumPy's SIMD versions differ in the last bit for a few
  per cent of arguments).

Where docs/model.rst §3 is silent or differs (NEST wins): the psc_delta spike test has no refractory
condition and psi sees the decremented counter; the optimizer is called (with a zero increment) at
the first step of each window; the 1-step cutoff buffer quirk; Adam's absolute-time catch-up.
"""

from __future__ import annotations

import math
import time
from typing import Callable

import numpy as np

from ..parameters import ParameterError, to_steps
from ..results import Result, WeightEventLog
from .common import (NO_CUTOFF, Optimizer, RecurrentConstants, allocate_synapse_traces, allocate_traces,
                     input_raster, iteration_loss, learning_signal, readout_constants, recurrent_constants)
from .synapses import SynapseSet, SynapseSnapshots, hidden_synapses, readout_synapses

__all__ = ["run_event", "RecurrentNeurons", "REC_NEST_OFFSET", "OUT_NEST_OFFSET"]

#: NEST step of the recurrent neurons at aligned step 0
REC_NEST_OFFSET = 2
#: NEST step of the readouts at aligned step 0
OUT_NEST_OFFSET = 3


class _PowCache:
    """``math.pow`` (C ``pow``, as NEST) of few distinct bases to few distinct integer exponents."""

    def __init__(self) -> None:
        self._cache: dict[tuple[float, int], float] = {}

    def __call__(self, base: np.ndarray, k: np.ndarray) -> np.ndarray:
        out = np.empty(base.shape)
        for idx, (b, e) in enumerate(zip(base.tolist(), k.tolist())):
            key = (b, e)
            val = self._cache.get(key)
            if val is None:
                val = self._cache[key] = math.pow(b, e)
            out[idx] = val
        return out


class _SynapseBank:
    """All e-prop synapses onto one kind of target (recurrent neurons or readouts), NEST state per synapse.

    Every per-synapse array is a vector over the synapses of ``syn`` (:mod:`.synapses`); ``alpha``
    etc. are the per-target constants gathered onto the synapses, ``opened`` is per presynaptic neuron.
    """

    def __init__(self, syn: SynapseSet, opt_params: dict, *, alpha: np.ndarray, cutoff: np.ndarray,
                 nest_offset: int, kappa: np.ndarray | None = None, kappa_reg: np.ndarray | None = None,
                 rho: np.ndarray | None = None, beta: np.ndarray | None = None) -> None:
        shape = (syn.size,)
        self.syn = syn
        self.w = syn.w0.copy()
        self.opt = Optimizer(opt_params, shape)
        self.each_step = opt_params["optimize_each_step"]
        self.nest_offset = nest_offset
        self.alpha = syn.per_post(alpha)
        self.cutoff = syn.per_post(cutoff)
        self.readout = kappa is None
        if not self.readout:
            self.kappa = syn.per_post(kappa)
            self.kappa_reg = syn.per_post(kappa_reg)
            self.one_minus_kappa_reg = syn.per_post(1.0 - kappa_reg)
            self.rho = syn.per_post(rho)
            self.beta = syn.per_post(beta)
        self.opened = np.zeros(syn.n_pre, dtype=bool)
        self.zbar = np.zeros(shape)
        self.ebar = np.zeros(shape)
        self.ebar_reg = np.zeros(shape)
        self.eps = np.zeros(shape)
        self.grad = np.zeros(shape)
        self.zpb = np.zeros(shape)
        self.zcb = np.zeros(shape)
        self.remaining = np.zeros(shape, dtype=np.int64)
        self.decay = np.zeros(shape, dtype=np.int64)
        self.pow = _PowCache()
        self.last_e = np.zeros(shape)
        self.integ = np.zeros(shape, dtype=bool)

    def integrate(self, t: int, psi: np.ndarray | None, L: np.ndarray | None, fr: np.ndarray | None,
                  err: np.ndarray | None) -> None:
        """Process history step ``t`` (aligned) of every synapse whose window covers it."""
        post = self.syn.post
        opened = self.opened[self.syn.pre]
        integ = opened & (self.remaining > 0)
        self.decay += opened & (self.remaining == 0)
        self.integ = integ
        if not integ.any():
            self.last_e = np.zeros_like(self.zbar)
            return
        z = self.zpb
        self.zpb = np.where(integ, self.zcb, self.zpb)
        self.zcb = np.where(integ, 0.0, self.zcb)
        zbar = self.alpha * self.zbar + z
        if self.readout:
            inc = err[post] * zbar
            e = inc
        else:
            e = psi[post] * (zbar - self.beta * self.eps)
            eps = self.rho * self.eps + e
            ebar = self.kappa * self.ebar + e
            ebar_reg = self.kappa_reg * self.ebar_reg + self.one_minus_kappa_reg * e
            inc = L[post] * ebar + fr[post] * ebar_reg
            np.copyto(self.eps, eps, where=integ)
            np.copyto(self.ebar, ebar, where=integ)
            np.copyto(self.ebar_reg, ebar_reg, where=integ)
        np.copyto(self.zbar, zbar, where=integ)
        self.last_e = np.where(integ, e, 0.0)
        self.remaining -= integ
        if self.each_step:
            self.w = self.opt.step(t + self.nest_offset + 1, inc, self.w, where=integ)
        else:
            np.add(self.grad, inc, out=self.grad, where=integ)

    def arrive(self, n: int, ev: np.ndarray) -> None:
        """Spikes of the presynaptic neurons ``ev`` (bool per pre) arrive at aligned step ``n``."""
        if not ev.any():
            return
        idx, _ = self.syn.of_pres(np.flatnonzero(ev))  # the synapses of the spiking neurons
        close = idx[self.opened[self.syn.pre[idx]]]
        due = close[self.decay[close] > 0]
        if due.size:
            k = self.decay[due]
            self.zbar[due] *= self.pow(self.alpha[due], k)
            if not self.readout:
                self.ebar[due] *= self.pow(self.kappa[due], k)
                self.ebar_reg[due] *= self.pow(self.kappa_reg[due], k)
                self.eps[due] *= self.pow(self.rho[due], k)
            self.decay[due] = 0
        if not self.each_step and close.size:
            where = np.zeros(self.syn.size, dtype=bool)
            where[close] = True
            self.w = self.opt.step(n + self.nest_offset - 1, self.grad, self.w, where=where)
        self.remaining[idx] = self.cutoff[idx]
        self.grad[idx] = 0.0
        self.zcb[idx] = 1.0
        self.opened |= ev

    def conceptual(self, q: int, t_integrated: bool) -> tuple[float, float, float, float]:
        """(zbar, e, ebar, ebar_reg) of synapse ``q`` after the step just processed, decays owed included."""
        if t_integrated or not self.opened[self.syn.pre[q]]:
            e = float(self.last_e[q])
            if self.readout:
                return float(self.zbar[q]), e, float(self.zbar[q]), 0.0
            return float(self.zbar[q]), e, float(self.ebar[q]), float(self.ebar_reg[q])
        k = int(self.decay[q])
        zb = self.zbar[q] * math.pow(self.alpha[q], k)
        if self.readout:
            return float(zb), 0.0, float(zb), 0.0
        return (float(zb), 0.0, float(self.ebar[q] * math.pow(self.kappa[q], k)),
                float(self.ebar_reg[q] * math.pow(self.kappa_reg[q], k)))


def _record_synapses(syn: dict[str, np.ndarray], t: int, banks: list[tuple[_SynapseBank, int]]) -> None:
    """Conceptual z-bar, e, e-bar and e-bar-reg of the recorded synapses (bank, position) after history step ``t``."""
    for q, (bank, k) in enumerate(banks):
        vals = bank.conceptual(k, bool(bank.integ[k]))
        syn["zbar"][t, q], syn["e"][t, q], syn["ebar"][t, q], syn["ebar_reg"][t, q] = vals


class RecurrentNeurons:
    """The state of all recurrent neurons and NEST's update of each model (one step per call).

    ``eprop_iaf`` / ``eprop_iaf_adapt`` and ``eprop_iaf_psc_delta(_adapt)`` are computed for every
    neuron and selected per neuron by its model flags (``psc_delta``, ``adaptive``), so that mixed
    populations run in one vectorised step.

    Attributes
    ----------
    v, r, z, a, thr : ndarray
        Membrane potential relative to rest, refractory steps left, spike variable of the last step
        (``S_.z_`` of the adaptive models), adaptation, adaptive threshold relative to rest.
    """

    def __init__(self, c: RecurrentConstants) -> None:
        n = c.alpha.shape[0]
        self.c = c
        self.v = np.zeros(n)
        self.r = np.zeros(n, dtype=np.int64)
        self.z = np.zeros(n)
        self.a = np.zeros(n)
        self.thr = c.v_th.copy()  # S_.v_th_adapt_ (relative)

    def step(self, z_in: np.ndarray, i_term: np.ndarray, i_psc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Advance one step; return ``(psi, spike)``.

        Parameters
        ----------
        z_in : ndarray
            Summed weights of the spikes arriving this step, mV.
        i_term : ndarray
            ``P_i I_e`` of the ``eprop_iaf`` models, mV.
        i_psc : ndarray
            ``I_e`` of the ``psc_delta`` models, pA (multiplied by ``P_i`` inside, NEST's order).
        """
        c = self.c
        v, r, z, a, thr = self.v, self.r, self.z, self.a, self.thr
        psc, adaptive = c.psc_delta, c.adaptive
        # eprop_iaf / eprop_iaf_adapt
        r_dec = np.where(r > 0, r - 1, r)
        v_iaf = np.maximum(i_term + z_in + c.alpha * v, c.v_min)
        a_iaf = c.rho * a + z
        # eprop_iaf_psc_delta(_adapt): integrate only when not refractory
        nonref = r == 0
        v_psc = np.maximum(c.p_i * i_psc + c.alpha * v + z_in, c.v_min)
        a_psc = np.where(nonref, a_iaf, a)
        v_new = np.where(psc, np.where(nonref, v_psc, v), v_iaf)
        a_new = np.where(adaptive, np.where(psc, a_psc, a_iaf), 0.0)
        thr_new = np.where(adaptive, np.where(psc & ~nonref, thr, c.v_th + c.beta * a_new), c.v_th)
        psi = c.psi(r_dec, v_new - thr_new)
        spike = np.where(psc, v_new >= thr_new, (v_new >= thr_new) & (r_dec == 0))
        z_new = spike.astype(float)
        v_new = np.where(spike, np.where(psc, c.v_reset, v_new - c.v_th * z_new), v_new)
        self.r = np.where(spike, c.n_ref, r_dec)
        self.v, self.z, self.a, self.thr = v_new, z_new, a_new, thr_new
        return psi, spike


def run_event(
    scenario,
    *,
    record_weight_events: bool = True,
    on_iteration: Callable[[int, float], None] | None = None,
) -> Result:
    """Simulate a validated event-family scenario.

    Parameters
    ----------
    scenario : Scenario
        Validated scenario with ``network.family == 'event'``.
    record_weight_events : bool
        Also produce one weight event per transmitted spike.
    on_iteration : callable, optional
        ``on_iteration(index, loss)`` after each iteration.

    Returns
    -------
    Result
        Traces in aligned time (``fr_reg`` per step), synapse traces of ``record_synapses``
        (conceptual per-step values: owed decays applied, ``e = 0`` after the cutoff), weight
        events, weight snapshots at the end of each sequence and losses.
    """
    t0 = time.perf_counter()
    sc = scenario
    c = recurrent_constants(sc)
    ro = sc.readout
    dt = sc.dt
    T = sc.steps_per_sequence
    n_in, n_rec, n_out = sc.n_in, sc.n_rec, sc.n_out
    N = sc.n_steps

    # propagators use C's exp and NEST's units (pF, pA), see reference.common
    p_i, i_e = c.p_i, c.i_e
    kappa_out, p_i_out, i_e_out = readout_constants(ro, dt)
    v_min_out = -np.inf if ro["v_min"] is None else ro["v_min"] - ro["v_rest"]
    cutoff_out = NO_CUTOFF if ro["isi_trace_cutoff"] is None else \
        to_steps(ro["isi_trace_cutoff"], dt, "readout.isi_trace_cutoff", allow_zero=False)
    lam = np.ones(N) if sc.learning_window_signal is None else np.asarray(sc.learning_window_signal, float)
    feedback = sc.network["feedback"]

    # one entry per synapse that exists, dense and sparse projections alike (see reference.synapses)
    hidden, readout = hidden_synapses(sc), readout_synapses(sc)
    hid = _SynapseBank(hidden, sc.optimizer, alpha=c.alpha, cutoff=c.cutoff, nest_offset=REC_NEST_OFFSET,
                       kappa=c.kappa, kappa_reg=c.kappa_reg, rho=c.rho, beta=c.beta)
    out = _SynapseBank(readout, sc.optimizer,
                       alpha=np.full(n_out, kappa_out), cutoff=np.full(n_out, cutoff_out, dtype=np.int64),
                       nest_offset=OUT_NEST_OFFSET)
    B = sc.effective_feedback()
    x_all = input_raster(sc)

    # ------------------------------------------------------------------ state and pre-roll
    neurons = RecurrentNeurons(c)
    f_av = np.zeros(n_rec)
    y = np.zeros(n_out)

    zeros_rec = np.zeros(n_rec)
    for _ in range(REC_NEST_OFFSET):
        _, spk = neurons.step(zeros_rec, zeros_rec, zeros_rec)
        if spk.any():
            raise ParameterError("populations: v_min >= v_thresh makes a neuron fire before any input; "
                                 "allowed range is v_min < v_thresh")
    for _ in range(OUT_NEST_OFFSET):
        y = np.maximum(0.0 + kappa_out * y, v_min_out)

    # ------------------------------------------------------------------ recordings
    tr = allocate_traces(N, n_rec, n_out)
    rs = sc.record_synapses
    syn = allocate_synapse_traces(N, len(rs), ("zbar", "e", "ebar", "ebar_reg"))
    snap = SynapseSnapshots(sc.n_sequences, [hidden, readout], n_rec, n_out)
    recorded = [(out, readout.index(post, pre)) if proj == "out" else
                (hid, hidden.index(post, pre if proj == "in" else n_in + pre)) for proj, pre, post in rs]
    events = WeightEventLog()
    # history rows: index t + 1 holds aligned step t (row 0 = pre-roll step -1, all zero: its traces are 0)
    psi_h = np.zeros((N + 1, n_rec))
    fr_h = np.zeros((N + 1, n_rec))
    L_h = np.zeros((N + 1, n_rec))
    err_h = np.zeros((N + 1, n_out))

    z_prev = np.zeros(n_rec, dtype=bool)
    losses = []
    for n in range(N + 2):
        # -------------------------------------------- synapses: history step n - 2, then arrivals at n
        t = n - 2
        if t >= -1:
            hid.integrate(t, psi_h[t + 1], L_h[t + 1], fr_h[t + 1], None)
            out.integrate(t, None, None, None, err_h[t + 1])
            if rs and t >= 0:
                _record_synapses(syn, t, recorded)
        if n >= N:
            continue
        ev = np.concatenate([x_all[n], z_prev])
        hid.arrive(n, ev)
        if record_weight_events:
            hidden.add_events(events, np.full(int(ev.sum()), n), np.flatnonzero(ev), hid.w)
        # -------------------------------------------- recurrent neurons
        z_in = hidden.ordered_sum(hid.w, ev)
        psi, spike = neurons.step(z_in, p_i * i_e, i_e)
        f_av = c.kappa_reg * f_av + (1.0 - c.kappa_reg) * neurons.z / dt
        fr = c.c_reg * (f_av - c.f_target * dt)
        psi_h[n + 1], fr_h[n + 1] = psi, fr
        # -------------------------------------------- readouts: recurrent spikes of step n arrive now
        out.arrive(n, spike)
        if record_weight_events:
            readout.add_events(events, np.full(int(spike.sum()), n), np.flatnonzero(spike), out.w)
        y = np.maximum(p_i_out * i_e_out + readout.ordered_sum(out.w, spike) + kappa_out * y, v_min_out)
        ysig = y + ro["v_rest"]
        err = (ysig - sc.target[:, n]) * lam[n]
        err_h[n + 1] = err
        # learning signal of history step n, summed over the readouts in NEST's delivery order
        L_h[n + 1] = learning_signal(B, err)
        z_prev = spike
        if feedback == "symmetric":
            B = readout.dense(out.w).T.copy()

        tr["v"][n] = neurons.v + c.v_rest
        tr["z"][n] = spike
        tr["psi"][n] = psi
        tr["adaptation"][n] = neurons.a
        tr["v_th_adapt"][n] = neurons.thr + c.v_rest
        tr["fr_reg"][n] = fr
        tr["readout_v"][n] = ysig
        tr["y"][n] = ysig
        tr["target"][n] = sc.target[:, n]
        tr["error"][n] = err

        if (n + 1) % T == 0:
            s = n // T
            snap.record(s, [(hidden, hid.w), (readout, out.w)], B)
            loss = iteration_loss(sc, tr, s)
            if loss is not None:
                losses.append(loss)
                if on_iteration is not None:
                    on_iteration(len(losses) - 1, loss)
    tr["learning_signal"] = L_h[1:]

    return Result(
        scenario=sc.name,
        family="event",
        backend="reference",
        losses=np.array(losses),
        traces=tr,
        synapse_traces=syn,
        weight_events=events.arrays(),
        weights=snap.arrays,
        weight_connections=snap.connections,
        meta={"seconds": time.perf_counter() - t0},
    )

