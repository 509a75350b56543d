"""Per-scenario figures of the validation report: overlaid traces and per-step errors (PNG files).

Called by the runner's ``on_scenario`` hook while the results are in memory (:class:`PlotHook`,
picklable, so that worker processes draw their own scenarios).  Matplotlib with the Agg backend only
(no display needed); every PNG is written atomically (:func:`eprop_plugins.cache.atomic_write`).
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from eprop_plugins.cache import atomic_write
from eprop_plugins.results import Result
from eprop_plugins.scenario import Scenario

__all__ = ["plot_scenario", "PlotHook", "ERROR_FLOOR", "PLOTTED", "for_plots"]

#: Errors below this are drawn at this value (log axis; exact agreement would be invisible).
ERROR_FLOOR = 1e-17
#: At most this many steps are drawn in the trace figure (long task scenarios are windowed).
MAX_STEPS = 1000
#: At most this many points per line in the error figure: longer runs are drawn as the maximum of each
#: bin of steps, so that no error peak is lost.
MAX_POINTS = 1500

_COLORS = ("tab:red", "tab:blue", "tab:green", "tab:orange", "tab:purple", "tab:brown", "tab:pink", "tab:olive")


def _binned_max(err: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(first step of each bin, largest error in it) with at most :data:`MAX_POINTS` bins."""
    if err.size <= MAX_POINTS:
        return np.arange(err.size), err
    width = -(-err.size // MAX_POINTS)
    padded = np.full(width * (-(-err.size // width)), -np.inf)
    padded[: err.size] = err
    return np.arange(0, err.size, width), padded.reshape(-1, width).max(axis=1)


def _window(n_steps: int, focus: int | None) -> slice:
    if n_steps <= MAX_STEPS:
        return slice(0, n_steps)
    if focus is None:
        return slice(0, MAX_STEPS)
    lo = max(0, min(focus - MAX_STEPS // 2, n_steps - MAX_STEPS))
    return slice(lo, lo + MAX_STEPS)


#: what :func:`plot_scenario` draws from a backend's result: per-step traces and synapse traces
PLOTTED = {"traces": ("v", "learning_signal", "y"), "synapse_traces": ("ebar",)}


def for_plots(result: Result) -> Result:
    """A copy of ``result`` holding only what the figures draw (:data:`PLOTTED`), to keep memory flat.

    The validation keeps each backend's result until the scenario's figures are drawn; a long task's
    weight events and traces would otherwise add up over the backends.
    """
    return Result(scenario=result.scenario, family=result.family, backend=result.backend, losses=result.losses,
                  traces={k: result.traces[k] for k in PLOTTED["traces"] if k in result.traces},
                  synapse_traces={k: result.synapse_traces[k] for k in PLOTTED["synapse_traces"]
                                  if k in result.synapse_traces},
                  meta=dict(result.meta))


class PlotHook:
    """The runner's ``on_scenario`` hook: draw into ``root / subdir`` and list the files in the outcome."""

    def __init__(self, root: Path, subdir: str = "plots"):
        self.root = Path(root)
        self.subdir = subdir

    def __call__(self, sc: Scenario, outcome, ref: Result | None, results: dict[str, Result]) -> None:
        files = plot_scenario(sc, outcome, ref, results, self.root / self.subdir)
        outcome.plots.extend(f"{self.subdir}/{f}" for f in files)


def _save(fig, path: Path) -> None:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80)
    atomic_write(path, buffer.getvalue())


def plot_scenario(sc: Scenario, outcome, ref: Result | None, results: dict[str, Result], directory: Path) -> list[str]:
    """Draw the figures of one scenario into ``directory``; return their file names.

    Parameters
    ----------
    sc : Scenario
        The validated scenario.
    outcome : ScenarioOutcome
        Its cells (the comparisons give the focus step and the per-step errors).
    ref : Result or None
        The reference result (None: nothing to draw).
    results : dict
        Backend name -> Result of the backends that ran.
    directory : Path
        Where the PNGs go.
    """
    if ref is None:
        return []
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    directory.mkdir(parents=True, exist_ok=True)
    files = []
    # the earliest failure (if any) chooses the neuron and the window
    focus_step, focus_neuron = None, None
    for cell in outcome.cells.values():
        ff = cell.comparison.first_failure if cell.comparison else None
        if ff and ff.get("step") is not None and (focus_step is None or ff["step"] < focus_step):
            focus_step = ff["step"]
            if ff.get("quantity") in ("spikes", "traces/v", "traces/psi", "traces/learning_signal"):
                focus_neuron = ff.get("index")
    z = np.asarray(ref.traces.get("z", np.zeros((sc.n_steps, 1))))
    j = focus_neuron if focus_neuron is not None and focus_neuron < z.shape[1] else int(np.argmax(z.sum(axis=0)))
    win = _window(sc.n_steps, focus_step)
    t = np.arange(sc.n_steps)[win]

    panels = [("v", j, f"recurrent v, neuron {j} [mV]"),
              ("learning_signal", j, f"learning signal L, neuron {j} [mV]"),
              ("y", 0, "readout 0: y (lines) and target (grey)")]
    if ref.synapse_traces.get("ebar") is not None and np.size(ref.synapse_traces["ebar"]):
        p, pre, post = sc.record_synapses[0]
        panels.append(("ebar", 0, f"e-bar of synapse {p} {pre}->{post}"))
    fig, axes = plt.subplots(len(panels), 1, figsize=(10, 2.1 * len(panels)), sharex=True, squeeze=False)
    for ax, (key, col, title) in zip(axes[:, 0], panels):
        source = "synapse_traces" if key == "ebar" else "traces"
        r = getattr(ref, source).get(key)
        if r is None:
            ax.set_title(f"{title}: not recorded by the reference", fontsize=9)
            continue
        if key == "y":
            ax.plot(t, np.asarray(ref.traces["target"])[win, col], color="0.6", lw=2.5, label="target")
        ax.plot(t, np.asarray(r)[win, col], color="k", lw=1.2, label="reference")
        for i, (name, res) in enumerate(results.items()):
            g = getattr(res, source).get(key)
            if g is not None and np.shape(g) == np.shape(r):
                ax.plot(t, np.asarray(g)[win, col], ls="--", lw=1.0, color=_COLORS[i % len(_COLORS)], label=name)
        if key == "v":
            spikes = np.nonzero(z[win, j])[0]
            ax.plot(t[spikes], np.full(spikes.size, np.nanmax(np.asarray(r)[win, col])), "|", color="k", ms=6)
        if focus_step is not None and win.start <= focus_step < win.stop:
            ax.axvline(focus_step, color="red", lw=0.8, ls=":")
        ax.set_title(title, fontsize=9, loc="left")
        ax.tick_params(labelsize=8)
    axes[0, 0].legend(fontsize=7, ncol=4, loc="upper right")
    axes[-1, 0].set_xlabel(f"aligned step (dt = {sc.dt:g} ms)" + ("" if win.stop - win.start == sc.n_steps else
                                                                   f", steps {win.start}-{win.stop - 1} of {sc.n_steps}"))
    fig.suptitle(f"{sc.name}: traces, reference vs backends", fontsize=10)
    height = fig.get_figheight()
    fig.subplots_adjust(left=0.08, right=0.98, bottom=0.5 / height, top=1 - 0.45 / height, hspace=0.4)
    name = f"{sc.name}-traces.png"
    _save(fig, directory / name)
    plt.close(fig)
    files.append(name)

    compared = {b: c.comparison for b, c in outcome.cells.items() if c.comparison is not None}
    if compared:
        cmap = plt.get_cmap("tab20")
        fig, axes = plt.subplots(len(compared), 1, figsize=(11, 2.6 * len(compared) + 0.6), sharex=True, squeeze=False)
        for ax, (bname, cmp) in zip(axes[:, 0], compared.items()):
            for i, q in enumerate(x for x in cmp.quantities if x.per_step_err is not None):
                steps, err = _binned_max(np.maximum(q.per_step_err, ERROR_FLOOR))
                ax.semilogy(steps, err, lw=0.8, color=cmap(i % 20), label=q.name.split("/", 1)[1])
            ax.axhline(cmp.rtol, color="k", ls="--", lw=0.8, label="rtol")
            if cmp.horizon < sc.n_steps:
                ax.axvline(cmp.horizon, color="red", lw=1.0, label="first spike\nmismatch")
            ax.set_ylim(ERROR_FLOOR / 2, 10)
            ax.set_xlim(0, sc.n_steps)
            ax.set_title(f"{bname}: |backend - reference| / max|reference| per step ({cmp.status})", fontsize=9, loc="left")
            ax.tick_params(labelsize=8)
            ax.legend(fontsize=6, ncol=1, loc="upper left", bbox_to_anchor=(1.005, 1.0))
        axes[-1, 0].set_xlabel("aligned step")
        fig.suptitle(f"{sc.name}: relative errors (values at {ERROR_FLOOR:g} are exact agreement)", fontsize=10)
        # fixed margins, room on the right for the legends (tight_layout measured every text: 40 % of the time)
        height = fig.get_figheight()
        fig.subplots_adjust(left=0.07, right=0.84, bottom=0.45 / height, top=1 - 0.5 / height, hspace=0.45)
        name = f"{sc.name}-errors.png"
        _save(fig, directory / name)
        plt.close(fig)
        files.append(name)
    return files
