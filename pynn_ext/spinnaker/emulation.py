"""NumPy emulation of the SpiNNaker e-prop kernel (original family), bit for bit.

The same steps in the same order as ``pynn_ext/spinnaker/c/eprop_host_original.c`` and the kernel
functions it calls, on integer arrays with the operations of :mod:`pynn_ext.spinnaker.fixed_point`,
vectorised over neurons and synapses.  Fixed-point sums of exact integers do not depend on their
order, so only the saturating additions that the C code makes one after the other (learning
signal, softmax normaliser) are made one after the other here.  :func:`run_kernel` returns the
same raw recordings as :func:`pynn_ext.spinnaker.host.run_kernel`.
"""

from __future__ import annotations

import math

import numpy as np

from . import fixed_point as fx
from .kernel_params import KernelNetwork, allocate_raw

__all__ = ["run_kernel"]


def _psi(code: np.ndarray, d: np.ndarray, h: np.ndarray, inv_w: np.ndarray) -> np.ndarray:
    """``neuron_model_eprop_psi`` for every neuron (docs/model.rst §1)."""
    q = fx.mul(fx.sat(np.abs(d)), inv_w)  # fx_abs saturates |FX_MIN| to FX_MAX
    pl = fx.mul(h, np.maximum(0, fx.sub(fx.ONE, q)))
    ex = fx.mul(h, fx.exp(-q))
    u = fx.add(fx.ONE, q)
    fs = fx.div(h, fx.mul(u, u))
    at = fx.div(h, fx.add(fx.ONE, fx.mul(q, q)))
    return np.select([code == 1, code == 2, code == 3], [ex, fs, at], pl)


