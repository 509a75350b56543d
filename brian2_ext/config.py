"""Brian2 preferences and cache directories for exact, reproducible e-prop runs.

Brian2's default C++ flags contain ``-ffast-math`` and ``-march=native``; both let the compiler
reassociate sums or fuse multiply-adds (GCC contracts by default), which changes the last bits of
the voltage update and can flip spikes.  We compile with ``-ffp-contract=off`` and without fast
math, for Cython and cpp_standalone alike, and turn off Brian2's loop-invariant optimisation, which
rewrites expressions through SymPy.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["cache_dir", "EXACT_GCC_FLAGS", "configure"]

#: compiler flags that keep IEEE evaluation order (no fast math, no FMA contraction)
EXACT_GCC_FLAGS = ["-w", "-O3", "-fno-fast-math", "-ffp-contract=off", "-std=c++11"]


def cache_dir(*parts: str) -> Path:
    """Directory for Brian2 build products: ``$EPROP_CACHE_DIR`` or ``~/.cache/eprop-plugins``."""
    root = Path(os.environ.get("EPROP_CACHE_DIR") or Path.home() / ".cache" / "eprop-plugins")
    path = root.joinpath("brian2", *parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def configure(target: str = "cython", threads: int = 1) -> None:
    """Set the Brian2 preferences every e-prop run uses.

    Parameters
    ----------
    target : {'cython', 'numpy'}
        Runtime code-generation target (ignored by cpp_standalone).
    threads : int
        OpenMP threads of cpp_standalone (1: no OpenMP).
    """
    from brian2 import prefs

    prefs.codegen.cpp.extra_compile_args_gcc = list(EXACT_GCC_FLAGS)
    prefs.codegen.loop_invariant_optimisations = False
    prefs.codegen.target = target
    prefs.codegen.runtime.cython.cache_dir = str(cache_dir("cython"))
    prefs.devices.cpp_standalone.openmp_threads = 0 if threads <= 1 else int(threads)
    prefs.logging.console_log_level = "WARNING"
