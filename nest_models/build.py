"""Build the NESTML e-prop models into a NEST extension module, cached by a hash of the sources.

``build_module()`` generates C++ from the ``*.nestml`` sources with NESTML, overlays the project's
templates (``nest_models/templates``) and headers (``nest_models/include``), compiles the module
against the NEST that ``import nest`` loads (the pip wheel, or any NEST 3.10 installation through
its own ``nest-config``, :func:`nest_installation`) and installs it into a cache directory outside
the repository (``$EPROP_CACHE_DIR/nestml/<key>``, default root ``~/.cache/eprop-plugins``).  The
key is a hash of every source, template and header, this file, the model list, the NEST and NESTML
versions and which NEST installation, so a cached module is loaded in well under a second, any
change rebuilds, and a module built for one NEST is never loaded into another.

Safe under concurrent use and interruption (``docs/builds.rst``), through :mod:`eprop_plugins.cache`:

* everything a build writes (the corrected ``nest-config``, the assembled templates, the generated
  sources, the compiler's objects, the log) goes into a private directory beside the cache entry;
  the finished module is installed by one ``rename``, with a manifest of sizes and SHA-256 hashes;
* builds of one key are serialised by an inter-process lock: concurrent first uses build once, the
  others wait (with a message) and then load what was built;
* a cached module is verified against its manifest before ``nest.Install``; an interrupted or
  damaged build (no manifest, wrong size or hash) is rebuilt, never loaded;
* an installed module is never written into: a rebuild (``--force``) installs a new directory, and
  a process that has the old module loaded keeps its inode;
* the compiler processes die with the build: a build killed half-way leaves only its private
  directory, which the next build of the same key removes.

Why the build needs more than ``pynestml.frontend.generate_nest_target``
------------------------------------------------------------------------
* The pip wheel's ``nest-config`` reports the build machine's prefix (a temporary directory) and a
  compiler path that does not exist here; :func:`write_nest_config` writes a corrected script
  (prefix ``site-packages/nest``, headers ``site-packages/nest/include/nest``, Boost headers from the
  ``boost-headers`` package, ``-D_GLIBCXX_USE_CXX11_ABI=0`` because the wheel uses the old C++ ABI,
  compiler ``g++``).  Any other NEST 3.10 installation (built from source, with MPI, a cluster's
  module) is used through its own ``nest-config`` (:func:`nest_installation` says which NEST a
  build is for; the cache key includes it).
* NESTML 9 has no e-prop archiving node: the templates give every generated neuron an e-prop parent
  class and register a project wrapper class under the model's name (see ``docs/nestml.rst``).
* A NESTML code-generation call without an install path writes into the NEST installation: an
  install path is always passed.

Command line: ``python -m nest_models.build [--force] [--cache-dir DIR] [--verbose]`` (the ``eprop
build-nest`` subcommand calls :func:`main`).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from eprop_plugins.backends.nest_translations import FAMILIES, model_names
from eprop_plugins.cache import (
    MANIFEST,
    atomic_write,
    cache_root,
    install_directory,
    locked,
    private_directory,
    verify_manifest,
    write_manifest,
)

__all__ = [
    "MODULE_NAME",
    "MODULE_FILE",
    "MODELS",
    "BuildError",
    "BuiltModule",
    "cache_dir",
    "module_directory",
    "source_hash",
    "is_built",
    "NestInstallation",
    "nest_installation",
    "write_nest_config",
    "check_toolchain",
    "build_module",
    "load_module",
    "main",
]

HERE = Path(__file__).resolve().parent
#: name of the NEST extension module (NESTML requires the suffix ``module``)
MODULE_NAME = "eprop_nestml_module"
#: the module file inside an installed cache entry
MODULE_FILE = f"lib/{MODULE_NAME}.so"


def wrapper_classes(name: str) -> tuple[str, str]:
    """The C++ wrapper class registered under the NESTML model ``name`` and its NEST parent class.

    The same rule as ``templates/setup/common/eprop_classes.jinja2``, which chooses both from the
    name: ``readout`` or recurrent, ``bsshslm_2020`` (original family) or event family.
    """
    original = "bsshslm_2020" in name
    role = "Readout" if "readout" in name else "Recurrent"
    family = "Original" if original else "Event"
    return f"Eprop{family}{role}", f"EpropNestml{role}{family}Node"


#: NESTML model -> (C++ wrapper class registered under the model name, NEST parent class), for the
#: neuron models of both families (the synapse and feedback connections are NEST's own)
MODELS: dict[str, tuple[str, str]] = {
    name: wrapper_classes(name)
    for family in FAMILIES
    for role, name in model_names(family, nestml=True).items()
    if role not in ("synapse", "feedback")
}


class BuildError(RuntimeError):
    """The module could not be generated, compiled or loaded; the message says what is missing."""


@dataclass(frozen=True)
class BuiltModule:
    """A compiled module in the cache.

    Attributes
    ----------
    path : Path
        The ``.so`` file (inside a verified cache entry).
    key : str
        :func:`source_hash` of the sources it was built from.
    cached : bool
        True if an existing build was reused, False if this call built it.
    seconds : float
        Time spent generating and compiling in this call, s (0.0 when cached).
    """

    path: Path
    key: str
    cached: bool
    seconds: float

    @property
    def directory(self) -> Path:
        """The cache entry (``<cache root>/nestml/<key>``)."""
        return self.path.parent.parent


def cache_dir(override: str | os.PathLike | None = None) -> Path:
    """Cache root: ``override``, else ``$EPROP_CACHE_DIR``, else ``~/.cache/eprop-plugins`` (absolute)."""
    return cache_root(override).resolve()


def _sources() -> list[Path]:
    files = sorted(HERE.glob("*.nestml"))
    files += sorted(p for p in (HERE / "templates").rglob("*") if p.is_file())
    files += sorted(p for p in (HERE / "include").rglob("*") if p.is_file())
    files.append(Path(__file__).resolve())
    return files


def _versions() -> dict[str, str]:
    from importlib.metadata import version

    inst = nest_installation()
    nest_version = version("nest-simulator") if inst.kind == "wheel" else inst.version
    return {"nest-simulator": nest_version, "nestml": version("nestml")}


#: environment variable naming the ``nest-config`` of the NEST installation to build for
NEST_CONFIG_VARIABLE = "EPROP_NEST_CONFIG"


@dataclass(frozen=True)
class NestInstallation:
    """The NEST installation the module is built for and loaded into.

    Attributes
    ----------
    kind : str
        ``"wheel"`` (the pip wheel: a corrected ``nest-config`` is written, :func:`write_nest_config`)
        or ``"nest-config"`` (any other installation, used through its own ``nest-config``).
    package : Path
        The ``nest`` Python package that ``import nest`` finds (resolved).
    nest_config : Path or None
        The installation's own ``nest-config`` (None for the wheel).
    version : str
        ``nest-config --version`` (the wheel: its package version).
    identity : dict
        What the cache key records of the installation (none for the wheel, whose key is that of
        its version; otherwise prefix, ``nest-config`` answers and the kernel library's size and
        modification time), so that a module built for one NEST is never loaded into another.
    """

    kind: str
    package: Path
    nest_config: Path | None
    version: str
    identity: dict


#: nest_installation() of this process, by the environment and search path it was derived from
_installations: dict[tuple, NestInstallation] = {}


def _nest_package() -> Path:
    """The directory of the ``nest`` package ``import nest`` would load (found without importing it)."""
    import importlib.util

    spec = importlib.util.find_spec("nest")
    if spec is None or spec.origin is None:
        raise BuildError("nest-simulator is not installed: pip install 'eprop-plugins[nest]'")
    return Path(spec.origin).resolve().parent


def _ask(nest_config: Path, option: str) -> str:
    try:
        proc = subprocess.run([str(nest_config), option], capture_output=True, text=True, timeout=60)
    except OSError as exc:
        raise BuildError(f"cannot run {nest_config}: {exc}") from None
    if proc.returncode != 0:
        raise BuildError(f"{nest_config} {option} failed: {proc.stderr.strip()[-500:]}")
    return proc.stdout.strip()


def nest_installation() -> NestInstallation:
    """Which NEST the module is built for: ``$EPROP_NEST_CONFIG``, else the ``nest`` package on ``sys.path``.

    * ``EPROP_NEST_CONFIG`` set: that ``nest-config``; the ``nest`` package Python imports must be
      the one of that installation (below its ``--prefix``), otherwise the module would be built
      for one NEST and loaded into another.
    * the ``nest`` package is the pip wheel's (``site-packages/nest`` beside
      ``nest_simulator.libs``): the wheel (its own ``nest-config`` is broken; a corrected one is
      written).
    * otherwise the installation the package belongs to
      (``<prefix>/lib/python3.x/site-packages/nest`` with ``<prefix>/bin/nest-config``), as
      installed by NEST's ``make install``.

    Raises
    ------
    BuildError
        NEST is not installed, or its ``nest-config`` is missing or does not match the package.
    """
    configured = os.environ.get(NEST_CONFIG_VARIABLE) or None
    state = (configured, tuple(sys.path), os.environ.get("PYTHONPATH"))
    known = _installations.get(state)
    if known is not None:
        return known
    package = _nest_package()
    if configured is None and (package.parent / "nest_simulator.libs").is_dir():
        from importlib.metadata import version

        inst = NestInstallation("wheel", package, None, version("nest-simulator"), {})
    else:
        if configured is not None:
            nest_config = Path(configured).expanduser()
            origin = f"{NEST_CONFIG_VARIABLE}={configured}"
        else:
            # <prefix>/lib(64)/python3.x/site-packages/nest
            nest_config = package.parents[3] / "bin" / "nest-config"
            origin = f"the nest package {package}"
        if not (nest_config.is_file() and os.access(nest_config, os.X_OK)):
            raise BuildError(f"no executable nest-config at {nest_config} (from {origin}); set "
                             f"{NEST_CONFIG_VARIABLE} to the nest-config of the NEST installation that "
                             "`import nest` loads")
        nest_config = nest_config.resolve()
        prefix = Path(_ask(nest_config, "--prefix")).resolve()
        if not package.is_relative_to(prefix):
            raise BuildError(
                f"{origin} belongs to the NEST installed in {prefix}, but `import nest` loads {package}: "
                f"put {prefix}/lib/python3.x/site-packages first on PYTHONPATH (or unset {NEST_CONFIG_VARIABLE})")
        answers = {opt: _ask(nest_config, opt) for opt in ("--version", "--cflags", "--includes", "--libs", "--compiler")}
        # the kernel: a shared library of the installation, or linked into the Python extension (NEST 3.10)
        kernel = [*sorted(prefix.glob("lib*/nest/libnestkernel.so")), *sorted(prefix.glob("lib*/libnestkernel.so")),
                  *sorted(package.glob("nestkernel_api*.so"))]
        stamp = [[str(k), k.stat().st_size, k.stat().st_mtime_ns] for k in kernel]
        inst = NestInstallation("nest-config", package, nest_config, answers["--version"],
                                {"prefix": str(prefix), "nest_config": answers, "kernel": stamp})
    _installations[state] = inst
    return inst


def source_hash() -> str:
    """Hash of all sources, templates, headers, this file, the model list, the NEST/NESTML versions and which NEST.

    A module built for the wheel and one built for another installation (:func:`nest_installation`)
    never share a key.

    Returns
    -------
    str
        16 hex digits: the cache key of the module (the name of its cache entry).
    """
    h = hashlib.sha256()
    for p in _sources():
        h.update(str(p.relative_to(HERE)).encode())
        h.update(b"\0")
        h.update(p.read_bytes())
        h.update(b"\0")
    described = {"versions": _versions(), "models": MODELS}
    inst = nest_installation()
    if inst.kind != "wheel":  # which NEST (the wheel's key is that of its version, as before)
        described["nest"] = inst.identity
    h.update(json.dumps(described, sort_keys=True).encode())
    return h.hexdigest()[:16]


def module_directory(cache: str | os.PathLike | None = None, key: str | None = None) -> Path:
    """The cache entry of the module built from the current sources (or of ``key``); may not exist."""
    return cache_dir(cache) / "nestml" / (key or source_hash())


def is_built(cache: str | os.PathLike | None = None) -> bool:
    """True if a module for the current sources is installed in the cache (cheap: no compilation).

    Checks that the entry has a manifest and that every file has its recorded size; the SHA-256
    hashes are checked when the module is loaded (:func:`build_module`, :func:`load_module`).
    """
    entry = module_directory(cache)
    return verify_manifest(entry, hashes=False) and (entry / MODULE_FILE).is_file()


def _site_packages() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("nest")
    if spec is None or spec.origin is None:
        raise BuildError("nest-simulator is not installed: pip install 'eprop-plugins[nest]'")
    return Path(spec.origin).resolve().parent.parent


def _boost_include() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("boost_headers")
    if spec is None or spec.origin is None:
        raise BuildError(
            "Boost headers not found: NEST's headers include boost/type_index.hpp; "
            "install them with `pip install boost-headers`"
        )
    inc = Path(spec.origin).resolve().parent / "include"
    if not (inc / "boost" / "type_index.hpp").is_file():
        raise BuildError(f"boost-headers is installed but {inc}/boost/type_index.hpp is missing")
    return inc


def check_toolchain() -> dict[str, str]:
    """Find the compiler, cmake, make, NEST's headers and Boost; raise :class:`BuildError` naming what is missing."""
    missing = [tool for tool in ("g++", "cmake", "make") if shutil.which(tool) is None]
    if missing:
        raise BuildError(
            f"missing build tool(s): {', '.join(missing)}; install a C++ compiler, cmake and make "
            "(Debian: apt-get install g++ cmake make)"
        )
    inst = nest_installation()
    if inst.kind != "wheel":
        return _check_installation(inst)
    site = _site_packages()
    include = site / "nest" / "include" / "nest"
    if not (include / "eprop_archiving_node_recurrent.h").is_file():
        raise BuildError(f"NEST headers not found in {include}: the nest-simulator wheel must ship its include/ directory")
    _check_nestml()
    return {"site": str(site), "include": str(include), "boost": str(_boost_include()), "cxx": shutil.which("g++") or ""}