class _Optimizer:
    """``synapse_dynamics_eprop_optimize`` for an array of plastic synapses."""

    def __init__(self, opt: np.ndarray, w: np.ndarray, mask: np.ndarray):
        self.p = {k: int(opt[k][0]) for k in opt.dtype.names}
        self.w = w.astype(np.int64)
        self.mask = mask
        self.cum = np.zeros_like(self.w)
        self.m = np.zeros_like(self.w)  # Q46
        self.v = np.zeros_like(self.w)  # Q46
        self.q1 = np.zeros(self.w.shape, dtype=np.int64)  # 1 - beta_1^k, u0.32 bits
        self.q2 = np.zeros(self.w.shape, dtype=np.int64)
        self.step = np.ones(self.w.shape, dtype=np.int64)

    def _alpha(self, q1: np.ndarray, q2: np.ndarray) -> np.ndarray:
        """Adam's u0.32 step size from 1 - beta^k (``adam_step_size``), in Python integers."""
        out = np.empty(q1.shape, dtype=np.int64)
        pairs, inv = np.unique(np.stack([q1, q2], axis=-1).reshape(-1, 2), axis=0, return_inverse=True)
        vals = []
        for a, b in pairs:
            root = math.isqrt(int(b) << 32)
            num = (self.p["eta"] * root + (1 << 31)) >> 32
            vals.append(min(((num << 32) + int(a) // 2) // int(a), 2**32 - 1))
        out.reshape(-1)[:] = np.asarray(vals, dtype=np.int64)[inv.reshape(-1)]
        return out

    def update(self, g: np.ndarray, idx: int) -> None:
        p = self.p
        sel = self.mask
        cum = np.where(sel, fx.add(self.cum, g), self.cum)
        current = 1 + idx // p["batch_size"]
        due = sel & (self.step < current)
        cum_d = fx.div_int(cum, p["batch_size"])
        w = self.w
        if p["kind"] == 0:
            w_new = fx.sub(w, fx.decay(cum_d, p["eta"]))
        else:
            w_new, m, v, q1, q2 = w.copy(), self.m.copy(), self.v.copy(), self.q1.copy(), self.q2.copy()
            g_k = cum_d.copy()
            step = self.step.copy()
            active = due.copy()
            while active.any():
                q1 = np.where(active, p["one_minus_beta_1"] + fx.decay_mul(p["beta_1"], q1).astype(np.int64), q1)
                q2 = np.where(active, p["one_minus_beta_2"] + fx.decay_mul(p["beta_2"], q2).astype(np.int64), q2)
                alpha = np.zeros_like(q1)
                alpha[active] = self._alpha(q1[active], q2[active])
                m_k = fx.q46_sat(fx.q46_decay(m, p["beta_1"]) + fx.q46_decay(fx.q46_from_fx(g_k), p["one_minus_beta_1"]))
                v_k = fx.q46_sat(fx.q46_decay(v, p["beta_2"]) + fx.q46_scaled_square(g_k, p["one_minus_beta_2"]))
                ratio = fx.sat(fx.rdiv(m_k, (fx.isqrt(v_k) + p["epsilon"]) * 256))
                w_new = np.where(active, fx.sub(w_new, fx.decay(ratio, alpha)), w_new)
                m = np.where(active, m_k, m)
                v = np.where(active, v_k, v)
                g_k = np.where(active, 0, g_k)
                step = np.where(active, step + 1, step)
                active = active & (step < current)
            self.m, self.v, self.q1, self.q2 = (np.where(due, a, b) for a, b in
                                                ((m, self.m), (v, self.v), (q1, self.q1), (q2, self.q2)))
        w_new = np.minimum(np.maximum(w_new, p["w_min"]), p["w_max"])
        self.w = np.where(due, w_new, w)
        self.cum = np.where(due, 0, cum)
        self.step = np.where(due, current, self.step)


def run_kernel(net: KernelNetwork) -> dict[str, np.ndarray]:
    """Run every sequence of ``net``; returns the raw recordings
    (:data:`~pynn_ext.spinnaker.kernel_params.RAW_FIELDS`, int64 arrays, ``z`` uint8)."""
    n_in, n_rec, n_out, T = net.n_in, net.n_rec, net.n_out, net.T
    n_pre, S = n_in + n_rec, net.n_sequences
    npar = {k: net.neuron_params[k].astype(np.int64) for k in net.neuron_params.dtype.names}
    rpar = {k: int(net.readout_params[k][0]) for k in net.readout_params.dtype.names}
    spar = {k: int(net.synapse_params[k][0]) for k in net.synapse_params.dtype.names}
    regular = npar["regular_arrival"].astype(bool)
    core_of = np.searchsorted(net.core_start[1:], np.arange(n_rec), side="right")
    first = net.core_start[:-1].astype(np.int64)
    zeta_one_core = np.where(regular[first], fx.ONE, fx.decay(fx.ONE, npar["zeta"][first]))[:, None]
    alpha_core = npar["alpha"][first][:, None]
    zeta_one_out = fx.ONE if rpar["regular_arrival"] else int(fx.decay(fx.ONE, rpar["zeta_out"]))
    opt_h = _Optimizer(net.optimizer, net.w_hidden, net.mask_hidden.astype(bool))
    opt_o = _Optimizer(net.optimizer, net.w_out, net.mask_out.astype(bool))
    B = net.w_fb.astype(np.int64)
    rec = net.record
    n_record = rec.shape[0]

    out = allocate_raw(net, np.int64)
    beta_c, rho_c = npar["beta"][:, None], npar["rho"][:, None]

    for s in range(S):
        v = np.zeros(n_rec, dtype=np.int64)
        a = np.zeros(n_rec, dtype=np.int64)
        r = np.zeros(n_rec, dtype=np.int64)
        z = np.zeros(n_rec, dtype=bool)
        n_spikes = np.zeros(n_rec, dtype=np.int64)
        y = np.zeros(n_out, dtype=np.int64)
        ebar = np.zeros((n_rec, n_pre), dtype=np.int64)
        grad = np.zeros_like(ebar)
        sum_e = np.zeros_like(ebar)
        eps = np.zeros_like(ebar)
        zbar = np.zeros((net.n_cores, n_pre), dtype=np.int64)
        zbar_out = np.zeros(n_rec, dtype=np.int64)
        grad_out = np.zeros((n_out, n_rec), dtype=np.int64)
        wh, wo = opt_h.w, opt_o.w
        for t in range(T):
            n = s * T + t
            arrived = np.concatenate([net.inputs[n].astype(bool), z])
            syn_in = fx.sat(wh[:, arrived].sum(axis=1))
            # neuron_model_eprop_state_update
            z_prev = z
            r = np.where(r > 0, r - 1, r)
            arrival = np.where(regular, syn_in, fx.decay(syn_in, npar["zeta"]))
            v = fx.add(fx.add(npar["i_offset"], arrival), fx.decay(v, npar["alpha"]))
            v = np.where(z_prev, fx.sub(v, npar["v_thresh"]), v)
            v = np.maximum(v, npar["v_min"])
            a = fx.add(fx.decay(a, npar["rho"]), np.where(z_prev, fx.ONE, 0))
            thr = fx.add(npar["v_thresh"], fx.mul(npar["beta"], a))
            psi = np.where(r > 0, 0, _psi(npar["surrogate"], fx.sub(v, thr), npar["psi_height"],
                                          npar["psi_inv_width"]))
            z = (v >= thr) & (r == 0)
            r = np.where(z, npar["refract_steps"], r)
            n_spikes += z
            # z-bar per core
            zb = fx.decay(zbar, alpha_core)
            zbar = np.where(arrived[None, :], fx.add(zb, zeta_one_core), zb)
            # readouts
            syn_out = fx.sat(wo[:, z].sum(axis=1))
            arr_o = syn_out if rpar["regular_arrival"] else fx.decay(syn_out, rpar["zeta_out"])
            y = np.maximum(fx.add(fx.add(rpar["i_offset"], arr_o), fx.decay(y, rpar["kappa_out"])), rpar["v_min"])
            if rpar["cross_entropy"]:
                u = fx.exp(fx.sub(y, y.max()))
                sig = np.zeros(n_out, dtype=np.int64)
                for k in range(n_out):
                    norm = 0
                    for q in range(n_out):
                        if q != k:
                            norm = int(fx.add(norm, u[q]))
                    sig[k] = max(1, int(fx.div(u[k], fx.add(norm, u[k]))))
            else:
                sig = fx.add(y, rpar["v_rest"])
            err = fx.sub(sig, net.target[n]) if t >= T - net.T_L else np.zeros(n_out, dtype=np.int64)
            L = np.zeros(n_rec, dtype=np.int64)
            for k in range(n_out):
                L = fx.add(L, fx.mul(B[:, k], err[k]))
            sum_e_before = sum_e.copy() if n_record else None
            grad_out_before = grad_out.copy() if n_record else None
            # synapse_dynamics_eprop_step for every neuron
            zb_post = zbar[core_of]
            e = fx.mul(psi[:, None], fx.sub(zb_post, fx.mul(beta_c, eps)))
            eps = fx.add(fx.decay(eps, rho_c), e)
            ebar = fx.add(fx.decay(ebar, spar["kappa"]), fx.decay(e, spar["one_minus_kappa"]))
            l_syn = np.where(net.zero_L[s][None, :].astype(bool), 0, L[:, None]) if t == T - 1 else L[:, None]
            grad = fx.add(grad, fx.mul(l_syn, ebar))
            sum_e = fx.add(sum_e, e)
            zbo = fx.decay(zbar_out, rpar["kappa_out"])
            zbar_out = np.where(z, fx.add(zbo, zeta_one_out), zbo)
            grad_out = fx.add(grad_out, fx.mul(err[:, None], zbar_out[None, :]))
            # recordings
            out["v"][n], out["z"][n], out["psi"][n] = v, z, psi
            out["adaptation"][n], out["threshold"][n], out["learning_signal"][n] = a, thr, L
            out["readout_v"][n], out["signal"][n], out["error"][n] = y, sig, err
            for q in range(n_record):
                proj, pre, post = (int(x) for x in rec[q])
                if proj == 2:
                    out["syn_zbar"][n, q] = zbar_out[pre]
                    out["syn_e"][n, q] = fx.sub(grad_out[post, pre], grad_out_before[post, pre])
                    out["syn_ebar"][n, q] = zbar_out[pre]
                else:
                    col = pre if proj == 0 else n_in + pre
                    out["syn_zbar"][n, q] = zbar[core_of[post], col]
                    out["syn_e"][n, q] = fx.sub(sum_e[post, col], sum_e_before[post, col])
                    out["syn_ebar"][n, q] = ebar[post, col]
        # interval end
        f_av = fx.div_int(fx.sat(n_spikes * fx.ONE), T)
        fr = fx.mul(npar["c_reg_per_T"], fx.sub(f_av, npar["f_target_dt"]))
        out["fr_reg"][s * T:(s + 1) * T] = fr
        g = fx.add(grad, fx.mul(fr[:, None], sum_e))
        if spar["average_steps"] > 1:
            g = fx.div_int(g, spar["average_steps"])
        opt_h.update(g, s + 1)
        g_out = fx.div_int(grad_out, spar["average_steps"]) if spar["average_steps"] > 1 else grad_out
        opt_o.update(g_out, s + 1)
        if net.symmetric:
            B = opt_o.w.T.copy()
        out["snap_w_hidden"][s], out["snap_w_out"][s], out["snap_w_fb"][s] = opt_h.w, opt_o.w, B
    return out
