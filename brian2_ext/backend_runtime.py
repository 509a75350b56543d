"""Backend ``brian2``: e-prop in Brian2's runtime mode (Cython code generation)."""

from __future__ import annotations

from typing import Callable

from eprop_plugins.results import Result

from . import builds
from .checks import check_brian2
from .runner import run_scenario

__all__ = ["run", "check", "build_key", "is_built"]

MODE = "cython"


def run(scenario, *, record_weight_events: bool = True,
        on_iteration: Callable[[int, float], None] | None = None, record: bool = True) -> Result:
    """Run a scenario with Brian2 runtime (Cython); see :func:`brian2_ext.runner.run_scenario`.

    ``record=False`` (losses only) switches the per-step monitors off.
    """
    return run_scenario(scenario, mode=MODE, record_weight_events=record_weight_events,
                        record=record, on_iteration=on_iteration, backend="brian2")


def build_key(scenario, *, record: bool = True, record_weight_events: bool = True) -> str | None:
    """Key of the Cython module set a scenario needs (no code generation)."""
    return builds.build_key(scenario.validated(), MODE, record=record, record_weight_events=record_weight_events)


def is_built(scenario, *, record: bool = True, record_weight_events: bool = True) -> bool:
    """True if this scenario's structure was compiled before (cheap: a marker file)."""
    return builds.is_built(scenario.validated(), MODE, record=record, record_weight_events=record_weight_events)


def check() -> None:
    """Raise ImportError/RuntimeError when Brian2 with Cython cannot run here."""
    check_brian2(standalone=False)
