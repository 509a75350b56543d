"""Run the ARM968 build of the e-prop kernel under QEMU's user-mode ARM emulator.

The kernel sources are linked with a small harness (``c/arm_harness/eprop_arm_main.c``) and
newlib's semihosting start-up (``--specs=rdimon.specs``), and run with ``qemu-arm -cpu arm946``
(QEMU's ARMv5TE core, the architecture of the ARM968): the network of
:func:`pynn_ext.spinnaker.kernel_params.kernel_network` goes in through a file, the raw recordings
come out through another, in the layout of :func:`pynn_ext.spinnaker.host.run_kernel`.  This checks
that the compiled ARM code computes the same bits as the host build, not only that it compiles.
:func:`ensure_emulator` installs Debian's ``qemu-user`` when it is missing (as root).
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from .arm_build import ARM_FLAGS, C_DIR, apt_tool, ensure_toolchain
from .kernel_params import KernelNetwork, allocate_raw

__all__ = ["QEMU", "QEMU_CPU", "ensure_emulator", "build_runner", "run_kernel"]

QEMU = "qemu-arm"
#: QEMU's ARMv5TE CPU (QEMU has no ARM968 model; the ARM946 has the same architecture and ISA)
QEMU_CPU = "arm946"
_SOURCES = ("neuron_model_eprop_original_impl.c", "synapse_dynamics_eprop_original_impl.c", "eprop_host_original.c")


def ensure_emulator() -> str:
    """The path of ``qemu-arm``, installing Debian's ``qemu-user`` if it is missing.

    Raises
    ------
    RuntimeError
        It is missing and cannot be installed (not root, no apt-get, or apt-get failed).
    """
    return apt_tool(QEMU, "qemu-user", "to run the ARM build of the kernel")


def build_runner(out_dir: str | os.PathLike, extra_flags: tuple[str, ...] = ()) -> Path:
    """Link the kernel and the harness into an ARM ELF (newlib, semihosting) in ``out_dir``.

    ``ARM_FLAGS`` without ``-ffreestanding``/``-nostdlib`` (the harness uses newlib's stdio);
    the kernel objects are compiled exactly as in :func:`pynn_ext.spinnaker.arm_build.build`.
    """
    cc = ensure_toolchain()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    elf = out / "eprop_arm_run.elf"
    objs = []
    for src in _SOURCES:
        obj = out / f"{Path(src).stem}.o"
        _check([cc, *ARM_FLAGS, *extra_flags, "-c", str(C_DIR / src), "-o", str(obj)])
        objs.append(str(obj))
    harness_flags = [f for f in ARM_FLAGS if f not in ("-ffreestanding", "-nostdlib")]
    _check([cc, *harness_flags, *extra_flags, "--specs=rdimon.specs", str(C_DIR / "arm_harness" / "eprop_arm_main.c"),
            *objs, "-o", str(elf)])
    return elf


def _check(cmd: list[str]) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stdout}{proc.stderr}")


def _blocks(arrays) -> bytes:
    out = bytearray()
    for a in arrays:
        b = np.ascontiguousarray(a).tobytes()
        out += np.uint32(len(b)).tobytes() + b
    return bytes(out)


def run_kernel(elf: str | os.PathLike, net: KernelNetwork, timeout: float = 600.0) -> dict[str, np.ndarray]:
    """Run ``net`` on the ARM build ``elf`` under QEMU; returns the raw recordings (int64, ``z`` uint8).

    Raises
    ------
    RuntimeError
        The emulated program failed (exit status and output in the message).
    """
    qemu = ensure_emulator()
    n_record = net.record.shape[0]
    sizes = np.array([net.n_in, net.n_rec, net.n_out, net.T, net.n_sequences, net.T_L, net.n_cores, n_record,
                      int(net.symmetric), net.learning_delay], dtype=np.uint32)
    arrays = [sizes, net.core_start.astype(np.uint32), net.neuron_params, net.readout_params, net.synapse_params,
              net.optimizer, net.inputs.astype(np.uint8), net.zero_L.astype(np.uint8), net.target.astype(np.int32),
              net.w_hidden.astype(np.int32), net.w_out.astype(np.int32), net.w_fb.astype(np.int32),
              net.record.astype(np.int32).reshape(-1) if n_record else np.zeros(3, np.int32),
              net.mask_hidden.astype(np.uint8), net.mask_out.astype(np.uint8)]
    with tempfile.TemporaryDirectory(prefix="eprop-arm-") as tmp:
        src, dst = Path(tmp) / "net.bin", Path(tmp) / "raw.bin"
        src.write_bytes(_blocks(arrays))
        proc = subprocess.run([qemu, "-cpu", QEMU_CPU, str(elf), str(src), str(dst)], capture_output=True, text=True,
                              timeout=timeout)
        if proc.returncode != 0 or not dst.is_file():
            raise RuntimeError(f"the ARM build exited with {proc.returncode}: {proc.stdout}{proc.stderr}")
        data = dst.read_bytes()
    raw = allocate_raw(net, np.int32, min_record=1)
    pos = 0
    for key, a in raw.items():
        n = int(np.frombuffer(data, dtype=np.uint32, count=1, offset=pos)[0])
        if n != a.nbytes:
            raise RuntimeError(f"ARM output {key}: {n} bytes, expected {a.nbytes}")
        raw[key] = np.frombuffer(data, dtype=a.dtype, count=a.size, offset=pos + 4).reshape(a.shape).copy()
        pos += 4 + n
    out = {k: (a if a.dtype == np.uint8 else a.astype(np.int64)) for k, a in raw.items()}
    for k in ("syn_zbar", "syn_e", "syn_ebar"):
        out[k] = out[k][:, :n_record]
    return out
