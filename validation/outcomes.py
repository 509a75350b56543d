"""What a validation run produces: cells, scenario outcomes, the suite, and the progress callbacks.

A cell is one backend on one scenario; its status is one of :data:`STATUSES`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .compare import Comparison
from .memory import largest

__all__ = ["Cell", "Progress", "ScenarioOutcome", "SuiteOutcome", "STATUSES"]

#: Cell statuses, in the order the summary counts them.
STATUSES = ("pass", "fail", "error", "not installed", "n/a")


@dataclass
class Cell:
    """The outcome of one backend on one scenario.

    ``seconds`` is the cell's wall time (s), ``compile_seconds`` the part of it spent compiling
    (``Result.meta["compile_seconds"]``; None when the backend does not say), ``build_key`` the key
    of the compiled code it used (None: none).

    Memory (MB, :mod:`validation.memory`; None: not measured): ``rss_start_mb`` the resident size
    of the cell's process when the cell started, ``peak_rss_mb`` that process's peak when it ended,
    ``worker_peak_mb`` the peak of the process running the scenario when the cell ended (the same
    process unless ``isolated``), ``rss_growth_mb`` how much the cell raised that peak (0: it
    stayed below the earlier peak), ``child_peak_mb`` the largest finished child process so far.
    The reference cell counts the reference run.  ``isolated``: the backend ran in a process of
    its own (:mod:`validation.isolated`); then ``peak_rss_mb`` is that process's peak,
    ``rss_start_mb`` is None and ``rss_growth_mb`` what the comparison added to the scenario's
    process.
    """

    backend: str
    status: str
    reason: str = ""
    seconds: float | None = None
    comparison: Comparison | None = None
    compile_seconds: float | None = None
    build_key: str | None = None
    rss_start_mb: float | None = None
    peak_rss_mb: float | None = None
    rss_growth_mb: float | None = None
    child_peak_mb: float | None = None
    isolated: bool = False
    worker_peak_mb: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "backend": self.backend,
            "status": self.status,
            "reason": self.reason,
            "seconds": self.seconds,
            "compile_seconds": self.compile_seconds,
            "build_key": self.build_key,
            "memory": {"rss_start_mb": self.rss_start_mb, "peak_rss_mb": self.peak_rss_mb,
                       "rss_growth_mb": self.rss_growth_mb, "child_peak_mb": self.child_peak_mb,
                       "worker_peak_mb": self.worker_peak_mb, "isolated": self.isolated},
            "comparison": None if self.comparison is None else self.comparison.to_json(),
        }


@dataclass
class ScenarioOutcome:
    """One scenario: what it is, the reference run, and one cell per backend.

    ``memory``: the peak of the scenario's process after its figures (``peak_rss_mb``) and how much
    drawing them raised it (``rss_growth_mb``), in MB; empty when not measured.
    """

    name: str
    family: str = ""
    description: str = ""
    tolerance: dict[str, Any] = field(default_factory=dict)
    source: str = ""
    n_steps: int = 0
    n_iterations: int = 0
    sizes: dict[str, int] = field(default_factory=dict)
    reference: dict[str, Any] = field(default_factory=dict)
    cells: dict[str, Cell] = field(default_factory=dict)
    plots: list[str] = field(default_factory=list)
    memory: dict[str, float | None] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "family": self.family,
            "description": self.description,
            "tolerance": self.tolerance,
            "source": self.source,
            "n_steps": self.n_steps,
            "n_iterations": self.n_iterations,
            "sizes": self.sizes,
            "reference": self.reference,
            "results": {b: c.to_json() for b, c in self.cells.items()},
            "plots": list(self.plots),
            "memory": dict(self.memory),
        }


@dataclass
class SuiteOutcome:
    """The whole run (``jobs``: worker processes used; 1 = this process)."""

    backends: list[dict[str, Any]]
    scenarios: list[ScenarioOutcome]
    required: list[str]
    started: str
    seconds: float = 0.0
    jobs: int = 1
    main_peak_mb: float | None = None  # peak of the process that ran the suite (MB)

    def counts(self) -> dict[str, int]:
        out = {s: 0 for s in STATUSES}
        for sc in self.scenarios:
            for c in sc.cells.values():
                out[c.status] += 1
        return out

    def timing(self) -> dict[str, dict[str, float | int]]:
        """Per backend: cells that ran, their total seconds, compile seconds and builds made."""
        out: dict[str, dict[str, float | int]] = {}
        for b in self.backends:
            cells = [s.cells[b["name"]] for s in self.scenarios if b["name"] in s.cells]
            ran = [c for c in cells if c.seconds is not None]
            compile_s = [c.compile_seconds for c in ran if c.compile_seconds]
            out[b["name"]] = {"cells": len(ran), "seconds": round(sum(c.seconds for c in ran), 3),
                              "compile_seconds": round(sum(compile_s), 3), "builds": len(compile_s)}
        return out

    def memory(self) -> dict[str, Any]:
        """The largest process of the run against the goal (:func:`validation.memory.largest`)."""
        return largest(self.scenarios, self.main_peak_mb)

    def missing_required(self) -> list[str]:
        return [b["name"] for b in self.backends if b["name"] in self.required and not b["available"]]

    def ok(self) -> bool:
        c = self.counts()
        return c["fail"] == 0 and c["error"] == 0 and not self.missing_required()

    def exit_status(self) -> int:
        """0 when every comparison passed and every required backend was there, else 1."""
        return 0 if self.ok() else 1

    def failures(self) -> list[tuple[str, Cell]]:
        return [(sc.name, c) for sc in self.scenarios for c in sc.cells.values() if c.status in ("fail", "error")]


class Progress:
    """Callbacks of a run; the CLI's live display implements them (every method is optional)."""

    def start(self, total: int, builds: int) -> None:
        """``total`` cells will run, ``builds`` of them compile first."""

    def build(self, scenario: str, backend: str, key: str) -> None:
        """The next cell (``scenario`` x ``backend``) compiles build ``key`` first."""

    def begin(self, scenario: str, backend: str) -> None: ...
    def iteration(self, scenario: str, backend: str, index: int, n_iterations: int, loss: float) -> None: ...
    def end(self, scenario: str, cell: Cell) -> None: ...
    def note(self, text: str) -> None: ...
    def finish(self) -> None: ...
