"""What the Brian2 networks of both e-prop families share (imports neither family module).

* :class:`AllToAllNetwork`: synapse order, dense/flat conversions and summed-variable scheduling of
  the all-to-all projections (``in``, ``rec`` without autapses, ``out``), created pre-major.
* :func:`grid_codeobject`: the cpp_standalone grid loop of the per-step synapse traces.
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

from typing import Any

import numpy as np

from .grid_loops import grid_codeobject_class

__all__ = ["BIG", "AllToAllNetwork", "grid_codeobject", "is_standalone", "RUN_TIME_NUMBERS", "number",
           "declare_numbers", "run_time_numbers", "timed_array", "surrogate_flag_values", "optimizer_values",
           "as_variable_arrays"]

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


def grid_codeobject(n_pre: int, n_post: int, no_diagonal: bool):
    """cpp_standalone: the grid-loop code object of the per-step synapse traces (None: Brian2's default).

    The per-step eligibility-trace pass is most of the run time; over the (pre, post) grid its
    inner loop reads contiguous memory and vectorises, with bit-identical results (:mod:`.grid_loops`).
    """
    if not is_standalone():
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


class AllToAllNetwork:
    """Synapse bookkeeping of the all-to-all e-prop projections (base of both families' networks).

    Subclasses create ``s_in``, ``s_rec`` (None for a single neuron), ``s_out`` pre-major and set
    ``st`` (sizes), ``in_pre``/``in_post``, ``rec_pre``/``rec_post``, ``out_pre``/``out_post``.
    """

    st: Any

    @staticmethod
    def _schedule_summed(syn, order: int) -> None:
        # the sums need this step's readout values: run them after the readout update
        for updater in syn.summed_updaters.values():
            updater.when = "after_synapses"
            updater.order = order

    def synapse_index(self, proj: str, pre: int, post: int) -> int:
        """Index of one synapse in its Synapses object (creation order: pre-major)."""
        if proj == "in":
            return pre * self.st.n_rec + post
        if proj == "rec":
            return pre * (self.st.n_rec - 1) + (post if post < pre else post - 1)
        return pre * self.st.n_out + post

    def _pairs(self, proj: str) -> tuple[np.ndarray, np.ndarray]:
        return {"in": (self.in_pre, self.in_post), "rec": (self.rec_pre, self.rec_post),
                "out": (self.out_pre, self.out_post)}[proj]

    def dense(self, proj: str, values: np.ndarray) -> np.ndarray:
        """Synaptic values as a ``[post, pre]`` matrix."""
        n = {"in": (self.st.n_rec, self.st.n_in), "rec": (self.st.n_rec, self.st.n_rec),
             "out": (self.st.n_out, self.st.n_rec)}[proj]
        pre, post = self._pairs(proj)
        mat = np.zeros(n)
        mat[post, pre] = values
        return mat

    def flat(self, proj: str, matrix: np.ndarray) -> np.ndarray:
        """A ``[post, pre]`` matrix in synapse order."""
        pre, post = self._pairs(proj)
        return np.ascontiguousarray(np.asarray(matrix, dtype=float)[post, pre])

    def _connect_all_to_all(self) -> None:
        """Pre-major index pairs of the three projections (recurrent: without autapses)."""
        n_in, n_rec, n_out = self.st.n_in, self.st.n_rec, self.st.n_out
        self.in_pre, self.in_post = np.repeat(np.arange(n_in), n_rec), np.tile(np.arange(n_rec), n_in)
        pre, post = np.repeat(np.arange(n_rec), n_rec), np.tile(np.arange(n_rec), n_rec)
        keep = pre != post
        self.rec_pre, self.rec_post = pre[keep], post[keep]
        self.out_pre, self.out_post = np.repeat(np.arange(n_rec), n_out), np.tile(np.arange(n_out), n_rec)

    def _set_numbers(self, numbered, dt: float) -> None:
        """Runtime mode: assign the run-time numbers; ``numbered`` lists (Brian2 object, names it declares)."""
        nums = run_time_numbers(self.st, dt)
        for obj, names in numbered:
            if obj is not None:
                for name in names:
                    setattr(obj, name, nums[name])
