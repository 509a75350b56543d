"""The validation's outputs: ``report.json``, a self-contained ``report.html`` and the terminal table.

``report.json`` follows :data:`validation.schema.REPORT_SCHEMA` (checked before it is written).
``report.html`` embeds every PNG as base64, so the single file can be mailed or archived.  Both are
written atomically (:func:`eprop_plugins.cache.atomic_write`): a reader never sees half a report.
Compile time is reported apart from simulation time (per cell and per backend); the peak memory of
each cell's process and the run's largest process against the 2 GB goal (:mod:`validation.memory`).
"""

from __future__ import annotations

import base64
import html
import json
import platform
import sys
from importlib import metadata
from pathlib import Path
from typing import Any, Sequence

from eprop_plugins.cache import atomic_write

from . import schema
from .outcomes import STATUSES, SuiteOutcome

__all__ = ["to_json", "write_json", "write_html", "summary_table", "timing_table", "memory_line", "failure_lines",
           "environment"]


def environment() -> dict[str, Any]:
    """Versions of Python and of the simulator packages (from package metadata: nothing is imported)."""
    env: dict[str, Any] = {"python": sys.version.split()[0], "platform": platform.platform()}
    for dist in ("numpy", "nest-simulator", "nestml", "brian2", "pynn", "matplotlib"):
        try:
            env[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            env[dist] = None
    return env


def to_json(suite: SuiteOutcome, command: Sequence[str] = ()) -> dict[str, Any]:
    """The report as JSON-compatible data (validated against the schema)."""
    failures = []
    for sname, cell in suite.failures():
        ff = cell.comparison.first_failure if cell.comparison else None
        failures.append({"scenario": sname, "backend": cell.backend, "status": cell.status,
                         "quantity": (ff or {}).get("quantity"), "step": (ff or {}).get("step"),
                         "reason": cell.reason})
    doc = {
        "format": schema.FORMAT,
        "created": suite.started,
        "seconds": round(float(suite.seconds), 3),
        "jobs": int(suite.jobs),
        "command": [str(c) for c in command],
        "environment": environment(),
        "backends": suite.backends,
        "scenarios": [s.to_json() for s in suite.scenarios],
        "summary": {
            "counts": suite.counts(),
            "ok": suite.ok(),
            "exit_status": suite.exit_status(),
            "missing_required": suite.missing_required(),
            "failures": failures,
            "timing": suite.timing(),
            "memory": suite.memory(),
        },
    }
    doc = json.loads(json.dumps(doc, default=_default))  # plain types only (numpy scalars -> numbers)
    schema.validate(doc)
    return doc


def _default(x: Any) -> Any:
    if hasattr(x, "item"):
        return x.item()
    if hasattr(x, "tolist"):
        return x.tolist()
    return str(x)


def write_json(doc: dict[str, Any], path: Path) -> Path:
    """Write the report document to ``path`` (atomically)."""
    return atomic_write(path, json.dumps(doc, indent=1) + "\n")


# --------------------------------------------------------------------------------------------- terminal
_SHORT = {"pass": "pass", "fail": "FAIL", "error": "ERROR", "not installed": "not installed", "n/a": "n/a"}


def summary_table(suite: SuiteOutcome) -> str:
    """Scenario x backend table of statuses, then the counts."""
    backends = [b["name"] for b in suite.backends]
    w0 = max([len("scenario")] + [len(s.name) for s in suite.scenarios])
    widths = [max(len(b), 13) for b in backends]
    lines = ["  ".join(["scenario".ljust(w0)] + [b.ljust(w) for b, w in zip(backends, widths)])]
    lines.append("  ".join(["-" * w0] + ["-" * w for w in widths]))
    for s in suite.scenarios:
        row = [s.name.ljust(w0)]
        for b, w in zip(backends, widths):
            cell = s.cells.get(b)
            row.append((_SHORT[cell.status] if cell else "-").ljust(w))
        lines.append("  ".join(row).rstrip())
    counts = suite.counts()
    lines.append("")
    lines.append(", ".join(f"{counts[k]} {k}" for k in STATUSES)
                 + f"  ({suite.seconds:.1f} s wall, {suite.jobs} process{'es' if suite.jobs > 1 else ''})")
    lines.append(timing_table(suite.timing()))
    lines.append(memory_line(suite.memory()))
    return "\n".join(lines)


def memory_line(mem: dict[str, Any]) -> str:
    """The run's largest process against the goal, and the cell that raised it."""
    where = f" (raised by {mem['scenario']} x {mem['backend']})" if mem.get("scenario") else ""
    verdict = "within" if mem["within_goal"] else "ABOVE"
    return (f"largest process {mem['largest_process_mb'] / 1e3:.2f} GB{where}: {verdict} the "
            f"{mem['goal_mb'] / 1e3:g} GB goal; child processes (compilers, binaries) at most "
            f"{mem['largest_child_mb'] / 1e3:.2f} GB")


def timing_table(timing: dict[str, dict[str, Any]]) -> str:
    """Per backend: cells run, compile seconds (builds), simulation seconds (total minus compile)."""
    w0 = max([len("backend")] + [len(b) for b in timing])
    lines = [f"{'backend'.ljust(w0)}  cells  compile s (builds)  simulation s"]
    for b, t in timing.items():
        sim = t["seconds"] - t["compile_seconds"]
        lines.append(f"{b.ljust(w0)}  {t['cells']:5d}  {t['compile_seconds']:9.1f} ({t['builds']:3d})    {sim:12.1f}")
    return "\n".join(lines)


def failure_lines(suite: SuiteOutcome) -> list[str]:
    """One line per failed or erroring cell (scenario, backend, quantity, first diverging step)."""
    out = [f"{st.upper():5s} {sname} x {cell.backend}: {cell.reason}"
           for sname, cell in suite.failures() for st in [cell.status]]
    for name in suite.missing_required():
        reason = next(b["reason"] for b in suite.backends if b["name"] == name)
        out.append(f"MISSING required backend {name}: {reason}")
    return out


# --------------------------------------------------------------------------------------------- HTML
_CSS = """
body{font-family:sans-serif;margin:1.5em;max-width:1200px;color:#222}
table{border-collapse:collapse;font-size:13px;margin:0.5em 0}
td,th{border:1px solid #ccc;padding:3px 7px;text-align:left;vertical-align:top}
th{background:#f0f0f0}
.pass{background:#d9f2d9}.fail{background:#f8c9c9;font-weight:bold}.error{background:#f6d2a8;font-weight:bold}
.not-installed{background:#eee;color:#777}.n-a{background:#f7f7f7;color:#999}
.small{font-size:12px;color:#555} img{max-width:100%;border:1px solid #ddd;margin:4px 0}
code{background:#f4f4f4;padding:0 3px}
"""


def _cls(status: str) -> str:
    return status.replace(" ", "-").replace("/", "-")


def _fmt(x: Any) -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        return f"{x:.3e}"
    return html.escape(str(x))


def write_html(doc: dict[str, Any], directory: Path) -> Path:
    """Write ``report.html`` in ``directory`` from the JSON document, embedding the PNGs listed in it."""
    e = html.escape
    backends = [b["name"] for b in doc["backends"]]
    summary = doc["summary"]
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>e-prop validation report</title>"
             f"<style>{_CSS}</style></head><body>",
             "<h1>e-prop cross-simulator validation</h1>",
             f"<p class='small'>{e(doc['created'])} &middot; {doc['seconds']:.1f} s &middot; "
             f"<code>{e(' '.join(doc['command']))}</code> &middot; "
             + ", ".join(f"{e(k)} {e(str(v))}" for k, v in doc["environment"].items() if v) + "</p>",
             f"<p><b>{'PASSED' if summary['ok'] else 'FAILED'}</b>: "
             + ", ".join(f"{summary['counts'][k]} {e(k)}" for k in STATUSES) + "</p>"]
    if summary["missing_required"]:
        parts.append(f"<p class='fail'>Required backends missing: {e(', '.join(summary['missing_required']))}</p>")
    # time
    timing = summary.get("timing", {})
    parts.append("<h2>Time</h2><table><tr><th>backend</th><th>cells</th><th>compile s</th><th>builds</th>"
                 "<th>simulation s</th></tr>")
    for b, t in timing.items():
        parts.append(f"<tr><td>{e(b)}</td><td>{t['cells']}</td><td>{t['compile_seconds']:.1f}</td>"
                     f"<td>{t['builds']}</td><td>{t['seconds'] - t['compile_seconds']:.1f}</td></tr>")
    parts.append(f"</table><p class='small'>{doc.get('jobs', 1)} process(es); simulation = cell time minus "
                 "compile time</p>")
    mem = summary.get("memory")
    if mem:
        parts.append(f"<h2>Memory</h2><p class='{'pass' if mem['within_goal'] else 'fail'}'>{e(memory_line(mem))}</p>"
                     f"<p class='small'>peak resident size (ru_maxrss) of the worker processes "
                     f"{mem['largest_worker_mb']:.0f} MB, of the main process {mem['main_process_mb']:.0f} MB; "
                     "per cell below: the peak of its process when it ended and how much the cell raised it</p>")
    # backends
    parts.append("<h2>Backends</h2><table><tr><th>backend</th><th>available</th><th>families</th><th>detail</th></tr>")
    for b in doc["backends"]:
        parts.append(f"<tr><td>{e(b['name'])}{' (required)' if b['required'] else ''}</td>"
                     f"<td class='{'pass' if b['available'] else 'not-installed'}'>{'yes' if b['available'] else 'not installed'}</td>"
                     f"<td>{e(', '.join(b['families']))}</td><td class='small'>{e(b['reason'])}</td></tr>")
    parts.append("</table>")
    # summary matrix
    parts.append("<h2>Summary</h2><table><tr><th>scenario</th><th>family</th><th>rtol</th>"
                 + "".join(f"<th>{e(b)}</th>" for b in backends) + "</tr>")
    for s in doc["scenarios"]:
        row = [f"<td><a href='#{e(s['name'])}'>{e(s['name'])}</a></td><td>{e(s['family'])}</td>"
               f"<td>{_fmt(s['tolerance'].get('rtol'))}</td>"]
        for b in backends:
            c = s["results"].get(b)
            if c is None:
                row.append("<td>-</td>")
                continue
            row.append(f"<td class='{_cls(c['status'])}' title='{e(c['reason'])}'>{e(c['status'])}</td>")
        parts.append("<tr>" + "".join(row) + "</tr>")
    parts.append("</table>")
    if summary["failures"]:
        parts.append("<h3>Failures</h3><ul>")
        for f in summary["failures"]:
            parts.append(f"<li class='small'><b>{e(f['scenario'])}</b> &times; <b>{e(f['backend'])}</b>: {e(f['reason'])}</li>")
        parts.append("</ul>")
    # per scenario
    parts.append("<h2>Scenarios</h2>")
    for s in doc["scenarios"]:
        parts.append(f"<h3 id='{e(s['name'])}'>{e(s['name'])}</h3>")
        parts.append(f"<p>{e(s['description'])}</p><p class='small'>tolerance rtol {_fmt(s['tolerance'].get('rtol'))}: "
                     f"{e(s['tolerance'].get('why', ''))} &middot; {s['n_steps']} steps, {s['n_iterations']} iterations, "
                     f"sizes {e(json.dumps(s['sizes']))} &middot; {e(s['source'])}</p>")
        ref = s["reference"]
        if ref.get("status") == "ok":
            losses = ", ".join(f"{x:.12g}" for x in ref.get("losses", []))
            parts.append(f"<p class='small'>reference losses: {losses} ({ref.get('seconds', 0):.2f} s)</p>")
            exp = ref.get("expected_losses")
            if exp:
                parts.append(f"<p class='small {exp['status']}'>vs public numbers ({e(exp['source'])}): max rel err "
                             f"{exp['max_rel_err']:.2e}, rtol {exp['rtol']:g} &rarr; {exp['status']}</p>")
        else:
            parts.append(f"<p class='error'>{e(ref.get('reason', 'reference failed'))}</p>")
        parts.append("<table><tr><th>backend</th><th>status</th><th>seconds</th><th>of which compiling</th>"
                     "<th>peak MB (raised by)</th><th>detail</th></tr>")
        for b, c in s["results"].items():
            secs = "-" if c["seconds"] is None else f"{c['seconds']:.2f}"
            comp = "-" if c.get("compile_seconds") is None else f"{c['compile_seconds']:.2f}"
            m = c.get("memory") or {}
            peak = "-" if m.get("peak_rss_mb") is None else f"{m['peak_rss_mb']:.0f} (+{m.get('rss_growth_mb') or 0:.0f})"
            parts.append(f"<tr><td>{e(b)}</td><td class='{_cls(c['status'])}'>{e(c['status'])}</td><td>{secs}</td>"
                         f"<td>{comp}</td><td>{peak}</td><td class='small'>{e(c['reason'])}</td></tr>")
        parts.append("</table>")
        for b, c in s["results"].items():
            cmp = c.get("comparison")
            if not cmp:
                continue
            parts.append(f"<details{' open' if cmp['status'] == 'fail' else ''}><summary>{e(b)}: per-quantity errors "
                         f"(compared {cmp['horizon']} of {cmp['n_steps']} steps)</summary><table><tr><th>quantity</th>"
                         "<th>unit</th><th>status</th><th>values</th><th>max abs err</th><th>max rel err</th>"
                         "<th>scale</th><th>first diverging step</th><th>index there</th><th>worst step</th><th>worst index</th>"
                         "<th>note</th></tr>")
            for q in cmp["quantities"]:
                parts.append(f"<tr><td>{e(q['name'])}</td><td>{e(q['unit'])}</td><td class='{_cls(q['status'])}'>"
                             f"{e(q['status'])}</td><td>{q['compared']}</td><td>{_fmt(q['max_abs_err'])}</td>"
                             f"<td>{_fmt(q['max_rel_err'])}</td><td>{_fmt(q['scale'])}</td>"
                             f"<td>{_fmt(q['first_diverging_step'])}</td><td>{_fmt(q['first_diverging_index'])}</td>"
                             f"<td>{_fmt(q['worst_step'])}</td>"
                             f"<td>{_fmt(q['worst_index'])}</td><td class='small'>{e(q['note'])}</td></tr>")
            parts.append("</table></details>")
        for name in s["plots"]:
            png = directory / name
            if png.exists():
                data = base64.b64encode(png.read_bytes()).decode("ascii")
                parts.append(f"<div><img alt='{e(name)}' src='data:image/png;base64,{data}'></div>")
    parts.append("</body></html>")
    return atomic_write(directory / "report.html", "\n".join(parts))
