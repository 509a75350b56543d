"""The machine a benchmark ran on: CPU, cores, memory, versions and the load average."""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any

__all__ = ["machine", "load_average"]


def load_average() -> list[float]:
    """The 1, 5 and 15 minute load averages (``os.getloadavg``): runnable processes, all users."""
    return [round(x, 2) for x in os.getloadavg()]


def machine() -> dict[str, Any]:
    """CPU model, cores, memory (GB), Python, platform, versions of the simulators, load average now."""
    from importlib import metadata

    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gb = None
    try:
        mem_gb = round(int(Path("/proc/meminfo").read_text().split()[1]) / 1024 ** 2, 1)
    except (OSError, ValueError, IndexError):
        pass
    versions = {}
    for dist in ("eprop-plugins", "numpy", "nest-simulator", "nestml", "brian2", "pyNN"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = None
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gb": mem_gb, "python": platform.python_version(),
            "platform": platform.platform(), "versions": versions, "load_average_start": load_average()}
