"""The SpiNNaker e-prop kernel cross-compiles for the ARM968 core (Debian's gcc-arm-none-eabi), and the
ARM code computes the host build's bits (QEMU's ARMv5TE user-mode emulator, Debian's qemu-user).

Both tools are installed by the project (:func:`pynn_ext.spinnaker.arm_build.ensure_toolchain`,
:func:`pynn_ext.spinnaker.arm_run.ensure_emulator`, apt-get as root) when they are missing; if that
is impossible the tests fail, they are not skipped.
"""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest

from pynn_ext.spinnaker import arm_build, arm_run, host, kernel_params
from validation import scenario_library as library


@pytest.fixture(scope="module")
def arm_builds(tmp_path_factory):
    try:
        arm_build.ensure_toolchain()
    except RuntimeError as exc:
        pytest.fail(f"the ARM cross-compiler is needed and could not be installed: {exc}")
    return arm_build.build(tmp_path_factory.mktemp("arm"))


@pytest.mark.parametrize("variant", sorted(arm_build.VARIANTS))
def test_kernel_builds_for_arm968(arm_builds, variant):
    b = arm_builds[variant]
    assert b.elf.is_file()
    assert b.undefined == [], f"calls outside the kernel and libgcc: {b.undefined}"
    assert b.cpu in ("5TE", "ARM968E-S", "arm968e-s"), b.cpu  # ARMv5TE: the ARM968's architecture
    assert 0 < b.text_bytes < arm_build.ITCM_BYTES, b.text_bytes  # fits the core's 32 KB instruction memory
    header = subprocess.run([arm_build.ensure_toolchain().replace("gcc", "readelf"), "-h", str(b.elf)],
                            capture_output=True, text=True, check=True).stdout
    assert "ARM" in header and "ELF32" in header


def test_no_floating_point_in_the_kernel(arm_builds):
    """The ARM968 has no FPU: the kernel must not call soft-float helpers (it computes in integers)."""
    nm = arm_build.ensure_toolchain().replace("gcc", "nm")
    for b in arm_builds.values():
        symbols = subprocess.run([nm, str(b.elf)], capture_output=True, text=True, check=True).stdout
        soft_float = [s for s in symbols.split() if s.startswith(("__aeabi_d", "__aeabi_f", "__adddf", "__muldf"))]
        assert soft_float == [], soft_float


def test_makefile_builds_the_arm_archives(arm_builds, tmp_path):
    """``make arm`` (docs/spinnaker.rst) builds both archives with the same flags."""
    if shutil.which("make") is None:
        pytest.fail("make is needed for pynn_ext/spinnaker/c/Makefile")
    proc = subprocess.run(["make", "-C", str(arm_build.C_DIR), "arm", f"BUILD={tmp_path}"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for variant in ("arm", "arm-accum"):
        assert (tmp_path / variant / "libeprop_kernel.a").stat().st_size > 0


# ---- the ARM code computes the host build's bits (QEMU's ARMv5TE user-mode emulator)
ORIGINAL = [n for n in library.names() if library.get(n)[0].validated().family == "original"]
HAND_MADE = [n for n in ORIGINAL if not n.startswith("task-")]


@pytest.fixture(scope="module")
def arm_runners(tmp_path_factory):
    try:
        arm_build.ensure_toolchain()
        arm_run.ensure_emulator()
    except RuntimeError as exc:
        pytest.fail(f"the ARM cross-compiler and qemu-user are needed and could not be installed: {exc}")
    return {v: arm_run.build_runner(tmp_path_factory.mktemp(f"qemu-{v}"), flags) for v, flags in arm_build.VARIANTS.items()}


def _same_bits_as_host(elf, name):
    net = kernel_params.kernel_network(library.get(name)[0].validated())
    on_host, _ = host.run_kernel(net)
    on_arm = arm_run.run_kernel(elf, net)
    for key in on_host:
        assert np.array_equal(on_host[key], on_arm[key]), f"{name}: {key} differs between the ARM and host builds"


@pytest.mark.parametrize("variant", sorted(arm_build.VARIANTS))
@pytest.mark.parametrize("name", HAND_MADE)
def test_arm_build_equals_host_build(arm_runners, variant, name):
    _same_bits_as_host(arm_runners[variant], name)


@pytest.mark.slow
@pytest.mark.parametrize("variant", sorted(arm_build.VARIANTS))
@pytest.mark.parametrize("name", ["task-sine-original", "task-evidence-original"])
def test_arm_build_equals_host_build_on_the_tasks(arm_runners, variant, name):
    _same_bits_as_host(arm_runners[variant], name)
