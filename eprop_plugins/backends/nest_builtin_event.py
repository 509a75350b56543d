"""Deprecated: the event family of ``nest-builtin`` is :func:`eprop_plugins.backends.nest_builtin.run`.

The event-family wiring (layout, alignment, collection) is :mod:`eprop_plugins.backends.nest_wiring.event`.
"""

from __future__ import annotations

import warnings
from typing import Callable

from ..parameters import ParameterError
from ..results import Result
from . import nest_builtin

__all__ = ["run_event_nest"]


def run_event_nest(scenario, *, record_weight_events: bool = True,
                   on_iteration: Callable[[int, float], None] | None = None,
                   flush_event_send_interval: float | None = None) -> Result:
    """Deprecated alias of :func:`eprop_plugins.backends.nest_builtin.run` for event-family scenarios.

    Raises
    ------
    ParameterError
        A scenario of another family.
    """
    warnings.warn("run_event_nest is deprecated: use eprop_plugins.backends.nest_builtin.run", DeprecationWarning,
                  stacklevel=2)
    sc = scenario.validated()
    if sc.family != "event":
        raise ParameterError(f"network.family = {sc.family!r}: run_event_nest runs only the 'event' family")
    return nest_builtin.run(sc, record_weight_events=record_weight_events, on_iteration=on_iteration,
                            flush_event_send_interval=flush_event_send_interval)
