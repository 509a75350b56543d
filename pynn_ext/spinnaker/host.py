"""The host build of the SpiNNaker e-prop kernel: compiled with the system gcc, driven by ctypes.

The kernel sources under ``pynn_ext/spinnaker/c/`` (the same files the ARM build compiles) are
built into a shared library in the project cache (``<cache>/spinnaker-host/<key>/``, see
:mod:`eprop_plugins.cache`): in a private directory, under an inter-process lock, installed by
one rename with a manifest that is verified before every use.  The key hashes the sources, the
compiler's version and the flags, so an edited source or another compiler builds anew.
:func:`run_kernel` returns the same raw recordings as
:func:`pynn_ext.spinnaker.emulation.run_kernel`.
"""

from __future__ import annotations

import ctypes
import hashlib
import shutil
import subprocess
import time
from functools import lru_cache
from pathlib import Path

import numpy as np

from eprop_plugins.cache import cache_root, install_directory, locked, private_directory, verify_manifest

from .kernel_params import NEURON_PARAMS, OPTIMIZER_PARAMS, READOUT_PARAMS, SYNAPSE_PARAMS, KernelNetwork, allocate_raw

__all__ = ["C_DIR", "KERNEL_SOURCES", "HOST_DRIVER", "CFLAGS", "LIBRARY", "compiler", "build_key", "library_path",
           "is_built", "build", "load", "struct_sizes", "FIXED_OPS", "fixed_op", "neurons_per_core", "run_kernel"]

#: the kernel's C sources and headers
C_DIR = Path(__file__).resolve().parent / "c"
#: the kernel proper (what a SpiNNaker core runs)
KERNEL_SOURCES = ("neuron_model_eprop_original_impl.c", "synapse_dynamics_eprop_original_impl.c")
#: the driver that steps a whole network in one address space
HOST_DRIVER = "eprop_host_original.c"
#: flags of the host build (strict C11: GCC's fixed-point types are not used on the host)
CFLAGS = ("-std=c11", "-O2", "-fPIC", "-shared", "-Wall", "-Wextra", "-Werror", "-fno-strict-aliasing")
#: the shared library inside a cache entry
LIBRARY = "libeprop_spinnaker_host.so"


def compiler() -> str:
    """The C compiler (``gcc``).

    Raises
    ------
    RuntimeError
        gcc is not on the PATH.
    """
    cc = shutil.which("gcc")
    if cc is None:
        raise RuntimeError("spinnaker-host needs the system C compiler gcc on the PATH (Debian: apt-get install gcc)")
    return cc


def _sources() -> list[Path]:
    return sorted(C_DIR.glob("*.c")) + sorted(C_DIR.glob("*.h"))


@lru_cache(maxsize=1)
def _compiler_version() -> str:
    return subprocess.run([compiler(), "--version"], capture_output=True, text=True, check=True).stdout.splitlines()[0]


def build_key() -> str:
    """Hash of the kernel sources, the compiler version and the flags."""
    h = hashlib.sha256()
    for p in _sources():
        h.update(p.name.encode() + b"\0" + p.read_bytes() + b"\0")
    h.update(_compiler_version().encode() + b"\0" + " ".join(CFLAGS).encode())
    return h.hexdigest()[:16]


def library_path() -> Path:
    """Where the library of the current sources is (or will be) installed."""
    return cache_root() / "spinnaker-host" / build_key() / LIBRARY


def is_built() -> bool:
    """Whether the library of the current sources is in the cache with a valid manifest (cheap)."""
    return verify_manifest(library_path().parent, hashes=False)


