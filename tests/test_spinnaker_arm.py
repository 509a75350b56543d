"""The SpiNNaker e-prop kernel cross-compiles for the ARM968 core (Debian's gcc-arm-none-eabi).

The compiler is installed by the project (:func:`pynn_ext.spinnaker.arm_build.ensure_toolchain`,
apt-get as root) when it is missing; if that is impossible the test fails, it is not skipped.
"""

from __future__ import annotations

import shutil
import subprocess

import pytest

from pynn_ext.spinnaker import arm_build


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
