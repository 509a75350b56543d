"""reStructuredText tables of a benchmark report (what docs/benchmarks.rst shows): ``eprop bench --tables FILE``."""

from __future__ import annotations

from typing import Any

__all__ = ["rst_table", "report_tables"]


def rst_table(header: list[str], rows: list[list[str]]) -> str:
    """A simple reStructuredText table (columns as wide as their widest cell)."""
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows)]
    rule = "  ".join("=" * w for w in widths)
    fmt = lambda cells: "  ".join(str(c).ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    return "\n".join([rule, fmt(header), rule, *(fmt(r) for r in rows), rule])


def _f(x: Any, digits: int = 3) -> str:
    return "-" if x is None else f"{x:.{digits}g}" if abs(x) < 1000 else f"{x:.0f}"


def _load(rows: list[dict]) -> str:
    vals = [r["load_average"][0] for r in rows if r.get("load_average")]
    return f"{min(vals):.1f}–{max(vals):.1f}" if vals else "-"


def report_tables(report: dict) -> str:
    """All tables of the sections present in ``report``, each under a one-line heading."""
    parts = []
    if report.get("iteration"):
        rows = []
        for r in report["iteration"]:
            s = r["per_iteration_s"]
            rows.append([r["task"], r["family"], f"``{r['backend']}``", _f(s["median"], 4),
                         f"{_f(s['min'], 3)} … {_f(s['max'], 3)}", str(s["n"]), _f(r["ratio_vs_nest_builtin"], 3),
                         _f(r["startup_s"]["median"], 2), "; ".join(r["errors"]) or r.get("skipped", "")])
        loads = [x for r in report["iteration"] for x in (r.get("load_average") or []) if x]
        parts.append(f"time per iteration (load {_load([{'load_average': x} for x in loads])}):\n\n" + rst_table(
            ["task", "family", "backend", "s/iteration", "min … max", "runs", "× nest-builtin", "start-up s",
             "errors / not run"], rows))
    if report.get("memory"):
        lengths = sorted({r["sequence_steps"] for r in report["memory"] if r.get("sequence_steps")} |
                         {r["sequence_steps"] for r in report["memory"] if "error" in r and r.get("sequence_steps")})
        rows = []
        for name, family in dict.fromkeys((r["backend"], r["family"]) for r in report["memory"]):
            cells = [f"``{name}``", family]
            for T in lengths:
                r = next((x for x in report["memory"] if x["backend"] == name and x["family"] == family
                          and x.get("sequence_steps") == T), None)
                if r is None:
                    cells.append("not run")
                elif "error" in r:
                    cells.append("failed")
                else:
                    cells.append(f"{r['peak_rss_mb']:.0f} ({r['memory_mb']:.0f})")
            m = next((m for m in report.get("memory_summary", []) if m["backend"] == name and m["family"] == family),
                     None)
            if m is None or m["peak_change"] is None:
                cells.append("-")
            else:
                upto = "" if m["lengths"][-1] == lengths[-1] else f" (to T = {m['lengths'][-1]})"
                cells.append(f"{100 * m['peak_change']:+.0f} %{upto}")
            rows.append(cells)
        parts.append(f"peak RSS in MB (growth above the baseline), load {_load(report['memory'])}:\n\n" + rst_table(
            ["backend", "family", *[f"T = {T}" for T in lengths], "change"], rows))
    if report.get("scaling"):
        sizes = sorted({r["n_rec"] for r in report["scaling"]})
        for key, label in (("s_per_simulated_s", "seconds per simulated second"),
                           ("peak_rss_mb", "peak RSS (MB)"), ("ratio_vs_nest_builtin", "× nest-builtin (time)")):
            rows = []
            for name, family in dict.fromkeys((r["backend"], r["family"]) for r in report["scaling"]):
                cells = [family, f"``{name}``"]
                for n in sizes:
                    r = next((x for x in report["scaling"] if x["backend"] == name and x["family"] == family
                              and x["n_rec"] == n), None)
                    cells.append("not run" if r is None else "failed" if "error" in r else
                                 _f(r.get(key), 3) if key != "peak_rss_mb" else f"{r[key]:.0f}")
                rows.append(cells)
            parts.append(f"scaling, {label} (load {_load(report['scaling'])}):\n\n" + rst_table(
                ["family", "backend", *[f"n = {n}" for n in sizes]], rows))
    if report.get("threads"):
        rows = [[r["family"], f"``{r['backend']}``", str(r["threads"]),
                 "failed" if "error" in r else _f(r["per_iteration_s"], 4),
                 "yes" if r.get("losses_identical_across_threads") else
                 f"no (max rel. diff. {r['losses_max_rel_diff_across_threads']:.1e})"
                 if r.get("losses_max_rel_diff_across_threads") is not None else "-"]
                for r in report["threads"]]
        parts.append(f"threads (load {_load(report['threads'])}):\n\n" + rst_table(
            ["family", "backend", "threads", "s/iteration", "losses identical 1 vs 2"], rows))
    if report.get("goals"):
        rows = [[g["goal"], "-" if g["measured"] is None else f"{g['measured']:.3g}",
                 {True: "met", False: "**missed**", None: "no number"}[g["met"]]] for g in report["goals"]]
        parts.append("goals:\n\n" + rst_table(["goal", "measured", "result"], rows))
    return "\n\n".join(parts) + "\n"