def build() -> tuple[Path, float]:
    """Compile the host library unless a verified build is cached.

    Returns
    -------
    path, seconds : Path, float
        The library and the compile time (0.0 when the cached build was used).

    Raises
    ------
    RuntimeError
        The compiler failed (its output is in the message).
    """
    dest = library_path().parent
    if verify_manifest(dest):
        return dest / LIBRARY, 0.0
    with locked(dest.with_name(dest.name + ".lock"), f"waiting for another process building {dest}"):
        if verify_manifest(dest):
            return dest / LIBRARY, 0.0
        t0 = time.perf_counter()
        work = private_directory(dest)
        try:
            for p in _sources():
                shutil.copy2(p, work / p.name)
            cmd = [compiler(), *CFLAGS, "-o", LIBRARY, *KERNEL_SOURCES, HOST_DRIVER]
            proc = subprocess.run(cmd, cwd=work, capture_output=True, text=True)
            if proc.returncode != 0:
                raise RuntimeError(f"compiling the SpiNNaker kernel for the host failed ({' '.join(cmd)}):\n"
                                   f"{proc.stdout}{proc.stderr}")
            install_directory(work, dest)
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            raise
        return dest / LIBRARY, time.perf_counter() - t0


_P = ctypes.c_void_p
_U = ctypes.c_uint32


class _Network(ctypes.Structure):
    """ctypes mirror of ``eprop_host_network_t`` (eprop_host_original.h)."""

    _fields_ = [(name, _U) for name in ("n_in", "n_rec", "n_out", "T", "n_sequences", "T_L", "n_cores", "n_record",
                                        "symmetric", "learning_delay")] + \
               [(name, _P) for name in ("core_start", "neuron_params", "readout_params", "synapse_params", "optimizer",
                                        "inputs", "zero_L", "target", "w_hidden", "w_out", "w_fb", "record",
                                        "mask_hidden", "mask_out",
                                        "v", "psi", "adaptation", "threshold", "learning_signal", "fr_reg", "z",
                                        "readout_v", "signal", "error", "syn_zbar", "syn_e", "syn_ebar",
                                        "snap_w_hidden", "snap_w_out", "snap_w_fb", "workspace")]


@lru_cache(maxsize=4)
def _load(path: str) -> ctypes.CDLL:
    lib = ctypes.CDLL(path)
    lib.eprop_host_original_run.argtypes = [ctypes.POINTER(_Network)]
    lib.eprop_host_original_run.restype = ctypes.c_int32
    lib.eprop_host_workspace_bytes.argtypes = [_U] * 5
    lib.eprop_host_workspace_bytes.restype = _U
    lib.eprop_host_sizeof.argtypes = [_U]
    lib.eprop_host_sizeof.restype = _U
    lib.eprop_neurons_per_core.argtypes = [_U, _U, _U, ctypes.c_bool]
    lib.eprop_neurons_per_core.restype = _U
    lib.eprop_host_fixed_op.argtypes = [_U, _U, _P, _P, _P]
    lib.eprop_host_fixed_op.restype = ctypes.c_int32
    return lib


def load() -> tuple[ctypes.CDLL, float]:
    """The loaded library (built if needed) and the compile seconds of this call."""
    path, seconds = build()
    return _load(str(path)), seconds


#: the structs whose layout Python and C share: eprop_host_sizeof code -> (name, Python size)
_SHARED = {0: ("neuron_params_t", NEURON_PARAMS.itemsize), 2: ("readout_params_t", READOUT_PARAMS.itemsize),
           6: ("eprop_optimizer_params_t", OPTIMIZER_PARAMS.itemsize), 7: ("eprop_synapse_params_t", SYNAPSE_PARAMS.itemsize),
           8: ("eprop_host_network_t", ctypes.sizeof(_Network))}


def struct_sizes() -> dict[str, tuple[int, int]]:
    """``name -> (sizeof in C, size in Python)`` of the structs both sides lay out."""
    lib, _ = load()
    return {name: (int(lib.eprop_host_sizeof(code)), size) for code, (name, size) in _SHARED.items()}


#: eprop_host_fixed_op codes
FIXED_OPS = ("add", "sub", "mul", "decay", "div", "div_int", "sqrt", "exp", "decay_mul")


