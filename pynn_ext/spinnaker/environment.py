"""sPyNNaker's own virtual environment: ``.venv-spinnaker`` in the repository, created on first use.

sPyNNaker 1!7.4.1 pulls its own stack (numpy 2.4, which Brian2 2.9 cannot import), so it never goes
into the project's main environment.  :func:`ensure` creates a second environment with
``python -m venv`` and pip-installs the pinned sPyNNaker plus this project (editable, without
simulator extras: ``pynn_ext`` imports no NEST or Brian2), then writes a completion marker.

Safe under concurrent use: creation holds an inter-process lock (``.venv-spinnaker.lock``); the
marker is written atomically, last, and records what was installed, so an interrupted creation
(no marker) or a changed pin (other marker) is detected and the environment is created afresh.

    python -m pynn_ext.spinnaker.environment          # create if needed, print its python
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from eprop_plugins.cache import atomic_write, locked

__all__ = ["SPYNNAKER", "ENVIRONMENT_VARIABLE", "MARKER", "repository_root", "environment_path", "python_path",
           "fingerprint", "is_ready", "ensure", "main"]

#: the sPyNNaker release the model classes are written against (its class names and signatures)
SPYNNAKER = "spynnaker==1!7.4.1"
#: overrides the location of the environment (default: ``.venv-spinnaker`` in the repository)
ENVIRONMENT_VARIABLE = "EPROP_SPINNAKER_VENV"
#: completion marker inside the environment, written last
MARKER = "eprop-environment.json"


def repository_root() -> Path:
    """The repository (the directory holding ``pyproject.toml``) this package is imported from."""
    return Path(__file__).resolve().parents[2]


def environment_path() -> Path:
    """Where the environment lives: ``$EPROP_SPINNAKER_VENV``, else ``<repository>/.venv-spinnaker``."""
    override = os.environ.get(ENVIRONMENT_VARIABLE)
    return Path(override).expanduser().resolve() if override else repository_root() / ".venv-spinnaker"


def python_path(env: Path | None = None) -> Path:
    """The environment's Python interpreter."""
    return (env or environment_path()) / "bin" / "python"


def _project_dependencies() -> str:
    """The project's declared dependencies (their change makes a new environment), as text."""
    text = (repository_root() / "pyproject.toml").read_text()
    try:
        import tomllib  # Python >= 3.11
    except ModuleNotFoundError:  # Python 3.10: the whole file stands for its dependency list
        return text
    return json.dumps(tomllib.loads(text)["project"]["dependencies"])


def fingerprint() -> str:
    """What the environment must hold: the sPyNNaker pin, the project's dependencies, the Python version."""
    parts = [SPYNNAKER, _project_dependencies(), f"{sys.version_info.major}.{sys.version_info.minor}",
             str(repository_root())]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def is_ready(env: Path | None = None) -> bool:
    """True if the environment was created completely for the current :func:`fingerprint` (no subprocess)."""
    env = env or environment_path()
    try:
        marker = json.loads((env / MARKER).read_text())
    except (OSError, ValueError):
        return False
    return marker.get("fingerprint") == fingerprint() and python_path(env).exists()


def _run(command: list[str], quiet: bool) -> None:
    result = subprocess.run(command, stdout=subprocess.PIPE if quiet else None, stderr=subprocess.STDOUT,
                            text=True, check=False)
    if result.returncode != 0:
        output = (result.stdout or "")[-4000:]
        raise RuntimeError(f"creating the sPyNNaker environment failed: {' '.join(command)} exited with "
                           f"{result.returncode}\n{output}")


def ensure(env: Path | None = None, *, quiet: bool = True) -> Path:
    """Create the sPyNNaker environment unless it is complete; return its Python interpreter.

    Parameters
    ----------
    env : Path, optional
        Environment directory (default :func:`environment_path`).
    quiet : bool
        Capture pip's output (shown only if it fails); a one-line message says what is happening.

    Raises
    ------
    RuntimeError
        ``venv`` or ``pip`` failed (the message holds the end of their output).
    """
    env = env or environment_path()
    if is_ready(env):
        return python_path(env)
    with locked(env.with_name(env.name + ".lock"), f"waiting for another process creating {env}"):
        if is_ready(env):  # created by the process we waited for
            return python_path(env)
        print(f"eprop: creating the sPyNNaker environment {env} ({SPYNNAKER} and this project; "
              "about 2 minutes, once)", file=sys.stderr, flush=True)
        start = time.monotonic()
        if env.exists():  # an interrupted creation or another fingerprint: start afresh
            shutil.rmtree(env)
        _run([sys.executable, "-m", "venv", str(env)], quiet)
        python = python_path(env)
        _run([str(python), "-m", "pip", "install", "--disable-pip-version-check", "--no-input",
              SPYNNAKER, "-e", str(repository_root())], quiet)
        versions = subprocess.run(
            [str(python), "-c", "import json, numpy, pyNN, spynnaker; print(json.dumps({'numpy': numpy.__version__, "
             "'pyNN': pyNN.__version__, 'spynnaker': spynnaker.__version__}))"],
            capture_output=True, text=True, check=False)
        if versions.returncode != 0:
            raise RuntimeError(f"the new sPyNNaker environment {env} cannot import sPyNNaker:\n"
                               f"{versions.stderr[-4000:]}")
        marker = {"fingerprint": fingerprint(), "requirement": SPYNNAKER, "versions": json.loads(versions.stdout),
                  "seconds": round(time.monotonic() - start, 1)}
        atomic_write(env / MARKER, json.dumps(marker, indent=1))
        print(f"eprop: sPyNNaker environment ready in {marker['seconds']:.0f} s", file=sys.stderr, flush=True)
    return python_path(env)


def main(argv: list[str] | None = None) -> int:
    """Command line: create the environment if needed and print its interpreter."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--path", type=Path, help=f"environment directory (default: ${ENVIRONMENT_VARIABLE} or "
                                                  "<repository>/.venv-spinnaker)")
    parser.add_argument("--check", action="store_true", help="only report whether it is complete (exit 1 if not)")
    parser.add_argument("--verbose", action="store_true", help="show pip's output")
    args = parser.parse_args(argv)
    env = args.path.resolve() if args.path else None
    if args.check:
        ready = is_ready(env)
        print(f"{env or environment_path()}: {'complete' if ready else 'missing or incomplete'}")
        return 0 if ready else 1
    print(ensure(env, quiet=not args.verbose))
    return 0


if __name__ == "__main__":
    sys.exit(main())
