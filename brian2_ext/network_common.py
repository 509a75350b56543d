"""What the Brian2 networks of both e-prop families share (imports neither family module).

* :class:`ProjectionSynapses`: the synapses of one plastic projection (``in``, ``rec`` without
  autapses, ``out``) in Brian2's creation order, pre-major, for a dense matrix (every pair) or a
  sparse connection list (:mod:`eprop_plugins.connectivity`, only the listed pairs), with the
  conversions between that order and the canonical connection order.
* :class:`PlasticNetwork`: synapse lookup, weight conversions and summed-variable scheduling of the
  three projections (base of both families' networks).
* :func:`grid_codeobject`: the cpp_standalone grid loop of the per-step synapse traces of a dense
  projection.
* Run-time numbers: in Brian2's runtime mode the structure's sizes and step counts (``T``, the
  batch, the learning window, the run length; ``dt`` in the neuron code) are not written into the
  generated code but read from shared constants (:data:`RUN_TIME_NUMBERS`, values from :func:`run_time_numbers`), and
  the input/target tables read their shape at run time (:func:`timed_array`).  Brian2 keys its
  Cython cache by the generated code text, so one compiled module then serves every scenario whose
  code differs only in these numbers.  cpp_standalone compiles every array size into its code
  anyway: there the numbers stay literals and the generated code is the same as with literals
  everywhere.
* The per-neuron values both families set the same way: surrogate-gradient flags, optimizer
  constants.

Exactness: a shared constant holds exactly the value the literal spelled (integers as ``int32``
like Brian2's integer literals, reals as the same double), and every expression keeps its shape,
so the arithmetic is unchanged.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from eprop_plugins import connectivity as cn

from .grid_loops import grid_codeobject_class

__all__ = ["BIG", "PlasticNetwork", "ProjectionSynapses", "projection_synapses", "network_synapses",
           "sparse_counts", "connectivity_fingerprint", "grid_codeobject", "is_standalone", "RUN_TIME_NUMBERS",
           "number", "declare_numbers", "run_time_numbers", "timed_array", "surrogate_flag_values",
           "optimizer_values", "as_variable_arrays", "fan_out"]

#: stands in for "no bound" in clip(); keeps every array finite
BIG = float(np.finfo(float).max)

#: shared constants that replace literals in runtime mode: name -> Brian2 type
RUN_TIME_NUMBERS = {
    "n_T": "integer",  # steps per sequence (update interval)
    "n_T1": "integer",  # T - 1
    "n_skip": "integer",  # T - T_L: steps of a sequence before the learning window
    "n_BT": "integer",  # batch * T: steps per iteration (original family)
    "n_BT_s": "integer",  # the same for synapses (Brian2 forbids a synaptic name of a postsynaptic variable)
    "n_N": "integer",  # steps of the run (event family)
    "n_B": "integer",  # batch size
    "n_avg": "1",  # T_L if the gradient is averaged, else 1.0 (x/1.0 == x)
    "batch_m1": "1",  # batch - 1, as a real
    "batch_f": "1",  # batch, as a real
    "dt_ms": "1",  # resolution (ms)
}


def is_standalone() -> bool:
    """True when the active Brian2 device is cpp_standalone."""
    from brian2.devices.cpp_standalone.device import CPPStandaloneDevice
    from brian2.devices.device import get_device

    return isinstance(get_device(), CPPStandaloneDevice)


def number(run_time: bool, name: str, literal: Any) -> str:
    """The code of one number: ``name`` (a shared constant, runtime mode) or the literal (cpp_standalone)."""
    return name if run_time else str(literal)


def declare_numbers(run_time: bool, *names: str) -> str:
    """Model lines of the shared constants ``names`` (nothing with literals)."""
    if not run_time:
        return ""
    return "".join(f"        {name} : {RUN_TIME_NUMBERS[name]} (shared, constant)\n" for name in names)


def run_time_numbers(st, dt: float) -> dict[str, int | float]:
    """Values of :data:`RUN_TIME_NUMBERS` for a structure of either family (exactly the literals' values).

    ``dt`` is the resolution (ms) the code was written for.
    """
    window = getattr(st, "window", st.steps)
    return {
        "n_T": st.steps, "n_T1": st.steps - 1, "n_skip": st.steps - window,
        "n_BT": st.batch * st.steps, "n_BT_s": st.batch * st.steps,
        "n_N": st.sequences * st.steps, "n_B": st.batch,
        "n_avg": float(window) if getattr(st, "average_gradient", False) else 1.0,
        "batch_m1": float(st.batch - 1), "batch_f": float(st.batch), "dt_ms": float(dt),
    }


def timed_array(values: np.ndarray, dt, name: str, run_time_shape: bool):
    """A Brian2 ``TimedArray``; with ``run_time_shape`` its Cython code reads its shape at run time.

    Brian2 writes the number of rows and columns into a TimedArray's Cython code; here they come from
    a small ``int32`` array beside the values instead, so that the code does not depend on the run
    length or the number of neurons.  Same index arithmetic, same clipping, same values read.
    """
    import brian2 as b2

    ta = b2.TimedArray(values, dt=dt, name=name)
    if not run_time_shape:
        return ta
    shape = np.array(ta.values.shape if ta.values.ndim == 2 else (ta.values.shape[0], 1), dtype=np.int32)
    flat = ta.values.astype(np.double, order="C", copy=False).ravel()  # a view: updates reach the code
    dt_s = float(ta.dt)

    def code(owner):
        from brian2.input.timedarray import _find_K

        k = _find_K(owner.clock.dt_, dt_s)
        args, column, bad = ("const double t, const int i", "i", "i < 0 or i >= _ncols") if ta.values.ndim == 2 \
            else ("const double t", "0", "False")
        return f"""
        cdef double {name}({args}):
            global _namespace{name}_values
            global _namespace{name}_shape
            cdef int _nrows = _namespace{name}_shape[0]
            cdef int _ncols = _namespace{name}_shape[1]
            cdef double epsilon = {dt_s:.18f} / {k}
            if {bad}:
                return _numpy.nan
            cdef int timestep = (int)((t/epsilon + 0.5)/{k})
            if timestep < 0:
               timestep = 0
            elif timestep >= _nrows:
                timestep = _nrows-1
            return _namespace{name}_values[timestep*_ncols + {column}]
        """

    ta.implementations.add_dynamic_implementation(
        "cython", code, namespace=lambda owner: {f"{name}_values": flat, f"{name}_shape": shape}, name=name)
    return ta


def grid_codeobject(n_pre: int, n_post: int, no_diagonal: bool, dense: bool = True):
    """cpp_standalone: the grid-loop code object of the per-step synapse traces (None: Brian2's default).

    The per-step eligibility-trace pass is most of the run time; over the (pre, post) grid its
    inner loop reads contiguous memory and vectorises, with bit-identical results (:mod:`.grid_loops`).
    A sparse projection (``dense`` False) has no grid: Brian2's flat loop over its synapses.
    """
    if not is_standalone() or not dense:
        return None
    return grid_codeobject_class(n_pre, n_post, no_diagonal)


def surrogate_flag_values(rec, surrogates: tuple[str, ...], c) -> dict[Any, np.ndarray]:
    """Per-neuron 0/1 flags ``sg_<name>`` of the surrogate functions (only with more than one in use).

    ``c`` is :func:`eprop_plugins.reference.common.recurrent_constants` of the scenario.
    """
    if len(surrogates) <= 1:
        return {}
    values = {}
    for name in surrogates:
        flags = np.zeros(rec.N)
        for fname, idx in c.surrogate_groups:
            if fname == name:
                flags[idx] = 1.0
        values[getattr(rec, f"sg_{name}")] = flags
    return values


def optimizer_values(groups, optimizer: dict) -> dict[Any, Any]:
    """The optimizer constants (read by the synapses as ``<name>_post``) on each postsynaptic group."""
    return {getattr(group, name): optimizer[name] for group in groups
            for name in ("eta", "beta_1", "beta_2", "epsilon", "w_min", "w_max")}


def as_variable_arrays(values: dict[Any, Any]) -> dict[Any, np.ndarray]:
    """Values broadcast to full arrays of each variable's size and dtype (what the sessions assign)."""
    return {k: np.broadcast_to(np.asarray(val, dtype=k.variable.dtype), (k.variable.size,)).copy()
            for k, val in values.items()}


@dataclass(frozen=True, eq=False)
class ProjectionSynapses:
    """The synapses of one plastic projection in Brian2's creation order: pre-major.

    Dense projections are all-to-all (the recurrent one without autapses): synapse
    ``pre * n_post + post`` (recurrent: the diagonal left out), the order the grid loops
    (:mod:`brian2_ext.grid_loops`) require.  Sparse projections hold the listed pairs only, sorted by
    ``(pre, post)``.  Weights and snapshots of a sparse projection are vectors in the canonical
    connection order of :mod:`eprop_plugins.connectivity` (sorted by ``(post, pre)``); ``canonical``
    maps between the two orders.

    Attributes
    ----------
    name : str
        ``in``, ``rec`` or ``out``.
    n_pre, n_post : int
        Sizes of the pre- and postsynaptic groups.
    pre, post : ndarray of int
        Indices of every synapse in creation order (int32 for a sparse projection).
    sparse : bool
        A connection list (False: every pair).
    canonical : ndarray of int32 or None
        Sparse: the canonical position of each synapse (``weights[canonical]`` puts a canonical
        vector into creation order).
    row_start : ndarray of int64
        ``(n_pre + 1,)``: the synapses of presynaptic neuron ``p`` are ``row_start[p]:row_start[p + 1]``.
    """

    name: str
    n_pre: int
    n_post: int
    pre: np.ndarray
    post: np.ndarray
    sparse: bool
    canonical: np.ndarray | None
    row_start: np.ndarray = field(repr=False)

    def __len__(self) -> int:
        return int(self.pre.size)

    def index(self, pre: Any, post: Any) -> np.ndarray:
        """Creation-order indices of the synapses ``(pre, post)`` (KeyError: not a synapse)."""
        pre, post = np.asarray(pre, dtype=np.int64), np.asarray(post, dtype=np.int64)
        if not self.sparse:
            if self.name == "rec":
                return pre * (self.n_post - 1) + np.where(post < pre, post, post - 1)
            return pre * self.n_post + post
        keys = self.pre.astype(np.int64) * self.n_post + self.post
        want = pre * self.n_post + post
        idx = np.minimum(np.searchsorted(keys, want), max(keys.size - 1, 0))
        if not keys.size or np.any(keys[idx] != want):
            raise KeyError(f"{self.name}: a (pre, post) pair that is not a synapse")
        return idx

    def in_order(self, weights: Any) -> np.ndarray:
        """Per-synapse values in creation order: from a ``[post, pre]`` matrix (dense) or, sparse, a
        :class:`~eprop_plugins.connectivity.SparseWeights` or a vector in the canonical order."""
        if not self.sparse:
            return np.ascontiguousarray(np.asarray(weights, dtype=float)[self.post, self.pre])
        values = weights.weight if cn.is_sparse(weights) else np.asarray(weights, dtype=float)
        return np.ascontiguousarray(values[self.canonical])

    def snapshot(self, values: np.ndarray) -> np.ndarray:
        """Per-synapse values (creation order) as a Result stores them: ``[post, pre]`` matrix (dense,
        0 on the recurrent diagonal) or a vector in the canonical connection order (sparse)."""
        if not self.sparse:
            mat = np.zeros((self.n_post, self.n_pre))
            mat[self.post, self.pre] = values
            return mat
        out = np.empty(len(self))
        out[self.canonical] = values
        return out

    def connection_pairs(self) -> np.ndarray:
        """``(2, n)`` canonical ``(post, pre)`` pairs (``Result.weight_connections``)."""
        pairs = np.empty((2, len(self)), dtype=np.int64)
        pairs[0, self.canonical], pairs[1, self.canonical] = self.post, self.pre
        return pairs

    def outgoing(self, pres: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For presynaptic spikes ``pres``: (spike of each transmission, its synapse), every synapse of
        each spiking neuron once."""
        return fan_out(self.row_start, pres)


def fan_out(row_start: np.ndarray, pres: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(spike of each transmission, position of its synapse) of presynaptic spikes ``pres``, for synapses
    grouped by presynaptic neuron: those of neuron ``p`` are positions ``row_start[p] .. row_start[p + 1] - 1``."""
    pres = np.asarray(pres, dtype=np.int64)
    start = row_start[pres]
    count = row_start[pres + 1] - start
    spike = np.repeat(np.arange(pres.size), count)
    first = np.repeat(np.cumsum(count) - count, count)
    return spike, np.repeat(start, count) + (np.arange(spike.size) - first)


def projection_synapses(name: str, w: Any, n_pre: int, n_post: int) -> ProjectionSynapses:
    """The synapses of projection ``name`` for weights ``w`` (``[post, pre]``: a dense matrix or None,
    every pair; a SparseWeights, its pairs)."""
    sparse = w is not None and cn.is_sparse(w)
    if not sparse:
        pre, post = np.repeat(np.arange(n_pre), n_post), np.tile(np.arange(n_post), n_pre)
        if name == "rec":
            keep = pre != post
            pre, post = pre[keep], post[keep]
        canonical = None
    else:
        post_c, pre_c, _ = cn.connections(w, autapses=name != "rec")
        # Brian2 holds int32 indices: 12 bytes per synapse here instead of 24 (2.5 M synapses: 30 MB)
        canonical = np.lexsort((post_c, pre_c)).astype(np.int32)
        pre, post = pre_c[canonical].astype(np.int32), post_c[canonical].astype(np.int32)
    row_start = np.searchsorted(pre, np.arange(n_pre + 1)).astype(np.int64)
    return ProjectionSynapses(name, int(n_pre), int(n_post), pre, post, sparse, canonical, row_start)


def network_synapses(sc) -> dict[str, ProjectionSynapses]:
    """The synapses of a validated scenario's three plastic projections."""
    sizes = {"in": (sc.n_in, sc.n_rec), "rec": (sc.n_rec, sc.n_rec), "out": (sc.n_rec, sc.n_out)}
    return {name: projection_synapses(name, w, *sizes[name]) for name, w in sc.projections().items()}


def sparse_counts(sc) -> tuple[tuple[str, int], ...]:
    """``(projection, number of synapses)`` of a scenario's sparse projections (empty: all dense)."""
    return tuple((name, cn.n_connections(w, autapses=name != "rec")) for name, w in sc.projections().items()
                 if cn.is_sparse(w))


def connectivity_fingerprint(synapses: dict[str, ProjectionSynapses] | None) -> str:
    """Hash of the sparse projections' pairs ('' if all are dense): equal only for equal connections."""
    if not synapses or not any(s.sparse for s in synapses.values()):
        return ""
    h = hashlib.sha256()
    for name in sorted(synapses):
        s = synapses[name]
        if s.sparse:
            h.update(name.encode())
            h.update(np.ascontiguousarray(s.pre, dtype=np.int64).tobytes())
            h.update(np.ascontiguousarray(s.post, dtype=np.int64).tobytes())
    return h.hexdigest()[:16]


class PlasticNetwork:
    """Synapse bookkeeping of the e-prop projections (base of both families' networks).

    Subclasses set ``st`` (sizes), call :meth:`_use_synapses` and create ``s_in``, ``s_rec`` (None without recurrent
    synapses), ``s_out`` in that creation order.
    """

    st: Any
    synapses: dict[str, ProjectionSynapses]

    @staticmethod
    def _schedule_summed(syn, order: int) -> None:
        # the sums need this step's readout values: run them after the readout update
        for updater in syn.summed_updaters.values():
            updater.when = "after_synapses"
            updater.order = order

    def _use_synapses(self, synapses: dict[str, ProjectionSynapses] | None) -> None:
        """Take the scenario's synapses (None: every projection dense)."""
        st = self.st
        if synapses is None:
            sizes = {"in": (st.n_in, st.n_rec), "rec": (st.n_rec, st.n_rec), "out": (st.n_rec, st.n_out)}
            synapses = {name: projection_synapses(name, None, n_pre, n_post) for name, (n_pre, n_post) in sizes.items()}
        self.synapses = synapses

    def _synapses(self, proj: str, source, target, model: str, order: int, **kwargs):
        """The Synapses of projection ``proj`` connected as :attr:`synapses` lists (None: it has none).

        ``order``: the slot of its spike propagation (``pre.order``); ``kwargs`` go to ``Synapses``.
        """
        import brian2 as b2

        syn = self.synapses[proj]
        if not len(syn):
            return None
        s = b2.Synapses(source, target, model, **kwargs)
        s.connect(i=syn.pre, j=syn.post)
        s.pre.order = order
        return s

    def synapse_index(self, proj: str, pre: int, post: int) -> int:
        """Index of one synapse in its Synapses object (creation order)."""
        return int(self.synapses[proj].index(pre, post))

    def snapshot(self, proj: str, values: np.ndarray) -> np.ndarray:
        """Per-synapse values as a Result stores them (see :meth:`ProjectionSynapses.snapshot`)."""
        return self.synapses[proj].snapshot(values)

    def flat(self, proj: str, weights: Any) -> np.ndarray:
        """Weights (``[post, pre]`` matrix, or a sparse projection's weights) in synapse order."""
        return self.synapses[proj].in_order(weights)

    def feedback_values(self, fb: np.ndarray) -> dict[Any, np.ndarray]:
        """The initial feedback ``fb`` (``(n_rec, n_out)``, dense) on the synapses that carry it.

        The readout synapses (``B`` at readout synapse ``(pre j, post k)`` = ``fb[j, k]``), or the
        all-to-all feedback synapses ``s_fb`` (pre-major: synapse ``k * n_rec + j``).
        """
        fb = np.asarray(fb, dtype=float)
        if getattr(self, "s_fb", None) is not None:
            return {self.s_fb.B: np.ascontiguousarray(fb.T).reshape(-1)}
        out = self.synapses["out"]
        if self.s_out is None:  # no readout synapses, symmetric feedback: no B anywhere
            return {}
        return {self.s_out.B: np.ascontiguousarray(fb.T[out.post, out.pre])}

    def _set_numbers(self, numbered, dt: float) -> None:
        """Runtime mode: assign the run-time numbers; ``numbered`` lists (Brian2 object, names it declares)."""
        nums = run_time_numbers(self.st, dt)
        for obj, names in numbered:
            if obj is not None:
                for name in names:
                    setattr(obj, name, nums[name])