def _check_nestml() -> None:
    try:
        import pynestml  # noqa: F401
    except ImportError as exc:
        raise BuildError(f"NESTML is not installed ({exc}): pip install 'nestml==9.0.*'") from None


def _check_installation(inst: NestInstallation) -> dict[str, str]:
    """The headers and compiler of a NEST installation with its own ``nest-config`` (:func:`check_toolchain`)."""
    prefix = Path(inst.identity["prefix"])
    include = prefix / "include" / "nest"
    if not (include / "eprop_archiving_node_recurrent.h").is_file():
        raise BuildError(f"NEST headers not found in {include} (the installation of {inst.nest_config}); "
                         "NEST >= 3.10 installed with `make install` has them")
    compiler = inst.identity["nest_config"]["--compiler"]
    if shutil.which(compiler) is None:
        raise BuildError(f"{inst.nest_config} names the compiler {compiler!r}, which is not on PATH")
    _check_nestml()
    return {"prefix": str(prefix), "include": str(include), "nest_config": str(inst.nest_config), "cxx": compiler}


def _forwarding_nest_config(directory: Path, inst: NestInstallation) -> Path:
    """Write ``directory/bin/nest-config`` forwarding to an installation's own script; return ``directory``.

    NESTML finds ``nest-config`` as ``<nest_path>/bin/nest-config``; the forwarding script answers
    as the installation's own and only adds ``-fno-semantic-interposition`` to ``--cflags`` (the
    reason is in :func:`write_nest_config`; it changes no floating-point semantics).
    """
    check_toolchain()
    bindir = directory / "bin"
    bindir.mkdir(parents=True, exist_ok=True)
    real = str(inst.nest_config).replace("'", "'\\''")
    script = bindir / "nest-config"
    script.write_text("\n".join([
        "#!/bin/sh",
        f"# forwards to {inst.nest_config} (written by nest_models.build)",
        f"real='{real}'",
        'case "$1" in',
        '  --cflags) echo "$("$real" --cflags) -fno-semantic-interposition" ;;',
        '  *) exec "$real" "$@" ;;',
        "esac",
        "",
    ]))
    script.chmod(script.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return directory


def write_nest_config(directory: Path) -> Path:
    """Write a corrected ``nest-config`` for the NEST wheel into ``directory/bin``; return ``directory``.

    The wheel's own script points at its build machine.  The corrected one reports the wheel's
    prefix and headers, the Boost headers of the ``boost-headers`` package, the old C++ ABI flag the
    wheel was compiled with, and ``g++``.  ``directory`` is the build's private directory: the
    script is never shared with another build.
    """
    tc = check_toolchain()
    site = Path(tc["site"])
    bindir = directory / "bin"
    bindir.mkdir(parents=True, exist_ok=True)
    # -fno-semantic-interposition: the module's own functions cannot be replaced at load time, so
    # GCC may inline them inside the shared library (-fPIC code otherwise calls them through the
    # PLT); this is what lets one generated step be inlined into its wrapper (see the class template).
    # No flag changes floating-point semantics (no -ffast-math, no FMA on the x86-64 baseline).
    cflags = "-Wall -fopenmp -O2 -O3 -fno-semantic-interposition -DNDEBUG -std=c++20 -D_GLIBCXX_USE_CXX11_ABI=0"
    answers = {
        "--prefix": str(site / "nest"),
        "--exec-prefix": str(site / "nest"),
        # compat/ holds a stand-in for <ltdl.h> (see include/compat/ltdl.h)
        "--includes": f"-I{tc['include']} -I{tc['boost']} -I{HERE / 'include' / 'compat'}",
        "--cflags": cflags,
        # the kernel's symbols come from the already loaded nestkernel_api (loaded RTLD_GLOBAL)
        "--libs": "",
        "--compiler": tc["cxx"],
        "--compiler-name": "GNU",
        "--compiler-version": "",
        "--static-libraries": "",
        "--libdir": "lib",
        "--version": _versions()["nest-simulator"],
        "--python-executable": sys.executable,
    }
    lines = ["#!/bin/sh", "# corrected nest-config for the nest-simulator wheel (written by nest_models.build)",
             'case "$1" in']
    for opt, value in answers.items():
        lines.append(f"  {opt}) echo '{value}' ;;")
    lines += ["  *) echo \"unsupported option $1\" >&2; exit 1 ;;", "esac", ""]
    script = bindir / "nest-config"
    script.write_text("\n".join(lines))
    script.chmod(script.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return directory


def _assemble_templates(dest: Path) -> Path:
    """NESTML's stock NEST templates with the project's templates laid over them."""
    import pynestml

    stock = Path(pynestml.__file__).resolve().parent / "codegeneration" / "resources_nest" / "point_neuron"
    shutil.copytree(stock, dest)
    for p in (HERE / "templates").rglob("*"):
        if p.is_file():
            target = dest / p.relative_to(HERE / "templates")
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(p, target)
    return dest


def _check_sources() -> None:
    """Fail early if the ``.nestml`` files and the model list disagree (the build would fail late)."""
    stems = {p.stem for p in HERE.glob("*.nestml")}
    if stems != set(MODELS):
        raise BuildError(
            f"the NESTML sources ({', '.join(sorted(stems))}) do not match the model names of "
            f"eprop_plugins.backends.nest_translations.model_names ({', '.join(MODELS)})"
        )


#: verified cache entries of this process: module path -> (device, inode, size, mtime) when verified,
#: so that reloading after every ``nest.ResetKernel()`` does not hash the module again
_verified: dict[Path, tuple[int, int, int, int]] = {}


def _stat_id(path: Path) -> tuple[int, int, int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns


def _cached_module(entry: Path, key: str) -> BuiltModule | None:
    """The module of the cache entry ``entry`` if its manifest verifies (sizes and SHA-256), else None."""
    so = entry / MODULE_FILE
    ident = _stat_id(so)
    if ident is None:
        return None
    if _verified.get(so) != ident:
        if not verify_manifest(entry, hashes=True):
            return None
        # the manifest must list the module itself (a manifest of another layout proves nothing)
        try:
            listed = MODULE_FILE in json.loads((entry / MANIFEST).read_text())["files"]
        except (OSError, ValueError, KeyError, TypeError):
            listed = False
        if not listed:
            return None
        _verified[so] = ident
    return BuiltModule(so, key, True, 0.0)


def _remove_leftovers(entry: Path) -> None:
    """Remove what killed builds of ``entry`` left beside it (call only while holding its lock)."""
    for p in entry.parent.glob(f".{entry.name}.*"):
        if p.is_dir() and (".build-" in p.name or ".old-" in p.name):
            shutil.rmtree(p, ignore_errors=True)


def build_module(
    *,
    force: bool = False,
    cache: str | os.PathLike | None = None,
    verbose: bool = False,
) -> BuiltModule:
    """Generate, compile and install the e-prop NESTML module, or reuse the verified cached build.

    Concurrent calls (any process) for the same sources build once: the first takes the lock of
    the cache entry and builds, the others print that they wait and then reuse its module.

    Parameters
    ----------
    force : bool
        Rebuild even if a module with the same source hash is cached.  The new module is installed
        as a new directory; processes that have the old one loaded are not affected.
    cache : path, optional
        Cache root (default: ``$EPROP_CACHE_DIR`` or ``~/.cache/eprop-plugins``).
    verbose : bool
        Print NESTML's and the compiler's progress and keep the private build directory.

    Returns
    -------
    BuiltModule

    Raises
    ------
    BuildError
        A tool, header or package is missing, or generation/compilation failed (the message
        includes the end of the compiler log and the kept build directory).
    """
    key = source_hash()
    entry = module_directory(cache, key)
    if not force:
        mod = _cached_module(entry, key)
        if mod is not None:
            return mod
    check_toolchain()
    _check_sources()
    message = f"another process is building the NESTML module into {entry}; waiting ..."
    with locked(entry.with_name(f"{key}.lock"), message):
        if not force:
            mod = _cached_module(entry, key)  # built by the process we waited for
            if mod is not None:
                return mod
        _remove_leftovers(entry)
        if entry.exists() and not force:
            print(f"eprop: the cached NESTML module in {entry} does not match its manifest (interrupted, damaged "
                  "or written by an older version); rebuilding it", file=sys.stderr, flush=True)
        return _build(entry, key, verbose)


def _build(entry: Path, key: str, verbose: bool) -> BuiltModule:
    """Build into a private directory beside ``entry`` and install it as ``entry`` (lock held)."""
    t0 = time.perf_counter()
    # a long silent pause would look like a hang: say what is happening
    print(f"eprop: building the NESTML e-prop module {MODULE_NAME} into {entry} (once per source version; "
          "1-3 minutes) ...", file=sys.stderr, flush=True)
    work = private_directory(entry)
    keep = verbose
    try:
        inst = nest_installation()
        nest_dir = (write_nest_config(work / "nest") if inst.kind == "wheel"
                    else _forwarding_nest_config(work / "nest", inst))
        templates = _assemble_templates(work / "templates")
        target = work / "target"
        install = work / "install"
        target.mkdir()
        install.mkdir()
        codegen_opts = {
            "nest_path": str(nest_dir),
            # every neuron gets its own parent class, chosen in the header/class templates by wrapper_classes' rule
            "neuron_parent_class": "EpropNestmlRecurrentOriginalNode",
            "neuron_parent_class_include": "eprop_nestml_nodes.h",
            "templates": {
                "path": str(templates),
                "model_templates": {
                    "neuron": ["@NEURON_NAME@.cpp.jinja2", "@NEURON_NAME@.h.jinja2"],
                    "synapse": ["@SYNAPSE_NAME@.h.jinja2"],
                },
                "module_templates": ["setup"],
            },
        }
        if inst.kind != "wheel":
            # NESTML detects the version by creating models (volume_transmitter, ...) that a NEST built with
            # a reduced model set lacks, and then generates code for an old NEST: tell it the version
            codegen_opts["nest_version"] = f"v{inst.version}"
        # headers the generated code includes; cmake compiles in the target directory
        for h in (HERE / "include").glob("*.h"):  # compat/ is reached through nest-config --includes
            shutil.copy2(h, target / h.name)
        try:
            _run_nestml(target, install, codegen_opts, work, verbose)
            _check_generated(target)
            built = install / Path(MODULE_FILE).name
            if not built.is_file():
                raise BuildError(f"NESTML reported success but {built} was not installed")
        except BuildError as exc:
            keep = True  # for inspection; the next build of this key removes it
            raise BuildError(f"{exc}\n(build directory kept: {work})") from None
        seconds = time.perf_counter() - t0
        # the cache entry as it will be installed: the module, a description, the build log
        staged = work / "entry"
        (staged / "lib").mkdir(parents=True)
        os.replace(built, staged / MODULE_FILE)
        if (work / "build.log").is_file():
            shutil.copy2(work / "build.log", staged / "build.log")
        atomic_write(staged / "build.json", json.dumps(
            {"key": key, "versions": _versions(), "models": list(MODELS), "build_seconds": round(seconds, 1),
             "python": sys.executable, "nest": {"kind": inst.kind, "package": str(inst.package), **inst.identity}},
            indent=1))
        write_manifest(staged)
        install_directory(staged, entry)
    except BaseException:
        if not keep:
            shutil.rmtree(work, ignore_errors=True)
        raise
    if not keep:
        shutil.rmtree(work, ignore_errors=True)
    mod = _cached_module(entry, key)
    if mod is None:  # only if the file system lost what was just written
        raise BuildError(f"the module installed in {entry} does not verify against its manifest")
    print(f"eprop: built {MODULE_NAME} in {seconds:.0f} s (cached in {entry})", file=sys.stderr, flush=True)
    return BuiltModule(mod.path, key, False, seconds)


#: NESTML's code generation and build, run in its own process group; a watchdog thread kills the
#: whole group (NESTML, cmake, make, the compilers) when the parent process dies, so that a build
#: killed half-way leaves no compiler running
_NESTML_SCRIPT = """\
import json, os, signal, sys, threading, time
parent = int(sys.argv[2])
def watch():
    while os.getppid() == parent:
        time.sleep(0.5)
    os.killpg(0, signal.SIGKILL)
threading.Thread(target=watch, daemon=True).start()
from pynestml.frontend.pynestml_frontend import generate_nest_target
a = json.loads(sys.argv[1])
generate_nest_target(input_path=a['inputs'], target_path=a['target'], install_path=a['install'],
    module_name=a['module'], logging_level='WARNING', codegen_opts=a['opts'])
"""


def _run_nestml(target: Path, install: Path, codegen_opts: dict, work: Path, verbose: bool) -> None:
    """Run NESTML in a subprocess (it keeps global state and may print a lot); raise BuildError on failure."""
    args = {
        "inputs": [str(p) for p in sorted(HERE.glob("*.nestml"))],
        "target": str(target),
        "install": str(install),
        "module": MODULE_NAME,
        "opts": codegen_opts,
    }
    log = work / "build.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-c", _NESTML_SCRIPT, json.dumps(args), str(os.getpid())],
                                cwd=work, stdout=None if verbose else out,
                                stderr=None if verbose else subprocess.STDOUT, start_new_session=True)
        try:
            returncode = proc.wait()
        except BaseException:  # Ctrl-C, or an exception in this process: stop the compilers too
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:  # the group has already ended
                pass
            proc.wait()
            raise
    nestml_errors = [ln for ln in log.read_text(errors="replace").splitlines() if ", ERROR, " in ln] if log.is_file() else []
    if nestml_errors:
        raise BuildError("NESTML rejected the models:\n" + "\n".join(nestml_errors[:20]))
    if returncode != 0:
        tail = ""
        for candidate in [log, *sorted(target.glob("*.log")), *sorted(target.glob("*.txt"))]:
            if candidate.is_file() and candidate.stat().st_size:
                text = candidate.read_text(errors="replace")
                # compiler diagnostics first; otherwise the end of the log
                errors = [ln for ln in text.splitlines() if ": error:" in ln or "fatal error" in ln]
                tail += f"\n--- {candidate.name} ---\n" + "\n".join(errors[:20] or text.splitlines()[-30:])
                if errors:
                    break
        raise BuildError(f"building {MODULE_NAME} failed (exit {returncode}){tail}")


#: comments the class template writes where it edited NESTML's printed update()
_CLASS_TEMPLATE_MARKERS = ("/* eprop: one step inlined into the wrapper */", "/* eprop: no spike-receipt counter */",
                           "/* eprop: recorded by the wrapper */")


def _check_generated(target: Path) -> None:
    """Fail if a model was not generated or the exact spike-input replacement of the class template missed."""
    missing = [m for m in MODELS if not (target / f"{m}.cpp").is_file()]
    if missing:
        raise BuildError(f"NESTML generated no code for {', '.join(missing)} (see the NESTML errors above)")
    for cpp in target.glob("*.cpp"):
        text = cpp.read_text()
        if "0.001 * B_.spike_inputs_grid_sum_" in text:
            raise BuildError(
                f"{cpp.name}: NESTML printed a spike-port read with a 0.001 factor that the class template "
                "did not replace; write spike inputs as `(spikes_in * 1 s) * 1 mV` in the .nestml source"
            )
        if cpp.stem in MODELS:
            # the class template's speed edits (inline step, no spike-receipt counter, recording in the
            # wrapper) must all apply
            missing_edits = [m for m in _CLASS_TEMPLATE_MARKERS if m not in text]
            if missing_edits or "on_receive_block_" in text:
                raise BuildError(
                    f"{cpp.name}: the class template's edits of NESTML's update() did not apply "
                    f"(missing {missing_edits}) or the model has an onReceive block; the NESTML version "
                    "prints update() differently than templates/@NEURON_NAME@.cpp.jinja2 expects"
                )


#: the cache entry whose module this process has installed (reused after ``nest.ResetKernel()``)
_current: Path | None = None


def load_module(*, build: bool = True, cache: str | os.PathLike | None = None) -> Path:
    """Install the module into the running NEST kernel; build it first if needed.

    The module is verified against its manifest (sizes and SHA-256) before ``nest.Install``; a
    module that fails is rebuilt (or, with ``build=False``, refused), never loaded.
    ``nest.ResetKernel()`` unloads extension modules in NEST 3.10, so call this after every reset
    (it does nothing when the models are already known).  Without ``cache``, the module this
    process installed before is reused (whichever cache it came from).

    Returns
    -------
    Path
        The installed ``.so`` file.

    Raises
    ------
    BuildError
        The module is not built (and ``build`` is False), cannot be built, or NEST cannot load it.
    """
    import nest

    global _current
    loaded = Path(nest.__file__).resolve().parent
    if loaded != nest_installation().package:  # the module must be built for the NEST that runs
        raise BuildError(f"the running NEST is {loaded}, not {nest_installation().package} that "
                         f"{NEST_CONFIG_VARIABLE} or PYTHONPATH now select (changed after NEST was imported)")
    key = source_hash()
    # the entry loaded before (its own key: NEST cannot load a second module of the same name anyway)
    mod = _cached_module(_current, _current.name) if cache is None and _current is not None else None
    if mod is None:
        if build:
            mod = build_module(cache=cache)
        else:
            mod = _cached_module(module_directory(cache, key), key)
            if mod is None:
                raise BuildError(f"{MODULE_NAME} is not built for the current sources in "
                                 f"{module_directory(cache, key)}; run `eprop build-nest`")
    _current = mod.directory
    if all(model in nest.node_models for model in MODELS):
        return mod.path
    try:
        nest.Install(str(mod.path.with_suffix("")))
    except Exception as exc:
        raise BuildError(f"NEST could not load {mod.path}: {exc}") from exc
    return mod.path


def main(argv: Sequence[str] | None = None) -> int:
    """``eprop build-nest``: build (or find cached) the NESTML e-prop module and print its path."""
    parser = argparse.ArgumentParser(prog="eprop build-nest", description=__doc__.splitlines()[0])
    parser.add_argument("--force", action="store_true",
                        help="rebuild even if cached (installs a new directory; running processes keep the old module)")
    parser.add_argument("--cache-dir", default=None, help="cache root (default $EPROP_CACHE_DIR or ~/.cache/eprop-plugins)")
    parser.add_argument("--verbose", action="store_true", help="show NESTML and compiler output; keep the build directory")
    ns = parser.parse_args(argv)
    try:
        mod = build_module(force=ns.force, cache=ns.cache_dir, verbose=ns.verbose)
    except BuildError as exc:
        print(f"eprop build-nest: {exc}", file=sys.stderr)
        return 1
    state = "cached" if mod.cached else f"built in {mod.seconds:.1f} s"
    print(f"{state}: {mod.path} (key {mod.key})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
