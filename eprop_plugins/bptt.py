"""Back-propagation through time (BPTT) in NumPy: the full-history baseline of the memory benchmark.

BPTT computes the exact gradient of the loss of one sequence by storing the whole forward history
(membrane potentials, spikes and readout of every step) and running backwards through it; its memory
grows linearly with the sequence length T.  e-prop replaces the backward pass by eligibility traces
carried forward in time, so its memory does not depend on T (docs/model.rst §2, §3).  ``eprop bench``
measures both.

The network is the original family's recurrent LIF network with a leaky readout and a
mean-squared-error loss (docs/model.rst §1):

* ``v[t] = alpha v[t-1] + W_in x[t] + W_rec z[t-1] - v_th z[t-1]`` (reset by subtraction),
* ``z[t] = spike(v[t] - v_th)`` with pseudo-derivative ``psi[t]``,
* ``y[t] = kappa y[t-1] + W_out z[t]``, loss ``E = 1/2 sum_t |y[t] - y*[t]|^2``.

Two spike functions: ``"heaviside"`` (a spike when ``v >= v_th``, pseudo-derivative
``gamma max(0, 1 - |v - v_th| / v_th)``, the gradient does not flow through the reset, as in e-prop)
and ``"sigmoid"`` (smooth, its exact derivative, the gradient flows everywhere: this is what a
finite-difference check can test).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["BpttNetwork", "bptt_gradient", "eprop_gradient_feedforward", "loss", "network_from_scenario"]


@dataclass
class BpttNetwork:
    """Weights and constants of the network (shapes: ``w_in (n_rec, n_in)``, ``w_rec (n_rec, n_rec)``,
    ``w_out (n_out, n_rec)``); ``alpha``, ``kappa`` are the per-step decay factors of the membrane and the
    readout, ``v_th`` the threshold (mV), ``gamma`` the pseudo-derivative height, ``sigmoid_scale`` (mV)
    the width of the smooth spike function."""

    w_in: np.ndarray
    w_rec: np.ndarray
    w_out: np.ndarray
    alpha: float
    kappa: float
    v_th: float
    gamma: float = 0.3
    spike: str = "heaviside"
    sigmoid_scale: float = 0.01


def _spike(net: BpttNetwork, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Spikes and their derivative (pseudo-derivative for ``heaviside``) for ``u = v - v_th``."""
    if net.spike == "sigmoid":
        s = 1.0 / (1.0 + np.exp(-u / net.sigmoid_scale))
        return s, s * (1.0 - s) / net.sigmoid_scale
    if net.spike != "heaviside":
        raise ValueError(f"spike = {net.spike!r}: allowed values are 'heaviside', 'sigmoid'")
    z = (u >= 0.0).astype(float)
    return z, net.gamma / net.v_th * np.maximum(0.0, 1.0 - np.abs(u) / net.v_th)


def forward(net: BpttNetwork, x: np.ndarray) -> dict[str, np.ndarray]:
    """Simulate ``x`` (shape ``(T, n_in)``, spikes 0/1) and keep the full history (all arrays ``(T, ·)``)."""
    T, n_rec = x.shape[0], net.w_rec.shape[0]
    v = np.zeros((T, n_rec))
    z = np.zeros((T, n_rec))
    psi = np.zeros((T, n_rec))
    y = np.zeros((T, net.w_out.shape[0]))
    v_prev, z_prev, y_prev = np.zeros(n_rec), np.zeros(n_rec), np.zeros(net.w_out.shape[0])
    for t in range(T):
        v[t] = net.alpha * v_prev + net.w_in @ x[t] + net.w_rec @ z_prev - net.v_th * z_prev
        z[t], psi[t] = _spike(net, v[t] - net.v_th)
        y[t] = net.kappa * y_prev + net.w_out @ z[t]
        v_prev, z_prev, y_prev = v[t], z[t], y[t]
    return {"v": v, "z": z, "psi": psi, "y": y}


def loss(net: BpttNetwork, x: np.ndarray, target: np.ndarray) -> float:
    """``E = 1/2 sum_t |y[t] - y*[t]|^2`` of one sequence (``target`` shape ``(T, n_out)``)."""
    y = forward(net, x)["y"]
    return 0.5 * float(np.sum((y - target) ** 2))


