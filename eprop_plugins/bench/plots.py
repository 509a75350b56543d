"""PNG plots of a benchmark report: time per iteration, memory against T, scaling."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

__all__ = ["write_plots", "PLOT_FILES"]

#: the files :func:`write_plots` writes (when the report has the section)
PLOT_FILES = ("bench_iteration.png", "bench_memory.png", "bench_scaling.png")


def write_plots(report: dict, out: Path) -> list[str]:
    """Write the plots of the sections present in ``report`` into ``out``; return their paths."""
    import matplotlib

    matplotlib.use("Agg")  # files only
    import matplotlib.pyplot as plt

    from ..cache import atomic_write

    written = []

    def save(fig, name):
        buf = io.BytesIO()
        fig.tight_layout()
        fig.savefig(buf, format="png", dpi=110)
        plt.close(fig)
        written.append(str(atomic_write(out / name, buf.getvalue())))

    if report.get("iteration"):
        rows = [r for r in report["iteration"] if r["per_iteration_s"]["median"]]
        groups = sorted({(r["task"], r["family"]) for r in rows})
        names = list(dict.fromkeys(r["backend"] for r in rows))
        fig, ax = plt.subplots(figsize=(7, 3.5))
        width = 0.8 / max(len(names), 1)
        for j, name in enumerate(names):
            ys, errs = [], [[], []]
            for g in groups:
                r = next((r for r in rows if (r["task"], r["family"]) == g and r["backend"] == name), None)
                s = r["per_iteration_s"] if r else {"median": np.nan, "min": np.nan, "max": np.nan}
                ys.append(s["median"])
                errs[0].append(s["median"] - s["min"])
                errs[1].append(s["max"] - s["median"])
            ax.bar(np.arange(len(groups)) + j * width, ys, width, yerr=errs, label=name)
        ax.set_xticks(np.arange(len(groups)) + 0.4 - width / 2, [f"{t}\n{f}" for t, f in groups])
        ax.set_yscale("log")
        ax.set_ylabel("s per iteration (median, min-max)")
        ax.legend(fontsize=7)
        save(fig, "bench_iteration.png")
    if report.get("memory"):
        fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
        for name, family in dict.fromkeys((r["backend"], r["family"]) for r in report["memory"]):
            ok = [r for r in report["memory"] if r["backend"] == name and r["family"] == family and "error" not in r]
            if not ok:
                continue
            T = [r["sequence_steps"] for r in ok]
            style = "o-" if family == "original" else "s--"
            axes[0].plot(T, [r["peak_rss_mb"] for r in ok], style, label=f"{name} ({family})")
            growth = [r.get("traced_peak_mb", r["memory_mb"]) for r in ok]
            axes[1].plot(T, np.maximum(growth, 0.1), style, label=f"{name} ({family})")
        for ax, lab in zip(axes, ("peak RSS of the process (MB)",
                                  "MB above baseline (bptt: tracemalloc)")):
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel("sequence length T (steps)")
            ax.set_ylabel(lab)
        axes[0].legend(fontsize=7)
        save(fig, "bench_memory.png")
    if report.get("scaling"):
        fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
        keys = dict.fromkeys((r["backend"], r["family"]) for r in report["scaling"])
        for name, family in keys:
            pts = [(r["n_rec"], r["s_per_simulated_s"], r["peak_rss_mb"]) for r in report["scaling"]
                   if r["backend"] == name and r["family"] == family and "error" not in r]
            if pts:
                n, t, m = zip(*pts)
                style = "o-" if family == "original" else "s--"
                axes[0].plot(n, t, style, label=f"{name} ({family})")
                axes[1].plot(n, m, style, label=f"{name} ({family})")
        density = next((r.get("density") for r in report["scaling"] if r.get("density")), None)
        for ax, lab in zip(axes, ("s per simulated s", "peak RSS of the process (MB)")):
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel(f"recurrent neurons ({100 * density:g} % connected)" if density else "recurrent neurons")
            ax.set_ylabel(lab)
        axes[0].legend(fontsize=7)
        save(fig, "bench_scaling.png")
    return written
