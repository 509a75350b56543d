"""Can Brian2 run here?  Clear reasons instead of a failure deep inside a build."""

from __future__ import annotations

import shutil

__all__ = ["check_brian2"]


def check_brian2(standalone: bool) -> None:
    """Raise ImportError or RuntimeError naming what is missing.

    Parameters
    ----------
    standalone : bool
        Also require a C++ compiler and ``make`` for cpp_standalone.
    """
    try:
        import brian2  # noqa: F401
    except Exception as exc:  # numpy >= 2.4 breaks brian2 2.9.0 at import time
        raise ImportError(f"brian2 cannot be imported ({type(exc).__name__}: {exc}); "
                          "install brian2 2.9 with numpy < 2.4") from exc
    try:
        import Cython  # noqa: F401
    except ImportError as exc:
        raise ImportError("Cython is not installed: the brian2 backend generates Cython code") from exc
    if shutil.which("g++") is None and shutil.which("c++") is None:
        raise RuntimeError("no C++ compiler (g++) on PATH: Brian2 cannot compile generated code")
    if standalone and shutil.which("make") is None:
        raise RuntimeError("'make' is not on PATH: cpp_standalone builds with make")
