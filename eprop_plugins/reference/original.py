"""Family A ("original", NEST ``*_bsshslm_2020``, TensorFlow-equivalent) e-prop in float64 NumPy.

Follows docs/model.rst §2 step by step, in aligned time: each sequence is one update interval,
neurons are reset at its start, the gradient of every synapse is integrated over the interval and
applied once per interval (batched over ``batch_size`` consecutive intervals).  One interval is
three steps: :func:`simulate_interval` (neurons and readouts, recorded), the weight events of the
spikes it transmitted, and :func:`interval_gradients` (eligibility traces and gradients); then the
optimizer updates the weights.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..results import Result, WeightEventLog
from .common import (Optimizer, RecurrentConstants, allocate_synapse_traces, allocate_traces, c_exp, input_raster,
                     iteration_loss, learning_signal, readout_constants, recurrent_constants)
from .synapses import SynapseSet, SynapseSnapshots, hidden_synapses, readout_synapses

__all__ = ["run_original", "ReadoutConstants", "Interval", "simulate_interval", "add_weight_events",
           "interval_gradients"]


@dataclass(frozen=True)
class ReadoutConstants:
    """The readouts' constants (NEST's units: mV per pA, pA) and the eligibility filter of the interval."""

    kappa_out: float  # exp(-dt/tau_m) of the readout
    p_i_out: float
    i_e_out: float
    zeta_out: float  # spike-arrival factor (1, or 1 - kappa_out without regular arrival)
    v_min_out: float  # relative to v_rest (-inf: none)
    v_rest: float
    kappa: float  # exp(-dt/tau_m_readout): low-pass filter of the recurrent eligibility traces
    cross_entropy: bool

    @classmethod
    def of(cls, scenario) -> "ReadoutConstants":
        ro, dt = scenario.readout, scenario.dt
        kappa_out, p_i_out, i_e_out = readout_constants(ro, dt)
        return cls(
            kappa_out=kappa_out, p_i_out=p_i_out, i_e_out=i_e_out,
            zeta_out=1.0 if ro["regular_spike_arrival"] else 1.0 - kappa_out,
            v_min_out=-np.inf if ro["v_min"] is None else ro["v_min"] - ro["v_rest"],
            v_rest=ro["v_rest"],
            kappa=c_exp(-dt / (scenario.synapse["tau_m_readout"] or ro["tau_m"])),
            cross_entropy=ro["loss"] == "cross_entropy",
        )

    def signal(self, y: np.ndarray) -> np.ndarray:
        """The readout signal: the absolute potential, or the softmax of it (cross-entropy).

        The softmax normaliser of readout ``k`` adds the other readouts in ascending order, then
        ``u_k`` (NEST's order of operations).
        """
        if not self.cross_entropy:
            return y + self.v_rest
        u = c_exp(y + self.v_rest)
        n_out = u.shape[0]
        norm = np.empty(n_out)
        for k in range(n_out):
            acc = 0.0
            for q in range(n_out):
                if q != k:
                    acc += u[q]
            norm[k] = acc + u[k]
        return u / norm


@dataclass
class Interval:
    """What the neurons did in one update interval (arrays over its ``T`` steps)."""

    arrivals: np.ndarray  # (T, n_in + n_rec) bool: presynaptic arrivals at the recurrent neurons
    z: np.ndarray  # (T, n_rec) recurrent spikes
    psi: np.ndarray  # (T, n_rec) surrogate gradients
    err: np.ndarray  # (T, n_out) errors (0 outside the learning window)
    n_spikes: np.ndarray  # (n_rec,) spikes per neuron


def simulate_interval(sc, c: RecurrentConstants, ro: ReadoutConstants, n0: int, hidden: SynapseSet,
                      w_hidden: np.ndarray, readout: SynapseSet, w_out: np.ndarray, B: np.ndarray, x_all: np.ndarray,
                      tr: dict[str, np.ndarray]) -> Interval:
    """Neurons and readouts over the interval starting at aligned step ``n0`` (state reset at its start).

    ``w_hidden`` and ``w_out`` are the weights of the synapses of ``hidden`` and ``readout``.  Writes
    the per-step traces of the interval into ``tr`` (all but ``fr_reg``).
    """
    n_in, n_rec, n_out = sc.n_in, sc.n_rec, sc.n_out
    T, T_L = sc.steps_per_sequence, sc.learning_window_steps()
    v = np.zeros(n_rec)
    r = np.zeros(n_rec, dtype=np.int64)
    z = np.zeros(n_rec)
    a = np.zeros(n_rec)
    y = np.zeros(n_out)
    iv = Interval(arrivals=np.zeros((T, n_in + n_rec), dtype=bool), z=np.zeros((T, n_rec)),
                  psi=np.zeros((T, n_rec)), err=np.zeros((T, n_out)), n_spikes=np.zeros(n_rec))
    for t in range(T):
        n = n0 + t
        iv.arrivals[t, :n_in] = x_all[n]
        iv.arrivals[t, n_in:] = z.astype(bool)  # spikes of step t-1 (reset to none at t = 0)
        r = np.where(r > 0, r - 1, r)
        syn_in = hidden.ordered_sum(w_hidden, iv.arrivals[t])
        v = (c.p_i * c.i_e + c.zeta * syn_in) + c.alpha * v
        v = v - c.v_th * z
        v = np.maximum(v, c.v_min)
        a = c.rho * a + z
        thr = c.v_th + c.beta * a
        psi = c.psi(r, v - thr)
        z = ((v >= thr) & (r == 0)).astype(float)
        r = np.where(z > 0, c.n_ref, r)
        iv.n_spikes += z
        # readout: recurrent spikes of this step arrive now
        syn_out = readout.ordered_sum(w_out, z)
        y = (ro.p_i_out * ro.i_e_out + ro.zeta_out * syn_out) + ro.kappa_out * y
        y = np.maximum(y, ro.v_min_out)
        ysig = ro.signal(y)
        tgt = sc.target[:, n]
        err = ysig - tgt if t >= T - T_L else np.zeros(n_out)
        iv.z[t], iv.psi[t], iv.err[t] = z, psi, err
        tr["v"][n] = v + c.v_rest
        tr["z"][n] = z
        tr["psi"][n] = psi
        tr["adaptation"][n] = np.where(c.adaptive, a, 0.0)  # a = z for rho = 0: report 0 (no adaptation)
        tr["v_th_adapt"][n] = thr + c.v_rest
        tr["learning_signal"][n] = learning_signal(B, err)
        tr["readout_v"][n] = y + ro.v_rest
        tr["y"][n] = ysig
        tr["target"][n] = tgt
        tr["error"][n] = err
    return iv


def add_weight_events(events: WeightEventLog, n0: int, iv: Interval, w_in: np.ndarray, w_rec: np.ndarray,
                      w_out: np.ndarray, masks: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None) -> None:
    """One event per spike transmitted in the interval, with the weights in force during it (``[post, pre]`` arrays).

    For callers that hold dense weight matrices (the reference itself uses
    :meth:`~eprop_plugins.reference.synapses.SynapseSet.add_events`).  ``masks`` (``[post, pre]``
    bool of ``w_in``, ``w_rec``, ``w_out``) leaves out the pairs that are not synapses (default:
    every pair but the ``w_rec`` diagonal).
    """
    n_rec, n_in = w_in.shape
    n_out = w_out.shape[0]
    tt, pre = np.nonzero(iv.arrivals)
    for proj, sel, pre_idx, mat in (
        (0, pre < n_in, pre, w_in),
        (1, pre >= n_in, pre - n_in, w_rec),
    ):
        t_sel, p_sel = tt[sel], pre_idx[sel]
        post = np.tile(np.arange(n_rec), t_sel.size)
        rep_t = np.repeat(t_sel, n_rec)
        rep_p = np.repeat(p_sel, n_rec)
        if masks is not None:
            keep = masks[proj][post, rep_p]
        else:
            keep = (rep_p != post) if proj == 1 else np.ones(post.size, bool)
        events.add(n0 + rep_t[keep], proj, rep_p[keep], post[keep], mat[post[keep], rep_p[keep]])
    to, jo = np.nonzero(iv.z)
    post = np.tile(np.arange(n_out), to.size)
    pre_out = np.repeat(jo, n_out)
    rep_t = np.repeat(to, n_out)
    if masks is not None:
        keep = masks[2][post, pre_out]
        post, pre_out, rep_t = post[keep], pre_out[keep], rep_t[keep]
    events.add(n0 + rep_t, 2, pre_out, post, w_out[post, pre_out])


def interval_gradients(sc, c: RecurrentConstants, ro: ReadoutConstants, n0: int, iv: Interval, L_int: np.ndarray,
                       fr: np.ndarray, early: np.ndarray, syn: dict[str, np.ndarray], hidden: SynapseSet,
                       readout: SynapseSet) -> tuple[np.ndarray, np.ndarray]:
    """Eligibility traces and the summed gradients of the interval at ``n0``; records ``syn``.

    Parameters
    ----------
    L_int : ndarray
        ``(T, n_rec)`` learning signals of the interval.
    fr : ndarray
        ``(n_rec,)`` firing-rate regularisation term of the interval.
    early : ndarray of bool
        ``(n_in + n_rec,)`` presynaptic neurons whose next spike arrives at position 1 of the next
        interval: they integrate ``L = 0`` in the last step (see :func:`run_original`).
    hidden, readout : SynapseSet
        The synapses (one entry of each trace per synapse).

    Returns
    -------
    grad, grad_out : ndarray
        Per synapse of ``hidden`` and of ``readout``, averaged over the learning window if the
        synapses average their gradients.
    """
    T, T_L = sc.steps_per_sequence, sc.learning_window_steps()
    rs = sc.record_synapses
    kappa, kappa_out, zeta_out = ro.kappa, ro.kappa_out, ro.zeta_out
    post, pre = hidden.post, hidden.pre
    zbar = np.zeros(hidden.size)
    eps = np.zeros_like(zbar)
    ebar = np.zeros_like(zbar)
    grad = np.zeros_like(zbar)
    sum_e = np.zeros_like(zbar)
    zbar_out = np.zeros(readout.size)
    grad_out = np.zeros(readout.size)
    alpha_c, zeta_c = c.alpha[post], c.zeta[post]
    rho_c, beta_c = c.rho[post], c.beta[post]
    early_s = early[pre]
    rec_idx = _record_index(rs, sc.n_in, hidden, readout)
    for t in range(T):
        s_t = iv.arrivals[t].astype(float)[pre]
        zbar = alpha_c * zbar + zeta_c * s_t
        e = iv.psi[t][post] * (zbar - beta_c * eps)
        eps = rho_c * eps + e
        ebar = kappa * ebar + (1.0 - kappa) * e
        if t == T - 1 and early.any():
            grad += np.where(early_s, 0.0, L_int[t][post]) * ebar
        else:
            grad += L_int[t][post] * ebar
        sum_e += e
        zbar_out = kappa_out * zbar_out + zeta_out * iv.z[t][readout.pre]
        grad_out += iv.err[t][readout.post] * zbar_out
        for q, (proj, _, post_q) in enumerate(rs):
            k = rec_idx[q]
            if proj == "out":
                zb = zbar_out[k]
                syn["zbar"][n0 + t, q] = zb
                syn["e"][n0 + t, q] = iv.err[t][post_q] * zb
                syn["ebar"][n0 + t, q] = zb
            else:
                syn["zbar"][n0 + t, q] = zbar[k]
                syn["e"][n0 + t, q] = e[k]
                syn["ebar"][n0 + t, q] = ebar[k]
    grad += fr[post] * sum_e
    if sc.synapse["average_gradient"]:
        grad /= T_L
        grad_out /= T_L
    return grad, grad_out


def run_original(
    scenario,
    *,
    record_weight_events: bool = True,
    on_iteration: Callable[[int, float], None] | None = None,
) -> Result:
    """Simulate a validated original-family scenario.

    Parameters
    ----------
    scenario : Scenario
        Validated (``Scenario.validated()``) scenario with ``network.family == 'original'``.
    record_weight_events : bool
        Also produce one weight event per transmitted spike (memory grows with spike count).
    on_iteration : callable, optional
        Called as ``on_iteration(index, loss)`` after each iteration.

    Returns
    -------
    Result
    """
    t0 = time.perf_counter()
    sc = scenario
    c = recurrent_constants(sc)
    ro = ReadoutConstants.of(sc)
    T = sc.steps_per_sequence
    n_in, n_rec, n_out = sc.n_in, sc.n_rec, sc.n_out
    N = sc.n_steps

    # one vector entry per synapse that exists (inputs first, then the recurrent neurons: NEST's
    # delivery order), dense and sparse projections alike (see reference.synapses)
    hidden, readout = hidden_synapses(sc), readout_synapses(sc)
    w_hidden, w_out = hidden.w0.copy(), readout.w0.copy()
    B = sc.effective_feedback()
    opt_hidden = Optimizer(sc.optimizer, (hidden.size,))
    opt_out = Optimizer(sc.optimizer, (readout.size,))
    x_all = input_raster(sc)

    tr = allocate_traces(N, n_rec, n_out)
    syn = allocate_synapse_traces(N, len(sc.record_synapses), ("zbar", "e", "ebar"))
    weights = SynapseSnapshots(sc.n_sequences, [hidden, readout], n_rec, n_out)
    events = WeightEventLog()
    losses = []
    for s in range(sc.n_sequences):
        n0 = s * T
        iv = simulate_interval(sc, c, ro, n0, hidden, w_hidden, readout, w_out, B, x_all, tr)
        fr = c.c_reg * (iv.n_spikes / T - c.f_target * sc.dt) / T
        tr["fr_reg"][n0 : n0 + T] = fr
        if record_weight_events:
            tt, pre = np.nonzero(iv.arrivals)
            hidden.add_events(events, n0 + tt, pre, w_hidden)
            to, jo = np.nonzero(iv.z)
            readout.add_events(events, n0 + to, jo, w_out)
        # NEST computes an interval's gradient at the synapse's next presynaptic spike; one arriving at
        # position 1 of the next interval comes before the learning signal of this interval's last step
        # has reached the neuron's history, so that synapse integrates L = 0 there (NEST 3.10 behaviour).
        # Recurrent presynaptic spikes can only arrive there after a spike at position 0 (strong i_offset):
        # not modelled.
        early = np.zeros(n_in + n_rec, dtype=bool)
        if n0 + T + 1 < N:
            early[:n_in] = x_all[n0 + T + 1]
        grad, grad_out = interval_gradients(sc, c, ro, n0, iv, tr["learning_signal"][n0 : n0 + T], fr, early, syn,
                                            hidden, readout)

        # optimizer (idx = next interval)
        w_hidden = opt_hidden.step(s + 1, grad, w_hidden)
        w_out = opt_out.step(s + 1, grad_out, w_out)
        if sc.network["feedback"] == "symmetric":
            B = readout.dense(w_out).T.copy()
        weights.record(s, [(hidden, w_hidden), (readout, w_out)], B)
        loss = iteration_loss(sc, tr, s)
        if loss is not None:
            losses.append(loss)
            if on_iteration is not None:
                on_iteration(len(losses) - 1, loss)

    return Result(
        scenario=sc.name,
        family="original",
        backend="reference",
        losses=np.array(losses),
        traces=tr,
        synapse_traces=syn,
        weight_events=events.arrays(),
        weights=weights.arrays,
        weight_connections=weights.connections,
        meta={"seconds": time.perf_counter() - t0},
    )


def _record_index(rs, n_in: int, hidden: SynapseSet, readout: SynapseSet) -> list[int]:
    """Position of each recorded synapse in its synapse set (inputs then recurrent on the hidden axis)."""
    return [readout.index(post, pre) if proj == "out" else hidden.index(post, pre if proj == "in" else n_in + pre)
            for proj, pre, post in rs]
