"""The figures ``eprop train`` and ``eprop run`` write beside ``result.json``.

* ``losses.png``: the loss per iteration as a line (markers only for short runs), on a logarithmic
  axis when the positive losses span more than :data:`LOG_AXIS_DECADES` decades, with NEST's
  published losses where they exist;
* ``readout.png``: the readout signal against the target, in the first and in the last iteration;
* ``spikes.png``: a raster of the recurrent population's spikes in the same two iterations (the
  panels NEST's e-prop examples draw before and after training).

The last two need the run's per-step traces ``y`` and ``target`` (readout) and ``z`` (raster), see
:mod:`eprop_plugins.results`; a figure whose traces the run did not record (``traces=False``) is
not drawn, so such a run gets ``losses.png`` only.  Every file is written atomically (:func:`eprop_plugins.cache.atomic_write`).
"""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .cache import atomic_write

__all__ = ["LOG_AXIS_DECADES", "TRACES_NEEDED", "use_log_axis", "iteration_slices", "plot_losses",
           "plot_readout", "plot_spikes", "write_training_plots"]

#: losses spanning more decades than this are drawn on a logarithmic axis
LOG_AXIS_DECADES = 1.5
#: per-step traces the readout and raster figures are drawn from
TRACES_NEEDED = ("y", "target", "z")
#: runs with at most this many losses are drawn with a marker per iteration
MARKER_LIMIT = 30


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only, no display needed
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: Path, dpi: int = 120) -> Path:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    _pyplot().close(fig)
    return atomic_write(path, buf.getvalue())


def use_log_axis(losses: Sequence[float]) -> bool:
    """True if the finite positive losses span more than :data:`LOG_AXIS_DECADES` decades (and none is <= 0)."""
    x = np.asarray(losses, dtype=float)
    x = x[np.isfinite(x)]
    if x.size < 2 or np.any(x <= 0):
        return False
    return math.log10(x.max() / x.min()) > LOG_AXIS_DECADES


def plot_losses(path: str | Path, losses: Sequence[float], title: str,
                reference: Sequence[float] | None = None) -> Path:
    """Write the loss per iteration (1-based) as a PNG.

    Parameters
    ----------
    path : path
        Destination file.
    losses : sequence of float
        Loss per iteration of this run.
    title : str
    reference : sequence of float, optional
        Published losses of the same set-up (NEST's), drawn dashed.
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    marker = "o" if len(losses) <= MARKER_LIMIT else None
    ax.plot(np.arange(1, len(losses) + 1), losses, marker=marker, markersize=3, linewidth=1.2, label="this run")
    if reference is not None and len(reference):
        ax.plot(np.arange(1, len(reference) + 1), reference, linestyle="--", marker="x" if marker else None,
                linewidth=1.0, label="NEST reference")
    if use_log_axis(list(losses) + list(reference or [])):
        ax.set_yscale("log")
    ax.set_xlabel("iteration")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return _save(fig, Path(path))


def iteration_slices(scenario) -> list[tuple[int, slice]]:
    """``(iteration index, step slice)`` of the first and (if different) the last iteration."""
    L = scenario.steps_per_sequence * scenario.iteration_sequences
    last = scenario.n_iterations - 1
    return [(i, slice(i * L, (i + 1) * L)) for i in sorted({0, last})]


def plot_readout(path: str | Path, scenario, traces: dict[str, np.ndarray], title: str) -> Path:
    """Readout signal ``y`` against ``target`` (each readout), first and last iteration, time in ms."""
    plt = _pyplot()
    parts = iteration_slices(scenario)
    fig, axes = plt.subplots(1, len(parts), figsize=(5.2 * len(parts), 3.4), squeeze=False, sharey=True)
    for ax, (it, sl) in zip(axes[0], parts):
        t = np.arange(sl.start, sl.stop) * scenario.dt
        for k in range(scenario.n_out):
            line, = ax.plot(t, traces["target"][sl, k], linestyle="--", linewidth=1.0,
                            label=f"target {k}" if scenario.n_out > 1 else "target")
            ax.plot(t, traces["y"][sl, k], color=line.get_color(), linewidth=1.2,
                    label=f"readout {k}" if scenario.n_out > 1 else "readout")
        ax.set_title(f"iteration {it + 1}")
        ax.set_xlabel("time (ms)")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("readout signal")
    axes[0][-1].legend(fontsize="small")
    fig.suptitle(title)
    fig.tight_layout()
    return _save(fig, Path(path))


def plot_spikes(path: str | Path, scenario, traces: dict[str, np.ndarray], title: str) -> Path:
    """Raster of the recurrent spikes ``z``, first and last iteration (neuron index against time in ms)."""
    plt = _pyplot()
    parts = iteration_slices(scenario)
    fig, axes = plt.subplots(1, len(parts), figsize=(5.2 * len(parts), 3.4), squeeze=False, sharey=True)
    for ax, (it, sl) in zip(axes[0], parts):
        steps, neurons = np.nonzero(np.asarray(traces["z"][sl]))
        ax.scatter((steps + sl.start) * scenario.dt, neurons, s=1.5, marker="|", linewidths=0.6, color="black")
        ax.set_xlim(sl.start * scenario.dt, sl.stop * scenario.dt)
        ax.set_ylim(-0.5, scenario.n_rec - 0.5)
        ax.set_title(f"iteration {it + 1}: {steps.size} spikes")
        ax.set_xlabel("time (ms)")
    axes[0][0].set_ylabel("recurrent neuron")
    fig.suptitle(title)
    fig.tight_layout()
    return _save(fig, Path(path))


def write_training_plots(out: str | Path, scenario, losses: Sequence[float], traces: dict[str, np.ndarray],
                         title: str, reference: Sequence[float] | None = None) -> list[str]:
    """Write ``losses.png`` and, if the traces are there, ``readout.png`` and ``spikes.png`` into ``out``.

    Parameters
    ----------
    out : path
        Output directory (created if missing).
    scenario : Scenario
        The validated scenario that was run.
    losses : sequence of float
        The losses to draw.
    traces : dict of ndarray
        ``Result.traces`` of the run (may be empty).
    title : str
    reference : sequence of float, optional
        Published losses to draw beside ``losses``.

    Returns
    -------
    list of str
        Names of the files written.
    """
    out = Path(out)
    written = [plot_losses(out / "losses.png", losses, title, reference).name]
    def recorded(*names: str) -> bool:
        return all(k in traces and len(traces[k]) >= scenario.n_steps for k in names)

    if recorded("y", "target"):
        written.append(plot_readout(out / "readout.png", scenario, traces, title).name)
    if recorded("z"):
        written.append(plot_spikes(out / "spikes.png", scenario, traces, title).name)
    return written
