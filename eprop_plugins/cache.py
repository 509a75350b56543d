"""Files the project writes: one cache root, inter-process locks, atomic writes and verified installs.

Every build product (the NESTML module, Brian2 standalone binaries, Cython modules) and every file
the project writes for a user (results, reports) goes through this module, so that two processes
that build or write the same thing at once (two notebooks, two terminals, ``pytest -n 2``) and a
build killed half-way can never leave a truncated or half-overwritten file that another process
then loads:

* a build happens in a private temporary directory beside its destination and is installed by one
  ``rename`` (:func:`install_directory`), after a manifest of file sizes and SHA-256 hashes has been
  written into it;
* before a cached build is used, :func:`verify_manifest` checks it against that manifest; a build
  without a manifest (interrupted, or written by an older version) does not count as cached;
* an installed directory is never written into again: a rebuild installs a new directory and moves
  the old one aside (a process that has the old files loaded keeps its inodes);
* :func:`locked` serialises builds of the same key across processes (``fcntl.flock``, released by
  the kernel when a process dies), printing a message while it waits.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

__all__ = ["MANIFEST", "atomic_write", "cache_root", "install_directory", "locked", "private_directory",
           "verify_manifest", "write_manifest"]

#: name of the manifest file inside an installed build directory
MANIFEST = "eprop-manifest.json"


def cache_root(override: str | os.PathLike | None = None) -> Path:
    """The cache root: ``override``, else ``$EPROP_CACHE_DIR``, else ``~/.cache/eprop-plugins``."""
    root = Path(override or os.environ.get("EPROP_CACHE_DIR") or Path.home() / ".cache" / "eprop-plugins").expanduser()
    root.mkdir(parents=True, exist_ok=True)
    return root


@contextmanager
def locked(path: str | os.PathLike, message: str | None = None) -> Iterator[None]:
    """Hold an exclusive inter-process lock on the file ``path`` (created if missing).

    Parameters
    ----------
    path : path
        Lock file (conventionally ``<destination>.lock``).
    message : str, optional
        Printed to stderr once if another process holds the lock, before waiting for it.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if message:
                print(f"eprop: {message}", file=sys.stderr, flush=True)
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def atomic_write(path: str | os.PathLike, data: str | bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same directory and one ``rename``.

    Readers see either the old file or the whole new one, never a part.  The file gets the
    permissions an ordinary ``open(path, "w")`` would give it (``0o666`` less the umask), not the
    owner-only mode of a temporary file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _umask() -> int:
    """The process's umask, read without changing it where Linux allows (``os.umask`` sets it)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_manifest(directory: str | os.PathLike, files: list[str] | None = None) -> Path:
    """Record size and SHA-256 of ``files`` (relative paths; default: every file) in the manifest."""
    directory = Path(directory)
    if files is None:
        files = sorted(str(p.relative_to(directory)) for p in directory.rglob("*") if p.is_file() and p.name != MANIFEST)
    entries = {f: {"size": (directory / f).stat().st_size, "sha256": _sha256(directory / f)} for f in files}
    return atomic_write(directory / MANIFEST, json.dumps({"files": entries}, indent=1, sort_keys=True))


def verify_manifest(directory: str | os.PathLike, *, hashes: bool = True) -> bool:
    """True if ``directory`` has a manifest and every listed file has the recorded size (and hash)."""
    directory = Path(directory)
    try:
        entries = json.loads((directory / MANIFEST).read_text())["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return False
    for name, rec in entries.items():
        p = directory / name
        try:
            if p.stat().st_size != rec["size"] or (hashes and _sha256(p) != rec["sha256"]):
                return False
        except OSError:
            return False
    return True


def private_directory(destination: str | os.PathLike) -> Path:
    """A new empty directory beside ``destination``, for building what will be installed there."""
    destination = Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{destination.name}.build-", dir=destination.parent))


def install_directory(built: str | os.PathLike, destination: str | os.PathLike) -> Path:
    """Install the finished build ``built`` as ``destination`` by rename, with a manifest.

    An existing ``destination`` is renamed aside first (and removed; processes that have its files
    open or loaded keep them), so nothing is ever written into an installed directory.
    """
    built, destination = Path(built), Path(destination)
    if not (built / MANIFEST).is_file():
        write_manifest(built)
    if destination.exists():
        aside = destination.with_name(f".{destination.name}.old-{os.getpid()}-{time.monotonic_ns()}")
        os.replace(destination, aside)
        shutil.rmtree(aside, ignore_errors=True)
    os.replace(built, destination)
    return destination