def fixed_op(op: str, a, b=None) -> np.ndarray:
    """One operation of ``eprop_fixed.h`` element-wise on int32 bits (u0.32 bits for ``decay``'s ``b``
    and both ``decay_mul`` operands), computed by the compiled C; returns int64."""
    lib, _ = load()
    a = np.ascontiguousarray(a, dtype=np.int64)
    b = np.ascontiguousarray(np.zeros_like(a) if b is None else b, dtype=np.int64)
    out = np.zeros_like(a)
    if lib.eprop_host_fixed_op(FIXED_OPS.index(op), a.size, _ptr(a), _ptr(b), _ptr(out)) != 0:
        raise ValueError(f"unknown operation {op!r}")
    return out


def neurons_per_core(n_pre: int, fan_in: int, n_out: int, adaptive: bool) -> int:
    """``eprop_neurons_per_core`` of the compiled kernel (docs/spinnaker.rst)."""
    lib, _ = load()
    return int(lib.eprop_neurons_per_core(n_pre, fan_in, n_out, adaptive))


def _ptr(a: np.ndarray) -> int:
    assert a.flags["C_CONTIGUOUS"]
    return a.ctypes.data


def run_kernel(net: KernelNetwork) -> tuple[dict[str, np.ndarray], float]:
    """Run ``net`` in the host build.

    Returns
    -------
    raw, compile_seconds : dict, float
        The raw recordings (as :func:`pynn_ext.spinnaker.emulation.run_kernel`, int64 / uint8
        arrays) and the seconds spent compiling in this call.
    """
    lib, seconds = load()
    for name, (c_size, py_size) in struct_sizes().items():
        if c_size != py_size:
            raise RuntimeError(f"layout mismatch: sizeof({name}) is {c_size} in C, {py_size} in Python")
    n_rec, n_out, n_record = net.n_rec, net.n_out, net.record.shape[0]
    keep = {  # inputs, as contiguous arrays of the C types
        "core_start": np.ascontiguousarray(net.core_start, dtype=np.uint32),
        "neuron_params": np.ascontiguousarray(net.neuron_params),
        "readout_params": np.ascontiguousarray(net.readout_params),
        "synapse_params": np.ascontiguousarray(net.synapse_params),
        "optimizer": np.ascontiguousarray(net.optimizer),
        "inputs": np.ascontiguousarray(net.inputs, dtype=np.uint8),
        "zero_L": np.ascontiguousarray(net.zero_L, dtype=np.uint8),
        "target": np.ascontiguousarray(net.target, dtype=np.int32),
        "w_hidden": np.ascontiguousarray(net.w_hidden, dtype=np.int32),
        "w_out": np.ascontiguousarray(net.w_out, dtype=np.int32),
        "w_fb": np.ascontiguousarray(net.w_fb, dtype=np.int32),
        "record": np.ascontiguousarray(net.record, dtype=np.int32).reshape(-1) if n_record else np.zeros(3, np.int32),
        "mask_hidden": np.ascontiguousarray(net.mask_hidden, dtype=np.uint8),
        "mask_out": np.ascontiguousarray(net.mask_out, dtype=np.uint8),
    }
    out = allocate_raw(net, np.int32, min_record=1)
    nbytes = int(lib.eprop_host_workspace_bytes(net.n_in, n_rec, n_out, net.n_cores, n_record))
    workspace = np.zeros(nbytes // 8 + 1, dtype=np.uint64)
    cnet = _Network(n_in=net.n_in, n_rec=n_rec, n_out=n_out, T=net.T, n_sequences=net.n_sequences, T_L=net.T_L,
                    n_cores=net.n_cores, n_record=n_record, symmetric=int(net.symmetric),
                    learning_delay=net.learning_delay, workspace=_ptr(workspace),
                    **{k: _ptr(a) for k, a in keep.items()}, **{k: _ptr(a) for k, a in out.items()})
    status = lib.eprop_host_original_run(ctypes.byref(cnet))
    if status != 0:
        raise RuntimeError(f"eprop_host_original_run returned {status} (inconsistent network)")
    raw = {k: (a if a.dtype == np.uint8 else a.astype(np.int64)) for k, a in out.items()}
    for k in ("syn_zbar", "syn_e", "syn_ebar"):
        raw[k] = raw[k][:, :n_record]
    return raw, seconds
