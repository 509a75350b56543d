"""Cross-compile the SpiNNaker e-prop kernel for the ARM968 core with Debian's ``gcc-arm-none-eabi``.

The kernel sources of ``pynn_ext/spinnaker/c/`` are compiled freestanding (no libc, no sPyNNaker
runtime) for ``-mcpu=arm968e-s``, in both builds of ``eprop_fixed.h``: REAL as the raw int32 and
REAL as GCC's native ``accum`` (``-DEPROP_NATIVE_ACCUM``), then linked with ``-nostdlib -lgcc``
only, so that any call into a C library fails the link.  :func:`ensure_toolchain` installs the
compiler with apt-get when it is missing (as root), so that the project's own files provide it::

    python -m pynn_ext.spinnaker.arm_build      # installs if needed, builds into ./build-arm
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

__all__ = ["C_DIR", "ARM_CC", "ARM_FLAGS", "VARIANTS", "ITCM_BYTES", "ArmBuild", "ensure_toolchain", "apt_tool", "build"]

C_DIR = Path(__file__).resolve().parent / "c"
ARM_CC = "arm-none-eabi-gcc"
#: target and freestanding flags (sPyNNaker builds its cores with -mcpu=arm968e-s too)
ARM_FLAGS = ("-mcpu=arm968e-s", "-marm", "-std=gnu11", "-O2", "-ffreestanding", "-nostdlib", "-Wall", "-Wextra",
             "-Werror", "-fno-strict-aliasing")
#: name -> extra flags: REAL as int32 bits, and REAL as GCC's accum
VARIANTS = {"int32": (), "native-accum": ("-DEPROP_NATIVE_ACCUM",)}
#: instruction memory of an ARM968 core on SpiNNaker [bytes]
ITCM_BYTES = 32768
_SOURCES = ("neuron_model_eprop_original_impl.c", "synapse_dynamics_eprop_original_impl.c", "eprop_host_original.c")


@dataclass
class ArmBuild:
    """One variant's cross-compiled kernel."""

    variant: str
    elf: Path
    text_bytes: int  # code + read-only data of the linked kernel
    undefined: list[str]  # undefined symbols left after linking (should be none)
    cpu: str  # Tag_CPU_name from the ELF attributes


def ensure_toolchain() -> str:
    """The path of ``arm-none-eabi-gcc``, installing Debian's ``gcc-arm-none-eabi`` if it is missing.

    Raises
    ------
    RuntimeError
        The compiler is missing and cannot be installed (not root, no apt-get, or apt-get failed).
    """
    return apt_tool(ARM_CC, "gcc-arm-none-eabi", "the ARM968 cross-compiler")


def apt_tool(program: str, package: str, purpose: str) -> str:
    """The path of ``program``, installing the Debian ``package`` with apt-get (as root) if it is missing.

    Raises
    ------
    RuntimeError
        The program is missing and cannot be installed (not root, no apt-get, or apt-get failed).
    """
    path = shutil.which(program)
    if path:
        return path
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        raise RuntimeError(f"{program} is missing; install Debian's {package} as root "
                           f"(apt-get update && apt-get install -y {package})")
    print(f"eprop: installing {package} with apt-get ({purpose})", file=sys.stderr, flush=True)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for cmd in (["apt-get", "update"], ["apt-get", "install", "-y", package]):
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    path = shutil.which(program)
    if not path:
        raise RuntimeError(f"{package} installed but {program} is not on the PATH")
    return path


def _run(cmd: list[str], cwd: Path) -> str:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stdout}{proc.stderr}")
    return proc.stdout


def build(out_dir: str | os.PathLike) -> dict[str, ArmBuild]:
    """Compile and link every variant into ``out_dir``; returns the builds by variant.

    The entry point of the linked image is ``eprop_host_original_run``, so every kernel function is
    reachable and nothing is discarded; ``-lgcc`` supplies the 64-bit division helpers.

    Raises
    ------
    RuntimeError
        A compile or link step failed (the compiler's output is in the message).
    """
    cc = ensure_toolchain()
    tools = Path(cc).parent
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    builds = {}
    for variant, extra in VARIANTS.items():
        objs = []
        for src in _SOURCES:
            obj = out / f"{Path(src).stem}.{variant}.o"
            _run([cc, *ARM_FLAGS, *extra, "-c", str(C_DIR / src), "-o", str(obj)], out)
            objs.append(str(obj))
        elf = out / f"eprop_kernel.{variant}.elf"
        _run([cc, *ARM_FLAGS, *extra, "-nostartfiles", "-Wl,-e,eprop_host_original_run", "-Wl,--gc-sections",
              *objs, "-lgcc", "-o", str(elf)], out)
        size = _run([str(tools / "arm-none-eabi-size"), "-A", str(elf)], out)
        text = sum(int(line.split()[1]) for line in size.splitlines()
                   if line.startswith((".text", ".rodata")) and len(line.split()) >= 2)
        undefined = _run([str(tools / "arm-none-eabi-nm"), "-u", str(elf)], out).split()
        attrs = _run([str(tools / "arm-none-eabi-readelf"), "-A", str(elf)], out)
        cpu = next((line.split(":", 1)[1].strip().strip('"') for line in attrs.splitlines()
                    if "Tag_CPU_name" in line), "")
        builds[variant] = ArmBuild(variant, elf, text, undefined, cpu)
    return builds


if __name__ == "__main__":
    for b in build(Path.cwd() / "build-arm").values():
        print(f"{b.variant}: {b.elf} ({b.text_bytes} bytes of code, CPU {b.cpu}, undefined: {b.undefined or 'none'})")
