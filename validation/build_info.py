"""What a backend says about the compiled code a scenario needs: its build key, and whether it is made.

A backend module may expose ``build_key(scenario) -> str | None`` and ``is_built(scenario) -> bool``
(cheap: nothing is compiled to answer); :mod:`validation.builds` plans the run with them and
:mod:`validation.cells` asks whether a shorter run makes the same build.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable

from eprop_plugins.scenario import Scenario

__all__ = ["build_info"]


def _call_with_options(hook: Callable[..., Any], sc: Scenario, record_weight_events: bool) -> Any:
    """``hook(sc)``, passing ``record_weight_events`` where the hook takes it (the build may depend on it)."""
    try:
        params = inspect.signature(hook).parameters
    except (TypeError, ValueError):
        params = {}
    return hook(sc, record_weight_events=record_weight_events) if "record_weight_events" in params else hook(sc)


def build_info(backend: Any, sc: Scenario, record_weight_events: bool) -> tuple[str | None, bool]:
    """``(key, built)`` of the compiled code ``sc`` needs on ``backend`` (``(None, True)``: nothing to build)."""
    key_hook = getattr(backend, "build_key", None)
    if key_hook is None:
        return None, True
    key = _call_with_options(key_hook, sc, record_weight_events)
    if key is None:
        return None, True
    built_hook = getattr(backend, "is_built", None)
    return str(key), bool(_call_with_options(built_hook, sc, record_weight_events)) if built_hook else False
