"""Brian2 user-defined functions of the event family: the loops that generated code cannot express.

NEST's ``eprop_synapse`` applies owed decays with ``pow`` and its Adam optimizer catches up every
missed time step in a loop (zero gradient after the first step, docs/model.rst §4 / NEST 3.10
``WeightOptimizerAdam``).  Brian2's abstract code has no loops, so each looped quantity is a
function with C++ (cpp_standalone), Cython (runtime) and NumPy implementations, all in the
reference's order of floating-point operations (:class:`eprop_plugins.reference.common.Optimizer`):

``ipow(b, k)``
    C ``pow(b, k)`` for an integer count ``k`` (NEST and the reference use C's ``pow``).
``adam_w(w, g, m, v, p1, p2, k, eta, b1, b2, eps)``
    The weight after ``k`` Adam steps, the first with gradient ``g``, the others with zero.
``adam_m(m, g, b, k)`` / ``adam_v(v, g, b, k)``
    First / second moment after ``k`` steps (``b*m + (1 - b)*g`` and ``b*v + (1 - b)*g*g``, left to
    right), the gradient being zero after the first step.
``mulk(x, b, k)``
    ``x`` multiplied ``k`` times by ``b`` (Adam's beta powers; repeated products, not ``pow``).

With ``k = 0`` every function returns its first argument unchanged, so the optimizer needs no
branch: ``k`` is the number of due steps (0 when no step is due).
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["functions"]


def _functions() -> dict:
    from brian2 import check_units, implementation

    @implementation("cpp", """
    inline double ipow(double b, int k) { return pow(b, (double)k); }
    """)
    @implementation("cython", """
    cdef double ipow(double b, int k):
        return pow(b, <double>k)
    """)
    @check_units(b=1, k=1, result=1)
    def ipow(b, k):
        b, k = np.broadcast_arrays(np.asarray(b, float), np.asarray(k))
        return np.array([math.pow(x, float(e)) for x, e in zip(b.ravel().tolist(), k.ravel().tolist())]).reshape(b.shape)

    @implementation("cpp", """
    inline double mulk(double x, double b, int k) { for (int i = 0; i < k; i++) x = x*b; return x; }
    """)
    @implementation("cython", """
    cdef double mulk(double x, double b, int k):
        cdef int i
        for i in range(k):
            x = x*b
        return x
    """)
    @check_units(x=1, b=1, k=1, result=1)
    def mulk(x, b, k):
        x, b, k = (np.array(a) for a in np.broadcast_arrays(np.asarray(x, float), np.asarray(b, float), np.asarray(k)))
        for i in range(int(k.max(initial=0))):
            x = np.where(k > i, x*b, x)
        return x

    @implementation("cpp", """
    inline double adam_m(double m, double g, double b, int k) {
        for (int i = 0; i < k; i++) { m = b*m + (1.0 - b)*g; g = 0.0; }
        return m;
    }
    """)
    @implementation("cython", """
    cdef double adam_m(double m, double g, double b, int k):
        cdef int i
        for i in range(k):
            m = b*m + (1.0 - b)*g
            g = 0.0
        return m
    """)
    @check_units(m=1, g=1, b=1, k=1, result=1)
    def adam_m(m, g, b, k):
        m, g, b, k = (np.array(a) for a in np.broadcast_arrays(np.asarray(m, float), np.asarray(g, float),
                                                              np.asarray(b, float), np.asarray(k)))
        for i in range(int(k.max(initial=0))):
            m = np.where(k > i, b*m + (1.0 - b)*g, m)
            g = np.zeros_like(g)
        return m

    @implementation("cpp", """
    inline double adam_v(double v, double g, double b, int k) {
        for (int i = 0; i < k; i++) { v = b*v + (1.0 - b)*g*g; g = 0.0; }
        return v;
    }
    """)
    @implementation("cython", """
    cdef double adam_v(double v, double g, double b, int k):
        cdef int i
        for i in range(k):
            v = b*v + (1.0 - b)*g*g
            g = 0.0
        return v
    """)
    @check_units(v=1, g=1, b=1, k=1, result=1)
    def adam_v(v, g, b, k):
        v, g, b, k = (np.array(a) for a in np.broadcast_arrays(np.asarray(v, float), np.asarray(g, float),
                                                              np.asarray(b, float), np.asarray(k)))
        for i in range(int(k.max(initial=0))):
            v = np.where(k > i, b*v + (1.0 - b)*g*g, v)
            g = np.zeros_like(g)
        return v

    @implementation("cpp", """
    inline double adam_w(double w, double g, double m, double v, double p1, double p2, int k,
                         double eta, double b1, double b2, double eps) {
        for (int i = 0; i < k; i++) {
            p1 = p1*b1;
            p2 = p2*b2;
            const double a = eta*sqrt(1.0 - p2)/(1.0 - p1);
            m = b1*m + (1.0 - b1)*g;
            v = b2*v + (1.0 - b2)*g*g;
            w = w - a*m/(sqrt(v) + eps);
            g = 0.0;
        }
        return w;
    }
    """)
    @implementation("cython", """
    cdef double adam_w(double w, double g, double m, double v, double p1, double p2, int k,
                       double eta, double b1, double b2, double eps):
        cdef int i
        cdef double a
        for i in range(k):
            p1 = p1*b1
            p2 = p2*b2
            a = eta*sqrt(1.0 - p2)/(1.0 - p1)
            m = b1*m + (1.0 - b1)*g
            v = b2*v + (1.0 - b2)*g*g
            w = w - a*m/(sqrt(v) + eps)
            g = 0.0
        return w
    """)
    @check_units(w=1, g=1, m=1, v=1, p1=1, p2=1, k=1, eta=1, b1=1, b2=1, eps=1, result=1)
    def adam_w(w, g, m, v, p1, p2, k, eta, b1, b2, eps):
        arrs = np.broadcast_arrays(*(np.asarray(a, float) for a in (w, g, m, v, p1, p2, eta, b1, b2, eps)),
                                   np.asarray(k))
        w, g, m, v, p1, p2, eta, b1, b2, eps, k = (np.array(a) for a in arrs)
        for i in range(int(k.max(initial=0))):
            on = k > i
            p1 = np.where(on, p1*b1, p1)
            p2 = np.where(on, p2*b2, p2)
            with np.errstate(invalid="ignore", divide="ignore"):  # masked-out elements only
                a = eta*np.sqrt(1.0 - p2)/(1.0 - p1)
            m = np.where(on, b1*m + (1.0 - b1)*g, m)
            v = np.where(on, b2*v + (1.0 - b2)*g*g, v)
            w = np.where(on, w - a*m/(np.sqrt(v) + eps), w)
            g = np.zeros_like(g)
        return w

    return {"ipow": ipow, "mulk": mulk, "adam_m": adam_m, "adam_v": adam_v, "adam_w": adam_w}


_CACHE: dict = {}


def functions() -> dict:
    """The Brian2 ``Function`` objects by name (created once per process)."""
    if not _CACHE:
        _CACHE.update(_functions())
    return _CACHE
