"""The ``spinnaker-host`` backend: the SpiNNaker e-prop kernel (s16.15 fixed point) built for this machine.

The C sources of ``pynn_ext/spinnaker/c/`` (the ones the ARM968 build compiles) are compiled with the
system gcc into the project cache and driven through ctypes (:mod:`pynn_ext.spinnaker.host`).  The
backend implements the original family (docs/model.rst §2) on dense projections.  Its results equal,
bit for bit, the NumPy emulation of the same integer arithmetic (:func:`emulate`); against the
float64 reference they agree within :func:`tolerance` up to the first spike that fixed-point rounding
flips (docs/spinnaker.rst).
"""

from __future__ import annotations

import time
from typing import Callable

from eprop_plugins.backends import check_supported
from eprop_plugins.errors import BackendError
from eprop_plugins.results import Result

from .spinnaker import emulation, host
from .spinnaker import tolerance as fixed_tolerance
from .spinnaker.kernel_params import kernel_network
from .spinnaker.kernel_result import to_result

__all__ = ["NAME", "check", "build_key", "is_built", "tolerance", "run", "emulate"]

NAME = "spinnaker-host"


def check() -> str:
    """Raise unless gcc is available; describe where the library is (or that the first run builds it)."""
    cc = host.compiler()
    where = host.library_path()
    return f"{cc}; kernel library {where}" if host.is_built() else f"{cc}; kernel not built yet (the first run builds it)"


def build_key(scenario) -> str:
    """The host library's key: one build for every scenario."""
    return host.build_key()


def is_built(scenario) -> bool:
    """Whether the host library of the current sources is cached."""
    return host.is_built()


def tolerance(scenario) -> dict:
    """The tolerance this backend is compared with on ``scenario`` (docs/spinnaker.rst)."""
    return fixed_tolerance.tolerance(scenario)


def run(scenario, *, record_weight_events: bool = True,
        on_iteration: Callable[[int, float], None] | None = None) -> Result:
    """Run a validated original-family scenario on the host build of the kernel.

    Raises
    ------
    ParameterError
        The scenario is not expressible (family, sparse projections, values outside the fixed-point
        ranges: :func:`pynn_ext.spinnaker.kernel_params.kernel_network`).
    BackendError
        The kernel failed to compile or to run.
    """
    t0 = time.perf_counter()
    scenario = scenario.validated()  # a task's scenario has no defaults filled in yet (v_min, ...)
    check_supported(NAME, scenario)
    net = kernel_network(scenario)
    try:
        raw, compile_seconds = host.run_kernel(net)
    except (RuntimeError, OSError) as exc:
        raise BackendError(str(exc), backend=NAME, scenario=scenario.name,
                           hint="the host build needs gcc; see docs/spinnaker.rst", original=exc) from exc
    result = to_result(scenario, net, raw, NAME, record_weight_events=record_weight_events, on_iteration=on_iteration)
    result.meta.update(seconds=time.perf_counter() - t0, compile_seconds=compile_seconds,
                       cached=compile_seconds == 0.0, library=str(host.library_path()))
    return result


def emulate(scenario, *, record_weight_events: bool = True) -> Result:
    """The same run in the NumPy emulation of the kernel's arithmetic (no compiler involved)."""
    t0 = time.perf_counter()
    scenario = scenario.validated()  # a task's scenario has no defaults filled in yet (v_min, ...)
    check_supported(NAME, scenario)
    net = kernel_network(scenario)
    result = to_result(scenario, net, emulation.run_kernel(net), "spinnaker-emulation",
                       record_weight_events=record_weight_events)
    result.meta.update(seconds=time.perf_counter() - t0, compile_seconds=0.0, cached=True)
    return result

