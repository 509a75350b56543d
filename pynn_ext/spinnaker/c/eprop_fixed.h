/*! \file
 *  \brief s16.15 fixed-point arithmetic of the e-prop kernel, and the compatibility layer that
 *         lets the same sources build for the SpiNNaker ARM968 cores and on a host with gcc.
 *
 *  Storage types, as in sPyNNaker:
 *
 *  - ``REAL``         s16.15 ``accum`` (32 bits: sign, 16 integer, 15 fractional bits), resolution
 *                     2^-15 = 3.05e-5, range [-65536, 65536);
 *  - ``eprop_decay_t`` u0.32 ``unsigned long fract`` (sPyNNaker's ``decay_t``): multiplicative
 *                     constants in [0, 1) such as exp(-dt/tau), 1 - exp(-dt/tau), eta.
 *
 *  The arithmetic itself is ONE set of integer operations on the raw bits (``fx_t`` = the int32
 *  bits of a REAL, ``fxd_t`` = the uint32 bits of an eprop_decay_t), used by every build, so that
 *  the host build, the ARM build and the NumPy emulation (pynn_ext/spinnaker/fixed_point.py) round
 *  identically.  Rounding rules (all documented in docs/spinnaker.rst):
 *
 *  - add/sub: exact in 64 bits, then saturated to the int32 range (``fx_sat``);
 *  - products: exact 64-bit product, + half an LSB, arithmetic shift right (round half up), saturated;
 *  - divisions: round half away from zero, saturated; division by zero saturates;
 *  - square root: floor of the exact integer square root;
 *  - exp: range reduction by ln 2 and a degree-8 Horner polynomial in Q30 (error < 1 LSB of s16.15).
 *
 *  Builds:
 *
 *  - default (host, or ARM without any SpiNNaker headers): REAL is the raw int32 itself;
 *  - ``EPROP_NATIVE_ACCUM``: REAL is GCC's ``accum`` (ARM targets), converted to and from its bits
 *    with ``bitsk``/``kbits`` at every load/store (the arithmetic stays the integer one);
 *  - ``EPROP_SPYNNAKER``: REAL and ``bitsk``/``kbits`` come from sPyNNaker / SpiNNFrontEndCommon
 *    headers (not on the package index; this build is not exercised by the project's tests).
 *
 *  Right shifts of negative 64-bit values are arithmetic in GCC (the only compiler supported).
 */
#ifndef EPROP_FIXED_H
#define EPROP_FIXED_H

#include <stdint.h>
#include <stdbool.h>

#if defined(EPROP_SPYNNAKER)
#include <common-typedefs.h>     /* SpiNNFrontEndCommon (installed into $SPINN_DIRS/include): stdfix-full-iso.h,
                                    which gives bitsk, kbits, bitsulr, ulrbits */
#include <common/maths-util.h>   /* sPyNNaker neural_modelling/src: REAL (accum), UFRACT (unsigned long fract) */
typedef UFRACT eprop_decay_t;
#define EPROP_BITS(x)   ((int32_t) bitsk(x))
#define EPROP_REAL(i)   (kbits((int32_t) (i)))
#define EPROP_DBITS(x)  ((uint32_t) bitsulr(x))
#define EPROP_DECAY(i)  (ulrbits((uint32_t) (i)))
#elif defined(EPROP_NATIVE_ACCUM)
#include <stdfix.h>
typedef accum REAL;
typedef unsigned long fract eprop_decay_t;
static inline int32_t eprop_bitsk(REAL x) { union { REAL r; int32_t i; } u; u.r = x; return u.i; }
static inline REAL eprop_kbits(int32_t i) { union { REAL r; int32_t i; } u; u.i = i; return u.r; }
static inline uint32_t eprop_bitsulr(eprop_decay_t x) { union { eprop_decay_t r; uint32_t i; } u; u.r = x; return u.i; }
static inline eprop_decay_t eprop_ulrbits(uint32_t i) { union { eprop_decay_t r; uint32_t i; } u; u.i = i; return u.r; }
#define EPROP_BITS(x)   eprop_bitsk(x)
#define EPROP_REAL(i)   eprop_kbits((int32_t) (i))
#define EPROP_DBITS(x)  eprop_bitsulr(x)
#define EPROP_DECAY(i)  eprop_ulrbits((uint32_t) (i))
#else
typedef int32_t REAL;            /* host: the raw bits of an s16.15 accum */
typedef uint32_t eprop_decay_t;  /* host: the raw bits of a u0.32 unsigned long fract */
#define EPROP_BITS(x)   ((int32_t) (x))
#define EPROP_REAL(i)   ((REAL) (i))
#define EPROP_DBITS(x)  ((uint32_t) (x))
#define EPROP_DECAY(i)  ((eprop_decay_t) (i))
#endif

