"""Build the NESTML e-prop models into a NEST extension module, cached by a hash of the sources.

``build_module()`` generates C++ from the ``*.nestml`` sources with NESTML, overlays the project's
templates (``nest_models/templates``) and headers (``nest_models/include``), compiles the module
against the NEST wheel and installs it into a cache directory outside the repository
(``$EPROP_CACHE_DIR`` or ``~/.cache/eprop-plugins``).  The cache key is a hash of every source,
template and header plus the NEST and NESTML versions, so a cached module is loaded in well under
a second and any change rebuilds.

Why the build needs more than ``pynestml.frontend.generate_nest_target``
------------------------------------------------------------------------
* The pip wheel's ``nest-config`` reports the build machine's prefix (a temporary directory) and a
  compiler path that does not exist here; :func:`write_nest_config` writes a corrected script
  (prefix ``site-packages/nest``, headers ``site-packages/nest/include/nest``, Boost headers from the
  ``boost-headers`` package, ``-D_GLIBCXX_USE_CXX11_ABI=0`` because the wheel uses the old C++ ABI,
  compiler ``g++``).
* NESTML 9 has no e-prop archiving node: the templates give every generated neuron an e-prop parent
  class and register a project wrapper class under the model's name (see ``docs/nestml.rst``).
* A NESTML code-generation call without an install path writes into the NEST installation: an
  install path is always passed.

Command line: ``python -m nest_models.build [--force] [--cache-dir DIR] [--quiet]`` (the ``eprop
build-nest`` subcommand calls :func:`main`).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

__all__ = [
    "MODULE_NAME",
    "MODELS",
    "BuildError",
    "BuiltModule",
    "cache_dir",
    "source_hash",
    "write_nest_config",
    "check_toolchain",
    "build_module",
    "load_module",
    "main",
]

HERE = Path(__file__).resolve().parent
#: name of the NEST extension module (NESTML requires the suffix ``module``)
MODULE_NAME = "eprop_nestml_module"

#: NESTML model -> (C++ wrapper class registered under the model name, NEST parent class); the
#: templates choose both from the name (``readout``, ``bsshslm_2020``, ``adapt``)
MODELS: dict[str, tuple[str, str]] = {
    "eprop_iaf_bsshslm_2020_neuron": ("EpropOriginalRecurrent", "EpropNestmlRecurrentOriginalNode"),
    "eprop_iaf_adapt_bsshslm_2020_neuron": ("EpropOriginalRecurrent", "EpropNestmlRecurrentOriginalNode"),
    "eprop_readout_bsshslm_2020_neuron": ("EpropOriginalReadout", "EpropNestmlReadoutOriginalNode"),
    "eprop_iaf_neuron": ("EpropEventRecurrent", "EpropNestmlRecurrentEventNode"),
    "eprop_iaf_adapt_neuron": ("EpropEventRecurrent", "EpropNestmlRecurrentEventNode"),
    "eprop_iaf_psc_delta_neuron": ("EpropEventRecurrent", "EpropNestmlRecurrentEventNode"),
    "eprop_iaf_psc_delta_adapt_neuron": ("EpropEventRecurrent", "EpropNestmlRecurrentEventNode"),
    "eprop_readout_neuron": ("EpropEventReadout", "EpropNestmlReadoutEventNode"),
}


class BuildError(RuntimeError):
    """The module could not be generated, compiled or loaded; the message says what is missing."""


@dataclass(frozen=True)
class BuiltModule:
    """A compiled module: ``path`` is the ``.so`` file, ``cached`` tells whether it was reused."""

    path: Path
    key: str
    cached: bool
    seconds: float


def cache_dir(override: str | os.PathLike | None = None) -> Path:
    """Cache root: ``override``, else ``$EPROP_CACHE_DIR``, else ``~/.cache/eprop-plugins``."""
    root = override or os.environ.get("EPROP_CACHE_DIR") or Path.home() / ".cache" / "eprop-plugins"
    return Path(root).expanduser().resolve()


def _sources() -> list[Path]:
    files = sorted(HERE.glob("*.nestml"))
    files += sorted(p for p in (HERE / "templates").rglob("*") if p.is_file())
    files += sorted(p for p in (HERE / "include").rglob("*") if p.is_file())
    files.append(Path(__file__).resolve())
    return files


def _versions() -> dict[str, str]:
    from importlib.metadata import version

    return {"nest-simulator": version("nest-simulator"), "nestml": version("nestml")}


def source_hash() -> str:
    """Hash of all sources, templates, headers, this file and the NEST/NESTML versions (16 hex digits)."""
    h = hashlib.sha256()
    for p in _sources():
        h.update(str(p.relative_to(HERE)).encode())
        h.update(b"\0")
        h.update(p.read_bytes())
        h.update(b"\0")
    h.update(json.dumps(_versions(), sort_keys=True).encode())
    return h.hexdigest()[:16]


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
    site = _site_packages()
    include = site / "nest" / "include" / "nest"
    if not (include / "eprop_archiving_node_recurrent.h").is_file():
        raise BuildError(f"NEST headers not found in {include}: the nest-simulator wheel must ship its include/ directory")
    try:
        import pynestml  # noqa: F401
    except ImportError as exc:
        raise BuildError(f"NESTML is not installed ({exc}): pip install 'nestml==9.0.*'") from None
    return {"site": str(site), "include": str(include), "boost": str(_boost_include()), "cxx": shutil.which("g++") or ""}


def write_nest_config(directory: Path) -> Path:
    """Write a corrected ``nest-config`` for the NEST wheel into ``directory/bin``; return ``directory``.

    The wheel's own script points at its build machine.  The corrected one reports the wheel's
    prefix and headers, the Boost headers of the ``boost-headers`` package, the old C++ ABI flag the
    wheel was compiled with, and ``g++``.
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


