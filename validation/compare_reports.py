"""Compare two validation reports: the same status and the same maximum errors in every cell.

A refactoring must not change behaviour; for the validation that means two ``report.json`` files
(before and after) with the same cells, the same status in each cell, and the same maximum errors.
Per cell (scenario x backend) this compares:

* the status (``pass``, ``fail``, ``error``, ``not installed``, ``n/a``);
* the cell's maximum relative error (the largest ``max_rel_err`` over its quantities) and, for the
  detail, each quantity's ``max_rel_err`` and ``max_abs_err``;
* the comparison horizon (the first step at which a spike differs, if any);
* for the reference, the error against the public loss numbers.

Errors are equal when both are null, or when ``new`` and ``old`` are within ``factor`` of each
other (``old / factor <= new <= old * factor``; the default factor 1 asks for equality), values at or
below ``floor`` counting as equal to each other.  Timings are not compared.

Command line::

    python -m validation.compare_reports OLD/report.json NEW/report.json [--factor F] [--floor X]

prints the differences (or that there are none) and exits 0 when the reports agree, 1 when they do
not, 2 when a file cannot be read.  ``eprop validate --compare-to OLD/report.json`` runs the same
comparison on the report it has just written.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from .schema import READABLE_FORMATS

__all__ = ["Difference", "ReportComparison", "compare_reports", "load_report", "main"]


def load_report(path: str | Path) -> dict[str, Any]:
    """Read a ``report.json`` of a readable format (:data:`validation.schema.READABLE_FORMATS`).

    Raises
    ------
    OSError
        The file cannot be read.
    ValueError
        It is not JSON, or not a validation report of a known format.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "report.json"
    try:
        doc = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not JSON: {exc}") from None
    fmt = doc.get("format") if isinstance(doc, dict) else None
    if fmt not in READABLE_FORMATS:
        raise ValueError(f"{path}: format {fmt!r} is not one of {', '.join(READABLE_FORMATS)}")
    return doc


@dataclass
class Difference:
    """One disagreement: where (scenario, backend, what) and the two values."""

    scenario: str
    backend: str
    what: str
    old: Any
    new: Any

    def line(self) -> str:
        return f"{self.scenario} x {self.backend}: {self.what}: {_show(self.old)} -> {_show(self.new)}"


@dataclass
class ReportComparison:
    """The result of :func:`compare_reports`."""

    cells: int = 0  # cells present in both reports
    factor: float = 1.0
    floor: float = 0.0
    differences: list[Difference] = field(default_factory=list)

    @property
    def same(self) -> bool:
        return not self.differences

    def text(self) -> str:
        head = (f"{self.cells} cells compared (statuses, maximum errors within a factor {self.factor:g}"
                + (f", values <= {self.floor:g} equal" if self.floor else "") + "): ")
        if self.same:
            return head + "no differences"
        return head + f"{len(self.differences)} difference(s)\n" + "\n".join("  " + d.line() for d in self.differences)


def _show(x: Any) -> str:
    if isinstance(x, float):
        return f"{x:.6e}"
    return "-" if x is None else str(x)


def _same_number(old: float | None, new: float | None, factor: float, floor: float) -> bool:
    if old is None or new is None:
        return old is None and new is None
    if old == new:
        return True
    if not (math.isfinite(old) and math.isfinite(new)):
        return False
    if abs(old) <= floor and abs(new) <= floor:
        return True
    lo, hi = sorted((abs(old), abs(new)))
    return (old >= 0) == (new >= 0) and lo * factor >= hi


def _cell_max(cell: dict[str, Any]) -> float | None:
    cmp = cell.get("comparison")
    errs = [q["max_rel_err"] for q in (cmp or {}).get("quantities", []) if q.get("max_rel_err") is not None]
    return max(errs) if errs else None


def _cells(doc: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(s["name"], b): c for s in doc.get("scenarios", []) for b, c in s.get("results", {}).items()}