/* Storage layouts are part of the host/ARM/Python contract: check the sizes at compile time. */
typedef char eprop_check_real_size[(sizeof(REAL) == 4) ? 1 : -1];
typedef char eprop_check_decay_size[(sizeof(eprop_decay_t) == 4) ? 1 : -1];

typedef int32_t fx_t;    /*!< raw bits of an s16.15 value */
typedef uint32_t fxd_t;  /*!< raw bits of a u0.32 value */

#define FX_FRAC_BITS 15
#define FX_ONE ((fx_t) 1 << FX_FRAC_BITS)
#define FX_MAX INT32_MAX
#define FX_MIN INT32_MIN

/* Constants of fx_exp (identical integers in fixed_point.py; a test compares them). */
#define FX_LN2_Q30      INT64_C(744261118)    /* round(ln 2 * 2^30) */
#define FX_INV_LN2_Q30  INT64_C(1549082005)   /* round(2^30 / ln 2) */
#define FX_EXP_LO       ((fx_t) -363408)      /* floor(-ln(2^16) * 2^15): below, exp < 2^-16 -> 0 */
#define FX_EXP_HI       ((fx_t) 363408)       /* floor(ln(2^16) * 2^15): above, exp >= 65536 -> FX_MAX */
#define FX_EXP_DEGREE   8

static inline fx_t fx_sat(int64_t x) {
    return x > (int64_t) FX_MAX ? FX_MAX : (x < (int64_t) FX_MIN ? FX_MIN : (fx_t) x);
}

static inline fx_t fx_add(fx_t a, fx_t b) { return fx_sat((int64_t) a + (int64_t) b); }
static inline fx_t fx_sub(fx_t a, fx_t b) { return fx_sat((int64_t) a - (int64_t) b); }
static inline fx_t fx_abs(fx_t a) { return a < 0 ? fx_sat(-(int64_t) a) : a; }
static inline fx_t fx_max(fx_t a, fx_t b) { return a > b ? a : b; }
static inline fx_t fx_min(fx_t a, fx_t b) { return a < b ? a : b; }

/*! s16.15 x s16.15 -> s16.15, round half up */
static inline fx_t fx_mul(fx_t a, fx_t b) {
    return fx_sat(((int64_t) a * (int64_t) b + (INT64_C(1) << 14)) >> 15);
}

/*! s16.15 x u0.32 -> s16.15, round half up (sPyNNaker's decay_s1615) */
static inline fx_t fx_decay(fx_t a, fxd_t d) {
    return fx_sat(((int64_t) a * (int64_t) d + (INT64_C(1) << 31)) >> 32);
}

/*! u0.32 x u0.32 -> u0.32, round half up */
static inline fxd_t fxd_mul(fxd_t a, fxd_t b) {
    return (fxd_t) (((uint64_t) a * (uint64_t) b + (UINT64_C(1) << 31)) >> 32);
}

/*! n / d rounded half away from zero (d != 0) */
static inline int64_t fx_rdiv64(int64_t n, int64_t d) {
    bool neg = (n < 0) != (d < 0);
    uint64_t un = n < 0 ? -(uint64_t) n : (uint64_t) n;
    uint64_t ud = d < 0 ? -(uint64_t) d : (uint64_t) d;
    uint64_t q = (un + ud / 2) / ud;
    return neg ? -(int64_t) q : (int64_t) q;
}

/*! s16.15 / s16.15 -> s16.15; a / 0 saturates with the sign of a */
static inline fx_t fx_div(fx_t a, fx_t b) {
    if (b == 0) {
        return a >= 0 ? FX_MAX : FX_MIN;
    }
    return fx_sat(fx_rdiv64((int64_t) a * FX_ONE, b));
}

