"""Backend ``brian2``: e-prop in Brian2's runtime mode (Cython code generation)."""

from __future__ import annotations

from typing import Callable

from eprop_plugins.results import Result

__all__ = ["run", "check"]


def run(scenario, *, record_weight_events: bool = True,
        on_iteration: Callable[[int, float], None] | None = None, record: bool = True) -> Result:
    """Run a scenario with Brian2 runtime (Cython); see :func:`brian2_ext.runner.run_scenario`.

    ``record=False`` (losses only) switches the per-step monitors off.
    """
    from .runner import run_scenario

    return run_scenario(scenario, mode="cython", record_weight_events=record_weight_events,
                        record=record, on_iteration=on_iteration, backend="brian2")


def check() -> None:
    """Raise ImportError/RuntimeError when Brian2 with Cython cannot run here."""
    from .checks import check_brian2

    check_brian2(standalone=False)
