"""Shared test fixtures."""

from __future__ import annotations

import os
from pathlib import Path

# Keep simulator build caches out of the repository and shared within one test session.
os.environ.setdefault("EPROP_CACHE_DIR", str(Path.home() / ".cache" / "eprop-plugins"))
