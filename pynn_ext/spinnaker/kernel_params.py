"""A validated original-family scenario as the integer data the SpiNNaker e-prop kernel reads.

The host side of sPyNNaker derives every dt-dependent constant (decays, P_i I_e, 1/w, c_reg/T)
in float64 and writes it to the cores in fixed point; this module does the same, once, for the
host build (:mod:`pynn_ext.spinnaker.host`) and the NumPy emulation
(:mod:`pynn_ext.spinnaker.emulation`), so both start from identical bits.  The float64
constants are those of the reference (:func:`eprop_plugins.reference.common.recurrent_constants`,
:class:`eprop_plugins.reference.original.ReadoutConstants`).  The structured dtypes mirror the C
structs of ``pynn_ext/spinnaker/c/*.h`` field by field (``align=True`` gives C's layout; a test
compares the sizes with the compiled kernel's ``sizeof``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from eprop_plugins.parameters import SURROGATE_FUNCTIONS, ParameterError
from eprop_plugins.reference.common import input_raster, projections, recurrent_constants
from eprop_plugins.reference.original import ReadoutConstants

from . import fixed_point as fx

__all__ = ["RAW_FIELDS", "allocate_raw", "NEURON_PARAMS", "READOUT_PARAMS", "SYNAPSE_PARAMS", "OPTIMIZER_PARAMS", "MAX_READOUTS",
           "SURROGATE_CODES", "KernelNetwork", "kernel_network"]

#: neuron_params_t (neuron_model_eprop_original_impl.h)
NEURON_PARAMS = np.dtype([
    ("alpha", "<u4"), ("zeta", "<u4"), ("rho", "<u4"), ("i_offset", "<i4"), ("v_thresh", "<i4"),
    ("v_min", "<i4"), ("beta", "<i4"), ("psi_height", "<i4"), ("psi_inv_width", "<i4"), ("c_reg_per_T", "<i4"),
    ("f_target_dt", "<i4"), ("refract_steps", "<u2"), ("surrogate", "u1"), ("regular_arrival", "u1"),
], align=True)
#: readout_params_t
READOUT_PARAMS = np.dtype([
    ("kappa_out", "<u4"), ("zeta_out", "<u4"), ("i_offset", "<i4"), ("v_min", "<i4"), ("v_rest", "<i4"),
    ("regular_arrival", "u1"), ("cross_entropy", "u1"), ("pad", "<u2"),
], align=True)
#: eprop_synapse_params_t (synapse_dynamics_eprop_original_impl.h)
SYNAPSE_PARAMS = np.dtype([("kappa", "<u4"), ("one_minus_kappa", "<u4"), ("average_steps", "<u4")], align=True)
#: eprop_optimizer_params_t
OPTIMIZER_PARAMS = np.dtype([
    ("eta", "<u4"), ("beta_1", "<u4"), ("beta_2", "<u4"), ("one_minus_beta_1", "<u4"), ("one_minus_beta_2", "<u4"),
    ("epsilon", "<u4"), ("w_min", "<i4"), ("w_max", "<i4"), ("batch_size", "<u4"), ("kind", "<u4"),
], align=True)
#: EPROP_MAX_READOUTS
MAX_READOUTS = 20
#: eprop_surrogate_t codes by surrogate_gradient_function
SURROGATE_CODES = {name: code for code, name in enumerate(SURROGATE_FUNCTIONS)}
assert tuple(SURROGATE_CODES) == ("piecewise_linear", "exponential", "fast_sigmoid_derivative", "arctan_derivative")

#: the raw recordings of a kernel run (the output arrays of eprop_host_network_t)
RAW_FIELDS = ("v", "psi", "adaptation", "threshold", "learning_signal", "fr_reg", "z", "readout_v", "signal", "error",
              "syn_zbar", "syn_e", "syn_ebar", "snap_w_hidden", "snap_w_out", "snap_w_fb")

#: largest magnitude an s16.15 parameter or weight may have
_RANGE = 65535.0


@dataclass
class KernelNetwork:
    """The fixed-point data of one scenario (arrays row-major; ``n_pre = n_in + n_rec``)."""

    n_in: int
    n_rec: int
    n_out: int
    T: int
    n_sequences: int
    T_L: int
    symmetric: bool
    core_start: np.ndarray  # uint32 (n_cores + 1,): one recurrent core per population
    neuron_params: np.ndarray  # NEURON_PARAMS (n_rec,)
    readout_params: np.ndarray  # READOUT_PARAMS (1,)
    synapse_params: np.ndarray  # SYNAPSE_PARAMS (1,)
    optimizer: np.ndarray  # OPTIMIZER_PARAMS (1,)
    inputs: np.ndarray  # uint8 (n_steps, n_in)
    zero_L: np.ndarray  # uint8 (n_sequences, n_pre)
    target: np.ndarray  # int32 (n_steps, n_out)
    w_hidden: np.ndarray  # int32 (n_rec, n_pre)
    w_out: np.ndarray  # int32 (n_out, n_rec)
    w_fb: np.ndarray  # int32 (n_rec, n_out)
    record: np.ndarray  # int32 (n_record, 3): projection (0 in, 1 rec, 2 out), pre, post
    mask_hidden: np.ndarray  # uint8 (n_rec, n_pre): 1 where a synapse exists (never on the autapse diagonal)
    mask_out: np.ndarray  # uint8 (n_out, n_rec)
    sparse: dict  # the sparse projections by snapshot name (eprop_plugins.reference.common.Projections)
    v_rest: np.ndarray  # float (n_rec,) [mV], to report absolute potentials
    readout_v_rest: float
    adaptive: np.ndarray  # bool (n_rec,)
    #: steps by which the recurrent synapses integrate late, as on a board where the error payloads of
    #: step t arrive at t + 1 or t + 2 (host driver: 0 .. 4; the results do not depend on it)
    learning_delay: int = 0

    @property
    def n_cores(self) -> int:
        return int(self.core_start.size - 1)

    @property
    def n_steps(self) -> int:
        return self.T * self.n_sequences


def allocate_raw(net: "KernelNetwork", dtype, min_record: int = 0) -> dict[str, np.ndarray]:
    """Zeroed raw recordings of :data:`RAW_FIELDS` (``z`` as uint8, the others as ``dtype``).

    ``min_record``: at least this many recorded-synapse columns (a C pointer needs an array).
    """
    N, S, n_rec, n_out = net.n_steps, net.n_sequences, net.n_rec, net.n_out
    n_pre, n_record = net.n_in + n_rec, max(net.record.shape[0], min_record)
    shapes = {"v": (N, n_rec), "psi": (N, n_rec), "adaptation": (N, n_rec), "threshold": (N, n_rec),
              "learning_signal": (N, n_rec), "fr_reg": (N, n_rec), "z": (N, n_rec),
              "readout_v": (N, n_out), "signal": (N, n_out), "error": (N, n_out),
              "syn_zbar": (N, n_record), "syn_e": (N, n_record), "syn_ebar": (N, n_record),
              "snap_w_hidden": (S, n_rec, n_pre), "snap_w_out": (S, n_out, n_rec), "snap_w_fb": (S, n_rec, n_out)}
    assert tuple(shapes) == RAW_FIELDS
    return {k: np.zeros(shape, dtype=np.uint8 if k == "z" else dtype) for k, shape in shapes.items()}


def _fx(name: str, value, allow_inf: bool = False) -> np.ndarray:
    """``to_fx`` with a range check naming the field."""
    v = np.asarray(value, dtype=float)
    finite = v[np.isfinite(v)]
    if finite.size and np.max(np.abs(finite)) > _RANGE:
        raise ParameterError(f"{name} = {float(finite[np.argmax(np.abs(finite))])!r}: the SpiNNaker kernel's "
                             f"s16.15 fixed point holds magnitudes up to {_RANGE:g}")
    if not allow_inf and not np.all(np.isfinite(v)):
        raise ParameterError(f"{name}: must be finite on the SpiNNaker kernel (s16.15 fixed point)")
    return fx.to_fx(v)


def _decay(name: str, value) -> np.ndarray:
    """``to_decay`` with a ParameterError naming the field."""
    try:
        return fx.to_decay(value)
    except ValueError:
        raise ParameterError(f"{name} = {np.asarray(value).ravel()[:3]}: the SpiNNaker kernel holds it as u0.32 "
                             "(unsigned long fract), so it must lie in [0, 1)") from None


def kernel_network(sc) -> KernelNetwork:
    """Derive the kernel's fixed-point data from a validated original-family scenario.

    Raises
    ------
    ParameterError
        For values the fixed-point formats cannot hold (magnitudes above 65535, ``eta >= 1``,
        more than :data:`MAX_READOUTS` readouts, more than 65535 spikes per interval).
    """
    c = recurrent_constants(sc)
    ro = ReadoutConstants.of(sc)
    T, n_in, n_rec, n_out = sc.steps_per_sequence, sc.n_in, sc.n_rec, sc.n_out
    if n_out > MAX_READOUTS:
        raise ParameterError(f"n_out = {n_out}: the SpiNNaker kernel takes up to {MAX_READOUTS} readouts")
    if T > 65535:
        raise ParameterError(f"steps_per_sequence = {T}: the kernel counts spikes per interval in 16 bits (<= 65535)")
    n_pre = n_in + n_rec

    npar = np.zeros(n_rec, dtype=NEURON_PARAMS)
    npar["alpha"] = _decay("tau_m (alpha = exp(-dt/tau_m))", c.alpha)
    npar["zeta"] = _decay("zeta = 1 - alpha", 1.0 - c.alpha)
    npar["rho"] = _decay("tau_a (rho = exp(-dt/tau_a))", c.rho)
    npar["i_offset"] = _fx("i_offset (P_i I_e)", c.p_i * c.i_e)
    npar["v_thresh"] = _fx("v_thresh - v_rest", c.v_th)
    npar["v_min"] = _fx("v_min - v_rest", c.v_min, allow_inf=True)
    npar["beta"] = _fx("beta", c.beta)
    npar["psi_height"] = _fx("surrogate_gradient_height", c.h)
    npar["psi_inv_width"] = _fx("1 / surrogate_gradient_width", 1.0 / c.w)
    npar["c_reg_per_T"] = _fx("c_reg / T", c.c_reg / T)
    npar["f_target_dt"] = _fx("f_target dt", c.f_target * sc.dt)
    npar["refract_steps"] = c.n_ref
    npar["regular_arrival"] = (c.zeta == 1.0).astype(np.uint8)
    for name, idx in c.surrogate_groups:
        npar["surrogate"][idx] = SURROGATE_CODES[name]

    rpar = np.zeros(1, dtype=READOUT_PARAMS)
    rpar["kappa_out"] = _decay("readout tau_m (kappa_out)", ro.kappa_out)
    rpar["zeta_out"] = _decay("1 - kappa_out", 1.0 - ro.kappa_out)
    rpar["i_offset"] = _fx("readout i_offset (P_i I_e)", ro.p_i_out * ro.i_e_out)
    rpar["v_min"] = _fx("readout v_min - v_rest", ro.v_min_out, allow_inf=True)
    rpar["v_rest"] = _fx("readout v_rest", ro.v_rest)
    rpar["regular_arrival"] = 1 if ro.zeta_out == 1.0 else 0
    rpar["cross_entropy"] = 1 if ro.cross_entropy else 0

    T_L = sc.learning_window_steps()
    spar = np.zeros(1, dtype=SYNAPSE_PARAMS)
    spar["kappa"] = _decay("tau_m_readout (kappa)", ro.kappa)
    spar["one_minus_kappa"] = _decay("1 - kappa", 1.0 - ro.kappa)
    spar["average_steps"] = T_L if sc.synapse["average_gradient"] else 1

    o = sc.optimizer
    opar = np.zeros(1, dtype=OPTIMIZER_PARAMS)
    opar["eta"] = _decay("optimizer.eta", o["eta"])
    opar["beta_1"] = _decay("optimizer.beta_1", o["beta_1"])
    opar["beta_2"] = _decay("optimizer.beta_2", o["beta_2"])
    opar["one_minus_beta_1"] = _decay("1 - optimizer.beta_1", 1.0 - o["beta_1"])
    opar["one_minus_beta_2"] = _decay("1 - optimizer.beta_2", 1.0 - o["beta_2"])
    # Q23, the scale of sqrt of the Q46 second moment; at least one LSB (1.2e-7) so that
    # m / (sqrt(v) + eps) never divides by zero
    opar["epsilon"] = max(1, int(np.floor(o["epsilon"] * 2.0**23 + 0.5)))
    opar["w_min"] = _fx("optimizer.w_min", o["w_min"], allow_inf=True)
    opar["w_max"] = _fx("optimizer.w_max", o["w_max"], allow_inf=True)
    opar["batch_size"] = o["batch_size"]
    opar["kind"] = 0 if o["type"] == "gradient_descent" else 1

    proj = projections(sc)
    x = input_raster(sc)
    N = sc.n_steps
    zero_L = np.zeros((sc.n_sequences, n_pre), dtype=np.uint8)
    for s in range(sc.n_sequences):  # NEST 3.10's last-step behaviour, as the reference (docs/model.rst §6)
        if (s + 1) * T + 1 < N:
            zero_L[s, :n_in] = x[(s + 1) * T + 1]
    sizes = [p.size for p in sc.populations]
    record = np.array([[{"in": 0, "rec": 1, "out": 2}[p], pre, post] for p, pre, post in sc.record_synapses],
                      dtype=np.int32).reshape(-1, 3)
    return KernelNetwork(
        n_in=n_in, n_rec=n_rec, n_out=n_out, T=T, n_sequences=sc.n_sequences, T_L=T_L,
        symmetric=sc.network["feedback"] == "symmetric",
        core_start=np.concatenate([[0], np.cumsum(sizes)]).astype(np.uint32),
        neuron_params=npar, readout_params=rpar, synapse_params=spar, optimizer=opar,
        inputs=x.astype(np.uint8), zero_L=zero_L,
        target=_fx("target", sc.target.T).astype(np.int32),
        w_hidden=_fx("w_in / w_rec", np.hstack([proj.w_in, proj.w_rec])).astype(np.int32),
        w_out=_fx("w_out", proj.w_out).astype(np.int32),
        w_fb=_fx("w_fb", sc.effective_feedback()).astype(np.int32),
        record=record, mask_hidden=np.hstack([proj.mask_in, proj.mask_rec]).astype(np.uint8),
        mask_out=proj.mask_out.astype(np.uint8), sparse=dict(proj.sparse), v_rest=np.asarray(c.v_rest, dtype=float), readout_v_rest=float(ro.v_rest),
        adaptive=np.asarray(c.adaptive, dtype=bool),
    )
