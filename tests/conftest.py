"""Shared test fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Keep simulator build caches out of the repository and shared within one test session.
os.environ.setdefault("EPROP_CACHE_DIR", str(Path.home() / ".cache" / "eprop-plugins"))


@pytest.fixture(scope="module")
def numpy_target():
    """Brian2's numpy code-generation target for the users' own groups of a test module (no Cython
    compilation; brian2_ext sets its own target where it generates code)."""
    import brian2 as b2  # noqa: PLC0415 - only the Brian2 test modules use this fixture

    saved = b2.prefs.codegen.target
    b2.prefs.codegen.target = "numpy"
    yield
    b2.prefs.codegen.target = saved
