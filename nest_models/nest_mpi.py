"""NEST with MPI: build NEST 3.10 from source with MPI, and run a scenario on several MPI ranks.

The pip wheel of NEST has threads but no MPI.  This module

* builds NEST 3.10 from the source distribution on PyPI (``nest_simulator-3.10.0.tar.gz``, which
  holds the full C++ sources; Debian has no NEST package) with Debian's OpenMPI and cmake, and
  installs it into the project cache (``$EPROP_CACHE_DIR/nest-mpi/<version>-<modelset>``,
  atomically, like every build of the project: ``docs/builds.rst``);
* runs a scenario on the ``nestml`` or ``nest-builtin`` backend on ``n`` MPI ranks
  (``mpirun -np n``) with any NEST that has MPI, and gathers the spikes, traces, weights and
  weight events of all ranks into one :class:`~eprop_plugins.results.Result`.

Command line::

    python -m nest_models.nest_mpi build [--jobs 2] [--modelset eprop|full] [--cache-dir DIR]
    python -m nest_models.nest_mpi env                 # shell lines that select the built NEST
    python -m nest_models.nest_mpi run SCENARIO --backend nestml --np 2 --out result.npz

On a cluster, use the cluster's own NEST 3.10 (built with MPI) instead of ``build``: put its
Python package first on ``PYTHONPATH`` (or set ``EPROP_NEST_CONFIG`` to its ``nest-config``) and
``run`` with ``--launcher`` set to the cluster's launcher (``docs/nestml.rst``).
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from eprop_plugins import scenario as scenario_io
from eprop_plugins.backends import check_supported
from eprop_plugins.backends import nest_wiring as nw
from eprop_plugins.backends.nest_builtin import check_original_supported
from eprop_plugins.cache import atomic_write, cache_root, install_directory, locked, private_directory, verify_manifest
from eprop_plugins.results import Result

from . import build as nestml_build

__all__ = [
    "NEST_VERSION",
    "SDIST_SHA256",
    "MODELSETS",
    "NestMpiError",
    "install_directory_of",
    "is_installed",
    "environment",
    "build_nest",
    "BACKENDS",
    "mpirun_command",
    "run",
    "load_result",
    "main",
]

#: the NEST release built (the version the project's wheel pin and NESTML module target)
NEST_VERSION = "3.10.0"
#: SHA-256 of PyPI's ``nest_simulator-3.10.0.tar.gz`` (checked before the sources are used)
SDIST_SHA256 = "8fbd7df4a3e941784d4b1d5825ded234bdc915238faac0982c62e4cb80134d52"
#: NEST model sets: ``eprop`` is NEST's own e-prop set plus what ``add_eprop`` uses (relays and the
#: spike sources of the tutorials); ``full`` is every NEST model (about 4x the compile time)
MODELSETS = ("eprop", "full")
#: models beyond NEST's ``modelsets/eprop`` in the ``eprop`` set: the relay neuron of
#: :func:`nest_models.pynest.add_eprop`, the user-network inputs it reads, a common neuron
_EXTRA_MODELS = ("iaf_psc_delta", "iaf_psc_exp", "spike_train_injector", "dc_generator")
#: Debian packages the build needs: command or file that shows each is present
_DEBIAN = {
    "cmake": "cmake",
    "make": "make",
    "g++": "g++",
    "openmpi-bin": "mpirun",
    "libopenmpi-dev": "mpicxx",
    "libltdl-dev": "/usr/include/ltdl.h",  # NEST loads extension modules (the NESTML module) through ltdl
    "libboost-dev": "/usr/include/boost/version.hpp",
}
#: and for the ``full`` model set (NEST's GSL-based models)
_DEBIAN_FULL = {"libgsl-dev": "/usr/include/gsl/gsl_version.h"}


class NestMpiError(RuntimeError):
    """NEST could not be built, found or run with MPI; the message says what is missing."""


def install_directory_of(cache: str | os.PathLike | None = None, modelset: str = "eprop") -> Path:
    """Where :func:`build_nest` installs NEST (``<cache root>/nest-mpi/<version>-<modelset>``); may not exist."""
    return cache_root(cache).resolve() / "nest-mpi" / f"{NEST_VERSION}-{modelset}"


def _python_dir(prefix: Path) -> Path:
    return prefix / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"


def is_installed(cache: str | os.PathLike | None = None, modelset: str = "eprop") -> bool:
    """True if a verified NEST build is installed (manifest sizes only: cheap)."""
    prefix = install_directory_of(cache, modelset)
    return verify_manifest(prefix, hashes=False) and (prefix / "bin" / "nest-config").is_file()


def environment(prefix: str | os.PathLike, base: dict[str, str] | None = None) -> dict[str, str]:
    """The process environment that selects the NEST installed at ``prefix``.

    Its Python package first on ``PYTHONPATH``, its ``bin`` first on ``PATH``, and
    ``EPROP_NEST_CONFIG`` naming its ``nest-config`` (the NESTML module is built for it).

    Parameters
    ----------
    prefix : path
        A NEST installation prefix (``bin/nest-config``, ``lib/python3.x/site-packages/nest``).
    base : dict, optional
        Environment to extend (default: ``os.environ``).
    """
    prefix = Path(prefix)
    env = dict(os.environ if base is None else base)
    env["PYTHONPATH"] = os.pathsep.join([str(_python_dir(prefix))] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    env["PATH"] = os.pathsep.join([str(prefix / "bin"), env.get("PATH", "")])
    env[nestml_build.NEST_CONFIG_VARIABLE] = str(prefix / "bin" / "nest-config")
    return env


def _missing_debian_packages(modelset: str) -> list[str]:
    missing = []
    for package, probe in {**_DEBIAN, **(_DEBIAN_FULL if modelset == "full" else {})}.items():
        present = Path(probe).is_file() if probe.startswith("/") else shutil.which(probe) is not None
        if not present:
            missing.append(package)
    return missing


def _ensure_debian_packages(install: bool, modelset: str) -> None:
    """apt-get the missing build packages of a model set (as root), or raise naming them."""
    missing = _missing_debian_packages(modelset)
    if not missing:
        return
    if not install or os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise NestMpiError(f"missing Debian packages for the NEST build: {' '.join(missing)} "
                           f"(install them: apt-get install {' '.join(missing)})")
    print(f"eprop: apt-get install {' '.join(missing)}", file=sys.stderr, flush=True)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-q"], check=True, env=env, stdout=subprocess.DEVNULL)
    subprocess.run(["apt-get", "install", "-y", "-q", "--no-install-recommends", *missing], check=True, env=env,
                   stdout=subprocess.DEVNULL)
    still = _missing_debian_packages(modelset)
    if still:
        raise NestMpiError(f"apt-get did not provide: {' '.join(still)}")


def _download_sources(work: Path, sdist: str | os.PathLike | None) -> Path:
    """NEST's source tree, from a given sdist or PyPI's (``pip download``), its hash checked; returns the tree."""
    if sdist is None:
        # pip is PyPI's client; --no-binary for this package only (its build dependencies come as wheels,
        # pip prepares the sdist's metadata with them, which does not compile NEST)
        dl = work / "download"
        dl.mkdir()
        proc = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", "nest-simulator",
                               "-d", str(dl), f"nest-simulator=={NEST_VERSION}"], capture_output=True, text=True)
        found = sorted(dl.glob("nest_simulator-*.tar.gz"))
        if proc.returncode != 0 or not found:
            raise NestMpiError(f"pip could not download the NEST {NEST_VERSION} sources from PyPI:\n{proc.stderr[-2000:]}")
        sdist = found[0]
    sdist = Path(sdist)
    digest = hashlib.sha256(sdist.read_bytes()).hexdigest()  # 36 MB
    if digest != SDIST_SHA256:
        raise NestMpiError(f"{sdist} has SHA-256 {digest}, not that of PyPI's nest_simulator-{NEST_VERSION}.tar.gz "
                           f"({SDIST_SHA256})")
    with tarfile.open(sdist) as tar:
        tar.extractall(work / "src", filter="data")
    tree = work / "src" / f"nest_simulator-{NEST_VERSION}"
    if not (tree / "CMakeLists.txt").is_file() or not (tree / "nestkernel").is_dir():
        raise NestMpiError(f"{sdist} holds no NEST source tree (no CMakeLists.txt / nestkernel/)")
    return tree


def _models(tree: Path, modelset: str) -> list[str]:
    """The cmake ``-Dwith-models`` list of the model set (NEST's ``modelsets/eprop`` plus the extras)."""
    lines = (tree / "modelsets" / "eprop").read_text().splitlines()
    models = [ln.strip() for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]
    return models + [m for m in _EXTRA_MODELS if m not in models]


def _run_logged(cmd: list[str], log: Path, cwd: Path, env: dict[str, str]) -> None:
    """Run ``cmd`` at the lowest CPU priority in its own process group, output appended to ``log``; kill the group on interruption."""
    with open(log, "a") as out:
        out.write(f"\n$ {' '.join(cmd)}\n")
        out.flush()
        proc = subprocess.Popen(["nice", "-n", "19", *cmd], cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
        try:
            code = proc.wait()
        except BaseException:  # Ctrl-C or a kill of this process: stop cmake, make and the compilers too
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()
            raise
    if code != 0:
        text = log.read_text(errors="replace").splitlines()
        errors = [ln for ln in text if ": error:" in ln or "CMake Error" in ln or "fatal error" in ln]
        raise NestMpiError(f"{cmd[0]} failed (exit {code}); log {log}:\n" + "\n".join(errors[:20] or text[-30:]))


def build_nest(
    *,
    cache: str | os.PathLike | None = None,
    modelset: str = "eprop",
    jobs: int = 2,
    sdist: str | os.PathLike | None = None,
    apt: bool = True,
    force: bool = False,
) -> Path:
    """Build NEST from source with MPI and OpenMP and install it into the cache; return the prefix.

    The build runs at ``nice -n 19`` with ``jobs`` compiler processes, in a private directory
    beside the destination, under the destination's lock; the installation is staged with
    ``make install DESTDIR=...`` and moved into place by one rename with a manifest.  A verified
    installation is reused unless ``force``.

    Parameters
    ----------
    cache : path, optional
        Cache root (default ``$EPROP_CACHE_DIR`` or ``~/.cache/eprop-plugins``).
    modelset : {"eprop", "full"}
        NEST models compiled in (see :data:`MODELSETS`).
    jobs : int
        Parallel compiler processes (``make -j``).
    sdist : path, optional
        A local ``nest_simulator-3.10.0.tar.gz`` (default: downloaded from PyPI with pip).
    apt : bool
        Install missing Debian packages with ``apt-get`` when running as root.
    force : bool
        Rebuild even if installed.

    Returns
    -------
    Path
        The installation prefix (``bin/nest-config``, ``lib/python3.x/site-packages/nest``).

    Raises
    ------
    NestMpiError
        A package is missing, the sources do not verify, or cmake/make failed (with the log's errors).
    """
    if modelset not in MODELSETS:
        raise NestMpiError(f"modelset {modelset!r}: choose one of {', '.join(MODELSETS)}")
    prefix = install_directory_of(cache, modelset)
    if not force and is_installed(cache, modelset) and verify_manifest(prefix, hashes=True):
        return prefix
    with locked(prefix.with_name(f"{prefix.name}.lock"), f"another process is building NEST into {prefix}; waiting ..."):
        if not force and is_installed(cache, modelset) and verify_manifest(prefix, hashes=True):
            return prefix
        for p in prefix.parent.glob(f".{prefix.name}.build-*"):  # left by a killed build (we hold the lock)
            shutil.rmtree(p, ignore_errors=True)
        t0 = time.perf_counter()
        work = private_directory(prefix)
        log = work / "build.log"
        print(f"eprop: building NEST {NEST_VERSION} with MPI ({modelset} models, nice 19, -j{jobs}) into {prefix}; "
              f"log {log}", file=sys.stderr, flush=True)
        try:
            tree = _download_sources(work, sdist)  # verified before anything is installed or compiled
            _ensure_debian_packages(apt, modelset)
            build = work / "build"
            build.mkdir()
            venv_bin = Path(sys.executable).parent
            env = dict(os.environ, PATH=os.pathsep.join([str(venv_bin), os.environ.get("PATH", "")]))
            models = ["-Dwith-modelset=full"] if modelset == "full" else ["-Dwith-models=" + ";".join(_models(tree, modelset))]
            _run_logged(["cmake", str(tree), f"-DCMAKE_INSTALL_PREFIX={prefix}", "-DCMAKE_BUILD_TYPE=Release",
                         "-Dwith-mpi=ON", "-Dwith-openmp=ON", "-Dwith-python=ON", "-Dwith-ltdl=ON",
                         "-Dwith-boost=ON", f"-Dwith-gsl={'ON' if modelset == 'full' else 'OFF'}",
                         f"-DPython_EXECUTABLE={sys.executable}", *models], log, build, env)
            t_configure = time.perf_counter() - t0
            _run_logged(["make", f"-j{jobs}"], log, build, env)
            stage = work / "stage"
            _run_logged(["make", "install", f"DESTDIR={stage}"], log, build, env)
            staged = stage / prefix.relative_to(prefix.anchor)
            if not (staged / "bin" / "nest-config").is_file():
                raise NestMpiError(f"make install wrote no bin/nest-config under {staged}")
            seconds = time.perf_counter() - t0
            shutil.copy2(log, staged / "build.log")
            (staged / "build.json").write_text(json.dumps(
                {"nest": NEST_VERSION, "modelset": modelset, "jobs": jobs, "sdist_sha256": SDIST_SHA256,
                 "configure_seconds": round(t_configure, 1), "build_seconds": round(seconds, 1),
                 "python": sys.executable}, indent=1))
            install_directory(staged, prefix)
        except BaseException as exc:
            if isinstance(exc, NestMpiError):
                raise NestMpiError(f"{exc}\n(build directory kept: {work})") from None
            shutil.rmtree(work, ignore_errors=True)
            raise
        shutil.rmtree(work, ignore_errors=True)
    print(f"eprop: built NEST {NEST_VERSION} with MPI in {seconds / 60:.1f} min: {prefix}", file=sys.stderr, flush=True)
    return prefix


#: the directory holding this package (put on the ranks' PYTHONPATH after NEST's package)
_REPOSITORY = Path(__file__).resolve().parents[1]
#: the NEST backends this runner runs (their layouts: NESTML neurons or NEST's built-in ones)
BACKENDS = ("nestml", "nest-builtin")
#: seconds rank 0 waits for the other ranks' recordings after its own simulation ended
_GATHER_TIMEOUT = 600.0


def mpirun_command(processes: int) -> list[str]:
    """OpenMPI's launcher for ``processes`` ranks on this machine (as root: ``--allow-run-as-root``).

    ``--oversubscribe`` lets more ranks than cores run (the test machine has 2 cores shared with
    other work).  On a cluster pass the cluster's launcher to :func:`run` instead (``srun -n 2``).
    """
    if shutil.which("mpirun") is None:
        raise NestMpiError("mpirun not found: apt-get install openmpi-bin (or load the cluster's MPI)")
    root = ["--allow-run-as-root"] if os.geteuid() == 0 else []
    return ["mpirun", "-np", str(processes), *root, "--oversubscribe"]


def _selected_environment(prefix: str | os.PathLike | None) -> tuple[dict[str, str], str]:
    """The environment of the ranks and a description of the NEST it selects.

    ``prefix`` given: that installation.  Else, when ``EPROP_NEST_CONFIG`` is set or the ``nest``
    package on ``sys.path`` is not the pip wheel's (a cluster's NEST, its Python package on
    ``PYTHONPATH``): the environment as it is.  Else the build of :func:`build_nest` in the cache.
    """
    if prefix is not None:
        return environment(prefix), str(prefix)
    try:
        inst = nestml_build.nest_installation()
    except nestml_build.BuildError as exc:
        raise NestMpiError(str(exc)) from None
    if inst.kind != "wheel":
        return dict(os.environ), str(inst.nest_config)
    own = install_directory_of()
    if not is_installed():
        raise NestMpiError(f"no NEST with MPI in {own}: run `python -m nest_models.nest_mpi build` (or set "
                           f"{nestml_build.NEST_CONFIG_VARIABLE} to the nest-config of a NEST built with MPI)")
    return environment(own), str(own)


def run(
    scenario,
    backend: str = "nestml",
    *,
    processes: int = 2,
    threads: int = 1,
    prefix: str | os.PathLike | None = None,
    launcher: Sequence[str] | None = None,
    record_weight_events: bool = True,
    timeout: float | None = None,
) -> Result:
    """Run a scenario on ``processes`` MPI ranks of a NEST with MPI; gather all ranks into one Result.

    Every rank builds the same network (NEST distributes the neurons over the ranks) and simulates;
    NEST's recorders hold only what their rank's neurons and connections recorded, so every rank
    writes its multimeter, spike and weight recordings, and rank 0 merges them and reads the
    merged recordings exactly as a one-process run reads its recorders
    (:func:`eprop_plugins.backends.nest_wiring.collect`).

    Parameters
    ----------
    scenario : Scenario
        Any scenario the backend accepts; validated first.
    backend : {"nestml", "nest-builtin"}
        The NESTML neurons (the module is built for the selected NEST first) or NEST's built-in models.
    processes : int
        MPI ranks.
    threads : int
        Threads per rank (NEST runs ``processes * threads`` virtual processes).
    prefix : path, optional
        A NEST installation with MPI (default: the current environment if it selects a NEST other
        than the wheel, through ``$EPROP_NEST_CONFIG`` or ``PYTHONPATH``; else :func:`build_nest`'s build).
    launcher : sequence of str, optional
        The command that starts ``processes`` ranks, before ``python ...`` (default
        :func:`mpirun_command`; on a cluster e.g. ``["srun", "-n", "4"]``).
    record_weight_events : bool
        Record one weight event per spike transmitted by a plastic synapse.
    timeout : float, optional
        Seconds the MPI job may take.

    Returns
    -------
    Result
        As the backend's own ``run``; ``backend`` is the backend's name; ``meta`` adds
        ``mpi_processes``, ``threads`` (per rank), ``virtual_processes``, ``nest`` (the installation)
        and ``launcher``;
        ``seconds`` is the whole call, ``compile_seconds`` the module build if this call built it.

    Raises
    ------
    ParameterError
        The backend refuses the scenario, or bad ``processes``/``threads``.
    NestMpiError
        No NEST with MPI, the module cannot be built for it, or the MPI job failed (its output).
    """
    from eprop_plugins.parameters import ParameterError

    t0 = time.perf_counter()
    if backend not in BACKENDS:
        raise ParameterError(f"backend = {backend!r}: allowed values are {', '.join(BACKENDS)}")
    for name, value in (("processes", processes), ("threads", threads)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ParameterError(f"{name} = {value!r}: allowed range is integer >= 1")
    sc = scenario.validated()
    check_supported(backend, sc)
    if backend == "nest-builtin" and sc.family == "original":
        check_original_supported(sc)
    env, nest_described = _selected_environment(prefix)
    # the ranks import this code, whether or not the project is installed where they run
    env["PYTHONPATH"] = os.pathsep.join([*env.get("PYTHONPATH", "").split(os.pathsep), str(_REPOSITORY)]).strip(os.pathsep)
    compile_seconds, cached = 0.0, True
    if backend == "nestml":  # build (or find) the module for this NEST once, before the ranks load it
        proc = subprocess.run([sys.executable, "-m", "nest_models.build"], env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            raise NestMpiError(f"the NESTML module could not be built for {nest_described}:\n{proc.stderr[-3000:]}")
        cached = proc.stdout.startswith("cached")
        if not cached:
            compile_seconds = float(proc.stdout.split(" s ")[0].rsplit(" ", 1)[-1])
    command = list(launcher) if launcher is not None else mpirun_command(processes)
    with tempfile.TemporaryDirectory(prefix="eprop-mpi-") as tmp:
        work = Path(tmp)
        sc.save(work / "scenario.npz")
        argv = [*command, sys.executable, "-m", "nest_models.nest_mpi", "worker", str(work), backend,
                "--threads", str(threads), *([] if record_weight_events else ["--no-weight-events"])]
        try:
            proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            raise NestMpiError(f"the MPI job did not finish in {timeout} s: {' '.join(argv)}") from exc
        if proc.returncode != 0 or not (work / "result.npz").is_file():
            raise NestMpiError(f"the MPI job failed (exit {proc.returncode}): {' '.join(argv)}\n"
                               f"{(proc.stdout + proc.stderr)[-4000:]}")
        res = load_result(work / "result.npz")
    res.meta.update({"seconds": time.perf_counter() - t0, "compile_seconds": compile_seconds, "cached": cached,
                     "nest": nest_described, "launcher": command})
    return res


def load_result(path: str | os.PathLike) -> Result:
    """Read a Result written by :meth:`Result.save_npz` (the ``.npz`` and its ``.json`` beside it)."""
    path = Path(path)
    info = json.loads(path.with_suffix(".json").read_text())
    groups: dict[str, dict[str, np.ndarray]] = {"trace": {}, "syn": {}, "wev": {}, "w": {}, "wconn": {}}
    with np.load(path, allow_pickle=False) as data:
        losses = data["losses"]
        for key in data.files:
            if "/" in key:
                group, name = key.split("/", 1)
                groups[group][name] = data[key]
    return Result(info["scenario"], info["family"], info["backend"], losses, groups["trace"], groups["syn"],
                  groups["wev"], groups["w"], groups["wconn"], info["meta"])


@dataclasses.dataclass(frozen=True)
class _Recorded:
    """A recorder's merged ``events`` of all ranks (what :func:`nest_wiring.collect` reads of a recorder)."""

    events: dict[str, np.ndarray]


def _recorders(net: nw.NestNetwork) -> dict[str, Any]:
    """Every recorder of a network by a stable name."""
    out = {f"multimeter{k}": mm for k, (mm, _, _) in enumerate(net.multimeters)}
    out.update({"readout": net.readout_multimeter, "spikes": net.spike_recorder, "weights": net.weight_recorder})
    return out


def _save_local_events(net: nw.NestNetwork, path: Path) -> None:
    """Write this rank's recordings (each recorder's ``events``) to ``path`` atomically."""
    arrays = {}
    for name, rec in _recorders(net).items():
        for field, values in rec.events.items():
            arrays[f"{name}/{field}"] = np.asarray(values)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    atomic_write(path, buf.getvalue())


def _merged_network(net: nw.NestNetwork, paths: list[Path]) -> nw.NestNetwork:
    """``net`` with every recorder replaced by the concatenation of all ranks' recordings."""
    parts: dict[str, dict[str, list[np.ndarray]]] = {}
    for p in paths:
        with np.load(p, allow_pickle=False) as data:
            for key in data.files:
                name, field = key.split("/", 1)
                parts.setdefault(name, {}).setdefault(field, []).append(data[key])
    merged = {name: _Recorded({f: np.concatenate(v) for f, v in fields.items()}) for name, fields in parts.items()}
    for name, rec in _recorders(net).items():  # a recorder no rank recorded anything into
        merged.setdefault(name, _Recorded({f: np.asarray(v)[:0] for f, v in rec.events.items()}))
    return dataclasses.replace(
        net,
        multimeters=[(merged[f"multimeter{k}"], names, nodes) for k, (_, names, nodes) in enumerate(net.multimeters)],
        readout_multimeter=merged["readout"], spike_recorder=merged["spikes"], weight_recorder=merged["weights"])


def _worker(work: Path, backend: str, threads: int, record_weight_events: bool) -> int:
    """One MPI rank: build and simulate the network, write the rank's recordings; rank 0 gathers and saves the Result."""
    t0 = time.perf_counter()
    nest = nw.import_nest()
    rank, size = nest.Rank(), nest.NumProcesses()
    sc = scenario_io.load(work / "scenario.npz")
    lay = nw.layout(sc.family, nestml=backend == "nestml")
    after_reset = (lambda: nestml_build.load_module(build=False)) if backend == "nestml" else None
    with nw.nest_errors(backend, sc.name):
        nw.reset_kernel(sc, threads=size * threads, after_reset=after_reset)
        net = nw.create_network(sc, lay, record_weight_events=record_weight_events)
        t_build = time.perf_counter() - t0
        nw.simulate(net, sc)
    t_sim = time.perf_counter() - t0 - t_build
    _save_local_events(net, work / f"rank-{rank}.npz")
    if rank != 0:
        return 0
    paths = [work / f"rank-{r}.npz" for r in range(size)]
    deadline = time.monotonic() + _GATHER_TIMEOUT
    while not all(p.is_file() for p in paths):  # written by one rename each: complete when present
        if time.monotonic() > deadline:
            raise NestMpiError(f"ranks {[r for r, p in enumerate(paths) if not p.is_file()]} wrote no recordings")
        time.sleep(0.05)
    recording = nw.collect(_merged_network(net, paths), sc, record_weight_events=record_weight_events)
    meta = {"build_seconds": t_build, "simulate_seconds": t_sim, "nest_version": str(nest.__version__),
            "mpi_processes": size, "threads": threads, "virtual_processes": size * threads}
    res = nw.result(sc, recording, backend, meta)
    res.meta["notes"][:0] = [f"{size} MPI rank(s) x {threads} thread(s); recordings of all ranks merged"]
    res.save_npz(work / "result.npz")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m nest_models.nest_mpi {build,env,run}``."""
    parser = argparse.ArgumentParser(prog="python -m nest_models.nest_mpi", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="build NEST with MPI from PyPI's source distribution into the cache")
    b.add_argument("--jobs", type=int, default=2, help="parallel compiler processes (default 2)")
    b.add_argument("--modelset", choices=MODELSETS, default="eprop", help="NEST models compiled in (default eprop)")
    b.add_argument("--sdist", default=None, help="a local nest_simulator-3.10.0.tar.gz instead of downloading it")
    b.add_argument("--no-apt", action="store_true", help="never apt-get missing Debian packages")
    b.add_argument("--force", action="store_true", help="rebuild even if installed")
    b.add_argument("--cache-dir", default=None, help="cache root (default $EPROP_CACHE_DIR or ~/.cache/eprop-plugins)")
    e = sub.add_parser("env", help="print shell lines that select the built NEST")
    e.add_argument("--modelset", choices=MODELSETS, default="eprop")
    e.add_argument("--cache-dir", default=None)
    r = sub.add_parser("run", help="run a scenario file on several MPI ranks and save the gathered Result")
    r.add_argument("scenario", help="scenario file (.json or .npz)")
    r.add_argument("--backend", choices=BACKENDS, default="nestml")
    r.add_argument("--np", type=int, default=2, dest="processes", help="MPI ranks (default 2)")
    r.add_argument("--threads", type=int, default=1, help="threads per rank (default 1)")
    r.add_argument("--prefix", default=None, help="NEST installation with MPI (default: the cache's build, or "
                   "the NEST that EPROP_NEST_CONFIG / PYTHONPATH select)")
    r.add_argument("--launcher", default=None, help="command that starts the ranks (default: mpirun -np N ...; "
                   "e.g. 'srun -n 4')")
    r.add_argument("--out", required=True, help="Result file (.npz, with a .json beside it)")
    w = sub.add_parser("worker")  # one MPI rank of `run` (internal)
    w.add_argument("work")
    w.add_argument("backend", choices=BACKENDS)
    w.add_argument("--threads", type=int, default=1)
    w.add_argument("--no-weight-events", action="store_true")
    ns = parser.parse_args(argv)
    if ns.command == "worker":
        return _worker(Path(ns.work), ns.backend, ns.threads, not ns.no_weight_events)
    try:
        if ns.command == "build":
            print(build_nest(cache=ns.cache_dir, modelset=ns.modelset, jobs=ns.jobs, sdist=ns.sdist,
                             apt=not ns.no_apt, force=ns.force))
        elif ns.command == "env":
            prefix = install_directory_of(ns.cache_dir, ns.modelset)
            if not is_installed(ns.cache_dir, ns.modelset):
                raise NestMpiError(f"no NEST build in {prefix}: run `python -m nest_models.nest_mpi build`")
            env = environment(prefix, base={})
            print(f"export PYTHONPATH={env['PYTHONPATH']}${{PYTHONPATH:+:$PYTHONPATH}}")
            print(f"export {nestml_build.NEST_CONFIG_VARIABLE}={env[nestml_build.NEST_CONFIG_VARIABLE]}")
            print(f"export PATH={prefix / 'bin'}:$PATH")
        elif ns.command == "run":
            res = run(scenario_io.load(ns.scenario), ns.backend, processes=ns.processes, threads=ns.threads,
                      prefix=ns.prefix, launcher=ns.launcher.split() if ns.launcher else None)
            res.save_npz(ns.out)
            print(f"{ns.out}: {res.meta['mpi_processes']} ranks, losses {np.round(res.losses, 6).tolist()}, "
                  f"{res.meta['seconds']:.1f} s")
    except NestMpiError as exc:
        print(f"nest_mpi: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
