"""How closely the s16.15 kernel follows the float64 reference: a tolerance and a spike horizon per scenario.

Tolerance (relative, in the measure of :mod:`validation.compare`: error / largest reference value).
Every fixed-point operation rounds by at most half an LSB, ``q = 2^-15``.  A leaky trace with decay
``a`` that takes ``n_r`` independent roundings per step carries, in steady state, a rounding error
with standard deviation ``sigma = sqrt(n_r / (12 (1 - a^2)))`` LSB (a damped random walk).  The
budget is four such standard deviations of the slowest trace of the scenario (``a`` = the largest
of alpha, kappa, kappa_out and rho; ``n_r = 3``: decay, input product, trace update) plus the
final rounding of the quantity itself:

    K = 4 sigma + 1 [LSB],    rtol = K q / s,

with ``s`` the smallest scale the scenario fixes before it runs: the surrogate height ``h`` (the
largest psi), the surrogate width ``w`` and the threshold distance ``V_th - v_rest`` (psi's error
is the voltage error divided by ``w``), and 1 for the dimensionless signals.

Horizon.  Fixed point moves a membrane potential by a few LSB, which can move a threshold crossing
by one step once a potential comes within that distance of the threshold; after that the float64
and the fixed-point runs are different networks.  Spike trains must be identical before the
horizon; the horizon is the full run unless this module states a measured one
(:data:`HORIZONS`, re-measured by tests/test_spinnaker_host.py).
"""

from __future__ import annotations

import math

import numpy as np

from eprop_plugins.reference.common import recurrent_constants
from eprop_plugins.reference.original import ReadoutConstants

from .fixed_point import RESOLUTION

__all__ = ["ROUNDINGS_PER_STEP", "SIGMAS", "HORIZONS", "budget_lsb", "tolerance"]

#: independent roundings per step in the slowest trace
ROUNDINGS_PER_STEP = 3
#: standard deviations of the budget
SIGMAS = 4
#: measured first spike mismatch (aligned step) where it comes before the end of the run: there a
#: membrane potential of the float64 reference lies within a few LSB of the threshold
HORIZONS = {
    "task-sine-original": 66,       # V_th = 0.03 mV is only 983 LSB; neuron 74 crosses by < 6 LSB
    "task-evidence-original": 252,  # neuron 5, in the first sequence
}


def budget_lsb(scenario) -> tuple[float, float]:
    """``(K, a)``: the error budget in LSB and the slowest decay it is derived from."""
    c = recurrent_constants(scenario)
    ro = ReadoutConstants.of(scenario)
    a = float(max(np.max(c.alpha), np.max(c.rho), ro.kappa, ro.kappa_out))
    sigma = math.sqrt(ROUNDINGS_PER_STEP / (12.0 * (1.0 - a * a)))
    return SIGMAS * sigma + 1.0, a


def tolerance(scenario) -> dict:
    """``{"rtol", "horizon", "why"}`` of the ``spinnaker-host`` backend on a validated scenario."""
    c = recurrent_constants(scenario)
    K, a = budget_lsb(scenario)
    s = float(min(np.min(c.h), np.min(c.w), np.min(c.v_th), 1.0))
    rtol = K * RESOLUTION / s
    horizon = int(HORIZONS.get(scenario.name, scenario.n_steps))
    why = (f"s16.15 fixed point: {K:.1f} LSB (2^-15) = 4 sigma of rounding in the slowest trace "
           f"(decay {a:.4f}) + 1, over the smallest scale {s:g} (surrogate height/width, threshold, 1); "
           + ("spikes identical over the whole run" if horizon >= scenario.n_steps else
              f"spikes identical up to step {horizon} (a potential within a few LSB of the threshold)"))
    return {"rtol": rtol, "horizon": horizon, "why": why}
