"""Per-step weight recordings read in windows of steps, so that a long run never holds all of them.

The event family's weight events are the weight each transmitted spike carried: a ``StateMonitor``
records the weight of every synapse at every step and the events are read from it afterwards.  For
the evidence-accumulation task (14 200 synapses, 11 250 steps) that recording alone is 1.28 GB
(``8 * synapses * steps`` bytes).  Here it is read in windows of :func:`window_steps` steps:

* runtime mode (Cython or NumPy): a ``NetworkOperation`` (:meth:`WeightWindows.operation`), at the
  start of every ``steps``-th step, hands the window's columns to ``on_window`` and empties the
  monitors (``StateMonitor.resize(0)`` keeps the buffer: it grows, by Brian2's doubling, in the first
  window only, to at most twice the window).  The monitors are never enlarged from outside a run:
  tried (reserving the window's rows before the run: ``resize(steps)``, then ``resize(0)``), it left
  another monitor of the network without any recording; shrinking does not move the buffer;
  :meth:`WeightWindows.finish` hands over the rest after the last run;
* cpp_standalone: the binary writes the whole recording to its results file, which
  :func:`read_standalone_windows` reads in blocks of rows instead of all at once.

Either way ``on_window(first, blocks)`` receives ``blocks[key]``, an ``(n_synapses, n)`` array of the
monitor ``key``'s values at the Brian2 steps ``first .. first + n - 1`` (column ``c`` is step
``first + c``), valid only during the call.  The numbers are those of the whole recording: the
windows only change when they are read.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Hashable, Mapping

import numpy as np

__all__ = ["WINDOW_BYTES", "window_steps", "WeightWindows", "read_standalone_windows"]

#: most bytes the per-step weight monitors of one network hold at once
WINDOW_BYTES = 64 * 1024 * 1024

OnWindow = Callable[[int, dict[Hashable, np.ndarray]], None]


def window_steps(n_synapses: int, budget: int | None = None) -> int:
    """Steps per window: the most whose float64 weights of ``n_synapses`` synapses fit in ``budget`` bytes
    (default :data:`WINDOW_BYTES`), at least 1."""
    return max(1, (WINDOW_BYTES if budget is None else budget) // (8 * max(1, n_synapses)))


class WeightWindows:
    """Empty the per-step monitors ``monitors`` (variable ``variable``) every ``steps`` steps of a runtime run.

    Parameters
    ----------
    monitors : mapping of key to brian2.StateMonitor
        Monitors with ``record=True`` and the network's clock (one column per step from step 0).
    variable : str
        The recorded variable (e.g. ``"w"``).
    on_window : callable
        ``on_window(first, blocks)``, see the module docstring.
    budget : int, optional
        Bytes of all monitors together per window (default :data:`WINDOW_BYTES`).
    """

    def __init__(self, monitors: Mapping[Hashable, Any], variable: str, on_window: OnWindow,
                 budget: int | None = None) -> None:
        self.monitors = dict(monitors)
        self.variable = variable
        self.on_window = on_window
        self.steps = window_steps(sum(len(m.record) for m in self.monitors.values()), budget)
        self.first = 0  # Brian2 step of the monitors' column 0
        self._step = 0  # the step whose start the operation is at

    def operation(self, name: str = "eprop_weight_windows") -> Any:
        """The ``NetworkOperation`` to add to the network before its first run.

        It runs at the start of every step, on the monitors' clock, and empties the monitors when they
        hold a window.  (A clock of its own, ``steps`` times longer, would be called less often, but
        Brian2 rounds a run shorter than 0.01 % of a clock's step to no step of that clock and then, if
        it happens to take that clock first, runs no step at all: measured on a 242-step run.)
        """
        import brian2 as b2

        clocks = {m.clock for m in self.monitors.values()}
        if len(clocks) > 1:
            raise ValueError("the weight monitors run on different clocks")
        kwargs = {"clock": clocks.pop()} if clocks else {}
        return b2.NetworkOperation(self._tick, when="start", name=name, **kwargs)

    def _tick(self) -> None:
        if self._step - self.first >= self.steps:
            self._flush()
        self._step += 1

    def _flush(self) -> None:
        if not self.monitors:
            return
        recorded = {len(m.t_) for m in self.monitors.values()}
        if recorded == {0}:
            return
        if len(recorded) != 1:
            raise RuntimeError(f"weight monitors recorded different numbers of steps: {sorted(recorded)}")
        (n,) = recorded
        self.on_window(self.first, {k: getattr(m, self.variable + "_") for k, m in self.monitors.items()})
        for mon in self.monitors.values():
            mon.resize(0)
        self.first += n

    def finish(self) -> None:
        """Hand over the steps recorded since the last window (call after the last run)."""
        self._flush()


def read_standalone_windows(device: Any, monitors: Mapping[Hashable, Any], variable: str, on_window: OnWindow,
                            budget: int | None = None) -> None:
    """Read the per-step monitors of a finished cpp_standalone run from their results files in windows.

    ``device`` is the ``CPPStandaloneDevice`` that ran them.  The files hold the ``(steps, n_synapses)``
    float64 recording row after row (Brian2's layout of a 2-D dynamic array); each window reads its rows only.
    """
    files = {}
    for key, mon in monitors.items():
        var = mon.variables[variable]
        if var.dtype != np.float64:
            raise TypeError(f"monitor {mon.name}: {variable} is {var.dtype}, not float64")
        path = os.path.join(device.results_dir, device.get_array_filename(var))
        width = len(mon.record)
        rows = os.path.getsize(path) // (8 * max(1, width))
        files[key] = (path, width, rows)
    rows = {r for _, _, r in files.values()}
    if len(rows) > 1:
        raise RuntimeError(f"weight monitors recorded different numbers of steps: {sorted(rows)}")
    total = rows.pop() if rows else 0
    steps = window_steps(sum(w for _, w, _ in files.values()), budget)
    handles = {k: open(p, "rb") for k, (p, _, _) in files.items()}
    try:
        for first in range(0, total, steps):
            n = min(steps, total - first)
            blocks = {}
            for key, (_, width, _) in files.items():
                f = handles[key]
                f.seek(8 * width * first)
                blocks[key] = np.fromfile(f, dtype=np.float64, count=n * width).reshape(n, width).T
            on_window(first, blocks)
    finally:
        for f in handles.values():
            f.close()
