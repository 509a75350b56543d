"""Backends by name: each runs a :class:`~eprop_plugins.scenario.Scenario` and returns a Result.

A backend is a module with ``run(scenario, *, record_weight_events=True, on_iteration=None)`` and
``check()`` (raises with the reason when the backend cannot run on this machine).  Modules are
imported only when used, so a missing simulator never breaks the others.
"""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass
from typing import Callable

__all__ = ["BACKENDS", "Backend", "Limit", "check_supported", "get", "names", "run", "status", "unsupported"]


@dataclass(frozen=True)
class Limit:
    """Something a backend's simulator cannot express: a test on a validated scenario and the reason."""

    applies: Callable[[object], bool]
    reason: str


#: NEST's learning-signal connections carry fixed weights: the one home of this limit, shared by
#: both NEST backends (``nestml`` uses NEST's own learning-signal connections).
NEST_FIXED_FEEDBACK = Limit(
    lambda sc: sc.network.get("feedback") == "symmetric",
    "network.feedback = 'symmetric': NEST's e-prop learning-signal connections keep the feedback weights B "
    "fixed, so B cannot track W_out (docs/model.rst §3b); use 'symmetric_initial' (B = initial W_out^T) or "
    "'random' on this backend, or another backend",
)


@dataclass(frozen=True)
class Backend:
    """Registry entry: ``module`` provides ``run`` and ``check``; ``families`` it implements;
    ``limits`` what its simulator cannot express (the validation reports those cells as n/a)."""

    name: str
    module: str
    families: tuple[str, ...]
    summary: str
    limits: tuple[Limit, ...] = ()


BACKENDS: dict[str, Backend] = {
    b.name: b
    for b in (
        Backend("reference", "eprop_plugins.reference", ("original", "event"), "float64 NumPy oracle"),
        Backend("nest-builtin", "eprop_plugins.backends.nest_builtin", ("original", "event"),
                "NEST 3.10's built-in eprop_* models (external anchor)", (NEST_FIXED_FEEDBACK,)),
        Backend("brian2", "brian2_ext.backend_runtime", ("original", "event"), "Brian2 runtime (Cython/numpy)"),
        Backend("brian2-standalone", "brian2_ext.backend_standalone", ("original", "event"),
                "Brian2 cpp_standalone, cached binary"),
        Backend("nestml", "nest_models.backend", ("original", "event"), "NESTML models in a NEST extension module",
                (NEST_FIXED_FEEDBACK,)),
        Backend("pynn-nest", "pynn_ext.backend_nest", ("original", "event"), "PyNN script on pyNN.nest (NESTML neurons)", (NEST_FIXED_FEEDBACK,)),
        Backend("pynn-brian2", "pynn_ext.backend_brian2", ("original", "event"), "PyNN 0.13 on pyNN.brian2 (pynn_ext types)", (Limit(lambda sc: sc.network.get("feedback") == "symmetric", "network.feedback = 'symmetric': FeedbackSynapse weights are fixed, so B cannot track W_out; use 'symmetric_initial' or 'random'"),)),  # noqa: E501
        Backend("spinnaker-host", "pynn_ext.backend_spinnaker_host", ("original",), "SpiNNaker e-prop kernel in s16.15 fixed point, host build (gcc)"),
    )
}


def names() -> list[str]:
    """All registered backend names."""
    return list(BACKENDS)


def get(name: str):
    """Import and return the backend module.

    Raises
    ------
    ValueError
        Unknown name (the message lists the known ones).
    ImportError
        The backend's module or simulator cannot be imported.
    """
    if name not in BACKENDS:
        raise ValueError(f"backend = {name!r}: allowed values are {', '.join(BACKENDS)}")
    module = importlib.import_module(BACKENDS[name].module)
    if not hasattr(module, "run"):
        raise ImportError(f"backend {name!r}: module {BACKENDS[name].module} has no run()")
    return module


def unsupported(name: str, scenario) -> str | None:
    """The reason why backend ``name`` cannot express a validated scenario, or None if it can.

    Covers the simulator limits of the registry entry and the families the backend implements.
    """
    entry = BACKENDS[name]
    if scenario.family not in entry.families:
        return f"backend {name!r} implements the families {', '.join(entry.families)}, not {scenario.family!r}"
    for limit in entry.limits:
        if limit.applies(scenario):
            return limit.reason
    return None


def check_supported(name: str, scenario) -> None:
    """Raise :class:`~eprop_plugins.parameters.ParameterError` when :func:`unsupported` gives a reason."""
    from ..parameters import ParameterError  # noqa: PLC0415 - the registry itself stays import-free

    reason = unsupported(name, scenario)
    if reason is not None:
        raise ParameterError(f"{reason} (backend {name})")


def status(name: str) -> tuple[bool, str]:
    """``(usable, reason)`` for one backend, without running anything heavy."""
    try:
        module = get(name)
        check: Callable[[], None] | None = getattr(module, "check", None)
        if check is not None:
            check()
    except Exception as exc:  # report any failure as the reason
        return False, f"{type(exc).__name__}: {exc}"
    return True, BACKENDS[name].summary


def run(name: str, scenario, *, traces: bool = True, record_weight_events: bool = False,
        on_iteration: Callable[[int, float], None] | None = None):
    """Run a scenario on the named backend.

    ``traces=False`` asks for losses only, from backends whose ``run`` takes ``record`` (recording
    every step costs memory that grows with the run); the others record as usual.
    """
    module = get(name)
    extra = {} if traces or "record" not in inspect.signature(module.run).parameters else {"record": False}
    return module.run(scenario, record_weight_events=record_weight_events, on_iteration=on_iteration, **extra)
