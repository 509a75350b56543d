"""Brian2 preferences and cache directories for exact, reproducible e-prop runs.

Brian2's default C++ flags contain ``-ffast-math`` and ``-march=native``; both let the compiler
reassociate sums or fuse multiply-adds (GCC contracts by default), which changes the last bits of
the voltage update and can flip spikes.  We compile with ``-ffp-contract=off`` and without fast
math, for Cython and cpp_standalone alike, and turn off Brian2's loop-invariant optimisation, which
rewrites expressions through SymPy.

Runtime (Cython) modules are compiled with ``-O1``: each scenario structure compiles 20-40 of them,
and on this project's networks ``-O1`` compiles 26 % faster than ``-O3`` (orig-rec-mse-gd, 41 modules:
54.8 s instead of 74.1 s) while a run takes the same time (task-sine-original: 2.9 s, 3.2 s at
``-O3``), since a runtime step is dominated by Python.  They are compiled without debug information
(``-g0``; Python's own ``CFLAGS``, which distutils passes first, contain ``-g``): the same machine
code, 16 % faster compiles (orig-lif-single's 39 modules: 53.6 s instead of 64.2 s) and a quarter of
the size (3 MB instead of 12 MB).  cpp_standalone keeps ``-O3``: measured with ``-O1
-ftree-vectorize``, its builds compiled 20 % faster but the event family's sine task ran 2.2 times
longer (0.76 s instead of 0.35 s).  Optimisation levels do not change IEEE results (no fast math, no
contraction).

Brian2 names each Cython module by a hash of its code and of ``sys.executable``.  One environment
has several spellings of its interpreter (``.venv/bin/python``, ``python3``, ``python3.11``; the
``eprop`` command runs as ``python3``, ``python -m pytest`` as ``python``), and each spelling would
compile its own copy of every module (measured: a warm cache for ``eprop validate`` compiled all 39
modules of orig-lif-single again when the same scenario ran from ``python``).  :func:`configure`
therefore sets ``sys.executable`` to one spelling of the same file (:func:`canonical_executable`).
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

from eprop_plugins.cache import cache_root

__all__ = ["cache_dir", "EXACT_GCC_FLAGS", "STANDALONE_GCC_FLAGS", "cpu_tag", "canonical_executable", "configure",
           "lighten_makefile"]

#: what keeps IEEE evaluation order (no fast math, no FMA contraction), whatever the optimisation level
_IEEE_FLAGS = ["-fno-fast-math", "-ffp-contract=off", "-std=c++11"]

#: runtime Cython modules (``-g0``: no debug information, whatever Python's CFLAGS say)
EXACT_GCC_FLAGS = ["-w", "-O1", "-g0", *_IEEE_FLAGS]

#: cpp_standalone: the same plus this CPU's vector units for the vectorised synapse loops
#: (:mod:`brian2_ext.grid_loops`); element-wise vector arithmetic is IEEE-identical to scalar code and
#: ``-ffp-contract=off`` still forbids FMA.  The build cache is keyed by :func:`cpu_tag`.
STANDALONE_GCC_FLAGS = ["-w", "-O3", *_IEEE_FLAGS, "-march=native"]


#: generated cpp_standalone sources without the model's arithmetic: array setup and file I/O, the main
#: loop, spike queues, thresholds and resets, monitors, synapse creation (compiled at ``-O1``)
_BOOKKEEPING_FILES = ("objects", "main", "network", "run", "synapses_classes")
_BOOKKEEPING_CODE = re.compile(r"push_spikes|_mon_|thresholder|resetter|synapses_create")


def lighten_makefile(project: Path) -> list[str]:
    """Compile the bookkeeping files of a generated cpp_standalone project at ``-O1`` (the rest stays ``-O3``).

    ``objects.cpp`` alone (array allocation and file I/O) took 4.0 s of a build at ``-O3`` and 2.1 s
    at ``-O1``; the model's arithmetic (neuron steps, synapse traces and arrivals, the optimizer)
    keeps ``-O3``, which the event family needs (at ``-O1`` its sine task ran 2.2 times longer).
    Appends a target-specific rule to Brian2's makefile before the build's key is computed; returns
    the object files it names.
    """
    project = Path(project)
    objects = [f"{name}.o" for name in _BOOKKEEPING_FILES if (project / f"{name}.cpp").is_file()]
    objects += [f"code_objects/{src.stem}.o" for src in sorted((project / "code_objects").glob("*.cpp"))
                if _BOOKKEEPING_CODE.search(src.stem)]
    makefile = project / "makefile"
    makefile.write_text(makefile.read_text() + "\n# eprop-plugins: bookkeeping at -O1 (brian2_ext.config)\n"
                        + " ".join(objects) + ": OPTIMISATIONS := $(subst -O3,-O1,$(OPTIMISATIONS))\n")
    return objects


def cpu_tag() -> str:
    """CPU model and feature flags (part of the standalone cache key: ``-march=native`` binaries)."""
    import platform

    text = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith(("model name", "flags")) and line not in text:
                    text += line
                if line.strip() == "":
                    break
    except OSError:
        pass
    return platform.machine() + platform.processor() + text


def canonical_executable(executable: str | None = None) -> str:
    """One spelling of the running interpreter: ``python`` beside it if that is the same file, else ``python3``
    if that is, else the path itself.

    Parameters
    ----------
    executable : str, optional
        Interpreter path (default: ``sys.executable``).
    """
    exe = Path(executable if executable is not None else sys.executable)
    for name in ("python", "python3"):
        candidate = exe.with_name(name)
        try:
            if candidate == exe or os.path.samefile(candidate, exe):
                return str(candidate)
        except OSError:  # no such file beside it
            continue
    return str(exe)


def cache_dir(*parts: str) -> Path:
    """Directory ``brian2/<parts>`` under the project's cache root (:func:`eprop_plugins.cache.cache_root`)."""
    path = cache_root().joinpath("brian2", *parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def configure(target: str = "cython", threads: int = 1, standalone: bool = False) -> None:
    """Set the Brian2 preferences every e-prop run uses.

    Parameters
    ----------
    target : {'cython', 'numpy'}
        Runtime code-generation target (ignored by cpp_standalone).
    threads : int
        OpenMP threads of cpp_standalone (1: no OpenMP).
    standalone : bool
        Compiler flags of cpp_standalone builds (:data:`STANDALONE_GCC_FLAGS`).
    """
    from brian2 import prefs

    if sys.executable:  # part of Brian2's Cython module names: one name per environment, however it was started
        sys.executable = canonical_executable()
    prefs.codegen.cpp.extra_compile_args_gcc = list(STANDALONE_GCC_FLAGS if standalone else EXACT_GCC_FLAGS)
    prefs.codegen.loop_invariant_optimisations = False
    prefs.codegen.target = target
    prefs.codegen.runtime.cython.cache_dir = str(cache_dir("cython"))
    prefs.devices.cpp_standalone.openmp_threads = 0 if threads <= 1 else int(threads)
    # Brian2's default is an unbounded `make -j`: one compiler per source file at once (~50), several GB
    prefs.devices.cpp_standalone.extra_make_args_unix = [f"-j{os.cpu_count() or 1}"]
    prefs.logging.console_log_level = "WARNING"
