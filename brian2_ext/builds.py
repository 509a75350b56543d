"""Compiled Brian2 code of a scenario: its key, where it is cached, and what the user is told while it compiles.

Two kinds of build:

* ``standalone`` — one cpp_standalone binary per generated code, installed by
  :mod:`brian2_ext.sessions` as ``<cache>/brian2/standalone-builds/<source key>/`` through
  :mod:`eprop_plugins.cache` (private build directory, manifest, atomic rename, inter-process lock).
  The source key (:func:`source_key`) hashes the generated sources, so every structure whose code
  is the same -- e.g. sparse scenarios with other connections, or a structure key changed by an edit
  of this package that leaves the code as it was -- uses one binary; an index
  (``standalone-index/<structure key>``) maps the structure key to it for :func:`is_built`;
* ``cython`` — Brian2 runtime mode compiles one Cython module per code object into
  ``<cache>/brian2/cython/`` (Brian2's own cache, keyed by the generated code); a marker file per
  structure records that the structure's modules were compiled once, so that :func:`is_built` stays
  cheap.  The ``numpy`` target compiles nothing.

:func:`build_key` and :func:`is_built` never generate code: the validation calls them to group its
cells by build and to say how many builds are left.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from pathlib import Path

from eprop_plugins.cache import atomic_write, cache_root, verify_manifest

from .config import cpu_tag
from .network import runtime_structure_hash, structure_hash, structure_of
from .network_event import event_structure_of

__all__ = ["MODES", "CythonCompiles", "announce", "build_key", "estimate_seconds", "find_build", "is_built", "record_compile_seconds",
           "remember_build", "runtime_marker", "scenario_structure", "source_key", "standalone_directory",
           "structure_key"]

#: generated files that are compiled (hashed by :func:`source_key`); data files are read at run time
_SOURCE_SUFFIXES = (".cpp", ".h", ".hpp", ".c", ".cc")

#: code-generation modes of :func:`brian2_ext.runner.run_scenario`
MODES = ("cython", "numpy", "standalone")

#: first-build estimates (s) before any build has been measured on this machine (2 shared cores)
_DEFAULT_SECONDS = {"standalone": 120.0, "cython": 60.0}


def _brian2_dir(*parts: str) -> Path:
    path = cache_root().joinpath("brian2", *parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


class CythonCompiles:
    """Whether this process compiled a Brian2 Cython module between construction and :meth:`any`.

    Counts the modules this process loaded since construction whose files were not in the cache
    then; modules that another process compiles meanwhile (``pytest -n``, two notebooks) do not
    count, unless this process loads them.
    """

    def __init__(self) -> None:
        self.files = {p.name for p in _brian2_dir("cython").glob("*.so")}
        self.loaded = {name for name in sys.modules if name.startswith("_cython_magic_")}

    def any(self) -> bool:
        for name, module in list(sys.modules.items()):
            if name.startswith("_cython_magic_") and name not in self.loaded:
                path = getattr(module, "__file__", None)
                if path and Path(path).name not in self.files:
                    return True
        return False


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
    """Installed cpp_standalone build of source key ``key`` (it may not exist yet)."""
    return _brian2_dir("standalone-builds") / key


def _is_source(rel: str) -> bool:
    top = rel.split("/", 1)[0]
    return top not in ("static_arrays", "results") and (rel.endswith(_SOURCE_SUFFIXES) or rel == "makefile")


#: Brian2's automatic suffixes of code-object and clock names ("_1" while a name is taken in the process)
_AUTO_SUFFIX = re.compile(r"(_codeobject|_clock)_\d+(?![0-9A-Za-z])")
#: the results file of a clock's variable is named with a hash of the (suffixed) name
_CLOCK_RESULT = re.compile(r"(_clock_(?:dt|t|timestep))_\d+(?=\")")
#: main.cpp resets every clock with independent assignments, in the order of a Python set (it varies
#: from process to process)
_CLOCK_RESET = re.compile(r"^\s*_array_\w+_(timestep|t)\[0\] = [0-9.]+;\s*$")


def _normalised(rel: str, data: bytes) -> tuple[str, bytes]:
    """A generated file with what does not change the program's meaning made canonical.

    The code-object and clock names are renamed consistently (they name no input file, and no
    results file that is read back: those of monitors and synapses carry their fixed names), and
    the clock resets of ``main.cpp`` are sorted.
    """
    text = _CLOCK_RESULT.sub(r"\1", _AUTO_SUFFIX.sub(r"\1", data.decode("utf-8", "replace")))
    if rel == "main.cpp":
        lines, out, block = text.split("\n"), [], []
        for line in lines + [""]:
            if _CLOCK_RESET.match(line):
                block.append(line)
                continue
            out += sorted(block)
            block = []
            out.append(line)
        text = "\n".join(out[:-1])
    return _AUTO_SUFFIX.sub(r"\1", rel), text.encode()


def _key_of(files: dict[str, bytes]) -> str:
    """Key of a set of generated source files (relative path -> content)."""
    canonical = dict(_normalised(rel, data) for rel, data in files.items())
    if len(canonical) < len(files):  # two names differ only in their suffix: keep them apart
        canonical = files
    h = hashlib.sha256(cpu_tag().encode())  # -march=native: the same sources give another binary elsewhere
    for rel in sorted(canonical):
        h.update(f"{rel}\0{hashlib.sha256(canonical[rel]).hexdigest()}\0".encode())
    return h.hexdigest()[:16]


def source_key(project: Path) -> str:
    """Key of a generated cpp_standalone project: its compiled sources and makefile.

    The input arrays (``static_arrays/``: weights, connections, inputs) are read by the binary at run
    time and are not part of it; names and orders that vary from process to process without
    changing the program are made canonical first (:func:`_normalised`).
    """
    files = {}
    for path in project.rglob("*"):
        rel = path.relative_to(project).as_posix()
        if path.is_file() and _is_source(rel):
            files[rel] = path.read_bytes()
    return _key_of(files)


def find_build(key: str) -> Path | None:
    """The installed build of source key ``key`` (manifest sizes verified), or None.

    Builds installed under another name (by structure key, before builds were named by their
    sources) are found through their manifests; each is examined once (``standalone-index/dir-*``).
    """
    dest = standalone_directory(key)
    if verify_manifest(dest, hashes=False):
        return dest
    index = _brian2_dir("standalone-index")
    for directory in sorted(dest.parent.iterdir()):
        if not directory.is_dir() or directory.name.startswith(".") or directory.name == key:
            continue
        note = index / f"dir-{directory.name}"
        try:
            found = note.read_text().strip()
        except OSError:
            found = source_key(directory) if verify_manifest(directory, hashes=False) else ""
            if found:
                atomic_write(note, found)
        if found == key and verify_manifest(directory, hashes=False):
            return directory
    return None


def remember_build(structure: str, key: str) -> None:
    """Record that structure key ``structure`` generates the code of source key ``key`` (for :func:`is_built`)."""
    note = _brian2_dir("standalone-index") / structure
    try:
        if note.read_text().strip() == key:
            return
    except OSError:
        pass
    atomic_write(note, key)


def runtime_marker(key: str) -> Path:
    """Marker file written once the Cython modules of structure ``key`` have been compiled."""
    return _brian2_dir("cython-built") / key


def is_built(sc, mode: str, **options) -> bool:
    """True if the scenario's build is cached (no code generation; manifest sizes checked for standalone)."""
    key = build_key(sc, mode, **options)
    if key is None:
        return True
    if mode == "standalone":
        try:
            source = (_brian2_dir("standalone-index") / key).read_text().strip()
        except OSError:  # this structure has not been generated here yet
            return False
        return find_build(source) is not None
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


def announce(mode: str, scenario: str, key: str, build: str | None = None) -> None:
    """One line on stderr before a compilation, so that a user never waits silently.

    ``key`` is the structure key; ``build`` the source key naming the standalone build directory.
    """
    kind = "standalone" if mode == "standalone" else "runtime"
    where = f", build {build}" if build else ""
    print(f"eprop: compiling Brian2 {kind} code for {scenario} (structure {key}{where}, first use; "
          f"about {estimate_seconds(mode):.0f} s)", file=sys.stderr, flush=True)
