"""The raw fixed-point recordings of the SpiNNaker e-prop kernel as a :class:`~eprop_plugins.results.Result`.

Shared by the host build (:mod:`pynn_ext.spinnaker.host`) and the NumPy emulation
(:mod:`pynn_ext.spinnaker.emulation`): the s16.15 bits are converted exactly to float64
(:func:`pynn_ext.spinnaker.fixed_point.from_fx`) and put on the reference's time axis and trace
names (:mod:`eprop_plugins.results`); absolute potentials add the float64 ``v_rest``.
"""

from __future__ import annotations

import numpy as np

from eprop_plugins.reference.common import WeightSnapshots, iteration_loss
from eprop_plugins.reference.original import Interval, add_weight_events
from eprop_plugins.results import Result, WeightEventLog

from . import fixed_point as fx
from .kernel_params import KernelNetwork

__all__ = ["to_result"]


def to_result(sc, net: KernelNetwork, raw: dict[str, np.ndarray], backend: str, *, record_weight_events: bool = True,
              on_iteration=None) -> Result:
    """Convert the raw recordings of one run of ``net`` (built from the validated scenario ``sc``)."""
    f = fx.from_fx
    n_in, n_rec, T = net.n_in, net.n_rec, net.T
    traces = {
        "v": f(raw["v"]) + net.v_rest,
        "z": raw["z"].astype(np.int8),
        "psi": f(raw["psi"]),
        "adaptation": np.where(net.adaptive, f(raw["adaptation"]), 0.0),  # a = z_{n-1} when rho = 0: report 0
        "v_th_adapt": f(raw["threshold"]) + net.v_rest,
        "learning_signal": f(raw["learning_signal"]),
        "fr_reg": f(raw["fr_reg"]),
        "readout_v": f(raw["readout_v"]) + net.readout_v_rest,
        "y": f(raw["signal"]),
        "target": f(net.target),
        "error": f(raw["error"]),
    }
    syn = {"zbar": f(raw["syn_zbar"]), "e": f(raw["syn_e"]), "ebar": f(raw["syn_ebar"])}
    wh, wo, wfb = f(raw["snap_w_hidden"]), f(raw["snap_w_out"]), f(raw["snap_w_fb"])
    snapshots = WeightSnapshots(net.n_sequences, n_in, n_rec, net.n_out, net.sparse)
    for s in range(net.n_sequences):
        snapshots.record(s, wh[s][:, :n_in], wh[s][:, n_in:], wo[s], wfb[s])
    masks = None
    if net.sparse:
        mh = net.mask_hidden.astype(bool)
        masks = (mh[:, :n_in], mh[:, n_in:], net.mask_out.astype(bool))
    events = WeightEventLog()
    losses = []
    w_hidden, w_out = f(net.w_hidden), f(net.w_out)
    z = raw["z"].astype(bool)
    for s in range(net.n_sequences):
        sl = slice(s * T, (s + 1) * T)
        if record_weight_events:
            prev = np.zeros((1, n_rec), dtype=bool)  # no recurrent arrival at an interval start
            arrivals = np.hstack([net.inputs[sl].astype(bool), np.vstack([prev, z[sl][:-1]])])
            iv = Interval(arrivals=arrivals, z=z[sl].astype(float), psi=np.zeros((T, n_rec)),
                          err=np.zeros((T, net.n_out)), n_spikes=z[sl].sum(axis=0).astype(float))
            add_weight_events(events, s * T, iv, w_hidden[:, :n_in], w_hidden[:, n_in:], w_out, masks)
        w_hidden, w_out = wh[s], wo[s]
        loss = iteration_loss(sc, traces, s)
        if loss is not None:
            losses.append(loss)
            if on_iteration is not None:
                on_iteration(len(losses) - 1, loss)
    return Result(scenario=sc.name, family="original", backend=backend, losses=np.array(losses), traces=traces,
                  synapse_traces=syn, weight_events=events.arrays(), weights=snapshots.arrays,
                  weight_connections=snapshots.connections, meta={})