def compare_reports(old: dict[str, Any], new: dict[str, Any], *, factor: float = 1.0,
                    floor: float = 0.0) -> ReportComparison:
    """Compare two report documents cell by cell (see the module docstring).

    Parameters
    ----------
    old, new : dict
        Parsed ``report.json`` documents (:func:`load_report`).
    factor : float
        Largest allowed ratio between two errors (>= 1; 1: equal).
    floor : float
        Errors at or below this are all equal (0: none).
    """
    if factor < 1 or floor < 0:
        raise ValueError(f"factor = {factor!r} must be >= 1 and floor = {floor!r} >= 0")
    out = ReportComparison(factor=factor, floor=floor)
    a, b = _cells(old), _cells(new)
    for key in sorted(set(a) | set(b)):
        sname, backend = key
        if key not in a or key not in b:
            out.differences.append(Difference(sname, backend, "cell", "present" if key in a else "absent",
                                              "present" if key in b else "absent"))
            continue
        out.cells += 1
        co, cn = a[key], b[key]
        if co["status"] != cn["status"]:
            out.differences.append(Difference(sname, backend, "status", co["status"], cn["status"]))
        if not _same_number(_cell_max(co), _cell_max(cn), factor, floor):
            out.differences.append(Difference(sname, backend, "max rel err", _cell_max(co), _cell_max(cn)))
        qo = {q["name"]: q for q in (co.get("comparison") or {}).get("quantities", [])}
        qn = {q["name"]: q for q in (cn.get("comparison") or {}).get("quantities", [])}
        for name in sorted(set(qo) | set(qn)):
            if name not in qo or name not in qn:
                out.differences.append(Difference(sname, backend, f"{name}", "compared" if name in qo else "absent",
                                                  "compared" if name in qn else "absent"))
                continue
            if qo[name]["status"] != qn[name]["status"]:
                out.differences.append(Difference(sname, backend, f"{name} status", qo[name]["status"],
                                                  qn[name]["status"]))
            for err in ("max_rel_err", "max_abs_err"):
                if not _same_number(qo[name].get(err), qn[name].get(err), factor, floor):
                    out.differences.append(Difference(sname, backend, f"{name} {err}", qo[name].get(err),
                                                      qn[name].get(err)))
        ho = (co.get("comparison") or {}).get("horizon")
        hn = (cn.get("comparison") or {}).get("horizon")
        if ho != hn:
            out.differences.append(Difference(sname, backend, "horizon", ho, hn))
    ref_o = {s["name"]: (s.get("reference") or {}).get("expected_losses") for s in old.get("scenarios", [])}
    for s in new.get("scenarios", []):
        eo, en = ref_o.get(s["name"]), (s.get("reference") or {}).get("expected_losses")
        changed = (eo is None) != (en is None) or (
            eo is not None and not _same_number(eo["max_rel_err"], en["max_rel_err"], factor, floor))
        if changed:
            out.differences.append(Difference(s["name"], "reference", "losses vs public numbers",
                                              eo and eo["max_rel_err"], en and en["max_rel_err"]))
    return out


def main(argv: Sequence[str] | None = None, *, stream=None) -> int:
    """``python -m validation.compare_reports OLD NEW``; returns the exit status."""
    stream = stream or sys.stdout
    parser = argparse.ArgumentParser(prog="python -m validation.compare_reports",
                                     description="Compare two validation reports cell by cell.")
    parser.add_argument("old", help="the earlier report.json (or its directory)")
    parser.add_argument("new", help="the later report.json (or its directory)")
    parser.add_argument("--factor", type=float, default=1.0,
                        help="largest allowed ratio between two maximum errors (default 1: equal)")
    parser.add_argument("--floor", type=float, default=0.0,
                        help="errors at or below this count as equal (default 0)")
    args = parser.parse_args(argv)
    try:
        old, new = load_report(args.old), load_report(args.new)
        result = compare_reports(old, new, factor=args.factor, floor=args.floor)
    except (OSError, ValueError) as exc:
        stream.write(f"error: {exc}\n")
        return 2
    counts = [(doc.get("summary") or {}).get("counts", {}) for doc in (old, new)]
    stream.write(f"old: {args.old}: " + ", ".join(f"{v} {k}" for k, v in counts[0].items()) + "\n")
    stream.write(f"new: {args.new}: " + ", ".join(f"{v} {k}" for k, v in counts[1].items()) + "\n")
    stream.write(result.text() + "\n")
    return 0 if result.same else 1


if __name__ == "__main__":
    sys.exit(main())
