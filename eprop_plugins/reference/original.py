"""Family A ("original", NEST ``*_bsshslm_2020``, TensorFlow-equivalent) e-prop in float64 NumPy.

Follows docs/model.rst §2 step by step, in aligned time: each sequence is one update interval,
neurons are reset at its start, the gradient of every synapse is integrated over the interval and
applied once per interval (batched over ``batch_size`` consecutive intervals).
"""

from __future__ import annotations

import time
from typing import Callable

import numpy as np

from ..results import Result, WeightEventLog, compute_losses
from .common import (Optimizer, WeightSnapshots, allocate_synapse_traces, allocate_traces, c_exp, input_raster,
                     ordered_sum, readout_constants, recurrent_constants)

__all__ = ["run_original"]


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
    ro = sc.readout
    dt = sc.dt
    T = sc.steps_per_sequence
    T_L = sc.learning_window_steps()
    n_in, n_rec, n_out = sc.n_in, sc.n_rec, sc.n_out
    N = sc.n_steps

    kappa_out, p_i_out, i_e_out = readout_constants(ro, dt)
    zeta_out = 1.0 if ro["regular_spike_arrival"] else 1.0 - kappa_out
    v_min_out = -np.inf if ro["v_min"] is None else ro["v_min"] - ro["v_rest"]
    tau_kappa = sc.synapse["tau_m_readout"] or ro["tau_m"]
    kappa = c_exp(-dt / tau_kappa)
    cross_entropy = ro["loss"] == "cross_entropy"
    average = sc.synapse["average_gradient"]
    feedback = sc.network["feedback"]

    # [post, pre] with the inputs first, then the recurrent neurons: NEST's delivery order
    w_hidden = np.hstack([sc.w_in, sc.w_rec])
    w_in, w_rec = w_hidden[:, :n_in], w_hidden[:, n_in:]
    w_out = sc.w_out.copy()
    B = sc.effective_feedback()
    rec_mask = ~np.eye(n_rec, dtype=bool)
    opt_hidden = Optimizer(sc.optimizer, (n_rec, n_in + n_rec), np.hstack([np.ones((n_rec, n_in), bool), rec_mask]))
    opt_out = Optimizer(sc.optimizer, (n_out, n_rec))

    x_all = input_raster(sc)

    # recorded traces
    tr = allocate_traces(N, n_rec, n_out)
    rs = sc.record_synapses
    syn = allocate_synapse_traces(N, len(rs), ("zbar", "e", "ebar"))
    weights = WeightSnapshots(sc.n_sequences, n_in, n_rec, n_out)
    events = WeightEventLog()

    losses = []
    for s in range(sc.n_sequences):
        n0 = s * T
        # ---------------------------------------------------------------- neurons, one interval
        v = np.zeros(n_rec)
        r = np.zeros(n_rec, dtype=np.int64)
        z = np.zeros(n_rec)
        a = np.zeros(n_rec)
        y = np.zeros(n_out)
        n_spikes = np.zeros(n_rec)
        arrivals = np.zeros((T, n_in + n_rec), dtype=bool)  # presynaptic arrivals at recurrent neurons
        z_int = np.zeros((T, n_rec))
        psi_int = np.zeros((T, n_rec))
        err_int = np.zeros((T, n_out))
        for t in range(T):
            n = n0 + t
            arrivals[t, :n_in] = x_all[n]
            arrivals[t, n_in:] = z.astype(bool)  # spikes of step t-1 (reset to none at t = 0)
            r = np.where(r > 0, r - 1, r)
            syn_in = ordered_sum(w_hidden, arrivals[t])
            v = (c.p_i * c.i_e + c.zeta * syn_in) + c.alpha * v
            v = v - c.v_th * z
            v = np.maximum(v, c.v_min)
            a = c.rho * a + z
            thr = c.v_th + c.beta * a
            psi = c.psi(r, v - thr)
            z = ((v >= thr) & (r == 0)).astype(float)
            r = np.where(z > 0, c.n_ref, r)
            n_spikes += z
            # readout: recurrent spikes of this step arrive now
            syn_out = ordered_sum(w_out, z)
            y = (p_i_out * i_e_out + zeta_out * syn_out) + kappa_out * y
            y = np.maximum(y, v_min_out)
            if cross_entropy:
                u = c_exp(y + ro["v_rest"])
                norm = np.empty(n_out)
                for k in range(n_out):
                    acc = 0.0
                    for q in range(n_out):
                        if q != k:
                            acc += u[q]
                    norm[k] = acc + u[k]
                ysig = u / norm
            else:
                ysig = y + ro["v_rest"]
            tgt = sc.target[:, n]
            err = ysig - tgt if t >= T - T_L else np.zeros(n_out)
            L = np.zeros(n_rec)
            for k in range(n_out):
                L += B[:, k] * err[k]
            z_int[t] = z
            psi_int[t] = psi
            err_int[t] = err
            tr["v"][n] = v + c.v_rest
            tr["z"][n] = z
            tr["psi"][n] = psi
            tr["adaptation"][n] = np.where(c.adaptive, a, 0.0)  # a = z for rho = 0: report 0 (no adaptation)
            tr["v_th_adapt"][n] = thr + c.v_rest
            tr["learning_signal"][n] = L
            tr["readout_v"][n] = y + ro["v_rest"]
            tr["y"][n] = ysig
            tr["target"][n] = tgt
            tr["error"][n] = err
        fr = c.c_reg * (n_spikes / T - c.f_target * dt) / T
        tr["fr_reg"][n0 : n0 + T] = fr
        L_int = tr["learning_signal"][n0 : n0 + T]

        # ---------------------------------------------------------------- weight events (weights in force now)
        if record_weight_events:
            tt, pre = np.nonzero(arrivals)
            for proj, sel, pre_idx, mat in (
                (0, pre < n_in, pre, w_in),
                (1, pre >= n_in, pre - n_in, w_rec),
            ):
                t_sel, p_sel = tt[sel], pre_idx[sel]
                post = np.tile(np.arange(n_rec), t_sel.size)
                rep_t = np.repeat(t_sel, n_rec)
                rep_p = np.repeat(p_sel, n_rec)
                keep = (rep_p != post) if proj == 1 else np.ones(post.size, bool)
                events.add(n0 + rep_t[keep], proj, rep_p[keep], post[keep], mat[post[keep], rep_p[keep]])
            to, jo = np.nonzero(z_int)
            post = np.tile(np.arange(n_out), to.size)
            events.add(n0 + np.repeat(to, n_out), 2, np.repeat(jo, n_out), post, w_out[post, np.repeat(jo, n_out)])

        # ---------------------------------------------------------------- gradients over the interval
        zbar = np.zeros((n_rec, n_in + n_rec))
        eps = np.zeros_like(zbar)
        ebar = np.zeros_like(zbar)
        grad = np.zeros_like(zbar)
        sum_e = np.zeros_like(zbar)
        zbar_out = np.zeros((n_out, n_rec))
        grad_out = np.zeros((n_out, n_rec))
        alpha_c, zeta_c = c.alpha[:, None], c.zeta[:, None]
        rho_c, beta_c = c.rho[:, None], c.beta[:, None]
        rec_idx = _record_index(rs, n_in)
        # NEST computes an interval's gradient at the synapse's next presynaptic spike; one arriving at
        # position 1 of the next interval comes before the learning signal of this interval's last step
        # has reached the neuron's history, so that synapse integrates L = 0 there (NEST 3.10 behaviour).
        # Recurrent presynaptic spikes can only arrive there after a spike at position 0 (strong i_offset):
        # not modelled.
        early = np.zeros(n_in + n_rec, dtype=bool)
        if n0 + T + 1 < N:
            early[:n_in] = x_all[n0 + T + 1]
        for t in range(T):
            s_t = arrivals[t].astype(float)[None, :]
            zbar = alpha_c * zbar + zeta_c * s_t
            e = psi_int[t][:, None] * (zbar - beta_c * eps)
            eps = rho_c * eps + e
            ebar = kappa * ebar + (1.0 - kappa) * e
            if t == T - 1 and early.any():
                grad += np.where(early[None, :], 0.0, L_int[t][:, None]) * ebar
            else:
                grad += L_int[t][:, None] * ebar
            sum_e += e
            zbar_out = kappa_out * zbar_out + zeta_out * z_int[t][None, :]
            grad_out += err_int[t][:, None] * zbar_out
            for q, (proj, pre, post) in enumerate(rs):
                if proj == "out":
                    zb = zbar_out[post, pre]
                    syn["zbar"][n0 + t, q] = zb
                    syn["e"][n0 + t, q] = err_int[t][post] * zb
                    syn["ebar"][n0 + t, q] = zb
                else:
                    col = rec_idx[q]
                    syn["zbar"][n0 + t, q] = zbar[post, col]
                    syn["e"][n0 + t, q] = e[post, col]
                    syn["ebar"][n0 + t, q] = ebar[post, col]
        grad += fr[:, None] * sum_e
        if average:
            grad /= T_L
            grad_out /= T_L

        # ---------------------------------------------------------------- optimizer (idx = next interval)
        w_hidden = opt_hidden.step(s + 1, grad, w_hidden)
        w_in, w_rec = w_hidden[:, :n_in], w_hidden[:, n_in:]
        w_out = opt_out.step(s + 1, grad_out, w_out)
        if feedback == "symmetric":
            B = w_out.T.copy()
        weights.record(s, w_in, w_rec, w_out, B)

        it_len = sc.iteration_sequences
        if (s + 1) % it_len == 0:
            it = (s + 1) // it_len - 1
            sl = slice((s + 1 - it_len) * T, (s + 1) * T)
            loss = float(compute_losses(sc, tr["y"][sl], tr["target"][sl], sl.start)[0])
            losses.append(loss)
            if on_iteration is not None:
                on_iteration(it, loss)

    losses_arr = np.array(losses)
    return Result(
        scenario=sc.name,
        family="original",
        backend="reference",
        losses=losses_arr,
        traces=tr,
        synapse_traces=syn,
        weight_events=events.arrays(),
        weights=weights.arrays,
        meta={"seconds": time.perf_counter() - t0},
    )


def _record_index(rs, n_in: int) -> list[int]:
    """Column of each recorded in/rec synapse in the concatenated [inputs, recurrent] presynaptic axis."""
    return [pre if proj == "in" else n_in + pre for proj, pre, _ in rs]

