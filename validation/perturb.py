"""A deliberately broken backend: the validation's self-test.

:class:`PerturbedBackend` runs another backend (by default the reference) on a copy of each scenario
whose one parameter is nudged.  Injected into the runner through its ``extra_backends`` hook
(:func:`validation.runner.run_validation`) or with ``eprop validate --perturb PATH*FACTOR``, it must
make the suite fail and name the scenario, the trace and the first diverging step; the tests check
that it does.

Parameter paths address the scenario's JSON form (:meth:`Scenario.to_dict`) with dots, integers
indexing lists: ``populations.0.params.tau_m``, ``readout.tau_m``, ``optimizer.eta``,
``w_in.0.1`` (post 0, pre 1).
"""

from __future__ import annotations

import re
from typing import Any, Callable

from eprop_plugins.backends import BACKENDS, get
from eprop_plugins.parameters import ParameterError
from eprop_plugins.results import Result
from eprop_plugins.scenario import Scenario

__all__ = ["PerturbedBackend", "parse_perturbation", "perturb_scenario"]


def perturb_scenario(scenario: Scenario, path: str, change: Callable[[Any], Any]) -> Scenario:
    """Copy of ``scenario`` with the value at ``path`` replaced by ``change(value)``.

    Raises
    ------
    ParameterError
        If the path does not name a value of the scenario.
    """
    data = scenario.to_dict()
    keys = path.split(".")
    node: Any = data
    for k in keys[:-1]:
        node = _child(node, k, path)
    last = keys[-1]
    if isinstance(node, list):
        idx = _index(node, last, path)
        node[idx] = change(node[idx])
    elif isinstance(node, dict) and last in node:
        node[last] = change(node[last])
    else:
        raise ParameterError(f"perturbation path {path!r}: {last!r} is not a field there")
    return Scenario.from_dict(data)


def _child(node: Any, key: str, path: str) -> Any:
    if isinstance(node, list):
        return node[_index(node, key, path)]
    if isinstance(node, dict) and key in node:
        return node[key]
    raise ParameterError(f"perturbation path {path!r}: {key!r} is not a field there")


def _index(node: list, key: str, path: str) -> int:
    if not re.fullmatch(r"\d+", key) or int(key) >= len(node):
        raise ParameterError(f"perturbation path {path!r}: {key!r} must be an index in [0, {len(node) - 1}]")
    return int(key)


def parse_perturbation(spec: str) -> tuple[str, Callable[[Any], Any], str]:
    """Parse ``PATH*FACTOR``, ``PATH+DELTA`` or ``PATH=VALUE`` into (path, change, label).

    Raises
    ------
    ParameterError
        For any other form.
    """
    m = re.fullmatch(r"([A-Za-z_][\w.]*)([*+=])(.+)", spec.strip())
    if not m:
        raise ParameterError(f"--perturb {spec!r}: expected PATH*FACTOR, PATH+DELTA or PATH=VALUE "
                             f"(e.g. populations.0.params.tau_m*1.000001)")
    path, op, value = m.groups()
    try:
        x = float(value)
    except ValueError:
        raise ParameterError(f"--perturb {spec!r}: {value!r} is not a number") from None
    change = {"*": lambda v: v * x, "+": lambda v: v + x, "=": lambda v: x}[op]
    return path, change, spec.strip()


class PerturbedBackend:
    """Backend-like object: ``base`` backend run on scenarios with one parameter changed.

    Parameters
    ----------
    path : str
        Parameter path (see module docstring).
    change : callable
        New value from the old one.
    base : str
        Registered backend that does the work (default ``reference``).
    label : str, optional
        Text for reports.
    """

    def __init__(self, path: str, change: Callable[[Any], Any], base: str = "reference", label: str | None = None):
        self.path = path
        self.change = change
        self.base = base
        self.label = label or path
        self.families = BACKENDS[base].families
        self.summary = f"{base} with {self.label} (deliberately wrong)"
        self.spec: str | None = None  # set by from_spec: makes the backend picklable (worker processes)

    @classmethod
    def from_spec(cls, spec: str, base: str = "reference") -> "PerturbedBackend":
        path, change, label = parse_perturbation(spec)
        backend = cls(path, change, base, label)
        backend.spec = spec
        return backend

    def __reduce__(self):
        if self.spec is None:  # an arbitrary callable: pickle it as it is (fails for a lambda)
            return super().__reduce__()
        return (PerturbedBackend.from_spec, (self.spec, self.base))

    def check(self) -> None:
        ok = get(self.base)
        getattr(ok, "check", lambda: None)()

    def unsupported(self, scenario: Scenario) -> str | None:
        """The perturbation must apply to the scenario (e.g. ``populations.1`` needs two populations)."""
        try:
            perturb_scenario(scenario, self.path, self.change)
        except (ParameterError, TypeError) as exc:
            return f"perturbation does not apply: {exc}"
        return None

    def run(self, scenario: Scenario, *, record_weight_events: bool = True, on_iteration=None) -> Result:
        nudged = perturb_scenario(scenario, self.path, self.change)
        result = get(self.base).run(nudged, record_weight_events=record_weight_events, on_iteration=on_iteration)
        result.backend = f"{self.base}~perturbed"
        result.meta["perturbation"] = self.label
        return result