def bptt_gradient(net: BpttNetwork, x: np.ndarray, target: np.ndarray) -> dict[str, np.ndarray]:
    """Exact gradient of :func:`loss` by BPTT over the stored history.

    With ``spike="heaviside"`` the surrogate gradient replaces dz/dv and the reset term passes no
    gradient (e-prop's convention); with ``"sigmoid"`` every path is differentiated.

    Returns
    -------
    dict
        ``w_in``, ``w_rec``, ``w_out`` (same shapes as the weights), ``loss``, and ``history_bytes``
        (the bytes of the stored forward history: what grows with T).
    """
    h = forward(net, x)
    v, z, psi, y = h["v"], h["z"], h["psi"], h["y"]
    T, n_rec = z.shape
    err = y - target
    g_in, g_rec, g_out = np.zeros_like(net.w_in), np.zeros_like(net.w_rec), np.zeros_like(net.w_out)
    dy = np.zeros(net.w_out.shape[0])       # dE/dy[t], carried back through the readout leak
    dv_next = np.zeros(n_rec)               # dE/dv[t+1]
    through_reset = net.spike == "sigmoid"  # e-prop's convention: no gradient through the reset
    for t in range(T - 1, -1, -1):
        dy = err[t] + net.kappa * dy
        g_out += np.outer(dy, z[t])
        dz = net.w_out.T @ dy + net.w_rec.T @ dv_next
        if through_reset:
            dz = dz - net.v_th * dv_next
        dv = dz * psi[t] + net.alpha * dv_next
        g_in += np.outer(dv, x[t])
        if t > 0:
            g_rec += np.outer(dv, z[t - 1])
        dv_next = dv
    history = v.nbytes + z.nbytes + psi.nbytes + y.nbytes
    return {"w_in": g_in, "w_rec": g_rec, "w_out": g_out, "loss": 0.5 * float(np.sum(err ** 2)),
            "history_bytes": history}


def eprop_gradient_feedforward(net: BpttNetwork, x: np.ndarray, target: np.ndarray) -> np.ndarray:
    """e-prop's input-weight gradient computed forward in time (eligibility traces, no history).

    ``e[t] = psi[t] * eps[t]`` with ``eps[t] = alpha eps[t-1] + x[t]``, filtered by the readout leak
    ``ebar[t] = kappa ebar[t-1] + e[t]``, times the learning signal ``L[t] = W_out^T (y[t] - y*[t])``.
    Without recurrent weights and with the Heaviside spike this equals BPTT's gradient exactly
    (Bellec et al. 2020): the independent check of :func:`bptt_gradient`.

    Returns
    -------
    numpy.ndarray
        ``dE/dW_in``, shape ``(n_rec, n_in)``.
    """
    if np.any(net.w_rec != 0.0) or net.spike != "heaviside":
        raise ValueError("eprop_gradient_feedforward: exact only for w_rec = 0 and the Heaviside spike")
    n_rec, n_in = net.w_in.shape
    eps = np.zeros(n_in)
    ebar = np.zeros((n_rec, n_in))
    g = np.zeros((n_rec, n_in))
    v, z, y = np.zeros(n_rec), np.zeros(n_rec), np.zeros(net.w_out.shape[0])
    for t in range(x.shape[0]):
        v = net.alpha * v + net.w_in @ x[t] - net.v_th * z
        z, psi = _spike(net, v - net.v_th)
        y = net.kappa * y + net.w_out @ z
        eps = net.alpha * eps + x[t]
        ebar = net.kappa * ebar + np.outer(psi, eps)
        g += (net.w_out.T @ (y - target[t]))[:, None] * ebar
    return g


def network_from_scenario(sc) -> tuple[BpttNetwork, np.ndarray, np.ndarray]:
    """The network, input ``x (T, n_in)`` and target ``(T, n_out)`` of a scenario's first sequence.

    Uses the first population's ``tau_m``, ``v_thresh``, the readout's ``tau_m`` and the scenario's
    weights and input spikes (all recurrent neurons are treated as that population's LIF neurons):
    the same sizes and sequence length as the benchmarked backends, which is what the memory
    comparison needs.
    """
    sc = sc.validated()
    dt = float(sc.dt)
    T = int(round(float(sc.network["sequence"]) / dt))
    p = sc.populations[0].params
    x = np.zeros((T, sc.n_in))
    for i, times in enumerate(sc.input_spikes):
        steps = np.round(np.asarray(times, float) / dt).astype(int) - 1
        steps = steps[(steps >= 0) & (steps < T)]
        x[steps, i] = 1.0
    target = np.asarray(sc.target, float)
    target = (target if target.shape[0] != sc.n_out else target.T)[:T]  # stored as (n_out, steps)
    if target.shape[0] < T:
        target = np.vstack([target, np.zeros((T - target.shape[0], sc.n_out))])
    net = BpttNetwork(w_in=np.asarray(sc.w_in, float), w_rec=np.asarray(sc.w_rec, float),
                      w_out=np.asarray(sc.w_out, float), alpha=float(np.exp(-dt / p["tau_m"])),
                      kappa=float(np.exp(-dt / sc.readout["tau_m"])), v_th=float(p["v_thresh"]))
    return net, x, target