def _module_file(directory: Path) -> Path:
    return directory / f"{MODULE_NAME}.so"


def build_module(
    *,
    force: bool = False,
    cache: str | os.PathLike | None = None,
    verbose: bool = False,
) -> BuiltModule:
    """Generate, compile and install the e-prop NESTML module, or reuse the cached build.

    Parameters
    ----------
    force : bool
        Rebuild even if a module with the same source hash is cached.
    cache : path, optional
        Cache root (default: ``$EPROP_CACHE_DIR`` or ``~/.cache/eprop-plugins``).
    verbose : bool
        Print NESTML's and the compiler's progress.

    Returns
    -------
    BuiltModule

    Raises
    ------
    BuildError
        A tool, header or package is missing, or generation/compilation failed (the message
        includes the end of the compiler log).
    """
    t0 = time.perf_counter()
    key = source_hash()
    root = cache_dir(cache)
    final = root / "nestml" / key
    so = _module_file(final / "lib")
    if so.is_file() and not force:
        return BuiltModule(so, key, True, time.perf_counter() - t0)
    check_toolchain()
    # a long silent pause would look like a hang: say what is happening
    print(f"eprop: building the NESTML e-prop module {MODULE_NAME} (once per source version; 1-3 minutes) ...",
          file=sys.stderr, flush=True)
    root.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f"build-{key}-", dir=root))
    try:
        nest_dir = write_nest_config(work / "nest")
        templates = _assemble_templates(work / "templates")
        target = work / "target"
        install = work / "install"
        target.mkdir()
        install.mkdir()
        codegen_opts = {
            "nest_path": str(nest_dir),
            # every neuron gets its own parent class, chosen in the header/class templates from MODELS
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
        # headers the generated code includes; cmake compiles in the target directory
        for h in (HERE / "include").glob("*.h"):  # compat/ is reached through nest-config --includes
            shutil.copy2(h, target / h.name)
        _run_nestml(target, install, codegen_opts, work, verbose)
        _check_generated(target)
        built = _module_file(install)
        if not built.is_file():
            raise BuildError(f"NESTML reported success but {built} was not installed")
        (final / "lib").mkdir(parents=True, exist_ok=True)
        shutil.copy2(built, _module_file(final / "lib"))
        (final / "build.json").write_text(json.dumps({"key": key, "versions": _versions(),
                                                      "models": list(MODELS)}, indent=1))
    finally:
        if not verbose:
            shutil.rmtree(work, ignore_errors=True)
    seconds = time.perf_counter() - t0
    print(f"eprop: built {MODULE_NAME} in {seconds:.0f} s (cached in {final})", file=sys.stderr, flush=True)
    return BuiltModule(_module_file(final / "lib"), key, False, seconds)


def _run_nestml(target: Path, install: Path, codegen_opts: dict, work: Path, verbose: bool) -> None:
    """Run NESTML in a subprocess (it keeps global state and may print a lot); raise BuildError on failure."""
    script = (
        "import json, sys\n"
        "from pynestml.frontend.pynestml_frontend import generate_nest_target\n"
        "a = json.loads(sys.argv[1])\n"
        "generate_nest_target(input_path=a['inputs'], target_path=a['target'], install_path=a['install'],\n"
        "    module_name=a['module'], logging_level='WARNING', codegen_opts=a['opts'])\n"
    )
    args = {
        "inputs": [str(p) for p in sorted(HERE.glob("*.nestml"))],
        "target": str(target),
        "install": str(install),
        "module": MODULE_NAME,
        "opts": codegen_opts,
    }
    log = work / "build.log"
    env = dict(os.environ)
    with open(log, "w") as out:
        proc = subprocess.run([sys.executable, "-c", script, json.dumps(args)], cwd=work, env=env,
                              stdout=None if verbose else out, stderr=subprocess.STDOUT if not verbose else None)
    nestml_errors = [ln for ln in log.read_text(errors="replace").splitlines() if ", ERROR, " in ln] if log.is_file() else []
    if nestml_errors:
        raise BuildError("NESTML rejected the models:\n" + "\n".join(nestml_errors[:20]))
    if proc.returncode != 0:
        tail = ""
        for candidate in [log, *sorted(target.glob("*.log")), *sorted(target.glob("*.txt"))]:
            if candidate.is_file() and candidate.stat().st_size:
                text = candidate.read_text(errors="replace")
                # compiler diagnostics first; otherwise the end of the log
                errors = [ln for ln in text.splitlines() if ": error:" in ln or "fatal error" in ln]
                tail += f"\n--- {candidate.name} ---\n" + "\n".join(errors[:20] or text.splitlines()[-30:])
                if errors:
                    break
        raise BuildError(f"building {MODULE_NAME} failed (exit {proc.returncode}); build directory {work}{tail}")


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


#: the module file this process has installed (reused after ``nest.ResetKernel()``)
_current: Path | None = None


def load_module(*, build: bool = True, cache: str | os.PathLike | None = None) -> Path:
    """Install the module into the running NEST kernel; build it first if needed.

    ``nest.ResetKernel()`` unloads extension modules in NEST 3.10, so call this after every reset
    (it does nothing when the models are already known).  Without ``cache``, the module this
    process installed before is reused (whichever cache it came from).

    Raises
    ------
    BuildError
        The module is not built (and ``build`` is False), cannot be built, or NEST cannot load it.
    """
    import nest

    global _current
    if cache is None and _current is not None and _current.is_file():
        mod = BuiltModule(_current, source_hash(), True, 0.0)  # the module this process already uses
    elif build:
        mod = build_module(cache=cache)
    else:
        so = _module_file(cache_dir(cache) / "nestml" / source_hash() / "lib")
        if not so.is_file():
            raise BuildError(f"{MODULE_NAME} is not built for the current sources; run `eprop build-nest`")
        mod = BuiltModule(so, source_hash(), True, 0.0)
    _current = mod.path
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
    parser.add_argument("--force", action="store_true", help="rebuild even if cached")
    parser.add_argument("--cache-dir", default=None, help="cache root (default $EPROP_CACHE_DIR or ~/.cache/eprop-plugins)")
    parser.add_argument("--verbose", action="store_true", help="show NESTML and compiler output; keep the build directory")
    ns = parser.parse_args(argv)
    try:
        mod = build_module(force=ns.force, cache=ns.cache_dir, verbose=ns.verbose)
    except BuildError as exc:
        print(f"eprop build-nest: {exc}", file=sys.stderr)
        return 1
    state = "cached" if mod.cached else "built"
    print(f"{state} {mod.path} (key {mod.key}, {mod.seconds:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
