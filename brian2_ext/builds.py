"""Compiled Brian2 code of a scenario: its key, where it is cached, and what the user is told while it compiles.

Two kinds of build:

* ``standalone`` — one cpp_standalone binary per structure, installed by :mod:`brian2_ext.sessions` as
  ``<cache>/brian2/standalone-builds/<key>/`` through :mod:`eprop_plugins.cache` (private build
  directory, manifest, atomic rename, inter-process lock);
* ``cython`` — Brian2 runtime mode compiles one Cython module per code object into
  ``<cache>/brian2/cython/`` (Brian2's own cache, keyed by the generated code); a marker file per
  structure records that the structure's modules were compiled once, so that :func:`is_built` stays
  cheap.  The ``numpy`` target compiles nothing.

:func:`build_key` and :func:`is_built` never generate code: the validation calls them to group its
cells by build and to say how many builds are left.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from eprop_plugins.cache import atomic_write, cache_root, verify_manifest

from .network import runtime_structure_hash, structure_hash, structure_of
from .network_event import event_structure_of

__all__ = ["MODES", "announce", "build_key", "estimate_seconds", "is_built", "record_compile_seconds",
           "runtime_marker", "scenario_structure", "standalone_directory", "structure_key"]

#: code-generation modes of :func:`brian2_ext.runner.run_scenario`
MODES = ("cython", "numpy", "standalone")

#: first-build estimates (s) before any build has been measured on this machine (2 shared cores)
_DEFAULT_SECONDS = {"standalone": 120.0, "cython": 60.0}


def _brian2_dir(*parts: str) -> Path:
    path = cache_root().joinpath("brian2", *parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def scenario_structure(sc, *, record: bool = True, record_weight_events: bool = True):
    """The structure of a validated scenario's generated code (original or event family)."""
    if sc.family == "event":
        return event_structure_of(sc, record=record, weight_trace=record_weight_events)
    return structure_of(sc, record=record)


def structure_key(st, dt: float, record_synapses, mode: str, threads: int = 1) -> str:
    """Cache key of the build of structure ``st`` in ``mode`` (16 hex digits).

    Runtime mode keys the generated Cython code, which does not depend on sizes and step counts
    (:func:`brian2_ext.network.runtime_structure_hash`): scenarios that share it share every module.
    """
    if mode == "standalone":
        return structure_hash(st, dt, repr(list(record_synapses)) + f"threads={threads}")
    return runtime_structure_hash(st, dt, record_synapses, f"target={mode}")


def build_key(sc, mode: str, *, record: bool = True, record_weight_events: bool = True,
              threads: int = 1) -> str | None:
    """Key of the compiled artefact a validated scenario needs in ``mode`` (None: nothing to compile)."""
    if mode == "numpy":
        return None
    st = scenario_structure(sc, record=record, record_weight_events=record_weight_events)
    return structure_key(st, sc.dt, sc.record_synapses if record else [], mode, threads)


def standalone_directory(key: str) -> Path:
    """Installed cpp_standalone build of ``key`` (it may not exist yet)."""
    return _brian2_dir("standalone-builds") / key


def runtime_marker(key: str) -> Path:
    """Marker file written once the Cython modules of structure ``key`` have been compiled."""
    return _brian2_dir("cython-built") / key


def is_built(sc, mode: str, **options) -> bool:
    """True if the scenario's build is cached (no code generation; manifest sizes checked for standalone)."""
    key = build_key(sc, mode, **options)
    if key is None:
        return True
    if mode == "standalone":
        return verify_manifest(standalone_directory(key), hashes=False)
    return runtime_marker(key).is_file()


def _times_file() -> Path:
    return _brian2_dir() / "compile-seconds.json"


def estimate_seconds(mode: str) -> float:
    """Expected duration of a first build in ``mode``: the last one measured here, else a default."""
    try:
        return float(json.loads(_times_file().read_text())[mode])
    except (OSError, ValueError, KeyError, TypeError):
        return _DEFAULT_SECONDS.get(mode, 60.0)


def record_compile_seconds(mode: str, seconds: float) -> None:
    """Remember the duration of a build for the next :func:`estimate_seconds`."""
    try:
        times = json.loads(_times_file().read_text())
        if not isinstance(times, dict):
            times = {}
    except (OSError, ValueError):
        times = {}
    times[mode] = round(float(seconds), 1)
    atomic_write(_times_file(), json.dumps(times, sort_keys=True))


def announce(mode: str, scenario: str, key: str) -> None:
    """One line on stderr before a compilation, so that a user never waits silently."""
    kind = "standalone" if mode == "standalone" else "runtime"
    print(f"eprop: compiling Brian2 {kind} code for {scenario} (structure {key}, first use; "
          f"about {estimate_seconds(mode):.0f} s)", file=sys.stderr, flush=True)
