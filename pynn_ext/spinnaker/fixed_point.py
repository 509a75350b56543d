"""The s16.15 / u0.32 fixed-point arithmetic of the SpiNNaker e-prop kernel, in NumPy integers.

Every function mirrors one operation of ``pynn_ext/spinnaker/c/eprop_fixed.h`` on the raw bits
(``int64`` arrays holding int32 values for s16.15, ``uint64`` arrays holding uint32 values for
u0.32) with the same rounding, so that :mod:`pynn_ext.spinnaker.emulation` reproduces the C kernel
bit for bit:

* add/sub: exact, then saturated to the int32 range;
* products: exact 64-bit product, plus half an LSB, arithmetic shift right (round half up), saturated;
* divisions: round half away from zero; division by zero saturates with the sign of the numerator;
* square root: floor of the exact integer square root;
* exp: range reduction by ln 2 and a degree-8 Horner polynomial in Q30;
* Adam's moments are Q46 integers (46 fractional bits in int64), ``q46_*``.

Conversions from float64 (the host's derived constants, the initial weights) round half up;
:data:`RESOLUTION` = 2^-15 is one LSB of s16.15.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["FRAC_BITS", "ONE", "FX_MAX", "FX_MIN", "RESOLUTION", "LN2_Q30", "INV_LN2_Q30", "EXP_LO", "EXP_HI",
           "EXP_INV_Q30", "to_fx", "to_decay", "from_fx", "sat", "add", "sub", "mul", "decay", "decay_mul",
           "rdiv", "div", "div_int", "isqrt", "sqrt", "exp", "FX46_MAX", "q46_sat", "q46_decay", "q46_from_fx",
           "q46_scaled_square"]

FRAC_BITS = 15
ONE = 1 << FRAC_BITS
FX_MAX = 2**31 - 1
FX_MIN = -(2**31)
#: one LSB of s16.15
RESOLUTION = 2.0**-FRAC_BITS
#: constants of fx_exp, identical to eprop_fixed.h (tests compare them with the header)
LN2_Q30 = 744261118
INV_LN2_Q30 = 1549082005
EXP_LO = -363408
EXP_HI = 363408
EXP_INV_Q30 = (0, 1073741824, 536870912, 357913941, 268435456, 214748365, 178956971, 153391689, 134217728)


def to_fx(x) -> np.ndarray:
    """float64 -> s16.15 bits (int64 array), round half up, saturated (``-inf``/``inf`` -> the extremes)."""
    x = np.asarray(x, dtype=float)
    scaled = np.floor(np.clip(x, -2.0**17, 2.0**17) * ONE + 0.5)
    return np.clip(scaled, FX_MIN, FX_MAX).astype(np.int64)


def to_decay(x) -> np.ndarray:
    """float64 in [0, 1) -> u0.32 bits (uint64 array), round half up.

    Raises
    ------
    ValueError
        For values outside [0, 1 - 2^-33) (u0.32 cannot hold them).
    """
    x = np.asarray(x, dtype=float)
    bits = np.floor(x * 2.0**32 + 0.5)
    if np.any(bits < 0) or np.any(bits >= 2.0**32):
        raise ValueError(f"u0.32 holds values in [0, 1): got {x[(bits < 0) | (bits >= 2.0**32)].ravel()[:3]}")
    return bits.astype(np.uint64)


def from_fx(bits) -> np.ndarray:
    """s16.15 bits -> float64 (exact)."""
    return np.asarray(bits, dtype=np.int64).astype(float) * RESOLUTION


def sat(x) -> np.ndarray:
    """Saturate to the int32 range."""
    return np.clip(x, FX_MIN, FX_MAX)


def add(a, b) -> np.ndarray:
    return sat(np.asarray(a, dtype=np.int64) + b)


def sub(a, b) -> np.ndarray:
    return sat(np.asarray(a, dtype=np.int64) - b)


def mul(a, b) -> np.ndarray:
    """s16.15 x s16.15, round half up."""
    return sat((np.asarray(a, dtype=np.int64) * np.asarray(b, dtype=np.int64) + (1 << 14)) >> 15)


def decay(a, d) -> np.ndarray:
    """s16.15 x u0.32, round half up (``fx_decay``); |a d| < 2^63 always."""
    return sat((np.asarray(a, dtype=np.int64) * np.asarray(d, dtype=np.int64) + (1 << 31)) >> 32)


def decay_mul(a, b) -> np.ndarray:
    """u0.32 x u0.32, round half up (``fxd_mul``)."""
    a = np.asarray(a, dtype=np.uint64)
    return (a * np.asarray(b, dtype=np.uint64) + np.uint64(1 << 31)) >> np.uint64(32)


def rdiv(n, d) -> np.ndarray:
    """``n / d`` rounded half away from zero (``fx_rdiv64``), d != 0."""
    n = np.asarray(n, dtype=np.int64)
    d = np.asarray(d, dtype=np.int64)
    un, ud = np.abs(n), np.abs(d)
    q = (un + ud // 2) // ud
    return np.where((n < 0) != (d < 0), -q, q)


def div(a, b) -> np.ndarray:
    """s16.15 / s16.15 (``fx_div``); a / 0 saturates with the sign of a."""
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    safe = np.where(b == 0, 1, b)
    return np.where(b == 0, np.where(a >= 0, FX_MAX, FX_MIN), sat(rdiv(a * ONE, safe)))


def div_int(a, n: int) -> np.ndarray:
    """s16.15 / integer (``fx_div_int``)."""
    return sat(rdiv(a, n))


def isqrt(n) -> np.ndarray:
    """floor(sqrt(n)) of non-negative integers below 2^62 (``fx_isqrt64``), exactly."""
    n = np.asarray(n, dtype=np.int64)
    r = np.floor(np.sqrt(n.astype(float))).astype(np.int64)
    # float sqrt can be off by one near 2^52 and above: correct both ways
    for _ in range(2):
        r = np.where(r * r > n, r - 1, r)
        r = np.where((r + 1) * (r + 1) <= n, r + 1, r)
    return r


def sqrt(a) -> np.ndarray:
    """sqrt of s16.15 (0 for a <= 0), floor of the exact root (``fx_sqrt``)."""
    a = np.asarray(a, dtype=np.int64)
    return np.where(a <= 0, 0, isqrt(np.maximum(a, 0) << 15))


#: saturation bound of the Q46 Adam moments (``FX46_MAX``)
FX46_MAX = 2**62


def q46_sat(x) -> np.ndarray:
    return np.clip(x, -FX46_MAX, FX46_MAX)


def q46_decay(a, d) -> np.ndarray:
    """Q46 x u0.32, round half up, through ``a = hi 2^32 + lo`` (``fx46_decay``)."""
    a = np.asarray(a, dtype=np.int64)
    d = np.asarray(d, dtype=np.int64)
    hi = a >> 32
    lo = (a & 0xFFFFFFFF).astype(np.uint64)
    frac = (lo * d.astype(np.uint64) + np.uint64(1 << 31)) >> np.uint64(32)
    return hi * d + frac.astype(np.int64)


def q46_from_fx(a) -> np.ndarray:
    """s16.15 -> Q46, exact."""
    return np.asarray(a, dtype=np.int64) << 31


def q46_scaled_square(a, d) -> np.ndarray:
    """``d a^2`` in Q46 (``fx46_scaled_square``): scaled to Q46 before the product below 2^46 (Q30),
    after it above, saturated at 2^62."""
    a = np.asarray(a, dtype=np.int64)
    q = a * a  # Q30, < 2^62
    small = q < 2**46
    before = q46_decay(np.where(small, q, 0) << 16, d)
    p = q46_decay(np.where(small, 0, q), d)
    after = np.where(p >= FX46_MAX >> 16, FX46_MAX, p << 16)
    return np.where(small, before, after)


def _mul_q30(a, b):
    return (a * b + (1 << 29)) >> 30


def exp(x) -> np.ndarray:
    """exp of s16.15 -> s16.15 (``fx_exp``)."""
    x = np.asarray(x, dtype=np.int64)
    k = (x * INV_LN2_Q30 + (1 << 44)) >> 45
    r = x * 32768 - k * LN2_Q30
    p = np.full(x.shape, 1 << 30, dtype=np.int64)
    for i in range(len(EXP_INV_Q30) - 1, 0, -1):
        p = (1 << 30) + _mul_q30(_mul_q30(r, p), EXP_INV_Q30[i])
    shift = 15 - k
    pos = np.clip(shift, 1, 62)  # outside [EXP_LO, EXP_HI] the value is replaced below
    right = (p + (np.int64(1) << (pos - 1))) >> pos
    left = p << np.clip(-shift, 0, 40)
    out = sat(np.where(shift > 0, right, left))
    return np.where(x < EXP_LO, 0, np.where(x > EXP_HI, FX_MAX, out))


assert EXP_INV_Q30 == tuple([0] + [round(2**30 / i) for i in range(1, 9)])
assert LN2_Q30 == round(math.log(2) * 2**30) and INV_LN2_Q30 == round(2**30 / math.log(2))
