"""Record how Brian2 objects were built, and build them again on another device (cpp_standalone).

Online e-prop copies the user's objects with the values they hold (weights, states, connectivity),
which Brian2 can read only in runtime mode.  :class:`Recorder` builds the objects in runtime mode
and keeps every step (constructor calls, method calls such as ``connect`` and ``run_regularly``,
schedule attributes, values as arrays); :meth:`Recorder.replay` repeats them, for example after
``set_device('cpp_standalone')``, giving objects that hold the same values and code.  Input groups
the learner uses as they are are recorded from their own definitions
(:func:`record_input`: ``PoissonGroup``, ``SpikeGeneratorGroup``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from .attach_inspect import IncompatibleModelError

__all__ = ["Recorder", "record_input"]


@dataclass
class Recorder:
    """Builds Brian2 objects and records the steps; :meth:`replay` builds them again."""

    steps: list[tuple] = field(default_factory=list)
    objects: list[Any] = field(default_factory=list)

    def _ref(self, obj) -> int:
        for k, o in enumerate(self.objects):
            if o is obj:
                return k
        raise KeyError(f"{getattr(obj, 'name', obj)} was not built by this recorder")

    def _resolve(self, value, built: list[Any]):
        if isinstance(value, _Ref):
            return built[value.index]
        return value

    def new(self, cls: Callable, *args, **kwargs):
        """``cls(*args, **kwargs)``, recorded (objects built here may appear in the arguments)."""
        obj = cls(*[self._actual(a) for a in args], **{k: self._actual(v) for k, v in kwargs.items()})
        self.steps.append(("new", cls, [self._wrap(a) for a in args], {k: self._wrap(v) for k, v in kwargs.items()}))
        self.objects.append(obj)
        return obj

    def adopt(self, obj, rebuild: Callable[[], Any]) -> None:
        """Use an existing object here, built by ``rebuild()`` on replay."""
        self.steps.append(("adopt", rebuild))
        self.objects.append(obj)

    def call(self, obj, method: str, *args, **kwargs):
        """``obj.method(*args, **kwargs)``, recorded."""
        self.steps.append(("call", self._ref(obj), method, args, kwargs))
        return getattr(obj, method)(*args, **kwargs)

    def set(self, obj, path: Sequence[Any], attribute: str, value) -> None:
        """``obj.<path>.attribute = value`` (path items: attribute names, or ``[key]`` as a 1-tuple)."""
        self.steps.append(("set", self._ref(obj), tuple(path), attribute, value))
        setattr(_walk(obj, path), attribute, value)

    def values(self, obj, name: str, values) -> None:
        """Set variable ``name`` of ``obj`` to ``values`` (an array in SI), recorded."""
        arr = np.array(values, copy=True)
        self.steps.append(("values", self._ref(obj), name, arr))
        obj.variables[name].set_value(arr)

    def _wrap(self, value):
        for k, o in enumerate(self.objects):
            if o is value:
                return _Ref(k)
        return value

    def _actual(self, value):
        return value

    def replay(self) -> list[Any]:
        """Build every recorded object again (on the current device); returns them in build order."""
        built: list[Any] = []
        for step in self.steps:
            kind = step[0]
            if kind == "new":
                _, cls, args, kwargs = step
                built.append(cls(*[self._resolve(a, built) for a in args],
                                 **{k: self._resolve(v, built) for k, v in kwargs.items()}))
            elif kind == "adopt":
                built.append(step[1]())
            elif kind == "call":
                _, k, method, args, kwargs = step
                getattr(built[k], method)(*args, **kwargs)
            elif kind == "set":
                _, k, path, attribute, value = step
                setattr(_walk(built[k], path), attribute, value)
            elif kind == "values":
                _, k, name, arr = step
                built[k].variables[name].set_value(arr)
        return built


@dataclass(frozen=True)
class _Ref:
    index: int


def _walk(obj, path: Sequence[Any]):
    for item in path:
        obj = obj[item[0]] if isinstance(item, tuple) else getattr(obj, item)
    return obj


def record_input(group) -> Callable[[], Any]:
    """A function that builds the user's input group again from its definition.

    Raises
    ------
    IncompatibleModelError
        For input groups other than PoissonGroup and SpikeGeneratorGroup (standalone replay only).
    """
    import brian2 as b2

    name, dt = group.name, group.clock.dt
    if isinstance(group, b2.PoissonGroup):
        rates = group._rates if isinstance(group._rates, str) else np.asarray(group.rates[:]) * b2.Hz
        ns = dict(group.namespace or {})
        return lambda: b2.PoissonGroup(len(group), rates=rates, namespace=ns, dt=dt, name=name)
    if isinstance(group, b2.SpikeGeneratorGroup):
        idx = np.asarray(group._neuron_index).copy()
        times = np.asarray(group._spike_time).copy() * b2.second
        period = group.period
        return lambda: b2.SpikeGeneratorGroup(len(group), idx, times, period=period, dt=dt, name=name)
    raise IncompatibleModelError(
        f"{type(group).__name__} '{name}': an input group is rebuilt for cpp_standalone only from a PoissonGroup "
        f"or a SpikeGeneratorGroup")
