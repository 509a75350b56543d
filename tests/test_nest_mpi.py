"""NEST with MPI: the module build for any NEST installation, and 2 MPI ranks = 1 rank on both NEST backends.

Default suite (seconds): which NEST the NESTML module is built for (the wheel here; an
``EPROP_NEST_CONFIG`` that does not belong to the imported ``nest`` package is refused, so a
module is never built for one NEST and loaded into another).

Slow (``-m slow``): NEST 3.10 built from source with OpenMPI (:func:`nest_models.nest_mpi.build_nest`;
about an hour on a loaded 2-core machine the first time, then cached), the NESTML module built
for it (its own cache key), and the ``nestml`` and ``nest-builtin`` backends on 1 and 2 MPI ranks:
spike trains identical, weights, weight events and traces within 1e-10 of each other and of the
NumPy reference, for a sine task and a sparse validation scenario of each family.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from eprop_plugins import reference, tasks
from nest_models import build, nest_mpi
from validation import scenario_library
from validation.compare import compare_results

REPO = Path(__file__).resolve().parents[1]
RTOL = 1e-10


# ----------------------------------------------------------------------------- which NEST (default)
def test_the_wheel_is_found_and_keyed_as_before(monkeypatch):
    monkeypatch.delenv(build.NEST_CONFIG_VARIABLE, raising=False)
    inst = build.nest_installation()
    assert inst.kind == "wheel" and inst.nest_config is None and inst.identity == {}
    assert (inst.package.parent / "nest_simulator.libs").is_dir()
    assert inst.version == "3.10.0"


def test_a_nest_config_of_another_installation_is_refused(monkeypatch, tmp_path):
    # a real installation layout whose nest-config answers its own prefix, while `import nest` loads the wheel
    prefix = tmp_path / "other-nest"
    (prefix / "bin").mkdir(parents=True)
    script = prefix / "bin" / "nest-config"
    script.write_text(f"#!/bin/sh\necho '{prefix}'\n")
    script.chmod(0o755)
    monkeypatch.setenv(build.NEST_CONFIG_VARIABLE, str(script))
    with pytest.raises(build.BuildError, match=r"belongs to the NEST installed in .*other-nest.*import nest. loads"):
        build.nest_installation()
    monkeypatch.setenv(build.NEST_CONFIG_VARIABLE, str(tmp_path / "missing" / "nest-config"))
    with pytest.raises(build.BuildError, match="no executable nest-config"):
        build.nest_installation()


# ------------------------------------------------------------------------------------ MPI (slow)
@pytest.fixture(scope="module")
def mpi_nest():
    """NEST 3.10 with MPI, built into the project cache if missing (a failure, not a skip, if it cannot be)."""
    prefix = nest_mpi.build_nest()
    assert nest_mpi.is_installed()
    env = nest_mpi.environment(prefix)
    probe = subprocess.run([sys.executable, "-c", "import nest, json; print(json.dumps("
                            "[nest.__file__, nest.build_info['have_mpi'], nest.__version__]))"],
                           env=env, capture_output=True, text=True, cwd=REPO)
    assert probe.returncode == 0, probe.stderr[-2000:]
    import json

    path, have_mpi, version = json.loads(probe.stdout.strip().splitlines()[-1])
    assert Path(path).is_relative_to(prefix) and have_mpi and version.startswith("3.10")
    return prefix


def _key_for(env: dict[str, str]) -> str:
    proc = subprocess.run([sys.executable, "-c", "from nest_models import build; "
                           "i = build.nest_installation(); print(i.kind, build.source_hash())"],
                          env=env, capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout.split()


@pytest.mark.slow
def test_module_key_depends_on_the_nest_installation(mpi_nest):
    wheel_env = {k: v for k, v in os.environ.items() if k != build.NEST_CONFIG_VARIABLE}
    wheel_env.pop("PYTHONPATH", None)
    kind_w, key_w = _key_for(wheel_env)
    by_path = nest_mpi.environment(mpi_nest)
    by_path.pop(build.NEST_CONFIG_VARIABLE)  # found through the nest package on PYTHONPATH alone
    kind_p, key_p = _key_for(by_path)
    kind_c, key_c = _key_for(nest_mpi.environment(mpi_nest))  # through EPROP_NEST_CONFIG
    assert (kind_w, kind_p, kind_c) == ("wheel", "nest-config", "nest-config")
    assert key_p == key_c != key_w


#: a sine task and a sparse validation scenario per family (2 iterations keep the runs short)
SCENARIOS = {
    "sine-original": lambda: tasks.sine("original", 2),
    "orig-rec-sparse10": lambda: scenario_library.build("orig-rec-sparse10"),
    "sine-event": lambda: tasks.sine("event", 2),
    "event-rec-sparse10": lambda: scenario_library.build("event-rec-sparse10"),
}


def _assert_same(sc, a, b, rtol=RTOL):
    cmp = compare_results(sc, a, b, rtol=rtol)
    assert cmp.status == "pass", cmp.summary()
    passed = {q.name for q in cmp.quantities if q.status == "pass"}
    for name in ("spikes", "traces/v", "traces/psi", "traces/learning_signal", "traces/y", "losses"):
        assert name in passed, f"{name} was not compared"
    return cmp


@pytest.mark.slow
@pytest.mark.parametrize("backend", nest_mpi.BACKENDS)
@pytest.mark.parametrize("name", list(SCENARIOS))
def test_two_ranks_equal_one_rank(mpi_nest, backend, name):
    sc = SCENARIOS[name]().validated()
    one = nest_mpi.run(sc, backend, processes=1, prefix=mpi_nest)
    two = nest_mpi.run(sc, backend, processes=2, prefix=mpi_nest)
    assert one.meta["mpi_processes"] == 1 and two.meta["mpi_processes"] == 2
    np.testing.assert_array_equal(one.traces["z"], two.traces["z"])
    assert one.traces["z"].sum() > 0
    ev1, ev2 = one.weight_events, two.weight_events
    assert len(ev1["w"]) > 0
    for col in ("step", "proj", "pre", "post"):
        np.testing.assert_array_equal(ev1[col], ev2[col])
    scale = np.max(np.abs(ev1["w"]))
    assert np.max(np.abs(ev1["w"] - ev2["w"])) <= RTOL * scale
    _assert_same(sc, one, two)
    _assert_same(sc, reference.run(sc), two)  # and both equal the NumPy reference
    print(f"{name} {backend}: spikes {int(two.traces['z'].sum())}, weight events {len(ev2['w'])}, "
          f"max |w1 - w2| {np.max(np.abs(ev1['w'] - ev2['w'])):.3g}, "
          f"max |v1 - v2| {np.max(np.abs(one.traces['v'] - two.traces['v'])):.3g}, "
          f"1 rank {one.meta['seconds']:.1f} s, 2 ranks {two.meta['seconds']:.1f} s")


@pytest.mark.slow
@pytest.mark.parametrize("backend", nest_mpi.BACKENDS)
def test_ranks_and_threads_combine(mpi_nest, backend):
    sc = SCENARIOS["orig-rec-sparse10"]().validated()
    one = nest_mpi.run(sc, backend, processes=1, prefix=mpi_nest)
    four = nest_mpi.run(sc, backend, processes=2, threads=2, prefix=mpi_nest)
    assert four.meta["virtual_processes"] == 4
    np.testing.assert_array_equal(one.traces["z"], four.traces["z"])
    _assert_same(sc, one, four)


@pytest.mark.slow
def test_command_line_run_in_the_selected_environment(mpi_nest, tmp_path):
    sc = SCENARIOS["event-rec-sparse10"]()
    sc.save(tmp_path / "sc.json")
    env = nest_mpi.environment(mpi_nest)  # the NEST chosen by PYTHONPATH / EPROP_NEST_CONFIG, as on a cluster
    env["PYTHONPATH"] += os.pathsep + str(REPO)
    proc = subprocess.run([sys.executable, "-m", "nest_models.nest_mpi", "run", str(tmp_path / "sc.json"),
                           "--backend", "nest-builtin", "--np", "2", "--out", str(tmp_path / "r.npz")],
                          env=env, capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = nest_mpi.load_result(tmp_path / "r.npz")
    assert got.meta["mpi_processes"] == 2 and got.meta["nest"] == str(mpi_nest / "bin" / "nest-config")
    _assert_same(sc.validated(), reference.run(sc.validated()), got)


def test_nest_sources_that_do_not_verify_are_refused_before_anything_is_built(tmp_path):
    fake = tmp_path / "nest_simulator-3.10.0.tar.gz"
    fake.write_bytes(b"not NEST")
    with pytest.raises(nest_mpi.NestMpiError, match="has SHA-256 .* not that of PyPI's nest_simulator-3.10.0"):
        nest_mpi.build_nest(cache=tmp_path / "cache", sdist=fake, apt=False)
    assert not nest_mpi.install_directory_of(tmp_path / "cache").exists()
    assert not nest_mpi.is_installed(tmp_path / "cache")
