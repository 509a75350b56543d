"""A Brian2 e-prop network ready to run: in runtime mode, or as a cached cpp_standalone binary.

Both families use these sessions (the network class is a parameter).  The standalone build cache
is safe under concurrency and interruption (:mod:`eprop_plugins.cache`):

* the code is generated into a private working directory of this process, and the build is looked
  up by the key of those sources (:func:`brian2_ext.builds.source_key`), so structures with the same
  code share one binary;
* on a cache miss it is compiled in a private build directory under an inter-process lock (a second
  process that needs the same structure waits, with a message, and then uses the first one's build)
  and installed by one rename with a manifest of sizes and SHA-256 hashes;
* a cached build is used only if its manifest verifies (a build killed half-way has none and is
  rebuilt); an installed directory is never written into: the binary is hard-linked into the
  working directory, where the run's input arrays and results live.

Brian2's runtime mode compiles Cython modules into its own cache (one module per generated code,
compiled under Brian2's per-module file lock).  Errors of code generation, compilation and the run
are re-raised as :class:`~eprop_plugins.errors.BackendError`.
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from eprop_plugins.cache import atomic_write, install_directory, locked, private_directory, verify_manifest
from eprop_plugins.errors import BackendError
from eprop_plugins.parameters import ParameterError

from . import builds
from .config import cache_dir, configure, lighten_makefile
from .network import EpropNetwork
from .network_common import connectivity_fingerprint

__all__ = ["FirstStep", "RuntimeSession", "StandaloneSession", "backend_errors", "open_session"]


@contextmanager
def backend_errors(what: str, backend: str, scenario: str, hint: str) -> Iterator[None]:
    """Re-raise what Brian2 (or the compiler it calls) raises inside the block as a BackendError."""
    try:
        yield
    except (ParameterError, BackendError, KeyboardInterrupt):
        raise
    except Exception as exc:
        raise BackendError(what, backend=backend, scenario=scenario, hint=hint, original=exc) from exc


_CODEGEN_HINT = ("this is a bug of the Brian2 backend for this scenario: please report it with the scenario "
                 "file; another backend (e.g. reference) runs it")
_COMPILE_HINT = ("check that g++ and make work (`eprop info` lists what is missing) and that the cache directory is writable; "
                 "the next run starts the build again")


class FirstStep:
    """When the first step of a runtime ``Network.run`` starts.

    Brian2 generates (and on a first use compiles) the code of every object at the start of each
    ``Network.run``; the time from calling the run to its first step is that generation.  Add
    :meth:`operation` to the network before the run; after it, :meth:`seconds_since` the call.
    """

    def __init__(self) -> None:
        self.time: float | None = None

    def operation(self, clock: Any = None) -> Any:
        """A ``NetworkOperation`` at the start of every step (on ``clock``; default: Brian2's default clock)."""
        import brian2 as b2

        kwargs = {} if clock is None else {"clock": clock}
        return b2.NetworkOperation(self._mark, when="start", name="eprop_first_step", **kwargs)

    def _mark(self) -> None:
        if self.time is None:
            self.time = time.perf_counter()

    def seconds_since(self, t0: float) -> float:
        """Seconds from ``t0`` (``time.perf_counter()``) to the first step (to now if no step ran)."""
        return (self.time if self.time is not None else time.perf_counter()) - t0


class RuntimeSession:
    """A network in Brian2's runtime mode (``target`` 'cython' or 'numpy').

    Brian2 generates (and on a first use compiles) the code of every object at the start of each
    ``Network.run``, 0.3-1.5 s for these networks even when every module is cached, so the session
    makes no run of its own: the first :meth:`advance` generates the code, and :class:`FirstStep` tells
    how long that took.

    Attributes
    ----------
    model : EpropNetwork
    key : str
        Structure key (:func:`brian2_ext.builds.structure_key`).
    build_seconds : float
        Network construction, and after the first :meth:`advance` its code generation (with
        compilation on a first use), s.
    generation_seconds : float
        Code generation (and compilation) at the start of the first :meth:`advance`, s (0.0 before it).
    compile_seconds : float
        Equal to ``build_seconds`` when a Cython module was compiled, else 0.0, s.
    cached : bool
        No Cython module had to be compiled (known after the first :meth:`advance`).
    """

    def __init__(self, st, dt: float, record_synapses, target: str = "cython", network_cls=EpropNetwork, *,
                 scenario: str = "", backend: str = "brian2", synapses=None):
        import brian2 as b2

        t0 = time.perf_counter()
        configure(target)
        b2.set_device("runtime")
        self.key = builds.structure_key(st, dt, record_synapses, target)
        self._target, self._scenario, self._backend = target, scenario, backend
        cython = target == "cython"
        self._marker = builds.runtime_marker(self.key)
        self._first_use = cython and not self._marker.is_file()
        if cython:
            _remove_truncated_modules()  # before Brian2 loads any (Synapses load their spike queue's at creation)
        if self._first_use:
            builds.announce(target, scenario, self.key)
        self._compiles = builds.CythonCompiles() if cython else None  # the numpy target compiles nothing
        with backend_errors("Brian2 could not create the network", backend, scenario, _CODEGEN_HINT):
            self.model = network_cls(st, dt, record_synapses, synapses)
        self._first_step = FirstStep()
        self.model.net.add(self._first_step.operation())
        self.build_seconds = time.perf_counter() - t0
        self.generation_seconds = 0.0
        self.cached, self.compiled, self.compile_seconds = True, False, 0.0
        self._generated = False

    def set_values(self, values: dict[Any, np.ndarray]) -> None:
        """Assign parameters, initial weights, inputs and targets before the first step."""
        import brian2 as b2

        for key, val in values.items():
            if isinstance(key, b2.TimedArray):
                key.values[...] = val  # the generated code reads this buffer
            else:
                key[:] = val

    def advance(self, steps: int) -> None:
        """Simulate ``steps`` more steps (state carries over); the first call generates the code first."""
        import brian2 as b2

        m = self.model
        if self._generated:
            m.net.run(steps * m.dt * b2.ms, namespace={})
            return
        t0 = time.perf_counter()
        what = f"Brian2 could not generate or compile its {self._target} code, or run it"
        hint = _COMPILE_HINT if self._target == "cython" else _CODEGEN_HINT
        with backend_errors(what, self._backend, self._scenario, hint):
            m.net.run(steps * m.dt * b2.ms, namespace={})
        self._generated = True
        self.generation_seconds = self._first_step.seconds_since(t0)
        self.build_seconds += self.generation_seconds
        self.cached = self._compiles is None or not self._compiles.any()
        self.compiled = not self.cached
        self.compile_seconds = 0.0 if self.cached else self.build_seconds
        if self._first_use:
            if self.compiled:  # the estimate of the next first use
                builds.record_compile_seconds(self._target, self.build_seconds)
            atomic_write(self._marker, self.key)


def _remove_truncated_modules() -> None:
    """Delete the truncated modules of Brian2's Cython cache, so that Brian2 compiles them again.

    Brian2 counts a module as compiled when its ``.so`` file exists, and the linker writes that file
    in place: a compilation killed while linking leaves a truncated module, which ``dlopen`` may
    refuse or load and crash on (SIGBUS) when it reaches a missing page.  An ELF shared object ends
    with its section header table, so a file shorter than ``e_shoff + e_shnum * e_shentsize`` is
    incomplete.  A suspicious file is re-checked under Brian2's own lock of that module (a process
    still linking it holds the lock).
    """
    for path in cache_dir("cython").glob("*.so"):
        if _elf_complete(path):
            continue
        lock = path.parent / f"{path.name.split('.')[0]}.lock"
        with locked(lock, f"another process is compiling the Brian2 Cython module {path.name}; waiting for it"):
            if path.exists() and not _elf_complete(path):
                print(f"eprop: the Brian2 Cython module {path.name} is truncated (an interrupted compilation); "
                      f"it is compiled again", file=sys.stderr, flush=True)
                path.unlink()


def _elf_complete(path: Path) -> bool:
    """False if ``path`` is a truncated 64-bit ELF file (other formats count as complete)."""
    try:
        with open(path, "rb") as f:
            head = f.read(64)
        size = path.stat().st_size
    except FileNotFoundError:
        return True
    if sys.platform.startswith("linux") and (len(head) < 64 or head[:4] != b"\x7fELF"):
        return False
    if head[:4] != b"\x7fELF" or head[4] != 2:  # not ELF64: no check
        return True
    order = "little" if head[5] == 1 else "big"
    shoff = int.from_bytes(head[0x28:0x30], order)
    shentsize, shnum = int.from_bytes(head[0x3A:0x3C], order), int.from_bytes(head[0x3C:0x3E], order)
    return size >= shoff + shentsize * shnum


class StandaloneSession:
    """A network compiled once with cpp_standalone into the build cache, keyed by its structure.

    Attributes
    ----------
    model : EpropNetwork
    key : str
        Structure key.
    source_key : str
        Key of the generated sources (:func:`brian2_ext.builds.source_key`).
    connections : str
        :func:`~brian2_ext.network_common.connectivity_fingerprint` of the sparse projections
        (the working directory holds their connection arrays).
    directory : Path
        The installed build (read-only: binary, sources, manifest).
    workdir : Path
        This process's working directory of the build (generated code, input arrays, results).
    build_seconds : float
        Network construction, code generation, and compilation on a cache miss, s.
    compile_seconds : float
        Compilation (0.0 on a cache hit), s.
    cached : bool
        A verified build was found (possibly after waiting for another process that built it).
    """

    _active: "StandaloneSession | None" = None  # Brian2 holds one standalone project per process
    _device_used = False

    def __init__(self, st, dt: float, record_synapses, threads: int = 1, network_cls=EpropNetwork, *,
                 scenario: str = "", backend: str = "brian2-standalone", synapses=None):
        import brian2 as b2
        from brian2.devices import device_module

        t0 = time.perf_counter()
        self.key = builds.structure_key(st, dt, record_synapses, "standalone", threads)
        self.scenario, self.backend = scenario, backend
        configure("cython", threads, standalone=True)
        dev = device_module.all_devices["cpp_standalone"]
        if StandaloneSession._active is not None:
            StandaloneSession._active.discard()
        if StandaloneSession._device_used:  # a previous session, or a build that failed
            dev.reinit()
            # Brian2 suffixes the name of a code object whose name is still in use ("_1"): free the old
            # network first, so that the generated sources (and the cache key) do not depend on history
            StandaloneSession._active = None
            import gc

            gc.collect()
        # the device records the default clock's dt when it is set: make it the same in every session
        b2.defaultclock.dt = dt * b2.ms
        b2.set_device("cpp_standalone", build_on_run=False)
        StandaloneSession._device_used = True
        self.device = b2.get_device()
        self.connections = connectivity_fingerprint(synapses)
        self.workdir = _working_directory(self.key)
        try:
            with backend_errors("Brian2 could not generate the cpp_standalone code", backend, scenario,
                                _CODEGEN_HINT):
                self.model = network_cls(st, dt, record_synapses, synapses)
                # no report: with one, Brian2's main loop calls std::clock() (a clock_gettime system call for
                # process CPU time) before every object in every step, 26 per step here: ~0.5 M calls and
                # about as much wall time as the simulation itself on the sine task
                self.model.net.run(self.model.R * dt * b2.ms, namespace={})
                self.device.build(directory=str(self.workdir), compile=False, run=False, with_output=False)
                lighten_makefile(self.workdir)
            self.source_key = builds.source_key(self.workdir)
            self.directory = builds.find_build(self.source_key) or builds.standalone_directory(self.source_key)
            self.compile_seconds = self._ensure_binary()
            builds.remember_build(self.key, self.source_key)
            _link(self.directory / "main", self.workdir / "main")
        except BaseException:
            self.discard()
            raise
        finally:
            b2.set_device("runtime")  # leave runtime mode active for other code in this process
        self.cached = self.compile_seconds == 0.0
        self.compiled = not self.cached
        self.build_seconds = time.perf_counter() - t0
        StandaloneSession._active = self

    def _ensure_binary(self) -> float:
        """Install the binary of this structure unless a verified one is cached; return the compile time (s)."""
        dest = self.directory
        if verify_manifest(dest):
            return 0.0
        dest = builds.standalone_directory(self.source_key)
        with locked(f"{dest}.lock", f"another process is compiling Brian2 standalone code for structure "
                                    f"{self.key}; waiting for it"):
            if verify_manifest(dest):  # built by the process we waited for
                self.directory = dest
                return 0.0
            for stale in dest.parent.glob(f".{dest.name}.build-*"):  # killed builds (we hold the lock)
                shutil.rmtree(stale, ignore_errors=True)
            builds.announce("standalone", self.scenario, self.key, self.source_key)
            t0 = time.perf_counter()
            build = private_directory(dest)
            try:
                shutil.copytree(self.workdir, build, dirs_exist_ok=True, ignore=shutil.ignore_patterns("results"))
                from brian2.codegen.cpp_prefs import get_compiler_and_args

                with backend_errors("the C++ compilation of the Brian2 standalone code failed", self.backend,
                                    self.scenario, _COMPILE_HINT):
                    self.device.compile_source(str(build), get_compiler_and_args()[0], False, False)
                    if not (build / "main").is_file():
                        raise RuntimeError(f"make produced no binary in {build}")
                install_directory(build, dest)
                self.directory = dest
            except BaseException:
                shutil.rmtree(build, ignore_errors=True)
                raise
            seconds = time.perf_counter() - t0
            builds.record_compile_seconds("standalone", seconds)
            return max(seconds, 1e-9)

    @classmethod
    def get(cls, st, dt, record_synapses, threads: int = 1, network_cls=EpropNetwork, *, scenario: str = "",
            backend: str = "brian2-standalone", synapses=None) -> "StandaloneSession":
        """The session of this structure and these connections, reusing the one built last in this process."""
        key = builds.structure_key(st, dt, record_synapses, "standalone", threads)
        active = cls._active
        if (active is not None and active.key == key and active.connections == connectivity_fingerprint(synapses)
                and active.workdir.is_dir()):
            active.compile_seconds, active.cached, active.compiled, active.build_seconds = 0.0, True, False, 0.0
            active.scenario, active.backend = scenario, backend
            return active
        return cls(st, dt, record_synapses, threads, network_cls, scenario=scenario, backend=backend,
                   synapses=synapses)

    @classmethod
    def active(cls) -> "StandaloneSession | None":
        """The session built last in this process (None before the first)."""
        return cls._active

    def run(self, values: dict[Any, np.ndarray]) -> None:
        """One run of the binary over the whole scenario (inputs and results in :attr:`workdir`)."""
        self.device.project_dir = str(self.workdir)  # where Brian2 writes the run's input arrays
        with backend_errors("the Brian2 standalone binary failed", self.backend, self.scenario,
                            "the build is verified before use, so this is a bug: please report it with the "
                            "scenario file"):
            self.device.run(directory=str(self.workdir), results_directory="results", with_output=False,
                            run_args=values)
        # the input arrays of later runs of this session would accumulate otherwise
        for fname in self.device.run_args_arrays:
            (self.workdir / "static_arrays" / fname).unlink(missing_ok=True)

    def discard(self) -> None:
        """Remove this process's working directory (the results are read from it until then)."""
        shutil.rmtree(self.workdir, ignore_errors=True)


def _working_directory(key: str) -> Path:
    """A new working directory for one session of ``key``; removes those of processes that have ended."""
    runs = cache_dir("standalone-runs")
    for old in runs.glob("*.run-*-*"):
        try:
            pid = int(old.name.split(".run-")[1].split("-")[0])
        except (IndexError, ValueError):
            continue
        if pid != os.getpid() and not _alive(pid):
            shutil.rmtree(old, ignore_errors=True)
    return private_directory(runs / f"{key}.run-{os.getpid()}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _link(source: Path, target: Path) -> None:
    """Hard-link the installed binary into the working directory (a copy if links are not possible).

    The working directory keeps the binary's inode: a rebuild that replaces the installed directory
    cannot change the file this process runs.
    """
    target.unlink(missing_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


@atexit.register
def _discard_active() -> None:
    if StandaloneSession._active is not None:
        StandaloneSession._active.discard()


def open_session(mode: str, st, dt: float, record_synapses, *, threads: int = 1, network_cls=EpropNetwork,
                 scenario: str = "", backend: str = "brian2", synapses=None):
    """A session for ``mode`` ('cython', 'numpy' or 'standalone'; standalone sessions are reused).

    ``synapses``: the scenario's :func:`~brian2_ext.network_common.network_synapses` (None: all dense).
    """
    if mode == "standalone":
        return StandaloneSession.get(st, dt, record_synapses, threads, network_cls, scenario=scenario,
                                     backend=backend, synapses=synapses)
    if mode in ("cython", "numpy"):
        return RuntimeSession(st, dt, record_synapses, mode, network_cls, scenario=scenario, backend=backend,
                              synapses=synapses)
    raise ParameterError(f"mode = {mode!r}: allowed values are {', '.join(builds.MODES)}")
