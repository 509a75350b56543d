"""The NumPy reference: float64 e-prop for both families, the oracle every backend is compared with."""

from __future__ import annotations

from typing import Callable

from ..results import Result
from .event import run_event
from .original import run_original

__all__ = ["run"]


def run(scenario, *, record_weight_events: bool = True, on_iteration: Callable[[int, float], None] | None = None) -> Result:
    """Run a scenario with the NumPy reference.

    Parameters
    ----------
    scenario : Scenario
        Any scenario; it is validated first.
    record_weight_events : bool
        Produce one weight event per transmitted spike.
    on_iteration : callable, optional
        ``on_iteration(index, loss)`` after each iteration.
    """
    sc = scenario.validated()
    if sc.family == "original":
        return run_original(sc, record_weight_events=record_weight_events, on_iteration=on_iteration)
    return run_event(sc, record_weight_events=record_weight_events, on_iteration=on_iteration)


def check() -> None:
    """The reference needs only NumPy: always usable."""