/*! s16.15 / integer -> s16.15 (n != 0) */
static inline fx_t fx_div_int(fx_t a, int32_t n) { return fx_sat(fx_rdiv64(a, n)); }

/*! floor(sqrt(n)) of a 64-bit integer (bit by bit: no division, no floating point) */
static inline uint64_t fx_isqrt64(uint64_t n) {
    uint64_t r = 0, bit = UINT64_C(1) << 62;
    while (bit > n) {
        bit >>= 2;
    }
    while (bit != 0) {
        if (n >= r + bit) {
            n -= r + bit;
            r = (r >> 1) + bit;
        } else {
            r >>= 1;
        }
        bit >>= 2;
    }
    return r;
}

/*! sqrt of s16.15 (0 for a <= 0), floor of the exact root */
static inline fx_t fx_sqrt(fx_t a) {
    return a <= 0 ? 0 : (fx_t) fx_isqrt64((uint64_t) a << 15);
}

/* Q46 (int64 with 46 fractional bits): Adam's moments.  (1 - beta_2) g^2 of a gradient of a few
 * s16.15 LSBs underflows s16.15 and even s32.31, and then m / sqrt(v) explodes; Q46 holds it. */
#define FX46_MAX (INT64_C(1) << 62)

static inline int64_t fx46_sat(int64_t x) { return x > FX46_MAX ? FX46_MAX : (x < -FX46_MAX ? -FX46_MAX : x); }

/*! Q46 x u0.32 -> Q46, round half up, exact without 128-bit integers: a = hi 2^32 + lo */
static inline int64_t fx46_decay(int64_t a, fxd_t d) {
    int64_t hi = a >> 32;                              /* arithmetic shift: floor */
    uint64_t lo = (uint64_t) a & UINT64_C(0xFFFFFFFF);
    return hi * (int64_t) d + (int64_t) ((lo * (uint64_t) d + (UINT64_C(1) << 31)) >> 32);
}

/*! s16.15 -> Q46 (exact) */
static inline int64_t fx46_from_fx(fx_t a) { return (int64_t) a * (INT64_C(1) << 31); }

/*! d a^2 in Q46 for s16.15 a and u0.32 d: the square is exact in Q30; it is scaled to Q46 before
 *  the product where that fits (|a| < 256), after it otherwise; saturated at FX46_MAX */
static inline int64_t fx46_scaled_square(fx_t a, fxd_t d) {
    int64_t q = (int64_t) a * (int64_t) a;  /* Q30, < 2^62 */
    if (q < (INT64_C(1) << 46)) {
        return fx46_decay(q * (INT64_C(1) << 16), d);
    }
    int64_t p = fx46_decay(q, d);           /* Q30 */
    return p >= (FX46_MAX >> 16) ? FX46_MAX : p * (INT64_C(1) << 16);
}

/*! Q30 x Q30 -> Q30, round half up */
static inline int64_t fx_mul_q30(int64_t a, int64_t b) { return (a * b + (INT64_C(1) << 29)) >> 30; }

/*! exp of s16.15 -> s16.15: x = k ln2 + r, |r| <= ln2/2, exp(r) by Horner in Q30, times 2^k */
static inline fx_t fx_exp(fx_t x) {
    static const int64_t inv_q30[FX_EXP_DEGREE + 1] = {
        0, 1073741824, 536870912, 357913941, 268435456, 214748365, 178956971, 153391689, 134217728};
    if (x < FX_EXP_LO) {
        return 0;
    }
    if (x > FX_EXP_HI) {
        return FX_MAX;
    }
    int64_t k = ((int64_t) x * FX_INV_LN2_Q30 + (INT64_C(1) << 44)) >> 45;
    int64_t r = (int64_t) x * INT64_C(32768) - k * FX_LN2_Q30;
    int64_t p = INT64_C(1) << 30;
    for (int i = FX_EXP_DEGREE; i >= 1; i--) {
        p = (INT64_C(1) << 30) + fx_mul_q30(fx_mul_q30(r, p), inv_q30[i]);
    }
    int shift = 15 - (int) k;
    if (shift > 0) {
        return fx_sat((p + (INT64_C(1) << (shift - 1))) >> shift);
    }
    return fx_sat(p * (INT64_C(1) << -shift));
}

#endif /* EPROP_FIXED_H */
