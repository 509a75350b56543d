"""The builds a validation run needs: their keys, which are missing, and the order of the scenarios.

A backend module may expose ``build_key(scenario) -> str | None`` and ``is_built(scenario) -> bool``
(cheap: nothing is compiled to answer).  :func:`plan_builds` asks every backend about every scenario
before anything runs; :class:`BuildPlan` then chooses the scenarios' order so that those sharing a
build follow each other, never lets two workers make the same build, and starts the large scenarios
(:data:`LARGE_SIZE`), largest first, before the others, so that no build is made twice and the long
tasks do not end the run in one worker while the other has nothing left to do.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

from eprop_plugins import backends as registry
from eprop_plugins.scenario import Scenario

from . import scenario_library as library
from .cells import not_applicable
from .memory import LARGE_SIZE, size_of

__all__ = ["BuildPlan", "LARGE_SIZE", "plan_builds"]


def _call_with_options(hook: Callable[..., Any], sc: Scenario, record_weight_events: bool) -> Any:
    """``hook(sc)``, passing ``record_weight_events`` where the hook takes it (the build may depend on it)."""
    try:
        params = inspect.signature(hook).parameters
    except (TypeError, ValueError):
        params = {}
    return hook(sc, record_weight_events=record_weight_events) if "record_weight_events" in params else hook(sc)


def _build_info(backend: Any, sc: Scenario, record_weight_events: bool) -> tuple[str | None, bool]:
    """``(key, built)`` of the compiled code ``sc`` needs on ``backend`` (``(None, True)``: nothing to build)."""
    key_hook = getattr(backend, "build_key", None)
    if key_hook is None:
        return None, True
    key = _call_with_options(key_hook, sc, record_weight_events)
    if key is None:
        return None, True
    built_hook = getattr(backend, "is_built", None)
    return str(key), bool(_call_with_options(built_hook, sc, record_weight_events)) if built_hook else False


@dataclass
class BuildPlan:
    """What the runner knows before it starts: each scenario's builds, and the order to run them in.

    A scenario is *heavy* while it has a build to make or when it is large: a compiler takes
    0.3-1 GB (a parallel ``make`` more), a long task's backend cell up to 1.8 GB (in a process of its
    own, :mod:`validation.isolated`).  Two workers may compile at once when their builds differ
    (a Brian2 Cython build is one compiler at a time: two use both cores), never the same build,
    and a large scenario runs beside anything: the 2 GB goal is per process, and a large
    scenario's backend cells run in processes of their own, so two of them at once hold two
    processes below the goal (about 3.6 GB in all for the two longest tasks).  Large scenarios
    start first, the largest first (the longest task alone takes 90 s of a warm run: started
    last, it would end the run in one worker).  Every build is made exactly once.  (Until
    2026-12-02 a large scenario ran alone among the heavy ones: the four long tasks then ran one
    after the other, on a warm cache 3 of the run's 3.8 minutes.)
    """

    keys: dict[str, dict[str, str]]  # scenario -> backend -> build key (all builds it uses)
    todo: set[tuple[str, str]]  # (backend, key) not built yet
    sizes: dict[str, float] = field(default_factory=dict)  # scenario -> memory.size_of (large first, largest first)
    running_heavy: dict[int, str] = field(default_factory=dict)  # worker -> heavy scenario it runs

    @property
    def large(self) -> set[str]:
        """The scenarios of at least :data:`LARGE_SIZE`."""
        return {s for s, size in self.sizes.items() if size >= LARGE_SIZE}

    def unbuilt(self, sname: str) -> set[tuple[str, str]]:
        return {(b, k) for b, k in self.keys.get(sname, {}).items() if (b, k) in self.todo}

    def heavy(self, sname: str) -> bool:
        return sname in self.large or bool(self.unbuilt(sname))

    def pick(self, remaining: list[str], last: str | None, worker: int) -> str | None:
        """The next scenario for ``worker`` (None: everything left waits for another worker's heavy one).

        First the scenario sharing most builds with the worker's last one (a build group runs
        consecutively), then heavy before light (builds and long tasks start early), the largest
        first, then the order given; never a heavy one that needs a build another worker is making.
        """
        free = [s for s in remaining if not self._blocked(s, worker)]
        if not free:
            return None
        last_keys = set(self.keys.get(last, {}).items()) if last else set()
        best = max(free, key=lambda s: (len(last_keys & set(self.keys.get(s, {}).items())), self.heavy(s),
                                        self.sizes.get(s, 0.0) if s in self.large else 0.0, -remaining.index(s)))
        if self.heavy(best):
            self.running_heavy[worker] = best
        return best

    def _blocked(self, sname: str, worker: int) -> bool:
        """True if ``sname`` must wait for the heavy scenario of another worker (a build both need)."""
        if not self.heavy(sname):
            return False
        mine = self.unbuilt(sname)
        for w, other in self.running_heavy.items():
            if w != worker and mine & self.unbuilt(other):
                return True
        return False

    def cell_finished(self, sname: str, backend: str) -> None:
        """A backend cell of ``sname`` ended: its build exists now, and scenarios waiting only for it may start.

        Without this a long task that made a build everyone needs (the NESTML module) kept the others
        waiting until all of its cells had run (measured: one worker idle for minutes at the start of
        an empty-cache run).
        """
        key = self.keys.get(sname, {}).get(backend)
        if key is not None:
            self.todo.discard((backend, key))

    def finished(self, sname: str) -> None:
        for w in [w for w, s in self.running_heavy.items() if s == sname]:
            del self.running_heavy[w]
        self.todo -= self.unbuilt(sname)


def plan_builds(scen_names: Sequence[str], names: Sequence[str], available: Mapping[str, dict[str, Any]],
                extra: Mapping[str, Any], record_weight_events: bool) -> BuildPlan:
    """Read every scenario's build keys (nothing is compiled)."""
    keys: dict[str, dict[str, str]] = {}
    todo: set[tuple[str, str]] = set()
    sizes: dict[str, float] = {}
    for sname in scen_names:
        try:
            sc = library.get(sname)[0].validated()
        except Exception:  # reported when the scenario runs
            continue
        sizes[sname] = size_of(sc)
        keys[sname] = {}
        for bname in names:
            if not available[bname]["available"] or bname == "reference":
                continue
            backend = extra[bname] if bname in extra else registry.get(bname)
            try:
                if not_applicable(bname, backend, available[bname]["families"], sc):
                    continue
                key, built = _build_info(backend, sc, record_weight_events)
            except Exception:  # the cell will report the error
                continue
            if key is not None:
                keys[sname][bname] = key
                if not built:
                    todo.add((bname, key))
    return BuildPlan(keys, todo, sizes=sizes)
